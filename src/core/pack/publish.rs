//! Publishing a command's pack: the finished pack and its rows in; under the store's lock,
//! the index out with them merged into the index as it is now, compacted when packs hold
//! mostly superseded entries or are too many, and the packs no index names removed.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use super::index::{Index, PackFile, Row, is_pack_name};
use super::{WRITE_BUFFER, Writer, read_entry};

/// More packs than this and all but the fullest are copied into the new one: every command
/// that stores something leaves a pack, and each pack is a file a reader opens.
pub(super) const MAX_PACKS: usize = 8;

/// A row whose entry could not be copied (damaged, or its pack is gone): dropped.
const DROPPED: u32 = u32::MAX;

pub(super) fn publish(dir: &Path, writer: Writer) -> io::Result<()> {
    let Writer {
        mut file,
        mut buffer,
        path,
        name,
        len,
        rows,
    } = writer;
    let lock = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join("lock"))?;
    lock.lock()?;
    // Another command took the pack for garbage in the moment between its creation and its
    // lock: its entries are left to be computed again rather than published from a file
    // nobody can open.
    if !same_file(&path, &file) {
        return Ok(());
    }
    let current = Index::read(&dir.join("index"));
    let mut packs = current.packs.clone();
    let ours = packs.len() as u32;
    packs.push(PackFile { name, size: len });
    let mut merged = merge(current.rows(), rows, ours);
    drop(current);

    let chosen = choose(dir, &packs, &merged, ours);
    // The entries of the packs chosen go after ours, gathered in the same buffer.
    let mut size = len;
    for (pack, _) in chosen.iter().enumerate().filter(|(_, c)| **c) {
        let source = File::open(dir.join(&packs[pack].name)).ok();
        let mut moved: Vec<&mut Row> = merged
            .iter_mut()
            .filter(|r| r.pack as usize == pack)
            .collect();
        moved.sort_by_key(|r| r.offset);
        for row in moved {
            match source.as_ref().and_then(|f| read_entry(f, row)) {
                Some(body) => {
                    buffer.extend_from_slice(&body);
                    row.pack = ours;
                    row.offset = size;
                    size += body.len() as u64;
                    if buffer.len() >= WRITE_BUFFER {
                        file.write_all(&buffer)?;
                        buffer.clear();
                    }
                }
                None => row.pack = DROPPED,
            }
        }
    }
    file.write_all(&buffer)?;
    drop(buffer);
    merged.retain(|r| r.pack != DROPPED);
    packs[ours as usize].size = size;

    // Only packs that still hold an entry are named.
    let mut number = vec![DROPPED; packs.len()];
    let mut kept = Vec::new();
    for row in &mut merged {
        let old = row.pack as usize;
        if number[old] == DROPPED {
            number[old] = kept.len() as u32;
            kept.push(packs[old].clone());
        }
        row.pack = number[old];
    }
    let index = Index::encode(&kept, &merged);
    let temporary = dir.join("index.tmp");
    std::fs::write(&temporary, &index)?;
    std::fs::rename(&temporary, dir.join("index"))?;
    collect_garbage(dir, &kept);
    drop(lock);
    Ok(())
}

/// The index's rows with this command's (`ours`, in the order they were put) taking the
/// place of any with the same key: sorted by key, one per key, the newest.
fn merge(current: impl Iterator<Item = Row>, mut ours: Vec<Row>, pack: u32) -> Vec<Row> {
    for row in &mut ours {
        row.pack = pack;
    }
    // A stable sort keeps put order among equal keys: the last put is the newest.
    ours.sort_by_key(|r| r.key);
    let mut newest: Vec<Row> = Vec::with_capacity(ours.len());
    for row in ours {
        match newest.last_mut() {
            Some(last) if last.key == row.key => *last = row,
            _ => newest.push(row),
        }
    }
    let mut merged = Vec::with_capacity(newest.len());
    let mut current = current.peekable();
    for row in newest {
        while let Some(old) = current.next_if(|old| old.key < row.key) {
            merged.push(old);
        }
        current.next_if(|old| old.key == row.key);
        merged.push(row);
    }
    merged.extend(current);
    merged
}

/// The packs whose entries are copied into ours: those more than half superseded, those
/// not as the index left them (cut short, replaced or gone: what is intact is kept), and,
/// when there are too many, all but the fullest.
fn choose(dir: &Path, packs: &[PackFile], rows: &[Row], ours: u32) -> Vec<bool> {
    let mut live = vec![0u64; packs.len()];
    for row in rows {
        live[row.pack as usize] += u64::from(row.len);
    }
    let others = || (0..packs.len()).filter(|p| *p != ours as usize);
    let mut chosen = vec![false; packs.len()];
    for p in others() {
        let as_named = std::fs::metadata(dir.join(&packs[p].name))
            .is_ok_and(|m| m.is_file() && m.len() == packs[p].size);
        chosen[p] = !as_named || live[p] * 2 < packs[p].size;
    }
    let remaining: Vec<usize> = others().filter(|p| !chosen[*p] && live[*p] > 0).collect();
    if remaining.len() + 1 > MAX_PACKS {
        let fullest = remaining.iter().copied().max_by_key(|p| live[*p]);
        for p in remaining {
            chosen[p] = Some(p) != fullest;
        }
    }
    chosen
}

/// Removes the packs in `dir` that `kept` does not name and no command is writing (a pack
/// being written is locked by its writer; one left by a killed command is not).
pub(super) fn collect_garbage(dir: &Path, kept: &[PackFile]) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        // A pack not yet named one (`new-*`, locked and renamed at once by its writer) is
        // garbage only when a killed command left it: unlocked, and not just made.
        let unnamed_and_left = name.starts_with("new-")
            && entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() > 60));
        if !unnamed_and_left && (!is_pack_name(name) || kept.iter().any(|k| k.name == name)) {
            continue;
        }
        if let Ok(file) = File::open(entry.path())
            && file.try_lock().is_ok()
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether `path` still names the file `file` is open on.
pub(super) fn same_file(path: &Path, file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(path), file.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

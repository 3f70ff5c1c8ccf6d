//! Packed stores: entries (a key digest and a body) in, appended to a few pack files and
//! found again through an index; a body out only if it is intact. The package store and the
//! analysis result store keep thousands of small entries each; one file per entry cost a
//! second of inode allocation per 5,000 entries, this costs one file per command.
//!
//! A directory holds `index` (key → pack, offset, length and digest of the body; sealed,
//! replaced atomically), the `pack-*` files it names, and `lock`. A command's new entries go
//! to a pack of its own, created under a unique name and held under `flock` while it is
//! written (buffered: a few large writes, not one per entry); `flush` then takes `lock`,
//! merges its rows into the index as it is now (another forge may have published since),
//! compacts (`publish`) and replaces the index. Packs named by an index are never written
//! again, so readers need no lock: they read the index, open the packs it names, and read
//! each entry with one positioned read, verified against its digest. Whatever a SIGKILL
//! leaves — a torn pack no index names yet, an index not yet replaced — reads as absent or
//! as before; a damaged or cut-short entry fails its digest and is absent, so its owner
//! computes it again and puts it anew.

mod index;
mod publish;

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use index::{Index, Row};

use super::Digest;

/// How many bytes of entries a command gathers before writing them to its pack (grown to as
/// needed: a command storing one entry holds only that entry).
const WRITE_BUFFER: usize = 1 << 20;

/// A packed store in one directory.
pub struct PackStore {
    dir: PathBuf,
    /// The index as it was when first needed, and the packs it names, opened then (so a
    /// pack another command compacts away meanwhile stays readable).
    opened: OnceLock<Opened>,
    /// This command's pack, while it has entries not yet in the index.
    writer: Mutex<Option<Writer>>,
}

struct Opened {
    index: Index,
    packs: Vec<Option<File>>,
}

/// A pack being written: entries go to the end, their rows wait for `flush`.
struct Writer {
    file: File,
    /// Entries not yet written to `file`.
    buffer: Vec<u8>,
    path: PathBuf,
    name: String,
    len: u64,
    rows: Vec<Row>,
}

impl std::fmt::Debug for PackStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackStore({})", self.dir.display())
    }
}

impl PackStore {
    /// The store in `dir` (created on the first `put`); nothing is read until the first `get`.
    pub fn new(dir: PathBuf) -> PackStore {
        PackStore {
            dir,
            opened: OnceLock::new(),
            writer: Mutex::new(None),
        }
    }

    fn opened(&self) -> &Opened {
        self.opened.get_or_init(|| open(&self.dir))
    }

    /// The body stored under `key` when the store was first read, if it is intact. What this
    /// command `put` is not seen here: it is for later commands.
    pub fn get(&self, key: &Digest) -> Option<Vec<u8>> {
        let opened = self.opened();
        let row = opened.index.find(key)?;
        let file = opened.packs.get(row.pack as usize)?.as_ref()?;
        read_entry(file, &row)
    }

    /// Appends `body` under `key` to this command's pack; `flush` makes it visible.
    pub fn put(&self, key: Digest, body: &[u8]) -> io::Result<()> {
        let len = u32::try_from(body.len()).map_err(|_| io::Error::other("entry too large"))?;
        let digest = Digest::of_bytes(body);
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if writer.is_none() {
            *writer = Some(Writer::create(&self.dir)?);
        }
        let w = writer.as_mut().expect("created above");
        w.buffer.extend_from_slice(body);
        if let Err(e) = w.write_full_buffer() {
            // What was written may be torn: none of it is published.
            if let Some(w) = writer.take() {
                let _ = std::fs::remove_file(&w.path);
            }
            return Err(e);
        }
        w.rows.push(Row {
            key,
            pack: 0,
            offset: w.len,
            len,
            digest,
        });
        w.len += u64::from(len);
        Ok(())
    }

    /// Publishes what this command put: its pack finished and named by the index, so later
    /// commands read it. Without puts, touches nothing.
    pub fn flush(&self) -> io::Result<()> {
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        match writer {
            Some(writer) => publish::publish(&self.dir, writer),
            None => Ok(()),
        }
    }

    /// Where `key`'s body is, as the index said when first read: its pack's path, offset
    /// and length (for tests that damage it).
    #[cfg(test)]
    pub fn location(&self, key: &Digest) -> Option<(PathBuf, u64, u32)> {
        let opened = self.opened();
        let row = opened.index.find(key)?;
        let pack = &opened.index.packs[row.pack as usize];
        Some((self.dir.join(&pack.name), row.offset, row.len))
    }
}

impl Drop for PackStore {
    /// A command that ends early (an error) still keeps what it computed.
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

impl Writer {
    /// A new pack in `dir`, under a name no other command has, locked so that no other
    /// command takes it for garbage while it is written.
    fn create(dir: &Path) -> io::Result<Writer> {
        std::fs::create_dir_all(dir)?;
        // Made under a name that is not a pack's, locked, and only then named a pack: a
        // pack visible before its lock could be taken for garbage by a publish running at
        // that moment (another command's, or this store's own periodic one), and every
        // entry written to it lost.
        let (file, unlocked) = tempfile::Builder::new()
            .prefix("new-")
            .rand_bytes(12)
            .tempfile_in(dir)?
            .keep()
            .map_err(|e| e.error)?;
        file.lock()?;
        let name = unlocked
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("new-"))
            .map(|rest| format!("pack-{rest}"))
            .filter(|n| index::is_pack_name(n))
            .ok_or_else(|| io::Error::other("unexpected pack name"))?;
        let path = dir.join(&name);
        std::fs::rename(&unlocked, &path)?;
        Ok(Writer {
            file,
            buffer: Vec::new(),
            path,
            name,
            len: 0,
            rows: Vec::new(),
        })
    }

    /// Writes the gathered entries once there are enough of them.
    fn write_full_buffer(&mut self) -> io::Result<()> {
        if self.buffer.len() >= WRITE_BUFFER {
            self.file.write_all(&self.buffer)?;
            self.buffer.clear();
        }
        Ok(())
    }
}

/// The index of `dir` and its packs, opened. A pack the index names but that is gone was
/// compacted away after the index was read: the index is read again (a few times at most;
/// then the entries of a missing pack are absent).
fn open(dir: &Path) -> Opened {
    let mut attempts = 0;
    loop {
        let index = Index::read(&dir.join("index"));
        let packs: Vec<Option<File>> = index
            .packs
            .iter()
            .map(|p| File::open(dir.join(&p.name)).ok())
            .collect();
        attempts += 1;
        if packs.iter().all(Option::is_some) || attempts == 3 {
            return Opened { index, packs };
        }
    }
}

/// The body `row` points at in `file`, if it is all there and matches its digest.
fn read_entry(file: &File, row: &Row) -> Option<Vec<u8>> {
    let mut body = vec![0; row.len as usize];
    file.read_exact_at(&mut body, row.offset).ok()?;
    (Digest::of_bytes(&body) == row.digest).then_some(body)
}

#[cfg(test)]
mod tests;

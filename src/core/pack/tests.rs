use std::collections::BTreeMap;

use super::*;

fn key(i: u32) -> Digest {
    Digest::of_bytes(format!("key {i}").as_bytes())
}

fn body(i: u32, version: u32) -> Vec<u8> {
    format!("entry {i} version {version} ")
        .repeat(1 + (i as usize % 5))
        .into_bytes()
}

fn packs(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|n| n.starts_with("pack-"))
        .collect();
    names.sort();
    names
}

fn fill(dir: &Path, keys: std::ops::Range<u32>, version: u32) {
    let store = PackStore::new(dir.to_owned());
    for i in keys {
        store.put(key(i), &body(i, version)).unwrap();
    }
    store.flush().unwrap();
}

#[test]
fn entries_put_and_flushed_are_read_back_by_a_later_store_from_one_pack() {
    let dir = tempfile::tempdir().unwrap();
    let store = PackStore::new(dir.path().to_owned());
    assert!(store.get(&key(0)).is_none());
    for i in 0..100 {
        store.put(key(i), &body(i, 0)).unwrap();
    }
    assert!(store.get(&key(0)).is_none(), "not before a later command");
    store.flush().unwrap();
    assert_eq!(packs(dir.path()).len(), 1);
    let later = PackStore::new(dir.path().to_owned());
    for i in 0..100 {
        assert_eq!(later.get(&key(i)), Some(body(i, 0)), "{i}");
    }
    assert!(later.get(&key(100)).is_none());
    // A store that puts nothing writes nothing.
    let stamp = std::fs::metadata(dir.path().join("index"))
        .unwrap()
        .modified()
        .unwrap();
    later.flush().unwrap();
    drop(later);
    assert_eq!(
        std::fs::metadata(dir.path().join("index"))
            .unwrap()
            .modified()
            .unwrap(),
        stamp
    );
}

#[test]
fn a_damaged_entry_is_absent_alone_and_put_again_is_read() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 0..20, 0);
    let store = PackStore::new(dir.path().to_owned());
    let (pack, offset, len) = store.location(&key(7)).unwrap();
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[(offset + u64::from(len) / 2) as usize] ^= 0x10;
    std::fs::write(&pack, &bytes).unwrap();
    let store = PackStore::new(dir.path().to_owned());
    for i in 0..20 {
        assert_eq!(store.get(&key(i)).is_some(), i != 7, "{i}");
    }
    store.put(key(7), &body(7, 1)).unwrap();
    store.flush().unwrap();
    let store = PackStore::new(dir.path().to_owned());
    assert_eq!(store.get(&key(7)), Some(body(7, 1)));
    assert_eq!(store.get(&key(8)), Some(body(8, 0)));
}

#[test]
fn a_cut_pack_loses_only_its_tail_and_the_next_publish_keeps_what_is_intact() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 0..20, 0);
    let [pack] = packs(dir.path()).try_into().unwrap();
    let path = dir.path().join(&pack);
    let file = File::options().write(true).open(&path).unwrap();
    let size = file.metadata().unwrap().len();
    file.set_len(size - 3).unwrap();
    let store = PackStore::new(dir.path().to_owned());
    let absent: Vec<u32> = (0..20).filter(|i| store.get(&key(*i)).is_none()).collect();
    assert_eq!(absent, vec![19], "the last entry put");
    // The next command's pack takes in the intact entries of the cut one, which goes.
    fill(dir.path(), 19..20, 1);
    assert!(!path.exists());
    assert_eq!(packs(dir.path()).len(), 1);
    let store = PackStore::new(dir.path().to_owned());
    for i in 0..20 {
        assert_eq!(store.get(&key(i)), Some(body(i, u32::from(i == 19))), "{i}");
    }
}

#[test]
fn superseded_entries_are_compacted_away_and_packs_stay_few() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 0..100, 0);
    let first = packs(dir.path());
    // Less than half superseded: the first pack stays as it is.
    fill(dir.path(), 0..40, 1);
    assert_eq!(packs(dir.path()).len(), 2);
    assert!(packs(dir.path()).contains(&first[0]));
    // More than half: its live entries move into the newest pack and it goes.
    fill(dir.path(), 40..70, 1);
    assert!(
        !packs(dir.path()).contains(&first[0]),
        "{:?}",
        packs(dir.path())
    );
    let mut expected: BTreeMap<u32, Vec<u8>> =
        (0..100).map(|i| (i, body(i, u32::from(i < 70)))).collect();
    // One command after another, each storing one entry: never more than MAX_PACKS packs.
    for round in 0..30 {
        fill(dir.path(), round..round + 1, 2);
        expected.insert(round, body(round, 2));
        assert!(packs(dir.path()).len() <= publish::MAX_PACKS, "{round}");
    }
    let store = PackStore::new(dir.path().to_owned());
    for (i, want) in &expected {
        assert_eq!(store.get(&key(*i)).as_ref(), Some(want), "{i}");
    }
    // What the packs hold is mostly what the index names.
    let total: u64 = packs(dir.path())
        .iter()
        .map(|p| std::fs::metadata(dir.path().join(p)).unwrap().len())
        .sum();
    let live: u64 = expected.values().map(|b| b.len() as u64).sum();
    assert!(total < live * 2, "{total} bytes in packs for {live} live");
}

#[test]
fn a_pack_left_by_a_killed_command_is_removed_and_one_being_written_is_not() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 0..10, 0);
    // Killed while writing: a pack no index names and nobody holds.
    std::fs::write(dir.path().join("pack-killed0000"), b"half an entr").unwrap();
    // Being written by another command: held under its lock.
    let writing = PackStore::new(dir.path().to_owned());
    writing.put(key(50), &body(50, 0)).unwrap();
    fill(dir.path(), 10..20, 0);
    let names = packs(dir.path());
    assert!(!names.contains(&"pack-killed0000".to_owned()), "{names:?}");
    assert_eq!(names.len(), 3, "two published and one being written");
    writing.flush().unwrap();
    let store = PackStore::new(dir.path().to_owned());
    for i in (0..20).chain(50..51) {
        assert_eq!(store.get(&key(i)), Some(body(i, 0)), "{i}");
    }
}

#[test]
fn commands_writing_at_once_lose_nothing_and_read_only_whole_entries() {
    let dir = tempfile::tempdir().unwrap();
    let writers: Vec<_> = (0..4u32)
        .map(|w| {
            let dir = dir.path().to_owned();
            std::thread::spawn(move || {
                for round in 0..15u32 {
                    // Each round a separate store, as each command opens its own.
                    let store = PackStore::new(dir.clone());
                    for i in 0..40 {
                        if let Some(read) = store.get(&key(i)) {
                            assert!(
                                (0..4).any(|v| (0..15).any(|r| read == body(i, v * 100 + r))),
                                "entry {i} read as something never put"
                            );
                        }
                    }
                    for i in (w * 10)..(w * 10 + 25).min(40) {
                        store.put(key(i), &body(i, w * 100 + round)).unwrap();
                    }
                    store.flush().unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let store = PackStore::new(dir.path().to_owned());
    for i in 0..40 {
        let read = store.get(&key(i)).unwrap_or_else(|| panic!("{i} lost"));
        // The last writer of i put its last round last.
        assert!(
            (0..4).any(|w| read == body(i, w * 100 + 14)),
            "entry {i} is not a last round's"
        );
    }
    assert!(packs(dir.path()).len() <= publish::MAX_PACKS);
}

#[test]
fn a_new_pack_is_never_taken_for_garbage_by_a_publish_running_at_that_moment() {
    // A publish (another command's, or a store's own periodic one) collecting garbage
    // while a writer makes its pack: the pack must already be locked when it can be seen,
    // or its entries are lost with it.
    let dir = tempfile::tempdir().unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                publish::collect_garbage(dir.path(), &[]);
            }
        });
        let mut lost = 0;
        for _ in 0..3000 {
            let writer = Writer::create(dir.path()).unwrap();
            if !publish::same_file(&writer.path, &writer.file) {
                lost += 1;
            }
            let _ = std::fs::remove_file(&writer.path);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(
            lost, 0,
            "new packs taken for garbage before their writers locked them"
        );
    });
}

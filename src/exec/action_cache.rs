//! The action cache: an action key in, the outputs that action produced (exec path, digest,
//! executable bit) out — or the word that a key's earlier result must not be reused.
//!
//! Entries are records appended to one log file, one line each:
//! `<checksum> <key hex> <entry as JSON>`, where the checksum is the BLAKE3 digest of the rest
//! of the line; `-` instead of the JSON forgets the key (a test that failed with those inputs
//! takes back its cached pass). The latest record for a key wins. One file instead of one per
//! entry: creating an inode per action was the largest cost forge added to a clean build. The
//! log is read once, when the first lookup needs it (a no-op build needs none).
//!
//! An entry is appended only after all its outputs are in the CAS, so a reader that finds an
//! entry can expect the blobs. A record whose checksum does not match (damage on disk) or that
//! has no newline (a forge killed mid-write) is skipped, the good ones are kept, and the log is
//! rewritten with only the good records so the damage is gone for the next reader.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};

use crate::core::fs::write_atomic;
use crate::core::{Digest, ExecPath};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedOutput {
    pub path: ExecPath,
    pub digest: Digest,
    pub executable: bool,
    /// A directory output: `digest` is that of its manifest (see `tree`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tree: bool,
    /// Left in the remote CAS (build without the bytes): the digest it has there; `digest`
    /// is then its `remote_outputs::identity`, and the local CAS has no blob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteDigest>,
}

/// A blob's digest in the remote CAS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteDigest {
    pub hash: String,
    pub size: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcEntry {
    pub outputs: Vec<CachedOutput>,
}

/// A key's latest record: its entry, or `None` when it was forgotten.
type Records = HashMap<Digest, Option<AcEntry>>;

/// What the log says of a key.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Never recorded (or only in damaged records).
    Absent,
    /// Its latest record takes the result back (see `ActionCache::forget`).
    Forgotten,
    Entry(AcEntry),
}

pub struct ActionCache {
    /// `<root>/log`.
    log: PathBuf,
    entries: OnceLock<Mutex<Records>>,
    writer: Mutex<Option<File>>,
}

impl ActionCache {
    pub fn new(root: PathBuf) -> ActionCache {
        ActionCache {
            log: root.join("log"),
            entries: OnceLock::new(),
            writer: Mutex::new(None),
        }
    }

    fn entries(&self) -> &Mutex<Records> {
        self.entries.get_or_init(|| {
            // Under the writer lock: a rewrite below replaces the file our writer appends to.
            let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
            let text = fs::read(&self.log).unwrap_or_default();
            let mut map = HashMap::new();
            let mut damaged = false;
            let mut lines = text.split_inclusive(|b| *b == b'\n');
            for line in lines.by_ref() {
                let Some(line) = line.strip_suffix(b"\n") else {
                    // A torn tail: the record was never finished.
                    damaged = true;
                    continue;
                };
                match parse_line(line) {
                    Some((key, entry)) => {
                        map.insert(key, entry);
                    }
                    None => damaged |= !line.is_empty(),
                }
            }
            if damaged && self.rewrite(&map).is_ok() {
                // Appends must go to the new file.
                *writer = None;
            }
            Mutex::new(map)
        })
    }

    /// Replaces the log by the good records, atomically.
    fn rewrite(&self, map: &Records) -> io::Result<()> {
        let mut text = Vec::new();
        for (key, entry) in map {
            text.extend(record(key, entry.as_ref())?);
        }
        // Not fsynced, like the appends: a damaged log is detected and repaired on load.
        write_atomic(&self.log, &text)?;
        Ok(())
    }

    /// The entry for `key`; `None` when absent, damaged or forgotten.
    #[cfg(test)]
    pub fn get(&self, key: &Digest) -> Option<AcEntry> {
        match self.lookup(key) {
            Lookup::Entry(entry) => Some(entry),
            Lookup::Absent | Lookup::Forgotten => None,
        }
    }

    /// Whether the latest record for `key` forgets it (see `forget`).
    #[cfg(test)]
    pub fn forgotten(&self, key: &Digest) -> bool {
        matches!(self.lookup(key), Lookup::Forgotten)
    }

    /// The latest record for `key`, in one look at the table (a cache hit is the hot path).
    pub fn lookup(&self, key: &Digest) -> Lookup {
        let entries = self.entries().lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(key) {
            None => Lookup::Absent,
            Some(None) => Lookup::Forgotten,
            Some(Some(entry)) => Lookup::Entry(entry.clone()),
        }
    }

    pub fn put(&self, key: &Digest, entry: &AcEntry) -> io::Result<()> {
        self.append(key, Some(entry))
    }

    /// Appends records as `record` writes them (another output base's, `remote_outputs`)
    /// without parsing their entries: a reader checks each when it loads the log, as any
    /// record. Those whose checksum does not match or whose key this log already has are
    /// left out; how many were appended.
    pub fn put_records(&self, records: &[u8]) -> io::Result<usize> {
        let mut lines = Vec::with_capacity(records.len());
        let mut added = 0;
        for line in records.split_inclusive(|b| *b == b'\n') {
            let Some((key, _)) = line.strip_suffix(b"\n").and_then(checked_key) else {
                continue;
            };
            if self.lookup(&key) != Lookup::Absent {
                continue;
            }
            lines.extend_from_slice(line);
            added += 1;
        }
        if !lines.is_empty() {
            self.append_lines(&lines)?;
        }
        if let Some(entries) = self.entries.get() {
            let mut entries = entries.lock().unwrap_or_else(|e| e.into_inner());
            for line in lines.split(|b| *b == b'\n') {
                if let Some((key, entry)) = parse_line(line) {
                    entries.insert(key, entry);
                }
            }
        }
        Ok(added)
    }

    /// Takes back the entry for `key`: later lookups miss, and `forgotten` says so.
    pub fn forget(&self, key: &Digest) -> io::Result<()> {
        self.append(key, None)
    }

    fn append(&self, key: &Digest, entry: Option<&AcEntry>) -> io::Result<()> {
        self.append_lines(&record(key, entry)?)?;
        if let Some(entries) = self.entries.get() {
            entries
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(*key, entry.cloned());
        }
        Ok(())
    }

    /// Appends whole lines to the log.
    fn append_lines(&self, line: &[u8]) -> io::Result<()> {
        {
            let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
            if writer.is_none() {
                if let Some(dir) = self.log.parent() {
                    super::perform::ensure_dir(dir)?;
                }
                let mut file = File::options()
                    .create(true)
                    .append(true)
                    .read(true)
                    .open(&self.log)?;
                // A killed writer may have left a partial line: end it, so it stays one
                // damaged line instead of swallowing the next entry.
                let len = file.metadata()?.len();
                let mut last = [b'\n'];
                if len > 0 {
                    use std::os::unix::fs::FileExt;
                    file.read_exact_at(&mut last, len - 1)?;
                }
                if last[0] != b'\n' {
                    file.write_all(b"\n")?;
                }
                *writer = Some(file);
            }
            let file = writer.as_mut().expect("opened above");
            // One write per line: O_APPEND keeps lines from concurrent forge processes sharing
            // a --disk_cache whole.
            file.write_all(line)?;
        }
        Ok(())
    }
}

/// One record of the log, with its checksum and newline.
pub(crate) fn record(key: &Digest, entry: Option<&AcEntry>) -> io::Result<Vec<u8>> {
    let mut body = key.to_hex().into_bytes();
    body.push(b' ');
    match entry {
        Some(entry) => serde_json::to_writer(&mut body, entry).map_err(io::Error::other)?,
        None => body.push(b'-'),
    }
    let mut line = Digest::of_bytes(&body).to_hex().into_bytes();
    line.push(b' ');
    line.extend(body);
    line.push(b'\n');
    Ok(line)
}

/// The key of a record without its newline, and its entry's bytes, unparsed, if its
/// checksum matches.
fn checked_key(line: &[u8]) -> Option<(Digest, &[u8])> {
    let space = line.iter().position(|b| *b == b' ')?;
    let sum = Digest::from_hex(std::str::from_utf8(&line[..space]).ok()?)?;
    let body = &line[space + 1..];
    if Digest::of_bytes(body) != sum {
        return None;
    }
    let space = body.iter().position(|b| *b == b' ')?;
    let key = Digest::from_hex(std::str::from_utf8(&body[..space]).ok()?)?;
    Some((key, &body[space + 1..]))
}

/// A record without its newline; `None` if its checksum does not match or it does not parse.
fn parse_line(line: &[u8]) -> Option<(Digest, Option<AcEntry>)> {
    let (key, rest) = checked_key(line)?;
    let entry = match rest {
        b"-" => None,
        json => Some(serde_json::from_slice(json).ok()?),
    };
    Some((key, entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str) -> AcEntry {
        AcEntry {
            outputs: vec![CachedOutput {
                path: path.into(),
                digest: Digest::of_bytes(path.as_bytes()),
                executable: true,
                tree: false,
                remote: None,
            }],
        }
    }

    #[test]
    fn round_trips_the_latest_entry_wins_and_damage_is_a_miss() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("ac");
        let ac = ActionCache::new(root.clone());
        let (k1, k2) = (Digest::of_bytes(b"k1"), Digest::of_bytes(b"k2"));
        assert_eq!(ac.get(&k1), None);
        ac.put(&k1, &entry("old"))?;
        ac.put(&k1, &entry("new"))?;
        assert_eq!(ac.get(&k1), Some(entry("new")));

        // A later process sees the same; a partial last line (a killed writer) is a miss.
        ac.put(&k2, &entry("two"))?;
        let mut text = fs::read(root.join("log"))?;
        let cut = text.len() - 10;
        text.truncate(cut);
        fs::write(root.join("log"), &text)?;
        let again = ActionCache::new(root.clone());
        assert_eq!(again.get(&k1), Some(entry("new")));
        assert_eq!(again.get(&k2), None);
        // Writing after the damage starts a fresh line.
        again.put(&k2, &entry("two again"))?;
        assert_eq!(ActionCache::new(root).get(&k2), Some(entry("two again")));
        Ok(())
    }

    #[test]
    fn records_from_elsewhere_are_appended_unless_damaged_or_known() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("ac");
        let ac = ActionCache::new(root.clone());
        let keys: Vec<Digest> = (0..4u8).map(|i| Digest::of_bytes(&[i])).collect();
        ac.put(&keys[0], &entry("mine"))?;
        let mut lines = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            lines.extend(record(k, Some(&entry(&format!("theirs{i}"))))?);
        }
        // The same length, another path: only the checksum tells.
        let damaged = String::from_utf8(lines.clone())
            .unwrap()
            .replace("theirs2", "evils02");
        assert_eq!(ac.put_records(damaged.as_bytes())?, 2);
        // This output base's own result wins; the damaged record is not taken.
        assert_eq!(ac.get(&keys[0]), Some(entry("mine")));
        assert_eq!(ac.get(&keys[1]), Some(entry("theirs1")));
        assert_eq!(ac.get(&keys[2]), None);
        let again = ActionCache::new(root);
        assert_eq!(again.get(&keys[0]), Some(entry("mine")));
        assert_eq!(again.get(&keys[1]), Some(entry("theirs1")));
        assert_eq!(again.get(&keys[2]), None);
        assert_eq!(again.get(&keys[3]), Some(entry("theirs3")));
        // Nothing to add: nothing written.
        assert_eq!(again.put_records(&lines[..0])?, 0);
        Ok(())
    }

    #[test]
    fn a_damaged_record_is_skipped_the_others_kept_and_the_log_rewritten() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("ac");
        let ac = ActionCache::new(root.clone());
        let keys: Vec<Digest> = (0..3).map(|i| Digest::of_bytes(&[i])).collect();
        for (i, k) in keys.iter().enumerate() {
            ac.put(k, &entry(&format!("good{i}")))?;
        }
        // The same length, another output path: only the checksum can tell.
        let log = root.join("log");
        let text = fs::read_to_string(&log)?.replace("good1", "evil1");
        fs::write(&log, &text)?;
        let again = ActionCache::new(root.clone());
        assert_eq!(again.get(&keys[0]), Some(entry("good0")));
        assert_eq!(again.get(&keys[1]), None);
        assert_eq!(again.get(&keys[2]), Some(entry("good2")));
        // Rewritten without the damage; appends after the rewrite are kept.
        assert!(!fs::read_to_string(&log)?.contains("evil"));
        again.put(&keys[1], &entry("good1"))?;
        let healthy = ActionCache::new(root);
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(healthy.get(k), Some(entry(&format!("good{i}"))));
        }
        Ok(())
    }

    #[test]
    fn a_forgotten_key_misses_until_put_again() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("ac");
        let ac = ActionCache::new(root.clone());
        let k = Digest::of_bytes(b"k");
        assert!(!ac.forgotten(&k));
        ac.put(&k, &entry("pass"))?;
        ac.forget(&k)?;
        assert_eq!(ac.get(&k), None);
        assert!(ac.forgotten(&k));
        let again = ActionCache::new(root.clone());
        assert_eq!(again.get(&k), None);
        assert!(again.forgotten(&k));
        again.put(&k, &entry("pass again"))?;
        assert_eq!(ActionCache::new(root).get(&k), Some(entry("pass again")));
        Ok(())
    }
}

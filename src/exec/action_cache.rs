//! The action cache: an action key in, the outputs that action produced (exec path, digest,
//! executable bit) out.
//!
//! Entries are lines appended to one log file, `<key hex> <entry as JSON>`; the latest line
//! for a key wins. One file instead of one per entry: creating an inode per action was the
//! largest cost forge added to a clean build. The log is read once, when the first lookup
//! needs it (a no-op build needs none).
//!
//! An entry is appended only after all its outputs are in the CAS, so a reader that finds an
//! entry can expect the blobs. A line that does not parse (a forge killed mid-write leaves at
//! most a partial last line) is ignored: a damaged entry is a miss.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};

use crate::core::Digest;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedOutput {
    pub path: String,
    pub digest: Digest,
    pub executable: bool,
    /// A directory output: `digest` is that of its manifest (see `tree`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tree: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcEntry {
    pub outputs: Vec<CachedOutput>,
}

pub struct ActionCache {
    /// `<root>/log`.
    log: PathBuf,
    entries: OnceLock<Mutex<HashMap<Digest, AcEntry>>>,
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

    fn entries(&self) -> &Mutex<HashMap<Digest, AcEntry>> {
        self.entries.get_or_init(|| {
            let text = fs::read(&self.log).unwrap_or_default();
            let mut map = HashMap::new();
            for line in text.split(|b| *b == b'\n') {
                if let Some((key, entry)) = parse_line(line) {
                    map.insert(key, entry);
                }
            }
            Mutex::new(map)
        })
    }

    /// The entry for `key`; `None` when absent or damaged.
    pub fn get(&self, key: &Digest) -> Option<AcEntry> {
        let entries = self.entries().lock().unwrap_or_else(|e| e.into_inner());
        entries.get(key).cloned()
    }

    pub fn put(&self, key: &Digest, entry: &AcEntry) -> io::Result<()> {
        let mut line = key.to_hex().into_bytes();
        line.push(b' ');
        serde_json::to_writer(&mut line, entry).map_err(io::Error::other)?;
        line.push(b'\n');
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
            file.write_all(&line)?;
        }
        if let Some(entries) = self.entries.get() {
            entries
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(*key, entry.clone());
        }
        Ok(())
    }
}

fn parse_line(line: &[u8]) -> Option<(Digest, AcEntry)> {
    let space = line.iter().position(|b| *b == b' ')?;
    let key = Digest::from_hex(std::str::from_utf8(&line[..space]).ok()?)?;
    let entry = serde_json::from_slice(&line[space + 1..]).ok()?;
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
}

//! The action cache: an action key in, the outputs that action produced (exec path, digest,
//! executable bit) out. Entries live at `<root>/ab/cdef…` as small JSON files.
//!
//! An entry is written (temp + rename) only after all its outputs are in the CAS, so a reader
//! that finds an entry can expect the blobs; a damaged entry is treated as a miss.

use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;

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
    root: PathBuf,
}

impl ActionCache {
    pub fn new(root: PathBuf) -> ActionCache {
        ActionCache { root }
    }

    fn path(&self, key: &Digest) -> PathBuf {
        let hex = key.to_hex();
        self.root.join(&hex[..2]).join(&hex[2..])
    }

    /// The entry for `key`; `None` when absent or unreadable as an entry.
    pub fn get(&self, key: &Digest) -> Option<AcEntry> {
        let bytes = fs::read(self.path(key)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn put(&self, key: &Digest, entry: &AcEntry) -> io::Result<()> {
        let dest = self.path(key);
        let dir = dest.parent().unwrap_or(&self.root);
        crate::exec::perform::ensure_dir(dir)?;
        let json = serde_json::to_vec(entry).map_err(io::Error::other)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        tmp.write_all(&json)?;
        tmp.persist(&dest).map_err(|e| e.error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_damage_is_a_miss() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let ac = ActionCache::new(dir.path().to_path_buf());
        let key = Digest::of_bytes(b"key");
        assert_eq!(ac.get(&key), None);
        let entry = AcEntry {
            outputs: vec![CachedOutput {
                path: "forge-out/bin/x".into(),
                digest: Digest::of_bytes(b"x"),
                executable: true,
                tree: false,
            }],
        };
        ac.put(&key, &entry)?;
        assert_eq!(ac.get(&key), Some(entry));
        fs::write(ac.path(&key), b"{\"outputs\": [")?;
        assert_eq!(ac.get(&key), None);
        Ok(())
    }
}

//! The analysis result store: a configured target's result (its providers as plain data,
//! its actions, executable, runfiles tree and test settings) and the key of what its
//! analysis read in; on a later command, the same result out while the key is the same —
//! so after an edit only the targets whose inputs changed are analysed again.
//!
//! One file per configured target under `<output_base>/cache/analysis/`, named by the
//! label and the configuration; it holds the store's salt (the forge binary and what
//! WORKSPACE declares, given by the caller), the key, the digest of the result (what
//! dependents' keys use, for early cut-off) and the result, in postcard, behind a header
//! with the BLAKE3 digest of the rest. A damaged entry fails its digest and the target is
//! analysed again and the entry rewritten, never trusted.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ConfiguredLabel;
use super::stored_value::StoredValues;
use crate::core::{Action, Digest, RunfilesTree, TestSpec};

/// The first line of an entry, before the digest of the rest.
const HEADER: &str = "forge-analysis 1 ";

/// Everything a configured target's analysis produced, as plain data.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct StoredResult {
    pub values: StoredValues,
    /// In JSON: `Action` leaves empty fields out, which postcard cannot read back.
    #[serde(with = "actions_as_json")]
    pub actions: Vec<Action>,
    pub executable: Option<String>,
    pub runfiles: Option<RunfilesTree>,
    pub is_test: bool,
    pub args: Vec<String>,
    pub test: Option<TestSpec>,
}

impl StoredResult {
    /// What dependents see of this result: equal results, equal digests.
    pub fn digest(&self) -> Option<Digest> {
        postcard::to_allocvec(self)
            .ok()
            .map(|bytes| Digest::of_bytes(&bytes))
    }
}

mod actions_as_json {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::core::Action;

    pub fn serialize<S: Serializer>(actions: &[Action], s: S) -> Result<S::Ok, S::Error> {
        serde_json::to_string(actions)
            .map_err(serde::ser::Error::custom)?
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Action>, D::Error> {
        let text = String::deserialize(d)?;
        serde_json::from_str(&text).map_err(serde::de::Error::custom)
    }
}

/// One stored result and what decided it.
#[derive(Serialize, Deserialize)]
pub(super) struct Entry {
    salt: String,
    target: String,
    pub key: Digest,
    pub result_digest: Digest,
    pub result: StoredResult,
}

/// Where analysis results are kept between commands.
pub struct ResultStore {
    dir: PathBuf,
    salt: String,
}

impl std::fmt::Debug for ResultStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ResultStore({})", self.dir.display())
    }
}

impl ResultStore {
    /// A store in `dir` whose entries are valid only with the same `salt`.
    pub fn new(dir: PathBuf, salt: Digest) -> ResultStore {
        ResultStore {
            dir,
            salt: salt.to_hex(),
        }
    }

    /// The salt, which every key also digests.
    pub(super) fn salt(&self) -> &str {
        &self.salt
    }

    fn name(target: &ConfiguredLabel) -> String {
        format!("{} {}", target.label, target.config.hex_id())
    }

    fn path(&self, target: &ConfiguredLabel) -> PathBuf {
        let name = Self::name(target);
        self.dir.join(Digest::of_bytes(name.as_bytes()).to_hex())
    }

    /// The stored entry of `target` if it is intact, was made with this salt and for `key`.
    pub(super) fn load(&self, target: &ConfiguredLabel, key: &Digest) -> Option<Entry> {
        let body = crate::core::sealed::read_sealed(&self.path(target), HEADER)?;
        let entry: Entry = postcard::from_bytes(&body).ok()?;
        if entry.salt != self.salt || entry.target != Self::name(target) || entry.key != *key {
            return None;
        }
        Some(entry)
    }

    /// Keeps `result` of `target`, analysed with `key`, for later commands (atomically: a
    /// reader sees the old entry or the new).
    pub(super) fn store(
        &self,
        target: &ConfiguredLabel,
        key: Digest,
        result_digest: Digest,
        result: StoredResult,
    ) -> Result<(), String> {
        let entry = Entry {
            salt: self.salt.clone(),
            target: Self::name(target),
            key,
            result_digest,
            result,
        };
        let body = postcard::to_allocvec(&entry).map_err(|e| e.to_string())?;
        let content = crate::core::sealed::seal(HEADER, &body);
        crate::core::fs::write_atomic(&self.path(target), &content).map_err(|e| e.to_string())
    }
}

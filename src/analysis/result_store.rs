//! The analysis result store: a configured target's result (its providers as plain data,
//! its actions, executable, runfiles tree and test settings) and the key of what its
//! analysis read in; on a later command, the same result out while the key is the same —
//! so after an edit only the targets whose inputs changed are analysed again.
//!
//! One entry per configured target in a packed store (`core::pack`) under
//! `<output_base>/cache/analysis/`, keyed by the label and the configuration; it holds the
//! store's salt (the forge binary and what WORKSPACE declares, given by the caller), the
//! key, the digest of the result (what dependents' keys use, for early cut-off) and the
//! result, in postcard. The pack verifies each entry against its digest: a damaged one is
//! absent, so the target is analysed again and stored anew, never trusted.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ConfiguredLabel;
use super::stored_value::StoredValues;
use crate::core::pack::PackStore;
use crate::core::{Action, Digest, RunfilesTree, TestSpec};

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
#[derive(Debug)]
pub struct ResultStore {
    pack: PackStore,
    salt: String,
}

impl ResultStore {
    /// A store in `dir` whose entries are valid only with the same `salt`.
    pub fn new(dir: PathBuf, salt: Digest) -> ResultStore {
        ResultStore {
            pack: PackStore::new(dir),
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

    fn key(target: &ConfiguredLabel) -> Digest {
        Digest::of_bytes(Self::name(target).as_bytes())
    }

    /// The stored entry of `target` if it is intact, was made with this salt and for `key`.
    pub(super) fn load(&self, target: &ConfiguredLabel, key: &Digest) -> Option<Entry> {
        let body = self.pack.get(&Self::key(target))?;
        let entry: Entry = postcard::from_bytes(&body).ok()?;
        if entry.salt != self.salt || entry.target != Self::name(target) || entry.key != *key {
            return None;
        }
        Some(entry)
    }

    /// Keeps `result` of `target`, analysed with `key`, for later commands (once `flush`ed).
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
        self.pack
            .put(Self::key(target), &body)
            .map_err(|e| e.to_string())
    }

    /// Makes what was stored visible to later commands (dropping the store does too).
    pub fn flush(&self) -> Result<(), String> {
        self.pack.flush().map_err(|e| e.to_string())
    }
}

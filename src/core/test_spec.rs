//! `TestSpec`: what analysis tells `forge test` about a test target (size, timeout, shards,
//! environment, runfiles), as plain data stored in the plan.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ExecPath;

/// What `forge test` needs to know about a test target.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TestSpec {
    /// `small`, `medium` (the default), `large` or `enormous`.
    pub size: String,
    /// `short`, `moderate`, `long` or `eternal`, when given.
    pub timeout: Option<String>,
    pub flaky: bool,
    pub shard_count: u32,
    pub tags: Vec<String>,
    /// The rule's `env`.
    pub env: BTreeMap<String, String>,
    /// The runfiles tree: `(runfiles path, exec path)`.
    pub runfiles: Vec<(String, ExecPath)>,
    /// The testlogs directory of the test's configuration (`forge-out/<config>/testlogs`).
    pub testlogs_dir: String,
}

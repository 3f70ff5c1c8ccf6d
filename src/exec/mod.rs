//! Execution: the analysed actions and the output paths the user asked for in, those outputs
//! built (or restored from cache, or found already right) on disk under the exec root out,
//! with counts and failures in an `ExecResult`.
//!
//! Layout under `ExecConfig::cache_dir`: `cas/` (blobs by BLAKE3), `ac/` (action key → outputs),
//! `stat_cache` (path → stat → digest, plus what we last wrote at each output path) and
//! `tmp/` (per-action `TMPDIR`s). A `--disk_cache` directory has its own `cas/` and `ac/`; a
//! `--remote_cache` server is the third tier (see `crate::remote`). `CacheTiers` is the one
//! chain through the three, for build actions and (with `tests/` beside `cas/`) test results;
//! the CAS, action cache and stat cache behind it are private to this module.

mod action_cache;
mod cas;
mod confine;
mod discovery;
mod explain;
pub mod foresee;
pub mod ingredients;
pub mod interrupt;
pub mod key;
pub mod lock;
mod perform;
pub mod progress;
pub mod remote_outputs;
pub mod remote_runner;
pub mod runner;
pub mod sandbox;
mod scheduler;
mod set_digests;
mod source_dir;
mod stat_cache;
mod tiers;
mod tree;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::core::Label;
use crate::core::{Action, ExecPath};
use crate::remote::RemoteCache;

pub use action_cache::{AcEntry, CachedOutput};
pub use interrupt::{clear_interrupt, install_interrupt_handler, interrupt_flag};
pub use lock::{Lock, lock_output_base, lock_output_base_with};
pub use progress::{ActionOutcome, ConsoleProgress, NoProgress, Progress, shell_words};
pub use runner::{Cancel, LocalRunner, Runner, Spawn, SpawnOutcome, SpawnStatus};
pub use scheduler::describe_action;
pub use tiers::{Blobs, CacheTiers, Hit, StoreError, Tier};

/// The `PATH` every command gets, whatever the user's is.
pub const FIXED_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The environment every command gets before its action's own variables: the fixed
/// `PATH`, `LANG` and `TZ`, then `--action_env`.
pub fn base_environment(action_env: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert("PATH".to_owned(), FIXED_PATH.to_owned());
    env.insert("LANG".to_owned(), "C".to_owned());
    env.insert("TZ".to_owned(), "UTC".to_owned());
    env.extend(action_env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

/// The whole environment of `action`'s command (without the per-run `TMPDIR`): the base
/// environment with the action's own variables on top. In-process kinds have none.
pub fn command_environment(
    base: &BTreeMap<String, String>,
    action: &Action,
) -> BTreeMap<String, String> {
    if !matches!(action.kind, crate::core::ActionKind::Run { .. }) {
        return BTreeMap::new();
    }
    let mut env = base.clone();
    env.extend(action.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

/// Where and how to execute.
#[derive(Clone, Debug)]
pub struct ExecConfig {
    /// Actions run with this as cwd; sources are reachable at their exec paths through it and
    /// outputs are written under it.
    pub exec_root: PathBuf,
    /// `<output_base>/cache`: CAS, action cache and stat cache live here.
    pub cache_dir: PathBuf,
    /// `--disk_cache=DIR`: a CAS + action cache shared between workspaces, consulted on local
    /// misses and written after local executions.
    pub disk_cache: Option<PathBuf>,
    pub jobs: usize,
    pub keep_going: bool,
    /// `--action_env` entries, added to the fixed environment of commands.
    pub action_env: BTreeMap<String, String>,
    /// The workspace, to recognise absolute paths into it in error messages.
    pub workspace_root: Option<PathBuf>,
    /// `--remote_cache`: consulted after the local and disk caches miss, filled after local
    /// executions.
    pub remote: Option<Arc<RemoteCache>>,
    /// Build without the bytes: the outputs left in the remote CAS, fetched when needed.
    /// With a remote, even when everything is downloaded (an earlier build may have left
    /// outputs remote).
    pub remote_files: Option<Arc<remote_outputs::RemoteFiles>>,
}

/// What a build did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecResult {
    /// Actions that were executed (run or performed in-process), including ones that failed.
    pub executed: usize,
    /// Actions whose outputs came from a cache: local, disk or remote.
    pub cache_hits: usize,
    /// Of `cache_hits`, those that came from the remote cache.
    pub remote_hits: usize,
    /// Actions skipped because their outputs on disk were already right.
    pub up_to_date: usize,
    /// In the order of the `actions` slice, whatever the number of jobs.
    pub failures: Vec<ActionFailure>,
    /// Why each action that ran (or was restored from a cache) did, in the order of the
    /// `actions` slice: for `--explain`.
    pub explanations: Vec<ingredients::Explanation>,
    /// Ctrl-C stopped the build; the CLI exits 8.
    pub interrupted: bool,
}

/// One failed action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionFailure {
    pub owner: Label,
    pub mnemonic: String,
    /// The argv of a `Run` action; empty for in-process kinds.
    pub command: Vec<String>,
    /// `exit 7`, `killed by signal 9`, `declared output 'x' was not created`,
    /// `missing input file 'pkg/a.txt'`, ...
    pub exit: String,
    /// Combined stdout+stderr (lossy UTF-8), or the error detail for in-process failures.
    pub output: String,
}

/// Problems found before anything runs.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExecError {
    #[error("file '{path}' is generated by both {first} and {second}")]
    DuplicateOutput {
        path: String,
        first: Box<Label>,
        second: Box<Label>,
    },
    #[error("cycle in the action graph through '{path}'")]
    Cycle { path: String },
    #[error("cannot prepare execution: {0}")]
    Setup(String),
}

/// Builds `wanted` (output exec paths; other paths are ignored), running only the actions
/// they need. Ctrl-C (after `install_interrupt_handler`) cancels the build.
pub fn execute(
    actions: &[Action],
    wanted: &[ExecPath],
    config: &ExecConfig,
    runner: &dyn Runner,
    progress: &dyn Progress,
) -> Result<ExecResult, ExecError> {
    execute_interruptible(actions, wanted, config, runner, progress, interrupt_flag())
}

/// Fetches the remote-only files among `paths` (build without the bytes: the top-level
/// outputs, what `forge run` starts) into the exec root under `exec_root`, recording them
/// as the outputs they are. A lost blob takes back the result of the action that made it,
/// so the next build makes it anew.
pub fn fetch_remote_outputs(
    exec_root: &std::path::Path,
    cache_dir: &std::path::Path,
    files: &remote_outputs::RemoteFiles,
    paths: &[ExecPath],
) -> Result<(), remote_outputs::FetchError> {
    let wanted: Vec<&str> = paths
        .iter()
        .map(ExecPath::as_str)
        .filter(|p| files.remote_only(exec_root, p).is_some())
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let tiers = CacheTiers::open(
        crate::remote::KeyKind::Action,
        exec_root,
        cache_dir,
        None,
        None,
    );
    let stat = tiers.stat();
    let fetched = files.fetch(exec_root, wanted.iter().copied());
    match &fetched {
        Ok(()) => {
            for p in &wanted {
                // Known by its identity from now on: the next build finds it up to date.
                if let Some(record) = stat.output(p)
                    && let Ok(s) = stat_cache::FileStat::of(&exec_root.join(p))
                {
                    stat.record(p, s, record.digest);
                }
            }
        }
        Err(remote_outputs::FetchError::Lost(lost)) => {
            for p in lost {
                if let Some(record) = stat.output(p) {
                    let _ = tiers.forget(&record.action_key);
                }
                stat.forget_output(p);
            }
            files.take_lost();
        }
        Err(remote_outputs::FetchError::Failed(_)) => {}
    }
    let _ = tiers.save_digests();
    fetched
}

/// `execute` watching `interrupt` instead of the process-wide SIGINT flag.
pub fn execute_interruptible(
    actions: &[Action],
    wanted: &[ExecPath],
    config: &ExecConfig,
    runner: &dyn Runner,
    progress: &dyn Progress,
    interrupt: &AtomicBool,
) -> Result<ExecResult, ExecError> {
    scheduler::run(actions, wanted, config, runner, progress, interrupt)
}

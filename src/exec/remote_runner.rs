//! Remote execution as a `Runner`: a `Spawn` in; its command executed by an REAPI server
//! (`--remote_executor`) — the action's input root sent as a `Directory` tree with the blobs
//! the server lacks, `Execute` followed to the end — and its outputs, output and exit status
//! written into the exec root as if it had run here, out. Actions tagged `no-remote-exec`,
//! `no-remote`, `local` or `requires-network`, and mnemonics whose `--strategy` is
//! `sandboxed` or `local`, run through the sandbox runner instead; so does everything, with one warning, when the server
//! cannot be reached and `--remote_local_fallback` is given.
//!
//! Without the bytes (`--remote_download_minimal`/`toplevel`), outputs stay in the remote
//! CAS, noted in `RemoteFiles` instead of written; remote-only inputs enter input roots by
//! digest (after `FindMissingBlobs` says the server still has them), and are fetched for a
//! command that runs here.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use prost::Message;

use crate::core::layout::OUT_DIR;
use crate::exec::remote_outputs::{self, DownloadMode, FetchError, RemoteFile, RemoteFiles};
use crate::exec::runner::{Cancel, EXEC_ROOT_VAR, Runner, Spawn, SpawnOutcome, SpawnStatus};
use crate::exec::sandbox::SandboxRunner;
use crate::remote::execution::{Reapi, Upload};
use crate::remote::merkle::{self, InputTree};
use crate::remote::{HashFn, RemoteError, RemoteSpec, proto};

/// Where a mnemonic's commands run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    Remote,
    Sandboxed,
    Local,
}

/// The tags that keep an action on this machine. `requires-network` is among them: a
/// worker's sandbox has no network, and the REAPI has no standard way to ask for one.
pub fn wants_local_execution(requirements: &[String]) -> bool {
    requirements.iter().any(|r| {
        matches!(
            r.as_str(),
            "no-remote-exec" | "no-remote" | "local" | "requires-network"
        )
    })
}

/// How `--remote_executor` was configured.
#[derive(Clone, Debug)]
pub struct RemoteExecSpec {
    pub spec: RemoteSpec,
    /// `--remote_local_fallback`.
    pub local_fallback: bool,
    /// `--remote_default_exec_properties`: the platform of every remote action.
    pub platform: Vec<(String, String)>,
}

/// How many commands ran remotely.
#[derive(Debug, Default)]
pub struct RemoteCounts {
    pub remote: AtomicUsize,
    /// Answered from the server's action cache without running.
    pub cache_hits: AtomicUsize,
}

pub struct RemoteRunner {
    config: RemoteExecSpec,
    /// Connected on first use: a build that runs nothing remotely does not ask.
    reapi: OnceLock<Result<Arc<Reapi>, String>>,
    local: SandboxRunner,
    /// `--strategy=MNEMONIC=...`; the rest use `default`.
    strategies: BTreeMap<String, Strategy>,
    default: Strategy,
    /// SHA-256 digests of files already hashed, by path and stat: an input shared by many
    /// actions is read once.
    digests: Mutex<HashMap<PathBuf, (FileKey, proto::Digest)>>,
    warned: AtomicBool,
    pub counts: RemoteCounts,
    /// Build without the bytes: outputs noted here stay in the remote CAS.
    files: Option<Arc<RemoteFiles>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileKey {
    size: u64,
    mtime: i64,
    mtime_ns: i64,
    ino: u64,
    ctime: i64,
}

impl FileKey {
    fn of(m: &fs::Metadata) -> FileKey {
        FileKey {
            size: m.len(),
            mtime: m.mtime(),
            mtime_ns: m.mtime_nsec(),
            ino: m.ino(),
            ctime: m.ctime(),
        }
    }
}

/// Why a command did not run remotely.
enum RemoteFailure {
    /// The server could not be reached or did not answer: local fallback may help.
    Unreachable(String),
    /// The server answered, and the action could not run there.
    Refused(String),
}

impl RemoteRunner {
    pub fn new(
        config: RemoteExecSpec,
        local: SandboxRunner,
        strategies: BTreeMap<String, Strategy>,
        default: Strategy,
    ) -> RemoteRunner {
        RemoteRunner {
            config,
            reapi: OnceLock::new(),
            local,
            strategies,
            default,
            digests: Mutex::new(HashMap::new()),
            warned: AtomicBool::new(false),
            counts: RemoteCounts::default(),
            files: None,
        }
    }

    /// This runner, leaving outputs in the remote CAS as `files` says (build without the
    /// bytes), and using the remote-only ones as inputs without fetching them.
    pub fn with_remote_files(mut self, files: Option<Arc<RemoteFiles>>) -> RemoteRunner {
        self.files = files;
        self
    }

    /// Fetches what a command about to run here reads, when it is only remote.
    fn fetch_for_local(&self, spawn: &Spawn) -> io::Result<()> {
        let Some(files) = &self.files else {
            return Ok(());
        };
        files
            .fetch_inputs(
                spawn.cwd,
                spawn.action.inputs.flatten().iter().map(|i| i.as_str()),
            )
            .map_err(|e| io::Error::other(e.to_string()))
    }

    /// The remote-only file at exec path `path`, if the build left one there.
    fn remote_only(&self, root: &Path, path: &str) -> Option<RemoteFile> {
        self.files.as_ref()?.remote_only(root, path)
    }

    pub fn local(&self) -> &SandboxRunner {
        &self.local
    }

    fn url(&self) -> String {
        let url = &self.config.spec.url;
        match reqwest::Url::parse(url) {
            Ok(mut u) => {
                let _ = u.set_username("");
                let _ = u.set_password(None);
                u.to_string().trim_end_matches('/').to_owned()
            }
            Err(_) => url.clone(),
        }
    }

    fn reapi(&self) -> Result<&Arc<Reapi>, RemoteFailure> {
        self.reapi
            .get_or_init(|| {
                Reapi::connect(&self.config.spec, true)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| RemoteFailure::Unreachable(e.clone()))
    }

    fn remote(&self, spawn: &Spawn) -> bool {
        if wants_local_execution(&spawn.action.requirements) {
            return false;
        }
        *self
            .strategies
            .get(&spawn.action.mnemonic)
            .unwrap_or(&self.default)
            == Strategy::Remote
    }

    fn digest_file(
        &self,
        hash: HashFn,
        path: &Path,
        meta: &fs::Metadata,
    ) -> io::Result<proto::Digest> {
        let key = FileKey::of(meta);
        if let Some((k, d)) = self
            .digests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
            && *k == key
        {
            return Ok(d.clone());
        }
        let digest = hash.digest(&fs::read(path)?);
        self.digests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_path_buf(), (key, digest.clone()));
        Ok(digest)
    }

    /// Adds the file or directory at exec path `path` (links followed) to the tree.
    fn add_input(
        &self,
        hash: HashFn,
        root: &Path,
        path: &str,
        tree: &mut InputTree,
        uploads: &mut Vec<Upload>,
        remote_inputs: &mut Vec<(String, proto::Digest)>,
    ) -> Result<(), String> {
        let full = root.join(path);
        let meta = match fs::metadata(&full) {
            Ok(meta) => meta,
            // Left in the remote CAS by the action that made it (build without the bytes).
            Err(_) if let Some(file) = self.remote_only(root, path) => {
                tree.add_file(path, file.digest.clone(), file.executable)
                    .map_err(|e| e.to_string())?;
                remote_inputs.push((path.to_owned(), file.digest));
                return Ok(());
            }
            Err(e) => return Err(format!("missing input '{path}': {e}")),
        };
        if !meta.is_dir() {
            let digest = self
                .digest_file(hash, &full, &meta)
                .map_err(|e| format!("cannot read input '{path}': {e}"))?;
            tree.add_file(path, digest.clone(), meta.permissions().mode() & 0o111 != 0)
                .map_err(|e| e.to_string())?;
            uploads.push(Upload::File(digest, full));
            return Ok(());
        }
        tree.add_dir(path).map_err(|e| e.to_string())?;
        for entry in walkdir::WalkDir::new(&full)
            .follow_links(true)
            .sort_by_file_name()
        {
            let entry = match entry {
                Ok(entry) => entry,
                // A runfiles link to a file left in the remote CAS: dangling until fetched.
                Err(e) => {
                    let link = e.path().map(Path::to_path_buf);
                    let remote = link.as_deref().and_then(|link| {
                        let target = remote_outputs::link_target_in(root, link)?;
                        let file = self.remote_only(root, &target)?;
                        let rel = link.strip_prefix(root).ok()?.to_str()?.to_owned();
                        Some((rel, target, file))
                    });
                    let Some((exec_path, target, file)) = remote else {
                        return Err(format!("cannot read input '{path}': {e}"));
                    };
                    tree.add_file(&exec_path, file.digest.clone(), file.executable)
                        .map_err(|e| e.to_string())?;
                    remote_inputs.push((target, file.digest));
                    continue;
                }
            };
            let rel = entry
                .path()
                .strip_prefix(&full)
                .map_err(|e| e.to_string())?;
            if rel.as_os_str().is_empty() {
                continue;
            }
            let exec_path = format!("{path}/{}", rel.to_string_lossy());
            let meta = entry
                .metadata()
                .map_err(|e| format!("cannot read input '{exec_path}': {e}"))?;
            if meta.is_dir() {
                tree.add_dir(&exec_path).map_err(|e| e.to_string())?;
            } else {
                let digest = self
                    .digest_file(hash, entry.path(), &meta)
                    .map_err(|e| format!("cannot read input '{exec_path}': {e}"))?;
                tree.add_file(
                    &exec_path,
                    digest.clone(),
                    meta.permissions().mode() & 0o111 != 0,
                )
                .map_err(|e| e.to_string())?;
                uploads.push(Upload::File(digest, entry.path().to_path_buf()));
            }
        }
        Ok(())
    }

    fn run_remote(&self, spawn: &Spawn) -> Result<SpawnOutcome, RemoteFailure> {
        let reapi = self.reapi()?;
        let hash = reapi.hash_fn();
        let action = spawn.action;
        let root = spawn.cwd;
        let refused = RemoteFailure::Refused;
        let mut tree = InputTree::new();
        let mut uploads = Vec::new();
        let mut remote_inputs = Vec::new();
        for input in &action.inputs.flatten() {
            self.add_input(
                hash,
                root,
                input,
                &mut tree,
                &mut uploads,
                &mut remote_inputs,
            )
            .map_err(refused)?;
            // A tool's runfiles tree travels with it.
            if input.starts_with(OUT_DIR) {
                let runfiles = format!("{input}.runfiles");
                if root.join(&runfiles).is_dir() {
                    self.add_input(
                        hash,
                        root,
                        &runfiles,
                        &mut tree,
                        &mut uploads,
                        &mut remote_inputs,
                    )
                    .map_err(refused)?;
                }
            }
        }
        for dir in &action.scratch_dirs {
            tree.add_dir(dir).map_err(|e| refused(e.to_string()))?;
        }
        if let Some(dir) = spawn.workdir {
            tree.add_dir(dir).map_err(|e| refused(e.to_string()))?;
        }
        let (root_digest, directories) = tree.encode(hash);
        for (digest, bytes) in directories {
            uploads.push(Upload::Bytes(digest, bytes));
        }
        let mut outputs: Vec<String> = action.outputs.iter().map(|o| o.to_string()).collect();
        outputs.sort();
        let platform = platform_of(&self.config.platform, &action.requirements);
        // The local TMPDIR means nothing there: the worker gives each command its own.
        let environment_variables = spawn
            .env
            .iter()
            .filter(|(k, v)| k.as_str() != "TMPDIR" || v.starts_with(EXEC_ROOT_VAR))
            .map(|(name, value)| proto::EnvironmentVariable {
                name: name.clone(),
                value: value.clone(),
            })
            .collect();
        #[allow(deprecated)]
        let command = proto::Command {
            arguments: spawn.argv.to_vec(),
            environment_variables,
            output_paths: outputs.clone(),
            // Which outputs are directories: a worker makes them before the command runs,
            // as forge does locally.
            output_directories: action
                .directory_outputs
                .iter()
                .map(|d| d.to_string())
                .collect(),
            working_directory: spawn.workdir.unwrap_or_default().to_owned(),
            platform: platform.clone(),
            ..Default::default()
        };
        let command_bytes = command.encode_to_vec();
        let command_digest = hash.digest(&command_bytes);
        let remote_action = proto::Action {
            command_digest: Some(command_digest.clone()),
            input_root_digest: Some(root_digest),
            timeout: spawn.timeout.map(|t| proto::ProtoDuration {
                seconds: t.as_secs() as i64,
                nanos: t.subsec_nanos() as i32,
            }),
            do_not_cache: action.requirements.iter().any(|r| r == "no-cache"),
            platform,
            ..Default::default()
        };
        let action_bytes = remote_action.encode_to_vec();
        let action_digest = hash.digest(&action_bytes);
        uploads.push(Upload::Bytes(command_digest, command_bytes));
        uploads.push(Upload::Bytes(action_digest.clone(), action_bytes));
        let unreachable = |e: RemoteError| RemoteFailure::Unreachable(e.to_string());
        let deadline = spawn.timeout.map(|t| t + self.config.spec.timeout);
        let mut skip_cache = !self.config.spec.accept;
        // Outputs stay in the remote CAS (build without the bytes); a directory output is
        // always fetched.
        let without_bytes = self
            .files
            .as_ref()
            .filter(|f| f.mode() != DownloadMode::All && action.directory_outputs.is_empty());
        self.check_remote_inputs(reapi, &remote_inputs)?;
        reapi.upload(uploads.clone()).map_err(unreachable)?;
        let (cached_result, result, timed_out) = loop {
            let mut response = reapi
                .execute(&action_digest, skip_cache, deadline)
                .map_err(unreachable)?
                .response;
            if missing_inputs(&response) {
                // The server lost blobs this build saw it have: ask again, upload, retry once.
                reapi.forget_present();
                self.check_remote_inputs(reapi, &remote_inputs)?;
                reapi.upload(uploads.clone()).map_err(unreachable)?;
                response = reapi
                    .execute(&action_digest, skip_cache, deadline)
                    .map_err(unreachable)?
                    .response;
            }
            let status = response.status.clone().unwrap_or_default();
            let result = match (status.code, response.result) {
                (0, Some(r)) => r,
                (4, Some(r)) => r,
                (code, _) => {
                    let message = if status.message.is_empty() {
                        response.message
                    } else {
                        status.message
                    };
                    return Err(refused(format!(
                        "the remote execution failed ({}): {message}",
                        code_name(code)
                    )));
                }
            };
            // A cached result whose outputs the server evicted since: run the action again
            // rather than leave a dependent without its input.
            if without_bytes.is_some() && response.cached_result && !skip_cache {
                let digests: Vec<proto::Digest> = result
                    .output_files
                    .iter()
                    .filter_map(|f| f.digest.clone())
                    .collect();
                if !reapi.missing(&digests).map_err(unreachable)?.is_empty() {
                    skip_cache = true;
                    continue;
                }
            }
            break (response.cached_result, result, status.code == 4);
        };
        match without_bytes {
            Some(files) if result.output_directories.is_empty() => {
                for f in &result.output_files {
                    let digest = f
                        .digest
                        .clone()
                        .ok_or_else(|| refused(format!("the output '{}' has no digest", f.path)))?;
                    check_output_path(&f.path).map_err(refused)?;
                    reapi.mark_present([digest.clone()]);
                    let file = RemoteFile {
                        digest,
                        executable: f.is_executable,
                        blake3: crate::remote::blake3_of(f),
                    };
                    files
                        .note(root, &f.path, file)
                        .map_err(|e| refused(format!("cannot replace '{}': {e}", f.path)))?;
                }
            }
            _ => self.fetch_outputs(reapi, &result, root).map_err(refused)?,
        }
        let mut output = Vec::new();
        for (raw, digest) in [
            (&result.stdout_raw, &result.stdout_digest),
            (&result.stderr_raw, &result.stderr_digest),
        ] {
            if !raw.is_empty() {
                output.extend_from_slice(raw);
            } else if let Some(d) = digest.as_ref().filter(|d| d.size_bytes > 0) {
                output.extend(reapi.read_one(d).map_err(|e| refused(e.to_string()))?);
            }
        }
        if cached_result {
            self.counts.cache_hits.fetch_add(1, Ordering::Relaxed);
        } else {
            self.counts.remote.fetch_add(1, Ordering::Relaxed);
        }
        let status = match timed_out {
            true => SpawnStatus::TimedOut(spawn.timeout.unwrap_or_default()),
            false => SpawnStatus::Exited(result.exit_code),
        };
        Ok(SpawnOutcome { status, output })
    }

    /// Makes sure the server still has the remote-only inputs of an action; the ones it lost
    /// are named (and remembered, so the actions that made them run again).
    fn check_remote_inputs(
        &self,
        reapi: &Reapi,
        remote_inputs: &[(String, proto::Digest)],
    ) -> Result<(), RemoteFailure> {
        if remote_inputs.is_empty() {
            return Ok(());
        }
        let digests: Vec<proto::Digest> = remote_inputs.iter().map(|(_, d)| d.clone()).collect();
        let missing = reapi
            .missing(&digests)
            .map_err(|e| RemoteFailure::Unreachable(e.to_string()))?;
        if missing.is_empty() {
            return Ok(());
        }
        let lost: Vec<String> = remote_inputs
            .iter()
            .filter(|(_, d)| missing.iter().any(|m| m.hash == d.hash))
            .map(|(p, _)| p.clone())
            .collect();
        if let Some(files) = &self.files {
            files.mark_lost(&lost);
        }
        Err(RemoteFailure::Refused(FetchError::Lost(lost).to_string()))
    }

    /// Writes the result's output files and directories under `root`, every blob checked.
    fn fetch_outputs(
        &self,
        reapi: &Reapi,
        result: &proto::ActionResult,
        root: &Path,
    ) -> Result<(), String> {
        let mut files: Vec<merkle::TreeFile> = Vec::new();
        for f in &result.output_files {
            let digest = f
                .digest
                .clone()
                .ok_or_else(|| format!("the output '{}' has no digest", f.path))?;
            files.push(merkle::TreeFile {
                path: f.path.clone(),
                digest,
                executable: f.is_executable,
            });
        }
        for d in &result.output_directories {
            let digest = d
                .tree_digest
                .as_ref()
                .ok_or_else(|| format!("the output directory '{}' has no tree", d.path))?;
            let tree: proto::Tree = reapi.read_message(digest).map_err(|e| e.to_string())?;
            let (tree_root, directories) = merkle::tree_directories(&tree, reapi.hash_fn());
            let (tree_files, dirs) =
                merkle::flatten(&tree_root, &directories, &d.path).map_err(|e| e.to_string())?;
            fs::create_dir_all(root.join(&d.path)).map_err(|e| e.to_string())?;
            for dir in dirs {
                fs::create_dir_all(root.join(dir)).map_err(|e| e.to_string())?;
            }
            files.extend(tree_files);
        }
        let digests: Vec<proto::Digest> = files.iter().map(|f| f.digest.clone()).collect();
        let blobs = reapi.read(&digests).map_err(|e| e.to_string())?;
        for f in files {
            check_output_path(&f.path)?;
            let dest = root.join(&f.path);
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            let data = blobs
                .get(&f.digest.hash)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let _ = fs::remove_file(&dest);
            fs::write(&dest, data).map_err(|e| format!("cannot write '{}': {e}", f.path))?;
            let mode = if f.executable { 0o755 } else { 0o644 };
            fs::set_permissions(&dest, fs::Permissions::from_mode(mode))
                .map_err(|e| format!("cannot write '{}': {e}", f.path))?;
        }
        Ok(())
    }
}

/// Refuses an output path the server named outside the exec root.
fn check_output_path(path: &str) -> Result<(), String> {
    if path.starts_with('/') || path.split('/').any(|c| c == "..") {
        return Err(format!(
            "the server named an output outside the exec root: '{path}'"
        ));
    }
    Ok(())
}

/// The action's platform: `--remote_default_exec_properties`, with the target's
/// `exec_properties` (from its requirements) replacing properties of the same name; sorted,
/// as the REAPI wants. `None` when there are none.
fn platform_of(defaults: &[(String, String)], requirements: &[String]) -> Option<proto::Platform> {
    let mut properties: BTreeMap<&str, &str> = defaults
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    for r in requirements {
        if let Some((name, value)) = r
            .strip_prefix(crate::core::EXEC_PROPERTY_PREFIX)
            .and_then(|p| p.split_once('='))
        {
            properties.insert(name, value);
        }
    }
    (!properties.is_empty()).then(|| proto::Platform {
        properties: properties
            .into_iter()
            .map(|(name, value)| proto::PlatformProperty {
                name: name.to_owned(),
                value: value.to_owned(),
            })
            .collect(),
    })
}

/// Whether the server answered that inputs were missing from its CAS (`FAILED_PRECONDITION`
/// with a `PreconditionFailure`, or saying so).
fn missing_inputs(response: &proto::ExecuteResponse) -> bool {
    let Some(status) = &response.status else {
        return false;
    };
    status.code == 9
        && (status
            .details
            .iter()
            .any(|d| d.type_url.ends_with("google.rpc.PreconditionFailure"))
            || status.message.to_ascii_lowercase().contains("missing"))
}

/// A gRPC status code's name.
fn code_name(code: i32) -> String {
    let name = match code {
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        _ => return format!("code {code}"),
    };
    name.to_owned()
}

impl Runner for RemoteRunner {
    fn fetches_remote_inputs(&self) -> bool {
        true
    }

    fn run(&self, spawn: &Spawn, cancel: &Cancel) -> io::Result<SpawnOutcome> {
        if !self.remote(spawn) {
            self.fetch_for_local(spawn)?;
            return self.local.run(spawn, cancel);
        }
        match self.run_remote(spawn) {
            Ok(outcome) => Ok(outcome),
            Err(RemoteFailure::Unreachable(e)) if self.config.local_fallback => {
                if !self.warned.swap(true, Ordering::SeqCst) {
                    eprintln!(
                        "WARNING: remote executor {} is unavailable ({e}); running actions \
                         locally (--remote_local_fallback)",
                        self.url()
                    );
                }
                self.fetch_for_local(spawn)?;
                self.local.run(spawn, cancel)
            }
            Err(RemoteFailure::Unreachable(e)) => Err(io::Error::other(format!(
                "remote executor {} is unavailable: {e} (--remote_local_fallback runs such \
                 actions locally)",
                self.url()
            ))),
            Err(RemoteFailure::Refused(e)) => Err(io::Error::other(format!(
                "remote executor {}: {e}",
                self.url()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_properties_override_the_defaults_and_are_sorted() {
        let defaults = vec![
            ("OSFamily".to_owned(), "linux".to_owned()),
            ("pool".to_owned(), "default".to_owned()),
        ];
        let requirements = vec![
            "no-cache".to_owned(),
            "exec-property:pool=large".to_owned(),
            "exec-property:container-image=docker://x".to_owned(),
        ];
        let platform = platform_of(&defaults, &requirements).unwrap();
        let pairs: Vec<(&str, &str)> = platform
            .properties
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("OSFamily", "linux"),
                ("container-image", "docker://x"),
                ("pool", "large")
            ]
        );
        assert_eq!(platform_of(&[], &["local".to_owned()]), None);
    }
}

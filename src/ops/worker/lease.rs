//! One lease: the REAPI `Action` a server handed the worker in; its command run in forge's
//! sandbox over the input root materialised from the CAS, and the `ActionResult` (outputs,
//! output, exit code, metadata; blobs uploaded) or the status saying why it could not run
//! out.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use prost::Message;

use super::blobs::BlobCache;
use crate::core::{Action, ActionKind, ExecPath, Label};
use crate::exec::runner::{Cancel, Runner, Spawn, SpawnStatus};
use crate::exec::sandbox::{self, SandboxConfig, SandboxRunner};
use crate::remote::execution::{MISSING_BLOB, Reapi, Upload};
use crate::remote::merkle::{self, InputTree};
use crate::remote::{HashFn, RemoteError, bots, proto};

/// gRPC status codes a lease may end with.
pub const CODE_OK: i32 = 0;
pub const CODE_DEADLINE_EXCEEDED: i32 = 4;
pub const CODE_FAILED_PRECONDITION: i32 = 9;
pub const CODE_INTERNAL: i32 = 13;

/// How a lease ended: the status, and the result when the command ran.
pub struct Outcome {
    pub status: proto::Status,
    pub result: Option<proto::ActionResult>,
}

impl Outcome {
    fn refused(code: i32, message: String) -> Outcome {
        Outcome {
            status: proto::Status {
                code,
                message,
                details: vec![],
            },
            result: None,
        }
    }
}

/// The platform properties this worker honours: the OS and the machine it runs on.
fn platform_problem(platform: Option<&proto::Platform>) -> Option<String> {
    let isa = match std::env::consts::ARCH {
        "x86_64" => "x86-64",
        "aarch64" => "aarch64",
        other => other,
    };
    for p in platform
        .map(|p| p.properties.as_slice())
        .unwrap_or_default()
    {
        let ok = match p.name.as_str() {
            "OSFamily" => p.value.eq_ignore_ascii_case("linux"),
            "ISA" => p.value.eq_ignore_ascii_case(isa),
            _ => false,
        };
        if !ok {
            return Some(format!(
                "forge worker cannot honour the platform property {}={}: it runs actions in \
                 forge's sandbox on this {isa} Linux machine (no container images, no other OS)",
                p.name, p.value
            ));
        }
    }
    None
}

/// The `Action` a lease's payload carries (itself, or its digest to read).
pub fn action_of(reapi: &Reapi, payload: &proto::Any) -> Result<proto::Action, RemoteError> {
    let name = payload.type_url.rsplit('/').next().unwrap_or_default();
    match name {
        "build.bazel.remote.execution.v2.Action" => proto::Action::decode(payload.value.as_slice())
            .map_err(|e| RemoteError(format!("the lease's Action does not decode: {e}"))),
        "build.bazel.remote.execution.v2.Digest" => {
            let digest = proto::Digest::decode(payload.value.as_slice())
                .map_err(|e| RemoteError(format!("the lease's Digest does not decode: {e}")))?;
            reapi.read_message(&digest)
        }
        other => Err(RemoteError(format!(
            "the lease carries a '{other}', not an REAPI Action"
        ))),
    }
}

/// Runs one action in a fresh exec root under `slot` (a directory of its own), with a
/// sandbox made for it: the sandbox's layers see the exec root as it was when they were
/// mounted, so neither is reused for another action.
pub fn run(
    reapi: &Reapi,
    cache: &BlobCache,
    slot: &Path,
    action: &proto::Action,
    worker_name: &str,
    cancel: &Cancel,
) -> Outcome {
    let exec_root = slot.join("execroot");
    let sandbox = SandboxRunner::new(
        SandboxConfig {
            exec_root: exec_root.clone(),
            workspace_name: "remote".into(),
            roots_dir: sandbox::roots_dir(slot),
            ..SandboxConfig::default()
        },
        Default::default(),
        true,
    );
    let outcome = try_run(
        reapi,
        cache,
        &sandbox,
        &exec_root,
        action,
        worker_name,
        cancel,
    );
    sandbox.cleanup();
    drop(sandbox);
    let _ = crate::core::fs::remove_tree(&exec_root);
    match outcome {
        Ok(outcome) => outcome,
        // As the REAPI asks: a missing input is the client's to upload again.
        Err(e) if e.0.contains(MISSING_BLOB) => Outcome::refused(
            CODE_FAILED_PRECONDITION,
            format!("forge worker {worker_name}: missing input: {e}"),
        ),
        Err(e) => Outcome::refused(CODE_INTERNAL, format!("forge worker {worker_name}: {e}")),
    }
}

fn try_run(
    reapi: &Reapi,
    cache: &BlobCache,
    sandbox: &SandboxRunner,
    exec_root: &Path,
    action: &proto::Action,
    worker_name: &str,
    cancel: &Cancel,
) -> Result<Outcome, RemoteError> {
    let started = SystemTime::now();
    let command_digest = action
        .command_digest
        .as_ref()
        .ok_or_else(|| RemoteError("the Action names no Command".into()))?;
    let command: proto::Command = reapi.read_message(command_digest)?;
    // `Command.platform` is deprecated in favour of `Action.platform`; older clients set it.
    #[allow(deprecated)]
    let command_platform = command.platform.as_ref();
    if let Some(problem) =
        platform_problem(action.platform.as_ref()).or_else(|| platform_problem(command_platform))
    {
        return Ok(Outcome::refused(CODE_FAILED_PRECONDITION, problem));
    }
    if command.arguments.is_empty() {
        return Ok(Outcome::refused(
            CODE_FAILED_PRECONDITION,
            "the Command has no arguments".into(),
        ));
    }
    let root = action
        .input_root_digest
        .clone()
        .ok_or_else(|| RemoteError("the Action names no input root".into()))?;
    let directories = reapi.read_tree(&root)?;
    let (files, dirs) =
        merkle::flatten(&root, &directories, "").map_err(|e| RemoteError(e.to_string()))?;
    crate::core::fs::remove_tree(exec_root).map_err(|e| RemoteError(e.to_string()))?;
    fs::create_dir_all(exec_root)
        .map_err(|e| RemoteError(format!("cannot create '{}': {e}", exec_root.display())))?;
    cache.materialize(reapi, &files, exec_root)?;
    for d in &dirs {
        fs::create_dir_all(exec_root.join(d))
            .map_err(|e| RemoteError(format!("cannot create '{d}': {e}")))?;
    }
    let fetched = SystemTime::now();

    #[allow(deprecated)]
    let (mut outputs, directory_outputs): (Vec<String>, Vec<String>) = {
        let mut all: Vec<String> = command.output_paths.clone();
        all.extend(command.output_files.iter().cloned());
        all.extend(command.output_directories.iter().cloned());
        (all, command.output_directories.clone())
    };
    outputs.sort();
    outputs.dedup();
    // Empty leaf directories of the input root are the command's scratch space (a test's
    // TEST_TMPDIR): writable in the sandbox.
    let scratch: Vec<ExecPath> = dirs
        .iter()
        .filter(|d| {
            !dirs.iter().any(|o| o.starts_with(&format!("{d}/")))
                && !files.iter().any(|f| f.path.starts_with(&format!("{d}/")))
        })
        .map(|d| ExecPath::new(d.clone()))
        .collect();
    // As the REAPI says, the worker makes the outputs' parent directories.
    for out in &outputs {
        if let Some(parent) = exec_root.join(out).parent() {
            fs::create_dir_all(parent)
                .map_err(|e| RemoteError(format!("cannot create the directory of '{out}': {e}")))?;
        }
    }
    for d in &directory_outputs {
        fs::create_dir_all(exec_root.join(d))
            .map_err(|e| RemoteError(format!("cannot create output directory '{d}': {e}")))?;
    }
    let mut inputs: Vec<ExecPath> = files
        .iter()
        .map(|f| ExecPath::new(f.path.clone()))
        .collect();
    inputs.sort();
    let env: BTreeMap<String, String> = command
        .environment_variables
        .iter()
        .map(|v| (v.name.clone(), v.value.clone()))
        .collect();
    let sandbox_action = Action {
        owner: Label {
            repo: String::new(),
            package: "remote".into(),
            name: command_digest.hash.clone(),
        },
        mnemonic: "RemoteAction".into(),
        progress_message: String::new(),
        kind: ActionKind::Run {
            argv: command.arguments.clone(),
        },
        inputs: inputs.into(),
        outputs: outputs.iter().map(|o| ExecPath::new(o.clone())).collect(),
        directory_outputs: directory_outputs
            .iter()
            .map(|o| ExecPath::new(o.clone()))
            .collect(),
        scratch_dirs: scratch,
        env: BTreeMap::new(),
        requirements: vec![],
        discovery: None,
    };
    let timeout = action
        .timeout
        .as_ref()
        .filter(|t| t.seconds > 0 || t.nanos > 0)
        .map(|t| Duration::new(t.seconds.max(0) as u64, t.nanos.max(0) as u32));
    let workdir = Some(command.working_directory.as_str()).filter(|w| !w.is_empty());
    let spawn = Spawn {
        action: &sandbox_action,
        argv: &command.arguments,
        env: &env,
        cwd: exec_root,
        workdir,
        timeout,
        stream: false,
    };
    let ran = sandbox.run(&spawn, cancel);
    let executed = SystemTime::now();
    let outcome = match ran {
        Ok(o) => o,
        Err(e) => {
            return Ok(Outcome::refused(
                CODE_FAILED_PRECONDITION,
                format!(
                    "forge worker {worker_name} cannot run '{}': {e}",
                    command.arguments[0]
                ),
            ));
        }
    };
    let hash = reapi.hash_fn();
    let mut uploads = Vec::new();
    let mut result = proto::ActionResult::default();
    for out in &outputs {
        let full = exec_root.join(out);
        let Ok(meta) = fs::symlink_metadata(&full) else {
            continue;
        };
        if meta.is_dir() {
            let (tree, blobs) = tree_of(&full, hash)?;
            let bytes = tree.encode_to_vec();
            let digest = hash.digest(&bytes);
            uploads.extend(blobs);
            uploads.push(Upload::Bytes(digest.clone(), bytes));
            result.output_directories.push(proto::OutputDirectory {
                path: out.clone(),
                tree_digest: Some(digest),
                ..Default::default()
            });
        } else if meta.is_file() {
            let data = fs::read(&full)
                .map_err(|e| RemoteError(format!("cannot read output '{out}': {e}")))?;
            let digest = hash.digest(&data);
            use std::os::unix::fs::PermissionsExt;
            result.output_files.push(proto::OutputFile {
                path: out.clone(),
                digest: Some(digest.clone()),
                is_executable: meta.permissions().mode() & 0o111 != 0,
                // What a forge client keys dependents with when it leaves the file here.
                node_properties: Some(crate::remote::blake3_property(&data)),
                ..Default::default()
            });
            uploads.push(Upload::Bytes(digest, data));
        }
    }
    let output_digest = hash.digest(&outcome.output);
    uploads.push(Upload::Bytes(output_digest.clone(), outcome.output.clone()));
    result.stdout_digest = Some(output_digest);
    result.exit_code = match outcome.status {
        SpawnStatus::Exited(code) => code,
        SpawnStatus::Signaled(sig) => 128 + sig,
        SpawnStatus::TimedOut(_) => 124,
    };
    // Asked afresh: a blob uploaded for an earlier lease may have been evicted since.
    reapi.upload_asking(uploads)?;
    let stamp = |t: SystemTime| {
        let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        proto::Timestamp {
            seconds: d.as_secs() as i64,
            nanos: d.subsec_nanos() as i32,
        }
    };
    result.execution_metadata = Some(proto::ExecutedActionMetadata {
        worker: worker_name.to_owned(),
        worker_start_timestamp: Some(stamp(started)),
        input_fetch_start_timestamp: Some(stamp(started)),
        input_fetch_completed_timestamp: Some(stamp(fetched)),
        execution_start_timestamp: Some(stamp(fetched)),
        execution_completed_timestamp: Some(stamp(executed)),
        worker_completed_timestamp: Some(stamp(SystemTime::now())),
        ..Default::default()
    });
    let status = match outcome.status {
        SpawnStatus::TimedOut(t) => proto::Status {
            code: CODE_DEADLINE_EXCEEDED,
            message: format!("the command timed out after {} s", t.as_secs_f64()),
            details: vec![],
        },
        _ => proto::Status {
            code: CODE_OK,
            ..Default::default()
        },
    };
    Ok(Outcome {
        status,
        result: Some(result),
    })
}

/// An output directory as a `Tree`, and the uploads of its files and directories.
fn tree_of(dir: &Path, hash: HashFn) -> Result<(proto::Tree, Vec<Upload>), RemoteError> {
    let mut tree = InputTree::new();
    let mut uploads = Vec::new();
    for entry in walkdir::WalkDir::new(dir)
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry = entry.map_err(|e| RemoteError(format!("cannot read an output: {e}")))?;
        let rel = entry
            .path()
            .strip_prefix(dir)
            .map_err(|e| RemoteError(e.to_string()))?
            .to_string_lossy()
            .into_owned();
        if rel.is_empty() {
            continue;
        }
        let t = entry.file_type();
        if t.is_dir() {
            tree.add_dir(&rel).map_err(|e| RemoteError(e.to_string()))?;
        } else if t.is_file() {
            use std::os::unix::fs::PermissionsExt;
            let data = fs::read(entry.path())
                .map_err(|e| RemoteError(format!("cannot read '{rel}': {e}")))?;
            let digest = hash.digest(&data);
            let executable = entry
                .metadata()
                .map(|m| m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false);
            tree.add_file(&rel, digest.clone(), executable)
                .map_err(|e| RemoteError(e.to_string()))?;
            uploads.push(Upload::Bytes(digest, data));
        } else {
            return Err(RemoteError(format!(
                "'{rel}' in an output directory is neither a file nor a directory"
            )));
        }
    }
    let (root_digest, blobs) = tree.encode(hash);
    let mut root = None;
    let mut children = Vec::new();
    for (digest, bytes) in blobs {
        let directory =
            proto::Directory::decode(bytes.as_slice()).map_err(|e| RemoteError(e.to_string()))?;
        if digest == root_digest {
            root = Some(directory);
        } else {
            children.push(directory);
        }
        uploads.push(Upload::Bytes(digest, bytes));
    }
    Ok((proto::Tree { root, children }, uploads))
}

/// A lease's `result`: the `ActionResult` packed as `Any`.
pub fn pack_result(result: &proto::ActionResult) -> proto::Any {
    proto::Any {
        type_url: bots::type_url("build.bazel.remote.execution.v2.ActionResult"),
        value: result.encode_to_vec(),
    }
}

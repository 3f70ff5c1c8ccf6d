//! The build-level remote cache entry: after a successful build, its plan (as the plan store
//! keeps it) and its actions' remote results go to the remote cache under a key over
//! everything the plan was computed from; out, in a fresh output base, that plan and those
//! results, so the build neither loads, analyses nor looks each action up remotely.
//!
//! Two entries, both REAPI `ActionResult`s whose output files are blobs in the CAS:
//! - the *manifest*, under a key over the command (the plan store's key: forge's binary, the
//!   workspace root, patterns, flags that decide the plan, what WORKSPACE declares) and this
//!   host (its name, the environment, the arguments besides the output base): the paths of
//!   the files and directory listings loading read;
//! - the *build*, under a key over the manifest's key and the content of each of those files
//!   and listings as loading read them: the plan store's file for the plan and the action
//!   cache records of its actions whose outputs all stay remote.
//!
//! A fresh output base asks for the manifest, hashes the files it names as they are now, and
//! asks for the build under that key: a changed BUILD or .bzl file, a file added to a globbed
//! directory or a changed flag is another key, so a stale plan is never served. Source files
//! need no place in the key: each action's key is computed from its inputs as they are, and
//! only a record under that key is used. A plan that read anything outside the workspace (an
//! external repository under the output base, the host's C++ toolchain) is neither stored nor
//! looked up: those depend on the output base and on repository rules, which the key does not
//! cover. Everything fetched is checked against its digest, and the plan again by the plan
//! store (its seal, and every file it read).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::analysis::plan::{BuildPlan, PlanCache};
use crate::core::{Digest, ExecPath};
use crate::remote::{KeyKind, RemoteCache};
use crate::workspace::{Workspace, fs_deps};

const MANIFEST: &str = "manifest";
const PLAN: &str = "plan";
const ACTIONS: &str = "actions";

/// The paths loading read, as the manifest lists them.
#[derive(Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Manifest {
    files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
}

/// What the plan store's file says loading read: each path and its content digest then
/// (`None`: absent, unreadable).
#[derive(Deserialize)]
struct StoredDeps {
    deps: DepsView,
}

#[derive(Deserialize)]
struct DepsView {
    files: BTreeMap<PathBuf, SeenView>,
    dirs: BTreeMap<PathBuf, SeenView>,
}

#[derive(Deserialize)]
struct SeenView {
    content: Option<Digest>,
}

/// The key of the manifest: the plan store's key and the facts of this host a plan could
/// depend on without loading noting them.
fn manifest_key(plan_key: &Digest) -> Digest {
    let mut text = format!("forge-build-entry-v1\0{}\0", plan_key.to_hex());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    text.push_str(host.trim());
    text.push('\0');
    // The arguments, besides where the output base is: any flag is part of the key, even
    // one the plan store's key leaves out as not deciding the plan.
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--output_base" || arg == "--output_user_root" {
            args.next();
            continue;
        }
        if arg.starts_with("--output_base=") || arg.starts_with("--output_user_root=") {
            continue;
        }
        text.push_str(&arg);
        text.push('\0');
    }
    // The whole environment: repository rules, toolchain detection and `--action_env` read
    // it, and a variable the key leaves out could change a plan unseen.
    // Less the shell's own bookkeeping, which nothing forge runs reads.
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(name, _)| !matches!(name.as_str(), "OLDPWD" | "SHLVL" | "_"))
        .collect();
    env.sort();
    for (name, value) in env {
        text.push_str(&format!("{name}={value}\0"));
    }
    Digest::of_bytes(text.as_bytes())
}

/// The key of the build: the manifest's key and the content of each path it lists.
fn build_key(
    manifest_key: &Digest,
    files: &[(PathBuf, Option<Digest>)],
    dirs: &[(PathBuf, Option<Digest>)],
) -> Digest {
    let mut hasher = blake3::Hasher::new();
    // v2: the action results as the action cache's own log lines.
    hasher.update(b"forge-build-v2\0");
    hasher.update(&manifest_key.0);
    for (tag, list) in [(b"file\0", files), (b"dir\0\0", dirs)] {
        for (path, content) in list {
            hasher.update(tag);
            hasher.update(path.as_os_str().as_encoded_bytes());
            hasher.update(&[0]);
            match content {
                Some(d) => hasher.update(&[1]).update(&d.0),
                None => hasher.update(&[0]),
            };
        }
    }
    Digest(*hasher.finalize().as_bytes())
}

/// Whether a plan that read `path` may be shared: only what lies in the workspace (and not
/// in an output base inside it) is covered by the key.
fn shareable(workspace: &Workspace, path: &Path) -> bool {
    path.is_absolute()
        && path.starts_with(&workspace.root)
        && !path.starts_with(&workspace.output_base)
        && !path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
}

/// The plan the remote build entry holds for this command and the files as they are now,
/// stored in the plan store under `plan_key` and its action results in the local action
/// cache, with how many results came; `None` when there is none or it does not verify.
pub fn fetch(
    workspace: &Workspace,
    remote: &RemoteCache,
    plan_key: &Digest,
    plans: &PlanCache,
) -> Option<(BuildPlan, usize)> {
    if !remote.accepts() {
        return None;
    }
    let manifest_key = manifest_key(plan_key);
    let manifest = remote.fetch(
        KeyKind::BuildManifest,
        &manifest_key,
        &[ExecPath::new(MANIFEST.to_owned())],
    )?;
    let manifest: Manifest = serde_json::from_slice(&manifest.first()?.data).ok()?;
    if !manifest
        .files
        .iter()
        .chain(&manifest.dirs)
        .all(|p| shareable(workspace, p))
    {
        return None;
    }
    let files: Vec<(PathBuf, Option<Digest>)> = manifest
        .files
        .into_iter()
        .map(|p| {
            // As loading reads them: text, or nothing.
            let content = std::fs::read_to_string(&p)
                .ok()
                .map(|t| Digest::of_bytes(t.as_bytes()));
            (p, content)
        })
        .collect();
    let dirs: Vec<(PathBuf, Option<Digest>)> = manifest
        .dirs
        .into_iter()
        .map(|p| {
            let listing = fs_deps::listing_digest(&p);
            (p, listing)
        })
        .collect();
    let key = build_key(&manifest_key, &files, &dirs);
    let found = remote.fetch(
        KeyKind::Build,
        &key,
        &[
            ExecPath::new(PLAN.to_owned()),
            ExecPath::new(ACTIONS.to_owned()),
        ],
    )?;
    let [plan_file, actions] = <[_; 2]>::try_from(found).ok()?;
    let path = plans.path(plan_key);
    std::fs::create_dir_all(path.parent()?).ok()?;
    crate::core::fs::write_atomic(&path, &plan_file.data).ok()?;
    // The plan store checks it again: its seal and every file it read.
    let Some(plan) = plans.load(plan_key) else {
        let _ = std::fs::remove_file(&path);
        return None;
    };
    let cache_dir = workspace.output_base.join("cache");
    let added = crate::exec::remote_outputs::import_records(&cache_dir, &actions.data).unwrap_or(0);
    Some((plan, added))
}

/// After a successful build whose plan this command computed and stored under `plan_key`:
/// stores the plan and its actions' remote results in the remote cache for other output
/// bases. Nothing when the plan read something outside the workspace, or the remote cache
/// takes no uploads.
pub fn upload(workspace: &Workspace, remote: &RemoteCache, plan_key: &Digest, plan: &BuildPlan) {
    let plans = PlanCache::new(workspace.output_base.join("cache").join("plans"));
    if !remote.uploads() {
        return;
    }
    let Ok(plan_file) = std::fs::read(plans.path(plan_key)) else {
        return;
    };
    let Some(deps_json) = crate::analysis::plan::stored_deps_json(&plan_file) else {
        return;
    };
    let Ok(stored) = serde_json::from_slice::<StoredDeps>(deps_json) else {
        return;
    };
    let deps = stored.deps;
    if !deps
        .files
        .keys()
        .chain(deps.dirs.keys())
        .all(|p| shareable(workspace, p))
    {
        return;
    }
    // Keyed by the contents loading read, not by the files now: an edit during the build
    // must not file this plan under the edited contents.
    let files: Vec<(PathBuf, Option<Digest>)> = deps
        .files
        .into_iter()
        .map(|(p, s)| (p, s.content))
        .collect();
    let dirs: Vec<(PathBuf, Option<Digest>)> =
        deps.dirs.into_iter().map(|(p, s)| (p, s.content)).collect();
    let manifest = Manifest {
        files: files.iter().map(|(p, _)| p.clone()).collect(),
        dirs: dirs.iter().map(|(p, _)| p.clone()).collect(),
    };
    let manifest_key = manifest_key(plan_key);
    let key = build_key(&manifest_key, &files, &dirs);
    let cache_dir = workspace.output_base.join("cache");
    let actions = crate::exec::remote_outputs::export_records(&cache_dir, &plan.actions);
    // The build first: a manifest names only builds that can be found.
    remote.store_bytes(
        KeyKind::Build,
        &key,
        vec![
            (ExecPath::new(PLAN.to_owned()), plan_file),
            (ExecPath::new(ACTIONS.to_owned()), actions),
        ],
    );
    let Ok(manifest) = serde_json::to_vec(&manifest) else {
        return;
    };
    remote.store_bytes(
        KeyKind::BuildManifest,
        &manifest_key,
        vec![(ExecPath::new(MANIFEST.to_owned()), manifest)],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_key_covers_every_path_and_content() {
        let m = Digest::of_bytes(b"m");
        let a = Some(Digest::of_bytes(b"a"));
        let b = Some(Digest::of_bytes(b"b"));
        let base = build_key(&m, &[("/w/BUILD".into(), a)], &[("/w".into(), b)]);
        assert_ne!(
            base,
            build_key(&m, &[("/w/BUILD".into(), b)], &[("/w".into(), b)])
        );
        assert_ne!(
            base,
            build_key(&m, &[("/w/BUILD".into(), a)], &[("/w".into(), a)])
        );
        assert_ne!(
            base,
            build_key(&m, &[("/w/BUILD".into(), None)], &[("/w".into(), b)])
        );
        assert_ne!(
            base,
            build_key(&m, &[("/w/x".into(), a)], &[("/w".into(), b)])
        );
        // A file is not a directory with the same content.
        assert_ne!(
            base,
            build_key(&m, &[], &[("/w/BUILD".into(), a), ("/w".into(), b)])
        );
        let other = Digest::of_bytes(b"n");
        assert_ne!(
            base,
            build_key(&other, &[("/w/BUILD".into(), a)], &[("/w".into(), b)])
        );
        assert_eq!(
            base,
            build_key(&m, &[("/w/BUILD".into(), a)], &[("/w".into(), b)])
        );
    }
}

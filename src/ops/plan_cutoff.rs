//! The package-level early cutoff: a stored plan whose file reads changed, and the results
//! of the packages it was made from, in; the plan out again, with the new reads noted, when
//! evaluating again the packages whose BUILD files changed gives the same results — a
//! comment added to a BUILD file then costs one package's evaluation, not a load and an
//! analysis of the whole build.
//!
//! A plan is a function of what WORKSPACE and the command line say (its key), of what
//! loading read outside any package (WORKSPACE, directory listings of the package walk and
//! of analysis's source-file checks) and of each package's result. So the cutoff holds
//! only when every change is to a BUILD file of a package the plan loaded, read by nothing
//! else, and that package comes out the same. Its result is compared without the targets'
//! BUILD-file lines (a comment moves them; they only show in error messages, and a stored
//! plan is of a command without errors) and with the .bzl files it loaded, by content:
//! analysis runs rule implementations from them, so a .bzl edit is never cut off here (the
//! analysis result store then spares the targets whose results come out the same). A
//! changed directory listing (a new file a glob may match, a new package) is not cut off.
//!
//! What the plan was made from is kept next to it, in `<output_base>/cache/plan-packages/`
//! under the plan's key, tied to the plan by a digest of the plan's reads.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::analysis::plan::{BuildPlan, PlanCache, StoredPlan};
use crate::core::{Digest, PackageId};
use crate::graph::TargetGraph;
use crate::loading::{Loader, Package};
use crate::workspace::Workspace;
use crate::workspace::fs_deps::{self, FsDeps};

/// The first line of a stored account, before the digest of the rest.
const HEADER: &str = "forge-plan-packages 1 ";

/// What a stored plan was made from, besides its key.
#[derive(Serialize, Deserialize)]
pub struct PackageResults {
    /// `FsDeps::digest` of the plan's reads: the account is of that plan only.
    deps: Digest,
    /// The files read outside any package's account.
    direct_files: BTreeSet<PathBuf>,
    /// BUILD file path -> its package and the digest of its result (`result_digest`).
    packages: BTreeMap<PathBuf, (PackageId, Digest)>,
}

impl PackageResults {
    /// The account of a plan made from `graph`'s packages, as `loader` loaded them, with
    /// `direct_files` read besides. A package whose reads were not all noted (no inputs
    /// digest) is left out: a change to its BUILD file is not cut off.
    pub fn of(graph: &TargetGraph, loader: &Loader, direct_files: BTreeSet<PathBuf>) -> Self {
        let packages = graph
            .packages()
            .filter_map(|package| {
                let inputs = loader.package_inputs_digest(&package.id)?;
                let digest = result_digest(package, inputs)?;
                Some((build_file_path(package), (package.id.clone(), digest)))
            })
            .collect();
        PackageResults {
            deps: Digest::default(),
            direct_files,
            packages,
        }
    }
}

fn build_file_path(package: &Package) -> PathBuf {
    package.dir.join(&package.build_file.name)
}

/// A digest of what a package's evaluation decided for analysis: everything in it but the
/// targets' BUILD-file lines, and `inputs`, the digest of the .bzl files it loaded.
fn result_digest(package: &Package, inputs: Digest) -> Option<Digest> {
    let mut hasher = blake3::Hasher::new();
    let mut add = |bytes: Vec<u8>| {
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    };
    add(inputs.0.to_vec());
    add(postcard::to_allocvec(&(
        &package.id,
        &package.dir,
        &package.build_file,
        &package.bzl_files,
        &package.default_visibility,
        &package.features,
    ))
    .ok()?);
    for (name, target) in &package.targets {
        add(postcard::to_allocvec(&(name, &target.label, &target.kind, &target.visibility)).ok()?);
    }
    Some(Digest(*hasher.finalize().as_bytes()))
}

fn dir(workspace: &Workspace) -> PathBuf {
    workspace.output_base.join("cache").join("plan-packages")
}

/// Keeps what the plan stored under `key` with `deps` was made from.
pub fn store(
    workspace: &Workspace,
    key: &Digest,
    deps: &FsDeps,
    results: &mut PackageResults,
) -> std::io::Result<()> {
    results.deps = deps.digest();
    let body = postcard::to_allocvec(results).map_err(std::io::Error::other)?;
    let dir = dir(workspace);
    std::fs::create_dir_all(&dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
    std::io::Write::write_all(&mut tmp, &crate::core::sealed::seal(HEADER, &body))?;
    tmp.persist(dir.join(key.to_hex())).map_err(|e| e.error)?;
    Ok(())
}

fn load(workspace: &Workspace, key: &Digest, deps: &FsDeps) -> Option<PackageResults> {
    let body = crate::core::sealed::read_sealed(&dir(workspace).join(key.to_hex()), HEADER)?;
    let results: PackageResults = postcard::from_bytes(&body).ok()?;
    (results.deps == deps.digest()).then_some(results)
}

/// How a try at reusing a stale plan went.
pub enum Cutoff {
    /// The plan holds: stored again with the new reads. `packages_evaluated` packages were
    /// evaluated to tell.
    Reused {
        plan: Box<BuildPlan>,
        packages_evaluated: usize,
    },
    /// The plan does not hold (or it could not be told). The packages evaluated were
    /// stored in the package store, so planning takes them from there.
    NotReused { packages_evaluated: usize },
}

/// Whether `plan`, stored under `key` with `deps` that no longer all hold, still holds: see
/// the module's comment.
pub fn try_reuse(
    workspace: &Arc<Workspace>,
    fetch: &crate::fetch::FetchOptions,
    plans: &PlanCache,
    key: &Digest,
    plan: StoredPlan,
    deps: &FsDeps,
) -> Cutoff {
    let not_reused = Cutoff::NotReused {
        packages_evaluated: 0,
    };
    let Some(mut results) = load(workspace, key, deps) else {
        return not_reused;
    };
    let review = deps.review();
    if !review.changed_dirs.is_empty() {
        return not_reused;
    }
    let mut changed: Vec<&PackageId> = Vec::new();
    for path in &review.changed_files {
        match results.packages.get(path) {
            Some((id, _)) if !results.direct_files.contains(path) => changed.push(id),
            _ => return not_reused,
        }
    }
    let Ok(loader) = Loader::with_fetch_options(workspace.clone(), fetch) else {
        return not_reused;
    };
    let loader = loader.with_package_store(super::plan::package_store(workspace));
    fs_deps::start_recording();
    let same = changed.iter().all(|id| {
        let Ok(package) = loader.load_package(id) else {
            return false;
        };
        let now = loader
            .package_inputs_digest(id)
            .and_then(|inputs| result_digest(&package, inputs));
        now.is_some()
            && now
                == results
                    .packages
                    .get(&build_file_path(&package))
                    .map(|r| r.1)
    });
    let read = fs_deps::take_recording();
    let packages_evaluated = loader.packages_evaluated();
    // What was evaluated serves the next load whether or not the plan holds.
    let _ = loader.flush_package_store();
    // Decoded only now: a cutoff that fails costs no decoding.
    let Some(plan) = same.then(|| plan.decode()).flatten() else {
        return Cutoff::NotReused { packages_evaluated };
    };
    let mut now = review.refreshed;
    now.overlay(&read);
    // A plan that cannot be stored again costs the next command this check once more.
    if plans.store(key, &now, &plan).is_ok() {
        let _ = store(workspace, key, &now, &mut results);
    }
    Cutoff::Reused {
        plan: Box::new(plan),
        packages_evaluated,
    }
}

//! Loading: BUILD and .bzl files in, plain-Rust `Package`s of `Target`s out.
//!
//! Each BUILD file is parsed in Bazel's BUILD dialect, its `load()`s are resolved to labels
//! and evaluated first (each .bzl once per command, memoized, with load cycles reported as
//! their chain), then the BUILD file runs with the prelude's rules in scope. Rule calls record
//! targets as plain data; no Starlark value leaves this module. `Loader` is `Sync`, so
//! packages load in parallel.
//!
//! Where each step lives: `package` (a BUILD file into a `Package`), `load_graph` (a file's
//! `load()`s, checked for cycles at parse level, then evaluated), `bzl` (one .bzl file,
//! evaluated once), `repo_dirs` (which directory a package is in, fetching external
//! repositories on demand), `diagnostics` (Starlark and fetch errors as `Diagnostic`s).
//! The Starlark API BUILD and .bzl files see: `declarations` (`rule()`, `provider()`),
//! `rule_value` and `rule_call` (a rule, and a call of it checked into a `Target`),
//! `attr_module` and `attrs` (`attr.*()` and attribute coercion), `builtins` and `glob`,
//! `select`, `depset`, `label_value`, `providers`.

mod aspect_value;
mod attr_module;
pub use attr_module::TRANSITION_CFG;
mod attrs;
mod bound;
mod build_setting;
mod builtins;
mod bzl;
mod computed_default;
mod context;
mod declarations;
mod depset;
mod diagnostics;
mod dialect;
#[cfg(test)]
mod fuzz;
mod glob;
mod label_value;
mod late_bound;
mod load_graph;
mod package;
mod package_store;
mod package_walk;
mod prelude;
mod providers;
mod repo_dirs;
mod rule_attrs;
pub use rule_attrs::Attrs;
mod rule_call;
mod rule_value;
mod select;
mod target;
mod toolchain_type;
mod transition_value;
pub use transition_value::{Transition, TransitionDecl};
mod unsupported;
pub use package_store::PackageStore;
pub use unsupported::Unsupported;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use starlark::environment::{FrozenModule, Globals, GlobalsBuilder, LibraryExtension};
use starlark::values::OwnedFrozenValue;

pub use aspect_value::{AspectDecl, FrozenAspect};
pub use attrs::{AllowFiles, AttrKind, AttrSpec};
pub use build_setting::{BuildSetting, SettingKind};
pub use context::{EvalContext, FileKind};
pub use depset::{Depset, iterate_files, make_depset};
pub use label_value::LabelValue;
pub use providers::{ProviderCallable, ProviderInstance, ProviderInstanceGen, provider_callable};
pub use rule_value::{FrozenRuleCallable, RuleDecl};
pub use target::*;
pub use toolchain_type::{
    ToolchainRequest, ToolchainTypeRequirement as ToolchainTypeRequirementValue,
};

use crate::core::{Diagnostic, Label, PackageId};
use crate::workspace::Workspace;
use bzl::BzlResult;
use load_graph::BzlLoads;

/// The names Bazel gives BUILD files, in order of preference.
pub const BUILD_FILE_NAMES: [&str; 2] = ["BUILD.bazel", "BUILD"];

pub fn is_build_file_name(name: &str) -> bool {
    BUILD_FILE_NAMES.contains(&name)
}

/// Why a package could not be loaded.
#[derive(Debug)]
pub enum PackageError {
    /// There is no BUILD file: the caller knows who asked and says so.
    NoSuchPackage(Diagnostic),
    /// The BUILD file or a .bzl it loads has errors; the messages are complete.
    Failed(Vec<Diagnostic>),
}

/// Loads packages of one workspace. Shared across threads for the length of one command.
pub struct Loader {
    workspace: Arc<Workspace>,
    /// External repositories, fetched when a package of theirs is first needed.
    fetcher: crate::fetch::Fetcher,
    /// Why a repository could not be fetched, for the messages about its packages.
    fetch_errors: Mutex<HashMap<String, Arc<crate::fetch::RepoFetchError>>>,
    globals: Globals,
    prelude: Vec<FrozenModule>,
    /// .bzl label -> its evaluation, computed once.
    bzl: Mutex<HashMap<Label, Arc<OnceLock<BzlResult>>>>,
    /// .bzl label -> the labels it loads, for cycle detection before evaluation.
    bzl_loads: Mutex<HashMap<Label, BzlLoads>>,
    /// .bzl label -> what reading it saw, for the accounts of the packages that load it.
    bzl_reads: Mutex<HashMap<Label, crate::workspace::fs_deps::FsDeps>>,
    /// Earlier commands' loading results, reused while what they read is unchanged.
    package_store: Option<PackageStore>,
    /// How many packages this command evaluated (rather than took from the store).
    packages_evaluated: std::sync::atomic::AtomicUsize,
    /// Package -> a digest of the .bzl files its loading read (`package_inputs_digest`).
    package_inputs: Mutex<HashMap<PackageId, crate::core::Digest>>,
    /// Package -> the name of the BUILD file the package walk of a recursive pattern saw in
    /// its directory's listing, so that loading it need not look for it again.
    walked_build_files: Mutex<HashMap<PackageId, &'static str>>,
}

fn globals() -> Globals {
    GlobalsBuilder::extended_by(&[
        LibraryExtension::StructType,
        LibraryExtension::Json,
        LibraryExtension::Typing,
    ])
    .with(builtins::build_globals)
    .with(select::select_globals)
    .with(depset::depset_globals)
    .with(label_value::label_globals)
    .with(late_bound::late_bound_globals)
    .with(aspect_value::aspect_globals)
    .with(unsupported::unsupported_globals)
    .with(transition_value::transition_globals)
    .with(declarations::declaration_globals)
    .with_namespace("attr", attr_module::attr_module)
    .with_namespace("config", |b| {
        build_setting::config_module(b);
        build_setting::config_unsupported(b);
    })
    .with(|b| {
        b.set(
            "DefaultInfo",
            ProviderCallable::builtin(
                "DefaultInfo",
                &[
                    "files",
                    "runfiles",
                    "data_runfiles",
                    "default_runfiles",
                    "executable",
                ],
            ),
        );
        b.set(
            "OutputGroupInfo",
            ProviderCallable::builtin("OutputGroupInfo", &[]),
        );
    })
    .build()
}

impl Loader {
    pub fn new(workspace: Arc<Workspace>) -> Result<Loader, Diagnostic> {
        Loader::with_fetch_options(workspace, &crate::fetch::FetchOptions::default())
    }

    /// A loader that fetches external repositories with `options`.
    pub fn with_fetch_options(
        workspace: Arc<Workspace>,
        options: &crate::fetch::FetchOptions,
    ) -> Result<Loader, Diagnostic> {
        let globals = globals();
        let prelude = prelude::load(&globals)
            .map_err(|e| Diagnostic::new(format!("internal error in forge's prelude:\n{e}")))?;
        Ok(Loader {
            fetcher: crate::fetch::Fetcher::new(workspace.clone(), options),
            fetch_errors: Mutex::new(HashMap::new()),
            workspace,
            globals,
            prelude,
            bzl: Mutex::new(HashMap::new()),
            bzl_loads: Mutex::new(HashMap::new()),
            bzl_reads: Mutex::new(HashMap::new()),
            package_store: None,
            packages_evaluated: std::sync::atomic::AtomicUsize::new(0),
            package_inputs: Mutex::new(HashMap::new()),
            walked_build_files: Mutex::new(HashMap::new()),
        })
    }

    /// This loader, reusing (and filling) `store`: a package whose BUILD file, .bzl files
    /// and glob listings are unchanged is taken from it instead of being evaluated.
    pub fn with_package_store(mut self, store: PackageStore) -> Loader {
        self.package_store = Some(store);
        self
    }

    /// Makes the packages this loader stored visible to later commands (a loader left to
    /// the process exit is never dropped, which would do it too).
    pub fn flush_package_store(&self) -> Result<(), String> {
        self.package_store
            .as_ref()
            .map_or(Ok(()), PackageStore::flush)
    }

    /// How many packages were evaluated so far (those taken from the package store do not
    /// count): Bazel's "N packages loaded".
    pub fn packages_evaluated(&self) -> usize {
        self.packages_evaluated
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A digest of everything besides its BUILD file that decided a loaded package: the
    /// .bzl files it loaded, transitively, by content (so its rules' definitions). None
    /// when its loading's reads were not all noted. Analysis keys stored results on it.
    pub fn package_inputs_digest(&self, id: &PackageId) -> Option<crate::core::Digest> {
        self.package_inputs.lock().unwrap().get(id).copied()
    }

    fn note_package_inputs(&self, id: &PackageId, digest: crate::core::Digest) {
        self.package_inputs
            .lock()
            .unwrap()
            .insert(id.clone(), digest);
    }

    pub fn workspace(&self) -> &Workspace {
        &self.workspace
    }

    /// The rule `class` defined in `defined_in` (a .bzl label, or a prelude file), as the
    /// frozen value analysis calls. Private names count: `_sum = rule(...)` reached through
    /// a public macro is found as Bazel finds it.
    pub fn rule_callable(
        &self,
        defined_in: &str,
        class: &str,
    ) -> Result<OwnedFrozenValue, Diagnostic> {
        let missing = || Diagnostic::new(format!("rule '{class}' not found in {defined_in}"));
        if defined_in.starts_with(&format!("@{}//", prelude::REPO)) {
            return self
                .prelude
                .iter()
                .find_map(|m| m.get_any_visibility(class).ok().map(|(v, _)| v))
                .ok_or_else(missing);
        }
        let label = Label::parse(defined_in, &PackageId::default())
            .map_err(|e| Diagnostic::new(e.to_string()))?;
        self.load_bzl(&label)?
            .get_any_visibility(class)
            .map(|(rule, _)| rule)
            .map_err(|_| missing())
    }
}

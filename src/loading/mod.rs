//! Loading: BUILD and .bzl files in, plain-Rust `Package`s of `Target`s out.
//!
//! Each BUILD file is parsed in Bazel's BUILD dialect, its `load()`s are resolved to labels
//! and evaluated first (each .bzl once per command, memoized, with load cycles reported as
//! their chain), then the BUILD file runs with the prelude's rules in scope. Rule calls record
//! targets as plain data; no Starlark value leaves this module. `Loader` is `Sync`, so
//! packages load in parallel.

mod attrs;
use crate::workspace::fs_deps;
mod builtins;
mod context;
mod dialect;
#[cfg(test)]
mod fuzz;
mod glob;
mod prelude;
mod rules;
mod select;
mod target;
mod values;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use starlark::environment::{FrozenModule, Globals, GlobalsBuilder, LibraryExtension, Module};
use starlark::eval::{Evaluator, FileLoader};
use starlark::syntax::AstModule;
use starlark::values::OwnedFrozenValue;

pub use attrs::{AllowFiles, AttrKind, AttrSpec};
pub use context::{EvalContext, FileKind};
pub use rules::{FrozenRuleCallable, RuleDecl};
pub use target::*;
pub use values::{
    Depset, LabelValue, ProviderCallable, ProviderInstance, ProviderInstanceGen, iterate_files,
    make_depset, provider_callable,
};

use crate::core::diag::did_you_mean;
use crate::core::{Diagnostic, Label, Location, PackageId};
use crate::workspace::Workspace;
use context::PackageBuilder;

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

/// A Starlark error as a diagnostic. The crate renders it with its snippet; the leading
/// `error: ` is dropped because forge prefixes every error with `ERROR: ` already.
fn starlark_error(e: &starlark::Error) -> Diagnostic {
    let text = e.to_string();
    Diagnostic::new(
        text.strip_prefix("error: ")
            .unwrap_or(&text)
            .trim_end()
            .to_owned(),
    )
}

/// What evaluating one .bzl file produced, shared by every package that loads it.
type BzlResult = Result<FrozenModule, Diagnostic>;

/// The `load()`s of one .bzl file, with where each is written; or why it did not parse.
type BzlLoads = Result<Vec<(Label, Location)>, Diagnostic>;

/// A file's loaded modules, keyed by the string its `load()` wrote, and every .bzl label
/// reached from it.
type Dependencies = (HashMap<String, FrozenModule>, Vec<Label>);

/// Loads packages of one workspace. Shared across threads for the length of one command.
pub struct Loader {
    workspace: Arc<Workspace>,
    /// External repositories, fetched when a package of theirs is first needed.
    fetcher: crate::fetch::Fetcher,
    /// Why a repository could not be fetched, for the messages about its packages.
    fetch_errors: Mutex<HashMap<String, String>>,
    globals: Globals,
    prelude: Vec<FrozenModule>,
    /// .bzl label -> its evaluation, computed once.
    bzl: Mutex<HashMap<Label, Arc<OnceLock<BzlResult>>>>,
    /// .bzl label -> the labels it loads, for cycle detection before evaluation.
    bzl_loads: Mutex<HashMap<Label, BzlLoads>>,
}

fn globals() -> Globals {
    GlobalsBuilder::extended_by(&[
        LibraryExtension::StructType,
        LibraryExtension::Json,
        LibraryExtension::Typing,
    ])
    .with(builtins::build_globals)
    .with(select::select_globals)
    .with(values::value_globals)
    .with(rules::declaration_globals)
    .with_namespace("attr", attrs::attr_module)
    .with(|b| {
        b.set(
            "DefaultInfo",
            values::ProviderCallable::builtin(
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
            values::ProviderCallable::builtin("OutputGroupInfo", &[]),
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
        })
    }

    pub fn workspace(&self) -> &Workspace {
        &self.workspace
    }

    /// The rule `class` defined in `defined_in` (a .bzl label, or a prelude file), as the
    /// frozen value analysis calls.
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
                .find_map(|m| m.get(class).ok())
                .ok_or_else(missing);
        }
        let label = Label::parse(defined_in, &PackageId::default())
            .map_err(|e| Diagnostic::new(e.to_string()))?;
        self.load_bzl(&label)?.get(class).map_err(|_| missing())
    }

    /// The directory holding a repository's files.
    fn repo_root(&self, repo: &str) -> Option<PathBuf> {
        if repo.is_empty() || repo == self.workspace.name {
            return Some(self.workspace.root.clone());
        }
        match self.fetcher.repo_root(repo)? {
            Ok(dir) => Some(dir),
            Err(e) => {
                self.fetch_errors
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(repo.to_owned(), e);
                None
            }
        }
    }

    /// Fetches the repositories `repos` (for `forge fetch`); the errors.
    pub fn fetch(&self, repos: &[String]) -> Vec<String> {
        repos
            .iter()
            .filter_map(|r| self.fetcher.repo_root(r)?.err())
            .collect()
    }

    /// The BUILD text of a package of a repository forge provides itself (`@platforms`),
    /// unless the workspace itself has that name.
    fn builtin_build_file(&self, id: &PackageId) -> Option<&'static str> {
        if self.repo_root(&id.repo).is_some() {
            return None;
        }
        prelude::builtin_build_file(id)
    }

    fn is_builtin_repo(&self, repo: &str) -> bool {
        self.repo_root(repo).is_none() && prelude::is_builtin_repo(repo)
    }

    fn package_dir(&self, id: &PackageId) -> Option<PathBuf> {
        self.repo_root(&id.repo).map(|r| r.join(&id.package))
    }

    /// How a file is named in messages: workspace-relative for the main repository.
    pub fn display_path(&self, file: &Label) -> String {
        let rel = if file.package.is_empty() {
            file.name.clone()
        } else {
            format!("{}/{}", file.package, file.name)
        };
        if file.repo.is_empty() {
            rel
        } else {
            format!("external/{}/{rel}", file.repo)
        }
    }

    /// How a package directory is named in messages.
    pub fn display_dir(&self, id: &PackageId) -> String {
        if self.is_builtin_repo(&id.repo) {
            return format!(
                "forge's built-in repository '@{}' (its packages: {})",
                id.repo,
                prelude::builtin_packages(&id.repo).join(", ")
            );
        }
        if let Some(error) = self
            .fetch_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id.repo)
        {
            return format!(
                "repository '@{}', which could not be fetched: {error}",
                id.repo
            );
        }
        match self.package_dir(id) {
            Some(dir) => format!("'{}'", dir.display()),
            None => format!(
                "repository '@{}', which is not defined in the WORKSPACE file",
                id.repo
            ),
        }
    }

    fn build_file(&self, id: &PackageId) -> Option<(Label, PathBuf)> {
        let dir = self.package_dir(id)?;
        fs_deps::listed(&dir);
        BUILD_FILE_NAMES.iter().find_map(|name| {
            let path = dir.join(name);
            path.is_file().then(|| (id.label(name), path))
        })
    }

    /// A package near `id` that exists, for "did you mean" hints.
    pub fn close_package(&self, id: &PackageId) -> Option<String> {
        let parent = Path::new(&id.package).parent()?;
        let dir = self.package_dir(&PackageId::new(&id.repo, parent.to_str()?))?;
        let siblings: Vec<String> = std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .filter(|e| BUILD_FILE_NAMES.iter().any(|b| e.path().join(b).is_file()))
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .collect();
        let last = Path::new(&id.package).file_name()?.to_str()?;
        let close = did_you_mean(last, siblings.iter().map(String::as_str))?;
        let pkg = parent.join(close);
        Some(PackageId::new(&id.repo, pkg.to_str()?).to_string())
    }

    /// Every package at or below `prefix`, sorted. Directories named `forge-*` that are
    /// symlinks (the output links) and dot-directories are skipped, as are `.bazelignore`d ones.
    pub fn packages_under(&self, prefix: &PackageId) -> Result<Vec<PackageId>, Diagnostic> {
        if self.is_builtin_repo(&prefix.repo) {
            return Ok(prelude::builtin_packages(&prefix.repo)
                .into_iter()
                .filter(|p| crate::core::label::package_is_within(p, &prefix.package))
                .map(|p| PackageId::new(&prefix.repo, p))
                .collect());
        }
        let Some(root) = self.repo_root(&prefix.repo) else {
            return Err(Diagnostic::new(format!(
                "no such repository '@{}': it is not defined in the WORKSPACE file",
                prefix.repo
            )));
        };
        let ignored = self.workspace.ignored_dirs();
        let start = root.join(&prefix.package);
        let mut found = Vec::new();
        let walker = walkdir::WalkDir::new(&start)
            .follow_links(false)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| {
                if e.depth() == 0 {
                    return true;
                }
                let name = e.file_name().to_string_lossy();
                e.file_type().is_dir()
                    && !name.starts_with('.')
                    && !ignored.iter().any(|i| e.path() == root.join(i))
            });
        for entry in walker.flatten() {
            let dir = entry.path();
            fs_deps::listed(dir);
            if BUILD_FILE_NAMES.iter().any(|b| dir.join(b).is_file()) {
                let rel = dir.strip_prefix(&root).unwrap_or(dir);
                let package = rel
                    .to_string_lossy()
                    .replace(std::path::MAIN_SEPARATOR, "/");
                found.push(PackageId::new(&prefix.repo, &package));
            }
        }
        Ok(found)
    }

    /// Loads one package. The errors are complete messages, ready to print.
    pub fn load_package(&self, id: &PackageId) -> Result<Package, PackageError> {
        let failed = |mut errors: Vec<Diagnostic>| {
            errors.push(Diagnostic::new(format!(
                "error loading package '{id}': the BUILD file has errors (see above)"
            )));
            PackageError::Failed(errors)
        };
        let (build_label, source, dir) = match self.builtin_build_file(id) {
            Some(source) => (
                id.label(BUILD_FILE_NAMES[0]),
                source.to_owned(),
                // Built-in repositories have no files; globs there find nothing.
                self.workspace
                    .output_base
                    .join("external")
                    .join(&id.repo)
                    .join(&id.package),
            ),
            None => {
                let Some((build_label, path)) = self.build_file(id) else {
                    let hint = if self.is_builtin_repo(&id.repo) {
                        ""
                    } else {
                        ". Add a BUILD file to a directory to mark it as a package"
                    };
                    return Err(PackageError::NoSuchPackage(Diagnostic::new(format!(
                        "no such package '{id}': BUILD file not found in {}{hint}",
                        self.display_dir(id)
                    ))));
                };
                let source = fs_deps::read_to_string(&path).map_err(|e| {
                    failed(vec![Diagnostic::new(format!(
                        "cannot read {}: {e}",
                        path.display()
                    ))])
                })?;
                let dir = self
                    .package_dir(id)
                    .expect("a package with a BUILD file has a directory");
                (build_label, source, dir)
            }
        };
        let display = self.display_path(&build_label);
        crate::core::nesting::check(&display, &source).map_err(|d| failed(vec![d]))?;
        let ast = AstModule::parse(&display, source, &dialect::build())
            .map_err(|e| failed(vec![starlark_error(&e)]))?;
        if let Some((span, kind)) = dialect::find_star_argument(&ast) {
            let loc = rules::location_of(&span);
            return Err(failed(vec![Diagnostic::at(
                &loc,
                format!(
                    "{kind} is not allowed in BUILD files: list the arguments explicitly, or move this call into a macro in a .bzl file"
                ),
            )]));
        }
        let (modules, bzl_files) = self.load_dependencies(&ast, id, &[]).map_err(failed)?;

        let builder = Module::with_temp_heap(|module| -> Result<PackageBuilder, starlark::Error> {
            for p in &self.prelude {
                module.import_public_symbols(p);
            }
            let loader = MapLoader(&modules);
            let ctx = EvalContext {
                base: id.clone(),
                file: build_label.clone(),
                kind: FileKind::Build(RefCell::new(PackageBuilder {
                    id: id.clone(),
                    dir: dir.clone(),
                    targets: BTreeMap::new(),
                    default_visibility: None,
                    features: Vec::new(),
                    package_called: false,
                    referenced: Vec::new(),
                    attr_defaults: Box::default(),
                })),
            };
            {
                let mut eval = Evaluator::new(&module);
                eval.set_loader(&loader);
                eval.extra = Some(&ctx);
                eval.eval_module(ast, &self.globals)?;
            }
            match ctx.kind {
                FileKind::Build(b) => Ok(b.into_inner()),
                FileKind::Bzl => unreachable!("a BUILD file evaluates with a package"),
            }
        })
        .map_err(|e| failed(vec![starlark_error(&e)]))?;
        Ok(finish_package(builder, build_label, bzl_files))
    }

    /// Resolves and evaluates the `load()`s of a file. Returns the modules by the string the
    /// file wrote, and every .bzl label reached (for `buildfiles()`).
    fn load_dependencies(
        &self,
        ast: &AstModule,
        base: &PackageId,
        chain: &[Label],
    ) -> Result<Dependencies, Vec<Diagnostic>> {
        let mut modules = HashMap::new();
        let mut all = Vec::new();
        for load in ast.loads() {
            let loc = rules::location_of(&load.span);
            let label = Label::parse(load.module_id, base)
                .map_err(|e| vec![Diagnostic::at(&loc, format!("in load(): {e}"))])?;
            if !label.name.ends_with(".bzl") {
                return Err(vec![Diagnostic::at(
                    &loc,
                    format!(
                        "in load(): '{label}' is not a .bzl file; only .bzl files can be loaded"
                    ),
                )]);
            }
            if let Some(cycle) = self.find_load_cycle(&label, chain, &loc) {
                return Err(vec![cycle]);
            }
            let module = self.load_bzl(&label).map_err(|d| {
                vec![
                    d,
                    Diagnostic::at(
                        &loc,
                        format!("cannot load '{label}': it has errors (see above)"),
                    ),
                ]
            })?;
            all.push(label.clone());
            all.extend(self.transitive_bzl(&label));
            modules.insert(load.module_id.to_owned(), module);
        }
        all.sort();
        all.dedup();
        Ok((modules, all))
    }

    /// The .bzl files `label` loads, directly or not (from the parse-level memo).
    fn transitive_bzl(&self, label: &Label) -> Vec<Label> {
        let mut out = Vec::new();
        let mut stack = vec![label.clone()];
        while let Some(l) = stack.pop() {
            if let Some(Ok(loads)) = self.bzl_loads.lock().unwrap().get(&l) {
                for (dep, _) in loads {
                    if !out.contains(dep) {
                        out.push(dep.clone());
                        stack.push(dep.clone());
                    }
                }
            }
        }
        out
    }

    /// The labels a .bzl file loads, from its parse (memoized). Parse errors are returned.
    fn bzl_loads_of(&self, label: &Label) -> BzlLoads {
        if let Some(r) = self.bzl_loads.lock().unwrap().get(label) {
            return r.clone();
        }
        let result = self.parse_bzl(label).map(|(ast, _)| {
            ast.loads()
                .iter()
                .filter_map(|l| {
                    let loc = rules::location_of(&l.span);
                    Label::parse(l.module_id, &label.package_id())
                        .ok()
                        .map(|d| (d, loc))
                })
                .collect::<Vec<_>>()
        });
        self.bzl_loads
            .lock()
            .unwrap()
            .insert(label.clone(), result.clone());
        result
    }

    fn parse_bzl(&self, label: &Label) -> Result<(AstModule, String), Diagnostic> {
        let display = self.display_path(label);
        let path = self
            .package_dir(&label.package_id())
            .map(|d| d.join(&label.name))
            .filter(|p| p.is_file())
            .ok_or_else(|| {
                Diagnostic::new(format!(
                    "cannot load '{label}': file '{display}' does not exist{}",
                    if self.build_file(&label.package_id()).is_none() {
                        format!(
                            " (and '{}' is not a package: add a BUILD file next to it)",
                            label.package_id()
                        )
                    } else {
                        String::new()
                    }
                ))
            })?;
        let source = fs_deps::read_to_string(&path)
            .map_err(|e| Diagnostic::new(format!("cannot read {}: {e}", path.display())))?;
        crate::core::nesting::check(&display, &source)?;
        let ast =
            AstModule::parse(&display, source, &dialect::bzl()).map_err(|e| starlark_error(&e))?;
        Ok((ast, display))
    }

    /// Walks the load graph below `label` (parse only) and reports the first cycle as its
    /// chain. Checking before evaluating keeps parallel evaluation free of deadlocks.
    fn find_load_cycle(&self, label: &Label, chain: &[Label], at: &Location) -> Option<Diagnostic> {
        let mut path: Vec<Label> = chain.to_vec();
        let mut visited = std::collections::HashSet::new();
        self.cycle_dfs(label, &mut path, &mut visited).map(|ring| {
            let text = ring.iter().map(Label::to_string).collect::<Vec<_>>().join("\n  -> ");
            Diagnostic::at(at, format!("cycle in load() statements:\n  {text}\nbreak the cycle by moving the shared definitions into a .bzl file that neither loads"))
        })
    }

    fn cycle_dfs(
        &self,
        label: &Label,
        path: &mut Vec<Label>,
        visited: &mut std::collections::HashSet<Label>,
    ) -> Option<Vec<Label>> {
        if let Some(pos) = path.iter().position(|l| l == label) {
            let mut ring = path[pos..].to_vec();
            ring.push(label.clone());
            return Some(ring);
        }
        if !visited.insert(label.clone()) {
            return None;
        }
        let loads = self.bzl_loads_of(label).ok()?;
        path.push(label.clone());
        for (dep, _) in loads {
            if let Some(ring) = self.cycle_dfs(&dep, path, visited) {
                return Some(ring);
            }
        }
        path.pop();
        None
    }

    /// Evaluates a .bzl file once per command; later callers get the same frozen module.
    fn load_bzl(&self, label: &Label) -> BzlResult {
        let cell = self
            .bzl
            .lock()
            .unwrap()
            .entry(label.clone())
            .or_default()
            .clone();
        cell.get_or_init(|| self.evaluate_bzl(label)).clone()
    }

    fn evaluate_bzl(&self, label: &Label) -> BzlResult {
        let (ast, _) = self.parse_bzl(label)?;
        let (modules, _) = self
            .load_dependencies(&ast, &label.package_id(), std::slice::from_ref(label))
            .map_err(|ds| {
                Diagnostic::new(
                    ds.into_iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join("\n"),
                )
            })?;
        Module::with_temp_heap(|module| -> starlark::Result<FrozenModule> {
            for p in &self.prelude {
                module.import_public_symbols(p);
            }
            let loader = MapLoader(&modules);
            let ctx = EvalContext {
                base: label.package_id(),
                file: label.clone(),
                kind: FileKind::Bzl,
            };
            {
                let mut eval = Evaluator::new(&module);
                eval.set_loader(&loader);
                eval.extra = Some(&ctx);
                eval.eval_module(ast, &self.globals)?;
            }
            Ok(module.freeze()?)
        })
        .map_err(|e| starlark_error(&e))
    }
}

/// Serves `load()` from modules evaluated beforehand.
struct MapLoader<'a>(&'a HashMap<String, FrozenModule>);

impl FileLoader for MapLoader<'_> {
    fn load(&self, path: &str) -> starlark::Result<FrozenModule> {
        self.0.get(path).cloned().ok_or_else(|| {
            starlark::Error::new_native(anyhow::anyhow!(
                "internal error: '{path}' was not preloaded"
            ))
        })
    }
}

/// Adds source-file targets for same-package labels no rule declared (Bazel does the same).
fn finish_package(mut b: PackageBuilder, build_file: Label, bzl_files: Vec<Label>) -> Package {
    b.referenced.push((
        build_file.clone(),
        Location {
            file: String::new(),
            line: 0,
            column: 0,
        },
    ));
    for (label, location) in std::mem::take(&mut b.referenced) {
        b.targets
            .entry(label.name.clone())
            .or_insert_with(|| Target {
                label: label.clone(),
                kind: TargetKind::SourceFile,
                location,
                // Files nobody exported keep Bazel 4's legacy default: visible to all.
                visibility: vec![Label {
                    repo: String::new(),
                    package: "visibility".into(),
                    name: "public".into(),
                }],
            });
    }
    Package {
        id: b.id,
        dir: b.dir,
        build_file,
        bzl_files,
        targets: b.targets,
        default_visibility: b.default_visibility.unwrap_or_default(),
        features: b.features,
    }
}

//! Evaluating the WORKSPACE file: its text in; the workspace name, the repositories it
//! declares, the toolchains and execution platforms it registers and its `bind`s out.
//!
//! Bazel evaluates WORKSPACE in chunks, each `load()` seeing only the repositories declared
//! above it. Forge gets the same from the evaluator, which runs top-level statements in
//! order and resolves a `load()` when it reaches it: a load of `@repo//:deps.bzl` looks
//! `@repo` up among what has been declared so far and has it fetched then (through the
//! `RepositoryFetcher` that `ops` injects; `fetch` lies below this module). Loads of
//! `@bazel_tools//tools/build_defs/repo:*.bzl` are served here (`bazel_tools`).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use starlark::any::ProvidesStaticType;
use starlark::environment::{FrozenModule, Globals, GlobalsBuilder, LibraryExtension, Module};
use starlark::eval::{Evaluator, FileLoader};
use starlark::syntax::{AstModule, Dialect};

use super::{RepositoryFetcher, WorkspaceSite, bazel_tools, declarations, label, native, repos};
use crate::core::{Diagnostic, Failure, Label, PackageId};

/// What evaluating WORKSPACE declared.
#[derive(Debug, Default)]
pub(super) struct Declared {
    pub name: Option<String>,
    pub repositories: repos::Repos,
    pub toolchains: Vec<String>,
    pub execution_platforms: Vec<String>,
    pub binds: BTreeMap<String, String>,
}

/// The state WORKSPACE functions add to, in `Evaluator::extra`.
#[derive(Debug, ProvidesStaticType, Default)]
pub(super) struct WorkspaceContext {
    pub declared: RefCell<Declared>,
    /// Set by the first `load()`: from then on a repository may not be declared again with a
    /// rule Bazel implements natively (`local_repository`), as in Bazel.
    pub after_load: Cell<bool>,
    /// The package of each file evaluated, by the name its locations carry, for `Label()`.
    pub files: RefCell<HashMap<String, PackageId>>,
}

impl WorkspaceContext {
    /// The label `text` names in a file of package `base` (a `load()`, `Label()`): relative
    /// labels read against `base`, `base`'s repository's `repo_mapping` applied, the main
    /// repository's own name (`@<workspace name>`) read as the main repository.
    pub fn resolve(&self, text: &str, base: &PackageId) -> Result<Label, String> {
        let mut label = Label::parse(text, base).map_err(|e| e.to_string())?;
        let declared = self.declared.borrow();
        if let Some(rule) = declared.repositories.get(&base.repo)
            && let Some(to) = rule.repo_mapping.get(&format!("@{}", label.repo))
        {
            label.repo = to.trim_start_matches('@').to_owned();
        }
        if declared.name.as_deref() == Some(label.repo.as_str()) {
            label.repo.clear();
        }
        Ok(label)
    }

    /// The package of the file being evaluated at the top of `eval`'s call stack.
    pub fn caller_package(&self, eval: &Evaluator) -> PackageId {
        eval.call_stack_top_location()
            .and_then(|l| self.files.borrow().get(l.filename()).cloned())
            .unwrap_or_default()
    }

    pub fn from_eval<'a>(eval: &'a Evaluator<'_, '_, '_>) -> anyhow::Result<&'a WorkspaceContext> {
        eval.extra
            .and_then(|e| e.downcast_ref::<WorkspaceContext>())
            .ok_or_else(|| anyhow::anyhow!("internal error: no workspace context"))
    }
}

/// The globals of WORKSPACE and of the .bzl files it loads.
fn globals() -> Globals {
    GlobalsBuilder::extended_by(&[
        LibraryExtension::StructType,
        LibraryExtension::Print,
        LibraryExtension::Json,
    ])
    .with(super::workspace_globals)
    .with(repos::repository_rules)
    .with(repos::local_rules)
    .with(native::registrations)
    .with(native::refused)
    .with_namespace("native", |b| {
        native::refused(b);
        repos::local_rules(b);
        native::registrations(b);
        native::existing_rules(b);
        b.set("bazel_version", native::BEHAVES_AS_BAZEL);
    })
    .with(declarations::declaring_builtins)
    .with(label::label_function)
    .build()
}

/// Loads for WORKSPACE and its .bzl files; each file is evaluated once.
struct Loads<'a> {
    site: &'a WorkspaceSite,
    globals: &'a Globals,
    ctx: &'a WorkspaceContext,
    fetcher: &'a dyn RepositoryFetcher,
    modules: RefCell<HashMap<Label, FrozenModule>>,
    /// Labels being loaded, to report a cycle instead of recursing forever.
    active: RefCell<Vec<Label>>,
}

/// The loads of one file, whose relative labels are read against `base`.
struct FileLoads<'a, 'b> {
    loads: &'b Loads<'a>,
    base: PackageId,
}

fn error(message: String) -> starlark::Error {
    starlark::Error::new_native(anyhow::anyhow!(message))
}

impl FileLoader for FileLoads<'_, '_> {
    fn load(&self, path: &str) -> starlark::Result<FrozenModule> {
        let loads = self.loads;
        loads.ctx.after_load.set(true);
        let label = loads.ctx.resolve(path, &self.base).map_err(error)?;
        if let Some(module) = loads.modules.borrow().get(&label) {
            return Ok(module.clone());
        }
        if label.repo == bazel_tools::REPO {
            let module = bazel_tools::module(&label, loads.globals, loads.ctx)?;
            loads.modules.borrow_mut().insert(label, module.clone());
            return Ok(module);
        }
        let file = loads.file_of(&label, path).map_err(error)?;
        if loads.active.borrow().contains(&label) {
            return Err(error(format!("load cycle through '{path}'")));
        }
        let source = std::fs::read_to_string(&file)
            .map_err(|e| error(format!("cannot load '{path}' ({}): {e}", file.display())))?;
        let display = if label.repo.is_empty() {
            format!("{}", Path::new(&label.package).join(&label.name).display())
        } else {
            label.to_string()
        };
        crate::core::nesting::check(&display, &source).map_err(|d| error(d.to_string()))?;
        let ast = AstModule::parse(&display, source, &Dialect::Standard)?;
        loads
            .ctx
            .files
            .borrow_mut()
            .insert(display, label.package_id());
        loads.active.borrow_mut().push(label.clone());
        let file_loads = FileLoads {
            loads,
            base: label.package_id(),
        };
        let result = Module::with_temp_heap(|module| -> starlark::Result<_> {
            {
                let mut eval = Evaluator::new(&module);
                eval.extra = Some(loads.ctx);
                eval.set_loader(&file_loads);
                eval.eval_module(ast, loads.globals)?;
            }
            Ok(module.freeze()?)
        });
        loads.active.borrow_mut().pop();
        let module = result?;
        loads.modules.borrow_mut().insert(label, module.clone());
        Ok(module)
    }
}

impl Loads<'_> {
    /// The file behind `label`, fetching its repository if it is an external one declared
    /// above the load.
    fn file_of(&self, label: &Label, text: &str) -> Result<std::path::PathBuf, String> {
        let rel = Path::new(&label.package).join(&label.name);
        if label.repo.is_empty() {
            return Ok(self.site.root.join(rel));
        }
        let declared = self.ctx.declared.borrow();
        let rule = declared.repositories.get(&label.repo).ok_or_else(|| {
            format!(
                "cannot load '{text}': repository '@{}' is not declared above this load. \
                     A load in WORKSPACE sees only the repositories declared before it: move \
                     the declaration of '@{}' (http_archive, local_repository, ...) above the \
                     load, or into a macro called before it",
                label.repo, label.repo
            )
        })?;
        let dir = self
            .fetcher
            .repository_dir(self.site, rule, &declared.repositories)?;
        Ok(dir.join(rel))
    }
}

/// Runs the WORKSPACE file of `site`, fetching (through `fetcher`) the repositories whose
/// .bzl files it loads.
pub(super) fn evaluate_workspace_file(
    site: &WorkspaceSite,
    fetcher: &dyn RepositoryFetcher,
) -> Result<Declared, Failure> {
    let file = &site.workspace_file;
    let display = file
        .strip_prefix(&site.root)
        .unwrap_or(file)
        .to_string_lossy()
        .into_owned();
    let source = std::fs::read_to_string(file)
        .map_err(|e| Failure::failed(format!("cannot read {}: {e}", file.display())))?;
    crate::core::nesting::check(&display, &source).map_err(Failure::from)?;
    let ast = AstModule::parse(
        &display,
        source,
        &Dialect {
            enable_def: false,
            ..Dialect::Standard
        },
    )
    .map_err(|e| Failure::from(Diagnostic::new(e.to_string())))?;
    let globals = globals();
    let ctx = WorkspaceContext::default();
    let loads = Loads {
        site,
        globals: &globals,
        ctx: &ctx,
        fetcher,
        modules: RefCell::new(HashMap::new()),
        active: RefCell::new(Vec::new()),
    };
    let file_loads = FileLoads {
        loads: &loads,
        base: PackageId::default(),
    };
    Module::with_temp_heap(|module| -> starlark::Result<()> {
        let mut eval = Evaluator::new(&module);
        eval.extra = Some(&ctx);
        eval.set_loader(&file_loads);
        eval.eval_module(ast, &globals)?;
        Ok(())
    })
    .map_err(|e| Failure::from(Diagnostic::new(e.to_string())))?;
    drop(loads);
    Ok(ctx.declared.into_inner())
}

#[cfg(test)]
mod tests {
    use super::super::{OutputBaseOptions, Workspace};

    fn workspace_of(files: &[(&str, &str)]) -> Result<Workspace, crate::core::Failure> {
        let dir = tempfile::tempdir().expect("temp dir");
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let options = OutputBaseOptions {
            output_base: Some(dir.path().join("out")),
            output_user_root: None,
        };
        Workspace::discover(dir.path(), &options)
    }

    #[test]
    fn registrations_and_binds_are_recorded_in_order() {
        let ws = workspace_of(&[
            (
                "WORKSPACE",
                "register_toolchains('//tc:a', '@tools//tc:all')\n\
                 load('//:m.bzl', 'm')\nm()\n\
                 register_execution_platforms('//platforms:b')\n\
                 bind(name = 'zlib', actual = '@net_zlib//:zlib')\n",
            ),
            (
                "m.bzl",
                "def m():\n    native.register_toolchains('//tc:...')\n    \
                 native.register_execution_platforms('//platforms:a')\n",
            ),
        ])
        .expect("workspace");
        assert_eq!(ws.toolchains, ["//tc:a", "@tools//tc:all", "//tc:..."]);
        assert_eq!(ws.execution_platforms, ["//platforms:a", "//platforms:b"]);
        assert_eq!(
            ws.binds.get("zlib").map(String::as_str),
            Some("@net_zlib//:zlib")
        );
        // The plan cache's identity sees them.
        let fewer = workspace_of(&[("WORKSPACE", "register_toolchains('//tc:a')\n")]).unwrap();
        assert_ne!(ws.declarations_json(), fewer.declarations_json());
        assert!(ws.declarations_json().contains("//platforms:b"));
    }

    #[test]
    fn before_any_load_the_last_declaration_of_a_repository_counts() {
        let ws = workspace_of(&[(
            "WORKSPACE",
            "local_repository(name = 'r', path = 'first')\n\
             local_repository(name = 'r', path = 'second')\n",
        )])
        .expect("workspace");
        assert_eq!(
            ws.repositories["r"].kind,
            super::repos::RepoKind::Local {
                path: "second".to_owned()
            }
        );
        assert_eq!(ws.repositories["r"].location, "WORKSPACE:2:1");
    }

    #[test]
    fn after_a_load_http_archive_may_be_redeclared_as_in_bazel_but_local_repository_not() {
        let ws = workspace_of(&[(
            "WORKSPACE",
            "load('@bazel_tools//tools/build_defs/repo:http.bzl', 'http_archive')\n\
             http_archive(name = 'h', url = 'https://example.com/1.tgz')\n\
             http_archive(name = 'h', url = 'https://example.com/2.tgz')\n",
        )])
        .expect("workspace");
        assert_eq!(ws.repositories["h"].location, "WORKSPACE:3:1");
        let failure = workspace_of(&[(
            "WORKSPACE",
            "load('@bazel_tools//tools/build_defs/repo:http.bzl', 'http_archive')\n\
             local_repository(name = 'l', path = 'a')\n\
             local_repository(name = 'l', path = 'b')\n",
        )])
        .expect_err("redefined");
        let message = &failure.errors[0].message;
        assert!(
            message.contains("cannot redefine repository 'l'"),
            "{message}"
        );
    }

    #[test]
    fn workspace_functions_forge_lacks_are_refused_by_name() {
        for text in [
            "android_sdk_repository(name = 'androidsdk')\n",
            "load('//:m.bzl', 'm')\nm()\n",
        ] {
            let failure = workspace_of(&[
                ("WORKSPACE", text),
                (
                    "m.bzl",
                    "def m():\n    native.android_ndk_repository(name = 'ndk')\n",
                ),
            ])
            .expect_err("refused");
            let message = &failure.errors[0].message;
            assert!(
                message.contains("forge does not support `android_"),
                "{message}"
            );
        }
    }

    #[test]
    fn maybe_declares_only_what_is_not_declared_yet() {
        let ws = workspace_of(&[(
            "WORKSPACE",
            "load('@bazel_tools//tools/build_defs/repo:utils.bzl', 'maybe')\n\
             load('@bazel_tools//tools/build_defs/repo:local.bzl', 'local_repository')\n\
             local_repository(name = 'a', path = 'mine')\n\
             maybe(local_repository, name = 'a', path = 'theirs')\n\
             maybe(local_repository, name = 'b', path = 'theirs')\n",
        )])
        .expect("workspace");
        // Reported where maybe() was called, not inside utils.bzl.
        assert_eq!(ws.repositories["b"].location, "WORKSPACE:5:1");
        let path = |name: &str| match &ws.repositories[name].kind {
            super::repos::RepoKind::Local { path } => path.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(path("a"), "mine");
        assert_eq!(path("b"), "theirs");
    }

    #[test]
    fn an_external_load_without_a_fetcher_is_refused_by_name() {
        let failure = workspace_of(&[(
            "WORKSPACE",
            "local_repository(name = 'dep', path = 'dep')\nload('@dep//:deps.bzl', 'x')\n",
        )])
        .expect_err("no fetching");
        let message = failure.errors[0].message.clone();
        assert!(
            message.contains("'@dep', which this command does not fetch"),
            "{message}"
        );
        assert!(message.contains("WORKSPACE:2:1"), "{message}");
    }
}

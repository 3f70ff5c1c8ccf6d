//! The workspace: the current directory in, the workspace root, its name (from `WORKSPACE`)
//! and the output base out.
//!
//! The root is the nearest directory upward holding `WORKSPACE` or `WORKSPACE.bazel`. The
//! WORKSPACE file is evaluated with Starlark for `workspace(name = ...)` and the repository
//! rules that declare external repositories (`repos`); `load()` works there too, including
//! `@bazel_tools//tools/build_defs/repo:http.bzl`.

pub mod fs_deps;
pub mod repos;

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use starlark::any::ProvidesStaticType;
use starlark::environment::{GlobalsBuilder, LibraryExtension, Module};
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::syntax::{AstModule, Dialect};
use starlark::values::none::NoneType;

use crate::core::{Diagnostic, Failure, PackageId};

/// Bazel's name for the main repository when `workspace()` gives none.
pub const DEFAULT_NAME: &str = "__main__";

pub const WORKSPACE_FILE_NAMES: [&str; 2] = ["WORKSPACE.bazel", "WORKSPACE"];

#[derive(Debug, Clone)]
pub struct Workspace {
    /// Absolute path of the directory holding the WORKSPACE file.
    pub root: PathBuf,
    pub workspace_file: PathBuf,
    /// `workspace(name = ...)`, or `__main__`.
    pub name: String,
    /// Where outputs, caches and external repositories of this workspace live.
    pub output_base: PathBuf,
    /// The external repositories the WORKSPACE file declares, by name.
    pub repositories: repos::Repos,
}

/// Where the output base goes, from the startup options.
#[derive(Debug, Clone, Default)]
pub struct OutputBaseOptions {
    pub output_base: Option<PathBuf>,
    pub output_user_root: Option<PathBuf>,
}

impl Workspace {
    /// Finds the workspace enclosing `cwd` and evaluates its WORKSPACE file.
    pub fn discover(cwd: &Path, options: &OutputBaseOptions) -> Result<Workspace, Failure> {
        let (root, workspace_file) = find_root(cwd).ok_or_else(|| {
            Failure::usage(format!(
                "the current directory '{}' is not inside a workspace: no WORKSPACE or \
                 WORKSPACE.bazel file found here or in any parent directory. Run forge from \
                 inside a workspace, or create an empty WORKSPACE file at its root",
                cwd.display()
            ))
        })?;
        let (name, repositories) = evaluate_workspace_file(&workspace_file, &root)?;
        let output_base = match &options.output_base {
            Some(p) => absolute(cwd, p),
            None => {
                let user_root = match &options.output_user_root {
                    Some(p) => absolute(cwd, p),
                    None => default_user_root(),
                };
                let digest = Sha256::digest(root.to_string_lossy().as_bytes());
                let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
                user_root.join(hex)
            }
        };
        Ok(Workspace {
            root,
            workspace_file,
            name,
            output_base,
            repositories,
        })
    }

    /// `<output_base>/execroot/<name>`, where actions will run.
    pub fn execution_root(&self) -> PathBuf {
        self.output_base.join("execroot").join(&self.name)
    }

    /// The package of `cwd` (the directory, whether or not it has a BUILD file), against
    /// which relative patterns like `:all` and `...` are read.
    pub fn package_of(&self, cwd: &Path) -> PackageId {
        let rel = cwd.strip_prefix(&self.root).unwrap_or(Path::new(""));
        PackageId::new(
            "",
            &rel.to_string_lossy()
                .replace(std::path::MAIN_SEPARATOR, "/"),
        )
    }

    /// Directories listed in `.bazelignore` (or `.forgeignore`), relative to the root.
    pub fn ignored_dirs(&self) -> Vec<PathBuf> {
        [".forgeignore", ".bazelignore"]
            .iter()
            .filter_map(|f| fs_deps::read_to_string(&self.root.join(f)).ok())
            .flat_map(|text| {
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(|l| PathBuf::from(l.trim_end_matches('/')))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

fn absolute(cwd: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p)
    }
}

/// `$XDG_CACHE_HOME/forge` or `~/.cache/forge`, as Bazel uses `~/.cache/bazel`.
fn default_user_root() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("forge")
}

fn find_root(cwd: &Path) -> Option<(PathBuf, PathBuf)> {
    cwd.ancestors().find_map(|dir| {
        WORKSPACE_FILE_NAMES
            .iter()
            .map(|n| dir.join(n))
            .find(|f| f.is_file())
            .map(|f| (dir.to_path_buf(), f))
    })
}

#[derive(Debug, ProvidesStaticType, Default)]
struct WorkspaceContext {
    name: RefCell<Option<String>>,
    repos: RefCell<repos::Repos>,
}

#[starlark_module]
fn workspace_globals(builder: &mut GlobalsBuilder) {
    /// Names the main repository, as `@name` and in runfiles paths.
    fn workspace<'v>(
        #[starlark(require = named)] name: String,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let ctx = eval
            .extra
            .and_then(|e| e.downcast_ref::<WorkspaceContext>())
            .ok_or_else(|| anyhow::anyhow!("internal error: no workspace context"))?;
        crate::core::label::validate_repo(&name).map_err(|e| anyhow::Error::msg(e.reason))?;
        if name.is_empty() {
            anyhow::bail!("workspace(): name must not be empty");
        }
        if ctx.name.borrow().is_some() {
            anyhow::bail!("workspace() can only be called once, at the top of the WORKSPACE file");
        }
        *ctx.name.borrow_mut() = Some(name);
        Ok(NoneType)
    }
}

/// The module Bazel workspaces load the HTTP repository rules from.
const HTTP_BZL: &str = "@bazel_tools//tools/build_defs/repo:http.bzl";

/// Loads for the WORKSPACE file: Bazel's `http.bzl`, and `.bzl` files of the main
/// repository (macros that declare repositories), evaluated with the same globals.
struct WorkspaceLoader<'a> {
    root: &'a Path,
    globals: &'a starlark::environment::Globals,
    ctx: &'a WorkspaceContext,
    /// Labels being loaded, to report a cycle instead of recursing forever.
    active: RefCell<Vec<String>>,
}

impl starlark::eval::FileLoader for WorkspaceLoader<'_> {
    fn load(&self, path: &str) -> starlark::Result<starlark::environment::FrozenModule> {
        let error = |m: String| starlark::Error::new_native(anyhow::anyhow!(m));
        if path == HTTP_BZL || path == "@bazel_tools//tools/build_defs/repo:local.bzl" {
            return Module::with_temp_heap(|module| {
                for (name, value) in self.globals.iter() {
                    if [
                        "http_archive",
                        "http_file",
                        "local_repository",
                        "new_local_repository",
                    ]
                    .contains(&name)
                    {
                        module.set(name, value.to_value());
                    }
                }
                Ok(module.freeze()?)
            });
        }
        let rel = match path.strip_prefix("//").or_else(|| path.strip_prefix("@//")) {
            Some(rel) => rel.replacen(':', "/", 1),
            None => {
                return Err(error(format!(
                    "WORKSPACE can load only main-repository .bzl files and {HTTP_BZL}, not '{path}'"
                )));
            }
        };
        let rel = rel.trim_start_matches('/').to_owned();
        if self.active.borrow().contains(&rel) {
            return Err(error(format!("load cycle through '{path}'")));
        }
        let file = self.root.join(&rel);
        let source = std::fs::read_to_string(&file)
            .map_err(|e| error(format!("cannot load '{path}': {e}")))?;
        crate::core::nesting::check(&rel, &source).map_err(|d| error(d.to_string()))?;
        let ast = AstModule::parse(&rel, source, &Dialect::Standard)?;
        self.active.borrow_mut().push(rel);
        let result = Module::with_temp_heap(|module| -> starlark::Result<_> {
            {
                let mut eval = Evaluator::new(&module);
                eval.extra = Some(self.ctx);
                eval.set_loader(self);
                eval.eval_module(ast, self.globals)?;
            }
            Ok(module.freeze()?)
        });
        self.active.borrow_mut().pop();
        result
    }
}

/// Runs the WORKSPACE file; returns the workspace name and the repositories it declares.
fn evaluate_workspace_file(file: &Path, root: &Path) -> Result<(String, repos::Repos), Failure> {
    let display = file
        .strip_prefix(root)
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
    let globals =
        GlobalsBuilder::extended_by(&[LibraryExtension::StructType, LibraryExtension::Print])
            .with(workspace_globals)
            .with(repos::repository_rules)
            .build();
    let ctx = WorkspaceContext::default();
    let loader = WorkspaceLoader {
        root,
        globals: &globals,
        ctx: &ctx,
        active: RefCell::new(Vec::new()),
    };
    Module::with_temp_heap(|module| -> starlark::Result<()> {
        let mut eval = Evaluator::new(&module);
        eval.extra = Some(&ctx);
        eval.set_loader(&loader);
        eval.eval_module(ast, &globals)?;
        Ok(())
    })
    .map_err(|e| Failure::from(Diagnostic::new(e.to_string())))?;
    let name = ctx
        .name
        .into_inner()
        .unwrap_or_else(|| DEFAULT_NAME.to_owned());
    Ok((name, ctx.repos.into_inner()))
}

//! The workspace: the current directory in, the workspace root, its name (from `WORKSPACE`)
//! and the output base out.
//!
//! The root is the nearest directory upward holding `WORKSPACE` or `WORKSPACE.bazel`. The
//! WORKSPACE file is evaluated with Starlark (`evaluate`) for `workspace(name = ...)`, the
//! repository rules that declare external repositories (`repos`), the toolchains and
//! platforms it registers and its `bind`s (`native`); its `load()`s reach the main
//! repository's .bzl files, those of the external repositories declared above them (fetched
//! through a `RepositoryFetcher`) and `@bazel_tools//tools/build_defs/repo:*.bzl`
//! (`bazel_tools`).

mod bazel_tools;
mod declarations;
mod evaluate;
pub mod fs_deps;
pub mod label;
mod native;
pub mod repos;
pub mod unsupported;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};
use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::none::NoneType;

use crate::core::{Failure, PackageId};

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
    /// `register_toolchains(...)` patterns, in the order registered.
    pub toolchains: Vec<String>,
    /// `register_execution_platforms(...)` patterns, in the order registered.
    pub execution_platforms: Vec<String>,
    /// `bind(name, actual)`: `//external:<name>` -> `actual`.
    pub binds: BTreeMap<String, String>,
}

/// Where a workspace is, before its WORKSPACE file is evaluated.
#[derive(Debug, Clone)]
pub struct WorkspaceSite {
    /// Absolute path of the directory holding the WORKSPACE file.
    pub root: PathBuf,
    pub workspace_file: PathBuf,
    pub output_base: PathBuf,
}

/// What evaluating WORKSPACE needs from the layer below that fetches (`fetch`, injected by
/// `ops`): the directory of a declared repository whose .bzl file WORKSPACE loads.
pub trait RepositoryFetcher {
    /// The directory of `rule`'s repository, fetched if it is not there yet; the error is
    /// the whole message. `declared` are the repositories declared so far, which labels in
    /// `rule` (its `build_file`, `patches`) may name.
    fn repository_dir(
        &self,
        site: &WorkspaceSite,
        rule: &repos::RepoRule,
        declared: &repos::Repos,
    ) -> Result<PathBuf, String>;
}

/// For commands (and tests) that must not fetch: a load from an external repository is
/// refused.
pub struct NoFetching;

impl RepositoryFetcher for NoFetching {
    fn repository_dir(
        &self,
        _site: &WorkspaceSite,
        rule: &repos::RepoRule,
        _declared: &repos::Repos,
    ) -> Result<PathBuf, String> {
        Err(format!(
            "WORKSPACE loads a .bzl file of '@{}', which this command does not fetch",
            rule.name
        ))
    }
}

/// What WORKSPACE declares, as the plan cache's identity holds it.
#[derive(Serialize)]
struct DeclarationsView<'a> {
    name: &'a str,
    repositories: &'a repos::Repos,
    toolchains: &'a [String],
    execution_platforms: &'a [String],
    binds: &'a BTreeMap<String, String>,
}

/// Where the output base goes, from the startup options.
#[derive(Debug, Clone, Default)]
pub struct OutputBaseOptions {
    pub output_base: Option<PathBuf>,
    pub output_user_root: Option<PathBuf>,
}

impl Workspace {
    /// Finds the workspace enclosing `cwd` and evaluates its WORKSPACE file, refusing loads
    /// of external repositories' .bzl files (commands use `locate` and `evaluate` with a
    /// fetcher: `ops::fetch::discover_workspace`).
    pub fn discover(cwd: &Path, options: &OutputBaseOptions) -> Result<Workspace, Failure> {
        Workspace::evaluate(Workspace::locate(cwd, options)?, &NoFetching)
    }

    /// Evaluates the WORKSPACE file of `site`, fetching the repositories whose .bzl files it
    /// loads with `fetcher`.
    pub fn evaluate(
        site: WorkspaceSite,
        fetcher: &dyn RepositoryFetcher,
    ) -> Result<Workspace, Failure> {
        let declared = evaluate::evaluate_workspace_file(&site, fetcher)?;
        Ok(Workspace {
            root: site.root,
            workspace_file: site.workspace_file,
            name: declared.name.unwrap_or_else(|| DEFAULT_NAME.to_owned()),
            output_base: site.output_base,
            repositories: declared.repositories,
            toolchains: declared.toolchains,
            execution_platforms: declared.execution_platforms,
            binds: declared.binds,
        })
    }

    /// What WORKSPACE declares (name, repositories, registrations, binds) as JSON: equal
    /// texts mean equal declarations.
    pub fn declarations_json(&self) -> String {
        serde_json::to_string(&DeclarationsView {
            name: &self.name,
            repositories: &self.repositories,
            toolchains: &self.toolchains,
            execution_platforms: &self.execution_platforms,
            binds: &self.binds,
        })
        .unwrap_or_default()
    }

    /// Each repository's `repo_mapping`, without the `@`s, for label parsing.
    pub fn repo_mappings(&self) -> crate::core::label::RepoMappings {
        self.repositories
            .values()
            .filter(|r| !r.repo_mapping.is_empty())
            .map(|r| {
                let mapping = r
                    .repo_mapping
                    .iter()
                    .map(|(from, to)| {
                        (
                            from.trim_start_matches('@').to_owned(),
                            to.trim_start_matches('@').to_owned(),
                        )
                    })
                    .collect();
                (r.name.clone(), mapping)
            })
            .collect()
    }

    /// Finds the workspace enclosing `cwd` and where its output base is.
    pub fn locate(cwd: &Path, options: &OutputBaseOptions) -> Result<WorkspaceSite, Failure> {
        let (root, workspace_file) = find_root(cwd).ok_or_else(|| {
            Failure::usage(format!(
                "the current directory '{}' is not inside a workspace: no WORKSPACE or \
                 WORKSPACE.bazel file found here or in any parent directory. Run forge from \
                 inside a workspace, or create an empty WORKSPACE file at its root",
                cwd.display()
            ))
        })?;
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
        Ok(WorkspaceSite {
            root,
            workspace_file,
            output_base,
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

/// The workspace enclosing `cwd` (its root and WORKSPACE file), without evaluating anything:
/// the command line needs it to read `%workspace%/.bazelrc`.
pub fn find_root(cwd: &Path) -> Option<(PathBuf, PathBuf)> {
    cwd.ancestors().find_map(|dir| {
        WORKSPACE_FILE_NAMES
            .iter()
            .map(|n| dir.join(n))
            .find(|f| f.is_file())
            .map(|f| (dir.to_path_buf(), f))
    })
}

#[starlark_module]
pub(crate) fn workspace_globals(builder: &mut GlobalsBuilder) {
    /// Names the main repository, as `@name` and in runfiles paths.
    fn workspace<'v>(
        #[starlark(require = named)] name: String,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let ctx = evaluate::WorkspaceContext::from_eval(eval)?;
        crate::core::label::validate_repo(&name).map_err(|e| anyhow::Error::msg(e.reason))?;
        if name.is_empty() {
            anyhow::bail!("workspace(): name must not be empty");
        }
        let mut declared = ctx.declared.borrow_mut();
        if declared.name.is_some() {
            anyhow::bail!("workspace() can only be called once, at the top of the WORKSPACE file");
        }
        declared.name = Some(name);
        Ok(NoneType)
    }
}

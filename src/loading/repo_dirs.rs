//! Where a package's files are: package ids and repository names in, directories, BUILD
//! files and the names messages give them out — fetching an external repository the first
//! time one of its packages is asked for, and finding every package below a directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::diagnostics::fetch_failed;
use super::{BUILD_FILE_NAMES, Loader};
use crate::core::diag::did_you_mean;
use crate::core::{Diagnostic, Label, PackageId};
use crate::fetch::RepoFetchError;
use crate::fetch::builtin_repos;
use crate::workspace::fs_deps;

impl Loader {
    /// The directory holding a repository's files.
    pub(super) fn repo_root(&self, repo: &str) -> Option<PathBuf> {
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
    pub fn fetch(&self, repos: &[String]) -> Vec<Diagnostic> {
        repos
            .iter()
            .filter_map(|r| self.fetcher.repo_root(r)?.err())
            .map(|e| fetch_failed(&e, e.to_string()))
            .collect()
    }

    /// Why repository `repo` could not be fetched, if it was asked for and could not be.
    pub(super) fn fetch_error(&self, repo: &str) -> Option<Arc<RepoFetchError>> {
        self.fetch_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(repo)
            .cloned()
    }

    /// Whether `repo` is one forge provides itself (`@bazel_tools`, `@platforms`): the
    /// WORKSPACE file does not declare that name, and forge has a repository of it.
    pub(super) fn is_builtin_repo(&self, repo: &str) -> bool {
        !self.workspace.repositories.contains_key(repo)
            && repo != self.workspace.name
            && builtin_repos::builtin_repo(repo).is_some()
    }

    pub(super) fn package_dir(&self, id: &PackageId) -> Option<PathBuf> {
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
        if self.is_builtin_repo(&id.repo)
            && let Some(repo) = builtin_repos::builtin_repo(&id.repo)
        {
            return format!(
                "forge's built-in repository '@{}' (its packages: {})",
                id.repo,
                repo.packages().join(", ")
            );
        }
        if let Some(error) = self.fetch_error(&id.repo) {
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

    pub(super) fn build_file(&self, id: &PackageId) -> Option<(Label, PathBuf)> {
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

    /// Every package at or below `prefix`, sorted. As in Bazel, symlinked directories are
    /// followed (the packages are named by the link's path), except links into an output
    /// tree (forge's `forge-*` and Bazel's `bazel-*` links lead into an exec root), links in
    /// a directory holding Bazel's `DONT_FOLLOW_SYMLINKS_...` file, and links back to a
    /// directory already on the way down (a cycle). Dot-directories and `.bazelignore`d
    /// ones are skipped.
    pub fn packages_under(&self, prefix: &PackageId) -> Result<Vec<PackageId>, Diagnostic> {
        let Some(root) = self.repo_root(&prefix.repo) else {
            return Err(Diagnostic::new(format!(
                "no such repository '@{}': it is not defined in the WORKSPACE file",
                prefix.repo
            )));
        };
        let ignored = self.workspace.ignored_dirs();
        let start = root.join(&prefix.package);
        let mut found = Vec::new();
        let output_base = std::fs::canonicalize(&self.workspace.output_base).ok();
        // walkdir reports a link back to an ancestor as an error, which skips it.
        let walker = walkdir::WalkDir::new(&start)
            .follow_links(true)
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
                    && (!e.path_is_symlink() || followed_link(e.path(), output_base.as_deref()))
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
}

/// Whether a recursive pattern follows the directory symlink at `link`: not when its
/// directory holds `DONT_FOLLOW_SYMLINKS`, nor when it leads into forge's output base or
/// into any exec root (`.../execroot/...`, where Bazel's `bazel-*` links and forge's
/// `forge-*` links lead), which would show every package a second time.
fn followed_link(link: &Path, output_base: Option<&Path>) -> bool {
    if link
        .parent()
        .is_some_and(|dir| dir.join(crate::core::layout::DONT_FOLLOW_SYMLINKS).exists())
    {
        return false;
    }
    let Ok(real) = std::fs::canonicalize(link) else {
        return false;
    };
    let into_output = output_base.is_some_and(|base| real.starts_with(base))
        || real.components().any(|c| c.as_os_str() == "execroot");
    !into_output
}

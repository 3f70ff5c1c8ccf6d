//! Where a package's files are: package ids and repository names in, directories, BUILD
//! files and the names messages give them out — fetching an external repository the first
//! time one of its packages is asked for, and finding every package below a directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::diagnostics::fetch_failed;
use super::package_walk;
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
        // The walk of `//...` read the listing moments ago: no need to stat the names again.
        let walked = self
            .walked_build_files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .copied();
        if let Some(name) = walked {
            return Some((id.label(name), dir.join(name)));
        }
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

    /// Every package at or below `prefix`, each directory before those below it and
    /// siblings by name (see `package_walk`). As in Bazel, symlinked directories are
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
        let ignored: Vec<PathBuf> = self
            .workspace
            .ignored_dirs()
            .iter()
            .map(|dir| root.join(dir))
            .collect();
        let output_base = std::fs::canonicalize(&self.workspace.output_base).ok();
        let found = package_walk::packages_below(
            &root,
            &prefix.repo,
            &root.join(&prefix.package),
            &ignored,
            output_base.as_deref(),
        );
        let mut walked = self
            .walked_build_files
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        Ok(found
            .into_iter()
            .map(|(id, build_file)| {
                walked.insert(id.clone(), build_file);
                id
            })
            .collect())
    }
}

//! External repositories: a repository rule from the WORKSPACE file in, its directory under
//! `<output_base>/external/<name>/` out — fetched only when a command needs the repository,
//! and fetched again only when its rule or `build_file` changed (a marker file records what
//! the directory was made from).
//!
//! An archive is found in the repository cache (or a `--distdir`) or downloaded, checked
//! against its pinned sha256 before anything is extracted, extracted into a temporary
//! directory next to its destination and renamed into place: an interrupted fetch leaves
//! nothing a later command would trust.

pub mod download;
pub mod extract;

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::workspace::Workspace;
use crate::workspace::repos::{RepoKind, RepoRule};
use download::{DownloadError, RepositoryCache};
use extract::Format;

/// `--repository_cache` and `--distdir`.
#[derive(Clone, Debug, Default)]
pub struct FetchOptions {
    pub repository_cache: Option<PathBuf>,
    pub distdirs: Vec<PathBuf>,
}

/// The default repository cache: next to the output bases, shared by every workspace.
pub fn default_repository_cache(workspace: &Workspace) -> PathBuf {
    workspace
        .output_base
        .parent()
        .map(|p| p.join("repository_cache"))
        .unwrap_or_else(|| workspace.output_base.join("repository_cache"))
}

type Fetched = Arc<OnceLock<Result<PathBuf, String>>>;

/// Fetches repositories on demand, each at most once per command.
pub struct Fetcher {
    workspace: Arc<Workspace>,
    cache: RepositoryCache,
    fetched: Mutex<HashMap<String, Fetched>>,
}

impl Fetcher {
    pub fn new(workspace: Arc<Workspace>, options: &FetchOptions) -> Fetcher {
        let dir = options
            .repository_cache
            .clone()
            .unwrap_or_else(|| default_repository_cache(&workspace));
        Fetcher {
            cache: RepositoryCache {
                dir,
                distdirs: options.distdirs.clone(),
            },
            workspace,
            fetched: Mutex::new(HashMap::new()),
        }
    }

    /// The directory of repository `name`, fetching it if needed; `None` if the WORKSPACE
    /// file declares no such repository.
    pub fn repo_root(&self, name: &str) -> Option<Result<PathBuf, String>> {
        let rule = self.workspace.repositories.get(name)?;
        let once = self
            .fetched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name.to_owned())
            .or_default()
            .clone();
        Some(
            once.get_or_init(|| {
                self.fetch(rule).map_err(|e| {
                    format!(
                        "error fetching repository '@{}' ({} at {}): {e}",
                        rule.name, rule.rule, rule.location
                    )
                })
            })
            .clone(),
        )
    }

    fn external(&self) -> PathBuf {
        self.workspace.output_base.join("external")
    }

    /// What the repository's directory is made from; equal markers mean an equal directory.
    fn marker(&self, rule: &RepoRule) -> Result<String, String> {
        let mut text = serde_json::to_string(&(&rule.name, &rule.rule, &rule.kind))
            .map_err(|e| e.to_string())?;
        text.push_str(&rule.build_file_content.clone().unwrap_or_default());
        if let Some(build_file) = &rule.build_file {
            let path = self.build_file_path(rule, build_file)?;
            // Noted for the build plan: an edited build_file must reach the next build.
            text.push_str(
                &crate::workspace::fs_deps::read_to_string(&path).map_err(|e| e.to_string())?,
            );
        }
        if let RepoKind::Archive { patches, .. } = &rule.kind {
            for p in patches {
                let path = self.label_path(p);
                text.push_str(
                    &crate::workspace::fs_deps::read_to_string(&path).map_err(|e| {
                        format!("cannot read patch '{p}' ({}): {e}", path.display())
                    })?,
                );
            }
        }
        Ok(blake3::hash(text.as_bytes()).to_hex().to_string())
    }

    /// A main-repository label (`//pkg:file`, `@//pkg:file`, `:file`) or a workspace-relative
    /// path, as a path.
    fn label_path(&self, text: &str) -> PathBuf {
        let rel = text
            .strip_prefix("@//")
            .or_else(|| text.strip_prefix("//"))
            .map(|l| l.replacen(':', "/", 1))
            .or_else(|| text.strip_prefix(':').map(str::to_owned))
            .unwrap_or_else(|| text.to_owned());
        self.workspace.root.join(rel.trim_start_matches('/'))
    }

    fn build_file_path(&self, rule: &RepoRule, build_file: &str) -> Result<PathBuf, String> {
        let path = self.label_path(build_file);
        if !path.is_file() {
            return Err(format!(
                "its build_file '{build_file}' does not exist (looked for {}); point build_file at a file of this workspace, e.g. \"//:BUILD.{}\"",
                path.display(),
                rule.name
            ));
        }
        Ok(path)
    }

    fn fetch(&self, rule: &RepoRule) -> Result<PathBuf, String> {
        let external = self.external();
        fs::create_dir_all(&external).map_err(|e| e.to_string())?;
        let dir = external.join(&rule.name);
        let marker_path = external.join(format!("@{}.marker", rule.name));
        let marker = self.marker(rule)?;
        let local = matches!(rule.kind, RepoKind::Local { .. });
        if !local && dir.is_dir() && fs::read_to_string(&marker_path).is_ok_and(|m| m == marker) {
            return Ok(dir);
        }
        // Leftovers of an interrupted fetch of this repository.
        if let Ok(entries) = fs::read_dir(&external) {
            let prefix = format!(".tmp-{}-", rule.name);
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
        if let (RepoKind::Local { path }, None, None) =
            (&rule.kind, &rule.build_file, &rule.build_file_content)
        {
            let target = self.workspace.root.join(path);
            if !target.is_dir() {
                return Err(format!("path '{}' is not a directory", target.display()));
            }
            remove_any(&dir).map_err(|e| e.to_string())?;
            crate::outputs::replace_symlink(&target, &dir).map_err(|e| e.to_string())?;
            return Ok(dir);
        }

        let tmp = tempfile::Builder::new()
            .prefix(&format!(".tmp-{}-", rule.name))
            .tempdir_in(&external)
            .map_err(|e| e.to_string())?;
        self.populate(rule, tmp.path())?;
        if let Some(content) = &rule.build_file_content {
            fs::write(tmp.path().join("BUILD.bazel"), content).map_err(|e| e.to_string())?;
        } else if let Some(build_file) = &rule.build_file {
            let path = self.build_file_path(rule, build_file)?;
            fs::copy(&path, tmp.path().join("BUILD.bazel")).map_err(|e| e.to_string())?;
        }
        fs::write(
            tmp.path().join("WORKSPACE"),
            format!("workspace(name = \"{}\")\n", rule.name),
        )
        .map_err(|e| e.to_string())?;
        if let RepoKind::Archive {
            patches,
            patch_args,
            ..
        } = &rule.kind
        {
            for p in patches {
                apply_patch(&self.label_path(p), patch_args, tmp.path())
                    .map_err(|e| format!("patch '{p}' failed: {e}"))?;
            }
        }
        remove_any(&dir).map_err(|e| e.to_string())?;
        fs::rename(tmp.keep(), &dir).map_err(|e| e.to_string())?;
        crate::outputs::write_atomic(&marker_path, marker.as_bytes()).map_err(|e| e.to_string())?;
        Ok(dir)
    }

    /// Fills `dir` with the repository's files.
    fn populate(&self, rule: &RepoRule, dir: &Path) -> Result<(), String> {
        let what = format!("@{}", rule.name);
        let pinned = |urls: &[String], sha256: &Option<String>| -> Result<PathBuf, String> {
            let Some(sha256) = sha256 else {
                let (digest, url) = self
                    .cache
                    .digest_of(urls, &what)
                    .map_err(|e| e.to_string())?;
                return Err(format!(
                    "it has no sha256, and forge only uses downloads pinned by their digest. \
                     {url} has sha256 {digest}: add\n    sha256 = \"{digest}\",\nto {}(name = \"{}\") in WORKSPACE",
                    rule.rule, rule.name
                ));
            };
            self.cache.get(urls, sha256, &what).map_err(|e| match e {
                DownloadError::Mismatch { .. } => format!(
                    "{e}. If the new file is the one you want, update sha256 in WORKSPACE; \
                     otherwise the server changed what it serves"
                ),
                other => other.to_string(),
            })
        };
        match &rule.kind {
            RepoKind::Archive {
                urls,
                sha256,
                strip_prefix,
                add_prefix,
                archive_type,
                ..
            } => {
                let archive = pinned(urls, sha256)?;
                let format = archive_type
                    .as_deref()
                    .and_then(Format::of)
                    .or_else(|| urls.iter().find_map(|u| Format::of(u.split('?').next()?)))
                    .ok_or_else(|| {
                        format!(
                            "cannot tell the archive type of {}: set type = \"tar.gz\" (or tar, tar.xz, tar.bz2, zip)",
                            urls[0]
                        )
                    })?;
                extract::extract(&archive, format, strip_prefix, add_prefix, dir)
                    .map_err(|e| e.to_string())
            }
            RepoKind::File {
                urls,
                sha256,
                downloaded_file_path,
                executable,
            } => {
                let file = pinned(urls, sha256)?;
                let dest = dir.join("file").join(downloaded_file_path);
                fs::create_dir_all(dest.parent().expect("inside dir"))
                    .map_err(|e| e.to_string())?;
                fs::copy(&file, &dest).map_err(|e| e.to_string())?;
                use std::os::unix::fs::PermissionsExt;
                let mode = if *executable { 0o755 } else { 0o644 };
                fs::set_permissions(&dest, fs::Permissions::from_mode(mode))
                    .map_err(|e| e.to_string())?;
                fs::write(
                    dir.join("file/BUILD.bazel"),
                    format!(
                        "filegroup(\n    name = \"file\",\n    srcs = [\"{downloaded_file_path}\"],\n    visibility = [\"//visibility:public\"],\n)\n"
                    ),
                )
                .map_err(|e| e.to_string())?;
                fs::write(dir.join("BUILD.bazel"), "").map_err(|e| e.to_string())
            }
            RepoKind::Local { path } => {
                // new_local_repository: the directory's entries, linked, plus a BUILD file.
                let source = self.workspace.root.join(path);
                let entries = fs::read_dir(&source)
                    .map_err(|e| format!("cannot read '{}': {e}", source.display()))?;
                for e in entries.flatten() {
                    let name = e.file_name();
                    if name == "BUILD" || name == "BUILD.bazel" || name == "WORKSPACE" {
                        continue;
                    }
                    std::os::unix::fs::symlink(e.path(), dir.join(&name))
                        .map_err(|e| e.to_string())?;
                }
                Ok(())
            }
        }
    }
}

fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(_) => Ok(()),
    }
}

fn apply_patch(patch: &Path, args: &[String], dir: &Path) -> Result<(), String> {
    let out = std::process::Command::new("patch")
        .args(args)
        .arg("-i")
        .arg(patch)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run patch(1): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

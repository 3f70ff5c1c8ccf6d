//! A repository's files: its rule in (an archive, one downloaded file, a local directory),
//! the files written into the fresh directory the fetch will rename into place out.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::beneath::{self, Beneath};
use super::extract::{self, Format};
use super::{FetchError, Fetcher};
use crate::core::fs::IoContext;
use crate::workspace::repos::{RepoKind, RepoRule};

impl Fetcher {
    /// Fills `dir` with the repository's files.
    pub(super) fn populate(&self, rule: &RepoRule, dir: &Path) -> Result<(), FetchError> {
        let what = format!("@{}", rule.name);
        let pinned = |urls: &[String], sha256: &Option<String>| -> Result<PathBuf, FetchError> {
            let Some(sha256) = sha256 else {
                let (digest, url) = self.cache.digest_of(urls, &what)?;
                return Err(FetchError::Unpinned {
                    url,
                    digest,
                    rule: rule.rule.clone(),
                    name: rule.name.clone(),
                });
            };
            Ok(self.cache.get(urls, sha256, &what)?)
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
                    .ok_or_else(|| FetchError::UnknownArchiveType {
                        url: urls[0].clone(),
                    })?;
                let limits = extract::Limits {
                    max_bytes: self.extract_limit,
                    interrupt: self.interrupt,
                };
                Ok(extract::extract(
                    &archive,
                    format,
                    strip_prefix,
                    add_prefix,
                    dir,
                    limits,
                )?)
            }
            RepoKind::File {
                urls,
                sha256,
                downloaded_file_path,
                executable,
            } => {
                // Checked when WORKSPACE was read; checked again before anything is written.
                crate::workspace::repos::check_downloaded_file_path(downloaded_file_path)?;
                let file = pinned(urls, sha256)?;
                let build = format!(
                    "filegroup(\n    name = \"file\",\n    srcs = [\"{downloaded_file_path}\"],\n    visibility = [\"//visibility:public\"],\n)\n"
                );
                place_download(
                    dir,
                    &file,
                    "file",
                    downloaded_file_path,
                    *executable,
                    &build,
                )
            }
            RepoKind::Jar {
                urls,
                sha256,
                downloaded_file_name,
            } => {
                crate::workspace::repos::check_downloaded_file_path(downloaded_file_name)?;
                let file = pinned(urls, sha256)?;
                // Bazel's `@name//jar` is a java_import, which forge does not have (no Java
                // rules): the jar is `@name//jar:file`, as in Bazel.
                let build = format!(
                    "filegroup(\n    name = \"file\",\n    srcs = [\"{downloaded_file_name}\"],\n    visibility = [\"//visibility:public\"],\n)\n"
                );
                place_download(dir, &file, "jar", downloaded_file_name, false, &build)
            }
            RepoKind::Git { remote, .. } => Err(FetchError::GitUnsupported {
                rule: rule.rule.clone(),
                name: rule.name.clone(),
                remote: remote.clone(),
            }),
            RepoKind::Local { path } => {
                // new_local_repository: the directory's entries, linked, plus a BUILD file.
                let source = self.root.join(path);
                let entries =
                    fs::read_dir(&source).map_err(|e| FetchError::UnreadableLocalDirectory {
                        path: source.clone(),
                        source: e,
                    })?;
                for e in entries.flatten() {
                    let name = e.file_name();
                    if name == "BUILD" || name == "BUILD.bazel" || name == "WORKSPACE" {
                        continue;
                    }
                    let link = dir.join(&name);
                    std::os::unix::fs::symlink(e.path(), &link).at("link", &link)?;
                }
                Ok(())
            }
        }
    }
}

/// Copies the downloaded `file` to `<package>/<path>` in the new repository `dir`, with the
/// package's BUILD file `build` and an empty root BUILD file.
fn place_download(
    dir: &Path,
    file: &Path,
    package: &str,
    path: &str,
    executable: bool,
    build: &str,
) -> Result<(), FetchError> {
    let repo = Beneath::open(dir).at("open", dir)?;
    let dest = Path::new(package).join(path);
    let failed = |source: beneath::WalkError| FetchError::HttpFile {
        path: dir.join(&dest),
        source,
    };
    let io_failed = |e: io::Error| failed(e.into());
    let mode = if executable { 0o755 } else { 0o644 };
    let mut out = repo.create_file(&dest, mode).map_err(failed)?;
    let mut src = fs::File::open(file).map_err(io_failed)?;
    io::copy(&mut src, &mut out).map_err(io_failed)?;
    use std::os::unix::fs::PermissionsExt;
    out.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io_failed)?;
    repo.write(&Path::new(package).join("BUILD.bazel"), build.as_bytes())
        .map_err(failed)?;
    repo.write(Path::new("BUILD.bazel"), b"").map_err(failed)
}

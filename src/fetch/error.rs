//! Why a repository could not be fetched: the failures of downloading, verifying, extracting,
//! patching and writing in, one `FetchError` (wrapped in a `RepoFetchError` naming the rule)
//! out — typed, so the loader can tell the network and the disk from a wrong WORKSPACE.

use std::io;
use std::path::PathBuf;

use super::beneath::WalkError;
use super::download::DownloadError;
use super::extract::{ExtractError, disk_full_hint};
use super::patch::PatchError;
use crate::core::fs::PathError;
use crate::workspace::repos::DownloadedFilePathError;

/// Why repository `name`, declared by `rule` at `location` in WORKSPACE, could not be fetched.
#[derive(Debug, thiserror::Error)]
#[error("error fetching repository '@{name}' ({rule} at {location}): {cause}")]
pub struct RepoFetchError {
    pub name: String,
    pub rule: String,
    pub location: String,
    #[source]
    pub cause: FetchError,
}

impl RepoFetchError {
    /// Whether the machine or the network failed, rather than what WORKSPACE says.
    pub fn is_environment(&self) -> bool {
        self.cause.is_environment()
    }
}

/// One step of a fetch that failed, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No URL served the file, or the repository cache could not keep it.
    #[error("{0}")]
    Download(DownloadError),
    /// The file downloaded is not the one WORKSPACE pins.
    #[error(
        "{0}. If the new file is the one you want, update sha256 in WORKSPACE; \
         otherwise the server changed what it serves"
    )]
    ChecksumMismatch(DownloadError),
    /// The rule pins no sha256; the digest of what its URL serves now, for the user to pin.
    #[error(
        "it has no sha256, and forge only uses downloads pinned by their digest. \
         {url} has sha256 {digest}: add\n    sha256 = \"{digest}\",\nto {rule}(name = \"{name}\") in WORKSPACE"
    )]
    Unpinned {
        url: String,
        digest: String,
        rule: String,
        name: String,
    },
    #[error(
        "cannot tell the archive type of {url}: set type = \"tar.gz\" (or tar, tar.xz, tar.bz2, zip)"
    )]
    UnknownArchiveType { url: String },
    /// A corrupt archive, an entry escaping the repository, the size limit, a failed write.
    #[error("{0}")]
    Extract(#[from] ExtractError),
    #[error(
        "its build_file '{build_file}' does not exist (looked for {}); point build_file at a file of this workspace, e.g. \"//:BUILD.{repo}\"",
        .path.display()
    )]
    MissingBuildFile {
        build_file: String,
        path: PathBuf,
        repo: String,
    },
    #[error("cannot read build_file '{}': {source}", .path.display())]
    UnreadableBuildFile { path: PathBuf, source: io::Error },
    #[error("cannot read patch '{patch}' ({}): {source}", .path.display())]
    UnreadablePatch {
        patch: String,
        path: PathBuf,
        source: io::Error,
    },
    #[error("patch '{patch}' refused: {cause}")]
    PatchRefused { patch: String, cause: PatchError },
    #[error("patch '{patch}' failed: {cause}")]
    PatchFailed { patch: String, cause: PatchError },
    /// `local_repository` / `new_local_repository` point at something else.
    #[error("path '{}' is not a directory", .0.display())]
    NotADirectory(PathBuf),
    #[error("cannot read '{}': {source}", .path.display())]
    UnreadableLocalDirectory { path: PathBuf, source: io::Error },
    #[error(transparent)]
    DownloadedFilePath(#[from] DownloadedFilePathError),
    /// One of forge's own files (WORKSPACE, BUILD.bazel) in the new repository.
    #[error("cannot write its {name}: {source}{}", walk_hint(.source))]
    OwnFile {
        name: &'static str,
        source: WalkError,
    },
    /// The file of an `http_file` repository, or its BUILD files.
    #[error("cannot write {}: {source}{}", .path.display(), walk_hint(.source))]
    HttpFile { path: PathBuf, source: WalkError },
    /// What the marker records could not be serialized.
    #[error("{0}")]
    Marker(#[from] serde_json::Error),
    #[error(transparent)]
    Io(#[from] PathError),
    #[error("interrupted (Ctrl-C)")]
    Interrupted,
    /// `git_repository` / `new_git_repository`: forge reaches no network and runs no git.
    #[error(
        "forge cannot fetch git repositories (it reaches no network and does not run git); \
         replace {rule}(name = \"{name}\", remote = \"{remote}\") with an http_archive of that \
         commit's source archive pinned by sha256 (for GitHub: urls = \
         [\"https://github.com/<owner>/<repo>/archive/<commit>.tar.gz\"], strip_prefix = \
         \"<repo>-<commit>\"), or a local_repository of a checkout"
    )]
    GitUnsupported {
        rule: String,
        name: String,
        remote: String,
    },
    /// A `build_file` or patch label names a repository WORKSPACE does not declare.
    #[error(
        "'{label}' names repository '@{repo}', which WORKSPACE does not declare (above this \
         rule, when WORKSPACE loads from it)"
    )]
    UnknownLabelRepository { label: String, repo: String },
    /// The repository a `build_file` or patch label names could not be fetched.
    #[error("'{label}' needs its repository: {cause}")]
    LabelRepository { label: String, cause: String },
    /// A `build_file` or patch label names a repository that needs this one first.
    #[error("'{label}' names a repository whose fetch needs '@{repo}' first: a cycle")]
    LabelCycle { label: String, repo: String },
}

impl FetchError {
    /// Whether the machine or the network failed (a refused connection, a full disk, an
    /// unwritable directory), rather than what WORKSPACE says (a wrong sha256, a bad path).
    pub fn is_environment(&self) -> bool {
        matches!(
            self,
            FetchError::Download(DownloadError::Failed(_))
                | FetchError::Extract(ExtractError::Io { .. })
                | FetchError::Io(_)
                | FetchError::UnreadableBuildFile { .. }
                | FetchError::UnreadablePatch { .. }
                | FetchError::UnreadableLocalDirectory { .. }
                | FetchError::OwnFile { .. }
                | FetchError::HttpFile { .. }
                | FetchError::PatchFailed {
                    cause: PatchError::CannotRun(_),
                    ..
                }
        )
    }
}

impl From<DownloadError> for FetchError {
    fn from(e: DownloadError) -> FetchError {
        match e {
            DownloadError::Mismatch { .. } => FetchError::ChecksumMismatch(e),
            other => FetchError::Download(other),
        }
    }
}

/// The disk-full hint for a write that failed on I/O.
fn walk_hint(e: &WalkError) -> &'static str {
    match e {
        WalkError::Io(e) => disk_full_hint(e),
        WalkError::Symlink(_) => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mismatch() -> DownloadError {
        DownloadError::Mismatch {
            url: "https://example.com/a.tar.gz".into(),
            expected: "aa".into(),
            actual: "bb".into(),
        }
    }

    #[test]
    fn a_wrong_sha256_is_the_users_to_fix_and_says_how() {
        let e = FetchError::from(mismatch());
        assert!(!e.is_environment());
        assert!(e.to_string().ends_with(
            "WORKSPACE pins aa. If the new file is the one you want, update sha256 in WORKSPACE; \
             otherwise the server changed what it serves"
        ));
    }

    #[test]
    fn a_failed_download_or_write_is_the_environments() {
        assert!(FetchError::from(DownloadError::Failed("refused".into())).is_environment());
        let io = PathError {
            action: "write",
            path: "/x/y".into(),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        let e = FetchError::from(io);
        assert!(e.is_environment());
        assert!(e.to_string().starts_with("cannot write /x/y: "));
    }
}

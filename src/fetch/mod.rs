//! External repositories: a repository rule from the WORKSPACE file in, its directory under
//! `<output_base>/external/<name>/` out — fetched only when a command needs the repository,
//! and fetched again only when its rule or `build_file` changed (a marker file records what
//! the directory was made from).
//!
//! An archive is found in the repository cache (or a `--distdir`) or downloaded, checked
//! against its pinned sha256 before anything is extracted, extracted into a temporary
//! directory next to its destination and renamed into place: an interrupted or refused fetch
//! leaves nothing a later command would trust. Forge's own files in a repository (WORKSPACE,
//! BUILD.bazel, the patched files) are written without following symlinks too.
//!
//! A name WORKSPACE does not declare may still be a repository forge provides itself
//! (`@bazel_tools`, `@platforms`): `builtin_repos` writes those from files in the binary.

pub mod beneath;
pub mod builtin_repos;
pub mod download;
mod error;
pub mod extract;
pub mod host_cc;
mod patch;
mod populate;

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::core::fs::IoContext;
use crate::workspace::repos::{RepoKind, RepoRule, Repos};
use crate::workspace::{RepositoryFetcher, Workspace, WorkspaceSite};
use beneath::Beneath;
use download::RepositoryCache;
pub use error::{FetchError, RepoFetchError};
pub use patch::PatchError;

/// How much one repository's archive may unpack to, unless a flag says otherwise.
pub const DEFAULT_EXTRACT_LIMIT: u64 = 16 << 30;
/// How long a download may go without receiving a byte, unless a flag says otherwise.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// `--repository_cache`, `--distdir`, the limits, and what Ctrl-C sets.
#[derive(Clone, Debug, Default)]
pub struct FetchOptions {
    pub repository_cache: Option<PathBuf>,
    pub distdirs: Vec<PathBuf>,
    /// Bytes one archive may unpack to (`None`: `DEFAULT_EXTRACT_LIMIT`).
    pub extract_limit: Option<u64>,
    /// No byte for this long fails a download (`None`: `DEFAULT_STALL_TIMEOUT`).
    pub stall_timeout: Option<Duration>,
    /// Set when the user presses Ctrl-C: downloads and extractions stop at once.
    pub interrupt: Option<&'static AtomicBool>,
}

static NEVER: AtomicBool = AtomicBool::new(false);

/// The default repository cache: next to the output bases, shared by every workspace.
pub fn default_repository_cache(output_base: &Path) -> PathBuf {
    output_base
        .parent()
        .map(|p| p.join("repository_cache"))
        .unwrap_or_else(|| output_base.join("repository_cache"))
}

thread_local! {
    static FETCHING: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A repository's directory, or why it could not be made; shared by every package of it.
type Fetched = Arc<OnceLock<Result<PathBuf, Arc<RepoFetchError>>>>;

/// Fetches repositories on demand, each at most once per command.
pub struct Fetcher {
    /// The workspace root, against which local paths and `build_file`s are read.
    root: PathBuf,
    output_base: PathBuf,
    /// The repositories `repo_root` knows by name (none while WORKSPACE is evaluated: there
    /// the rule comes with each request).
    repositories: Repos,
    cache: RepositoryCache,
    fetched: Mutex<HashMap<String, Fetched>>,
    extract_limit: u64,
    interrupt: &'static AtomicBool,
}

impl Fetcher {
    pub fn new(workspace: Arc<Workspace>, options: &FetchOptions) -> Fetcher {
        Fetcher::at(
            &workspace.root,
            &workspace.output_base,
            workspace.repositories.clone(),
            options,
        )
    }

    fn at(root: &Path, output_base: &Path, repositories: Repos, options: &FetchOptions) -> Fetcher {
        let dir = options
            .repository_cache
            .clone()
            .unwrap_or_else(|| default_repository_cache(output_base));
        Fetcher {
            cache: RepositoryCache {
                dir,
                distdirs: options.distdirs.clone(),
                stall_timeout: options.stall_timeout.unwrap_or(DEFAULT_STALL_TIMEOUT),
                interrupt: options.interrupt.unwrap_or(&NEVER),
            },
            root: root.to_owned(),
            output_base: output_base.to_owned(),
            repositories,
            fetched: Mutex::new(HashMap::new()),
            extract_limit: options.extract_limit.unwrap_or(DEFAULT_EXTRACT_LIMIT),
            interrupt: options.interrupt.unwrap_or(&NEVER),
        }
    }

    /// The directory of repository `name`, fetching it if needed; `None` if neither the
    /// WORKSPACE file declares such a repository nor forge provides one of that name.
    pub fn repo_root(&self, name: &str) -> Option<Result<PathBuf, Arc<RepoFetchError>>> {
        if let Some(rule) = self.repositories.get(name) {
            return Some(self.fetch_once(rule));
        }
        let repo = builtin_repos::builtin_repo(name)?;
        Some(
            self.once(name)
                .get_or_init(|| {
                    repo.materialize(&self.external()).map_err(|cause| {
                        Arc::new(RepoFetchError {
                            name: repo.name.to_owned(),
                            rule: "built into forge".to_owned(),
                            location: self.external().join(repo.name).display().to_string(),
                            cause,
                        })
                    })
                })
                .clone(),
        )
    }

    /// The once-per-command result for repository `name`.
    fn once(&self, name: &str) -> Fetched {
        self.fetched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name.to_owned())
            .or_default()
            .clone()
    }

    /// The directory of `rule`'s repository, fetched at most once by this fetcher.
    fn fetch_once(&self, rule: &RepoRule) -> Result<PathBuf, Arc<RepoFetchError>> {
        let name = &rule.name;
        self.once(name)
            .get_or_init(|| {
                // The repositories this thread is fetching: a label in one naming another
                // being fetched is a cycle, reported instead of waiting on itself.
                FETCHING.with(|f| f.borrow_mut().push(name.clone()));
                let fetched = self.fetch(rule);
                FETCHING.with(|f| f.borrow_mut().pop());
                fetched.map_err(|cause| {
                    Arc::new(RepoFetchError {
                        name: rule.name.clone(),
                        rule: rule.rule.clone(),
                        location: rule.location.clone(),
                        cause,
                    })
                })
            })
            .clone()
    }

    fn external(&self) -> PathBuf {
        self.output_base.join("external")
    }

    /// What the repository's directory is made from; equal markers mean an equal directory.
    fn marker(&self, rule: &RepoRule) -> Result<String, FetchError> {
        let mut text = serde_json::to_string(&(&rule.name, &rule.rule, &rule.kind))?;
        text.push_str(&rule.build_file_content.clone().unwrap_or_default());
        if let Some(build_file) = &rule.build_file {
            let path = self.build_file_path(rule, build_file)?;
            // Noted for the build plan: an edited build_file must reach the next build.
            let content = crate::workspace::fs_deps::read_to_string(&path)
                .map_err(|source| FetchError::UnreadableBuildFile { path, source })?;
            text.push_str(&content);
        }
        if let RepoKind::Archive { patches, .. } = &rule.kind {
            for p in patches {
                let path = self.label_path(rule, p)?;
                text.push_str(&crate::workspace::fs_deps::read_to_string(&path).map_err(
                    |source| FetchError::UnreadablePatch {
                        patch: p.clone(),
                        path: path.clone(),
                        source,
                    },
                )?);
            }
        }
        Ok(blake3::hash(text.as_bytes()).to_hex().to_string())
    }

    /// A label (`//pkg:file`, `@//pkg:file`, `:file`, or `@repo//pkg:file` of another
    /// repository, which is fetched for it) or a workspace-relative path, as a path.
    fn label_path(&self, rule: &RepoRule, text: &str) -> Result<PathBuf, FetchError> {
        if let Some(rest) = text.strip_prefix('@').filter(|r| !r.starts_with("//"))
            && let Some((repo, target)) = rest.split_once("//")
        {
            let rel = target.replacen(':', "/", 1);
            let other =
                self.repositories
                    .get(repo)
                    .ok_or_else(|| FetchError::UnknownLabelRepository {
                        label: text.to_owned(),
                        repo: repo.to_owned(),
                    })?;
            if FETCHING.with(|f| f.borrow().iter().any(|r| r == repo)) {
                return Err(FetchError::LabelCycle {
                    label: text.to_owned(),
                    repo: rule.name.clone(),
                });
            }
            let dir = self
                .fetch_once(other)
                .map_err(|e| FetchError::LabelRepository {
                    label: text.to_owned(),
                    cause: e.to_string(),
                })?;
            return Ok(dir.join(rel.trim_start_matches('/')));
        }
        let rel = text
            .strip_prefix("@//")
            .or_else(|| text.strip_prefix("//"))
            .map(|l| l.replacen(':', "/", 1))
            .or_else(|| text.strip_prefix(':').map(str::to_owned))
            .unwrap_or_else(|| text.to_owned());
        Ok(self.root.join(rel.trim_start_matches('/')))
    }

    fn build_file_path(&self, rule: &RepoRule, build_file: &str) -> Result<PathBuf, FetchError> {
        let path = self.label_path(rule, build_file)?;
        if !path.is_file() {
            return Err(FetchError::MissingBuildFile {
                build_file: build_file.to_owned(),
                path,
                repo: rule.name.clone(),
            });
        }
        Ok(path)
    }

    fn fetch(&self, rule: &RepoRule) -> Result<PathBuf, FetchError> {
        let external = self.external();
        fs::create_dir_all(&external).at("create directory", &external)?;
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
            let target = self.root.join(path);
            if !target.is_dir() {
                return Err(FetchError::NotADirectory(target));
            }
            remove_any(&dir).at("remove", &dir)?;
            crate::core::fs::replace_symlink(&target, &dir)?;
            return Ok(dir);
        }

        let tmp = tempfile::Builder::new()
            .prefix(&format!(".tmp-{}-", rule.name))
            .tempdir_in(&external)
            .at("create a temporary directory in", &external)?;
        // On an error `tmp` goes, with whatever was written into it.
        self.populate(rule, tmp.path())?;
        // Forge's own files replace what is there, never writing through a symlink.
        let repo = Beneath::open(tmp.path()).at("open", tmp.path())?;
        let write = |name: &'static str, content: &[u8]| {
            repo.write(Path::new(name), content)
                .map_err(|source| FetchError::OwnFile { name, source })
        };
        if let Some(content) = &rule.build_file_content {
            write("BUILD.bazel", content.as_bytes())?;
        } else if let Some(build_file) = &rule.build_file {
            let path = self.build_file_path(rule, build_file)?;
            let content = fs::read(&path)
                .map_err(|source| FetchError::UnreadableBuildFile { path, source })?;
            write("BUILD.bazel", &content)?;
        }
        write(
            "WORKSPACE",
            format!("workspace(name = \"{}\")\n", rule.name).as_bytes(),
        )?;
        if let RepoKind::Archive {
            patches,
            patch_args,
            ..
        } = &rule.kind
        {
            for p in patches {
                let patch = self.label_path(rule, p)?;
                patch::check_patch_targets(&patch, patch_args, &repo).map_err(|cause| {
                    FetchError::PatchRefused {
                        patch: p.clone(),
                        cause,
                    }
                })?;
                patch::apply_patch(&patch, patch_args, tmp.path()).map_err(|cause| {
                    FetchError::PatchFailed {
                        patch: p.clone(),
                        cause,
                    }
                })?;
            }
        }
        if self.interrupt.load(Ordering::SeqCst) {
            return Err(FetchError::Interrupted);
        }
        remove_any(&dir).at("remove", &dir)?;
        let made = tmp.keep();
        fs::rename(&made, &dir).at("rename into place", &made)?;
        crate::core::fs::write_atomic(&marker_path, marker.as_bytes())?;
        Ok(dir)
    }
}

/// Fetches for the WORKSPACE file's `load()`s of external repositories' .bzl files: the
/// fetch layer's side of `workspace::RepositoryFetcher`, injected by `ops`. A repository is
/// fetched (or, with its marker matching, reused) the first time a load needs it.
pub struct WorkspaceFileFetcher {
    options: FetchOptions,
    /// Made on the first load that needs it; its repositories are those declared so far.
    fetcher: Mutex<Option<Fetcher>>,
}

impl WorkspaceFileFetcher {
    pub fn new(options: &FetchOptions) -> WorkspaceFileFetcher {
        WorkspaceFileFetcher {
            options: options.clone(),
            fetcher: Mutex::new(None),
        }
    }
}

impl RepositoryFetcher for WorkspaceFileFetcher {
    fn repository_dir(
        &self,
        site: &WorkspaceSite,
        rule: &RepoRule,
        declared: &Repos,
    ) -> Result<PathBuf, String> {
        let mut fetcher = self.fetcher.lock().unwrap_or_else(|e| e.into_inner());
        let fetcher = fetcher.get_or_insert_with(|| {
            Fetcher::at(&site.root, &site.output_base, Repos::new(), &self.options)
        });
        // Labels in `rule` (its build_file, patches) may name repositories declared so far.
        fetcher.repositories = declared.clone();
        fetcher.fetch_once(rule).map_err(|e| e.to_string())
    }
}

fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(_) => Ok(()),
    }
}

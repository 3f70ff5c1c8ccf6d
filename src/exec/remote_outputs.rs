//! Build without the bytes (`--remote_download_minimal`, `--remote_download_toplevel`): the
//! outputs that stay in the remote CAS in — each noted with the digest it has there, as
//! remote execution or a remote cache hit reported it — and those files on disk out, fetched
//! (every blob checked against its digest) only when something here needs them: a command
//! run on this machine, a top-level output, the program `forge run` starts.
//!
//! A file noted here and absent from the exec root is *remote only*. Dependents are keyed by
//! its `identity` (a digest of its remote digest), which is stable across machines and output
//! bases without reading the bytes. A blob the server lost (evicted) cannot be fetched: the
//! path is remembered as lost, so the action that made it can be made to run again.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::core::Digest;
use crate::remote::{RemoteCache, proto};

/// What to download of the outputs that were made, or found cached, remotely.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DownloadMode {
    /// Every output (Bazel's default, `--remote_download_outputs=all`).
    #[default]
    All,
    /// The outputs of the targets asked for, and what local commands need.
    Toplevel,
    /// Only what local commands (and `forge run`) need.
    Minimal,
}

impl DownloadMode {
    /// `--remote_download_outputs=VALUE`.
    pub fn parse(value: &str) -> Option<DownloadMode> {
        match value {
            "all" => Some(DownloadMode::All),
            "toplevel" => Some(DownloadMode::Toplevel),
            "minimal" => Some(DownloadMode::Minimal),
            _ => None,
        }
    }
}

/// The content identity dependents are keyed by for a file whose bytes stay remote.
pub fn identity(digest: &proto::Digest) -> Digest {
    Digest::of_bytes(format!("forge-remote-blob\0{}/{}", digest.hash, digest.size_bytes).as_bytes())
}

/// A file in the remote CAS that belongs at an exec path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteFile {
    pub digest: proto::Digest,
    pub executable: bool,
    /// Its BLAKE3 digest, when the server's result names it (forge's workers and entries
    /// do): dependents are keyed by it, as when the file is downloaded.
    pub blake3: Option<Digest>,
}

impl RemoteFile {
    /// The digest dependents are keyed by: its BLAKE3 digest, or else its `identity`.
    pub fn key_digest(&self) -> Digest {
        self.blake3.unwrap_or_else(|| identity(&self.digest))
    }
}

/// Why files could not be fetched.
#[derive(Debug)]
pub enum FetchError {
    /// The server no longer has these blobs (exec paths).
    Lost(Vec<String>),
    /// The server could not be reached, or a file could not be written.
    Failed(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Lost(paths) => write!(
                f,
                "the remote cache lost {} (evicted from its CAS); the action that made it \
                 must run again",
                paths
                    .iter()
                    .map(|p| format!("'{p}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            FetchError::Failed(e) => f.write_str(e),
        }
    }
}

/// The remote-only outputs of one command, and the client to fetch them through.
pub struct RemoteFiles {
    mode: DownloadMode,
    cache: Arc<RemoteCache>,
    files: Mutex<HashMap<String, RemoteFile>>,
    /// Paths whose blobs the server lost, not yet made again.
    lost: Mutex<Vec<String>>,
    /// How many were lost in this command.
    lost_total: AtomicUsize,
    /// Files fetched, and their bytes: the summary says how much came down.
    pub fetched_files: AtomicUsize,
    pub fetched_bytes: AtomicU64,
}

impl std::fmt::Debug for RemoteFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteFiles({:?}, {})", self.mode, self.cache.url())
    }
}

impl RemoteFiles {
    pub fn new(mode: DownloadMode, cache: Arc<RemoteCache>) -> RemoteFiles {
        RemoteFiles {
            mode,
            cache,
            files: Mutex::new(HashMap::new()),
            lost: Mutex::new(Vec::new()),
            lost_total: AtomicUsize::new(0),
            fetched_files: AtomicUsize::new(0),
            fetched_bytes: AtomicU64::new(0),
        }
    }

    pub fn mode(&self) -> DownloadMode {
        self.mode
    }

    pub fn cache(&self) -> &RemoteCache {
        &self.cache
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, RemoteFile>> {
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes that `path` holds `file`, whose bytes stay remote; an older file at the path
    /// (from an earlier build) is removed, so nobody reads it as this one.
    pub fn note(&self, root: &Path, path: &str, file: RemoteFile) -> std::io::Result<()> {
        remove_file_or_dir(&root.join(path))?;
        self.table().insert(path.to_owned(), file);
        Ok(())
    }

    /// Notes `file` at `path` where the file on disk already has that content (fetched by an
    /// earlier command), or where nothing is.
    pub fn note_present(&self, path: &str, file: RemoteFile) {
        self.table().insert(path.to_owned(), file);
    }

    /// The remote file noted at `path`, whether or not it was fetched.
    pub fn get(&self, path: &str) -> Option<RemoteFile> {
        self.table().get(path).cloned()
    }

    /// Forgets `path`: an action that runs again writes it anew.
    pub fn forget(&self, path: &str) {
        self.table().remove(path);
    }

    /// The remote file at `path` if it is not on disk.
    pub fn remote_only(&self, root: &Path, path: &str) -> Option<RemoteFile> {
        let file = self.get(path)?;
        (fs::symlink_metadata(root.join(path)).is_err()).then_some(file)
    }

    /// Whether the file at `path` under `root` has the content `digest` names.
    pub fn matches_on_disk(&self, root: &Path, path: &str, digest: &proto::Digest) -> bool {
        let Some(hash) = self.cache.hash_fn() else {
            return false;
        };
        fs::read(root.join(path)).is_ok_and(|data| hash.digest(&data) == *digest)
    }

    /// Fetches the remote-only files among `paths` (others are left alone).
    pub fn fetch<'p>(
        &self,
        root: &Path,
        paths: impl IntoIterator<Item = &'p str>,
    ) -> Result<(), FetchError> {
        let mut wanted: Vec<(String, RemoteFile)> = Vec::new();
        for path in paths {
            if let Some(file) = self.remote_only(root, path) {
                wanted.push((path.to_owned(), file));
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        wanted.sort_by(|a, b| a.0.cmp(&b.0));
        wanted.dedup_by(|a, b| a.0 == b.0);
        let digests: Vec<proto::Digest> = wanted.iter().map(|(_, f)| f.digest.clone()).collect();
        let blobs = self
            .cache
            .read_verified(&digests)
            .map_err(FetchError::Failed)?;
        let lost: Vec<String> = wanted
            .iter()
            .filter(|(_, f)| !blobs.contains_key(&f.digest.hash))
            .map(|(p, _)| p.clone())
            .collect();
        if !lost.is_empty() {
            self.mark_lost(&lost);
            return Err(FetchError::Lost(lost));
        }
        for (path, file) in &wanted {
            let data = &blobs[&file.digest.hash];
            write_output(&root.join(path), data, file.executable)
                .map_err(|e| FetchError::Failed(format!("cannot write '{path}': {e}")))?;
            self.fetched_files.fetch_add(1, Ordering::Relaxed);
            self.fetched_bytes
                .fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Fetches what a command run here reads: its remote-only inputs, and the remote-only
    /// files the runfiles trees of its inputs (`<input>.runfiles`) link to.
    pub fn fetch_inputs<'p>(
        &self,
        root: &Path,
        inputs: impl IntoIterator<Item = &'p str>,
    ) -> Result<(), FetchError> {
        // Nothing left remote (every local build with a remote cache): not a stat more.
        if self.table().is_empty() {
            return Ok(());
        }
        let mut paths: Vec<String> = Vec::new();
        for input in inputs {
            paths.push(input.to_owned());
            let runfiles = root.join(format!("{input}.runfiles"));
            if runfiles.is_dir() {
                paths.extend(self.runfiles_targets(root, &runfiles));
            }
        }
        self.fetch(root, paths.iter().map(String::as_str))
    }

    /// The exec paths of the remote-only files the links of the runfiles tree at `dir` lead
    /// to (links made before execution, dangling until fetched).
    pub fn runfiles_targets(&self, root: &Path, dir: &Path) -> Vec<String> {
        let mut targets = Vec::new();
        for entry in walkdir::WalkDir::new(dir)
            .follow_links(false)
            .into_iter()
            .flatten()
        {
            if !entry.path_is_symlink() {
                continue;
            }
            let Some(target) = link_target_in(root, entry.path()) else {
                continue;
            };
            if self.remote_only(root, &target).is_some() {
                targets.push(target);
            }
        }
        targets
    }

    /// Remembers that the server lost the blobs of these paths (found by a remote execution
    /// that needed them as inputs).
    pub fn mark_lost(&self, paths: &[String]) {
        let mut table = self.table();
        for p in paths {
            table.remove(p);
        }
        drop(table);
        self.lost_total.fetch_add(paths.len(), Ordering::Relaxed);
        self.lost
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(paths.iter().cloned());
    }

    /// How many files the server was found to have lost in this command.
    pub fn lost_count(&self) -> usize {
        self.lost_total.load(Ordering::Relaxed)
    }

    /// The paths found lost since the last call.
    pub fn take_lost(&self) -> Vec<String> {
        std::mem::take(&mut *self.lost.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Where the link at `link` leads, as an exec path under `root`, resolved without touching
/// the (maybe absent) target.
pub fn link_target_in(root: &Path, link: &Path) -> Option<String> {
    let target = fs::read_link(link).ok()?;
    let joined = match target.is_absolute() {
        true => target,
        false => link.parent()?.join(target),
    };
    let mut normal = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                normal.pop();
            }
            Component::CurDir => {}
            other => normal.push(other),
        }
    }
    let rel = normal.strip_prefix(root).ok()?;
    Some(rel.to_str()?.to_owned())
}

/// Writes a fetched output as forge leaves outputs: read-only, `r-x` if executable; through a
/// temporary file, so a reader never sees half of it.
fn write_output(dest: &Path, data: &[u8], executable: bool) -> std::io::Result<()> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(data)?;
    let mode = if executable { 0o555 } else { 0o444 };
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode))?;
    tmp.persist(dest).map_err(|e| e.error)?;
    Ok(())
}

fn remove_file_or_dir(path: &Path) -> std::io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The action cache records of `actions` whose outputs all stay in the remote CAS, each
/// under the key the action last ran or was restored with (the ingredient log names it), as
/// the action cache's own log lines for `import_records` in another output base
/// (`ops::build_entry`). Records of actions with a local output are left out: the other
/// output base has no local blob for them.
pub fn export_records(cache_dir: &Path, actions: &[crate::core::Action]) -> Vec<u8> {
    use crate::exec::action_cache::{ActionCache, Lookup, record};
    let ingredients = crate::exec::ingredients::IngredientLog::new(cache_dir);
    let cache = ActionCache::new(cache_dir.join("ac"));
    let mut records = Vec::new();
    for action in actions {
        let Some(first) = action.outputs.first() else {
            continue;
        };
        let Some(last) = ingredients.last(first.as_str()) else {
            continue;
        };
        let key = last.ingredients.key;
        if let Lookup::Entry(entry) = cache.lookup(&key)
            && is_remote_only(&entry)
            && let Ok(line) = record(&key, Some(&entry))
        {
            records.extend(line);
        }
    }
    records
}

fn is_remote_only(entry: &crate::exec::action_cache::AcEntry) -> bool {
    !entry.outputs.is_empty() && entry.outputs.iter().all(|o| o.remote.is_some() && !o.tree)
}

/// Adds records made by `export_records` to the action cache under `cache_dir`, leaving any
/// key it already has alone (its own latest result wins); how many were added. They are
/// appended as they came, not parsed here: the build reads the log once anyway, checking
/// every record. A record is only as trusted as a remote cache hit: its outputs are
/// fetched, verified, when needed, and one naming local blobs finds none and misses.
pub fn import_records(cache_dir: &Path, bytes: &[u8]) -> std::io::Result<usize> {
    crate::exec::action_cache::ActionCache::new(cache_dir.join("ac")).put_records(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_as_bazel_spells_them() {
        assert_eq!(DownloadMode::parse("all"), Some(DownloadMode::All));
        assert_eq!(
            DownloadMode::parse("toplevel"),
            Some(DownloadMode::Toplevel)
        );
        assert_eq!(DownloadMode::parse("minimal"), Some(DownloadMode::Minimal));
        assert_eq!(DownloadMode::parse("some"), None);
    }

    #[test]
    fn identities_differ_by_hash_and_size() {
        let d = |hash: &str, size| proto::Digest {
            hash: hash.to_owned(),
            size_bytes: size,
        };
        assert_eq!(identity(&d("ab", 1)), identity(&d("ab", 1)));
        assert_ne!(identity(&d("ab", 1)), identity(&d("ab", 2)));
        assert_ne!(identity(&d("ab", 1)), identity(&d("ac", 1)));
    }

    #[test]
    fn links_resolve_to_exec_paths_without_their_targets() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        let tree = root.join("forge-out/bin/app/main.runfiles/w/app");
        fs::create_dir_all(&tree)?;
        std::os::unix::fs::symlink("../../../data.txt", tree.join("data.txt"))?;
        std::os::unix::fs::symlink(root.join("src/a"), tree.join("a"))?;
        assert_eq!(
            link_target_in(root, &tree.join("data.txt")).as_deref(),
            Some("forge-out/bin/app/data.txt")
        );
        assert_eq!(
            link_target_in(root, &tree.join("a")).as_deref(),
            Some("src/a")
        );
        Ok(())
    }
}

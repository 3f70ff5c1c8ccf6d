//! The worker's blob cache: digests in, files on disk out. Each blob is fetched from the
//! server's CAS once (checked against its digest), kept read-only under `<work dir>/cas/`
//! (an executable copy apart, as a hard link shares its mode) and hard-linked into each
//! action's input root, so an input shared by many actions is neither fetched nor copied
//! again.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::remote::RemoteError;
use crate::remote::execution::Reapi;
use crate::remote::merkle::TreeFile;
use crate::remote::proto;

/// A name no other thread or process of this cache uses at the same time.
fn unique() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

pub struct BlobCache {
    dir: PathBuf,
}

impl BlobCache {
    pub fn open(dir: &Path) -> io::Result<BlobCache> {
        fs::create_dir_all(dir)?;
        Ok(BlobCache {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, digest: &proto::Digest, executable: bool) -> PathBuf {
        let suffix = if executable { "-x" } else { "" };
        self.dir.join(format!("{}{suffix}", digest.hash))
    }

    /// Puts every file at its path under `root`, fetching the blobs the cache lacks.
    pub fn materialize(
        &self,
        reapi: &Reapi,
        files: &[TreeFile],
        root: &Path,
    ) -> Result<(), RemoteError> {
        let io_err = |what: &str, path: &Path, e: io::Error| {
            RemoteError(format!("cannot {what} '{}': {e}", path.display()))
        };
        let mut missing: Vec<proto::Digest> = files
            .iter()
            .filter(|f| !self.path(&f.digest, f.executable).exists())
            .map(|f| f.digest.clone())
            .collect();
        missing.sort_by(|a, b| a.hash.cmp(&b.hash));
        missing.dedup();
        // In batches, so a large input root is not held in memory at once.
        let mut fetched: HashMap<String, PathBuf> = HashMap::new();
        let mut batch = Vec::new();
        let mut batch_bytes = 0;
        let mut flush = |batch: &mut Vec<proto::Digest>| -> Result<(), RemoteError> {
            let blobs = reapi.read(batch)?;
            for d in batch.drain(..) {
                let data = blobs.get(&d.hash).map(Vec::as_slice).unwrap_or_default();
                let staged = self.dir.join(format!("{}.tmp-{}", d.hash, unique()));
                fs::write(&staged, data).map_err(|e| io_err("write", &staged, e))?;
                fetched.insert(d.hash.clone(), staged);
            }
            Ok(())
        };
        for d in missing {
            batch_bytes += d.size_bytes;
            batch.push(d);
            if batch_bytes > 64 * 1024 * 1024 || batch.len() >= 1000 {
                flush(&mut batch)?;
                batch_bytes = 0;
            }
        }
        if !batch.is_empty() {
            flush(&mut batch)?;
        }
        for f in files {
            let cached = self.path(&f.digest, f.executable);
            if !cached.exists() {
                let staged = fetched.get(&f.digest.hash).ok_or_else(|| {
                    RemoteError(format!("the blob of '{}' was not fetched", f.path))
                })?;
                // A copy per mode: the staged file may serve both.
                let tmp = self
                    .dir
                    .join(format!("{}.mode-{}", cached.display(), unique()));
                fs::copy(staged, &tmp).map_err(|e| io_err("copy", staged, e))?;
                let mode = if f.executable { 0o555 } else { 0o444 };
                fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))
                    .map_err(|e| io_err("chmod", &tmp, e))?;
                fs::rename(&tmp, &cached).map_err(|e| io_err("rename", &tmp, e))?;
            }
            let dest = root.join(&f.path);
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).map_err(|e| io_err("create", parent, e))?;
            }
            if fs::hard_link(&cached, &dest).is_err() {
                // Another file system, or too many links: a copy does.
                fs::copy(&cached, &dest).map_err(|e| io_err("copy", &cached, e))?;
            }
        }
        for staged in fetched.values() {
            let _ = fs::remove_file(staged);
        }
        Ok(())
    }
}

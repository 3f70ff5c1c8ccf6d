//! The cache tiers one kind of result is looked up in and stored to: a key and the output
//! paths it must have in; the entry of the first tier that holds it complete — the local
//! store, then the `--disk_cache`, then the `--remote_cache` — out, with a disk or remote hit
//! copied into the local store so the next build needs neither; and after an execution, the
//! outputs into every tier.
//!
//! Build actions and test results both go through this chain. They differ in the remote key
//! kind, the directory their entries live in beside the shared `cas/` (`ac/` or `tests/`), and
//! how an entry's blobs are put in place, which each passes as a `place` callback. Failing to
//! fill the disk or remote cache never fails a build: both are optimisations shared with
//! others. The stat cache travels with the tiers because storing a tree output and copying a
//! hit into the local store read the outputs through it.

use std::io;
use std::path::Path;

use crate::core::{Digest, ExecPath};
use crate::exec::action_cache::{AcEntry, ActionCache, CachedOutput, Lookup, RemoteDigest};
use crate::exec::cas::{Cas, Fetch};
use crate::exec::stat_cache::StatCache;
use crate::exec::tree;
use crate::remote::{KeyKind, LocalFile, RemoteBlob, RemoteCache, proto};

/// A CAS with an entry log: the local one under the cache dir, or the `--disk_cache`.
struct Store {
    cas: Cas,
    entries: ActionCache,
}

impl Store {
    fn at(dir: &Path, kind: KeyKind) -> Store {
        let entries = match kind {
            KeyKind::Action => "ac",
            KeyKind::Test => "tests",
            // Kept remotely only (`ops::build_entry`); never looked up through the tiers.
            KeyKind::BuildManifest | KeyKind::Build => "builds",
        };
        Store {
            cas: Cas::new(dir.join("cas")),
            entries: ActionCache::new(dir.join(entries)),
        }
    }
}

/// The tier a hit came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    Local,
    Disk,
    Remote,
}

/// A complete entry found in a tier, already put in place.
#[derive(Debug)]
pub struct Hit {
    pub entry: AcEntry,
    pub tier: Tier,
}

/// The blobs of the tier an entry was found in, for a `place` callback to copy out.
pub struct Blobs<'c>(pub(crate) &'c Cas);

impl Blobs<'_> {
    /// Copies the blob of `digest` to `dest` (whose directory must exist) with permission bits
    /// `mode`, verified while copying; `false` if it is missing or was corrupt (and is now
    /// deleted).
    pub fn copy_out(&self, digest: &Digest, dest: &Path, mode: u32) -> io::Result<bool> {
        Ok(self.0.materialize(digest, dest, mode)? == Fetch::Done)
    }
}

/// Why storing a result in the local tier failed; the other tiers do not fail.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot store output in the cache: {0}")]
    Blob(#[source] io::Error),
    #[error("cannot write the action cache: {0}")]
    Entry(#[source] io::Error),
}

impl StoreError {
    /// What failed, without the cause (an action failure's `exit` line).
    pub fn what(&self) -> &'static str {
        match self {
            StoreError::Blob(_) => "cannot store output in the cache",
            StoreError::Entry(_) => "cannot write the action cache",
        }
    }

    pub fn cause(&self) -> &io::Error {
        match self {
            StoreError::Blob(e) | StoreError::Entry(e) => e,
        }
    }
}

/// The local → disk → remote chain for one kind of result, with the stat cache of the exec
/// root its outputs live in.
pub struct CacheTiers<'a> {
    exec_root: &'a Path,
    stat: StatCache,
    kind: KeyKind,
    local: Store,
    disk: Option<Store>,
    remote: Option<&'a RemoteCache>,
    /// Build without the bytes: a remote hit is taken as digests, its blobs left remote.
    without_bytes: bool,
}

impl<'a> CacheTiers<'a> {
    /// The tiers under `cache_dir` (the local store and the stat cache), `disk_cache` and
    /// `remote`. Nothing is read yet: each log is read on its first lookup.
    pub fn open(
        kind: KeyKind,
        exec_root: &'a Path,
        cache_dir: &Path,
        disk_cache: Option<&Path>,
        remote: Option<&'a RemoteCache>,
    ) -> CacheTiers<'a> {
        CacheTiers {
            exec_root,
            stat: StatCache::load(cache_dir.join("stat_cache"), exec_root.to_path_buf()),
            kind,
            local: Store::at(cache_dir, kind),
            disk: disk_cache.map(|dir| Store::at(dir, kind)),
            remote,
            without_bytes: false,
        }
    }

    /// These tiers, taking remote hits without their bytes (`--remote_download_minimal`):
    /// the entry's outputs carry their remote digests and nothing is downloaded.
    pub fn without_bytes(mut self, yes: bool) -> CacheTiers<'a> {
        self.without_bytes = yes;
        self
    }

    pub(crate) fn stat(&self) -> &StatCache {
        &self.stat
    }

    /// The digest of the file at exec path `path`, read only if its stat changed since it was
    /// last hashed; of a directory, its whole content (`source_dir::digest`).
    pub fn digest(&self, path: &str) -> io::Result<Digest> {
        use crate::exec::source_dir::{InputError, digest_input};
        digest_input(&self.stat, path).map_err(|e| match e {
            InputError::Missing(e) => e,
            InputError::Directory(e) => io::Error::other(e.describe(path)),
        })
    }

    /// Writes the stat cache, if anything changed, for the next command.
    pub fn save_digests(&self) -> io::Result<()> {
        Ok(self.stat.save()?)
    }

    /// The entry for `key` from the first tier that has one with exactly the paths `outputs`
    /// and all its blobs, put in place by `place` (`Ok(false)` from it: a blob was missing or
    /// corrupt, try the next tier). `with_remote: false` skips the remote tier. A key the local
    /// store forgot is a miss in every tier: its latest local result must not be overridden.
    pub fn lookup(
        &self,
        key: &Digest,
        outputs: &[ExecPath],
        with_remote: bool,
        place: &mut dyn FnMut(&AcEntry, Blobs) -> io::Result<bool>,
    ) -> Option<Hit> {
        for (tier, store) in [
            (Tier::Local, Some(&self.local)),
            (Tier::Disk, self.disk.as_ref()),
        ] {
            let Some(store) = store else {
                continue;
            };
            let entry = match store.entries.lookup(key) {
                Lookup::Entry(entry) => entry,
                Lookup::Absent => continue,
                Lookup::Forgotten => return None,
            };
            let same_paths = entry.outputs.len() == outputs.len()
                && entry.outputs.iter().zip(outputs).all(|(e, o)| e.path == *o);
            if !same_paths || !matches!(place(&entry, Blobs(&store.cas)), Ok(true)) {
                continue;
            }
            if tier == Tier::Disk {
                // Kept locally, so the next build needs no disk cache; a failure only costs that.
                let copied = entry
                    .outputs
                    .iter()
                    .all(|o| self.store_output(&self.local.cas, o).is_ok());
                if copied {
                    let _ = self.local.entries.put(key, &entry);
                }
            }
            return Some(Hit { entry, tier });
        }
        if with_remote {
            return self.lookup_remote(key, outputs, place);
        }
        None
    }

    /// A hit from the remote cache: the blobs (verified by the remote client) go into the local
    /// store first and are placed from there, so the next build finds them locally.
    fn lookup_remote(
        &self,
        key: &Digest,
        outputs: &[ExecPath],
        place: &mut dyn FnMut(&AcEntry, Blobs) -> io::Result<bool>,
    ) -> Option<Hit> {
        if self.without_bytes {
            let blobs = self.remote?.fetch_digests(self.kind, key, outputs)?;
            let found = blobs
                .into_iter()
                .map(|b| CachedOutput {
                    path: b.path,
                    digest: b
                        .blake3
                        .unwrap_or_else(|| crate::exec::remote_outputs::identity(&b.digest)),
                    executable: b.executable,
                    tree: false,
                    remote: Some(RemoteDigest {
                        hash: b.digest.hash,
                        size: b.digest.size_bytes,
                    }),
                })
                .collect();
            let entry = AcEntry { outputs: found };
            if !matches!(place(&entry, Blobs(&self.local.cas)), Ok(true)) {
                return None;
            }
            let _ = self.local.entries.put(key, &entry);
            return Some(Hit {
                entry,
                tier: Tier::Remote,
            });
        }
        let files = self.remote?.fetch(self.kind, key, outputs)?;
        let mut found = Vec::with_capacity(files.len());
        for f in files {
            let digest = self.local.cas.put_bytes(&f.data).ok()?;
            found.push(CachedOutput {
                path: f.path,
                digest,
                executable: f.executable,
                tree: false,
                remote: None,
            });
        }
        let entry = AcEntry { outputs: found };
        if !matches!(place(&entry, Blobs(&self.local.cas)), Ok(true)) {
            return None;
        }
        let _ = self.local.entries.put(key, &entry);
        Some(Hit {
            entry,
            tier: Tier::Remote,
        })
    }

    /// Stores the outputs of `entry`, as they are now under the exec root, in every tier:
    /// blobs first, then the entry, so an entry never points at blobs not yet stored. Only the
    /// local tier's failure is an error. `with_remote: false` skips the remote tier.
    pub fn store(
        &self,
        key: &Digest,
        entry: &AcEntry,
        with_remote: bool,
    ) -> Result<(), StoreError> {
        // An output left in the remote CAS has no local blob; its entry is only useful
        // with that server, so it goes to neither the local CAS nor the disk cache.
        let remote_only = entry.outputs.iter().any(|o| o.remote.is_some());
        for o in entry.outputs.iter().filter(|o| o.remote.is_none()) {
            self.store_output(&self.local.cas, o)
                .map_err(StoreError::Blob)?;
        }
        self.local
            .entries
            .put(key, entry)
            .map_err(StoreError::Entry)?;
        if remote_only {
            if with_remote && let Some(remote) = self.remote {
                let files: Option<Vec<RemoteBlob>> = entry
                    .outputs
                    .iter()
                    .map(|o| {
                        let d = o.remote.as_ref()?;
                        let digest = proto::Digest {
                            hash: d.hash.clone(),
                            size_bytes: d.size,
                        };
                        // Keyed by its BLAKE3 digest, not its identity: say so.
                        let blake3 = (o.digest != crate::exec::remote_outputs::identity(&digest))
                            .then_some(o.digest);
                        Some(RemoteBlob {
                            path: o.path.clone(),
                            executable: o.executable,
                            digest,
                            blake3,
                        })
                    })
                    .collect();
                // Every output must be remote for the entry to name them all by digest.
                if let Some(files) = files {
                    remote.store_digests(self.kind, key, &files);
                }
            }
            return Ok(());
        }
        if let Some(disk) = &self.disk {
            let stored = entry
                .outputs
                .iter()
                .all(|o| self.store_output(&disk.cas, o).is_ok());
            if stored {
                let _ = disk.entries.put(key, entry);
            }
        }
        if with_remote {
            self.upload(key, entry);
        }
        Ok(())
    }

    /// Takes back the local entry for `key`: later lookups miss in every tier until it is
    /// stored again.
    pub fn forget(&self, key: &Digest) -> io::Result<()> {
        self.local.entries.forget(key)
    }

    fn upload(&self, key: &Digest, entry: &AcEntry) {
        let Some(remote) = self.remote else {
            return;
        };
        if !remote.uploads() {
            return;
        }
        let files: Vec<LocalFile> = entry
            .outputs
            .iter()
            .map(|o| LocalFile {
                path: o.path.clone(),
                executable: o.executable,
                source: self.exec_root.join(&o.path),
            })
            .collect();
        remote.store(self.kind, key, &files);
    }

    /// Puts the output at `o.path` into `cas`, as a copy: its content, or for a tree its files
    /// and manifest.
    fn store_output(&self, cas: &Cas, o: &CachedOutput) -> io::Result<()> {
        if o.tree {
            let files = tree::scan(&self.stat, &o.path)?;
            let digest = tree::store(cas, self.exec_root, &o.path, &files)?;
            if digest != o.digest {
                return Err(io::Error::other(format!(
                    "'{}' changed while stored",
                    o.path
                )));
            }
            return Ok(());
        }
        cas.put_file(&self.exec_root.join(&o.path), &o.digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    /// An exec root with one output file, and a local and a disk cache dir beside it.
    struct Fixture {
        _dir: tempfile::TempDir,
        exec_root: PathBuf,
        cache: PathBuf,
        disk: PathBuf,
    }

    fn fixture() -> io::Result<Fixture> {
        let dir = tempfile::tempdir()?;
        let exec_root = dir.path().join("root");
        fs::create_dir_all(exec_root.join("out"))?;
        Ok(Fixture {
            exec_root,
            cache: dir.path().join("cache"),
            disk: dir.path().join("disk"),
            _dir: dir,
        })
    }

    fn tiers(f: &Fixture) -> CacheTiers<'_> {
        CacheTiers::open(KeyKind::Action, &f.exec_root, &f.cache, Some(&f.disk), None)
    }

    /// Writes `out/x` with `content`; the entry naming it.
    fn output(f: &Fixture, content: &[u8]) -> io::Result<AcEntry> {
        fs::write(f.exec_root.join("out/x"), content)?;
        Ok(AcEntry {
            outputs: vec![CachedOutput {
                path: ExecPath::new("out/x"),
                digest: Digest::of_bytes(content),
                executable: false,
                tree: false,
                remote: None,
            }],
        })
    }

    /// Places each output under the exec root, as the callers do.
    fn place_in(root: &Path) -> impl FnMut(&AcEntry, Blobs) -> io::Result<bool> + '_ {
        move |entry, blobs| {
            for o in &entry.outputs {
                if !blobs.copy_out(&o.digest, &root.join(&o.path), 0o444)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
    }

    fn paths() -> Vec<ExecPath> {
        vec![ExecPath::new("out/x")]
    }

    fn make_writable(path: &Path) -> io::Result<()> {
        fs::set_permissions(path, fs::Permissions::from_mode(0o644))
    }

    #[test]
    fn store_fills_every_tier() -> io::Result<()> {
        let f = fixture()?;
        let key = Digest::of_bytes(b"key");
        let entry = output(&f, b"content")?;
        tiers(&f)
            .store(&key, &entry, true)
            .map_err(io::Error::other)?;

        let local = Store::at(&f.cache, KeyKind::Action);
        let disk = Store::at(&f.disk, KeyKind::Action);
        for store in [&local, &disk] {
            assert_eq!(store.entries.get(&key), Some(entry.clone()));
            assert_eq!(
                store.cas.read(&entry.outputs[0].digest)?.as_deref(),
                Some(&b"content"[..])
            );
        }
        Ok(())
    }

    #[test]
    fn a_disk_hit_is_copied_into_the_local_store() -> io::Result<()> {
        let f = fixture()?;
        let key = Digest::of_bytes(b"key");
        let entry = output(&f, b"shared")?;
        // Only the disk cache has it, as after a build in another workspace.
        let other = tempfile::tempdir()?;
        CacheTiers::open(
            KeyKind::Action,
            &f.exec_root,
            other.path(),
            Some(&f.disk),
            None,
        )
        .store(&key, &entry, false)
        .map_err(io::Error::other)?;
        fs::remove_file(f.exec_root.join("out/x"))?;

        let hit = tiers(&f)
            .lookup(&key, &paths(), true, &mut place_in(&f.exec_root))
            .expect("a disk hit");
        assert_eq!(hit.tier, Tier::Disk);
        assert_eq!(hit.entry, entry);
        assert_eq!(fs::read(f.exec_root.join("out/x"))?, b"shared");

        // Without the disk cache, the local store alone has it now.
        let local_only = CacheTiers::open(KeyKind::Action, &f.exec_root, &f.cache, None, None);
        let hit = local_only
            .lookup(&key, &paths(), true, &mut place_in(&f.exec_root))
            .expect("a local hit");
        assert_eq!(hit.tier, Tier::Local);
        Ok(())
    }

    #[test]
    fn a_corrupt_blob_in_a_tier_is_a_miss_there() -> io::Result<()> {
        let f = fixture()?;
        let key = Digest::of_bytes(b"key");
        let entry = output(&f, b"good")?;
        tiers(&f)
            .store(&key, &entry, false)
            .map_err(io::Error::other)?;
        let digest = entry.outputs[0].digest;

        // The local blob is damaged: the disk tier serves the hit.
        let local_blob = Store::at(&f.cache, KeyKind::Action).cas.blob_path(&digest);
        make_writable(&local_blob)?;
        fs::write(&local_blob, b"evil")?;
        let hit = tiers(&f)
            .lookup(&key, &paths(), false, &mut place_in(&f.exec_root))
            .expect("a disk hit");
        assert_eq!(hit.tier, Tier::Disk);
        assert_eq!(fs::read(f.exec_root.join("out/x"))?, b"good");

        // Damaged in both: a miss, and the output on disk is not replaced by bad bytes.
        for dir in [&f.cache, &f.disk] {
            let blob = Store::at(dir, KeyKind::Action).cas.blob_path(&digest);
            make_writable(&blob)?;
            fs::write(&blob, b"evil")?;
        }
        let miss = tiers(&f).lookup(&key, &paths(), false, &mut place_in(&f.exec_root));
        assert!(miss.is_none());
        assert_eq!(fs::read(f.exec_root.join("out/x"))?, b"good");
        Ok(())
    }

    #[test]
    fn other_paths_or_a_forgotten_key_miss_in_every_tier() -> io::Result<()> {
        let f = fixture()?;
        let key = Digest::of_bytes(b"key");
        let entry = output(&f, b"pass")?;
        let chain = tiers(&f);
        chain.store(&key, &entry, false).map_err(io::Error::other)?;
        let other_paths = [ExecPath::new("out/y")];
        assert!(
            chain
                .lookup(&key, &other_paths, false, &mut place_in(&f.exec_root))
                .is_none()
        );
        chain.forget(&key)?;
        // The disk cache still has the entry, but the local verdict is newer.
        assert!(
            chain
                .lookup(&key, &paths(), false, &mut place_in(&f.exec_root))
                .is_none()
        );
        Ok(())
    }
}

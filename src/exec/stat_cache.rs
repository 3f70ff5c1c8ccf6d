//! The stat cache: an exec path in, its content digest out, re-reading the file only when its
//! `stat` changed. Also remembers, per output path, which action key last put which digest
//! there (the "output index"), so a no-op build needs neither action-cache reads nor hashing;
//! for an output left in the remote CAS (build without the bytes), also its remote digest, so
//! a no-op build knows it without the action cache either.
//!
//! Both tables persist in one file, `<cache_dir>/stat_cache`, loaded at the start of a build and
//! rewritten atomically (temp + rename) at the end when something changed. The file ends with a
//! BLAKE3 checksum of its body: a torn or truncated write is detected and the whole file is
//! ignored, which is why we skip the (slow) fsync — losing the file only costs re-hashing.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufRead};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::core::Digest;
use crate::core::fs::{PathError, write_atomic};

const HEADER: &str = "forge-stat-cache 1";

/// A file's kernel timestamps are taken from a coarse clock (one tick, up to 10 ms). A file
/// hashed within this margin before the cache was saved might be rewritten in the same tick
/// with the same size, leaving an identical stat; such entries are dropped on load and re-hashed.
const RACY_MARGIN_NS: i64 = 50_000_000;

/// The parts of `stat` that change whenever a file's content may have changed: `ctime` and the
/// inode cannot be set back by `touch -d` or hidden by an atomic rename, unlike `mtime` alone.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FileStat {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub ino: u64,
    /// Permission bits and file type (`st_mode`).
    pub mode: u32,
}

impl FileStat {
    pub fn from_metadata(m: &fs::Metadata) -> FileStat {
        FileStat {
            size: m.size(),
            mtime_ns: m.mtime().saturating_mul(1_000_000_000) + m.mtime_nsec(),
            ctime_ns: m.ctime().saturating_mul(1_000_000_000) + m.ctime_nsec(),
            ino: m.ino(),
            mode: m.mode(),
        }
    }

    /// Stats `path`, following symlinks.
    pub fn of(path: &Path) -> io::Result<FileStat> {
        fs::metadata(path).map(|m| FileStat::from_metadata(&m))
    }

    pub fn is_executable(&self) -> bool {
        self.mode & 0o111 != 0
    }
}

/// What we last placed at an output path: the key of the action that produced it, its digest
/// and whether it was made executable.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct OutputRecord {
    pub action_key: Digest,
    pub digest: Digest,
    pub executable: bool,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    stat: FileStat,
    digest: Digest,
}

/// The digest in the remote CAS of an output whose bytes stay there.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RemoteBlob {
    pub hash: String,
    pub size: i64,
}

#[derive(Default)]
struct Tables {
    files: PathMap<Entry>,
    outputs: PathMap<OutputRecord>,
    /// Of the paths in `outputs`, those whose output (as that record names it) is in the
    /// remote CAS.
    remote: PathMap<RemoteBlob>,
}

/// Shared by all worker threads of one build.
pub struct StatCache {
    file: PathBuf,
    exec_root: PathBuf,
    tables: Mutex<Tables>,
    dirty: AtomicBool,
    /// Source files already checked in this build, and their digests (see `source_digest`).
    sources: Mutex<PathMap<Digest>>,
    /// The exec root, opened on the first `stat`: paths are looked up from it rather than
    /// from `/`, which halves the kernel's path walk of each of a no-op build's stats.
    root_dir: std::sync::OnceLock<Option<std::os::fd::OwnedFd>>,
}

impl StatCache {
    /// An empty cache that will be saved to `file`; paths are resolved against `exec_root`.
    pub fn new(file: PathBuf, exec_root: PathBuf) -> StatCache {
        StatCache {
            file,
            exec_root,
            tables: Mutex::new(Tables::default()),
            dirty: AtomicBool::new(false),
            sources: Mutex::new(PathMap::default()),
            root_dir: std::sync::OnceLock::new(),
        }
    }

    /// Loads `file`; a missing, foreign (other exec root), or damaged file gives an empty cache.
    pub fn load(file: PathBuf, exec_root: PathBuf) -> StatCache {
        let cache = StatCache::new(file, exec_root);
        // Parsed as it is read: at 50,000 outputs the file is 24 MB, which held whole was a
        // sixth of a no-op build's peak memory.
        if let Ok(file) = fs::File::open(&cache.file)
            && let Some(tables) = parse(
                io::BufReader::with_capacity(1 << 16, file),
                &cache.exec_root,
            )
        {
            *cache.lock() = tables;
        }
        cache
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        // A poisoned lock only means another thread panicked mid-update of a HashMap insert;
        // the maps are still structurally valid, so keep going.
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn exec_root(&self) -> &Path {
        &self.exec_root
    }

    /// The digest of the file at exec path `path`; reads it only if its stat is not the one
    /// recorded. `Err` if it does not exist or cannot be read.
    pub fn digest(&self, path: &str) -> io::Result<Digest> {
        self.digest_and_stat(path).map(|(d, _)| d)
    }

    /// The digest of the source file at exec path `path`, checked (`stat`, and read if that
    /// changed) once per build: the build takes each source as it first found it, as Bazel
    /// does, so a header that a thousand compiles declare costs one `stat`, not a thousand.
    /// Only for sources: the build never writes them, while it rewrites outputs.
    pub fn source_digest(&self, path: &str) -> io::Result<Digest> {
        let seen = |s: &Self| {
            s.sources
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(path)
                .copied()
        };
        if let Some(digest) = seen(self) {
            return Ok(digest);
        }
        let digest = self.digest(path)?;
        self.sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_owned(), digest);
        Ok(digest)
    }

    /// Like `digest`, also returning the current stat.
    pub fn digest_and_stat(&self, path: &str) -> io::Result<(Digest, FileStat)> {
        let stat = self.stat_of(path)?;
        if let Some(e) = self.lock().files.get(path)
            && e.stat == stat
        {
            return Ok((e.digest, stat));
        }
        let full = self.exec_root.join(path);
        let digest = Digest::of_file(&full)?;
        // Only trust the pairing if nothing changed while we were reading.
        let after = FileStat::of(&full)?;
        if after == stat {
            self.record(path, stat, digest);
        }
        Ok((digest, after))
    }

    /// The stat of the file at exec path `path`, following symlinks.
    fn stat_of(&self, path: &str) -> io::Result<FileStat> {
        use nix::fcntl::OFlag;
        let root = self.root_dir.get_or_init(|| {
            let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
            nix::fcntl::open(&self.exec_root, flags, nix::sys::stat::Mode::empty()).ok()
        });
        match root {
            Some(dir) if !path.is_empty() => {
                nix::sys::stat::fstatat(dir, path, nix::fcntl::AtFlags::empty())
                    .map(|st| FileStat {
                        size: st.st_size as u64,
                        mtime_ns: st.st_mtime.saturating_mul(1_000_000_000) + st.st_mtime_nsec,
                        ctime_ns: st.st_ctime.saturating_mul(1_000_000_000) + st.st_ctime_nsec,
                        ino: st.st_ino,
                        mode: st.st_mode,
                    })
                    .map_err(io::Error::from)
            }
            _ => FileStat::of(&self.exec_root.join(path)),
        }
    }

    /// Records that the file at `path` with `stat` has `digest` (we just wrote it).
    pub fn record(&self, path: &str, stat: FileStat, digest: Digest) {
        self.lock()
            .files
            .insert(path.to_owned(), Entry { stat, digest });
        self.dirty.store(true, Ordering::Relaxed);
    }

    pub fn output(&self, path: &str) -> Option<OutputRecord> {
        self.lock().outputs.get(path).copied()
    }

    /// Records what was placed at output `path`, with where its bytes are in the remote CAS
    /// if they are.
    pub fn set_output_at(&self, path: &str, record: OutputRecord, remote: Option<RemoteBlob>) {
        let mut t = self.lock();
        if t.outputs.get(path) != Some(&record) {
            t.outputs.insert(path.to_owned(), record);
            self.dirty.store(true, Ordering::Relaxed);
        }
        if t.remote.get(path) != remote.as_ref() {
            match remote {
                Some(remote) => t.remote.insert(path.to_owned(), remote),
                None => t.remote.remove(path),
            };
            self.dirty.store(true, Ordering::Relaxed);
        }
    }

    /// Where the output at `path` is in the remote CAS, if its record says it is there.
    pub fn remote_output(&self, path: &str) -> Option<RemoteBlob> {
        self.lock().remote.get(path).cloned()
    }

    pub fn forget_output(&self, path: &str) {
        let mut t = self.lock();
        let had = t.outputs.remove(path).is_some() | t.remote.remove(path).is_some();
        if had {
            self.dirty.store(true, Ordering::Relaxed);
        }
    }

    /// Writes the cache if anything changed since it was loaded.
    pub fn save(&self) -> Result<(), PathError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        self.save_as_of(now)
    }

    /// `save`, stamped as saved at `now_ns` (nanoseconds since the epoch): the stamp decides
    /// which entries the next load trusts, and tests pass it instead of waiting for the clock.
    fn save_as_of(&self, now_ns: i64) -> Result<(), PathError> {
        if !self.dirty.load(Ordering::Relaxed) {
            return Ok(());
        }
        let text = {
            let t = self.lock();
            serialize(&t, &self.exec_root, now_ns)
        };
        // Not fsynced: a torn or damaged file fails its checksum and is ignored on load.
        write_atomic(&self.file, text.as_bytes())?;
        self.dirty.store(false, Ordering::Relaxed);
        Ok(())
    }
}

fn serialize(t: &Tables, exec_root: &Path, now: i64) -> String {
    let mut out = String::with_capacity(64 + (t.files.len() + t.outputs.len()) * 200);
    let _ = writeln!(out, "{HEADER}");
    let _ = writeln!(out, "root {}", exec_root.display());
    let _ = writeln!(out, "saved {now}");
    // Paths with a newline cannot be stored in a line format; they are just re-hashed.
    for (path, e) in t.files.iter().filter(|(p, _)| !p.contains('\n')) {
        let s = &e.stat;
        let _ = writeln!(
            out,
            "F {} {} {} {} {} {} {}",
            e.digest, s.size, s.mtime_ns, s.ctime_ns, s.ino, s.mode, path
        );
    }
    for (path, o) in t.outputs.iter().filter(|(p, _)| !p.contains('\n')) {
        let _ = writeln!(
            out,
            "O {} {} {} {}",
            o.action_key,
            o.digest,
            u8::from(o.executable),
            path
        );
    }
    // A hash with a space (no known digest function makes one) cannot be stored: the
    // output is then restored through the action cache, as without this table.
    for (path, r) in t.remote.iter().filter(|(p, r)| {
        !p.contains('\n') && !r.hash.contains([' ', '\n']) && t.outputs.contains_key(*p)
    }) {
        let _ = writeln!(out, "R {} {} {}", r.size, r.hash, path);
    }
    let sum = Digest::of_bytes(out.as_bytes());
    let _ = writeln!(out, "sum {sum}");
    out
}

/// The tables of a stat cache file read from `reader`, if it is whole and for `exec_root`:
/// each line is taken as it comes and added to the checksum, and the last line must be the
/// checksum of all before it.
fn parse(mut reader: impl BufRead, exec_root: &Path) -> Option<Tables> {
    let mut hasher = blake3::Hasher::new();
    let mut reading = Reading {
        root: exec_root.display().to_string(),
        saved: None,
        line: 0,
        tables: Tables::default(),
    };
    // A line is taken once the next one is read: the last one is the checksum.
    let (mut line, mut next) = (Vec::with_capacity(256), Vec::with_capacity(256));
    if reader.read_until(b'\n', &mut line).ok()? == 0 {
        return None;
    }
    loop {
        next.clear();
        if reader.read_until(b'\n', &mut next).ok()? == 0 {
            break;
        }
        hasher.update(&line);
        reading.take(std::str::from_utf8(&line).ok()?.strip_suffix('\n')?)?;
        std::mem::swap(&mut line, &mut next);
    }
    let sum_line = std::str::from_utf8(&line).ok()?;
    let sum = Digest::from_hex(sum_line.strip_prefix("sum ")?.trim_end())?;
    if Digest(*hasher.finalize().as_bytes()) != sum || reading.line < 3 {
        return None;
    }
    let mut t = reading.tables;
    // Only as part of an output record (written after them).
    t.remote.retain(|p, _| t.outputs.contains_key(p));
    Some(t)
}

/// A stat cache file being read, line by line.
struct Reading {
    root: String,
    saved: Option<i64>,
    line: usize,
    tables: Tables,
}

impl Reading {
    fn take(&mut self, line: &str) -> Option<()> {
        self.line += 1;
        match self.line {
            1 => return (line == HEADER).then_some(()),
            2 => return (line.strip_prefix("root ")? == self.root).then_some(()),
            3 => {
                self.saved = Some(line.strip_prefix("saved ")?.parse().ok()?);
                return Some(());
            }
            _ => {}
        }
        let t = &mut self.tables;
        if let Some(rest) = line.strip_prefix("F ") {
            let mut f = rest.splitn(7, ' ');
            let digest = Digest::from_hex(f.next()?)?;
            let stat = FileStat {
                size: f.next()?.parse().ok()?,
                mtime_ns: f.next()?.parse().ok()?,
                ctime_ns: f.next()?.parse().ok()?,
                ino: f.next()?.parse().ok()?,
                mode: f.next()?.parse().ok()?,
            };
            let path = f.next()?;
            if stat.mtime_ns.max(stat.ctime_ns) + RACY_MARGIN_NS < self.saved? {
                t.files.insert(path.to_owned(), Entry { stat, digest });
            }
        } else if let Some(rest) = line.strip_prefix("O ") {
            let mut f = rest.splitn(4, ' ');
            let action_key = Digest::from_hex(f.next()?)?;
            let digest = Digest::from_hex(f.next()?)?;
            let executable = f.next()? == "1";
            t.outputs.insert(
                f.next()?.to_owned(),
                OutputRecord {
                    action_key,
                    digest,
                    executable,
                },
            );
        } else if let Some(rest) = line.strip_prefix("R ") {
            let mut f = rest.splitn(3, ' ');
            let size = f.next()?.parse().ok()?;
            let hash = f.next()?.to_owned();
            t.remote
                .insert(f.next()?.to_owned(), RemoteBlob { hash, size });
        } else {
            return None;
        }
        Some(())
    }
}

/// The hash of the tables' keys, exec paths: a multiply-rotate hash a word at a time (as
/// rustc's own maps use), several times faster than the standard library's SipHash on
/// paths, which was a twentieth of a no-op build. The keys are the build's own paths, not
/// chosen by an adversary.
#[derive(Default, Clone, Copy)]
pub struct PathHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl std::hash::Hasher for PathHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let w = u64::from_le_bytes(w.try_into().expect("eight bytes"));
            h = (h.rotate_left(5) ^ w).wrapping_mul(SEED);
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(SEED);
        }
        self.0 = h;
    }

    fn write_u8(&mut self, b: u8) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(SEED);
    }

    fn finish(&self) -> u64 {
        // The table picks buckets by the low bits, which a multiplication mixes least.
        let h = self.0;
        (h ^ (h >> 32)).wrapping_mul(SEED) ^ (h >> 29)
    }
}

/// A map keyed by exec path, hashed with `PathHasher`.
pub type PathMap<V> = HashMap<String, V, std::hash::BuildHasherDefault<PathHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    /// The time a save must be stamped with for the next load to trust `stat`: just past its
    /// racy window.
    fn settled_after(stat: &FileStat) -> i64 {
        stat.mtime_ns.max(stat.ctime_ns) + RACY_MARGIN_NS + 1
    }

    #[test]
    fn unchanged_stat_is_not_reread_and_changes_are_seen() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().to_path_buf();
        fs::write(root.join("a"), b"one")?;
        let cache = StatCache::new(root.join("sc"), root.clone());
        assert_eq!(cache.digest("a")?, Digest::of_bytes(b"one"));
        // Forge a wrong digest for the current stat: a cache that re-read the file would
        // notice; ours must trust the stat.
        let stat = FileStat::of(&root.join("a"))?;
        cache.record("a", stat, Digest::of_bytes(b"forged"));
        assert_eq!(cache.digest("a")?, Digest::of_bytes(b"forged"));
        // A content change (different size) changes the stat, so the file is re-read.
        fs::write(root.join("a"), b"three")?;
        assert_eq!(cache.digest("a")?, Digest::of_bytes(b"three"));
        assert!(cache.digest("missing").is_err());
        Ok(())
    }

    #[test]
    fn a_source_is_checked_once_per_build() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().to_path_buf();
        fs::write(root.join("a.h"), b"one")?;
        let cache = StatCache::new(root.join("sc"), root.clone());
        assert_eq!(cache.source_digest("a.h")?, Digest::of_bytes(b"one"));
        // Changed during the build: this build keeps the digest it found first, without a
        // `stat` (the file is even gone); the next build (a new cache) sees the change.
        fs::write(root.join("a.h"), b"two, longer")?;
        assert_eq!(cache.source_digest("a.h")?, Digest::of_bytes(b"one"));
        cache.save_as_of(i64::MAX)?;
        fs::remove_file(root.join("a.h"))?;
        assert_eq!(cache.source_digest("a.h")?, Digest::of_bytes(b"one"));
        fs::write(root.join("a.h"), b"two, longer")?;
        let next = StatCache::load(root.join("sc"), root.clone());
        assert_eq!(next.source_digest("a.h")?, Digest::of_bytes(b"two, longer"));
        assert!(next.source_digest("missing").is_err());
        Ok(())
    }

    #[test]
    fn persists_round_trip_and_rejects_damage() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().to_path_buf();
        fs::write(root.join("a b"), b"x")?;
        let file = root.join("sc");
        let cache = StatCache::new(file.clone(), root.clone());
        let forged = Digest::of_bytes(b"forged");
        let stat = FileStat::of(&root.join("a b"))?;
        cache.record("a b", stat, forged);
        let rec = OutputRecord {
            action_key: Digest::of_bytes(b"k"),
            digest: forged,
            executable: true,
        };
        cache.set_output_at("out/x", rec, None);
        cache.save_as_of(settled_after(&stat))?;

        let loaded = StatCache::load(file.clone(), root.clone());
        assert_eq!(
            loaded.digest("a b")?,
            forged,
            "entry survived the round trip"
        );
        assert_eq!(loaded.output("out/x"), Some(rec));

        // Another exec root: nothing is trusted.
        let other = StatCache::load(file.clone(), root.join("elsewhere"));
        assert_eq!(other.output("out/x"), None);

        // A truncated file is ignored as a whole.
        let text = fs::read(&file)?;
        fs::write(&file, &text[..text.len() - 10])?;
        let damaged = StatCache::load(file.clone(), root.clone());
        assert_eq!(damaged.digest("a b")?, Digest::of_bytes(b"x"));
        assert_eq!(damaged.output("out/x"), None);
        Ok(())
    }

    #[test]
    fn a_file_read_line_by_line_is_refused_whole_for_any_damage() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().to_path_buf();
        let file = root.join("sc");
        let cache = StatCache::new(file.clone(), root.clone());
        let rec = OutputRecord {
            action_key: Digest::of_bytes(b"k"),
            digest: Digest::of_bytes(b"d"),
            executable: false,
        };
        for i in 0..200 {
            cache.set_output_at(&format!("out/{i}"), rec, None);
        }
        cache.save_as_of(i64::MAX)?;
        let intact = fs::read(&file)?;
        assert_eq!(
            StatCache::load(file.clone(), root.clone()).output("out/199"),
            Some(rec)
        );
        let lines = intact.iter().filter(|b| **b == b'\n').count();
        let mut flipped = intact.clone();
        flipped[intact.len() / 2] ^= 1;
        let mut added = intact.clone();
        added.extend_from_slice(b"O x\n");
        let mut no_sum = intact.clone();
        no_sum.truncate(intact.len() - 70);
        let header_only = intact[..intact.iter().position(|b| *b == b'\n').unwrap() + 1].to_vec();
        for (what, damaged) in [
            ("a flipped bit", flipped),
            ("a line after the checksum", added),
            ("no checksum", no_sum),
            ("the header alone", header_only),
            ("nothing", Vec::new()),
        ] {
            fs::write(&file, &damaged)?;
            let loaded = StatCache::load(file.clone(), root.clone());
            assert_eq!(loaded.output("out/0"), None, "{what} ({lines} lines)");
            assert_eq!(loaded.output("out/199"), None, "{what}");
        }
        Ok(())
    }

    #[test]
    fn remote_digests_of_outputs_persist_with_their_records() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().to_path_buf();
        let file = root.join("sc");
        let cache = StatCache::new(file.clone(), root.clone());
        let rec = OutputRecord {
            action_key: Digest::of_bytes(b"k"),
            digest: Digest::of_bytes(b"d"),
            executable: false,
        };
        let blob = RemoteBlob {
            hash: "ab".repeat(32),
            size: 7,
        };
        cache.set_output_at("out/a b", rec, Some(blob.clone()));
        cache.set_output_at("out/local", rec, None);
        cache.set_output_at("out/gone", rec, Some(blob.clone()));
        cache.forget_output("out/gone");
        cache.save_as_of(i64::MAX)?;
        let loaded = StatCache::load(file.clone(), root.clone());
        assert_eq!(loaded.remote_output("out/a b"), Some(blob));
        assert_eq!(loaded.output("out/a b"), Some(rec));
        assert_eq!(loaded.remote_output("out/local"), None);
        assert_eq!(loaded.remote_output("out/gone"), None);
        // A local output made where a remote one was: the remote digest goes.
        loaded.set_output_at("out/a b", rec, None);
        assert_eq!(loaded.remote_output("out/a b"), None);
        Ok(())
    }

    #[test]
    fn recently_changed_files_are_not_trusted_after_reload() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().to_path_buf();
        fs::write(root.join("a"), b"v1")?;
        let file = root.join("sc");
        let cache = StatCache::new(file.clone(), root.clone());
        let stat = FileStat::of(&root.join("a"))?;
        cache.record("a", stat, Digest::of_bytes(b"forged"));
        // Saved within the racy window of the file's change (the clock given, so a slow
        // machine cannot push the save past it): a same-size rewrite in the same clock tick
        // would be invisible, so the loaded cache re-reads the file.
        cache.save_as_of(settled_after(&stat) - 1)?;
        let loaded = StatCache::load(file, root);
        assert_eq!(loaded.digest("a")?, Digest::of_bytes(b"v1"));
        Ok(())
    }
}

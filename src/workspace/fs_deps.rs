//! What loading read from the file system: files (by content) and directory listings, noted
//! while a command loads packages, so that a later command can tell with a few `stat`s
//! whether loading and analysis would come out the same (see `analysis::plan`).
//!
//! Notes go to one process-wide recorder: forge runs one command per process, and the places
//! that touch the file system (BUILD and .bzl reads, `glob`, the package walk of `//...`) are
//! far apart in the call graph.
//!
//! A file is trusted unchanged when its stat (size, mtime, ctime, inode) is the one noted,
//! and otherwise compared by content, so `touch` costs one read. A directory is trusted when
//! its stat is unchanged, and otherwise compared by its listing (names and kinds). A stat
//! taken less than a second before it was noted is not trusted at all ("racily clean", as git
//! calls it): the file system's clock is coarser than a quick edit.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::core::Digest;

/// The stat fields that change when a file or directory does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Stat {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
}

impl Stat {
    fn of(path: &Path) -> Option<Stat> {
        let m = fs::metadata(path).ok()?;
        Some(Stat {
            size: m.size(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
            ino: m.ino(),
        })
    }

    /// Too recent to be sure a later change would show in the stat.
    fn is_racy(&self, noted_at_ns: i128) -> bool {
        noted_at_ns - self.mtime_ns.max(self.ctime_ns) < 1_000_000_000
    }
}

/// One noted fact: the stat seen before reading (if it can be trusted) and what was read;
/// `None` content means the path did not exist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Seen {
    stat: Option<Stat>,
    content: Option<Digest>,
}

/// Everything loading depended on, by absolute path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsDeps {
    #[serde(deserialize_with = "crate::core::sorted_map::deserialize")]
    files: BTreeMap<PathBuf, Seen>,
    #[serde(deserialize_with = "crate::core::sorted_map::deserialize")]
    dirs: BTreeMap<PathBuf, Seen>,
}

/// What one command noted: everything loading read, and which of those files were read
/// outside any package's account (WORKSPACE, what fetching read): a change to one of those
/// is not a change to a package's result (see `direct_reads`).
#[derive(Default)]
struct Recording {
    deps: FsDeps,
    direct_files: BTreeSet<PathBuf>,
}

static RECORDER: Mutex<Option<Recording>> = Mutex::new(None);

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// What is seen of `path` now, judged at the moment of noting.
fn seen(stat: Option<Stat>, content: Option<Digest>) -> Seen {
    Seen {
        stat: stat.filter(|s| !s.is_racy(now_ns())),
        content,
    }
}

fn note(path: &Path, is_dir: bool, seen: &Seen) {
    let mut recorder = RECORDER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(recording) = recorder.as_mut() {
        recording.deps.insert(path, is_dir, seen);
    }
}

/// Starts noting (and forgets anything noted before).
pub fn start_recording() {
    *RECORDER.lock().unwrap_or_else(|e| e.into_inner()) = Some(Recording::default());
}

/// Stops noting and returns what was noted.
pub fn take_recording() -> FsDeps {
    take_recording_with_direct_reads().0
}

/// Stops noting and returns what was noted, and which of the files were read outside any
/// package's account (by `read_to_string`, not `read_to_string_into`).
pub fn take_recording_with_direct_reads() -> (FsDeps, BTreeSet<PathBuf>) {
    let recording = RECORDER
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .unwrap_or_default();
    (recording.deps, recording.direct_files)
}

/// The files noted so far as read outside any package's account (by `read_to_string`).
pub fn direct_reads() -> BTreeSet<PathBuf> {
    RECORDER
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map(|r| r.direct_files.clone())
        .unwrap_or_default()
}

/// Reads a file that loading depends on outside any package's account (WORKSPACE, the
/// files fetching reads), noting it as such.
pub fn read_to_string(path: &Path) -> io::Result<String> {
    if let Some(recording) = RECORDER.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        recording.direct_files.insert(path.to_owned());
    }
    read_to_string_into(path, &mut FsDeps::default())
}

/// Reads a file that loading depends on, noting it both in the process-wide recorder and in
/// `deps` (the account of one package, kept with its stored loading result).
pub fn read_to_string_into(path: &Path, deps: &mut FsDeps) -> io::Result<String> {
    let before = Stat::of(path);
    let text = fs::read_to_string(path);
    let seen = match &text {
        Ok(t) => seen(before, Some(Digest::of_bytes(t.as_bytes()))),
        Err(_) => seen(None, None),
    };
    note(path, false, &seen);
    deps.insert(path, false, &seen);
    text
}

/// Notes in `deps` only that `path` was found not to be a file. The recorder is not told:
/// what it keeps for a plan already holds the listing of the directory, which shows the
/// file appearing (and a plan checks every path it holds on every no-op build).
pub fn missing_into(path: &Path, deps: &mut FsDeps) {
    deps.insert(path, false, &seen(None, None));
}

/// Notes that loading looked at the entries of `dir` (call before listing it).
pub fn listed(dir: &Path) {
    // Once per directory: analysis asks for the directory of every source file it checks,
    // and listing a directory again per file made that quadratic.
    match RECORDER.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        None => return,
        Some(recording) if recording.deps.dirs.contains_key(dir) => return,
        Some(_) => {}
    }
    let before = Stat::of(dir);
    note(dir, true, &seen(before, listing_digest(dir)));
}

/// Notes that loading looked at the entries of `dir`, in the recorder and in `deps` (call
/// before listing it). What the recorder saw first is what `deps` keeps: an earlier listing
/// can only make the package look changed when it is not, never the reverse.
pub fn listed_into(dir: &Path, deps: &mut FsDeps) {
    if deps.dirs.contains_key(dir) {
        return;
    }
    let recorded = RECORDER
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|r| r.deps.dirs.get(dir).cloned());
    let seen = recorded.unwrap_or_else(|| {
        let seen = seen(Stat::of(dir), listing_digest(dir));
        note(dir, true, &seen);
        seen
    });
    deps.insert(dir, true, &seen);
}

/// Notes what `deps` read in the recorder: loading reused a result that read them, so a
/// plan made from it depends on them as if they had been read now. Files noted missing
/// (`missing_into`) are left out, as they would have been.
pub fn note_all(deps: &FsDeps) {
    let mut recorder = RECORDER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(recorder) = recorder.as_mut().map(|r| &mut r.deps) {
        for (path, seen) in &deps.files {
            if seen.content.is_some() {
                recorder.insert(path, false, seen);
            }
        }
        for (path, seen) in &deps.dirs {
            recorder.insert(path, true, seen);
        }
    }
}

/// The names and kinds of a directory's entries, sorted, as one digest; `None` if it is not
/// a readable directory.
pub fn listing_digest(dir: &Path) -> Option<Digest> {
    let mut entries: Vec<String> = fs::read_dir(dir)
        .ok()?
        .flatten()
        // The links forge itself puts in the workspace root are not something loading
        // reads (the package walk skips symlinks); creating them must not count as a change.
        .filter(|e| {
            !(crate::core::layout::is_convenience_link_name(&e.file_name().to_string_lossy())
                && e.file_type().is_ok_and(|t| t.is_symlink()))
        })
        .map(|e| {
            let kind = match e.file_type() {
                Ok(t) if t.is_dir() => 'd',
                Ok(t) if t.is_symlink() => 'l',
                _ => 'f',
            };
            format!("{kind} {}", e.file_name().to_string_lossy())
        })
        .collect();
    entries.sort();
    Some(Digest::of_bytes(entries.join("\n").as_bytes()))
}

impl FsDeps {
    fn insert(&mut self, path: &Path, is_dir: bool, seen: &Seen) {
        let map = if is_dir {
            &mut self.dirs
        } else {
            &mut self.files
        };
        if !map.contains_key(path) {
            map.insert(path.to_owned(), seen.clone());
        }
    }

    /// Adds what `other` noted, keeping what this set noted first.
    pub fn merge(&mut self, other: &FsDeps) {
        for (path, seen) in &other.files {
            self.insert(path, false, seen);
        }
        for (path, seen) in &other.dirs {
            self.insert(path, true, seen);
        }
    }

    /// Whether every noted file and directory is still as it was.
    pub fn unchanged(&self) -> bool {
        let file_same = |path: &Path, seen: &Seen| {
            if seen.stat.is_some() && Stat::of(path) == seen.stat {
                return true;
            }
            let now = fs::read(path).ok().map(|b| Digest::of_bytes(&b));
            now == seen.content
        };
        let dir_same = |path: &Path, seen: &Seen| {
            if seen.stat.is_some() && Stat::of(path) == seen.stat {
                return true;
            }
            listing_digest(path) == seen.content
        };
        self.files.iter().all(|(p, s)| file_same(p, s))
            && self.dirs.iter().all(|(p, s)| dir_same(p, s))
    }

    /// A digest of the files noted (path and content), leaving out `except`: for a
    /// package, the .bzl files its loading read without its BUILD file, which decide its
    /// rules' definitions (analysis keys its targets on it).
    pub fn files_digest_except(&self, except: &Path) -> Digest {
        let mut hasher = blake3::Hasher::new();
        for (path, seen) in self.files.iter().filter(|(p, _)| p.as_path() != except) {
            hasher.update(path.as_os_str().as_encoded_bytes());
            hasher.update(&[0]);
            match &seen.content {
                Some(d) => hasher.update(&d.0),
                None => hasher.update(b"absent"),
            };
        }
        Digest(*hasher.finalize().as_bytes())
    }

    /// What changed since each file and directory was noted, all of them looked at (where
    /// `unchanged` stops at the first change): the files whose content and the
    /// directories whose listing differ now (or that appeared or went), and these deps
    /// with the new stats of the entries whose stat changed but not their content (so the
    /// next look trusts the stat again).
    pub fn review(&self) -> Review {
        let mut review = Review {
            changed_files: Vec::new(),
            changed_dirs: Vec::new(),
            refreshed: self.clone(),
        };
        for (path, noted) in &self.files {
            let stat = Stat::of(path);
            if noted.stat.is_some() && stat == noted.stat {
                continue;
            }
            let now = fs::read(path).ok().map(|b| Digest::of_bytes(&b));
            if now == noted.content {
                review.refreshed.files.insert(path.clone(), seen(stat, now));
            } else {
                review.changed_files.push(path.clone());
            }
        }
        for (path, noted) in &self.dirs {
            let stat = Stat::of(path);
            if noted.stat.is_some() && stat == noted.stat {
                continue;
            }
            let now = listing_digest(path);
            if now == noted.content {
                review.refreshed.dirs.insert(path.clone(), seen(stat, now));
            } else {
                review.changed_dirs.push(path.clone());
            }
        }
        review
    }

    /// Takes what `newer` noted in place of what these deps noted of the same paths.
    pub fn overlay(&mut self, newer: &FsDeps) {
        for (path, seen) in &newer.files {
            self.files.insert(path.clone(), seen.clone());
        }
        for (path, seen) in &newer.dirs {
            self.dirs.insert(path.clone(), seen.clone());
        }
    }

    /// A digest of everything noted (paths, stats, contents): two deps with the same
    /// digest noted the same.
    pub fn digest(&self) -> Digest {
        let mut hasher = blake3::Hasher::new();
        for (kind, map) in [(b'f', &self.files), (b'd', &self.dirs)] {
            for (path, seen) in map {
                hasher.update(&[kind]);
                hasher.update(path.as_os_str().as_encoded_bytes());
                hasher.update(&[0]);
                match &seen.stat {
                    Some(s) => {
                        hasher.update(&s.size.to_le_bytes());
                        hasher.update(&s.mtime_ns.to_le_bytes());
                        hasher.update(&s.ctime_ns.to_le_bytes());
                        hasher.update(&s.ino.to_le_bytes())
                    }
                    None => hasher.update(b"-"),
                };
                match &seen.content {
                    Some(d) => hasher.update(&d.0),
                    None => hasher.update(b"absent"),
                };
            }
        }
        Digest(*hasher.finalize().as_bytes())
    }

    pub fn len(&self) -> usize {
        self.files.len() + self.dirs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What `FsDeps::review` found.
#[derive(Debug)]
pub struct Review {
    pub changed_files: Vec<PathBuf>,
    pub changed_dirs: Vec<PathBuf>,
    /// The deps reviewed, with the new stats of what was touched but not changed.
    pub refreshed: FsDeps,
}

#[cfg(test)]
mod tests {
    use super::*;

    // The recorder is process-wide: other tests' reads may land in it while this one runs.
    #[test]
    fn notes_files_and_listings_and_sees_changes() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("BUILD");
        fs::write(&file, "one")?;
        let bzl = dir.path().join("defs.bzl");
        fs::write(&bzl, "x = 1")?;
        start_recording();
        assert_eq!(read_to_string(&file)?, "one");
        // A package's read: noted, but not as a direct read.
        read_to_string_into(&bzl, &mut FsDeps::default())?;
        listed(dir.path());
        let (mut deps, direct) = take_recording_with_direct_reads();
        // Tests running at the same time note their reads too: count only this one's.
        deps.files.retain(|path, _| path.starts_with(dir.path()));
        deps.dirs.retain(|path, _| path.starts_with(dir.path()));
        assert_eq!(deps.len(), 3);
        assert_eq!(
            direct
                .into_iter()
                .filter(|path| path.starts_with(dir.path()))
                .collect::<Vec<_>>(),
            std::slice::from_ref(&file)
        );
        assert!(deps.unchanged());

        // Same content, new stat (a touch): still unchanged.
        fs::write(&file, "one")?;
        assert!(deps.unchanged());
        // New content: changed.
        fs::write(&file, "two")?;
        assert!(!deps.unchanged());
        fs::write(&file, "one")?;
        assert!(deps.unchanged());
        // A new entry in a listed directory: changed.
        fs::write(dir.path().join("new.txt"), "")?;
        assert!(!deps.unchanged());
        Ok(())
    }

    #[test]
    fn a_review_names_every_change_and_refreshes_the_touched() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let (a, b, sub) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("sub"),
        );
        fs::write(&a, "a")?;
        fs::write(&b, "b")?;
        fs::create_dir(&sub)?;
        let mut deps = FsDeps::default();
        read_to_string_into(&a, &mut deps)?;
        read_to_string_into(&b, &mut deps)?;
        listed_into(dir.path(), &mut deps);
        listed_into(&sub, &mut deps);
        let review = deps.review();
        assert!(review.changed_files.is_empty() && review.changed_dirs.is_empty());

        // Both files written (one with the same content), a file added to one directory.
        fs::write(&a, "A")?;
        fs::write(&b, "b")?;
        fs::write(sub.join("new"), "")?;
        let review = deps.review();
        assert_eq!(review.changed_files, std::slice::from_ref(&a));
        assert_eq!(review.changed_dirs, std::slice::from_ref(&sub));
        // The refreshed deps still see the changes, and only them.
        let again = review.refreshed.review();
        assert_eq!(again.changed_files, std::slice::from_ref(&a));
        assert_eq!(again.changed_dirs, std::slice::from_ref(&sub));

        // Taking what a new read noted: the file is current again.
        let mut newer = FsDeps::default();
        read_to_string_into(&a, &mut newer)?;
        let mut refreshed = review.refreshed;
        refreshed.overlay(&newer);
        assert_eq!(refreshed.review().changed_files, Vec::<PathBuf>::new());
        assert_ne!(refreshed.digest(), deps.digest());
        Ok(())
    }
}

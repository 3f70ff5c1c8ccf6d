//! Mount planning: a command's declared inputs, outputs and scratch directories in, the mount
//! points made under its sandbox root and the list of binds (from the layers, with the flags
//! a read-only remount must keep) out — whole source directories bound once where every
//! entry in them is an input, and staged copies of those a command sees only part of.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::libc;

use super::*;
use crate::core::ExecPath;

impl SandboxRunner {
    /// The flags a read-only remount of a bind mount from the file system of `dev` must
    /// keep: a user namespace may not clear nosuid, nodev, noexec or atime flags.
    pub(super) fn locked_flags(&self, path: &Path, dev: u64) -> libc::c_ulong {
        if let Some(f) = self
            .mount_flags
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&dev)
        {
            return *f;
        }
        let flags = nix::sys::statvfs::statvfs(path)
            .map(|s| {
                use nix::sys::statvfs::FsFlags;
                let f = s.flags();
                let mut m: libc::c_ulong = 0;
                for (st, ms) in [
                    (FsFlags::ST_NOSUID, libc::MS_NOSUID),
                    (FsFlags::ST_NODEV, libc::MS_NODEV),
                    (FsFlags::ST_NOEXEC, libc::MS_NOEXEC),
                    (FsFlags::ST_NOATIME, libc::MS_NOATIME),
                    (FsFlags::ST_NODIRATIME, libc::MS_NODIRATIME),
                    (FsFlags::ST_RELATIME, libc::MS_RELATIME),
                ] {
                    if f.contains(st) {
                        m |= ms;
                    }
                }
                m
            })
            .unwrap_or(0);
        self.mount_flags
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(dev, flags);
        flags
    }

    /// Makes the mount points under `root` and lists the mounts for one command.
    pub(super) fn plan(
        &self,
        root: &Path,
        inputs: &[ExecPath],
        outputs: &[ExecPath],
        directory_outputs: &[ExecPath],
        scratch_dirs: &[ExecPath],
        network: bool,
    ) -> io::Result<Plan> {
        let inner = root
            .join(&INNER_EXEC_ROOT[1..])
            .join(&self.config.workspace_name);
        let mut made: BTreeSet<PathBuf> = BTreeSet::new();
        let mkdirs = |dir: &Path, made: &mut BTreeSet<PathBuf>| -> io::Result<()> {
            if made.contains(dir) {
                return Ok(());
            }
            fs::create_dir_all(dir)?;
            let mut d = dir.to_path_buf();
            while d.starts_with(&inner) && made.insert(d.clone()) {
                if !d.pop() {
                    break;
                }
            }
            Ok(())
        };
        // Source directories whose every file is an input are mounted whole: one mount for
        // a thousand files, so setup does not grow with the number of inputs.
        let (whole_dirs, single) = self.collapse(inputs);
        // Of the rest, source directories a command sees only part of are staged: a copy of
        // the declared files, bound whole (see `staging`).
        let (sources, mut single): (Vec<&str>, Vec<&ExecPath>) = {
            let (s, o): (Vec<&ExecPath>, Vec<&ExecPath>) = single.into_iter().partition(|i| {
                !i.starts_with(crate::core::layout::OUT_DIR) && !i.starts_with("external/")
            });
            (s.into_iter().map(ExecPath::as_str).collect(), o)
        };
        let others: BTreeSet<&str> = inputs
            .iter()
            .chain(outputs)
            .chain(directory_outputs)
            .chain(scratch_dirs)
            .map(ExecPath::as_str)
            .collect();
        let mut binds = Vec::new();
        let (staged, unstaged) = self
            .staging
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .split(&self.config.exec_root, sources, &others);
        for (dir, copy) in staged {
            let target = inner.join(&dir);
            mkdirs(&target, &mut made)?;
            let dev = fs::metadata(&copy)?.dev();
            binds.push((copy.clone(), target, self.locked_flags(&copy, dev)));
        }
        let by_path: BTreeMap<&str, &ExecPath> = inputs.iter().map(|i| (i.as_str(), i)).collect();
        single.extend(unstaged.into_iter().filter_map(|p| by_path.get(p).copied()));
        single.sort_by_key(|i| i.as_str());
        let mut add_input = |exec_path: &str, made: &mut BTreeSet<PathBuf>| -> io::Result<()> {
            let host = self.config.exec_root.join(exec_path);
            let Ok(meta) = fs::metadata(&host) else {
                // Missing inputs are reported by the executor before anything runs.
                return Ok(());
            };
            let target = inner.join(exec_path);
            if target.exists() {
                return Ok(());
            }
            if let Some(parent) = target.parent() {
                mkdirs(parent, made)?;
            }
            if meta.is_dir() {
                fs::create_dir(&target)?;
            } else {
                fs::File::create(&target)?;
            }
            let flags = self.locked_flags(&host, meta.dev());
            let Some(all) = self.layers() else {
                binds.push((host, target, flags));
                return Ok(());
            };
            // Bound from the layer's overlay: mountinfo shows the path within it.
            let (layer, within) = all.locate(&self.config.exec_root, exec_path)?;
            let mount_point = self.layer_mount_point(all, layer)?;
            binds.push((
                mount_point.join(within),
                target,
                flags | libc::MS_NOSUID | libc::MS_NODEV,
            ));
            Ok(())
        };
        for dir in &whole_dirs {
            add_input(dir, &mut made)?;
        }
        for input in single {
            add_input(input, &mut made)?;
            // A tool's runfiles tree travels with it (its files are inputs already).
            if input.starts_with(crate::core::layout::OUT_DIR) {
                let tree = format!("{input}.runfiles");
                if self.config.exec_root.join(&tree).is_dir() {
                    add_input(&tree, &mut made)?;
                }
            }
        }
        let mut writable = BTreeSet::new();
        for out in outputs {
            let target = inner.join(out);
            if let Some(parent) = target.parent() {
                mkdirs(parent, &mut made)?;
                writable.insert(parent.to_path_buf());
            }
            if directory_outputs.contains(out) {
                fs::create_dir_all(&target)?;
            }
        }
        let mut scratch = Vec::new();
        for dir in scratch_dirs {
            let target = inner.join(dir);
            mkdirs(&target, &mut made)?;
            scratch.push(target);
        }
        Ok(Plan {
            binds,
            writable: writable.into_iter().collect(),
            scratch,
            network,
        })
    }

    /// The entries of source directory `dir` (name, whether a directory), read on first use
    /// and then kept for the build: every compile of a C++ build asks for the directories of
    /// all its dependencies' headers. `None` when it cannot be read. Like the contents of the
    /// sources (`StatCache::source_digest`), the build takes a directory as it first found it.
    fn listing(&self, dir: &str) -> Option<Listing> {
        let cached = self
            .listings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(dir)
            .cloned();
        if let Some(listing) = cached {
            return listing;
        }
        let listing = fs::read_dir(self.config.exec_root.join(dir))
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        (name, e.file_type().is_ok_and(|t| t.is_dir()))
                    })
                    .collect()
            })
            .ok();
        self.listings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(dir.to_owned(), listing.clone());
        listing
    }

    /// Splits `inputs` into source directories that can be mounted whole (every entry in
    /// them, recursively, is an input) and the inputs outside those.
    pub(super) fn collapse<'i>(&self, inputs: &'i [ExecPath]) -> (Vec<String>, Vec<&'i ExecPath>) {
        // Directory → how many of its entries are inputs (files, or whole subdirectories).
        let sources: BTreeSet<&str> = inputs
            .iter()
            .map(ExecPath::as_str)
            .filter(|i| !i.starts_with(crate::core::layout::OUT_DIR) && !i.starts_with("external/"))
            .collect();
        let mut by_dir: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for input in &sources {
            if let Some((dir, name)) = input.rsplit_once('/') {
                by_dir.entry(dir).or_default().insert(name.to_owned());
            }
        }
        if by_dir.values().all(|names| names.len() < 8) {
            return (Vec::new(), inputs.iter().collect());
        }
        // Deepest first, so a parent sees which subdirectories are whole.
        let mut dirs: Vec<&str> = by_dir.keys().copied().collect();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.matches('/').count()));
        let mut whole: BTreeSet<String> = BTreeSet::new();
        let mut i = 0;
        while i < dirs.len() {
            let dir = dirs[i];
            i += 1;
            let Some(entries) = self.listing(dir) else {
                continue;
            };
            let declared = &by_dir[dir];
            let complete = entries.iter().all(|(name, is_dir)| match is_dir {
                true => whole.contains(&format!("{dir}/{name}")),
                false => declared.contains(name),
            });
            if complete {
                whole.insert(dir.to_owned());
                if let Some((parent, name)) = dir.rsplit_once('/') {
                    let entry = by_dir.entry(parent).or_default();
                    if entry.insert(name.to_owned()) && entry.len() == 1 {
                        dirs.push(parent);
                        dirs[i..].sort_by_key(|d| std::cmp::Reverse(d.matches('/').count()));
                    }
                }
            }
        }
        let covered = |path: &str| {
            let mut p = path;
            while let Some((parent, _)) = p.rsplit_once('/') {
                if whole.contains(parent) {
                    return true;
                }
                p = parent;
            }
            false
        };
        let top: Vec<String> = whole.iter().filter(|d| !covered(d)).cloned().collect();
        let single = inputs.iter().filter(|i| !covered(i)).collect();
        (top, single)
    }
}

/// A directory's entries: name, and whether it is a directory.
pub(super) type Listing = std::sync::Arc<[(String, bool)]>;

pub(super) struct Plan {
    /// `(source, mount point, flags a read-only remount must keep)`; the source is a path
    /// in one of `layers`, or a host path when there are none.
    pub(super) binds: Vec<(PathBuf, PathBuf, libc::c_ulong)>,
    /// Directories of declared outputs: bound onto themselves to stay writable.
    pub(super) writable: Vec<PathBuf>,
    /// Scratch directories (`TEST_TMPDIR`): private tmpfs, bounded like `/tmp`.
    pub(super) scratch: Vec<PathBuf>,
    pub(super) network: bool,
}

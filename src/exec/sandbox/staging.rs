//! Staging: a source directory and the files of it a command declares in, a directory on the
//! sandbox's tmpfs holding copies of exactly those files out, bound whole — one mount where
//! binding each file takes one per file. A C++ compile declares every header of its
//! dependencies, hundreds in directories it may not see whole (their sources are not its
//! inputs), and each mount costs more than a copy made once per build.
//!
//! A staged directory is made once per build for each (directory, files) pair and shared by
//! every command declaring exactly those files there. Its copies are taken when first needed:
//! the build takes each source as it first found it (`StatCache::source_digest`).

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// A directory is staged when a command declares at least this many files in it.
const MIN_FILES: usize = 2;
/// At most this much is copied per build (the tmpfs is memory); beyond it, files are bound.
const MAX_BYTES: u64 = 256 << 20;

/// The staged directories of one build.
pub(super) struct Staging {
    /// Where they are made: `<roots_dir>/<pid>-staged`, removed with the roots.
    dir: PathBuf,
    made: HashMap<(String, Vec<String>), PathBuf>,
    bytes: u64,
}

impl Staging {
    pub(super) fn new(dir: PathBuf) -> Staging {
        Staging {
            dir,
            made: HashMap::new(),
            bytes: 0,
        }
    }

    /// The staged copy of `names` in exec path `dir` (read from `exec_root`), made now if
    /// it is not yet; `None` when one of them is not a regular file or the budget is spent.
    fn stage(&mut self, exec_root: &Path, dir: &str, names: Vec<String>) -> Option<PathBuf> {
        let key = (dir.to_owned(), names);
        if let Some(staged) = self.made.get(&key) {
            return Some(staged.clone());
        }
        let host = exec_root.join(dir);
        let mut size = 0;
        let mut metas = Vec::with_capacity(key.1.len());
        for name in &key.1 {
            let meta = fs::metadata(host.join(name)).ok()?;
            if !meta.is_file() {
                return None;
            }
            size += meta.len();
            metas.push(meta);
        }
        if self.bytes + size > MAX_BYTES {
            return None;
        }
        let staged = self.dir.join(self.made.len().to_string());
        let copied = (|| -> io::Result<()> {
            fs::create_dir_all(&staged)?;
            for (name, meta) in key.1.iter().zip(&metas) {
                let to = staged.join(name);
                fs::copy(host.join(name), &to)?;
                // The copy looks like the file: same mode (`fs::copy`), same mtime.
                fs::File::options()
                    .write(true)
                    .open(&to)?
                    .set_modified(meta.modified()?)?;
            }
            Ok(())
        })();
        if copied.is_err() {
            let _ = fs::remove_dir_all(&staged);
            return None;
        }
        self.bytes += size;
        self.made.insert(key, staged.clone());
        Some(staged)
    }

    /// Splits a command's `candidates` (its source inputs not in a whole directory) into
    /// staged directories — `(exec path of the directory, staged copy)` — and the rest. A
    /// directory is staged only when nothing else of the command (`others`: every input,
    /// output and scratch path) lies in it or is it or an ancestor of it, so the staged copy
    /// is all the command sees there and nothing has to be mounted inside it.
    pub(super) fn split<'i>(
        &mut self,
        exec_root: &Path,
        candidates: Vec<&'i str>,
        others: &BTreeSet<&str>,
    ) -> (Vec<(String, PathBuf)>, Vec<&'i str>) {
        let mut by_dir: HashMap<&str, Vec<&'i str>> = HashMap::new();
        let mut rest = Vec::new();
        for path in candidates {
            match path.rsplit_once('/') {
                Some((dir, _)) => by_dir.entry(dir).or_default().push(path),
                None => rest.push(path),
            }
        }
        let mut staged = Vec::new();
        let mut dirs: Vec<_> = by_dir.into_iter().collect();
        dirs.sort();
        for (dir, files) in dirs {
            let alone = files.len() >= MIN_FILES && {
                let prefix = format!("{dir}/");
                let inside = others
                    .range::<str, _>((
                        std::ops::Bound::Included(prefix.as_str()),
                        std::ops::Bound::Unbounded,
                    ))
                    .take_while(|p| p.starts_with(&prefix))
                    .count();
                let mut ancestor = Some(dir);
                let mut blocked = false;
                while let Some(a) = ancestor {
                    blocked |= others.contains(a);
                    ancestor = a.rsplit_once('/').map(|(parent, _)| parent);
                }
                inside == files.len() && !blocked
            };
            let names = files
                .iter()
                .map(|f| f[dir.len() + 1..].to_owned())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            match alone.then(|| self.stage(exec_root, dir, names)).flatten() {
                Some(copy) => staged.push((dir.to_owned(), copy)),
                None => rest.extend(files),
            }
        }
        (staged, rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> io::Result<(tempfile::TempDir, PathBuf)> {
        let tmp = tempfile::tempdir()?;
        let root = tmp.path().join("execroot");
        for (path, text) in [
            ("lib/a.h", "a"),
            ("lib/b.h", "b"),
            ("lib/a.cc", "secret"),
            ("lib/sub/c.h", "c"),
            ("one/x.h", "x"),
        ] {
            fs::create_dir_all(root.join(path).parent().unwrap())?;
            fs::write(root.join(path), text)?;
        }
        Ok((tmp, root))
    }

    #[test]
    fn a_directory_is_staged_with_only_the_declared_files_and_reused() -> io::Result<()> {
        let (tmp, root) = fixture()?;
        let mut staging = Staging::new(tmp.path().join("staged"));
        let inputs = ["lib/a.h", "lib/b.h", "one/x.h"];
        let others: BTreeSet<&str> = inputs.iter().copied().chain(["out/a.o"]).collect();
        let (staged, rest) = staging.split(&root, inputs.to_vec(), &others);
        assert_eq!(rest, ["one/x.h"], "a lone file is bound, not staged");
        assert_eq!(staged.len(), 1);
        let (dir, copy) = &staged[0];
        assert_eq!(dir, "lib");
        let mut names: Vec<_> = fs::read_dir(copy)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<io::Result<_>>()?;
        names.sort();
        assert_eq!(
            names,
            ["a.h", "b.h"],
            "the undeclared a.cc and sub/ stay hidden"
        );
        assert_eq!(fs::read_to_string(copy.join("b.h"))?, "b");
        // The next command declaring the same files gets the same copy, even when the file
        // changed since: the build takes a source as it first found it.
        fs::write(root.join("lib/b.h"), "b, edited")?;
        let (again, _) = staging.split(&root, inputs.to_vec(), &others);
        assert_eq!(&again[0].1, copy);
        assert_eq!(fs::read_to_string(copy.join("b.h"))?, "b");
        Ok(())
    }

    #[test]
    fn a_directory_with_other_paths_in_it_is_not_staged() -> io::Result<()> {
        let (tmp, root) = fixture()?;
        let mut staging = Staging::new(tmp.path().join("staged"));
        let inputs = ["lib/a.h", "lib/b.h"];
        // An input in a subdirectory would need a mount point inside the copy.
        let others: BTreeSet<&str> = inputs.iter().copied().chain(["lib/sub/c.h"]).collect();
        let (staged, rest) = staging.split(&root, inputs.to_vec(), &others);
        assert!(staged.is_empty());
        assert_eq!(rest, inputs);
        // Nor one whose parent is itself an input (a source directory bound whole).
        let others: BTreeSet<&str> = inputs.iter().copied().chain(["lib"]).collect();
        let (staged, _) = staging.split(&root, inputs.to_vec(), &others);
        assert!(staged.is_empty());
        // Nor a declared directory among the files.
        let inputs = ["lib/a.h", "lib/sub"];
        let others: BTreeSet<&str> = inputs.iter().copied().collect();
        let (staged, rest) = staging.split(&root, inputs.to_vec(), &others);
        assert!(staged.is_empty());
        assert_eq!(rest, inputs);
        Ok(())
    }
}

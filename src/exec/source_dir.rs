//! Directories as inputs: an exec path naming a directory (a source directory a label names,
//! as Bazel allows, or an output a command made as a directory) in, one digest of its whole
//! content out — every entry's relative path with, for a file, its content digest and
//! executable bit, for a symlink its target text, for a subdirectory its name — or a refusal
//! naming the entry that may not be read. Timestamps take no part: `touch` changes nothing.
//!
//! Nothing inside is read through a symlink: a link is digested by its target, and must lead
//! (through any further links) to something inside the directory itself, so neither the
//! command nor the digest can use it to read outside the workspace. FIFOs, sockets and
//! devices are refused.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;

use crate::core::Digest;
use crate::exec::stat_cache::StatCache;

/// The first line of a directory's content listing: a directory's digest is never that of a
/// file with the same bytes as another directory's listing.
const HEADER: &str = "forge-directory 1\n";

/// Why an input directory cannot be used.
#[derive(Debug)]
pub(crate) enum DirRefused {
    /// A symlink (relative path in the directory, its target) that leads out of the
    /// directory or to nothing.
    LinkOut(String, String),
    /// A FIFO, socket or device (relative path, what it is).
    Special(String, &'static str),
    Io(io::Error),
}

impl DirRefused {
    /// One line naming the entry of input directory `dir` and what to do.
    pub fn describe(&self, dir: &str) -> String {
        match self {
            DirRefused::LinkOut(entry, target) => format!(
                "'{entry}' in input directory '{dir}' is a symlink to '{target}', which does \
                 not lead to a file or directory inside '{dir}'; a directory used as an input \
                 may only hold symlinks to its own entries"
            ),
            DirRefused::Special(entry, kind) => format!(
                "'{entry}' in input directory '{dir}' is {kind}; a directory used as an input \
                 may only hold files, directories and symlinks to its own entries"
            ),
            DirRefused::Io(e) => format!("cannot read input directory '{dir}': {e}"),
        }
    }
}

impl From<io::Error> for DirRefused {
    fn from(e: io::Error) -> DirRefused {
        DirRefused::Io(e)
    }
}

/// Whether exec path `path` is a directory (following the exec root's own links).
fn is_directory(stat: &StatCache, path: &str) -> bool {
    stat.exec_root().join(path).is_dir()
}

/// Why an input could not be digested.
pub(crate) enum InputError {
    /// Neither a readable file nor a directory.
    Missing(io::Error),
    /// A directory that may not be used as it is.
    Directory(DirRefused),
}

/// The digest of the input at exec path `path`: a file's through the stat cache, else (a
/// label naming a source directory, as Bazel allows) the directory's whole content. The
/// directory is looked for only when the file check fails, so a file costs one `stat`.
pub(crate) fn digest_input(stat: &StatCache, path: &str) -> Result<Digest, InputError> {
    or_directory(stat, path, stat.digest(path))
}

/// `digest_input` for an action's source input: a file is checked once per build
/// (`StatCache::source_digest`), however many actions declare it.
pub(crate) fn digest_source_input(stat: &StatCache, path: &str) -> Result<Digest, InputError> {
    or_directory(stat, path, stat.source_digest(path))
}

fn or_directory(
    stat: &StatCache,
    path: &str,
    file: std::io::Result<Digest>,
) -> Result<Digest, InputError> {
    match file {
        Ok(digest) => Ok(digest),
        Err(_) if is_directory(stat, path) => digest(stat, path).map_err(InputError::Directory),
        Err(e) => Err(InputError::Missing(e)),
    }
}

/// The digest of the directory at exec path `dir`; its files are hashed through the stat
/// cache, so an unchanged directory costs a walk and a `stat` per file.
pub(crate) fn digest(stat: &StatCache, dir: &str) -> Result<Digest, DirRefused> {
    let root = stat.exec_root().join(dir);
    // Where the directory really is: every symlink inside must resolve below it.
    let real_root = fs::canonicalize(&root)?;
    let mut listing = String::from(HEADER);
    for entry in walkdir::WalkDir::new(&root)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry = entry.map_err(io::Error::other)?;
        let relative = entry
            .path()
            .strip_prefix(&root)
            .map_err(io::Error::other)?
            .to_string_lossy()
            .into_owned();
        let kind = entry.file_type();
        if kind.is_dir() {
            listing.push_str(&format!("d {relative}\n"));
        } else if kind.is_symlink() {
            let target = fs::read_link(entry.path())?;
            let shown = target.to_string_lossy().into_owned();
            let inside =
                fs::canonicalize(entry.path()).is_ok_and(|real| real.starts_with(&real_root));
            if !inside {
                return Err(DirRefused::LinkOut(relative, shown));
            }
            listing.push_str(&format!("l {shown} {relative}\n"));
        } else if kind.is_file() {
            let (file_digest, file_stat) = stat.digest_and_stat(&format!("{dir}/{relative}"))?;
            let x = if file_stat.is_executable() { 'x' } else { '-' };
            listing.push_str(&format!("{x} {} {relative}\n", file_digest.to_hex()));
        } else {
            let mode = entry
                .metadata()
                .map_err(io::Error::other)?
                .permissions()
                .mode();
            return Err(DirRefused::Special(relative, special_kind(mode)));
        }
    }
    Ok(Digest::of_bytes(listing.as_bytes()))
}

fn special_kind(mode: u32) -> &'static str {
    match mode & 0o170000 {
        0o010000 => "a FIFO",
        0o140000 => "a socket",
        0o020000 => "a character device",
        0o060000 => "a block device",
        _ => "not a regular file",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn fixture() -> io::Result<(tempfile::TempDir, StatCache)> {
        let tmp = tempfile::tempdir()?;
        let root = tmp.path().join("root");
        fs::create_dir_all(root.join("pkg/d/sub"))?;
        fs::write(root.join("pkg/d/a"), "a")?;
        fs::write(root.join("pkg/d/sub/c"), "c")?;
        let stat = StatCache::new(tmp.path().join("stat"), root);
        Ok((tmp, stat))
    }

    #[test]
    fn content_changes_the_digest_and_timestamps_do_not() -> io::Result<()> {
        let (_tmp, stat) = fixture()?;
        let root = stat.exec_root().to_path_buf();
        let first = digest(&stat, "pkg/d").map_err(|e| io::Error::other(e.describe("d")))?;
        let again = || digest(&stat, "pkg/d").map_err(|e| io::Error::other(e.describe("d")));
        let f = fs::File::options()
            .append(true)
            .open(root.join("pkg/d/a"))?;
        f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))?;
        assert_eq!(again()?, first);
        fs::write(root.join("pkg/d/sub/c"), "changed")?;
        assert_ne!(again()?, first);
        fs::write(root.join("pkg/d/sub/c"), "c")?;
        assert_eq!(again()?, first);
        fs::create_dir(root.join("pkg/d/empty"))?;
        assert_ne!(again()?, first);
        fs::remove_dir(root.join("pkg/d/empty"))?;
        symlink("a", root.join("pkg/d/link"))?;
        let linked = again()?;
        assert_ne!(linked, first);
        fs::remove_file(root.join("pkg/d/link"))?;
        symlink("sub/c", root.join("pkg/d/link"))?;
        assert_ne!(again()?, linked);
        Ok(())
    }

    #[test]
    fn links_out_of_the_directory_and_special_files_are_refused() -> io::Result<()> {
        let (_tmp, stat) = fixture()?;
        let root = stat.exec_root().to_path_buf();
        fs::write(root.join("pkg/outside"), "secret")?;
        for target in ["../outside", "/etc/passwd", "missing", "sub/../../outside"] {
            symlink(target, root.join("pkg/d/link"))?;
            assert!(
                matches!(digest(&stat, "pkg/d"), Err(DirRefused::LinkOut(e, t)) if e == "link" && t == target),
                "{target}"
            );
            fs::remove_file(root.join("pkg/d/link"))?;
        }
        nix::unistd::mkfifo(&root.join("pkg/d/sub/fifo"), nix::sys::stat::Mode::S_IRWXU)?;
        assert!(matches!(
            digest(&stat, "pkg/d"),
            Err(DirRefused::Special(e, "a FIFO")) if e == "sub/fifo"
        ));
        Ok(())
    }
}

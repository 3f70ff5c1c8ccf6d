//! Directory outputs (`ctx.actions.declare_directory`): a directory on disk in, its manifest
//! out — one line per regular file (executable bit, digest, path inside the directory),
//! sorted — whose digest stands for the whole tree in the action cache and in action keys.
//!
//! The manifest is itself stored in the CAS, next to the files' blobs, so a tree is restored
//! from the cache like any other output. Empty subdirectories are not kept (Bazel's tree
//! artifacts do not keep them either).

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::core::Digest;
use crate::exec::cas::{Cas, Fetch};
use crate::exec::stat_cache::{FileStat, StatCache};

/// One file of a tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeFile {
    /// Relative to the tree's root, `/`-separated.
    pub path: String,
    pub digest: Digest,
    pub executable: bool,
}

/// The files of the directory at exec path `dir`, sorted, digested through the stat cache.
/// A symlink or special file inside is an error: outputs must be self-contained.
pub fn scan(stat: &StatCache, dir: &str) -> io::Result<Vec<TreeFile>> {
    let root = stat.exec_root().join(dir);
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(&root)
        .min_depth(1)
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
            continue;
        }
        if !kind.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("'{relative}' in directory output '{dir}' is not a regular file"),
            ));
        }
        let (digest, file_stat) = stat.digest_and_stat(&format!("{dir}/{relative}"))?;
        files.push(TreeFile {
            path: relative,
            digest,
            executable: file_stat.is_executable(),
        });
    }
    Ok(files)
}

/// The canonical manifest text of `files`.
pub fn manifest(files: &[TreeFile]) -> Vec<u8> {
    let mut text = String::new();
    for f in files {
        let x = if f.executable { 'x' } else { '-' };
        text.push_str(&format!("{x} {} {}\n", f.digest.to_hex(), f.path));
    }
    text.into_bytes()
}

/// Reads a manifest back; `None` if it is not one.
pub fn parse(bytes: &[u8]) -> Option<Vec<TreeFile>> {
    let text = std::str::from_utf8(bytes).ok()?;
    text.lines()
        .map(|line| {
            let (x, rest) = line.split_once(' ')?;
            let (hex, path) = rest.split_once(' ')?;
            let safe = !path.is_empty()
                && !path.starts_with('/')
                && path
                    .split('/')
                    .all(|c| !c.is_empty() && c != "." && c != "..");
            safe.then_some(())?;
            Some(TreeFile {
                path: path.to_owned(),
                digest: Digest::from_hex(hex)?,
                executable: x == "x",
            })
        })
        .collect()
}

/// Makes every file of the tree at exec path `dir` read-only (keeping the executable bit);
/// done before `scan` so the recorded stats are the final ones.
pub fn seal(root: &Path) -> io::Result<()> {
    for entry in walkdir::WalkDir::new(root).min_depth(1) {
        let entry = entry.map_err(io::Error::other)?;
        if entry.file_type().is_file() {
            let meta = entry.metadata().map_err(io::Error::other)?;
            let mode = if meta.permissions().mode() & 0o111 != 0 {
                0o555
            } else {
                0o444
            };
            fs::set_permissions(entry.path(), fs::Permissions::from_mode(mode))?;
        }
    }
    Ok(())
}

/// Stores the tree's files and its manifest in `cas`; returns the manifest's digest.
pub fn store(cas: &Cas, exec_root: &Path, dir: &str, files: &[TreeFile]) -> io::Result<Digest> {
    for f in files {
        cas.put_file(&exec_root.join(dir).join(&f.path), &f.digest)?;
    }
    cas.put_bytes(&manifest(files))
}

/// Recreates the tree `digest` at exec path `dir` from `cas`: built in a temporary directory
/// beside it and renamed into place, so a reader never sees half a tree. `Ok(false)` if the
/// manifest or a blob is missing or corrupt.
pub fn restore(cas: &Cas, stat: &StatCache, dir: &str, digest: &Digest) -> io::Result<bool> {
    let Some(files) = cas.read(digest)?.as_deref().and_then(parse) else {
        return Ok(false);
    };
    let dest = stat.exec_root().join(dir);
    let parent = dest.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent)?;
    let tmp = tempfile::Builder::new()
        .prefix(".tree-")
        .tempdir_in(parent)?;
    for f in &files {
        let path = tmp.path().join(&f.path);
        if let Some(d) = path.parent() {
            fs::create_dir_all(d)?;
        }
        let mode = if f.executable { 0o555 } else { 0o444 };
        match cas.materialize(&f.digest, &path, mode)? {
            Fetch::Done => {}
            Fetch::Missing | Fetch::Corrupt => return Ok(false),
        }
    }
    match fs::symlink_metadata(&dest) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(&dest)?,
        Ok(_) => fs::remove_file(&dest)?,
        Err(_) => {}
    }
    fs::rename(tmp.keep(), &dest)?;
    for f in &files {
        let path = format!("{dir}/{}", f.path);
        let file_stat = FileStat::of(&stat.exec_root().join(&path))?;
        stat.record(&path, file_stat, f.digest);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_round_trip_and_reject_escaping_paths() {
        let files = vec![
            TreeFile {
                path: "a.txt".into(),
                digest: Digest::of_bytes(b"a"),
                executable: false,
            },
            TreeFile {
                path: "sub/run.sh".into(),
                digest: Digest::of_bytes(b"run"),
                executable: true,
            },
        ];
        assert_eq!(parse(&manifest(&files)), Some(files));
        let evil = format!("- {} ../../etc/passwd\n", Digest::of_bytes(b"x").to_hex());
        assert_eq!(parse(evil.as_bytes()), None);
    }

    #[test]
    fn a_tree_is_stored_and_restored() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("out/t/sub"))?;
        fs::write(root.join("out/t/one.txt"), "one")?;
        fs::write(root.join("out/t/sub/two.txt"), "two")?;
        let stat = StatCache::new(dir.path().join("stat"), root.clone());
        let cas = Cas::new(dir.path().join("cas"));
        seal(&root.join("out/t"))?;
        let files = scan(&stat, "out/t")?;
        assert_eq!(
            files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
            ["one.txt", "sub/two.txt"]
        );
        let digest = store(&cas, &root, "out/t", &files)?;
        fs::set_permissions(root.join("out/t/sub"), fs::Permissions::from_mode(0o755))?;
        fs::remove_dir_all(root.join("out/t"))?;
        assert!(restore(&cas, &stat, "out/t", &digest)?);
        assert_eq!(fs::read_to_string(root.join("out/t/sub/two.txt"))?, "two");
        assert_eq!(scan(&stat, "out/t")?, files);
        Ok(())
    }
}

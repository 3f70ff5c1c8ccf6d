//! Filesystem helpers every phase shares: paths in, files and links replaced atomically out,
//! and I/O errors that keep the path they are about (`PathError`), so a message can say which
//! file failed instead of only "Permission denied".

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// An I/O error together with the path it happened on and what was being done there.
#[derive(Debug, thiserror::Error)]
pub struct PathError {
    /// What forge was doing: `write`, `create directory`, `link` …
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot {} {}: {}",
            self.action,
            self.path.display(),
            self.source
        )
    }
}

impl PathError {
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }
}

/// Callers that still speak `io::Result` keep the kind and get the path in the message.
impl From<PathError> for io::Error {
    fn from(e: PathError) -> io::Error {
        io::Error::new(e.source.kind(), e.to_string())
    }
}

/// `.at("write", path)` on an `io::Result`: the same result, with the path kept.
pub trait IoContext<T> {
    fn at(self, action: &'static str, path: &Path) -> Result<T, PathError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, action: &'static str, path: &Path) -> Result<T, PathError> {
        self.map_err(|source| PathError {
            action,
            path: path.to_owned(),
            source,
        })
    }
}

/// Writes `path` with `content` through a temporary file in the same directory and a rename,
/// so a reader sees the old content or the new, never a part.
pub fn write_atomic(path: &Path, content: &[u8]) -> Result<(), PathError> {
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).at("create directory", parent)?;
    let mut tmp =
        tempfile::NamedTempFile::new_in(parent).at("create a temporary file in", parent)?;
    io::Write::write_all(&mut tmp, content).at("write", tmp.path())?;
    tmp.persist(path).map_err(|e| e.error).at("write", path)?;
    Ok(())
}

/// Points `link` at `target`, replacing whatever was there (a file, a link, a directory),
/// through a temporary link and a rename; where nothing is, made in place (one system call
/// instead of four: a fresh output base's exec root makes one per top-level directory).
pub fn replace_symlink(target: &Path, link: &Path) -> Result<(), PathError> {
    match std::fs::read_link(link) {
        Ok(t) if t == target => return Ok(()),
        // Nothing there: `symlink` is atomic by itself. Something appearing meanwhile makes
        // it fail, and the replacing path below handles that.
        Err(e)
            if e.kind() == io::ErrorKind::NotFound
                && std::os::unix::fs::symlink(target, link).is_ok() =>
        {
            return Ok(());
        }
        _ => {}
    }
    let parent = link.parent().unwrap_or(Path::new("."));
    let tmp = parent.join(format!(
        ".{}.tmp.{}",
        link.file_name().and_then(|n| n.to_str()).unwrap_or("link"),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).at("create link", &tmp)?;
    if link.is_dir() && !link.is_symlink() {
        std::fs::remove_dir_all(link).at("remove", link)?;
    }
    std::fs::rename(&tmp, link).at("replace", link)
}

/// Deletes a directory tree that may contain read-only outputs; a missing tree is not an error.
pub fn remove_tree(dir: &Path) -> Result<(), PathError> {
    if !dir.exists() && !dir.is_symlink() {
        return Ok(());
    }
    make_writable(dir);
    std::fs::remove_dir_all(dir).at("remove", dir)
}

/// Outputs are read-only; the directories holding them must become writable to be removed.
pub fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for entry in walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .flatten()
    {
        if entry.file_type().is_dir() {
            let _ = std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o755));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn write_atomic_creates_parents_and_replaces_content() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a/b/c.txt");
        write_atomic(&file, b"one").unwrap();
        write_atomic(&file, b"two").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"two");
        // Only the file itself is left: no temporary beside it.
        assert_eq!(
            std::fs::read_dir(file.parent().unwrap()).unwrap().count(),
            1
        );
    }

    #[test]
    fn replace_symlink_replaces_a_directory_and_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link");
        std::fs::create_dir(&link).unwrap();
        std::fs::write(link.join("f"), "x").unwrap();
        replace_symlink(Path::new("/one"), &link).unwrap();
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("/one"));
        replace_symlink(Path::new("/two"), &link).unwrap();
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("/two"));
    }

    #[test]
    fn replace_symlink_makes_a_missing_link_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link");
        // Where the replacing path would put its temporary: a fresh link never goes there.
        let tmp = dir.path().join(format!(".link.tmp.{}", std::process::id()));
        std::fs::create_dir(&tmp).unwrap();
        replace_symlink(Path::new("/one"), &link).unwrap();
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("/one"));
        std::fs::remove_dir(&tmp).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // Where the link's directory is missing: an error naming it, nothing made.
        let orphan = dir.path().join("no/link");
        assert!(replace_symlink(Path::new("/one"), &orphan).is_err());
    }

    #[test]
    fn remove_tree_removes_read_only_directories() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("t");
        std::fs::create_dir_all(tree.join("sub")).unwrap();
        std::fs::write(tree.join("sub/f"), "x").unwrap();
        std::fs::set_permissions(tree.join("sub"), std::fs::Permissions::from_mode(0o555)).unwrap();
        remove_tree(&tree).unwrap();
        assert!(!tree.exists());
        remove_tree(&tree).unwrap();
    }

    #[test]
    fn errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "x").unwrap();
        let err = write_atomic(&blocker.join("under"), b"y").unwrap_err();
        assert_eq!(err.path, blocker);
        let text = err.to_string();
        assert!(text.starts_with("cannot create directory "), "{text}");
        assert!(text.contains(&blocker.display().to_string()), "{text}");
        let io: io::Error = err.into();
        assert!(io.to_string().contains("file"), "{io}");
    }
}

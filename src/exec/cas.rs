//! The content-addressed store: files in, blobs at `<root>/ab/cdef…` (BLAKE3 hex) out; and
//! blobs back out into place at a destination path, verified against their digest.
//!
//! Every write is a temp file in the destination directory followed by a rename, so readers
//! never see half a blob. Blobs are not fsynced: every read re-hashes the blob, so a blob
//! damaged by a crash (or anything else) is detected, deleted and treated as missing.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::core::Digest;

pub struct Cas {
    root: PathBuf,
}

/// What happened when copying a blob out.
#[derive(Debug, PartialEq, Eq)]
pub enum Fetch {
    Done,
    /// No blob with that digest.
    Missing,
    /// The blob's content did not match its name; it has been deleted.
    Corrupt,
}

impl Cas {
    pub fn new(root: PathBuf) -> Cas {
        Cas { root }
    }

    /// Where the blob for `digest` lives.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.to_hex();
        self.root.join(&hex[..2]).join(&hex[2..])
    }

    #[cfg(test)]
    pub fn contains(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Stores `src`, whose content the caller has already hashed to `digest`, as a copy.
    /// Never as a hard link: the output would share its inode with the blob, and a later
    /// command that edits its input in place (one run outside the sandbox can) would change
    /// the bytes stored under the digest.
    pub fn put_file(&self, src: &Path, digest: &Digest) -> io::Result<()> {
        let dest = self.blob_path(digest);
        if dest.is_file() {
            return Ok(());
        }
        let dir = dest.parent().unwrap_or(&self.root);
        crate::exec::perform::ensure_dir(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        // Copied through the temp file's own descriptor (`io::copy` uses copy_file_range),
        // not by opening its path again: `fs::copy` reopens it with O_TRUNC, and ext4 flushes
        // a truncated file to disk when it is closed (its guard for replace-by-truncate),
        // which cost every action a disk write in the foreground — half of forge's own time
        // in a clean build of small outputs.
        io::copy(&mut fs::File::open(src)?, tmp.as_file_mut())?;
        // Blobs are never edited in place; read-only makes accidental writes fail loudly.
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o444))?;
        tmp.persist(&dest).map_err(|e| e.error)?;
        Ok(())
    }

    /// Stores `data` under its digest and returns the digest.
    pub fn put_bytes(&self, data: &[u8]) -> io::Result<Digest> {
        let digest = Digest::of_bytes(data);
        let dest = self.blob_path(&digest);
        if dest.is_file() {
            return Ok(digest);
        }
        let dir = dest.parent().unwrap_or(&self.root);
        crate::exec::perform::ensure_dir(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        tmp.write_all(data)?;
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o444))?;
        tmp.persist(&dest).map_err(|e| e.error)?;
        Ok(digest)
    }

    /// The blob's bytes, verified; a damaged blob is deleted and reported as `None`.
    pub fn read(&self, digest: &Digest) -> io::Result<Option<Vec<u8>>> {
        let path = self.blob_path(digest);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if Digest::of_bytes(&data) != *digest {
            let _ = fs::remove_file(&path);
            return Ok(None);
        }
        Ok(Some(data))
    }

    /// Copies the blob to `dest` with permission bits `mode`, atomically replacing whatever is
    /// there, hashing while copying; on a mismatch the blob is deleted and `dest` left alone.
    /// `dest`'s directory must exist.
    pub fn materialize(&self, digest: &Digest, dest: &Path, mode: u32) -> io::Result<Fetch> {
        let path = self.blob_path(digest);
        let mut src = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Fetch::Missing),
            Err(e) => return Err(e),
        };
        let dir = dest.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&buf[..n]);
            tmp.write_all(&buf[..n])?;
        }
        if Digest(*hasher.finalize().as_bytes()) != *digest {
            let _ = fs::remove_file(&path);
            return Ok(Fetch::Corrupt);
        }
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode))?;
        tmp.persist(dest).map_err(|e| e.error)?;
        Ok(Fetch::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_verifies_and_drops_corrupt_blobs() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let cas = Cas::new(dir.path().join("cas"));
        let d = cas.put_bytes(b"hello")?;
        assert_eq!(d, Digest::of_bytes(b"hello"));
        let hex = d.to_hex();
        assert!(
            dir.path()
                .join("cas")
                .join(&hex[..2])
                .join(&hex[2..])
                .is_file()
        );
        assert_eq!(cas.read(&d)?.as_deref(), Some(&b"hello"[..]));

        let out = dir.path().join("out");
        assert_eq!(cas.materialize(&d, &out, 0o555)?, Fetch::Done);
        assert_eq!(fs::read(&out)?, b"hello");
        assert_eq!(fs::metadata(&out)?.permissions().mode() & 0o777, 0o555);

        // Corrupt the blob: it is detected, deleted, and the destination is left untouched.
        let blob = cas.blob_path(&d);
        fs::set_permissions(&blob, fs::Permissions::from_mode(0o644))?;
        fs::write(&blob, b"hellO")?;
        let other = dir.path().join("other");
        assert_eq!(cas.materialize(&d, &other, 0o444)?, Fetch::Corrupt);
        assert!(!blob.exists());
        assert!(!other.exists());
        assert_eq!(cas.materialize(&d, &other, 0o444)?, Fetch::Missing);
        assert_eq!(cas.read(&d)?, None);

        // put_file stores a copy under the given digest.
        let src = dir.path().join("src");
        fs::write(&src, b"file")?;
        let fd = Digest::of_file(&src)?;
        cas.put_file(&src, &fd)?;
        assert_eq!(cas.read(&fd)?.as_deref(), Some(&b"file"[..]));
        let blob = fs::metadata(cas.blob_path(&fd))?;
        assert_eq!(blob.permissions().mode() & 0o777, 0o444);
        // A copy, not a link: the source keeps its own inode.
        assert_ne!(
            std::os::unix::fs::MetadataExt::ino(&blob),
            std::os::unix::fs::MetadataExt::ino(&fs::metadata(&src)?)
        );
        Ok(())
    }

    #[test]
    fn corrupt_blob_read_is_a_miss() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let cas = Cas::new(dir.path().to_path_buf());
        let d = cas.put_bytes(b"abc")?;
        let blob = cas.blob_path(&d);
        fs::set_permissions(&blob, fs::Permissions::from_mode(0o644))?;
        fs::write(&blob, b"")?;
        assert_eq!(cas.read(&d)?, None);
        assert!(!cas.contains(&d));
        Ok(())
    }
}

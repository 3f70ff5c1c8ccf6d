//! Writing inside a repository directory without ever following a symlink: a directory and
//! paths relative to it in; directories, files and links created strictly below it out (every
//! path is walked one component at a time with `O_NOFOLLOW`, so a symlink already in the tree
//! — from the archive or anywhere else — is never written through), and where a link would
//! land once every link already in the tree is followed.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{Mode, SFlag, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, linkat, symlinkat, unlinkat};

/// Why a path below the root could not be used.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    /// `prefix` (relative to the root) is a symlink, and forge does not go through symlinks.
    #[error("'{}' is a symlink, and forge does not write through symlinks", .0.display())]
    Symlink(PathBuf),
    #[error("{0}")]
    Io(io::Error),
}

/// Why a symlink would land outside the root; the message follows "outside the repository (".
#[derive(Debug, thiserror::Error)]
pub enum LinkEscape {
    #[error("its path is not plain")]
    NotPlain,
    #[error("'{}' is an absolute path", .0.display())]
    Absolute(PathBuf),
    #[error("it climbs out with '..'")]
    ClimbsOut,
    #[error("its links form a loop")]
    Loop,
    /// Following the link already in the tree at `link` leads out.
    #[error("it goes through '{}' -> '{}', and {why}", .link.display(), .target.display())]
    Through {
        link: PathBuf,
        target: PathBuf,
        why: Box<LinkEscape>,
    },
}

impl From<Errno> for WalkError {
    fn from(e: Errno) -> WalkError {
        WalkError::Io(io::Error::from(e))
    }
}

impl From<io::Error> for WalkError {
    fn from(e: io::Error) -> WalkError {
        WalkError::Io(e)
    }
}

/// A directory that writes stay below.
pub struct Beneath {
    root: OwnedFd,
}

/// The plain components of a relative path; `..`, `/` and the like are refused (callers
/// normalise entry names before).
fn parts(rel: &Path) -> Result<Vec<&OsStr>, WalkError> {
    let mut out = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => {
                return Err(WalkError::Io(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("'{}' is not a plain relative path", rel.display()),
                )));
            }
        }
    }
    Ok(out)
}

fn is_symlink_at(dir: impl AsFd, name: &OsStr) -> bool {
    fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK)
}

impl Beneath {
    /// The directory at `root` (itself not a symlink).
    pub fn open(root: &Path) -> io::Result<Beneath> {
        let fd = nix::fcntl::open(
            root,
            OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
            Mode::empty(),
        )?;
        Ok(Beneath { root: fd })
    }

    /// The directory `rel`, made (with its parents) when `create`; never through a symlink.
    pub fn dir(&self, rel: &Path, create: bool) -> Result<OwnedFd, WalkError> {
        let mut fd = self.root.try_clone()?;
        let mut walked = PathBuf::new();
        for part in parts(rel)? {
            walked.push(part);
            if create {
                match mkdirat(&fd, part, Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            match openat(
                &fd,
                part,
                OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
                Mode::empty(),
            ) {
                Ok(next) => fd = next,
                Err(e) => {
                    if is_symlink_at(&fd, part) {
                        return Err(WalkError::Symlink(walked));
                    }
                    return Err(e.into());
                }
            }
        }
        Ok(fd)
    }

    /// The directory holding `rel` (made if needed) and `rel`'s last component.
    fn parent_of<'a>(&self, rel: &'a Path) -> Result<(OwnedFd, &'a OsStr), WalkError> {
        let mut all = parts(rel)?;
        let name = all.pop().ok_or_else(|| {
            WalkError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an empty path names no file",
            ))
        })?;
        let parent: PathBuf = all.iter().collect();
        Ok((self.dir(&parent, true)?, name))
    }

    /// Removes whatever non-directory is at `name` so that a new entry can take its place
    /// (an archive may repeat an entry; forge's BUILD file replaces the archive's).
    fn clear(dir: &OwnedFd, name: &OsStr) -> Result<(), WalkError> {
        match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// A new regular file at `rel` (replacing a file or link there), open for writing.
    pub fn create_file(&self, rel: &Path, mode: u32) -> Result<File, WalkError> {
        let (dir, name) = self.parent_of(rel)?;
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mode = Mode::from_bits_truncate(mode);
        let fd = match openat(&dir, name, flags, mode) {
            Err(Errno::EEXIST) => {
                Self::clear(&dir, name)?;
                openat(&dir, name, flags, mode)?
            }
            other => other?,
        };
        Ok(File::from(fd))
    }

    /// Writes `content` as the regular file `rel`, replacing a file or link there.
    pub fn write(&self, rel: &Path, content: &[u8]) -> Result<(), WalkError> {
        use std::io::Write;
        let mut f = self.create_file(rel, 0o644)?;
        f.write_all(content)?;
        Ok(())
    }

    /// A symlink at `rel` pointing at `target` (the target is not checked here).
    pub fn symlink(&self, rel: &Path, target: &Path) -> Result<(), WalkError> {
        let (dir, name) = self.parent_of(rel)?;
        match symlinkat(target, &dir, name) {
            Err(Errno::EEXIST) => {
                Self::clear(&dir, name)?;
                symlinkat(target, &dir, name)?;
            }
            other => other?,
        }
        Ok(())
    }

    /// A hard link at `rel` to the regular file `original` (both relative to the root); a
    /// copy where the file system has no hard links.
    pub fn hard_link(&self, rel: &Path, original: &Path) -> Result<(), WalkError> {
        let mut all = parts(original)?;
        let Some(orig_name) = all.pop() else {
            return Err(WalkError::Io(io::ErrorKind::InvalidInput.into()));
        };
        let orig_dir = self.dir(&all.iter().collect::<PathBuf>(), false)?;
        let st = fstatat(&orig_dir, orig_name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
        let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        if kind == SFlag::S_IFLNK {
            return Err(WalkError::Symlink(original.to_owned()));
        }
        if kind != SFlag::S_IFREG {
            return Err(WalkError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("'{}' is not a regular file", original.display()),
            )));
        }
        let (dir, name) = self.parent_of(rel)?;
        let link = || linkat(&orig_dir, orig_name, &dir, name, AtFlags::empty());
        let linked = match link() {
            Err(Errno::EEXIST) => {
                Self::clear(&dir, name)?;
                link()
            }
            other => other,
        };
        if linked.is_err() {
            let src = openat(
                &orig_dir,
                orig_name,
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            let mut out = self.create_file(rel, st.st_mode & 0o777)?;
            io::copy(&mut File::from(src), &mut out)?;
        }
        Ok(())
    }

    /// The target of the symlink at `rel`, if `rel` is one.
    pub fn read_link(&self, rel: &Path) -> Option<PathBuf> {
        let (dir, name) = {
            let mut all = parts(rel).ok()?;
            let name = all.pop()?;
            (
                self.dir(&all.iter().collect::<PathBuf>(), false).ok()?,
                name,
            )
        };
        if !is_symlink_at(&dir, name) {
            return None;
        }
        readlinkat(&dir, name).ok().map(PathBuf::from)
    }

    /// Whether a symlink at `link` pointing at `target` lands below the root once every link
    /// it meets in the tree is followed (`None`: it does; `Some(why)`: it does not). A
    /// component that does not exist (yet) is taken as a directory.
    pub fn link_lands_outside(&self, link: &Path, target: &Path) -> Option<LinkEscape> {
        let mut at: Vec<OsString> = match parts(link) {
            Ok(p) => p.iter().map(|s| s.to_os_string()).collect(),
            Err(_) => return Some(LinkEscape::NotPlain),
        };
        at.pop();
        let mut hops = 0;
        self.resolve(&mut at, target, &mut hops).err()
    }

    fn resolve(
        &self,
        at: &mut Vec<OsString>,
        target: &Path,
        hops: &mut usize,
    ) -> Result<(), LinkEscape> {
        if target.is_absolute() {
            return Err(LinkEscape::Absolute(target.to_owned()));
        }
        for c in target.components() {
            match c {
                Component::CurDir => {}
                Component::ParentDir => {
                    if at.pop().is_none() {
                        return Err(LinkEscape::ClimbsOut);
                    }
                }
                Component::Normal(p) => {
                    at.push(p.to_os_string());
                    let here: PathBuf = at.iter().collect();
                    if let Some(next) = self.read_link(&here) {
                        *hops += 1;
                        if *hops > 40 {
                            return Err(LinkEscape::Loop);
                        }
                        at.pop();
                        self.resolve(at, &next, hops)
                            .map_err(|why| LinkEscape::Through {
                                link: here,
                                target: next,
                                why: Box::new(why),
                            })?;
                    }
                }
                _ => return Err(LinkEscape::Absolute(target.to_owned())),
            }
        }
        Ok(())
    }
}

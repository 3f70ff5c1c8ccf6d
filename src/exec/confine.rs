//! Declared outputs read without leaving the exec root: an exec root (the sandbox's or the
//! real one), the action's declared inputs and outputs, and an output path in; the regular
//! file (or directory) that path names out — every symlink on the way resolved hop by hop with
//! `openat`/`readlinkat` relative to the root, never followed on the host, and nothing opened
//! before `fstatat` said it is a regular file or a directory — or a `Refused` that says where
//! the path leads: out of the exec root, to a FIFO, socket or device, or nowhere.
//!
//! A declared input is read from the real exec root, as the command saw it (in the sandbox it
//! is a bind mount, gone once the command ended); so, when the exec root is the real one, are
//! the directories that lead to inputs (forge's own links into the workspace).

use crate::core::ExecPath;
use std::collections::{HashSet, VecDeque};
use std::ffi::{CStr, OsStr, OsString};
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat, renameat};
use nix::libc;
use nix::sys::stat::{Mode, fstat, fstatat};

/// How many symlinks one path may go through (Linux's own limit).
const MAX_HOPS: usize = 40;

/// Why an output path is not accepted.
#[derive(Debug)]
pub(crate) enum Refused {
    /// The path itself does not exist.
    Missing,
    /// The link targets followed, the last one leading out of the exec root.
    Escapes(Vec<String>),
    /// The link targets followed, the last one naming nothing in the exec root.
    Dangling(Vec<String>),
    /// A FIFO, socket or device, reached through the link targets given.
    Special(&'static str, Vec<String>),
    /// A directory where a file belongs, or the other way round.
    WrongKind(&'static str, Vec<String>),
    TooManyHops(Vec<String>),
    Io(io::Error),
}

impl From<Errno> for Refused {
    fn from(e: Errno) -> Refused {
        Refused::Io(e.into())
    }
}

impl From<io::Error> for Refused {
    fn from(e: io::Error) -> Refused {
        Refused::Io(e)
    }
}

fn links(chain: &[String]) -> String {
    chain
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(" -> ")
}

impl Refused {
    /// One line saying what is wrong with `what` ("declared output 'x'", ...).
    pub fn describe(&self, what: &str) -> String {
        let via = |chain: &[String]| match chain {
            [] => String::new(),
            _ => format!(" is a symlink to {}, which", links(chain)),
        };
        let fix = "an output must be a regular file the action made (or a directory, for a \
                   declared directory), or a symlink to another output or to a declared input \
                   inside the exec root";
        match self {
            Refused::Missing => format!("{what} was not created"),
            Refused::Escapes(chain) => format!(
                "{what} is a symlink to {}, outside the exec root; {fix}",
                links(chain)
            ),
            Refused::Dangling(chain) => format!(
                "{what} is a symlink to {}, which does not exist in the exec root (only the \
                 action's declared inputs and outputs are there)",
                links(chain)
            ),
            Refused::Special(kind, chain) => match chain.as_slice() {
                [] => format!("{what} is {kind}, not a regular file; {fix}"),
                _ => format!("{what}{} is {kind}, not a regular file; {fix}", via(chain)),
            },
            Refused::WrongKind(kind, chain) => match chain.as_slice() {
                [] => format!("{what} is {kind}"),
                _ => format!("{what}{} is {kind}", via(chain)),
            },
            Refused::TooManyHops(chain) => format!(
                "{what} is a symlink to {} ..., more than {MAX_HOPS} symlinks deep",
                links(&chain[..chain.len().min(3)])
            ),
            Refused::Io(e) => format!("cannot read {what}: {e}"),
        }
    }
}

/// What a path was resolved to.
pub(crate) enum Found {
    /// A regular file, open for reading, with its permission bits.
    File(fs::File, u32),
    Dir(OwnedFd),
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    File,
    Dir,
}

/// One action's exec root, for checking its outputs.
pub(crate) struct ExecRoot<'a> {
    /// Where the action's outputs are.
    root: OwnedFd,
    /// The real exec root, where inputs are read.
    real: &'a Path,
    /// The exec root's absolute path as the command saw it: absolute symlinks into it are
    /// resolved inside the root.
    seen: &'a Path,
    inputs: HashSet<&'a str>,
    /// With the real exec root only: directories leading to inputs and to no output.
    input_dirs: HashSet<&'a str>,
}

fn kind_of(mode: libc::mode_t) -> Option<&'static str> {
    match mode & libc::S_IFMT {
        libc::S_IFIFO => Some("a FIFO"),
        libc::S_IFSOCK => Some("a socket"),
        libc::S_IFCHR => Some("a character device"),
        libc::S_IFBLK => Some("a block device"),
        _ => None,
    }
}

/// The directories above `path` (`a`, `a/b` for `a/b/c`).
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

fn components(target: &Path) -> impl Iterator<Item = String> + '_ {
    target.components().filter_map(|c| match c {
        Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
        Component::ParentDir => Some("..".to_owned()),
        _ => None,
    })
}

impl<'a> ExecRoot<'a> {
    /// `work` holds the outputs (the sandbox's exec root, or `real` itself).
    pub fn new(
        work: &Path,
        real: &'a Path,
        seen: &'a Path,
        inputs: &'a [ExecPath],
        outputs: &'a [ExecPath],
    ) -> io::Result<ExecRoot<'a>> {
        let root = fs::File::open(work)?.into();
        let mut input_dirs = HashSet::new();
        if work == real {
            let output_dirs: HashSet<&str> = outputs.iter().flat_map(|o| ancestors(o)).collect();
            input_dirs = inputs
                .iter()
                .flat_map(|i| ancestors(i))
                .filter(|d| !output_dirs.contains(d))
                .collect();
        }
        Ok(ExecRoot {
            root,
            real,
            seen,
            inputs: inputs.iter().map(ExecPath::as_str).collect(),
            input_dirs,
        })
    }

    /// Resolves exec path `path` inside the root, hop by hop.
    pub fn open(&self, path: &str, want: Want) -> Result<Found, Refused> {
        if want == Want::File
            && let Some(found) = self.open_plain(path)
        {
            return Ok(found);
        }
        let mut dirs: Vec<OwnedFd> = Vec::new();
        let mut names: Vec<String> = Vec::new();
        let mut pending: VecDeque<String> = components(Path::new(path)).collect();
        let mut chain: Vec<String> = Vec::new();
        let gone = |chain: &Vec<String>| match chain.is_empty() {
            true => Refused::Missing,
            false => Refused::Dangling(chain.clone()),
        };
        while let Some(name) = pending.pop_front() {
            if name == ".." {
                if names.pop().is_none() {
                    return Err(Refused::Escapes(chain));
                }
                dirs.pop();
                continue;
            }
            let last = pending.is_empty();
            let here = dirs.last().unwrap_or(&self.root).as_fd();
            let exec_path = match names.is_empty() {
                true => name.clone(),
                false => format!("{}/{name}", names.join("/")),
            };
            if self.inputs.contains(exec_path.as_str())
                || self.input_dirs.contains(exec_path.as_str())
            {
                // Put there by forge: read what the command saw.
                let file = fs::File::options()
                    .read(true)
                    .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
                    .open(self.real.join(&exec_path))
                    .map_err(|_| gone(&chain))?;
                let meta = file.metadata()?;
                if meta.is_dir() {
                    if last && want == Want::File {
                        return Err(Refused::WrongKind("a directory", chain));
                    }
                    dirs.push(file.into());
                    names.push(name);
                    continue;
                }
                if let Some(kind) = kind_of(meta.permissions().mode()) {
                    return Err(Refused::Special(kind, chain));
                }
                if !last {
                    return Err(Refused::Dangling(chain));
                }
                if want == Want::Dir {
                    return Err(Refused::WrongKind("not a directory", chain));
                }
                let mode = meta.permissions().mode() & 0o7777;
                return Ok(Found::File(file, mode));
            }
            let stat = match fstatat(here, name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(s) => s,
                Err(Errno::ENOENT | Errno::ENOTDIR) => return Err(gone(&chain)),
                Err(e) => return Err(e.into()),
            };
            match stat.st_mode & libc::S_IFMT {
                libc::S_IFLNK => {
                    if chain.len() >= MAX_HOPS {
                        return Err(Refused::TooManyHops(chain));
                    }
                    let target = readlinkat(here, name.as_str())?;
                    let target = Path::new(&target).to_path_buf();
                    chain.push(target.display().to_string());
                    let rest = if target.is_absolute() {
                        let inside = target
                            .strip_prefix(self.seen)
                            .ok()
                            .filter(|_| !self.seen.as_os_str().is_empty());
                        let Some(inside) = inside else {
                            return Err(Refused::Escapes(chain));
                        };
                        dirs.clear();
                        names.clear();
                        inside.to_path_buf()
                    } else {
                        target
                    };
                    for c in components(&rest).collect::<Vec<_>>().into_iter().rev() {
                        pending.push_front(c);
                    }
                }
                libc::S_IFDIR => {
                    if last && want == Want::File {
                        return Err(Refused::WrongKind("a directory", chain));
                    }
                    let fd = openat(
                        here,
                        name.as_str(),
                        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )?;
                    dirs.push(fd);
                    names.push(name);
                }
                libc::S_IFREG => {
                    if !last {
                        return Err(Refused::Dangling(chain));
                    }
                    if want == Want::Dir {
                        return Err(Refused::WrongKind("not a directory", chain));
                    }
                    let (file, mode) = open_regular(here, &name, &chain)?;
                    return Ok(Found::File(file, mode));
                }
                mode => {
                    let kind = kind_of(mode).unwrap_or("not a regular file");
                    return Err(Refused::Special(kind, chain));
                }
            }
        }
        // The path ends in a directory (`..`, or a link to one).
        match want {
            Want::Dir => Ok(Found::Dir(nix::unistd::dup(
                dirs.last().unwrap_or(&self.root),
            )?)),
            Want::File => Err(Refused::WrongKind("a directory", chain)),
        }
    }

    /// Checks the directory output `out` and every entry in it; with `dest`, copies it there
    /// (symlinks inside resolved, as copies), else replaces its symlinks in place by copies of
    /// what they lead to. The error names the entry, relative to `out`.
    pub fn tree(&self, out: &str, dest: Option<&Path>) -> Result<(), (Option<String>, Refused)> {
        let dir = match self.open(out, Want::Dir) {
            Ok(Found::Dir(fd)) => fd,
            Ok(Found::File(..)) => {
                return Err((None, Refused::WrongKind("not a directory", Vec::new())));
            }
            Err(e) => return Err((None, e)),
        };
        if let Some(dest) = dest {
            fs::create_dir_all(dest).map_err(|e| (None, e.into()))?;
        }
        self.walk(out, &dir, "", dest)
    }

    fn walk(
        &self,
        out: &str,
        dir: &OwnedFd,
        rel: &str,
        dest: Option<&Path>,
    ) -> Result<(), (Option<String>, Refused)> {
        let names = entries(dir).map_err(|e| (Some(rel.to_owned()), e.into()))?;
        for name in names {
            let Some(name) = name.to_str().map(str::to_owned) else {
                let shown = name.to_string_lossy().into_owned();
                return Err((
                    Some(shown),
                    Refused::Io(io::Error::other("its name is not UTF-8")),
                ));
            };
            let path = match rel.is_empty() {
                true => name.clone(),
                false => format!("{rel}/{name}"),
            };
            let at = |e: Refused| (Some(path.clone()), e);
            let stat = fstatat(dir, name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(|e| at(e.into()))?;
            let target = dest.map(|d| d.join(&path));
            match stat.st_mode & libc::S_IFMT {
                libc::S_IFDIR => {
                    let sub = openat(
                        dir,
                        name.as_str(),
                        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| at(e.into()))?;
                    if let Some(t) = &target {
                        fs::create_dir_all(t).map_err(|e| at(e.into()))?;
                    }
                    self.walk(out, &sub, &path, dest)?;
                }
                libc::S_IFREG => {
                    if let Some(t) = &target {
                        let (mut file, mode) = open_regular(dir.as_fd(), &name, &[]).map_err(at)?;
                        write_copy(&mut file, mode, t).map_err(|e| at(e.into()))?;
                    }
                }
                libc::S_IFLNK => {
                    let (mut file, mode) = match self
                        .open(&format!("{out}/{path}"), Want::File)
                        .map_err(at)?
                    {
                        Found::File(file, mode) => (file, mode),
                        Found::Dir(_) => {
                            return Err(at(Refused::WrongKind("a directory", Vec::new())));
                        }
                    };
                    match &target {
                        Some(t) => write_copy(&mut file, mode, t),
                        None => replace_in(dir, &name, &mut file, mode),
                    }
                    .map_err(|e| at(e.into()))?;
                }
                mode => {
                    let kind = kind_of(mode).unwrap_or("not a regular file");
                    return Err(at(Refused::Special(kind, Vec::new())));
                }
            }
        }
        Ok(())
    }
}

impl ExecRoot<'_> {
    /// `open` of a regular file reached through plain directories none of which forge put
    /// there (an output of a command, usually): one `openat2` refusing links and escapes,
    /// instead of a stat, an open and a close per directory of the path. `None` when that
    /// does not find a regular file: the walk then resolves the path (and says why not).
    fn open_plain(&self, path: &str) -> Option<Found> {
        let forge_put = |p: &str| self.inputs.contains(p) || self.input_dirs.contains(p);
        if forge_put(path) || ancestors(path).any(forge_put) {
            return None;
        }
        /// `struct open_how` of linux/openat2.h.
        #[repr(C)]
        struct OpenHow {
            flags: u64,
            mode: u64,
            resolve: u64,
        }
        let how = OpenHow {
            flags: u64::try_from(
                libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
            .ok()?,
            mode: 0,
            resolve: libc::RESOLVE_BENEATH
                | libc::RESOLVE_NO_SYMLINKS
                | libc::RESOLVE_NO_MAGICLINKS,
        };
        let name = std::ffi::CString::new(path).ok()?;
        // SAFETY: openat2 reads `name` and `how` (of the size given) and returns a new
        // descriptor or -1; kernels without it fail with ENOSYS.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                self.root.as_raw_fd(),
                name.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        let fd = std::os::fd::RawFd::try_from(fd)
            .ok()
            .filter(|fd| *fd >= 0)?;
        // SAFETY: the descriptor is new and ours alone.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let stat = fstat(&fd).ok()?;
        if stat.st_mode & libc::S_IFMT != libc::S_IFREG {
            return None;
        }
        Some(Found::File(fs::File::from(fd), stat.st_mode & 0o7777))
    }
}

/// Opens regular file `name` in `dir` without following a link and without blocking (a FIFO
/// put there since the `fstatat` must not hang us), checking it is still a regular file.
fn open_regular(
    dir: std::os::fd::BorrowedFd,
    name: &str,
    chain: &[String],
) -> Result<(fs::File, u32), Refused> {
    let fd = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let stat = fstat(&fd)?;
    if stat.st_mode & libc::S_IFMT != libc::S_IFREG {
        let kind = kind_of(stat.st_mode).unwrap_or("not a regular file");
        return Err(Refused::Special(kind, chain.to_vec()));
    }
    Ok((fs::File::from(fd), stat.st_mode & 0o7777))
}

/// Copies `from` to a new file at `to` (replacing it), with permission bits `mode`.
pub(crate) fn write_copy(from: &mut fs::File, mode: u32, to: &Path) -> io::Result<()> {
    match fs::symlink_metadata(to) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(to)?,
        Ok(_) => fs::remove_file(to)?,
        Err(_) => {}
    }
    let mut dest = fs::File::options()
        .write(true)
        .create_new(true)
        .mode((mode & 0o777) | 0o200)
        .open(to)?;
    io::copy(from, &mut dest)?;
    dest.set_permissions(fs::Permissions::from_mode(mode & 0o777))?;
    Ok(())
}

/// Replaces entry `name` of `dir` (a symlink) by a copy of `from`: written beside it, then
/// renamed over it.
fn replace_in(dir: &OwnedFd, name: &str, from: &mut fs::File, mode: u32) -> io::Result<()> {
    let tmp = format!(".{name}.forge-copy");
    let _ = nix::unistd::unlinkat(dir, tmp.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
    let fd = openat(
        dir,
        tmp.as_str(),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate((mode & 0o777) | 0o200),
    )?;
    let mut dest = fs::File::from(fd);
    io::copy(from, &mut dest)?;
    dest.set_permissions(fs::Permissions::from_mode(mode & 0o777))?;
    renameat(dir, tmp.as_str(), dir, name)?;
    Ok(())
}

/// The names in directory `dir`, without `.` and `..`.
fn entries(dir: &OwnedFd) -> io::Result<Vec<OsString>> {
    let raw = nix::unistd::dup(dir)?.into_raw_fd();
    // SAFETY: `raw` is a fresh descriptor; fdopendir owns it from here (closedir closes it).
    let stream = unsafe { libc::fdopendir(raw) };
    if stream.is_null() {
        let e = io::Error::last_os_error();
        // SAFETY: fdopendir failed, so `raw` is still ours.
        drop(unsafe { OwnedFd::from_raw_fd(raw) });
        return Err(e);
    }
    // SAFETY: `stream` is a valid directory stream until closedir below; the duplicate shares
    // the offset with `dir`, so start from the beginning.
    unsafe { libc::rewinddir(stream) };
    let mut names = Vec::new();
    let result = loop {
        Errno::clear();
        // SAFETY: as above.
        let entry = unsafe { libc::readdir(stream) };
        if entry.is_null() {
            match Errno::last_raw() {
                0 => break Ok(()),
                n => break Err(io::Error::from_raw_os_error(n)),
            }
        }
        // SAFETY: readdir returned a valid entry with a NUL-terminated name.
        let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) };
        let name = OsStr::from_bytes(name.to_bytes());
        if name != "." && name != ".." {
            names.push(name.to_owned());
        }
    };
    // SAFETY: closes the stream and `raw`.
    unsafe { libc::closedir(stream) };
    names.sort();
    result.map(|()| names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn setup() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("out/pkg")).unwrap();
        fs::create_dir_all(root.join("src")).unwrap();
        fs::write(root.join("src/in.txt"), "input").unwrap();
        fs::write(root.join("out/pkg/b"), "bee").unwrap();
        fs::write(dir.path().join("secret"), "secret").unwrap();
        dir
    }

    fn read(found: Result<Found, Refused>) -> String {
        match found {
            Ok(Found::File(mut f, _)) => io::read_to_string(&mut f).unwrap(),
            Ok(Found::Dir(_)) => "<dir>".to_owned(),
            Err(e) => e.describe("it"),
        }
    }

    #[test]
    fn links_resolve_inside_the_root_hop_by_hop() {
        let dir = setup();
        let root = dir.path().join("root");
        let inputs = vec![ExecPath::new("src/in.txt")];
        let outputs = vec![ExecPath::new("out/pkg/a"), ExecPath::new("out/pkg/b")];
        let er = ExecRoot::new(&root, &root, &root, &inputs, &outputs).unwrap();
        let pkg = root.join("out/pkg");
        symlink("b", pkg.join("a")).unwrap();
        assert_eq!(read(er.open("out/pkg/a", Want::File)), "bee");
        fs::remove_file(pkg.join("a")).unwrap();
        symlink("../../src/in.txt", pkg.join("a")).unwrap();
        assert_eq!(read(er.open("out/pkg/a", Want::File)), "input");
        fs::remove_file(pkg.join("a")).unwrap();
        symlink(root.join("out/pkg/b"), pkg.join("a")).unwrap();
        assert_eq!(read(er.open("out/pkg/a", Want::File)), "bee");

        fs::remove_file(pkg.join("a")).unwrap();
        symlink("hop", pkg.join("a")).unwrap();
        symlink(dir.path().join("secret"), pkg.join("hop")).unwrap();
        let e = read(er.open("out/pkg/a", Want::File));
        assert!(e.contains("'hop' -> '"), "{e}");
        assert!(e.contains("outside the exec root"), "{e}");
        fs::remove_file(pkg.join("hop")).unwrap();
        symlink("../../../secret", pkg.join("hop")).unwrap();
        assert!(read(er.open("out/pkg/a", Want::File)).contains("outside"));
        fs::remove_file(pkg.join("hop")).unwrap();
        symlink("a", pkg.join("hop")).unwrap();
        assert!(read(er.open("out/pkg/a", Want::File)).contains("symlinks deep"));
        assert!(matches!(
            er.open("out/pkg/none", Want::File),
            Err(Refused::Missing)
        ));
    }

    #[test]
    fn special_files_are_refused_without_opening_them() {
        let dir = setup();
        let root = dir.path().join("root");
        let fifo = root.join("out/pkg/fifo");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o644)).unwrap();
        let outputs = vec![ExecPath::new("out/pkg/fifo")];
        let er = ExecRoot::new(&root, &root, &root, &[], &outputs).unwrap();
        let e = read(er.open("out/pkg/fifo", Want::File));
        assert!(e.starts_with("it is a FIFO, not a regular file"), "{e}");
        let e = er.tree("out", None).unwrap_err();
        assert_eq!(e.0.as_deref(), Some("pkg/fifo"));
    }
}

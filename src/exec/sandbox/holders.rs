//! The processes that hold namespaces open for a whole build: the build's user namespace and
//! the mount namespace with one read-only overlay per layer in; a `cat` per namespace, each
//! reading a pipe only forge writes to so it ends with forge, out — every command joins them
//! instead of making its own.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::libc;

use super::command::*;
use super::namespaces::{self, Step};

/// A process (`cat`, reading a pipe only forge writes to) that keeps one user namespace
/// alive for the whole build; every command joins it instead of creating its own. When
/// forge ends, even killed, the pipe closes and the holder exits.
pub(super) struct Holder {
    pub(super) pid: i32,
    pub(super) user: std::os::fd::OwnedFd,
    pub(super) keepalive: Mutex<Option<io::PipeWriter>>,
    /// The mount namespace the layers are mounted in, made on first use.
    pub(super) layers: Mutex<LayerNamespace>,
    /// Its descriptor, once it exists, for the commands to enter.
    pub(super) layers_fd: std::sync::OnceLock<RawFd>,
}

/// A `cat` in the build's user namespace holding a mount namespace of its own: a copy of
/// forge's mounts, plus one read-only overlay per layer, mounted once per build. Every
/// command's mount namespace starts as a copy of it, so its binds can come from the layers
/// without each command making (and tearing down) overlays of its own.
#[derive(Default)]
pub(super) struct LayerNamespace {
    pub(super) holder: Option<(i32, std::os::fd::OwnedFd, io::PipeWriter)>,
    /// Layer → where its overlay is mounted (a directory of the roots directory).
    pub(super) mounted: HashMap<usize, PathBuf>,
}

/// `true`, run where a namespace needs a process only for its steps.
pub(super) fn true_program() -> io::Result<&'static str> {
    ["/usr/bin/true", "/bin/true"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or_else(|| io::Error::other("no true(1) to mount the sandbox's layers"))
}

/// Starts `cat` reading a pipe only forge writes to (so it ends with forge, or when the
/// returned end is dropped), in the user namespace `join` if given, with new namespaces
/// `clone_flags` set up by `steps`: how forge holds a namespace open.
pub(super) fn start_cat(
    join: Option<RawFd>,
    clone_flags: libc::c_int,
    steps: Vec<Step>,
) -> io::Result<(i32, io::PipeWriter)> {
    let cs = |s: &str| CString::new(s).map_err(io::Error::other);
    let (reader, writer) = io::pipe()?;
    let null = fs::File::options().write(true).open("/dev/null")?;
    let cmd = namespaces::Command {
        join,
        net: None,
        mnt: None,
        clone_flags,
        steps,
        program: cs(cat()?)?,
        argv: vec![cs("cat")?],
        env: Vec::new(),
        output: null.into(),
        input: reader.into(),
    };
    Ok((namespaces::spawn(&cmd)?, writer))
}

/// `cat`, the program the namespace holders run.
pub(super) fn cat() -> io::Result<&'static str> {
    ["/usr/bin/cat", "/bin/cat"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or_else(|| io::Error::other("no cat(1) to hold the namespaces"))
}

impl Holder {
    pub(super) fn start() -> io::Result<Holder> {
        let cs = |s: &str| CString::new(s).map_err(io::Error::other);
        // SAFETY: plain getters.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let (pid, writer) = start_cat(
            None,
            libc::CLONE_NEWUSER,
            vec![
                Step::Write {
                    path: cs("/proc/self/setgroups")?,
                    data: cs("deny")?,
                },
                Step::Write {
                    path: cs("/proc/self/uid_map")?,
                    data: cs(&format!("{uid} {uid} 1\n"))?,
                },
                Step::Write {
                    path: cs("/proc/self/gid_map")?,
                    data: cs(&format!("{gid} {gid} 1\n"))?,
                },
            ],
        )?;
        Ok(Holder {
            pid,
            user: fs::File::open(format!("/proc/{pid}/ns/user"))?.into(),
            keepalive: Mutex::new(Some(writer)),
            layers: Mutex::new(LayerNamespace::default()),
            layers_fd: std::sync::OnceLock::new(),
        })
    }

    pub(super) fn layers_fd(&self) -> Option<RawFd> {
        self.layers_fd.get().copied()
    }

    /// Mounts `dir` as a read-only overlay at `mount_point` in the layers' mount namespace
    /// (made first if need be), unless layer `layer` is mounted already; returns where it is.
    pub(super) fn mount_layer(
        &self,
        layer: usize,
        dir: &Path,
        empty: &Path,
        mount_point: &Path,
    ) -> io::Result<PathBuf> {
        use std::os::fd::AsRawFd;
        let cs = |s: &str| CString::new(s).map_err(io::Error::other);
        let c = |p: &Path| CString::new(p.as_os_str().as_encoded_bytes()).map_err(io::Error::other);
        let mut state = self.layers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = state.mounted.get(&layer) {
            return Ok(found.clone());
        }
        if state.holder.is_none() {
            let (pid, writer) = start_cat(
                Some(self.user.as_raw_fd()),
                libc::CLONE_NEWNS,
                vec![Step::Mount {
                    source: None,
                    target: cs("/")?,
                    fstype: None,
                    flags: libc::MS_REC | libc::MS_PRIVATE,
                    data: None,
                }],
            )?;
            let mnt: std::os::fd::OwnedFd = fs::File::open(format!("/proc/{pid}/ns/mnt"))?.into();
            let _ = self.layers_fd.set(mnt.as_raw_fd());
            state.holder = Some((pid, mnt, writer));
        }
        let Some((_, mnt, _)) = &state.holder else {
            return Err(io::Error::other("the sandbox layers' namespace is gone"));
        };
        fs::create_dir_all(mount_point)?;
        // A short-lived `true` in that namespace opens the layer there (an overlay's layers
        // must be mounts of the namespace that mounts it) at descriptors fixed here, so the
        // overlay's options can name them, then mounts it.
        let null = fs::File::options()
            .read(true)
            .write(true)
            .open("/dev/null")?;
        let null_out = null.try_clone()?;
        let mut fds = layer_fds(&[null.as_raw_fd(), null_out.as_raw_fd()]);
        let (layer_fd, empty_fd) = match (fds.next(), fds.next()) {
            (Some(a), Some(b)) => (a, b),
            _ => {
                return Err(io::Error::other(
                    "sandbox: no descriptor free to open a layer",
                ));
            }
        };
        let cmd = namespaces::Command {
            join: Some(self.user.as_raw_fd()),
            net: None,
            mnt: Some(mnt.as_raw_fd()),
            clone_flags: 0,
            steps: vec![
                Step::OpenDir {
                    path: c(dir)?,
                    fd: layer_fd,
                },
                Step::OpenDir {
                    path: c(empty)?,
                    fd: empty_fd,
                },
                Step::Mount {
                    source: Some(cs("overlay")?),
                    target: c(mount_point)?,
                    fstype: Some(cs("overlay")?),
                    flags: libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
                    data: Some(cs(&format!(
                        "lowerdir=/proc/self/fd/{layer_fd}:/proc/self/fd/{empty_fd}"
                    ))?),
                },
            ],
            program: cs(true_program()?)?,
            argv: vec![cs("true")?],
            env: Vec::new(),
            output: null_out.into(),
            input: null.into(),
        };
        let pid = namespaces::spawn(&cmd)?;
        let status = reap(pid)?;
        if !status.success() {
            return Err(io::Error::other(format!(
                "sandbox: mounting the layer of {} ended with {status}",
                dir.display()
            )));
        }
        state.mounted.insert(layer, mount_point.to_path_buf());
        Ok(mount_point.to_path_buf())
    }

    /// A new network namespace, owned by the build's user namespace, with loopback up:
    /// made by a short-lived `cat` that joins the user namespace and ends once the
    /// namespace is open here.
    pub(super) fn new_net(&self) -> io::Result<std::os::fd::OwnedFd> {
        use std::os::fd::AsRawFd;
        let (pid, writer) = start_cat(
            Some(self.user.as_raw_fd()),
            libc::CLONE_NEWNET,
            vec![Step::LoopbackUp],
        )?;
        let net = fs::File::open(format!("/proc/{pid}/ns/net"));
        drop(writer);
        reap(pid)?;
        Ok(net?.into())
    }

    /// Closes the pipes and waits for the holders to exit; once only.
    pub(super) fn stop(&self) {
        let layers = self
            .layers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .holder
            .take();
        if let Some((pid, mnt, writer)) = layers {
            drop(writer);
            drop(mnt);
            let _ = reap(pid);
        }
        let writer = self
            .keepalive
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(writer) = writer {
            drop(writer);
            let _ = reap(self.pid);
        }
    }
}

pub(super) fn pipe_pair() -> io::Result<(std::os::fd::OwnedFd, io::PipeReader)> {
    let (reader, writer) = io::pipe()?;
    Ok((writer.into(), reader))
}

/// Waits for and reaps `pid`.
pub(super) fn reap(pid: i32) -> io::Result<std::process::ExitStatus> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(std::process::ExitStatus::from_raw(status))
}

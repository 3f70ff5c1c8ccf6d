//! Starting a command in fresh Linux namespaces: a prepared list of mounts and an argv in, a
//! running process (pid 1 of its own pid namespace) out.
//!
//! The child is made with `clone(CLONE_VM | CLONE_VFORK | CLONE_NEW*)`: it shares forge's
//! memory until it calls `execve`, like `posix_spawn` does, so starting it costs no copy of
//! forge's address space. The price is that the child may only make raw system calls on data
//! prepared beforehand: no allocation, no locks (another thread of forge may hold them). So
//! everything — paths, mount flags, the uid map — is turned into C strings here first, and
//! the child walks a flat list of steps.

use std::ffi::{CString, c_char, c_int, c_ulong, c_void};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use nix::libc;

/// One thing the child does before `execve`.
#[derive(Debug)]
pub enum Step {
    /// `mount(source, target, fstype, flags, data)`; `None` is a null pointer.
    Mount {
        source: Option<CString>,
        target: CString,
        fstype: Option<CString>,
        flags: c_ulong,
        data: Option<CString>,
    },
    /// Writes `data` to the file at `path` (the uid and gid maps).
    Write {
        path: CString,
        data: CString,
    },
    /// Brings the loopback interface of the new network namespace up.
    LoopbackUp,
    /// `sethostname`.
    Hostname(CString),
    /// `chdir(dir)`, `pivot_root(".", ".")`, then detaches the old root: only the new root's
    /// mounts stay visible.
    PivotRoot(CString),
    Chdir(CString),
    /// `mkdir`, where it already existing is fine (for mount points inside a fresh tmpfs).
    Mkdir(CString),
    /// `mount_setattr`: makes the mount at `target` read-only (`read_only`) or writable,
    /// with every mount below it too when `recursive` — one system call where remounting
    /// each bind read-only takes one per mount. Only where [`mount_setattr_works`].
    SetReadOnly {
        target: CString,
        read_only: bool,
        recursive: bool,
    },
    /// Opens the directory `path` (close-on-exec) as descriptor `fd`.
    OpenDir {
        path: CString,
        fd: c_int,
    },
    /// The last step: gives up every capability for good (bounding, ambient, effective,
    /// permitted, inheritable), locks the secure bits so that uid 0 regains none at
    /// `execve`, and sets no_new_privs. A command that runs as (host) root then cannot
    /// mount, remount, or do anything else a capability would allow.
    DropPrivileges,
}

/// What to start and how.
pub struct Command {
    /// The user namespace to enter first, as an open `/proc/<pid>/ns/user` of a process
    /// that holds it (one per build, joined by every command).
    pub join: Option<RawFd>,
    /// With `join`: the network namespace to enter then. Creating one costs more than
    /// everything else a sandbox needs, so the runner keeps a pool of them, each used by one
    /// command at a time; it gets this one back after the command ended.
    pub net: Option<OwnedFd>,
    /// With `join`: the mount namespace to enter before creating the command's own (which
    /// starts as a copy of it): the one holding the sandbox's layers.
    pub mnt: Option<RawFd>,
    /// The namespaces to create.
    pub clone_flags: c_int,
    pub steps: Vec<Step>,
    /// Resolved program path as seen inside the sandbox.
    pub program: CString,
    pub argv: Vec<CString>,
    pub env: Vec<CString>,
    /// Becomes the child's stdout and stderr.
    pub output: OwnedFd,
    /// Becomes the child's stdin.
    pub input: OwnedFd,
}

/// Set by the child when a step fails: which step (`steps.len()` for `execve`) and errno.
struct Report {
    step: AtomicUsize,
    errno: AtomicI32,
    /// With `join`: the pid of the command, started by the intermediate child.
    pid: AtomicI32,
}

struct Args<'a> {
    command: &'a Command,
    argv: Vec<*const c_char>,
    env: Vec<*const c_char>,
    report: Report,
    /// The second stack, for the command when an intermediate child joins namespaces.
    stack: Box<[std::mem::MaybeUninit<u8>]>,
}

const STACK_SIZE: usize = 256 * 1024;

/// Starts `command`; returns the child's pid (in forge's pid namespace). The child is a
/// session and process-group leader and pid 1 of its pid namespace: killing it kills
/// everything it started.
pub fn spawn(command: &Command) -> io::Result<i32> {
    let null_terminated = |v: &[CString]| {
        v.iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect::<Vec<_>>()
    };
    let args = Args {
        command,
        argv: null_terminated(&command.argv),
        env: null_terminated(&command.env),
        report: Report {
            step: AtomicUsize::new(usize::MAX),
            errno: AtomicI32::new(0),
            pid: AtomicI32::new(0),
        },
        stack: Box::new_uninit_slice(STACK_SIZE),
    };
    // Stacks need no zeroing (the children write before they read): 512 KiB less to clear
    // per command.
    let mut stack: Box<[std::mem::MaybeUninit<u8>]> = Box::new_uninit_slice(STACK_SIZE);
    // The stack grows down on every architecture Linux runs forge on; keep it 16-aligned.
    let top = (stack.as_mut_ptr() as usize + STACK_SIZE) & !15;
    let (entry, flags): (extern "C" fn(*mut c_void) -> c_int, c_int) = match command.join {
        // The intermediate child joins the namespaces, then starts the command with the
        // namespaces to create; it exits as soon as the command has exec'd.
        Some(_) => (join_then_spawn, 0),
        None => (child, command.clone_flags),
    };
    // SAFETY: the children only make async-signal-safe system calls on data in `args`,
    // which outlives them: CLONE_VFORK suspends this thread until the child has exec'd or
    // exited (and the intermediate child waits the same way for the command).
    let first = unsafe {
        libc::clone(
            entry,
            top as *mut c_void,
            flags | libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            &args as *const Args as *mut c_void,
        )
    };
    if first < 0 {
        return Err(io::Error::last_os_error());
    }
    let pid = if command.join.is_some() {
        // The intermediate child has exited; the command is our child (CLONE_PARENT).
        let mut status = 0;
        // SAFETY: plain waitpid on our own child.
        unsafe { libc::waitpid(first, &mut status, 0) };
        args.report.pid.load(Ordering::SeqCst)
    } else {
        first
    };
    let step = args.report.step.load(Ordering::SeqCst);
    if step != usize::MAX {
        // The child failed before exec and has exited; reap it.
        if pid > 0 {
            let mut status = 0;
            // SAFETY: plain waitpid on our own child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
        }
        let errno = io::Error::from_raw_os_error(args.report.errno.load(Ordering::SeqCst));
        let what = match command.steps.get(step) {
            _ if step == JOIN_STEP => "sandbox: cannot join the build's namespaces".to_owned(),
            Some(s) => describe(s),
            None if step == command.steps.len() => {
                format!("cannot run {}", command.program.to_string_lossy())
            }
            None => "cannot set up the sandbox".to_owned(),
        };
        return Err(io::Error::new(errno.kind(), format!("{what}: {errno}")));
    }
    Ok(pid)
}

fn describe(step: &Step) -> String {
    match step {
        Step::Mount { source, target, .. } => format!(
            "sandbox: cannot mount {} on {}",
            source
                .as_ref()
                .map_or("(none)".into(), |s| s.to_string_lossy()),
            target.to_string_lossy()
        ),
        Step::Write { path, .. } => format!("sandbox: cannot write {}", path.to_string_lossy()),
        Step::LoopbackUp => "sandbox: cannot bring up the loopback interface".to_owned(),
        Step::Hostname(_) => "sandbox: cannot set the hostname".to_owned(),
        Step::PivotRoot(dir) => format!("sandbox: cannot pivot into {}", dir.to_string_lossy()),
        Step::Chdir(dir) => format!("sandbox: cannot enter {}", dir.to_string_lossy()),
        Step::Mkdir(dir) => format!("sandbox: cannot create {}", dir.to_string_lossy()),
        Step::OpenDir { path, .. } => format!("sandbox: cannot open {}", path.to_string_lossy()),
        Step::SetReadOnly {
            target, read_only, ..
        } => format!(
            "sandbox: cannot make {} {}",
            target.to_string_lossy(),
            if *read_only { "read-only" } else { "writable" }
        ),
        Step::DropPrivileges => "sandbox: cannot drop the command's privileges".to_owned(),
    }
}

/// The `step` reported when joining the namespaces failed.
const JOIN_STEP: usize = usize::MAX - 1;

/// The intermediate child: enters the build's user namespace and the command's network
/// namespace, then starts the command as a sibling (CLONE_PARENT), so forge waits for it directly.
extern "C" fn join_then_spawn(arg: *mut c_void) -> c_int {
    // SAFETY: as for `child`.
    let args = unsafe { &*(arg as *const Args) };
    let cmd = args.command;
    // SAFETY: raw system calls on open descriptors and the prepared second stack.
    unsafe {
        let fail = || -> c_int {
            args.report
                .errno
                .store(*libc::__errno_location(), Ordering::SeqCst);
            args.report.step.store(JOIN_STEP, Ordering::SeqCst);
            libc::_exit(127)
        };
        let Some(user) = cmd.join else {
            return fail();
        };
        if libc::setns(user, libc::CLONE_NEWUSER) != 0 {
            return fail();
        }
        if let Some(mnt) = cmd.mnt
            && libc::setns(mnt, libc::CLONE_NEWNS) != 0
        {
            return fail();
        }
        if let Some(net) = &cmd.net
            && libc::setns(net.as_raw_fd(), libc::CLONE_NEWNET) != 0
        {
            return fail();
        }
        let base = args.stack.as_ptr() as usize;
        let top = (base + args.stack.len()) & !15;
        let pid = libc::clone(
            child,
            top as *mut c_void,
            cmd.clone_flags
                | libc::CLONE_VM
                | libc::CLONE_VFORK
                | libc::CLONE_PARENT
                | libc::SIGCHLD,
            arg,
        );
        if pid < 0 {
            return fail();
        }
        args.report.pid.store(pid, Ordering::SeqCst);
        libc::_exit(0)
    }
}

/// Runs in the child, in forge's memory: raw system calls only.
extern "C" fn child(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `Args` that `spawn` keeps alive until we exec or exit.
    let args = unsafe { &*(arg as *const Args) };
    let fail = |step: usize| -> c_int {
        // SAFETY: errno location is per-thread and valid; _exit never returns.
        unsafe {
            args.report
                .errno
                .store(*libc::__errno_location(), Ordering::SeqCst);
            args.report.step.store(step, Ordering::SeqCst);
            libc::_exit(127)
        }
    };
    let cmd = args.command;
    // SAFETY (whole block): raw system calls on prepared, NUL-terminated strings.
    unsafe {
        // A fresh session: the child leads its own process group.
        libc::setsid();
        for (i, step) in cmd.steps.iter().enumerate() {
            let ok = match step {
                Step::Mount {
                    source,
                    target,
                    fstype,
                    flags,
                    data,
                } => {
                    let ptr =
                        |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
                    libc::mount(
                        ptr(source),
                        target.as_ptr(),
                        ptr(fstype),
                        *flags,
                        ptr(data) as *const c_void,
                    ) == 0
                }
                Step::Write { path, data } => {
                    let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                    let bytes = data.as_bytes();
                    let ok = fd >= 0
                        && libc::write(fd, bytes.as_ptr() as *const c_void, bytes.len())
                            == bytes.len() as isize;
                    if fd >= 0 {
                        libc::close(fd);
                    }
                    ok
                }
                Step::LoopbackUp => loopback_up(),
                Step::Hostname(name) => {
                    libc::sethostname(name.as_ptr(), name.as_bytes().len()) == 0
                }
                Step::PivotRoot(dir) => {
                    let dot = c".".as_ptr();
                    libc::chdir(dir.as_ptr()) == 0
                        && libc::syscall(libc::SYS_pivot_root, dot, dot) == 0
                        && libc::umount2(dot, libc::MNT_DETACH) == 0
                }
                Step::Chdir(dir) => libc::chdir(dir.as_ptr()) == 0,
                Step::Mkdir(dir) => {
                    libc::mkdir(dir.as_ptr(), 0o755) == 0
                        || *libc::__errno_location() == libc::EEXIST
                }
                Step::OpenDir { path, fd } => {
                    let opened = libc::open(
                        path.as_ptr(),
                        libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
                    );
                    opened == *fd
                        || (opened >= 0
                            && libc::dup3(opened, *fd, libc::O_CLOEXEC) == *fd
                            && libc::close(opened) == 0)
                }
                Step::SetReadOnly {
                    target,
                    read_only,
                    recursive,
                } => set_read_only(target, *read_only, *recursive),
                Step::DropPrivileges => drop_privileges(),
            };
            if !ok {
                return fail(i);
            }
        }
        if libc::dup2(cmd.input.as_raw_fd(), 0) < 0
            || libc::dup2(cmd.output.as_raw_fd(), 1) < 0
            || libc::dup2(cmd.output.as_raw_fd(), 2) < 0
        {
            return fail(cmd.steps.len());
        }
        // Forge ignores SIGPIPE and may block signals in this thread; the command starts
        // with the defaults, as it would from a shell.
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::execve(cmd.program.as_ptr(), args.argv.as_ptr(), args.env.as_ptr());
        fail(cmd.steps.len())
    }
}

/// `struct mount_attr` of <linux/mount.h>.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `MOUNT_ATTR_RDONLY` of <linux/mount.h>.
const MOUNT_ATTR_RDONLY: u64 = 1;

/// See [`Step::SetReadOnly`]. Only the read-only bit changes: the flags a user namespace
/// may not clear (nosuid, nodev, ...) stay as they are, unlike a remount, which must name them.
unsafe fn set_read_only(target: &CString, read_only: bool, recursive: bool) -> bool {
    let attr = MountAttr {
        attr_set: if read_only { MOUNT_ATTR_RDONLY } else { 0 },
        attr_clr: if read_only { 0 } else { MOUNT_ATTR_RDONLY },
        propagation: 0,
        userns_fd: 0,
    };
    let flags = if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: a system call on a NUL-terminated path and a struct on the stack.
    unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            target.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        ) == 0
    }
}

/// Whether this kernel has `mount_setattr` (Linux 5.12) and lets forge call it (a seccomp
/// filter may not): asked once, with a null path, which it refuses as a bad address only
/// when it exists.
pub fn mount_setattr_works() -> bool {
    static WORKS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *WORKS.get_or_init(|| {
        // SAFETY: the kernel checks the pointers and fails without touching anything.
        let r = unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                libc::AT_FDCWD,
                std::ptr::null::<c_char>(),
                0,
                std::ptr::null::<MountAttr>(),
                std::mem::size_of::<MountAttr>(),
            )
        };
        r != 0 && {
            let e = io::Error::last_os_error().raw_os_error();
            e == Some(libc::EFAULT) || e == Some(libc::EINVAL)
        }
    })
}

/// Drops every capability, locked: see [`Step::DropPrivileges`].
unsafe fn drop_privileges() -> bool {
    // <linux/securebits.h>: uid 0 gets no capabilities at execve (NOROOT), changing uids
    // does not touch them (NO_SETUID_FIXUP), none can be kept or raised as ambient, and
    // each of these is locked so the command cannot clear it.
    const SECURE_BITS: c_ulong = (1 << 0) // SECBIT_NOROOT
        | (1 << 1) // SECBIT_NOROOT_LOCKED
        | (1 << 2) // SECBIT_NO_SETUID_FIXUP
        | (1 << 3) // SECBIT_NO_SETUID_FIXUP_LOCKED
        | (1 << 5) // SECBIT_KEEP_CAPS_LOCKED
        | (1 << 6) // SECBIT_NO_CAP_AMBIENT_RAISE
        | (1 << 7); // SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    #[repr(C)]
    struct Header {
        version: u32,
        pid: c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    // SAFETY: prctl and capset on stack data; no allocation.
    unsafe {
        if libc::prctl(libc::PR_SET_SECUREBITS, SECURE_BITS, 0, 0, 0) != 0 {
            return false;
        }
        // Every capability the kernel knows: PR_CAPBSET_DROP fails with EINVAL past the last.
        for cap in 0..64 {
            if libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 {
                if *libc::__errno_location() == libc::EINVAL {
                    break;
                }
                return false;
            }
        }
        if libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        ) != 0
        {
            return false;
        }
        let header = Header {
            version: LINUX_CAPABILITY_VERSION_3,
            pid: 0,
        };
        let none = [Data {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2];
        libc::syscall(libc::SYS_capset, &header, none.as_ptr()) == 0
            && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
    }
}

/// `ip link set lo up`, with two ioctls.
unsafe fn loopback_up() -> bool {
    // SAFETY: a zeroed ifreq is valid; the name fits.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return false;
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as c_char;
        }
        let ok = libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req) == 0 && {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            libc::ioctl(sock, libc::SIOCSIFFLAGS, &req) == 0
        };
        libc::close(sock);
        ok
    }
}

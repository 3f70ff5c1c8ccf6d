//! Running one command: a `Spawn` (argv, exact environment, cwd) in, a `SpawnOutcome` (how it
//! ended, combined stdout+stderr) out. `Runner` is the seam between the scheduler and real
//! processes; `LocalRunner` runs them on this machine, each in its own process group so that
//! cancellation (Ctrl-C, `Cancel::cancel`) can SIGKILL the command and everything it started.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::Pid;

use crate::core::Action;

/// One command to run.
#[derive(Debug)]
pub struct Spawn<'a> {
    /// The action this command belongs to (for runners that want its outputs or owner).
    pub action: &'a Action,
    pub argv: &'a [String],
    /// The complete environment; nothing else is inherited.
    pub env: &'a BTreeMap<String, String>,
    pub cwd: &'a Path,
    /// Where the command starts, relative to the exec root (default: the exec root itself).
    pub workdir: Option<&'a str>,
    /// Killed (with everything it started) when it runs longer.
    pub timeout: Option<Duration>,
    /// Also copy the output to stderr as it comes (`--test_output=streamed`).
    pub stream: bool,
}

/// In an environment value, stands for the exec root as the command sees it (the real one,
/// or the sandbox's): absolute paths for commands that need them, such as tests.
pub const EXEC_ROOT_VAR: &str = "%{exec_root}";

/// `env` with `EXEC_ROOT_VAR` replaced by `exec_root`.
pub fn expand_exec_root(
    env: &BTreeMap<String, String>,
    exec_root: &Path,
) -> BTreeMap<String, String> {
    let root = exec_root.display().to_string();
    env.iter()
        .map(|(k, v)| (k.clone(), v.replace(EXEC_ROOT_VAR, &root)))
        .collect()
}

/// How a command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpawnStatus {
    Exited(i32),
    Signaled(i32),
    /// Killed after running longer than its timeout.
    TimedOut(Duration),
}

impl SpawnStatus {
    pub fn success(&self) -> bool {
        *self == SpawnStatus::Exited(0)
    }
}

impl std::fmt::Display for SpawnStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpawnStatus::Exited(code) => write!(f, "exit {code}"),
            SpawnStatus::Signaled(sig) => write!(f, "killed by signal {sig}"),
            SpawnStatus::TimedOut(t) => write!(f, "timed out after {} s", t.as_secs_f64()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpawnOutcome {
    pub status: SpawnStatus,
    /// stdout and stderr, interleaved as the command wrote them.
    pub output: Vec<u8>,
}

/// Runs commands. Shared by all worker threads of a build.
pub trait Runner: Sync {
    /// Runs `spawn` to completion, or until `cancel` fires (then the result does not matter).
    /// `Err` means the command could not be started.
    fn run(&self, spawn: &Spawn, cancel: &Cancel) -> io::Result<SpawnOutcome>;

    /// Whether this runner fetches the remote-only inputs of the commands it runs here
    /// itself (build without the bytes): a remote runner knows which commands stay remote.
    fn fetches_remote_inputs(&self) -> bool {
        false
    }
}

/// A cancellation signal shared by every running command of one build; it remembers the
/// process groups of running commands so that cancelling kills them all at once.
///
/// With a journal, each group is also appended to a file (`pgid registered-at checksum` per
/// line, the time in clock ticks since boot) that the build (and `forge test`, for its tests)
/// removes when it ends. If forge is killed (SIGKILL leaves it no chance to kill its
/// commands), the next build finds the groups there and kills those still alive before
/// anything runs, so no stray command keeps writing into an output path. A live process
/// with a listed pid is that command if it started no later than the group was registered:
/// the command held the pid from before then until forge reaped it, so a process that
/// reuses the pid started after. (The time is read from the clock, not from
/// `/proc/<pid>/stat`: three system calls and a parse fewer per command.) This replaces
/// `PR_SET_PDEATHSIG`, which needs a `pre_exec` hook — and that would turn every spawn into a
/// full `fork()` of forge instead of `posix_spawn`, costing milliseconds per action.
#[derive(Debug, Default)]
pub struct Cancel {
    cancelled: AtomicBool,
    // The flag is also checked under this lock in `register`, so a group registered
    // concurrently with `cancel` is either seen by `cancel` or sees the flag.
    groups: Mutex<HashSet<i32>>,
    journal_path: Option<PathBuf>,
    /// Created with the first group: a build that runs nothing writes nothing.
    journal: Mutex<Option<std::fs::File>>,
}

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// A `Cancel` journaling its groups at `path`, after killing the groups an earlier,
    /// killed forge left there.
    pub fn with_journal(path: &Path) -> io::Result<Cancel> {
        if kill_stray_groups(path) {
            std::fs::remove_file(path)?;
        }
        Ok(Cancel {
            journal_path: Some(path.to_owned()),
            ..Cancel::default()
        })
    }

    /// The build is over and every command has been waited for: forget the journal.
    pub fn finish(&self) {
        let opened = self
            .journal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let (Some(_), Some(path)) = (opened, &self.journal_path) {
            let _ = std::fs::remove_file(path);
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Sets the flag and SIGKILLs every registered process group.
    pub fn cancel(&self) {
        let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        self.cancelled.store(true, Ordering::SeqCst);
        for &pgid in groups.iter() {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
    }

    /// Notes a running process group. Returns false if already cancelled: the caller must
    /// kill the group itself.
    pub fn register(&self, pgid: i32) -> bool {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        if self.cancelled.load(Ordering::SeqCst) {
            return false;
        }
        groups.insert(pgid);
        drop(groups);
        if let Some(path) = &self.journal_path
            && let Some(now) = ticks_since_boot()
        {
            use std::io::Write;
            let mut journal = self.journal.lock().unwrap_or_else(|e| e.into_inner());
            if journal.is_none() {
                *journal = std::fs::File::create(path).ok();
            }
            if let Some(file) = journal.as_mut() {
                let _ = file.write_all(journal_line(pgid, now).as_bytes());
            }
        }
        true
    }

    /// Must be called before the group leader is reaped, so its pid cannot have been reused
    /// by an unrelated process when `cancel` kills it.
    pub fn unregister(&self, pgid: i32) {
        self.groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&pgid);
    }
}

/// The start time of process `pid` (in clock ticks since boot), which tells it apart from a
/// later process that reuses the pid.
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid pgrp ...`: comm may hold spaces; field 22 is the start time.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

/// Now, in the clock ticks since boot of `/proc/<pid>/stat`'s start time (the same clock, so
/// a process started before now has a start time no later than this).
fn ticks_since_boot() -> Option<u64> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to fill.
    if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) } != 0 {
        return None;
    }
    // SAFETY: sysconf only reads a configuration value.
    let per_second = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok()?;
    let nanos =
        u64::try_from(now.tv_sec).ok()? * 1_000_000_000 + u64::try_from(now.tv_nsec).ok()?;
    Some(nanos / (1_000_000_000 / per_second.max(1)))
}

/// A journal line: `pgid registered-at checksum`, the checksum being the start of the BLAKE3
/// digest of the first two fields. (Lines of older forges hold the start time itself, which
/// is read the same way.)
fn journal_line(pgid: i32, registered: u64) -> String {
    let fields = format!("{pgid} {registered}");
    let sum = crate::core::Digest::of_bytes(fields.as_bytes()).to_hex();
    format!("{fields} {}\n", &sum[..16])
}

/// Kills the process groups listed in a journal left by a forge that did not finish, if
/// their leaders are still the same processes.
/// Returns whether there was a journal.
fn kill_stray_groups(journal: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(journal) else {
        return false;
    };
    // Only whole lines with their checksum: a damaged line names no process to kill.
    for line in text.split_inclusive('\n') {
        let mut fields = line.split(' ');
        let (Some(pgid), Some(start)) = (fields.next(), fields.next()) else {
            continue;
        };
        let (Ok(pgid), Ok(registered)) = (pgid.parse::<i32>(), start.parse::<u64>()) else {
            continue;
        };
        if line != journal_line(pgid, registered) {
            continue;
        }
        if pgid > 1 && start_time(pgid).is_some_and(|start| start <= registered) {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
    }
    true
}

/// Waits for `pid` to exit without reaping it: while the leader is a zombie its pid and
/// process group id cannot be reused, so killing the group afterwards is safe. With a
/// timeout, kills the group when it passes and returns how long that was.
pub(crate) fn wait_for_exit(pid: i32, timeout: Option<Duration>) -> Option<Duration> {
    let id = || Id::Pid(Pid::from_raw(pid));
    let Some(limit) = timeout else {
        while let Err(Errno::EINTR) = waitid(id(), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {}
        return None;
    };
    let deadline = std::time::Instant::now() + limit;
    loop {
        match waitid(
            id(),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT | WaitPidFlag::WNOHANG,
        ) {
            Ok(nix::sys::wait::WaitStatus::StillAlive) | Err(Errno::EINTR) => {}
            _ => return None,
        }
        if std::time::Instant::now() >= deadline {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            while let Err(Errno::EINTR) = waitid(id(), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)
            {
            }
            return Some(limit);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs commands as local processes.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalRunner;

/// How long to wait for the output pipe to reach EOF after the process group was killed; only
/// a process that left the group (setsid) and kept the pipe open can make us wait this long.
const PIPE_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

impl Runner for LocalRunner {
    fn run(&self, spawn: &Spawn, cancel: &Cancel) -> io::Result<SpawnOutcome> {
        let Some(program) = spawn.argv.first() else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty argv"));
        };
        // A relative program path with a slash (`pkg/tool.sh`) is an exec path: resolve it
        // against the cwd explicitly instead of relying on how spawning orders chdir and exec.
        let resolved: PathBuf = if program.contains('/') && !program.starts_with('/') {
            spawn.cwd.join(program)
        } else {
            PathBuf::from(program)
        };
        let (reader, writer) = io::pipe()?;
        let writer2 = writer.try_clone()?;
        let mut cmd = Command::new(&resolved);
        cmd.arg0(program)
            .args(&spawn.argv[1..])
            .env_clear()
            .envs(expand_exec_root(spawn.env, spawn.cwd))
            .current_dir(match spawn.workdir {
                Some(dir) => spawn.cwd.join(dir),
                None => spawn.cwd.to_path_buf(),
            })
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(writer2)
            .process_group(0);
        // No pre_exec hook here: it would make the standard library fork forge instead of
        // using posix_spawn (see `Cancel` for how stray commands are killed instead).
        let mut child = cmd.spawn()?;
        // `cmd` owns our copies of the pipe's write end; they must be closed for EOF.
        drop(cmd);
        let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
        let (timed_out, output) = supervise(pid, reader, cancel, spawn);
        let status = status_of(child.wait()?, timed_out);
        Ok(SpawnOutcome { status, output })
    }
}

/// Watches a started command, the leader of its own process group: collects its output,
/// lets `cancel` reach its group, waits for it to exit (killing it at `timeout`), then kills
/// whatever it left running in its group — that would outlive the action and could hold the
/// output pipe open; Bazel kills these too. Returns how long it ran if it timed out, and its
/// output. The caller reaps it.
///
/// The output and the exit are waited for together on this thread (`poll` on the pipe and a
/// pidfd of the command): a thread per command to read its output cost a clone, a stack
/// mapping and a dozen system calls per action.
pub(crate) fn supervise(
    pid: i32,
    reader: io::PipeReader,
    cancel: &Cancel,
    spawn: &Spawn,
) -> (Option<Duration>, Vec<u8>) {
    let Some(pidfd) = pidfd_open(pid) else {
        return supervise_with_thread(pid, reader, cancel, spawn);
    };
    if !cancel.register(pid) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let mut output = Output {
        reader,
        buf: Vec::new(),
        open: true,
        stream: spawn.stream,
    };
    let deadline = spawn.timeout.map(|t| (Instant::now() + t, t));
    let mut timed_out = None;
    loop {
        let wait = match (timed_out, deadline) {
            (None, Some((at, limit))) => {
                let left = at.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                    timed_out = Some(limit);
                    None
                } else {
                    Some(left)
                }
            }
            _ => None,
        };
        match output.poll_with(Some(pidfd.as_raw_fd()), wait) {
            Ok(Polled { exited: true, .. }) => break,
            Ok(_) => {}
            Err(_) => {
                // Cannot poll (out of memory?): wait for the exit without the output.
                let left = match (timed_out, deadline) {
                    (None, Some((at, _))) => Some(at.saturating_duration_since(Instant::now())),
                    _ => None,
                };
                timed_out = timed_out.or(wait_for_exit(pid, left));
                break;
            }
        }
    }
    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    cancel.unregister(pid);
    // The group is dead; only a process that left it can keep the pipe open this long.
    let drain_until = Instant::now() + PIPE_DRAIN_TIMEOUT;
    while output.open {
        let left = drain_until.saturating_duration_since(Instant::now());
        if left.is_zero() || output.poll_with(None, Some(left)).is_err() {
            break;
        }
    }
    (timed_out, output.buf)
}

/// A command's output pipe, read as it becomes readable.
struct Output {
    reader: io::PipeReader,
    buf: Vec<u8>,
    /// Not at EOF yet.
    open: bool,
    /// Also copy what comes to stderr.
    stream: bool,
}

struct Polled {
    /// The process of the pidfd has exited.
    exited: bool,
}

impl Output {
    /// Waits up to `wait` (forever if `None`) for output or for the exit of the process of
    /// `pidfd`, and reads what output there is.
    fn poll_with(&mut self, pidfd: Option<RawFd>, wait: Option<Duration>) -> io::Result<Polled> {
        let mut fds = [
            libc::pollfd {
                fd: if self.open {
                    self.reader.as_raw_fd()
                } else {
                    -1
                },
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: pidfd.unwrap_or(-1),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // Rounded up: a wait cut to 0 ms would spin until the deadline.
        let millis = wait.map_or(-1, |w| {
            i32::try_from(w.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX)
        });
        // SAFETY: `fds` is a valid array of two pollfds (a negative fd is ignored).
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), 2, millis) };
        if ready < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::Interrupted => Ok(Polled { exited: false }),
                _ => Err(e),
            };
        }
        if fds[0].revents != 0 {
            let mut chunk = [0u8; 16384];
            match self.reader.read(&mut chunk) {
                Ok(0) => self.open = false,
                Ok(n) => {
                    if self.stream {
                        use std::io::Write;
                        let _ = io::stderr().write_all(&chunk[..n]);
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => self.open = false,
            }
        }
        Ok(Polled {
            exited: fds[1].revents != 0,
        })
    }
}

/// A pidfd of child `pid` (not reaped yet, so the pid is still its own), if the kernel has
/// them (Linux 5.3).
fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = RawFd::try_from(fd).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: the descriptor is new and ours alone.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `supervise` without pidfds: a thread reads the output while this one waits.
fn supervise_with_thread(
    pid: i32,
    mut reader: io::PipeReader,
    cancel: &Cancel,
    spawn: &Spawn,
) -> (Option<Duration>, Vec<u8>) {
    let (tx, rx) = mpsc::channel();
    let stream = spawn.stream;
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if stream {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = reader.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                use std::io::Write;
                let _ = io::stderr().write_all(&chunk[..n]);
                buf.extend_from_slice(&chunk[..n]);
            }
        } else {
            let _ = reader.read_to_end(&mut buf);
        }
        let _ = tx.send(buf);
    });
    let timeout = spawn.timeout;
    if !cancel.register(pid) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let timed_out = wait_for_exit(pid, timeout);
    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    cancel.unregister(pid);
    let output = rx.recv_timeout(PIPE_DRAIN_TIMEOUT).unwrap_or_default();
    (timed_out, output)
}

/// How a reaped command ended.
pub(crate) fn status_of(
    status: std::process::ExitStatus,
    timed_out: Option<Duration>,
) -> SpawnStatus {
    match (timed_out, status.code(), status.signal()) {
        (Some(t), _, _) => SpawnStatus::TimedOut(t),
        (None, Some(code), _) => SpawnStatus::Exited(code),
        (None, None, Some(sig)) => SpawnStatus::Signaled(sig),
        (None, None, None) => SpawnStatus::Exited(-1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Label;
    use std::time::Instant;

    fn action() -> Action {
        Action {
            owner: Label {
                repo: String::new(),
                package: "pkg".into(),
                name: "x".into(),
            },
            mnemonic: "Genrule".into(),
            progress_message: "Executing genrule //pkg:x".into(),
            kind: crate::core::ActionKind::Run { argv: vec![] },
            inputs: Default::default(),
            outputs: vec![],
            env: BTreeMap::new(),
            requirements: vec![],
            directory_outputs: vec![],
            scratch_dirs: vec![],
            discovery: None,
        }
    }

    fn sh(
        script: &str,
        env: &BTreeMap<String, String>,
        cancel: &Cancel,
    ) -> io::Result<SpawnOutcome> {
        let a = action();
        let argv = vec!["/bin/sh".to_owned(), "-c".to_owned(), script.to_owned()];
        let cwd = std::env::temp_dir();
        LocalRunner.run(
            &Spawn {
                action: &a,
                argv: &argv,
                env,
                cwd: &cwd,
                workdir: None,
                stream: false,
                timeout: None,
            },
            cancel,
        )
    }

    #[test]
    fn captures_combined_output_status_and_exact_env() -> io::Result<()> {
        let mut env = BTreeMap::new();
        env.insert("FOO".to_owned(), "bar".to_owned());
        let out = sh(
            "echo out; echo err >&2; env | sort; exit 7",
            &env,
            &Cancel::new(),
        )?;
        assert_eq!(out.status, SpawnStatus::Exited(7));
        assert_eq!(out.status.to_string(), "exit 7");
        let text = String::from_utf8_lossy(&out.output);
        assert!(text.starts_with("out\nerr\n"), "{text}");
        // Only what we passed (plus what sh itself sets: PWD, SHLVL, `_`).
        for line in text.lines().skip(2) {
            let name = line.split('=').next().unwrap_or("");
            assert!(
                ["FOO", "PWD", "SHLVL", "_", "OLDPWD"].contains(&name),
                "unexpected variable {line}"
            );
        }
        assert!(text.contains("FOO=bar"));

        let killed = sh("kill -9 $$", &env, &Cancel::new())?;
        assert_eq!(killed.status, SpawnStatus::Signaled(9));
        assert_eq!(killed.status.to_string(), "killed by signal 9");

        let a = action();
        let argv = vec!["/nonexistent/program".to_owned()];
        let cwd = std::env::temp_dir();
        let spawn = Spawn {
            action: &a,
            argv: &argv,
            env: &env,
            cwd: &cwd,
            workdir: None,
            stream: false,
            timeout: None,
        };
        assert!(LocalRunner.run(&spawn, &Cancel::new()).is_err());
        Ok(())
    }

    /// Runs `script` on another thread; its outcome, or an error if it has not ended within
    /// a minute (a guard against a runner that waits for leftover processes, never reached
    /// by one that works).
    fn sh_guarded(script: &str, cancel: &std::sync::Arc<Cancel>) -> io::Result<SpawnOutcome> {
        let (tx, rx) = std::sync::mpsc::channel();
        let (text, cancel) = (script.to_owned(), cancel.clone());
        std::thread::spawn(move || {
            let _ = tx.send(sh(&text, &BTreeMap::new(), &cancel));
        });
        rx.recv_timeout(Duration::from_secs(60))
            .map_err(|_| io::Error::other(format!("`{script}` did not end")))?
    }

    #[test]
    fn cancel_kills_the_whole_process_group() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let mark = dir.path().join("background");
        let cancel = std::sync::Arc::new(Cancel::new());
        // A child of the shell that also sleeps: killing only the shell would leave it
        // holding the output pipe, and the runner would wait for it.
        let script = format!(
            "sleep 100 & echo $! > {}.tmp && mv {0}.tmp {0}; sleep 100; echo never",
            mark.display()
        );
        let (tx, rx) = std::sync::mpsc::channel();
        let running = cancel.clone();
        std::thread::spawn(move || {
            let _ = tx.send(sh_guarded(&script, &running));
        });
        // Cancel once the background sleep exists.
        let deadline = Instant::now() + Duration::from_secs(60);
        let background: i32 = loop {
            if let Some(pid) = std::fs::read_to_string(&mark)
                .ok()
                .and_then(|t| t.trim().parse().ok())
            {
                break pid;
            }
            assert!(Instant::now() < deadline, "the script never started");
            std::thread::sleep(Duration::from_millis(5));
        };
        cancel.cancel();
        let outcome = rx
            .recv()
            .map_err(|_| io::Error::other("runner thread panicked"))??;
        assert_eq!(outcome.status, SpawnStatus::Signaled(9));
        assert!(!String::from_utf8_lossy(&outcome.output).contains("never"));
        // The background sleep died with its group: it is gone, or dying (it closed the pipe
        // on its way out, before the kernel marks it a zombie).
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{background}/stat"));
            let stat = stat.unwrap_or_default();
            let state = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .next();
            if matches!(state, None | Some("Z" | "X")) {
                break;
            }
            assert!(Instant::now() < deadline, "{background} is still {state:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
        // Already cancelled: a new command is killed at once.
        let again = sh_guarded("sleep 100", &cancel)?;
        assert_eq!(again.status, SpawnStatus::Signaled(9));
        Ok(())
    }

    #[test]
    fn leftover_background_processes_do_not_hang_the_action() -> io::Result<()> {
        let out = sh_guarded("sleep 100 & echo done", &std::sync::Arc::new(Cancel::new()))?;
        assert_eq!(out.status, SpawnStatus::Exited(0));
        assert_eq!(out.output, b"done\n");
        Ok(())
    }

    #[test]
    fn a_journal_kills_a_registered_group_but_not_a_later_holder_of_its_pid() -> io::Result<()> {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir()?;
        let journal = dir.path().join("running");
        // A line written before the process started names an earlier holder of its pid
        // (the clock ticks 100 times a second: 50 ms puts the start on a later tick).
        let before = ticks_since_boot().ok_or(io::ErrorKind::Unsupported)?;
        std::thread::sleep(Duration::from_millis(50));
        let mut child = Command::new("sleep").arg("100").process_group(0).spawn()?;
        let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
        std::fs::write(&journal, journal_line(pid, before))?;
        assert!(kill_stray_groups(&journal));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            child.try_wait()?,
            None,
            "a later holder of the pid was killed"
        );
        // Registered by a build that is then killed (its journal stays): the next build's
        // look at the journal kills the group.
        std::fs::remove_file(&journal)?;
        let cancel = Cancel::with_journal(&journal)?;
        assert!(cancel.register(pid));
        drop(cancel);
        assert!(kill_stray_groups(&journal));
        let status = child.wait()?;
        assert_eq!(status.signal(), Some(9));
        Ok(())
    }

    #[test]
    fn a_timeout_kills_the_command_and_says_so() -> io::Result<()> {
        let a = action();
        let argv = vec![
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            "echo before; sleep 100; echo after".to_owned(),
        ];
        let cwd = std::env::temp_dir();
        let env = BTreeMap::new();
        let started = Instant::now();
        let out = LocalRunner.run(
            &Spawn {
                action: &a,
                argv: &argv,
                env: &env,
                cwd: &cwd,
                workdir: None,
                stream: false,
                timeout: Some(Duration::from_millis(300)),
            },
            &Cancel::new(),
        )?;
        assert_eq!(
            out.status,
            SpawnStatus::TimedOut(Duration::from_millis(300))
        );
        assert_eq!(out.output, b"before\n");
        assert!(started.elapsed() < Duration::from_secs(60));
        Ok(())
    }

    #[test]
    fn a_journal_kills_only_the_groups_of_its_intact_lines() -> io::Result<()> {
        use std::os::unix::process::CommandExt;
        let spawn = || Command::new("sleep").arg("100").process_group(0).spawn();
        let (mut kept, mut killed) = (spawn()?, spawn()?);
        let pid = |c: &std::process::Child| i32::try_from(c.id()).unwrap_or(i32::MAX);
        let start = |c: &std::process::Child| start_time(pid(c)).ok_or(io::ErrorKind::NotFound);
        let dir = tempfile::tempdir()?;
        let journal = dir.path().join("running");
        // The first line's checksum is damaged (one byte flipped): it names nothing to kill.
        let mut damaged = journal_line(pid(&kept), start(&kept)?).into_bytes();
        let last = damaged.len() - 2;
        damaged[last] ^= 1;
        damaged.extend(journal_line(pid(&killed), start(&killed)?).into_bytes());
        std::fs::write(&journal, damaged)?;
        assert!(kill_stray_groups(&journal));
        let status = killed.wait()?;
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
        assert_eq!(kept.try_wait()?, None, "a damaged line killed a process");
        kept.kill()?;
        kept.wait()?;
        Ok(())
    }
}

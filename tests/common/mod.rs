//! Runs the real `forge` binary on a private copy of a fixture workspace.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A fixture workspace copied into a temporary directory, with its own output base.
pub struct Workspace {
    dir: tempfile::TempDir,
}

/// What one forge run printed and how it exited.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout, then stderr, for snapshots that show both.
    pub fn both(&self) -> String {
        format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Workspace {
    /// Copies `tests/fixtures/<name>` (a workspace) into a fresh temporary directory.
    pub fn fixture(name: &str) -> Workspace {
        Workspace::copy_of(&Path::new("tests/fixtures").join(name))
    }

    /// A copy of an example workspace under `examples/`.
    pub fn example(name: &str) -> Workspace {
        Workspace::copy_of(&Path::new("examples").join(name))
    }

    fn copy_of(relative: &Path) -> Workspace {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
        let dir = tempfile::tempdir().expect("temp dir");
        copy_tree(&src, &dir.path().join("ws"));
        Workspace { dir }
    }

    /// An empty directory that is not inside any workspace.
    pub fn empty() -> Workspace {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("ws")).unwrap();
        Workspace { dir }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("ws")
    }

    pub fn write(&self, path: &str, content: &str) {
        let p = self.root().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    /// Runs forge from the workspace root.
    pub fn forge(&self, args: &[&str]) -> Run {
        self.forge_in("", args)
    }

    /// Runs forge from a subdirectory of the workspace.
    pub fn forge_in(&self, subdir: &str, args: &[&str]) -> Run {
        self.forge_with(subdir, args, &[])
    }

    /// Where this workspace's output bases live (`XDG_CACHE_HOME` of its forge runs).
    pub fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// The home directory of this workspace's forge runs (`~/.bazelrc` is read there).
    pub fn home_dir(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// Where this workspace's forge runs look for the system rc files instead of `/etc`,
    /// so no test reads the machine's own `/etc/bazel.bazelrc`.
    pub fn system_rc_dir(&self) -> PathBuf {
        self.dir.path().join("etc")
    }

    /// A forge command ready to run from the workspace root, for tests that need the
    /// process itself (to signal it, or to run two at once).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_forge"));
        cmd.current_dir(self.root())
            .env("XDG_CACHE_HOME", self.cache_dir())
            .env("HOME", self.home_dir())
            .env("FORGE_SYSTEM_RC_DIR", self.system_rc_dir())
            .env_remove("RUST_BACKTRACE")
            .args(args);
        cmd
    }

    pub fn forge_with(&self, subdir: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = self.command(args);
        cmd.current_dir(self.root().join(subdir));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("forge runs");
        let redact = |s: &[u8]| {
            String::from_utf8_lossy(s)
                .replace(&self.dir.path().display().to_string(), "[TMP]")
                .replace(env!("CARGO_PKG_VERSION"), "[VERSION]")
        };
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: redact(&out.stdout),
            stderr: redact(&out.stderr),
        }
    }
}

fn copy_tree(src: &Path, dst: &Path) {
    for entry in walkdir::WalkDir::new(src) {
        let entry = entry.unwrap();
        let target = dst.join(entry.path().strip_prefix(src).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The parent of process `pid`, from /proc.
pub fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`; comm may contain spaces, so split after the last ')'.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Whether `pid` is a (grand)child of `ancestor`.
pub fn descends_from(mut pid: u32, ancestor: u32) -> bool {
    while let Some(parent) = parent_of(pid) {
        if parent == ancestor {
            return true;
        }
        if parent <= 1 {
            return false;
        }
        pid = parent;
    }
    false
}

/// Pids of processes whose command line (arguments joined by spaces) is `wanted`, or starts
/// with it when it ends in `*`.
pub fn processes_with(wanted: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let text = text.trim_end();
            let matches = match wanted.strip_suffix('*') {
                Some(prefix) => text.starts_with(prefix),
                None => text == wanted,
            };
            if matches {
                pids.push(pid);
            }
        }
    }
    pids
}

/// The default configuration's directory name, as forge names it (`core::layout::config_name`
/// without `-c` or `--cpu`): `<cpu>-fastbuild`, where the CPU is Bazel's name for it (`k8` for
/// x86_64).
pub fn config_dir() -> String {
    let cpu = match std::env::consts::ARCH {
        "x86_64" => "k8",
        other => other,
    };
    format!("{cpu}-fastbuild")
}

/// `forge-out/<config>/bin`, the exec path of rules' outputs.
pub fn bin_dir() -> String {
    format!("forge-out/{}/bin", config_dir())
}

/// `forge-out/<config>/testlogs`, the exec path of test results.
pub fn testlogs_dir() -> String {
    format!("forge-out/{}/testlogs", config_dir())
}

/// The unprivileged user tests run forge as, besides the current one.
pub const NOBODY: u32 = 65534;

/// The largest resident size, in bytes, of the children waited for so far.
pub fn children_peak() -> i64 {
    let mut usage = std::mem::MaybeUninit::<nix::libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        assert_eq!(
            nix::libc::getrusage(nix::libc::RUSAGE_CHILDREN, usage.as_mut_ptr()),
            0
        );
        usage.assume_init()
    };
    usage.ru_maxrss * 1024
}

pub fn is_root() -> bool {
    // SAFETY: a plain getter.
    unsafe { nix::libc::geteuid() == 0 }
}

/// Answers one HTTP/1.0 request on `stream` from `files` (path → body), or with 404: the
/// archive servers the fetch tests start on 127.0.0.1.
pub fn answer_from(
    stream: &mut std::net::TcpStream,
    files: &std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>,
) {
    use std::io::{Read, Write};
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf).unwrap_or(0);
    let request = String::from_utf8_lossy(&buf[..n]);
    let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let body = files.lock().unwrap().get(&path).cloned();
    let _ = match body {
        Some(body) => stream
            .write_all(
                format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes(),
            )
            .and_then(|()| stream.write_all(&body)),
        None => stream.write_all(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
    };
}

/// Runs `start` on `cmd` until it starts: a test's private copy of forge is "busy" (ETXTBSY)
/// while another test's process, forked while the copy was open for writing, has not exec'd.
pub fn retrying_busy<T>(
    cmd: &mut Command,
    start: impl Fn(&mut Command) -> std::io::Result<T>,
) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match start(cmd) {
            Err(e)
                if e.raw_os_error() == Some(nix::libc::ETXTBSY)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            other => break other.expect("forge runs"),
        }
    }
}

/// A copy of forge in the workspace's temporary directory, which `hand_over` can give to
/// another user (the build's own binary may sit where that user cannot reach).
pub fn private_forge(ws: &Workspace) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let forge = ws.root().parent().unwrap().join("forge");
    std::fs::copy(env!("CARGO_BIN_EXE_forge"), &forge).unwrap();
    std::fs::set_permissions(&forge, std::fs::Permissions::from_mode(0o755)).unwrap();
    forge
}

/// Gives the workspace's whole temporary directory (workspace, cache, forge's copy, anything
/// written there so far) to user `uid`, for running forge as that user.
pub fn hand_over(ws: &Workspace, uid: u32) {
    use std::os::unix::fs::PermissionsExt;
    let top = ws.root().parent().unwrap().to_path_buf();
    std::fs::set_permissions(&top, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(ws.cache_dir()).unwrap();
    for entry in walkdir::WalkDir::new(&top) {
        let entry = entry.unwrap();
        std::os::unix::fs::lchown(entry.path(), Some(uid), Some(uid)).unwrap();
    }
}

/// A port on 127.0.0.1 no one listens on now, for a server a test starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `(executed, from cache, up to date)` from the summary line.
pub fn counts(run: &Run) -> (usize, usize, usize) {
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains(" executed, "))
        .unwrap_or_else(|| panic!("no summary line in:\n{}", run.stderr));
    let numbers: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    (numbers[0], numbers[1], numbers[2])
}

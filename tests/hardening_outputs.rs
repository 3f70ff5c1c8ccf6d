//! Outputs that are not plain files, and what forge leaves behind. Each target of the
//! `hardening_outputs` fixture makes an output that is a FIFO, or a symlink (chain) leading
//! out of the exec root, or one that stays inside it; the tests check forge refuses the
//! first kinds at once, naming the output and where it leads, and copies the last — in the
//! sandbox and with `--spawn_strategy=local`, as the user running the tests and, when that is
//! root, as the unprivileged user `nobody`. Then: no sandbox root and no namespace holder is
//! left after a build, whichever way it ends, and `--sandbox_debug` keeps its sandboxes until
//! the next command in the same workspace.

mod common;

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{NOBODY, Run, Workspace, is_root};

/// Only a guard against a forge that hangs (what a FIFO output used to do); never reached
/// by a forge that works.
const HANG_GUARD: Duration = Duration::from_secs(180);

/// The fixture, run by the current user or by `nobody`, with a secret file outside it.
struct Fixture {
    ws: Workspace,
    user: Option<u32>,
    /// A copy of forge that `user` can execute.
    forge: PathBuf,
    home: PathBuf,
    secret: PathBuf,
}

impl Fixture {
    fn new(as_nobody: bool) -> Fixture {
        let ws = Workspace::fixture("hardening_outputs");
        let top = ws.root().parent().unwrap().to_path_buf();
        let forge = common::private_forge(&ws);
        let home = top.join("home");
        fs::create_dir_all(&home).unwrap();
        let secret = home.join("secret");
        fs::write(&secret, "the secret\n").unwrap();
        let user = as_nobody.then_some(NOBODY);
        if let Some(uid) = user {
            common::hand_over(&ws, uid);
        }
        Fixture {
            ws,
            user,
            forge,
            home,
            secret,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.forge);
        cmd.current_dir(self.ws.root())
            .env("XDG_CACHE_HOME", self.ws.cache_dir())
            .env("HOME", &self.home)
            .env_remove("RUST_BACKTRACE")
            .args(args)
            .stdin(Stdio::null());
        if let Some(uid) = self.user {
            cmd.uid(uid).gid(uid);
        }
        cmd
    }

    /// Runs forge to its end (killing it, and failing, if it hangs).
    fn forge(&self, args: &[&str]) -> Run {
        let mut cmd = self.command(args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = common::retrying_busy(&mut cmd, Command::spawn);
        finish(child, &format!("forge {}", args.join(" ")))
    }

    /// `forge <verb>` of `target` with the paths the fixture's commands use.
    fn run(&self, verb: &str, target: &str, extra: &[&str]) -> Run {
        let secret = format!("--action_env=SECRET={}", self.secret.display());
        let dir = format!("--action_env=SECRET_DIR={}", self.home.display());
        let ws = format!("--action_env=WS={}", self.ws.root().display());
        let mut args = vec![verb, secret.as_str(), dir.as_str(), ws.as_str()];
        args.extend_from_slice(extra);
        args.push(target);
        self.forge(&args)
    }

    fn build(&self, target: &str, extra: &[&str]) -> Run {
        self.run("build", target, extra)
    }

    fn output(&self, name: &str) -> PathBuf {
        self.ws.root().join("forge-bin/pkg").join(name)
    }

    fn who(&self) -> &'static str {
        if self.user.is_some() {
            "nobody"
        } else {
            "the test user"
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Sandboxes a test kept (--sandbox_debug) are not left in /dev/shm.
        if let Some(base) = output_base(self) {
            let _ = fs::remove_dir_all(forge::exec::sandbox::roots_dir_of(&base, uid_of(self)));
        }
    }
}

/// Waits for `child`, collecting its output; kills it if it hangs.
fn finish(mut child: Child, what: &str) -> Run {
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > HANG_GUARD {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// The strategies each check runs with.
const STRATEGIES: [&[&str]; 2] = [&[], &["--spawn_strategy=local"]];

/// Runs `check` as the current user and, when that is root, as `nobody` too; each with the
/// sandbox and with the local strategy.
fn everywhere(check: impl Fn(&Fixture, &[&str])) {
    let mut users = vec![false];
    if is_root() {
        users.push(true);
    }
    for as_nobody in users {
        let fx = Fixture::new(as_nobody);
        for strategy in STRATEGIES {
            check(&fx, strategy);
        }
    }
}

fn fails_with(fx: &Fixture, strategy: &[&str], run: &Run, expected: &[&str]) {
    let how = format!("as {}, with {strategy:?}", fx.who());
    assert_eq!(
        run.code, 1,
        "expected a build failure {how}:\n{}",
        run.stderr
    );
    for e in expected {
        assert!(
            run.stderr.contains(e),
            "missing «{e}» {how} in:\n{}",
            run.stderr
        );
    }
}

fn succeeds(fx: &Fixture, strategy: &[&str], run: &Run) {
    assert_eq!(
        run.code,
        0,
        "expected success as {}, with {strategy:?}:\n{}",
        fx.who(),
        run.stderr
    );
}

/// The file at `path` is a plain file (not a link) holding `content`.
fn plain_file(path: &Path, content: &str) {
    let meta = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(meta.is_file(), "{} is not a plain file", path.display());
    assert_eq!(
        fs::read_to_string(path).unwrap(),
        content,
        "{}",
        path.display()
    );
}

/// Nothing of the secret reached the output tree.
fn no_secret_in(fx: &Fixture, name: &str) {
    let path = fx.output(name);
    for entry in walkdir::WalkDir::new(&path).into_iter().flatten() {
        if let Ok(text) = fs::read_to_string(entry.path()) {
            assert!(
                !text.contains("the secret"),
                "{} holds the secret",
                entry.path().display()
            );
        }
    }
}

#[test]
fn a_fifo_as_a_declared_output_is_an_error_at_once() {
    let out = pkg_out();
    everywhere(|fx, strategy| {
        let run = fx.build("//pkg:fifo", strategy);
        fails_with(
            fx,
            strategy,
            &run,
            &[&format!(
                "declared output '{out}/fifo.out' is a FIFO, not a regular file"
            )],
        );
    });
}

#[test]
fn a_fifo_inside_a_declared_directory_is_an_error_at_once() {
    let out = pkg_out();
    everywhere(|fx, strategy| {
        let run = fx.build("//pkg:fifo_in_dir", strategy);
        fails_with(
            fx,
            strategy,
            &run,
            &[&format!(
                "'pipe' in declared directory output '{out}/fifo_in_dir_dir' is a FIFO, not a regular file"
            )],
        );
    });
}

#[test]
fn a_symlink_chain_out_of_the_exec_root_is_refused_naming_each_hop() {
    let out = pkg_out();
    everywhere(|fx, strategy| {
        let run = fx.build("//pkg:chain", strategy);
        fails_with(
            fx,
            strategy,
            &run,
            &[&format!(
                "declared output '{out}/chain.out' is a symlink to 'hop' -> '{}', outside the exec root",
                fx.secret.display()
            )],
        );
        no_secret_in(fx, "chain.out");
    });
}

#[test]
fn a_hop_through_a_directory_symlink_is_refused() {
    let out = pkg_out();
    everywhere(|fx, strategy| {
        let run = fx.build("//pkg:dir_hop", strategy);
        fails_with(
            fx,
            strategy,
            &run,
            &[&format!(
                "declared output '{out}/dir_hop.out' is a symlink to 'd/secret' -> '{}', outside the exec root",
                fx.home.display()
            )],
        );
        no_secret_in(fx, "dir_hop.out");
    });
}

#[test]
fn two_hops_to_a_workspace_path_from_mountinfo_are_refused() {
    let out = pkg_out();
    everywhere(|fx, strategy| {
        let run = fx.build("//pkg:mountinfo", strategy);
        fails_with(
            fx,
            strategy,
            &run,
            &[
                &format!("declared output '{out}/mountinfo.out' is a symlink to 'hop' -> '"),
                "/pkg/undeclared.txt', outside the exec root",
            ],
        );
        let out = fx.output("mountinfo.out");
        assert!(
            fs::read_to_string(&out).map_or(true, |t| !t.contains("not declared")),
            "{} holds the undeclared file",
            out.display()
        );
    });
}

#[test]
fn symlinks_out_of_the_exec_root_inside_a_declared_directory_are_refused() {
    let out = pkg_out();
    everywhere(|fx, strategy| {
        let run = fx.build("//pkg:dir_escape", strategy);
        fails_with(
            fx,
            strategy,
            &run,
            &[&format!(
                "'leak.txt' in declared directory output '{out}/dir_escape_dir' is a symlink to '{}', outside the exec root",
                fx.secret.display()
            )],
        );
        no_secret_in(fx, "dir_escape_dir");
        let run = fx.build("//pkg:dir_escape_hop", strategy);
        fails_with(
            fx,
            strategy,
            &run,
            &[&format!(
                "'leak.txt' in declared directory output '{out}/dir_escape_hop_dir' is a symlink to '../hop' -> '{}', outside the exec root",
                fx.secret.display()
            )],
        );
        no_secret_in(fx, "dir_escape_hop_dir");
    });
}

#[test]
fn symlinks_to_outputs_and_inputs_inside_the_exec_root_are_copied() {
    everywhere(|fx, strategy| {
        succeeds(fx, strategy, &fx.build("//pkg:good_links", strategy));
        plain_file(&fx.output("real.out"), "real\n");
        plain_file(&fx.output("to_output.out"), "real\n");
        plain_file(&fx.output("to_input.out"), "input\n");
        plain_file(&fx.output("via.out"), "input\n");
        plain_file(&fx.output("absolute.out"), "real\n");
        succeeds(fx, strategy, &fx.build("//pkg:dir_good_link", strategy));
        let dir = fx.output("dir_good_link_dir");
        plain_file(&dir.join("one.txt"), "one\n");
        plain_file(&dir.join("sub/link.txt"), "one\n");
        // The source input is untouched (still writable, still the same).
        let input = fx.ws.root().join("pkg/input.txt");
        assert_eq!(fs::read_to_string(&input).unwrap(), "input\n");
        assert!(fs::metadata(&input).unwrap().permissions().mode() & 0o200 != 0);
    });
}

// What is left after a build.

fn uid_of(fx: &Fixture) -> u32 {
    // SAFETY: a plain getter.
    fx.user.unwrap_or_else(|| unsafe { nix::libc::geteuid() })
}

/// The fixture's output base (the one directory with a lock under its cache).
fn output_base(fx: &Fixture) -> Option<PathBuf> {
    fs::read_dir(fx.ws.cache_dir().join("forge"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("lock").exists())
}

/// Where forge puts this workspace's sandbox roots.
fn roots_dir(fx: &Fixture) -> PathBuf {
    let base = output_base(fx).expect("an output base");
    forge::exec::sandbox::roots_dir_of(&base, uid_of(fx))
}

/// The names in this workspace's roots directory.
fn roots_left(fx: &Fixture) -> Vec<String> {
    match fs::read_dir(roots_dir(fx)) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The process holding forge `pid`'s namespaces: a `cat` it started.
fn holder_of(pid: u32) -> Option<u32> {
    common::processes_with("cat")
        .into_iter()
        .find(|p| common::parent_of(*p) == Some(pid))
}

fn wait_until(what: &str, child: &mut Child, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("forge ended ({status}) before {what}");
        }
        assert!(
            started.elapsed() < HANG_GUARD,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// After forge ended: its holder is gone (forge reaped it) and so are its sandboxes.
fn nothing_left(fx: &Fixture, holder: Option<u32>, how: &str) {
    if let Some(holder) = holder {
        assert!(
            !Path::new(&format!("/proc/{holder}")).exists(),
            "the namespace holder {holder} outlived forge ({how}, as {})",
            fx.who()
        );
    }
    let left = roots_left(fx);
    assert!(
        left.is_empty(),
        "sandbox roots left in {} ({how}, as {}): {left:?}",
        roots_dir(fx).display(),
        fx.who()
    );
}

#[test]
fn a_failing_build_leaves_no_sandbox_and_no_holder() {
    let mut users = vec![false];
    if is_root() {
        users.push(true);
    }
    for as_nobody in users {
        let fx = Fixture::new(as_nobody);
        for (verb, target) in [
            ("build", "//pkg:gated_failure"),
            ("test", "//pkg:test_needing_gated_failure"),
        ] {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            let port = format!(
                "--action_env=PORT={}",
                listener.local_addr().unwrap().port()
            );
            let mut cmd = fx.command(&[verb, &port, target]);
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            let mut child = common::retrying_busy(&mut cmd, Command::spawn);
            let mut conn = None;
            wait_until("the action to connect", &mut child, || {
                conn = listener.accept().ok().map(|(c, _)| c);
                conn.is_some()
            });
            // The action runs in its sandbox now.
            let holder = holder_of(child.id());
            assert!(holder.is_some(), "no namespace holder while a sandbox runs");
            assert!(
                !roots_left(&fx).is_empty(),
                "no sandbox root while one runs"
            );
            let mut conn = conn.unwrap();
            conn.set_nonblocking(false).unwrap();
            std::io::Write::write_all(&mut conn, b"x").unwrap();
            let run = finish(child, verb);
            assert_eq!(run.code, 1, "{}", run.stderr);
            assert!(run.stderr.contains("failing on purpose"), "{}", run.stderr);
            nothing_left(&fx, holder, &format!("after a failing `forge {verb}`"));
        }
    }
}

#[test]
fn an_interrupted_build_leaves_no_sandbox_and_no_holder() {
    let fx = Fixture::new(false);
    for (verb, target) in [("build", "//pkg:slow"), ("test", "//pkg:test_needing_slow")] {
        let mut cmd = fx.command(&[verb, target]);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = common::retrying_busy(&mut cmd, Command::spawn);
        let pid = child.id();
        wait_until("the action to start", &mut child, || {
            common::processes_with("sleep 16180")
                .into_iter()
                .any(|p| common::descends_from(p, pid))
        });
        let holder = holder_of(pid);
        assert!(holder.is_some(), "no namespace holder while a sandbox runs");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGINT,
        )
        .unwrap();
        let run = finish(child, verb);
        assert_eq!(run.code, 8, "{}", run.stderr);
        nothing_left(&fx, holder, &format!("after an interrupted `forge {verb}`"));
    }
}

#[test]
fn a_build_that_errors_early_leaves_no_sandbox() {
    let fx = Fixture::new(false);
    let missing = "--sandbox_add_mount_pair=/nonexistent/forge-hardening-outputs";
    for (verb, target) in [("build", "//pkg:plain"), ("test", "//pkg:ok_test")] {
        let run = fx.run(verb, target, &[missing]);
        assert_ne!(run.code, 0, "{}", run.stderr);
        nothing_left(
            &fx,
            None,
            &format!("after `forge {verb}` with a missing mount"),
        );
    }
}

/// The sandbox `--sandbox_debug` says it kept.
fn kept_sandbox(run: &Run) -> PathBuf {
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("(--sandbox_debug)"))
        .unwrap_or_else(|| panic!("{}", run.stderr));
    let path = line.split(" kept at ").nth(1).unwrap();
    PathBuf::from(path.split(' ').next().unwrap())
}

#[test]
fn sandbox_debug_keeps_the_sandbox_until_the_next_command_in_that_workspace() {
    let a = Fixture::new(false);
    let b = Fixture::new(false);
    let run = a.build("//pkg:plain", &["--sandbox_debug"]);
    succeeds(&a, &[], &run);
    let kept = kept_sandbox(&run);
    assert!(kept.starts_with(roots_dir(&a)), "{}", kept.display());
    assert!(kept.join("execroot/hardws").is_dir(), "{}", kept.display());
    // Another workspace's commands leave it alone, kept sandboxes or not.
    succeeds(&b, &[], &b.build("//pkg:plain", &[]));
    let failed = b.build("//pkg:fails", &["--sandbox_debug"]);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert!(kept_sandbox(&failed).is_dir());
    assert!(
        kept.is_dir(),
        "another workspace removed {}",
        kept.display()
    );
    // The next command in the same workspace removes it, even one that runs nothing.
    succeeds(&a, &[], &a.build("//pkg:plain", &[]));
    assert!(!kept.exists(), "{} survived", kept.display());
    nothing_left(&a, None, "after the command following --sandbox_debug");
}

/// TEST_TMPDIR is scratch space, not an output: a FIFO or socket a test leaves there is no
/// declared output that is a special file, and is not copied anywhere.
#[test]
fn special_files_a_test_leaves_in_its_tmpdir_are_not_outputs() {
    everywhere(|fx, strategy| {
        let run = fx.run("test", "//pkg:special_files_in_tmp_test", strategy);
        succeeds(fx, strategy, &run);
        assert!(
            run.stdout.contains("PASSED") || run.stderr.contains("PASSED"),
            "{}",
            run.stderr
        );
        let logs = fx
            .ws
            .root()
            .join("forge-testlogs/pkg/special_files_in_tmp_test");
        assert!(!logs.join("_tmp").exists(), "{}", logs.display());
    });
}

/// Where the fixture's `//pkg` outputs are, as exec paths.
fn pkg_out() -> String {
    format!("{}/pkg", common::bin_dir())
}

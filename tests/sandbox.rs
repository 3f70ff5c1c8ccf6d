//! The sandbox, property by property: each genrule of the `sandbox` fixture tries one thing
//! the sandbox must stop (an undeclared file by relative or absolute path, the home
//! directory, the network, writing outside its outputs, leaving a process behind, ...), and
//! the tests check it is stopped — and that the same thing works with
//! `--spawn_strategy=local`, so the test would notice a sandbox that stopped nothing.
//! The main properties are checked both as the user running the tests and, when that is
//! root, as the unprivileged user `nobody`.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{NOBODY, Run, Workspace, is_root};

/// A sandbox fixture, run by the current user or by `nobody`.
struct Sandbox {
    ws: Workspace,
    /// Some(uid) to run forge as that user.
    user: Option<u32>,
    /// A copy of forge that `user` can execute.
    forge: PathBuf,
    /// A file only the home directory holds.
    home_secret: PathBuf,
}

impl Sandbox {
    fn new(as_nobody: bool) -> Sandbox {
        let ws = Workspace::fixture("sandbox");
        let top = ws.root().parent().unwrap().to_path_buf();
        let forge = common::private_forge(&ws);
        let user = as_nobody.then_some(NOBODY);
        // forge's home directory (`HOME` of its runs), under the test's temp dir.
        let home = top.join("home");
        fs::create_dir_all(&home).unwrap();
        let home_secret = home.join(format!(
            "forge-sandbox-test-{}-{}",
            std::process::id(),
            top.file_name().unwrap().to_string_lossy()
        ));
        fs::write(&home_secret, "from home\n").unwrap();
        if let Some(uid) = user {
            common::hand_over(&ws, uid);
        }
        Sandbox {
            ws,
            user,
            forge,
            home_secret,
        }
    }

    fn forge(&self, args: &[&str]) -> Run {
        self.forge_env(args, &[])
    }

    fn forge_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = std::process::Command::new(&self.forge);
        cmd.current_dir(self.ws.root())
            .env("XDG_CACHE_HOME", self.ws.cache_dir())
            .env("HOME", self.home_secret.parent().unwrap())
            .env_remove("RUST_BACKTRACE")
            .args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        if let Some(uid) = self.user {
            cmd.uid(uid).gid(uid);
        }
        // Another test's process forked while our copy of forge was open for writing holds
        // it open until it execs: the copy is "busy" until then, so wait for that.
        let out = common::retrying_busy(&mut cmd, std::process::Command::output);
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Builds `target` with the paths the genrules use passed in.
    fn build(&self, target: &str, extra: &[&str]) -> Run {
        let ws = format!("--action_env=WS={}", self.ws.root().display());
        let secret = format!("--action_env=SECRET={}", self.home_secret.display());
        let mut args = vec!["build", ws.as_str(), secret.as_str()];
        args.extend_from_slice(extra);
        args.push(target);
        self.forge(&args)
    }

    fn read(&self, path: &str) -> String {
        fs::read_to_string(self.ws.root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.home_secret);
    }
}

fn fails_with(run: &Run, expected: &[&str]) {
    assert_eq!(run.code, 1, "expected a build failure:\n{}", run.stderr);
    for e in expected {
        assert!(run.stderr.contains(e), "missing '{e}' in:\n{}", run.stderr);
    }
}

fn succeeds(run: &Run) {
    assert_eq!(run.code, 0, "expected success:\n{}", run.stderr);
}

/// Runs `check` as the current user and, when that is root, as `nobody` too.
fn both_users(check: impl Fn(&Sandbox)) {
    check(&Sandbox::new(false));
    if is_root() {
        check(&Sandbox::new(true));
    }
}

#[test]
fn only_declared_inputs_are_visible_and_the_hint_names_the_target() {
    both_users(|sb| {
        succeeds(&sb.build("//pkg:declared", &[]));
        assert_eq!(sb.read("forge-bin/pkg/declared.out"), "declared\n");

        let run = sb.build("//pkg:undeclared", &[]);
        fails_with(
            &run,
            &[
                "pkg/secret.txt: No such file or directory",
                "The sandbox hid files that are not declared inputs of //pkg:undeclared",
                "'pkg/secret.txt' is the source file //pkg:secret.txt: add it to the srcs",
            ],
        );
        // The file is there: without the sandbox the same rule builds.
        succeeds(&sb.build("//pkg:undeclared", &["--spawn_strategy=local"]));
        assert_eq!(sb.read("forge-bin/pkg/undeclared.out"), "top secret\n");
    });
}

#[test]
fn another_targets_output_is_hidden_unless_declared() {
    let sb = Sandbox::new(false);
    let run = sb.build("//pkg:undeclared_output", &["--keep_going", "//other:gen"]);
    fails_with(
        &run,
        &[&format!(
            "'{}/other/gen.out' is generated by //other:gen: add //other:gen",
            common::bin_dir()
        )],
    );
}

#[test]
fn absolute_paths_into_the_workspace_and_home_are_hidden() {
    both_users(|sb| {
        let run = sb.build("//pkg:absolute", &[]);
        fails_with(
            &run,
            &["secret.txt: No such file or directory", "//pkg:secret.txt"],
        );
        let run = sb.build("//pkg:home", &[]);
        fails_with(&run, &["No such file or directory"]);
        succeeds(&sb.build("//pkg:absolute", &["--spawn_strategy=local"]));
        succeeds(&sb.build("//pkg:home", &["--spawn_strategy=local"]));
        assert_eq!(sb.read("forge-bin/pkg/home.out"), "from home\n");
    });
}

/// A TCP server on 127.0.0.1 outside the sandbox that answers "pong".
fn pong_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 5];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"pong");
        }
    });
    port
}

#[test]
fn the_network_is_loopback_only_unless_requires_network() {
    let port = pong_server();
    let port_env = format!("--action_env=PORT={port}");
    both_users(|sb| {
        let run = sb.build("//pkg:network", &[&port_env]);
        fails_with(&run, &["Connection refused"]);
        succeeds(&sb.build("//pkg:network_allowed", &[&port_env]));
        assert_eq!(sb.read("forge-bin/pkg/network_allowed.out"), "pong");
        succeeds(&sb.build("//pkg:network", &[&port_env, "--spawn_strategy=local"]));
    });
}

#[test]
fn writes_outside_the_declared_outputs_fail_and_change_nothing() {
    both_users(|sb| {
        let run = sb.build("//pkg:writes_source", &[]);
        fails_with(&run, &["pkg/input.txt: Read-only file system"]);
        let run = sb.build("//pkg:writes_source_absolute", &[]);
        fails_with(&run, &["No such file or directory"]);
        assert_eq!(sb.read("pkg/input.txt"), "declared\n");
        let run = sb.build("//pkg:writes_elsewhere", &[]);
        fails_with(&run, &["other/planted.txt"]);
        assert!(
            !sb.ws
                .root()
                .join(common::bin_dir())
                .join("other/planted.txt")
                .exists()
        );
    });
}

fn processes_named(cmdline: &str) -> usize {
    common::processes_with(cmdline).len()
}

#[test]
fn nothing_an_action_started_survives_it() {
    both_users(|sb| {
        succeeds(&sb.build("//pkg:background", &[]));
        assert_eq!(sb.read("forge-bin/pkg/background.out"), "started\n");
        // The process left its group with setsid; the pid namespace still took it down.
        let deadline = Instant::now() + Duration::from_secs(5);
        while processes_named("sleep 314159") > 0 {
            assert!(
                Instant::now() < deadline,
                "a process of the action survived it"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    });
}

#[test]
fn missing_and_escaping_outputs_are_errors() {
    let sb = Sandbox::new(false);
    let run = sb.build("//pkg:lies", &[]);
    fails_with(
        &run,
        &[&format!(
            "declared output '{}/pkg/promised.out' was not created",
            common::bin_dir()
        )],
    );
    let run = sb.build("//pkg:escaping_link", &[]);
    fails_with(
        &run,
        &[&format!(
            "'{}/pkg/escaping_link.out' is a symlink to '/etc/hostname', outside the exec root",
            common::bin_dir()
        )],
    );
}

#[test]
fn inside_the_sandbox_hostname_proc_and_tmp_are_its_own() {
    both_users(|sb| {
        succeeds(&sb.build("//pkg:inside", &[]));
        let seen = sb.read("forge-bin/pkg/inside.out");
        let lines: Vec<&str> = seen.lines().collect();
        assert_eq!(lines[0], "forge", "{seen}");
        // Only the command's own few processes are in its /proc.
        assert!(lines[1].parse::<u32>().unwrap() < 10, "{seen}");
        assert_eq!(lines[2..4], ["/tmp", "mine"], "{seen}");
        let uid = sb.user.unwrap_or_else(|| unsafe { nix::libc::geteuid() });
        assert_eq!(lines[4], uid.to_string(), "{seen}");
    });
}

#[test]
fn a_timeout_kills_the_whole_sandbox() {
    let sb = Sandbox::new(false);
    let started = Instant::now();
    let run = sb.build("//pkg:slow", &[]);
    fails_with(&run, &["timed out after 1 s"]);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(processes_named("sleep 30"), 0);
}

#[test]
fn strategies_tags_and_the_summary() {
    let sb = Sandbox::new(false);
    // The no-sandbox tag runs locally, where the undeclared file is reachable.
    let run = sb.build("//pkg:no_sandbox_tag", &[]);
    succeeds(&run);
    assert!(
        run.stderr.contains("Commands: 0 sandboxed, 1 local."),
        "{}",
        run.stderr
    );
    let run = sb.build("//pkg:declared", &[]);
    assert!(
        run.stderr.contains("Commands: 1 sandboxed, 0 local."),
        "{}",
        run.stderr
    );
    // Per mnemonic.
    succeeds(&sb.build("//pkg:undeclared", &["--strategy=Genrule=local"]));
    let run = sb.build("//pkg:undeclared", &["--spawn_strategy=bogus"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[test]
fn sandbox_debug_keeps_the_sandbox_and_says_where() {
    let sb = Sandbox::new(false);
    let run = sb.build("//pkg:declared", &["--sandbox_debug"]);
    succeeds(&run);
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("(--sandbox_debug)"))
        .unwrap_or_else(|| panic!("{}", run.stderr));
    let path = line
        .split(" kept at ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    let kept = Path::new(path).join("execroot/sandboxws/pkg/input.txt");
    assert!(kept.exists(), "{}", kept.display());
    let _ = fs::remove_dir_all(path);
}

#[test]
fn mount_flags_add_paths_to_the_sandbox() {
    let sb = Sandbox::new(false);
    let extra = tempfile::tempdir().unwrap();
    fs::write(extra.path().join("tool.txt"), "mounted\n").unwrap();
    let pair = format!(
        "--sandbox_add_mount_pair={}:/forge-extra",
        extra.path().display()
    );
    // A mounted path is readable; a tmpfs path is empty and writable.
    let ws = sb.ws.root();
    fs::write(
        ws.join("pkg/BUILD"),
        fs::read_to_string(ws.join("pkg/BUILD")).unwrap()
            + "\ngenrule(name = 'mounts', outs = ['mounts.out'], cmd = 'cat /forge-extra/tool.txt > $@ && touch /scratch/x && ls /scratch >> $@')\n",
    )
    .unwrap();
    let run = sb.build("//pkg:mounts", &[&pair, "--sandbox_tmpfs_path=/scratch"]);
    succeeds(&run);
    assert_eq!(sb.read("forge-bin/pkg/mounts.out"), "mounted\nx\n");
}

#[test]
fn without_namespaces_forge_says_so_once_and_does_not_fall_back() {
    // Inside a user namespace whose max_user_namespaces is 0, no sandbox can be made.
    if std::process::Command::new("unshare")
        .args(["-U", "-r", "true"])
        .status()
        .map(|s| !s.success())
        .unwrap_or(true)
    {
        panic!("unshare(1) with user namespaces is needed for this test");
    }
    let sb = Sandbox::new(false);
    let forge = sb.forge.display().to_string();
    let script = format!(
        "echo 0 > /proc/sys/user/max_user_namespaces && exec {forge} build --keep_going \"$@\""
    );
    let run = |extra: &[&str]| {
        let out = std::process::Command::new("unshare")
            .args(["-U", "-r", "sh", "-c", &script, "sh"])
            .args(extra)
            .args(["//pkg:declared", "//pkg:inside"])
            .current_dir(sb.ws.root())
            .env("XDG_CACHE_HOME", sb.ws.cache_dir())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = run(&[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        stderr.matches("the sandbox cannot run here").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("--spawn_strategy=local"), "{stderr}");
    assert!(!sb.ws.root().join("forge-bin/pkg/declared.out").exists());
    let (code, stderr) = run(&["--spawn_strategy=local"]);
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn whole_directories_of_inputs_and_the_undeclared_file_among_them() {
    both_users(|sb| {
        succeeds(&sb.build("//many:lots", &[]));
        let listing = sb.read("forge-bin/many/lots.out");
        let mut expected: Vec<String> = Vec::new();
        for d in ["d0", "d1", "d2/sub"] {
            for i in 0..10 {
                expected.push(format!("./{d}/f{i}.txt"));
            }
        }
        expected.sort();
        assert_eq!(listing.lines().collect::<Vec<_>>(), expected);
    });
}

#[test]
fn tools_bring_their_runfiles_and_no_cache_always_runs() {
    let sb = Sandbox::new(false);
    succeeds(&sb.build("//tools:greeted", &[]));
    assert_eq!(
        sb.read("forge-bin/tools/greeted.out"),
        "hello from runfiles\n"
    );
    let first = sb.build("//tools:uncached", &[]);
    succeeds(&first);
    let second = sb.build("//tools:uncached", &[]);
    assert!(
        second.stderr.contains("INFO: 1 action executed"),
        "{}",
        second.stderr
    );
}

#[test]
fn a_writable_path_is_writable_and_nothing_else_outside() {
    let sb = Sandbox::new(false);
    let allowed = tempfile::tempdir().unwrap();
    let env = format!("--action_env=ALLOWED={}", allowed.path().display());
    let run = sb.build("//tools:writes_allowed_path", &[&env]);
    fails_with(&run, &["No such file or directory"]);
    let writable = format!("--sandbox_writable_path={}", allowed.path().display());
    succeeds(&sb.build("//tools:writes_allowed_path", &[&env, &writable]));
    assert_eq!(
        fs::read_to_string(allowed.path().join("written.txt")).unwrap(),
        "from-sandbox\n"
    );
}

//! Hardening of the sandbox: the `hardening_sandbox` fixture's genrules try to undo its
//! isolation — remount read-only inputs, `/usr` or their root writable, mount, change a
//! kernel setting, fill `/tmp`, reach another action over loopback — and the tests check
//! that each attempt fails and that nothing it aimed at (sources, generated files, the CAS,
//! the next action) changed. Run as the user running the tests and, when that is root (where
//! most of these attacks worked), as the unprivileged user `nobody` too.

mod common;

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use common::{NOBODY, Run, Workspace, is_root};

/// The fixture, with forge run by the current user or by `nobody`.
struct Fixture {
    ws: Workspace,
    user: Option<u32>,
    /// A copy of forge that `user` can execute.
    forge: PathBuf,
}

impl Fixture {
    fn new(as_nobody: bool) -> Fixture {
        let ws = Workspace::fixture("hardening_sandbox");
        let forge = common::private_forge(&ws);
        let user = as_nobody.then_some(NOBODY);
        fs::create_dir_all(ws.cache_dir()).unwrap();
        if let Some(uid) = user {
            common::hand_over(&ws, uid);
        }
        Fixture { ws, user, forge }
    }

    fn forge(&self, args: &[&str]) -> Run {
        let mut cmd = std::process::Command::new(&self.forge);
        cmd.current_dir(self.ws.root())
            .env("XDG_CACHE_HOME", self.ws.cache_dir())
            .env_remove("RUST_BACKTRACE")
            .args(args);
        if let Some(uid) = self.user {
            cmd.uid(uid).gid(uid).env("HOME", self.ws.root());
        }
        let out = common::retrying_busy(&mut cmd, std::process::Command::output);
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn read(&self, path: &str) -> String {
        fs::read_to_string(self.ws.root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
    }
}

fn succeeds(run: &Run) {
    assert_eq!(run.code, 0, "expected success:\n{}", run.stderr);
}

/// Runs `check` as the current user and, when that is root, as `nobody` too.
fn both_users(check: impl Fn(&Fixture)) {
    check(&Fixture::new(false));
    if is_root() {
        check(&Fixture::new(true));
    }
}

/// Files under `dir` (not following symlinks) whose content mentions `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter(|e| {
            fs::read(e.path())
                .map(|data| String::from_utf8_lossy(&data).contains(needle))
                .unwrap_or(false)
        })
        .map(|e| e.path().to_path_buf())
        .collect()
}

#[test]
fn a_command_cannot_remount_mount_or_change_kernel_settings() {
    both_users(|fx| {
        // One worker: the sandbox root the attack ran in is the one the next action gets.
        succeeds(&fx.forge(&["build", "--jobs=1", "//pkg:after"]));
        let report = fx.read("forge-bin/pkg/attack.out");
        let attempts: Vec<&str> = report
            .lines()
            .filter(|l| !l.starts_with("Cap") && !l.starts_with('('))
            .collect();
        assert_eq!(attempts.len(), 16, "{report}");
        for line in &attempts {
            assert!(
                line.ends_with(": failed"),
                "an attack worked: {line}\n{report}"
            );
        }
        // No capability is left, not even in the bounding set.
        for cap in ["CapEff", "CapPrm", "CapBnd", "CapAmb"] {
            assert!(
                report.contains(&format!("{cap}:\t0000000000000000")),
                "{cap} is not empty:\n{report}"
            );
        }
        assert_eq!(fx.read("pkg/src.txt"), "good\n");
        assert_eq!(fx.read("forge-bin/pkg/gen.txt"), "generated\n");
        // The next action read the right bytes and found nothing left in its root.
        assert_eq!(fx.read("forge-bin/pkg/after.out"), "good\ngenerated\n");
        // Nothing anywhere — exec root, CAS, action cache, workspace — holds the poison.
        let mut poisoned = files_containing(&fx.ws.cache_dir(), "POISON");
        poisoned.extend(files_containing(&fx.ws.root(), "POISON"));
        let poisoned: Vec<PathBuf> = poisoned
            .into_iter()
            .filter(|p| !p.ends_with("pkg/attack.sh") && !p.ends_with("pkg/nested.py"))
            .collect();
        assert!(poisoned.is_empty(), "poisoned: {poisoned:?}");
        // A clean build from the cache still gets the right bytes.
        succeeds(&fx.forge(&["clean"]));
        succeeds(&fx.forge(&["build", "//pkg:after"]));
        assert_eq!(fx.read("forge-bin/pkg/gen.txt"), "generated\n");
        assert_eq!(fx.read("forge-bin/pkg/after.out"), "good\ngenerated\n");
    });
}

#[test]
fn tmp_is_a_tmpfs_of_limited_size() {
    let fx = Fixture::new(false);
    // 3 MiB do not fit in 1 MiB, in either spelling of the flag ...
    for flag in ["--sandbox_tmpfs_size=1m", "--sandbox-tmpfs-size=1024k"] {
        let run = fx.forge(&["build", flag, "//pkg:fill_tmp"]);
        assert_eq!(
            run.code, 1,
            "{flag}: expected a build failure:\n{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("No space left on device"),
            "{flag}:\n{}",
            run.stderr
        );
    }
    // ... but in the default limit (a share of the machine's RAM).
    succeeds(&fx.forge(&["build", "//pkg:fill_tmp"]));
    assert_eq!(fx.read("forge-bin/pkg/fill_tmp.out"), "filled\n");
    // A size tmpfs would not take is a usage error, named.
    let run = fx.forge(&["build", "--sandbox_tmpfs_size=lots", "//pkg:fill_tmp"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("--sandbox_tmpfs_size='lots'"),
        "{}",
        run.stderr
    );
}

#[test]
fn concurrent_actions_do_not_share_loopback() {
    let fx = Fixture::new(false);
    let shared = tempfile::tempdir().unwrap();
    let writable = format!("--sandbox_writable_path={}", shared.path().display());
    let env = format!("--action_env=SHARED={}", shared.path().display());
    let run = fx.forge(&[
        "build",
        "--jobs=2",
        &writable,
        &env,
        "--action_env=PORT=47811",
        "//net:listen",
        "//net:connect",
    ]);
    succeeds(&run);
    // They met (the listener was listening when the other connected) ...
    assert!(shared.path().join("ready").exists() && shared.path().join("done").exists());
    // ... but on two separate loopbacks.
    let connect = fx.read("forge-bin/net/connect.out");
    assert!(connect.starts_with("cannot connect"), "connect: {connect}");
    assert_eq!(fx.read("forge-bin/net/listen.out"), "none\n");
}

/// Nothing a command can read inside tells it where the workspace, the output base or the
/// home directory is: its inputs are bound from overlays whose layers are named by
/// descriptors, not from their host paths.
#[test]
fn a_command_cannot_learn_the_workspace_output_base_or_home_path() {
    both_users(|fx| {
        succeeds(&fx.forge(&["build", "//leak:where"]));
        let seen = fx.read("forge-bin/leak/where.txt");
        assert!(seen.contains("source\ngenerated\n"), "{seen}");
        assert!(seen.contains(" - overlay overlay "), "{seen}");
        // The workspace, its output base (under the test's cache dir) and nobody's home all
        // lie under the test's temporary directory.
        let top = fx.ws.root().parent().unwrap().display().to_string();
        assert!(!seen.contains(&top), "{top} is visible:\n{seen}");
        let output_base = fx.forge(&["info", "output_base"]).stdout;
        assert!(!seen.contains(output_base.trim()), "{seen}");
        if fx.user.is_none()
            && let Some(home) = std::env::var_os("HOME").filter(|h| h.len() > 1)
        {
            let home = format!("{}/", home.to_string_lossy());
            assert!(!seen.contains(&home), "{home} is visible:\n{seen}");
        }
    });
}

/// A test's TEST_TMPDIR is a private tmpfs of the same limited size as /tmp, so a test
/// cannot fill the host's shared memory through it either.
#[test]
fn a_tests_tmpdir_is_limited_like_tmp() {
    let fx = Fixture::new(false);
    let target = "//pkg:fill_test_tmpdir_test";
    let run = fx.forge(&["test", "--sandbox_tmpfs_size=1m", target]);
    assert_eq!(run.code, 3, "expected the test to fail:\n{}", run.stderr);
    let log = fx.read("forge-testlogs/pkg/fill_test_tmpdir_test/test.log");
    assert!(log.contains("No space left on device"), "{log}");
    let run = fx.forge(&["test", target]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// Even a command outside the sandbox that edits an input in place does not change the
/// blob the CAS keeps for it: outputs are stored as copies, not as links to the file a later
/// command may write.
#[test]
fn a_command_editing_its_input_in_place_leaves_the_cas_blob_intact() {
    let fx = Fixture::new(false);
    succeeds(&fx.forge(&["build", "//unsandboxed:careless"]));
    let cas = fx.ws.cache_dir();
    assert_eq!(
        files_containing(&cas, "TAINT")
            .iter()
            .filter(|p| p.to_string_lossy().contains("/cas/"))
            .count(),
        0
    );
    // The edited input is restored from the intact blob.
    succeeds(&fx.forge(&["build", "//unsandboxed:good"]));
    assert_eq!(fx.read("forge-bin/unsandboxed/good.txt"), "good\n");
}

//! Forge processes meeting each other and signals: two commands on one output base take
//! turns, Ctrl-C kills running actions with their whole process groups and exits 8, and a
//! forge killed with SIGKILL at any moment leaves nothing a later build trusts wrongly.

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{Workspace, descends_from, processes_with};

fn signal(child: &Child, name: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// A forge process that is killed if the test fails before it ends.
struct Forge(Child);

impl Drop for Forge {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The lock file of the workspace's only output base, once it exists.
fn lock_file(ws: &Workspace) -> Option<PathBuf> {
    let bases = fs::read_dir(ws.cache_dir().join("forge")).ok()?;
    bases
        .flatten()
        .map(|e| e.path().join("lock"))
        .find(|p| p.exists())
}

#[test]
fn ctrl_c_kills_running_actions_and_their_children_and_exits_8() {
    let ws = Workspace::fixture("build");
    let mut forge = Forge(
        ws.command(&["build", "//slow:forever"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = forge.0.id();
    let mut sleepers = Vec::new();
    wait_until("the action to start", Duration::from_secs(30), || {
        sleepers = processes_with("sleep 27182*")
            .into_iter()
            .filter(|p| descends_from(*p, pid))
            .collect();
        sleepers.len() == 2
    });
    let interrupted = Instant::now();
    signal(&forge.0, "INT");
    let status = forge.0.wait().unwrap();
    assert_eq!(status.code(), Some(8));
    assert!(interrupted.elapsed() < Duration::from_secs(5));
    // Both the command and the process it left in the background are gone (a killed process
    // may linger as a zombie until reaped, so a zombie counts as gone).
    wait_until(
        "the action's processes to die",
        Duration::from_secs(5),
        || {
            sleepers.iter().all(|p| {
                fs::read_to_string(format!("/proc/{p}/stat"))
                    .map(|s| {
                        s.rsplit_once(')')
                            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
                    })
                    .unwrap_or(true)
            })
        },
    );
    assert!(!ws.root().join("forge-bin/slow/forever.out").exists());
}

#[test]
fn two_commands_on_one_output_base_take_turns() {
    let ws = Workspace::fixture("build");
    let mut first = Forge(
        ws.command(&["build", "//slow:two_seconds"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = first.0.id().to_string();
    wait_until(
        "the first command to hold the lock",
        Duration::from_secs(30),
        || lock_file(&ws).is_some_and(|f| fs::read_to_string(f).unwrap_or_default() == pid),
    );
    let second = ws.forge(&["build", "//chain:a"]);
    assert_eq!(second.code, 0, "{}", second.both());
    assert!(
        second.stderr.contains(&format!(
            "Another forge command (pid {pid}) is running in this output base. Waiting for it to finish..."
        )),
        "{}",
        second.stderr
    );
    // The second could only start once the first had built: its output is already there.
    assert_eq!(
        fs::read_to_string(ws.root().join("forge-bin/slow/two_seconds.out")).unwrap(),
        "ok\n"
    );
    assert_eq!(first.0.wait().unwrap().code(), Some(0));
}

#[test]
fn a_build_killed_at_any_moment_leaves_nothing_trusted_wrongly() {
    let ws = Workspace::fixture("build");
    let expected: String = (1..=40).map(|i| format!("line {i}\n")).collect();
    // Kill forge at different moments of the action that writes its output line by line.
    for delay_ms in [30, 120, 250, 400, 600, 750] {
        let mut forge = ws
            .command(&["build", "//slow:trickle", "//chain:all"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        signal(&forge, "KILL");
        forge.wait().unwrap();
    }
    let run = ws.forge(&["build", "//slow:trickle", "//chain:all"]);
    assert_eq!(run.code, 0, "{}", run.both());
    assert_eq!(
        fs::read_to_string(ws.root().join("forge-bin/slow/trickle.out")).unwrap(),
        expected
    );
    assert_eq!(
        fs::read_to_string(ws.root().join("forge-bin/chain/c.out")).unwrap(),
        "c\none\n"
    );
    // Nothing of a killed build's commands is still writing.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        fs::read_to_string(ws.root().join("forge-bin/slow/trickle.out")).unwrap(),
        expected
    );
}

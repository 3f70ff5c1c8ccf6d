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
    signal(&forge.0, "INT");
    // Forge does not wait for its actions (they would sleep for days): it ends on its own.
    let mut status = None;
    wait_until(
        "forge to exit after Ctrl-C",
        Duration::from_secs(60),
        || {
            status = forge.0.try_wait().unwrap();
            status.is_some()
        },
    );
    assert_eq!(status.and_then(|s| s.code()), Some(8));
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
    // The first command's action runs until the test opens its gate, so the first command
    // surely holds the output base while the second starts, however slow the machine.
    ws.write(
        "gate/BUILD",
        "genrule(\n    name = \"gate\",\n    outs = [\"gate.out\"],\n    \
         cmd = \"while [ ! -e \\\"$$GATE\\\" ]; do sleep 0.01; done; echo ok > $@\",\n)\n",
    );
    let gate = ws.cache_dir().with_file_name("gate-open");
    let flags = [
        "--spawn_strategy=local".to_owned(),
        format!("--action_env=GATE={}", gate.display()),
    ];
    let command = |target: &str| {
        let mut args = vec!["build", target];
        args.extend(flags.iter().map(String::as_str));
        ws.command(&args)
    };
    let mut first = Forge(
        command("//gate:gate")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = first.0.id().to_string();
    wait_until(
        "the first command to hold the lock",
        Duration::from_secs(60),
        || lock_file(&ws).is_some_and(|f| fs::read_to_string(f).unwrap_or_default() == pid),
    );
    let mut second = Forge(
        command("//chain:a")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (lines, stderr) = std::sync::mpsc::channel();
    let reader = std::io::BufReader::new(second.0.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(reader).map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let waiting = format!(
        "Another forge command (pid {pid}) is running in this output base. Waiting for it to finish..."
    );
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains(&waiting)) {
        match stderr.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => seen.push(line),
            Err(e) => panic!("the second command never waited ({e}): {seen:#?}"),
        }
    }
    // Still waiting: the first has not built yet.
    assert!(!ws.root().join("forge-bin/chain/a.out").exists());
    fs::write(&gate, "").unwrap();
    assert_eq!(second.0.wait().unwrap().code(), Some(0), "{seen:#?}");
    seen.extend(stderr.iter());
    // The second could only start once the first had built: its output is already there.
    assert_eq!(
        fs::read_to_string(ws.root().join("forge-bin/gate/gate.out")).unwrap(),
        "ok\n"
    );
    assert_eq!(first.0.wait().unwrap().code(), Some(0));
    assert_eq!(
        fs::read_to_string(ws.root().join("forge-bin/chain/a.out")).unwrap(),
        "one\ntwo\n"
    );
}

/// Pids of `trickle`'s command (the shell writing line after line) run by forge `forge`.
fn trickle_commands(forge: u32) -> Vec<u32> {
    processes_with("*")
        .into_iter()
        .filter(|p| {
            fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("$(seq 1 40)"))
                && descends_from(*p, forge)
        })
        .collect()
}

/// How many lines the command `pid` has written to its output so far (read through its
/// working directory, the action's exec root), or `None` once it is gone.
fn lines_written(pid: u32) -> Option<usize> {
    let out = format!("/proc/{pid}/cwd/{}/slow/trickle.out", common::bin_dir());
    match fs::read_to_string(out) {
        Ok(text) => Some(text.lines().count()),
        Err(_) => std::path::Path::new(&format!("/proc/{pid}"))
            .exists()
            .then_some(0),
    }
}

/// Whether `pid` has ended (a zombie has ended too), or is now another program.
fn ended(pid: u32) -> bool {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let zombie = stat
        .rsplit_once(')')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
    let ours = fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| String::from_utf8_lossy(&c).contains("$(seq 1 40)"));
    stat.is_empty() || zombie || !ours
}

/// The moments at which the test kills forge, each an event of the build, not a time.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Moment {
    /// Right after it was started.
    AtOnce,
    /// Once it holds the output base's lock.
    Locked,
    /// Once `trickle`'s command runs.
    ActionStarted,
    /// Once the command has written this many of its 40 lines.
    Lines(usize),
    /// Once the command has ended (forge is storing its output, or further on).
    ActionEnded,
}

#[test]
fn a_build_killed_at_any_moment_leaves_nothing_trusted_wrongly() {
    let ws = Workspace::fixture("build");
    let expected: String = (1..=40).map(|i| format!("line {i}\n")).collect();
    let moments = [
        Moment::AtOnce,
        Moment::Locked,
        Moment::ActionStarted,
        Moment::Lines(1),
        Moment::Lines(20),
        Moment::Lines(39),
        Moment::ActionEnded,
    ];
    let mut commands = Vec::new();
    let mut killed = Vec::new();
    // Kill forge at different moments of the action that writes its output line by line.
    for moment in moments {
        let mut forge = Forge(
            ws.command(&["build", "//slow:trickle", "//chain:all"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let pid = forge.0.id();
        let mut seen: Vec<u32> = Vec::new();
        let mut reached = |forge: &mut Forge| -> bool {
            for p in trickle_commands(pid) {
                if !seen.contains(&p) {
                    seen.push(p);
                }
            }
            let here = match moment {
                Moment::AtOnce => true,
                Moment::Locked => lock_file(&ws)
                    .is_some_and(|f| fs::read_to_string(f).unwrap_or_default() == pid.to_string()),
                Moment::ActionStarted => !seen.is_empty(),
                // A command gone before we saw k lines has written them all.
                Moment::Lines(k) => seen
                    .iter()
                    .any(|p| lines_written(*p).is_none_or(|n| n >= k)),
                Moment::ActionEnded => !seen.is_empty() && seen.iter().all(|p| ended(*p)),
            };
            // Up to the last line, the command is still running, so forge cannot be done;
            // after it, forge may be done before we look.
            here || (moment == Moment::ActionEnded && forge.0.try_wait().unwrap().is_some())
        };
        wait_until(&format!("{moment:?}"), Duration::from_secs(60), || {
            reached(&mut forge)
        });
        if forge.0.try_wait().unwrap().is_none() {
            signal(&forge.0, "KILL");
            killed.push(pid);
        }
        forge.0.wait().unwrap();
        commands.extend(seen);
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
    wait_until(
        "the killed builds' commands to end",
        Duration::from_secs(30),
        || commands.iter().all(|p| ended(*p)),
    );
    assert_eq!(
        fs::read_to_string(ws.root().join("forge-bin/slow/trickle.out")).unwrap(),
        expected
    );
    // A killed forge leaves its sandbox roots behind; the next forge to sandbox a command
    // removes them, so the test leaves nothing outside its temp dir.
    ws.write(
        "fresh/BUILD",
        "genrule(name = \"fresh\", outs = [\"fresh.out\"], cmd = \"echo > $@\")\n",
    );
    let run = ws.forge(&["build", "//fresh:fresh"]);
    assert_eq!(run.code, 0, "{}", run.both());
    let places = fs::read_dir("/dev/shm")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("forge-sandbox-")
        })
        .chain(lock_file(&ws).map(|l| l.with_file_name("sandbox")));
    let left: Vec<PathBuf> = places
        .flat_map(|dir| fs::read_dir(dir).into_iter().flatten().flatten())
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            killed
                .iter()
                .any(|pid| name.starts_with(&format!("{pid}-")))
        })
        .collect();
    assert!(left.is_empty(), "sandbox roots of killed forges: {left:?}");
}

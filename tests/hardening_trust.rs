//! What forge reads back from its own stores and acts on: stored build plans, the action
//! cache log, the test result records and the stat cache, each damaged on disk (a flipped
//! byte, "good" replaced by "evil", a truncation) must be noticed, ignored and rewritten;
//! a failing test takes back its cached pass; and tests a killed `forge test` left running
//! are killed by the next command.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Run, Workspace, descends_from, processes_with};

/// The one file named `name` under the workspace's output bases, e.g. `ac/log`.
fn store_file(ws: &Workspace, name: &str) -> PathBuf {
    let found: Vec<PathBuf> = walkdir::WalkDir::new(ws.cache_dir())
        .into_iter()
        .flatten()
        .map(|e| e.into_path())
        .filter(|p| p.ends_with(name) && p.is_file())
        .collect();
    assert_eq!(found.len(), 1, "one {name} expected: {found:?}");
    found.into_iter().next().unwrap()
}

/// The files in the plan cache.
fn plan_files(ws: &Workspace) -> Vec<PathBuf> {
    walkdir::WalkDir::new(ws.cache_dir())
        .into_iter()
        .flatten()
        .map(|e| e.into_path())
        .filter(|p| p.parent().is_some_and(|d| d.ends_with("cache/plans")) && p.is_file())
        .collect()
}

fn ok(run: &Run) {
    assert_eq!(run.code, 0, "{}", run.both());
}

fn output(ws: &Workspace, name: &str) -> String {
    fs::read_to_string(ws.root().join("forge-bin/pkg").join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Damages a store's bytes.
type Damage = Box<dyn Fn(&[u8]) -> Vec<u8>>;

/// The ways a store is damaged on disk: each takes the file's bytes and returns them damaged.
fn damages(good: &'static str, evil: &'static str) -> Vec<(&'static str, Damage)> {
    vec![
        (
            "good replaced by evil",
            Box::new(move |b: &[u8]| {
                let text = String::from_utf8_lossy(b);
                assert!(text.contains(good), "no {good:?} to replace in {text}");
                text.replacen(good, evil, 1).into_bytes()
            }),
        ),
        (
            "one byte flipped",
            Box::new(move |b: &[u8]| {
                let text = String::from_utf8_lossy(b);
                let at = text.find(good).expect("the byte to flip") + good.len() - 1;
                let mut bytes = b.to_vec();
                bytes[at] ^= 1;
                bytes
            }),
        ),
        (
            "truncated",
            Box::new(|b: &[u8]| b[..b.len() * 2 / 3].to_vec()),
        ),
    ]
}

fn damage(path: &Path, how: &dyn Fn(&[u8]) -> Vec<u8>) {
    let bytes = fs::read(path).unwrap();
    let damaged = how(&bytes);
    assert_ne!(bytes, damaged);
    fs::write(path, damaged).unwrap();
}

/// Removes an output so the next build must restore or rebuild it.
fn remove_output(ws: &Workspace, name: &str) {
    let path = fs::canonicalize(ws.root().join("forge-bin/pkg").join(name)).unwrap();
    fs::remove_file(path).unwrap();
}

fn digest_hex(data: &[u8]) -> String {
    blake3::hash(data).to_hex().to_string()
}

/// Every line of an action-cache log carries the checksum of the rest of it.
fn assert_healthy_log(path: &Path) {
    let text = fs::read_to_string(path).unwrap();
    assert!(text.ends_with('\n'), "torn tail left in {text}");
    for line in text.lines() {
        let (sum, body) = line.split_once(' ').unwrap();
        assert_eq!(
            sum,
            digest_hex(body.as_bytes()),
            "damaged record left: {line}"
        );
    }
}

#[test]
fn a_damaged_stored_plan_is_planned_again_and_stored_healthy() {
    let ws = Workspace::fixture("hardening_trust");
    ok(&ws.forge(&["build", "//pkg:good"]));
    assert_eq!(output(&ws, "good.txt"), "good\n");
    let plans = plan_files(&ws);
    assert_eq!(plans.len(), 1, "{plans:?}");
    let plan = &plans[0];
    for (what, how) in damages("echo good", "echo evil") {
        damage(plan, &how);
        let run = ws.forge(&["build", "//pkg:good"]);
        ok(&run);
        assert_eq!(
            output(&ws, "good.txt"),
            "good\n",
            "after the plan was {what}"
        );
        // Planned afresh (the package is unchanged, so it comes from the package store,
        // and so does the target's analysis, from the result store) and stored again
        // whole: the next build reuses it.
        assert!(
            run.stderr
                .contains("(0 packages loaded, 0 targets configured)"),
            "{what}: {}",
            run.stderr
        );
        // The plan is binary after its first lines: read as lossy text.
        let text = String::from_utf8_lossy(&fs::read(plan).unwrap()).into_owned();
        assert!(
            text.contains("echo good") && !text.contains("echo evil"),
            "{what}"
        );
        let run = ws.forge(&["build", "//pkg:good"]);
        ok(&run);
        assert!(
            run.stderr.contains("(0 packages loaded"),
            "{what}: {}",
            run.stderr
        );
        // A touched BUILD file does not bring a damaged plan back either.
        let build = ws.root().join("pkg/BUILD");
        let content = fs::read(&build).unwrap();
        fs::write(&build, content).unwrap();
        ok(&ws.forge(&["build", "//pkg:good"]));
        assert_eq!(
            output(&ws, "good.txt"),
            "good\n",
            "after the plan was {what}"
        );
    }
}

#[test]
fn a_damaged_action_cache_record_is_skipped_the_others_kept_and_the_log_rewritten() {
    let ws = Workspace::fixture("hardening_trust");
    ok(&ws.forge(&["build", "//pkg:good", "//pkg:evil"]));
    let log = store_file(&ws, "cache/ac/log");
    let good = digest_hex(b"good\n");
    let evil = digest_hex(b"evil\n");
    // The record of //pkg:good naming the blob of //pkg:evil: same length, a wrong output.
    let swapped: Damage = Box::new({
        let (good, evil) = (good.clone(), evil.clone());
        move |b: &[u8]| {
            String::from_utf8_lossy(b)
                .replacen(&good, &evil, 1)
                .into_bytes()
        }
    });
    let mut ways = vec![("good's digest replaced by evil's", swapped)];
    ways.extend(damages("good.txt", "evil.txt"));
    for (what, how) in ways {
        damage(&log, &how);
        remove_output(&ws, "good.txt");
        let run = ws.forge(&["build", "//pkg:good"]);
        ok(&run);
        assert_eq!(
            output(&ws, "good.txt"),
            "good\n",
            "after the log was {what}"
        );
        assert_healthy_log(&log);
        // The other record survived, and the rebuilt one was kept: both come from the cache.
        remove_output(&ws, "good.txt");
        remove_output(&ws, "evil.txt");
        let run = ws.forge(&["build", "//pkg:good", "//pkg:evil"]);
        ok(&run);
        assert_eq!(output(&ws, "good.txt"), "good\n", "{what}");
        assert_eq!(output(&ws, "evil.txt"), "evil\n", "{what}");
        if what != "truncated" {
            assert!(
                run.stderr.contains("0 actions executed, 2 from the cache"),
                "{what}: {}",
                run.stderr
            );
        }
    }
}

#[test]
fn a_damaged_stat_cache_is_ignored_and_saved_healthy() {
    let ws = Workspace::fixture("hardening_trust");
    ok(&ws.forge(&["build", "//pkg:good"]));
    let file = store_file(&ws, "cache/stat_cache");
    for (what, how) in damages("good.txt", "evil.txt") {
        damage(&file, &how);
        remove_output(&ws, "good.txt");
        let run = ws.forge(&["build", "//pkg:good"]);
        ok(&run);
        assert_eq!(
            output(&ws, "good.txt"),
            "good\n",
            "after the stat cache was {what}"
        );
        // Saved again: its last line is the checksum of the rest.
        let text = fs::read_to_string(&file).unwrap();
        let body_end = text.trim_end_matches('\n').rfind('\n').unwrap() + 1;
        let (body, sum) = text.split_at(body_end);
        assert_eq!(
            sum.trim_end(),
            format!("sum {}", digest_hex(body.as_bytes())),
            "{what}"
        );
        assert!(body.contains("good.txt"), "{what}: {body}");
    }
}

#[test]
fn a_damaged_test_result_record_is_skipped_and_the_test_run_again() {
    let ws = Workspace::fixture("hardening_trust");
    let both = ["test", "//pkg:good_test", "//pkg:evil_test"];
    ok(&ws.forge(&both));
    let log = store_file(&ws, "cache/tests/log");
    for (what, how) in damages("good_test", "evil_test") {
        damage(&log, &how);
        let run = ws.forge(&["test", "//pkg:good_test"]);
        ok(&run);
        assert!(
            run.stdout.contains("//pkg:good_test") && !run.stdout.contains("(cached) PASSED"),
            "after the record was {what}, the test runs again: {}",
            run.both()
        );
        let test_log = fs::read_to_string(ws.root().join("forge-testlogs/pkg/good_test/test.log"))
            .unwrap_or_else(|e| panic!("{what}: good_test's test.log: {e}"));
        assert!(
            test_log.contains("Executing tests from //pkg:good_test"),
            "{what}"
        );
        assert_healthy_log(&log);
        ok(&ws.forge(&both));
        let run = ws.forge(&both);
        ok(&run);
        assert_eq!(
            run.stdout.matches("(cached) PASSED").count(),
            2,
            "{what}: {}",
            run.both()
        );
    }
}

/// A test that fails while `marker` exists: the file is outside the workspace and no input,
/// so the test's cache key does not change with it (the test runs unsandboxed to see it).
fn verdict_workspace(marker: &Path) -> Workspace {
    let ws = Workspace::fixture("hardening_trust");
    ws.write(
        "pkg/verdict.sh",
        &format!(
            "#!/bin/sh\nif [ -e '{}' ]; then echo failing; exit 1; fi\necho passing\n",
            marker.display()
        ),
    );
    ws
}

fn verdict(run: &Run) -> String {
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("//pkg:verdict_test "))
        .unwrap_or_else(|| panic!("no summary line in {}", run.both()));
    let rest = line["//pkg:verdict_test".len()..].trim();
    rest.rsplit_once(" in ").map_or(rest, |(s, _)| s).to_owned()
}

fn last_verdict_wins(extra: &[&str]) {
    let temp = tempfile::tempdir().unwrap();
    let marker = temp.path().join("fail");
    let ws = verdict_workspace(&marker);
    let test = |more: &[&str]| {
        let mut args = vec!["test", "//pkg:verdict_test", "--spawn_strategy=local"];
        args.extend(extra);
        args.extend(more);
        ws.forge(&args)
    };
    let run = test(&[]);
    assert_eq!(
        (run.code, verdict(&run)),
        (0, "PASSED".into()),
        "{}",
        run.both()
    );
    let run = test(&[]);
    assert_eq!(verdict(&run), "(cached) PASSED");

    fs::write(&marker, "").unwrap();
    let run = test(&["--nocache_test_results"]);
    assert_eq!(
        (run.code, verdict(&run)),
        (3, "FAILED".into()),
        "{}",
        run.both()
    );
    // The failure is the latest verdict for these inputs: the older pass is not reused.
    let run = test(&[]);
    assert_eq!(
        (run.code, verdict(&run)),
        (3, "FAILED".into()),
        "{}",
        run.both()
    );

    fs::remove_file(&marker).unwrap();
    let run = test(&[]);
    assert_eq!(
        (run.code, verdict(&run)),
        (0, "PASSED".into()),
        "{}",
        run.both()
    );
    let run = test(&[]);
    assert_eq!(verdict(&run), "(cached) PASSED");
}

#[test]
fn a_failing_test_takes_back_its_cached_pass() {
    last_verdict_wins(&[]);
}

#[test]
fn a_local_failure_keeps_a_disk_cache_pass_from_being_reused() {
    let disk = tempfile::tempdir().unwrap();
    let flag = format!("--disk_cache={}", disk.path().display());
    last_verdict_wins(&[&flag]);
}

/// Kills the given processes when dropped, so a failing test leaves nothing sleeping.
struct Reap(Vec<u32>);

impl Drop for Reap {
    fn drop(&mut self) {
        for pid in &self.0 {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn gone(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_test_left_running_by_a_killed_forge_test_is_killed_by_the_next_command() {
    let ws = Workspace::fixture("hardening_trust");
    // A number no other test uses, so only this test's sleeper matches.
    ws.write("pkg/sleepy.sh", "#!/bin/sh\nsleep 31415926\n");
    let mut forge = ws
        .command(&["test", "//pkg:sleepy_test"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = forge.id();
    let mut sleepers = Vec::new();
    wait_until("the test to start", Duration::from_secs(60), || {
        sleepers = processes_with("sleep 31415926")
            .into_iter()
            .filter(|p| descends_from(*p, pid))
            .collect();
        !sleepers.is_empty()
    });
    let _reap = Reap(sleepers.clone());
    // Killed once forge noted the test in its journal of running commands (a forge killed
    // between starting a command and noting it cannot be helped).
    wait_until("forge to note the test", Duration::from_secs(30), || {
        walkdir::WalkDir::new(ws.cache_dir())
            .into_iter()
            .flatten()
            .any(|e| e.path().ends_with("cache/running") && e.metadata().is_ok_and(|m| m.len() > 0))
    });
    forge.kill().unwrap();
    forge.wait().unwrap();
    assert!(
        sleepers.iter().all(|p| !gone(*p)),
        "the test outlives the killed forge"
    );
    ok(&ws.forge(&["build", "//pkg:good"]));
    wait_until("the stray test to die", Duration::from_secs(10), || {
        sleepers.iter().all(|p| gone(*p))
    });
}

//! Tests of `execute` as a whole: actions and a fake or real runner in, files on disk and
//! `ExecResult`s out, over real temporary directories.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::*;
use crate::core::{ActionKind, Digest, ExecPath};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// "Runs" actions without processes. argv[0] selects a behaviour:
/// `cat OUT IN...` writes the concatenation of the inputs; `first-line OUT IN` the first line;
/// `hold OUT` blocks until the test releases the action (or cancel) then writes "held";
/// `fail CODE [AFTER]` exits CODE, once the action named AFTER has started if given;
/// `none` writes nothing.
///
/// The runner records which actions started and ended, so tests order things by these events
/// rather than by time.
#[derive(Default)]
struct FakeRunner {
    runs: Mutex<Vec<String>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
    events: Mutex<Events>,
    changed: Condvar,
}

#[derive(Default)]
struct Events {
    started: Vec<String>,
    ended: Vec<String>,
    /// `hold` actions the test let go of.
    released: BTreeSet<String>,
    release_all: bool,
    /// Each action's worker thread, as `/proc/self/task/<tid>`.
    threads: BTreeMap<String, PathBuf>,
}

/// How long a test waits for an event before it fails (a deadlock guard, not a speed check).
const EVENT_TIMEOUT: Duration = Duration::from_secs(60);

impl FakeRunner {
    fn runs(&self) -> Vec<String> {
        self.runs.lock().map(|r| r.clone()).unwrap_or_default()
    }
    fn run_set(&self) -> BTreeSet<String> {
        self.runs().into_iter().collect()
    }
    fn clear(&self) {
        if let Ok(mut r) = self.runs.lock() {
            r.clear();
        }
    }

    fn events(&self) -> std::sync::MutexGuard<'_, Events> {
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, change: impl FnOnce(&mut Events)) {
        change(&mut self.events());
        self.changed.notify_all();
    }

    /// Lets the `hold` action `name` finish.
    fn release(&self, name: &str) {
        self.update(|e| {
            e.released.insert(name.to_owned());
        });
    }

    /// Blocks until `done` holds. On timeout every held action is let go (so the build under
    /// test can end) and the test fails naming `what`.
    fn wait_for(&self, what: &str, mut done: impl FnMut(&Events) -> bool) {
        let deadline = std::time::Instant::now() + EVENT_TIMEOUT;
        let mut events = self.events();
        while !done(&events) {
            let now = std::time::Instant::now();
            if now >= deadline {
                events.release_all = true;
                drop(events);
                self.changed.notify_all();
                panic!("timed out waiting for {what}");
            }
            events = match self.changed.wait_timeout(events, deadline - now) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }

    /// Blocks until the action `name` is released, or the build is cancelled (`true`).
    fn hold(&self, name: &str, cancel: &Cancel) -> bool {
        let mut events = self.events();
        loop {
            if events.release_all || events.released.contains(name) {
                return false;
            }
            if cancel.is_cancelled() {
                return true;
            }
            // Cancel is a flag without a notification: look at it now and then.
            events = match self.changed.wait_timeout(events, Duration::from_millis(5)) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }
}

/// Lets every held action go when dropped, so that a failing assertion ends the build under
/// test instead of leaving it (and the test) waiting.
struct LetGoOnDrop<'a>(&'a FakeRunner);

impl Drop for LetGoOnDrop<'_> {
    fn drop(&mut self) {
        self.0.update(|e| e.release_all = true);
    }
}

impl Runner for FakeRunner {
    fn run(&self, spawn: &Spawn, cancel: &Cancel) -> std::io::Result<SpawnOutcome> {
        let name = spawn.action.owner.name.clone();
        if let Ok(mut r) = self.runs.lock() {
            r.push(name.clone());
        }
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        let thread = fs::read_link("/proc/thread-self").unwrap_or_default();
        self.update(|e| {
            e.started.push(name.clone());
            e.threads
                .insert(name.clone(), Path::new("/proc").join(thread));
        });
        let result = self.fake_run(spawn, cancel);
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.update(|e| e.ended.push(name));
        result
    }
}

impl FakeRunner {
    fn fake_run(&self, spawn: &Spawn, cancel: &Cancel) -> std::io::Result<SpawnOutcome> {
        let at = |p: &String| spawn.cwd.join(p);
        let ok = |output: &[u8]| SpawnOutcome {
            status: SpawnStatus::Exited(0),
            output: output.to_vec(),
        };
        let argv = spawn.argv;
        match argv.first().map(String::as_str) {
            Some("cat") => {
                let mut data = Vec::new();
                for input in &argv[2..] {
                    data.extend(fs::read(at(input))?);
                }
                fs::write(at(&argv[1]), data)?;
                Ok(ok(b""))
            }
            Some("first-line") => {
                let text = fs::read_to_string(at(&argv[2]))?;
                fs::write(at(&argv[1]), text.lines().next().unwrap_or(""))?;
                Ok(ok(b""))
            }
            Some("hold") => {
                if self.hold(&spawn.action.owner.name, cancel) {
                    return Ok(SpawnOutcome {
                        status: SpawnStatus::Signaled(9),
                        output: Vec::new(),
                    });
                }
                fs::write(at(&argv[1]), "held")?;
                Ok(ok(b""))
            }
            Some("fail") => {
                if let Some(after) = argv.get(2) {
                    self.wait_for(&format!("{after} to start"), |e| e.started.contains(after));
                }
                Ok(SpawnOutcome {
                    status: SpawnStatus::Exited(argv[1].parse().map_err(std::io::Error::other)?),
                    output: b"it failed\n".to_vec(),
                })
            }
            Some("none") => Ok(ok(b"")),
            // `tmp OUT [LEAVE]`: writes what TMPDIR holds to OUT, then leaves a file there if asked.
            Some("tmp") => {
                let tmp = std::path::Path::new(&spawn.env["TMPDIR"]);
                let mut names: Vec<String> = fs::read_dir(tmp)?
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                fs::write(
                    at(&argv[1]),
                    format!("{}|{}", tmp.display(), names.join(",")),
                )?;
                if argv.get(2).is_some() {
                    fs::write(tmp.join("litter"), "")?;
                }
                Ok(ok(b""))
            }
            _ => Err(std::io::Error::other("unknown fake command")),
        }
    }
}

fn label(name: &str) -> crate::core::Label {
    crate::core::Label {
        repo: String::new(),
        package: "pkg".into(),
        name: name.into(),
    }
}

fn run_action(name: &str, argv: &[&str], inputs: &[&str], outputs: &[&str]) -> Action {
    let mut inputs: Vec<ExecPath> = inputs.iter().map(|s| ExecPath::new(*s)).collect();
    inputs.sort();
    Action {
        owner: label(name),
        mnemonic: "Genrule".into(),
        progress_message: format!("Executing genrule //pkg:{name}"),
        kind: ActionKind::Run {
            argv: argv.iter().map(|s| s.to_string()).collect(),
        },
        inputs: inputs.into(),
        outputs: outputs.iter().map(|s| ExecPath::new(*s)).collect(),
        env: BTreeMap::new(),
        requirements: vec![],
        directory_outputs: vec![],
        scratch_dirs: vec![],
        discovery: None,
    }
}

/// `cat OUT INPUTS...` as an action.
fn cat(name: &str, inputs: &[&str], out: &str) -> Action {
    let mut argv = vec!["cat", out];
    argv.extend(inputs);
    run_action(name, &argv, inputs, &[out])
}

struct Fixture {
    _dir: tempfile::TempDir,
    config: ExecConfig,
}

impl Fixture {
    fn new() -> std::io::Result<Fixture> {
        let dir = tempfile::tempdir()?;
        let config = ExecConfig {
            workspace_root: None,
            exec_root: dir.path().join("exec"),
            cache_dir: dir.path().join("base/cache"),
            disk_cache: None,
            jobs: 1,
            keep_going: false,
            action_env: BTreeMap::new(),
            remote: None,
            remote_files: None,
        };
        fs::create_dir_all(&config.exec_root)?;
        Ok(Fixture { _dir: dir, config })
    }

    fn path(&self, p: &str) -> PathBuf {
        self.config.exec_root.join(p)
    }

    fn write(&self, p: &str, content: &str) -> std::io::Result<()> {
        let path = self.path(p);
        if let Some(d) = path.parent() {
            fs::create_dir_all(d)?;
        }
        fs::write(path, content)
    }

    /// Replaces a (read-only) output on disk.
    fn overwrite(&self, p: &str, content: &str) -> std::io::Result<()> {
        let path = self.path(p);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644))?;
        fs::write(path, content)
    }

    fn read(&self, p: &str) -> std::io::Result<String> {
        fs::read_to_string(self.path(p))
    }

    fn build(
        &self,
        actions: &[Action],
        wanted: &[&str],
        runner: &dyn Runner,
    ) -> Result<ExecResult, ExecError> {
        let wanted: Vec<ExecPath> = wanted.iter().map(|s| ExecPath::new(*s)).collect();
        let never = AtomicBool::new(false);
        execute_interruptible(actions, &wanted, &self.config, runner, &NoProgress, &never)
    }
}

fn counts(r: &ExecResult) -> (usize, usize, usize) {
    (r.executed, r.cache_hits, r.up_to_date)
}

/// a.txt → A → B, plus an action nothing needs.
fn chain() -> Vec<Action> {
    vec![
        cat("unused", &["pkg/a.txt"], "out/unused"),
        cat("a", &["pkg/a.txt"], "out/a"),
        cat("b", &["out/a", "pkg/b.txt"], "out/b"),
    ]
}

#[test]
fn runs_only_needed_actions_in_dependency_order() -> TestResult {
    let f = Fixture::new()?;
    f.write("pkg/a.txt", "A")?;
    f.write("pkg/b.txt", "B")?;
    let runner = FakeRunner::default();
    let r = f.build(&chain(), &["out/b"], &runner)?;
    assert_eq!(counts(&r), (2, 0, 0));
    assert!(r.failures.is_empty() && !r.interrupted);
    assert_eq!(runner.runs(), vec!["a", "b"]);
    assert_eq!(f.read("out/b")?, "AB");
    assert!(!f.path("out/unused").exists());
    Ok(())
}

#[test]
fn runs_up_to_jobs_actions_at_once() -> TestResult {
    let mut f = Fixture::new()?;
    f.config.jobs = 3;
    let actions: Vec<Action> = (0..6)
        .map(|i| {
            let out = format!("out/s{i}");
            run_action(&format!("s{i}"), &["hold", &out], &[], &[&out])
        })
        .collect();
    let wanted: Vec<ExecPath> = actions.iter().map(|a| a.outputs[0].clone()).collect();
    let wanted: Vec<&str> = wanted.iter().map(ExecPath::as_str).collect();
    let runner = FakeRunner::default();
    let r = std::thread::scope(|s| {
        let build = s.spawn(|| f.build(&actions, &wanted, &runner));
        let _let_go = LetGoOnDrop(&runner);
        // Three actions run at once: all three have started while none has been let go.
        runner.wait_for("three actions running at once", |e| e.started.len() == 3);
        assert!(runner.events().ended.is_empty());
        // Each one let go makes room for exactly one more.
        for i in 0..6 {
            let name = runner.events().started[i].clone();
            runner.release(&name);
            let started = (i + 4).min(6);
            runner.wait_for(&format!("{name} to end"), |e| {
                e.ended.len() == i + 1 && e.started.len() >= started
            });
            assert_eq!(runner.events().started.len(), started);
        }
        build.join().expect("the build thread ends")
    })?;
    assert_eq!(r.executed, 6);
    assert_eq!(runner.max_running.load(Ordering::SeqCst), 3);
    assert!((0..6).all(|i| f.read(&format!("out/s{i}")).is_ok_and(|t| t == "held")));
    Ok(())
}

/// Holds each action named in `slow` in `finished` (after its command, while its worker
/// records it) until the test releases `<name>-recorded`.
struct SlowRecording<'a> {
    runner: &'a FakeRunner,
    slow: &'a [&'a str],
}

impl Progress for SlowRecording<'_> {
    fn started(&self, _: &Action) {}
    fn finished(&self, action: &Action, _: &ActionOutcome<'_>) {
        let name = &action.owner.name;
        if self.slow.contains(&name.as_str()) {
            self.runner
                .hold(&format!("{name}-recorded"), &Cancel::new());
        }
    }
}

#[test]
fn the_next_command_starts_while_an_ended_one_is_recorded() -> TestResult {
    let mut f = Fixture::new()?;
    f.config.jobs = 2;
    let actions: Vec<Action> = (0..4)
        .map(|i| {
            let out = format!("out/s{i}");
            run_action(&format!("s{i}"), &["hold", &out], &[], &[&out])
        })
        .collect();
    let wanted: Vec<ExecPath> = actions.iter().map(|a| a.outputs[0].clone()).collect();
    let runner = FakeRunner::default();
    let progress = SlowRecording {
        runner: &runner,
        slow: &["s0", "s1"],
    };
    let never = AtomicBool::new(false);
    let r = std::thread::scope(|s| {
        let build = s.spawn(|| {
            execute_interruptible(&actions, &wanted, &f.config, &runner, &progress, &never)
        });
        let _let_go = LetGoOnDrop(&runner);
        runner.wait_for("two commands running", |e| e.started.len() == 2);
        // s0's command ends; its worker is held recording it: s2's command starts anyway,
        // next to s1's still running.
        runner.release("s0");
        runner.wait_for("s2 to start while s0 is recorded", |e| e.started.len() == 3);
        assert_eq!(runner.running.load(Ordering::SeqCst), 2);
        // And the same for s1: two workers recording, two commands running.
        runner.release("s1");
        runner.wait_for("s3 to start while s0 and s1 are recorded", |e| {
            e.started.len() == 4
        });
        assert_eq!(runner.running.load(Ordering::SeqCst), 2);
        assert_eq!(runner.events().ended, ["s0", "s1"]);
        runner.update(|e| e.release_all = true);
        build.join().expect("the build thread ends")
    })?;
    assert_eq!(r.executed, 4);
    // Never more commands at once than jobs.
    assert_eq!(runner.max_running.load(Ordering::SeqCst), 2);
    assert!((0..4).all(|i| f.read(&format!("out/s{i}")).is_ok_and(|t| t == "held")));
    Ok(())
}

/// Whether the thread at `/proc/self/task/<tid>` is asleep (blocked), from its stat.
fn is_asleep(thread: &Path) -> bool {
    fs::read_to_string(thread.join("stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('S'))
    })
}

#[test]
fn without_keep_going_nothing_new_starts_after_a_failure() -> TestResult {
    let mut f = Fixture::new()?;
    let actions = vec![
        run_action("bad", &["fail", "7"], &[], &["out/bad"]),
        run_action("slow", &["hold", "out/slow"], &[], &["out/slow"]),
        run_action("later", &["none"], &[], &["out/later"]),
    ];
    let wanted = ["out/bad", "out/slow", "out/later"];
    let runner = FakeRunner::default();
    // Nothing should run after `bad`; if `slow` did, it must not wait for the test.
    runner.update(|e| e.release_all = true);
    let r = f.build(&actions, &wanted, &runner)?;
    assert_eq!(runner.runs(), vec!["bad"]);
    assert_eq!(r.executed, 1);
    assert_eq!(r.failures.len(), 1);
    let failure = &r.failures[0];
    assert_eq!(failure.owner, label("bad"));
    assert_eq!(failure.mnemonic, "Genrule");
    assert_eq!(failure.command, vec!["fail", "7"]);
    assert_eq!(failure.exit, "exit 7");
    assert_eq!(failure.output, "it failed\n");

    // With two jobs, the action already running when the failure happens still finishes.
    // `bad` fails once `slow` has started; `slow` is let go only once `bad`'s worker has
    // handled the failure and gone to sleep (where it would instead have taken `later`).
    f.config.jobs = 2;
    let mut actions = actions;
    actions[0] = run_action("bad", &["fail", "7", "slow"], &[], &["out/bad"]);
    let runner = FakeRunner::default();
    let r = std::thread::scope(|s| {
        let build = s.spawn(|| f.build(&actions, &wanted, &runner));
        let _let_go = LetGoOnDrop(&runner);
        runner.wait_for("bad to fail", |e| e.ended.iter().any(|n| n == "bad"));
        let bad_worker = runner.events().threads["bad"].clone();
        // Asleep twice in a row: parked on the scheduler's condition variable, not passing
        // through a briefly contended lock.
        let mut asleep = 0;
        let deadline = Instant::now() + EVENT_TIMEOUT;
        while asleep < 2 {
            assert!(
                Instant::now() < deadline,
                "bad's worker never went to sleep"
            );
            asleep = if is_asleep(&bad_worker) {
                asleep + 1
            } else {
                0
            };
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(runner.events().ended.iter().all(|n| n == "bad"));
        runner.release("slow");
        build.join().expect("the build thread ends")
    })?;
    assert_eq!(runner.run_set(), ["bad", "slow"].map(String::from).into());
    assert_eq!(f.read("out/slow")?, "held");
    assert!(!f.path("out/later").exists());
    assert_eq!(r.failures.len(), 1);
    Ok(())
}

#[test]
fn keep_going_builds_everything_not_depending_on_a_failure_whatever_the_jobs() -> TestResult {
    let actions = vec![
        run_action("bad1", &["fail", "1"], &[], &["out/bad1"]),
        cat("after_bad", &["out/bad1"], "out/after_bad"),
        cat("ok1", &["pkg/a.txt"], "out/ok1"),
        run_action("bad2", &["none"], &[], &["out/bad2"]),
        cat("ok2", &["out/ok1"], "out/ok2"),
        cat("after_both", &["out/ok2", "out/bad2"], "out/after_both"),
    ];
    let wanted = ["out/after_bad", "out/ok2", "out/after_both"];
    let mut results = Vec::new();
    for jobs in [1, 4] {
        let mut f = Fixture::new()?;
        f.config.jobs = jobs;
        f.config.keep_going = true;
        f.write("pkg/a.txt", "A")?;
        let runner = FakeRunner::default();
        let r = f.build(&actions, &wanted, &runner)?;
        assert_eq!(
            runner.run_set(),
            ["bad1", "ok1", "bad2", "ok2"].map(String::from).into()
        );
        assert_eq!(f.read("out/ok2")?, "A");
        results.push(r);
    }
    assert_eq!(results[0], results[1]);
    let r = &results[0];
    assert_eq!(r.executed, 4);
    let owners: Vec<String> = r.failures.iter().map(|f| f.owner.to_string()).collect();
    assert_eq!(owners, vec!["//pkg:bad1", "//pkg:bad2"]);
    assert_eq!(
        r.failures[1].exit,
        "declared output 'out/bad2' was not created"
    );
    Ok(())
}

#[test]
fn conflicting_outputs_are_reported_before_anything_runs() -> TestResult {
    let f = Fixture::new()?;
    let actions = vec![
        run_action("one", &["none"], &[], &["out/x"]),
        run_action("two", &["none"], &[], &["out/x"]),
    ];
    let runner = FakeRunner::default();
    let err = f.build(&actions, &["out/x"], &runner);
    assert_eq!(
        err,
        Err(ExecError::DuplicateOutput {
            path: "out/x".into(),
            first: Box::new(label("one")),
            second: Box::new(label("two")),
        })
    );
    assert!(runner.runs().is_empty());
    Ok(())
}

#[test]
fn missing_source_is_an_action_failure() -> TestResult {
    let f = Fixture::new()?;
    let runner = FakeRunner::default();
    let r = f.build(&[cat("a", &["pkg/nope.txt"], "out/a")], &["out/a"], &runner)?;
    assert_eq!(r.failures.len(), 1);
    assert_eq!(r.failures[0].exit, "missing input file 'pkg/nope.txt'");
    assert_eq!(r.executed, 0);
    assert!(runner.runs().is_empty());
    Ok(())
}

// ---- cache semantics -------------------------------------------------------------------

#[test]
fn a_second_build_with_nothing_changed_runs_nothing() -> TestResult {
    let f = Fixture::new()?;
    f.write("pkg/a.txt", "A")?;
    f.write("pkg/b.txt", "B")?;
    let runner = FakeRunner::default();
    assert_eq!(counts(&f.build(&chain(), &["out/b"], &runner)?), (2, 0, 0));
    assert_eq!(counts(&f.build(&chain(), &["out/b"], &runner)?), (0, 0, 2));
    assert_eq!(runner.runs().len(), 2);
    // Outputs are read-only and executable, like Bazel's (r-xr-xr-x).
    let mode = fs::metadata(f.path("out/b"))?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o555);
    Ok(())
}

#[test]
fn touching_a_source_runs_nothing() -> TestResult {
    let f = Fixture::new()?;
    f.write("pkg/a.txt", "A")?;
    f.write("pkg/b.txt", "B")?;
    let runner = FakeRunner::default();
    f.build(&chain(), &["out/b"], &runner)?;
    let file = fs::File::options().write(true).open(f.path("pkg/a.txt"))?;
    file.set_modified(std::time::SystemTime::now() + Duration::from_secs(5))?;
    drop(file);
    assert_eq!(counts(&f.build(&chain(), &["out/b"], &runner)?), (0, 0, 2));
    Ok(())
}

#[test]
fn an_edit_reruns_exactly_what_is_downstream_with_early_cutoff() -> TestResult {
    let f = Fixture::new()?;
    f.write("pkg/src.txt", "head\nbody1\n")?;
    f.write("pkg/other.txt", "o")?;
    let actions = vec![
        run_action(
            "head",
            &["first-line", "out/head", "pkg/src.txt"],
            &["pkg/src.txt"],
            &["out/head"],
        ),
        cat("uses_head", &["out/head"], "out/uses_head"),
        cat("full", &["pkg/src.txt"], "out/full"),
        cat("other", &["pkg/other.txt"], "out/other"),
    ];
    let wanted = ["out/uses_head", "out/full", "out/other"];
    let runner = FakeRunner::default();
    assert_eq!(counts(&f.build(&actions, &wanted, &runner)?), (4, 0, 0));

    // The first line is unchanged: `head` reruns and produces the same bytes, so `uses_head`
    // (which only depends on it) does not; `full` reruns; `other` is untouched.
    runner.clear();
    f.write("pkg/src.txt", "head\nbody2\n")?;
    let r = f.build(&actions, &wanted, &runner)?;
    assert_eq!(runner.run_set(), ["head", "full"].map(String::from).into());
    assert_eq!(counts(&r), (2, 0, 2));
    assert_eq!(f.read("out/full")?, "head\nbody2\n");

    // A change that reaches the first line reruns the whole chain below it.
    runner.clear();
    f.write("pkg/src.txt", "HEAD\nbody2\n")?;
    f.build(&actions, &wanted, &runner)?;
    assert_eq!(
        runner.run_set(),
        ["head", "uses_head", "full"].map(String::from).into()
    );
    assert_eq!(f.read("out/uses_head")?, "HEAD");
    Ok(())
}

#[test]
fn reverting_a_source_reuses_the_earlier_results() -> TestResult {
    let f = Fixture::new()?;
    f.write("pkg/a.txt", "v1")?;
    f.write("pkg/b.txt", "B")?;
    let runner = FakeRunner::default();
    f.build(&chain(), &["out/b"], &runner)?;
    f.write("pkg/a.txt", "v2")?;
    assert_eq!(counts(&f.build(&chain(), &["out/b"], &runner)?), (2, 0, 0));
    assert_eq!(f.read("out/b")?, "v2B");
    f.write("pkg/a.txt", "v1")?;
    assert_eq!(counts(&f.build(&chain(), &["out/b"], &runner)?), (0, 2, 0));
    assert_eq!(f.read("out/b")?, "v1B");
    assert_eq!(runner.runs().len(), 4);
    Ok(())
}

#[test]
fn deleted_or_modified_outputs_are_restored_from_the_cas() -> TestResult {
    let f = Fixture::new()?;
    f.write("pkg/a.txt", "A")?;
    f.write("pkg/b.txt", "B")?;
    let runner = FakeRunner::default();
    f.build(&chain(), &["out/b"], &runner)?;
    fs::remove_file(f.path("out/b"))?;
    // Replaced (as most editors save): restored from the CAS.
    fs::remove_file(f.path("out/a"))?;
    f.write("out/a", "replaced by hand")?;
    let r = f.build(&chain(), &["out/b"], &runner)?;
    assert_eq!(counts(&r), (0, 2, 0));
    assert_eq!(f.read("out/a")?, "A");
    assert_eq!(f.read("out/b")?, "AB");
    assert_eq!(
        fs::metadata(f.path("out/a"))?.permissions().mode() & 0o777,
        0o555
    );
    assert_eq!(runner.runs().len(), 2);
    // Edited in place: a restored output is a copy of its blob, so the blob is intact.
    f.overwrite("out/a", "edited by hand")?;
    let r = f.build(&chain(), &["out/b"], &runner)?;
    assert_eq!(counts(&r), (0, 1, 1));
    assert_eq!(f.read("out/a")?, "A");
    assert_eq!(runner.runs().len(), 2);
    // Only a changed mode is noticed too.
    fs::set_permissions(f.path("out/a"), fs::Permissions::from_mode(0o644))?;
    assert_eq!(counts(&f.build(&chain(), &["out/b"], &runner)?), (0, 1, 1));
    assert_eq!(
        fs::metadata(f.path("out/a"))?.permissions().mode() & 0o777,
        0o555
    );
    Ok(())
}

#[test]
fn every_command_gets_an_empty_tmpdir() -> TestResult {
    let mut f = Fixture::new()?;
    f.config.jobs = 1;
    let actions: Vec<Action> = (0..4)
        .map(|i| {
            let out = format!("out/t{i}");
            let leave: &[&str] = if i % 2 == 0 { &["leave"] } else { &[] };
            let argv: Vec<&str> = ["tmp", out.as_str()]
                .into_iter()
                .chain(leave.iter().copied())
                .collect();
            run_action(&format!("t{i}"), &argv, &[], &[&out])
        })
        .collect();
    let wanted: Vec<ExecPath> = actions.iter().map(|a| a.outputs[0].clone()).collect();
    let wanted: Vec<&str> = wanted.iter().map(ExecPath::as_str).collect();
    f.build(&actions, &wanted, &FakeRunner::default())?;
    let mut dirs = std::collections::BTreeSet::new();
    for i in 0..4 {
        let seen = f.read(&format!("out/t{i}"))?;
        let (dir, names) = seen.split_once('|').unwrap();
        assert_eq!(names, "", "t{i} saw {names}");
        dirs.insert(dir.to_owned());
    }
    // Clean directories are reused; littered ones are not.
    assert!(dirs.len() < 4, "{dirs:?}");
    Ok(())
}

#[test]
fn an_executed_output_edited_in_place_is_restored_from_its_intact_blob() -> TestResult {
    let f = Fixture::new()?;
    f.write("pkg/a.txt", "A")?;
    let actions = vec![cat("a", &["pkg/a.txt"], "out/a")];
    let runner = FakeRunner::default();
    f.build(&actions, &["out/a"], &runner)?;
    // The blob is a copy of the executed output, so an edit in place leaves it intact: the
    // output is restored from it, and the action does not run again.
    f.overwrite("out/a", "edited by hand")?;
    let r = f.build(&actions, &["out/a"], &runner)?;
    assert_eq!(counts(&r).0, 0, "{:?}", counts(&r));
    assert_eq!(f.read("out/a")?, "A");
    Ok(())
}

#[test]
fn a_corrupt_cas_blob_is_dropped_and_the_action_reruns() -> TestResult {
    let f = Fixture::new()?;
    f.write("pkg/a.txt", "A")?;
    let actions = vec![cat("a", &["pkg/a.txt"], "out/a")];
    let runner = FakeRunner::default();
    f.build(&actions, &["out/a"], &runner)?;
    let hex = Digest::of_bytes(b"A").to_hex();
    let blob = f
        .config
        .cache_dir
        .join("cas")
        .join(&hex[..2])
        .join(&hex[2..]);
    fs::set_permissions(&blob, fs::Permissions::from_mode(0o644))?;
    fs::write(&blob, "X")?;
    fs::remove_file(f.path("out/a"))?;
    let r = f.build(&actions, &["out/a"], &runner)?;
    assert_eq!(counts(&r), (1, 0, 0));
    assert_eq!(f.read("out/a")?, "A");
    // The rerun stored a good blob again.
    assert_eq!(fs::read(&blob)?, b"A");
    Ok(())
}

#[test]
fn a_disk_cache_is_shared_between_workspaces() -> TestResult {
    let disk = tempfile::tempdir()?;
    let mut one = Fixture::new()?;
    let mut two = Fixture::new()?;
    one.config.disk_cache = Some(disk.path().to_path_buf());
    two.config.disk_cache = Some(disk.path().to_path_buf());
    for f in [&one, &two] {
        f.write("pkg/a.txt", "A")?;
        f.write("pkg/b.txt", "B")?;
    }
    let runner = FakeRunner::default();
    assert_eq!(
        counts(&one.build(&chain(), &["out/b"], &runner)?),
        (2, 0, 0)
    );
    assert_eq!(
        counts(&two.build(&chain(), &["out/b"], &runner)?),
        (0, 2, 0)
    );
    assert_eq!(two.read("out/b")?, "AB");
    // The hit was copied into the second workspace's own cache.
    two.config.disk_cache = None;
    fs::remove_file(two.path("out/b"))?;
    assert_eq!(
        counts(&two.build(&chain(), &["out/b"], &runner)?),
        (0, 1, 1)
    );
    assert_eq!(runner.runs().len(), 2);
    Ok(())
}

#[test]
fn no_cache_actions_always_run() -> TestResult {
    let f = Fixture::new()?;
    f.write("pkg/a.txt", "A")?;
    let mut a = cat("a", &["pkg/a.txt"], "out/a");
    a.requirements = vec!["no-cache".into()];
    let actions = vec![a, cat("b", &["out/a"], "out/b")];
    let runner = FakeRunner::default();
    assert_eq!(counts(&f.build(&actions, &["out/b"], &runner)?), (2, 0, 0));
    // `a` runs again; its output is the same, so `b` is up to date.
    assert_eq!(counts(&f.build(&actions, &["out/b"], &runner)?), (1, 0, 1));
    assert_eq!(runner.runs(), vec!["a", "b", "a"]);
    Ok(())
}

#[test]
fn action_env_changes_the_key_of_commands_only() -> TestResult {
    let mut f = Fixture::new()?;
    f.write("pkg/a.txt", "A")?;
    let write = Action {
        kind: ActionKind::Write {
            content: b"w".to_vec(),
            executable: false,
        },
        ..run_action("w", &[], &[], &["out/w"])
    };
    let actions = vec![cat("a", &["pkg/a.txt"], "out/a"), write];
    let runner = FakeRunner::default();
    assert_eq!(
        counts(&f.build(&actions, &["out/a", "out/w"], &runner)?),
        (2, 0, 0)
    );
    f.config.action_env.insert("FOO".into(), "1".into());
    assert_eq!(
        counts(&f.build(&actions, &["out/a", "out/w"], &runner)?),
        (1, 0, 1)
    );
    Ok(())
}

// ---- in-process kinds --------------------------------------------------------------------

#[test]
fn in_process_kinds_run_without_spawning_and_are_cached() -> TestResult {
    let f = Fixture::new()?;
    f.write("pkg/t.tpl", "Hello {NAME}, {NAME}!")?;
    let base = |name: &str, out: &str| run_action(name, &[], &[], &[out]);
    let actions = vec![
        Action {
            kind: ActionKind::Write {
                content: b"#!/bin/sh\necho hi\n".to_vec(),
                executable: true,
            },
            ..base("w", "out/w.sh")
        },
        Action {
            kind: ActionKind::ExpandTemplate {
                template: "pkg/t.tpl".into(),
                substitutions: vec![("{NAME}".into(), "forge".into())],
                executable: false,
            },
            inputs: vec!["pkg/t.tpl".into()].into(),
            ..base("t", "out/t.txt")
        },
        Action {
            // The target is generated: the dependency comes from `target` alone.
            kind: ActionKind::Symlink {
                target: "out/w.sh".into(),
                executable: true,
            },
            ..base("s", "out/s.sh")
        },
    ];
    let wanted = ["out/t.txt", "out/s.sh"];
    let runner = FakeRunner::default();
    assert_eq!(counts(&f.build(&actions, &wanted, &runner)?), (3, 0, 0));
    assert!(runner.runs().is_empty());
    assert_eq!(f.read("out/t.txt")?, "Hello forge, forge!");
    assert_eq!(f.read("out/s.sh")?, "#!/bin/sh\necho hi\n");
    assert!(
        !fs::symlink_metadata(f.path("out/s.sh"))?
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        fs::metadata(f.path("out/w.sh"))?.permissions().mode() & 0o777,
        0o555
    );
    assert_eq!(
        fs::metadata(f.path("out/s.sh"))?.permissions().mode() & 0o777,
        0o555
    );
    assert_eq!(
        fs::metadata(f.path("out/t.txt"))?.permissions().mode() & 0o777,
        0o444
    );

    assert_eq!(counts(&f.build(&actions, &wanted, &runner)?), (0, 0, 3));
    fs::remove_file(f.path("out/t.txt"))?;
    assert_eq!(counts(&f.build(&actions, &wanted, &runner)?), (0, 1, 2));
    f.write("pkg/t.tpl", "Bye {NAME}")?;
    assert_eq!(counts(&f.build(&actions, &wanted, &runner)?), (1, 0, 2));
    assert_eq!(f.read("out/t.txt")?, "Bye forge");
    Ok(())
}

// ---- real processes ----------------------------------------------------------------------

fn sh(name: &str, script: &str, inputs: &[&str], outputs: &[&str]) -> Action {
    run_action(name, &["/bin/sh", "-c", script], inputs, outputs)
}

#[test]
fn commands_get_exactly_the_fixed_environment() -> TestResult {
    let mut f = Fixture::new()?;
    f.config
        .action_env
        .insert("FROM_FLAG".into(), "flag".into());
    f.config.action_env.insert("SHARED".into(), "flag".into());
    let mut a = sh(
        "env",
        "mkdir -p out && env > out/env && test -d \"$TMPDIR\" && touch \"$TMPDIR/x\" && \
         echo \"$TMPDIR\" > out/tmpdir && pwd > out/pwd",
        &[],
        &["out/env", "out/tmpdir", "out/pwd"],
    );
    a.env.insert("FROM_RULE".into(), "rule".into());
    a.env.insert("SHARED".into(), "rule".into());
    let r = f.build(&[a], &["out/env"], &LocalRunner)?;
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    let env: BTreeMap<String, String> = f
        .read("out/env")?
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .filter(|(k, _)| !["PWD", "SHLVL", "_", "OLDPWD"].contains(&k.as_str()))
        .collect();
    let tmpdir = f.read("out/tmpdir")?.trim().to_owned();
    let expected: BTreeMap<String, String> = [
        ("PATH", "/usr/local/bin:/usr/bin:/bin"),
        ("LANG", "C"),
        ("TZ", "UTC"),
        ("TMPDIR", tmpdir.as_str()),
        ("FROM_FLAG", "flag"),
        ("FROM_RULE", "rule"),
        ("SHARED", "rule"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(env, expected);
    assert!(!Path::new(&tmpdir).exists(), "TMPDIR is removed afterwards");
    assert_eq!(
        Path::new(f.read("out/pwd")?.trim()).canonicalize()?,
        f.config.exec_root.canonicalize()?
    );
    Ok(())
}

#[test]
fn old_outputs_are_deleted_and_parent_dirs_created_before_running() -> TestResult {
    let f = Fixture::new()?;
    f.write("pkg/a.txt", "1")?;
    // Fails if the old output is still there; writes into a directory it does not create.
    let a = sh(
        "a",
        "test ! -e out/deep/a && cat pkg/a.txt > out/deep/a && chmod +x out/deep/a",
        &["pkg/a.txt"],
        &["out/deep/a"],
    );
    let actions = vec![a];
    let r = f.build(&actions, &["out/deep/a"], &LocalRunner)?;
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert_eq!(
        fs::metadata(f.path("out/deep/a"))?.permissions().mode() & 0o777,
        0o555
    );
    f.write("pkg/a.txt", "2")?;
    let r = f.build(&actions, &["out/deep/a"], &LocalRunner)?;
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert_eq!(f.read("out/deep/a")?, "2");
    Ok(())
}

#[test]
fn real_command_failures_and_exec_path_programs() -> TestResult {
    let mut f = Fixture::new()?;
    f.config.keep_going = true;
    f.write("pkg/tool.sh", "#!/bin/sh\necho \"tool $1\" > \"$2\"\n")?;
    fs::set_permissions(f.path("pkg/tool.sh"), fs::Permissions::from_mode(0o755))?;
    let actions = vec![
        sh(
            "exit",
            "echo to-stdout; echo to-stderr >&2; exit 3",
            &[],
            &["out/x"],
        ),
        sh("signal", "kill -9 $$", &[], &["out/y"]),
        sh("missing", "true", &[], &["out/z"]),
        run_action(
            "tool",
            &["pkg/tool.sh", "arg", "out/t"],
            &["pkg/tool.sh"],
            &["out/t"],
        ),
    ];
    let r = f.build(
        &actions,
        &["out/x", "out/y", "out/z", "out/t"],
        &LocalRunner,
    )?;
    let exits: Vec<&str> = r.failures.iter().map(|f| f.exit.as_str()).collect();
    assert_eq!(
        exits,
        vec![
            "exit 3",
            "killed by signal 9",
            "declared output 'out/z' was not created"
        ]
    );
    assert_eq!(r.failures[0].output, "to-stdout\nto-stderr\n");
    assert_eq!(f.read("out/t")?, "tool arg\n");
    Ok(())
}

/// Whether process `pid` is gone (a zombie counts as gone: it only waits to be reaped).
fn is_gone(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn interruption_kills_running_commands_and_starts_nothing_new() -> TestResult {
    let mut f = Fixture::new()?;
    f.config.jobs = 2;
    let marks = f._dir.path().join("started");
    fs::create_dir_all(&marks)?;
    // Each command notes the pid of its `sleep` once it runs, then would write its output.
    let actions: Vec<Action> = (0..3)
        .map(|i| {
            let out = format!("out/s{i}");
            let mark = marks.join(format!("s{i}"));
            sh(
                &format!("s{i}"),
                &format!(
                    "sleep 100 & echo $! > {0}.tmp && mv {0}.tmp {0}; wait; echo > {out}",
                    mark.display()
                ),
                &[],
                &[&out],
            )
        })
        .collect();
    let wanted: Vec<ExecPath> = actions.iter().map(|a| a.outputs[0].clone()).collect();
    let interrupt = AtomicBool::new(false);
    let sleeper = |i: usize| -> Option<u32> {
        fs::read_to_string(marks.join(format!("s{i}")))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let result = std::thread::scope(|s| {
        s.spawn(|| {
            // Interrupt once both workers' commands are running.
            let deadline = Instant::now() + EVENT_TIMEOUT;
            while (0..3).filter_map(sleeper).count() < 2 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            interrupt.store(true, Ordering::SeqCst);
        });
        execute_interruptible(
            &actions,
            &wanted,
            &f.config,
            &LocalRunner,
            &NoProgress,
            &interrupt,
        )
    })?;
    let pids: Vec<u32> = (0..3).filter_map(sleeper).collect();
    assert_eq!(pids.len(), 2, "two commands ran, the third never started");
    assert!(result.interrupted);
    assert!(result.failures.is_empty(), "{:?}", result.failures);
    assert_eq!(counts(&result), (0, 0, 0));
    // The commands were killed, not waited for: none wrote its output, and their children
    // die with them.
    assert!((0..3).all(|i| !f.path(&format!("out/s{i}")).exists()));
    let deadline = Instant::now() + EVENT_TIMEOUT;
    while !pids.iter().all(|p| is_gone(*p)) {
        assert!(Instant::now() < deadline, "the commands' children live on");
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

// ---- progress --------------------------------------------------------------------------

#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Progress for Recorder {
    fn begin(&self, total: usize) {
        if let Ok(mut v) = self.0.lock() {
            v.push(format!("begin {total}"));
        }
    }
    fn started(&self, a: &Action) {
        if let Ok(mut v) = self.0.lock() {
            v.push(format!("start {}", a.owner.name));
        }
    }
    fn finished(&self, a: &Action, outcome: &ActionOutcome<'_>) {
        let what = match outcome {
            ActionOutcome::Executed { .. } => "executed",
            ActionOutcome::CacheHit => "hit",
            ActionOutcome::UpToDate => "up-to-date",
            ActionOutcome::Failed(_) => "failed",
        };
        if let Ok(mut v) = self.0.lock() {
            v.push(format!("{what} {}", a.owner.name));
        }
    }
}

#[test]
fn progress_sees_starts_only_for_executions_and_every_finish() -> TestResult {
    let f = Fixture::new()?;
    f.write("pkg/a.txt", "A")?;
    f.write("pkg/b.txt", "B")?;
    let wanted = vec![ExecPath::new("out/b")];
    let never = AtomicBool::new(false);
    let runner = FakeRunner::default();
    let rec = Recorder::default();
    execute_interruptible(&chain(), &wanted, &f.config, &runner, &rec, &never)?;
    fs::remove_file(f.path("out/b"))?;
    execute_interruptible(&chain(), &wanted, &f.config, &runner, &rec, &never)?;
    let events = rec.0.lock().map(|v| v.clone()).unwrap_or_default();
    assert_eq!(
        events,
        vec![
            "begin 2",
            "start a",
            "executed a",
            "start b",
            "executed b",
            "begin 2",
            "up-to-date a",
            "hit b"
        ]
    );
    Ok(())
}

// ---- speed -------------------------------------------------------------------------------

/// Waits until every file under `dir` was last changed longer ago than the stat cache's racy
/// margin (50 ms), so that the next saved stat cache trusts them all.
fn wait_out_racy_window(dir: &Path) -> std::io::Result<()> {
    let mut newest = SystemTime::UNIX_EPOCH;
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.map_err(std::io::Error::other)?;
        let m = entry.metadata().map_err(std::io::Error::other)?;
        let changed = SystemTime::UNIX_EPOCH
            + Duration::new(m.ctime().max(0) as u64, m.ctime_nsec().max(0) as u32);
        newest = newest.max(changed.max(m.modified()?));
    }
    let trusted_from = newest + Duration::from_millis(60);
    while SystemTime::now() < trusted_from {
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

#[test]
fn a_no_op_over_5000_actions_is_fast() -> TestResult {
    let mut f = Fixture::new()?;
    f.config.jobs = 2;
    let n = 5000;
    let mut actions = Vec::with_capacity(n);
    for i in 0..n {
        let src = format!("pkg/src{}.txt", i % 1000);
        if i < 1000 {
            f.write(&src, &format!("source {i}"))?;
        }
        let out = format!("out/o{i}");
        // Each action reads a source and, after the first 100, an earlier output.
        let a = if i >= 100 {
            let dep = format!("out/o{}", i - 100);
            cat(&format!("a{i}"), &[&src, &dep], &out)
        } else {
            cat(&format!("a{i}"), &[&src], &out)
        };
        actions.push(a);
    }
    let wanted: Vec<&str> = actions.iter().map(|a| a.outputs[0].as_str()).collect();
    let runner = FakeRunner::default();
    let first = f.build(&actions, &wanted, &runner)?;
    assert_eq!(first.executed, n);
    // Files changed within the stat cache's racy window are re-hashed once; let that pass.
    wait_out_racy_window(&f.config.exec_root)?;
    let second = f.build(&actions, &wanted, &runner)?;
    assert_eq!(second.up_to_date, n);
    // The no-op is fast because it does no work but `stat`: it hashes no file (so the stat
    // cache has nothing new to save) and reads neither the action cache nor the CAS.
    let stat_cache = f.config.cache_dir.join("stat_cache");
    let saved = fs::read(&stat_cache)?;
    let saved_ino = fs::metadata(&stat_cache)?.ino();
    let aside = f._dir.path().join("aside");
    fs::create_dir_all(&aside)?;
    for store in ["ac", "cas"] {
        fs::rename(f.config.cache_dir.join(store), aside.join(store))?;
    }
    let started = Instant::now();
    let third = f.build(&actions, &wanted, &runner)?;
    let elapsed = started.elapsed();
    assert_eq!(third.up_to_date, n);
    assert_eq!(runner.runs().len(), n);
    assert_eq!(fs::read(&stat_cache)?, saved, "the no-op hashed files");
    assert_eq!(fs::metadata(&stat_cache)?.ino(), saved_ino);
    for store in ["ac", "cas"] {
        let dir = f.config.cache_dir.join(store);
        assert!(
            !dir.exists() || walkdir::WalkDir::new(&dir).into_iter().count() <= 1,
            "the no-op wrote into {store}"
        );
    }
    // For the curious; not asserted (a machine's speed is no test's business).
    eprintln!("no-op over {n} actions: {elapsed:?}");
    Ok(())
}

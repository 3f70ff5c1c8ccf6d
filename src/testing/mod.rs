//! Running tests: the test targets of a built plan in; each test run — sharded, repeated,
//! retried when flaky — in the sandbox with Bazel's test environment, its passing result
//! cached by everything it depends on, its `test.log` and `test.xml` under
//! `forge-testlogs/<pkg>/<name>/`; the results out, for the summary.
//!
//! A passing result is kept in the local store, the `--disk_cache` and the `--remote_cache`
//! (as an `ActionResult` whose output files are `test.cache_status`, `test.log` and
//! `test.xml`), so a fresh clone elsewhere reports it `(cached) PASSED`; the tiers are
//! `exec::CacheTiers`, the same chain build actions go through, so a disk or remote hit is
//! copied into the local store.

mod xml;

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::core::{Action, ActionKind, ExecPath, TestSpec};
use crate::core::{Digest, Label};
use crate::exec::ingredients::{self, Change, IngredientLog, Ingredients, Record};
use crate::exec::remote_outputs::RemoteFiles;
use crate::exec::runner::{Cancel, EXEC_ROOT_VAR, Runner, Spawn, SpawnStatus};
use crate::exec::{AcEntry, ActionOutcome, CacheTiers, CachedOutput, Progress};
use crate::remote::{KeyKind, RemoteCache};

/// How `forge test` was asked to run tests.
#[derive(Clone, Debug)]
pub struct TestOptions {
    /// `--local_test_jobs`.
    pub jobs: usize,
    /// `--cache_test_results` (default yes).
    pub cache_results: bool,
    /// `--test_timeout`: one value for all, or four for short, moderate, long, eternal.
    pub timeouts: Option<Vec<u64>>,
    /// `--flaky_test_attempts`.
    pub flaky_attempts: Option<u32>,
    /// `--runs_per_test`.
    pub runs_per_test: u32,
    /// `--test_env`.
    pub env: BTreeMap<String, String>,
    /// `--test_arg`.
    pub args: Vec<String>,
    /// `--test_filter`, passed on as `TESTBRIDGE_TEST_ONLY`.
    pub filter: Option<String>,
    /// `--disk_cache`: passing results are kept there too.
    pub disk_cache: Option<PathBuf>,
    /// `--test_output=streamed`: tests run one at a time, their output shown as each ends.
    pub streamed: bool,
    /// The `PATH` tests see (`test_path`); part of each test's key, so a changed `PATH`
    /// runs the tests again, as in Bazel.
    pub path: String,
}

/// The `PATH` of Bazel 4's test environment: `.:` and the client's `PATH`, or the fixed one
/// under `--incompatible_strict_action_env` (off by default in Bazel 4). Build actions always
/// get the fixed one (`exec::FIXED_PATH`); tests take the client's because they run tools of
/// the user's machine (a nested `bazel`, a browser) that a build action must not depend on.
pub fn test_path(client_path: Option<&str>, strict: bool) -> String {
    if strict {
        crate::exec::FIXED_PATH.to_owned()
    } else {
        format!(".:{}", client_path.unwrap_or(""))
    }
}

/// How one test target ended, as the summary reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Passed,
    CachedPassed,
    Flaky,
    Failed,
    Timeout,
    NoStatus,
    /// With `--keep_going`, a test whose program or runfiles could not be built.
    FailedToBuild,
    /// Not built nor run: the target platform cannot build it (`target_compatible_with`).
    Skipped,
}

impl Status {
    pub fn text(self) -> &'static str {
        match self {
            Status::Passed => "PASSED",
            Status::CachedPassed => "(cached) PASSED",
            Status::Flaky => "FLAKY",
            Status::Failed => "FAILED",
            Status::Timeout => "TIMEOUT",
            Status::NoStatus => "NO STATUS",
            Status::FailedToBuild => "FAILED TO BUILD",
            Status::Skipped => "SKIPPED",
        }
    }

    pub fn passed(self) -> bool {
        matches!(self, Status::Passed | Status::CachedPassed | Status::Flaky)
    }
}

/// What `forge test` would do with a test now, for `forge why`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Forecast {
    /// A pass with these inputs is cached: it would be reported `(cached) PASSED`.
    Cached,
    /// It would run, for these reasons: what changed since its last run.
    WouldRun(Vec<Change>),
    /// Its program or a runfile is not there to read: it must be built first.
    NotBuilt,
}

/// One run of a test (one shard, one of `--runs_per_test`).
#[derive(Clone, Debug)]
pub struct RunResult {
    pub status: Status,
    pub duration: Duration,
    /// Absolute path of its `test.log`.
    pub log: PathBuf,
    /// What the test printed (with forge's header), for `--test_output`.
    pub output: String,
    /// Why it ran rather than coming from the cache: what changed since its last run.
    pub changes: Vec<crate::exec::ingredients::Change>,
}

/// One test target's result.
#[derive(Clone, Debug)]
pub struct TestResult {
    pub label: Label,
    pub status: Status,
    pub runs: Vec<RunResult>,
}

impl TestResult {
    /// Whether any run of it was executed (not from the cache).
    pub fn executed(&self) -> bool {
        self.runs.iter().any(|r| r.status != Status::CachedPassed)
    }
}

/// Seconds a test may run: `timeout` if given, else from `size`; `--test_timeout` overrides.
pub fn timeout_of(spec: &TestSpec, overrides: Option<&[u64]>) -> Duration {
    let class = spec.timeout.as_deref().unwrap_or(match spec.size.as_str() {
        "small" => "short",
        "large" => "long",
        "enormous" => "eternal",
        _ => "moderate",
    });
    let index = match class {
        "short" => 0,
        "long" => 2,
        "eternal" => 3,
        _ => 1,
    };
    let defaults = [60, 300, 900, 3600];
    let secs = match overrides {
        Some([one]) => *one,
        Some(four) if four.len() == 4 => four[index],
        _ => defaults[index],
    };
    Duration::from_secs(secs)
}

/// The tests to run, and what they share.
pub struct Tests<'a> {
    pub exec_root: &'a Path,
    pub cache_dir: &'a Path,
    pub workspace_name: &'a str,
    pub runner: &'a dyn Runner,
    pub interrupt: &'a AtomicBool,
    pub options: &'a TestOptions,
    /// `--remote_cache`, consulted after the local stores and filled with passes.
    pub remote: Option<&'a RemoteCache>,
    /// Hears each test run start and end (as a `TestRunner` action), as a build's actions.
    pub progress: &'a dyn Progress,
    /// The files a build without the bytes left remote: a test reading them is keyed by
    /// the digests their producers' results recorded.
    pub remote_files: Option<&'a RemoteFiles>,
}

/// One unit of work: a shard of a run of a test, with everything needed to run it.
struct Unit<'a> {
    label: &'a Label,
    executable: &'a str,
    args: &'a [String],
    spec: &'a TestSpec,
    shard: Option<(u32, u32)>,
    run: Option<(u32, u32)>,
    /// Its testlogs directory, as an exec path.
    dir: String,
}

impl Tests<'_> {
    /// Runs (or finds cached) every test; `targets` are `(label, executable, args, spec)`.
    pub fn run(
        &self,
        targets: &[(Label, String, Vec<String>, TestSpec)],
        on_done: &(dyn Fn(&TestResult) + Sync),
    ) -> Vec<TestResult> {
        // Opened once: each store reads its whole log on first use.
        let tiers = CacheTiers::open(
            KeyKind::Test,
            self.exec_root,
            self.cache_dir,
            self.options.disk_cache.as_deref(),
            self.remote,
        );
        // What each run's key was made of, to say why a test ran again.
        let log_of_runs = IngredientLog::new(&self.cache_dir.join("tests"));
        let units_of: Vec<Vec<Unit>> = targets.iter().map(|t| self.units(t)).collect();
        // Work through the units on `jobs` threads; each target's result when all are done.
        let queue: Mutex<Vec<(usize, usize)>> = Mutex::new(
            units_of
                .iter()
                .enumerate()
                .flat_map(|(t, units)| (0..units.len()).map(move |u| (t, u)))
                .rev()
                .collect(),
        );
        let results: Mutex<Vec<Vec<Option<RunResult>>>> = Mutex::new(
            units_of
                .iter()
                .map(|units| vec![None; units.len()])
                .collect(),
        );
        let finished: Mutex<Vec<Option<TestResult>>> = Mutex::new(vec![None; units_of.len()]);
        // Journaled like build actions: if forge is killed, the next command kills the tests
        // it left running (the build that starts every command reads this journal).
        let cancel =
            Cancel::with_journal(&self.cache_dir.join("running")).unwrap_or_else(|_| Cancel::new());
        let done = AtomicBool::new(false);
        let jobs = if self.options.streamed {
            1
        } else {
            self.options.jobs.max(1)
        };
        self.progress.begin(units_of.iter().map(Vec::len).sum());
        std::thread::scope(|scope| {
            // Ctrl-C: stop what runs, start nothing new; the progress shows running times.
            scope.spawn(|| {
                while !done.load(Ordering::SeqCst) {
                    if self.interrupt.load(Ordering::SeqCst) {
                        cancel.cancel();
                        return;
                    }
                    self.progress.tick();
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
            let workers: Vec<_> = (0..jobs)
                .map(|_| {
                    scope.spawn(|| {
                        loop {
                            let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop();
                            let Some((t, u)) = next else { break };
                            let result = if cancel.is_cancelled() {
                                None
                            } else {
                                Some(self.run_unit(&units_of[t][u], &tiers, &log_of_runs, &cancel))
                            };
                            let mut all = results.lock().unwrap_or_else(|e| e.into_inner());
                            all[t][u] = Some(result.unwrap_or_else(|| RunResult {
                                status: Status::NoStatus,
                                duration: Duration::ZERO,
                                log: PathBuf::new(),
                                output: String::new(),
                                changes: Vec::new(),
                            }));
                            if all[t].iter().all(Option::is_some) {
                                let runs: Vec<RunResult> =
                                    all[t].iter().flatten().cloned().collect();
                                drop(all);
                                let target = TestResult {
                                    label: units_of[t][0].label.clone(),
                                    status: overall(&runs),
                                    runs,
                                };
                                on_done(&target);
                                finished.lock().unwrap_or_else(|e| e.into_inner())[t] =
                                    Some(target);
                            }
                        }
                    })
                })
                .collect();
            for w in workers {
                let _ = w.join();
            }
            done.store(true, Ordering::SeqCst);
        });
        self.progress.end();
        cancel.finish();
        let _ = tiers.save_digests();
        let mut out: Vec<TestResult> = finished
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .into_iter()
            .flatten()
            .collect();
        out.sort_by(|a, b| a.label.cmp(&b.label));
        out
    }

    /// The units of one test target: each shard of each of `--runs_per_test` runs, with its
    /// testlogs directory.
    fn units<'t>(&self, target: &'t (Label, String, Vec<String>, TestSpec)) -> Vec<Unit<'t>> {
        let (label, exe, args, spec) = target;
        let shards = spec.shard_count.max(1);
        let runs = self.options.runs_per_test.max(1);
        let mut units = Vec::new();
        for r in 0..runs {
            for s in 0..shards {
                let shard = (spec.shard_count > 1).then_some((s, shards));
                let run = (runs > 1).then_some((r + 1, runs));
                let mut dir = format!("{}/{}", spec.testlogs_dir, label_dir(label));
                let sub: Vec<String> = [
                    shard.map(|(s, n)| format!("shard_{}_of_{n}", s + 1)),
                    run.map(|(r, n)| format!("run_{r}_of_{n}")),
                ]
                .into_iter()
                .flatten()
                .collect();
                if !sub.is_empty() {
                    dir = format!("{dir}/{}", sub.join("_"));
                }
                units.push(Unit {
                    label,
                    executable: exe,
                    args,
                    spec,
                    shard,
                    run,
                    dir,
                });
            }
        }
        units
    }

    /// The command line of a unit: the program (through bash when it is a bare script, as
    /// Bazel's test wrapper runs it), the rule's `args`, then `--test_arg`s.
    fn argv(&self, unit: &Unit) -> Vec<String> {
        // Bazel starts tests from a bash script, and bash runs a file the kernel cannot
        // execute (no `#!`) as a bash script: so do tests here. Bash is given the program's
        // path in its runfiles tree, relative to the test's working directory.
        let mut argv = if is_bare_script(&self.exec_root.join(unit.executable)) {
            vec![
                "/bin/bash".to_owned(),
                crate::core::layout::short_from_exec(unit.executable),
            ]
        } else {
            vec![unit.executable.to_owned()]
        };
        // The rule's `args`, already expanded and tokenized by analysis.
        argv.extend(unit.args.iter().cloned());
        argv.extend(self.options.args.iter().cloned());
        argv
    }

    /// Whether the test is cached: with `--cache_test_results` and not tagged `external`.
    fn cacheable(&self, unit: &Unit) -> bool {
        self.options.cache_results && !unit.spec.tags.iter().any(|t| t == "external")
    }

    /// What changed since the unit's last recorded run, with the ingredients of a run now
    /// (recorded once it ran); `None` if an input cannot be read.
    fn changes_since_last_run(
        &self,
        unit: &Unit,
        argv: &[String],
        env: &BTreeMap<String, String>,
        key: Digest,
        tiers: &CacheTiers,
        log_of_runs: &IngredientLog,
    ) -> Option<(Ingredients, Vec<Change>)> {
        let inputs: Vec<(String, Digest)> = self
            .inputs(unit, tiers)?
            .into_iter()
            .map(|(_, exec, digest)| (exec.to_owned(), digest))
            .collect();
        let log_path = format!("{}/test.log", unit.dir);
        let now = Ingredients::of_test(argv, env, &inputs, log_path.clone(), key);
        let last = log_of_runs.last(&log_path);
        let mut changes = ingredients::changes(last.as_ref().map(|r| &r.ingredients), &now, true);
        if !self.cacheable(unit) {
            changes = vec![Change::TestNotCached];
        } else if changes == [Change::OutputsNotOnDisk] {
            changes = vec![Change::NoCachedPass];
        }
        Some((now, changes))
    }

    /// What `forge test` with these options would do with `target` now (its first shard of
    /// its first run), judged from the files as they are: its program and runfiles must be
    /// built. Reads the local store only and changes nothing.
    pub fn forecast(&self, target: &(Label, String, Vec<String>, TestSpec)) -> Forecast {
        let tiers = CacheTiers::open(KeyKind::Test, self.exec_root, self.cache_dir, None, None);
        let units = self.units(target);
        let Some(unit) = units.first() else {
            return Forecast::NotBuilt;
        };
        let env = self.environment(unit);
        let argv = self.argv(unit);
        let timeout = timeout_of(unit.spec, self.options.timeouts.as_deref());
        let Some(key) = self.key(unit, &argv, &env, timeout, &tiers) else {
            return Forecast::NotBuilt;
        };
        let cached = self.cacheable(unit)
            && tiers
                .lookup(&key, &result_paths(unit), false, &mut |_, _| Ok(true))
                .is_some();
        if cached {
            return Forecast::Cached;
        }
        let log_of_runs = IngredientLog::new(&self.cache_dir.join("tests"));
        match self.changes_since_last_run(unit, &argv, &env, key, &tiers, &log_of_runs) {
            Some((_, changes)) => Forecast::WouldRun(changes),
            None => Forecast::NotBuilt,
        }
    }

    fn run_unit(
        &self,
        unit: &Unit,
        tiers: &CacheTiers,
        log_of_runs: &IngredientLog,
        cancel: &Cancel,
    ) -> RunResult {
        let log = self.exec_root.join(&unit.dir).join("test.log");
        let env = self.environment(unit);
        let argv = self.argv(unit);
        let timeout = timeout_of(unit.spec, self.options.timeouts.as_deref());
        let key = self.key(unit, &argv, &env, timeout, tiers);
        let cacheable = self.cacheable(unit);
        if cacheable
            && let Some(key) = &key
            && let Some(cached) = self.lookup(unit, key, tiers)
        {
            let action = self.action(unit, &argv);
            self.progress.finished(&action, &ActionOutcome::CacheHit);
            return RunResult {
                status: Status::CachedPassed,
                duration: cached,
                log,
                output: String::new(),
                changes: Vec::new(),
            };
        }
        // It runs: what changed since its last run, recorded with this run once it is over.
        let noted = key.and_then(|key| {
            self.changes_since_last_run(unit, &argv, &env, key, tiers, log_of_runs)
        });

        let attempts = match (unit.spec.flaky, self.options.flaky_attempts) {
            (_, Some(n)) => n.max(1),
            (true, None) => 3,
            (false, None) => 1,
        };
        let mut failed_before = false;
        let mut last = None;
        for _ in 0..attempts {
            let result = self.execute(unit, &argv, &env, timeout, cancel);
            let passed = result.status == Status::Passed;
            last = Some(result);
            if passed || cancel.is_cancelled() {
                break;
            }
            failed_before = true;
        }
        let mut result = last.expect("at least one attempt");
        if let Some((now, changes)) = noted
            && result.status != Status::NoStatus
        {
            log_of_runs.record(Record {
                ingredients: now,
                changes: changes.clone(),
            });
            result.changes = changes;
        }
        if result.status == Status::Passed && failed_before {
            // A pass after a failure is not a pass: never cached, reported FLAKY.
            result.status = Status::Flaky;
        }
        if let Some(key) = &key {
            if result.status == Status::Passed {
                if cacheable {
                    let _ = self.store(unit, key, result.duration, tiers);
                }
            } else if result.status != Status::NoStatus {
                // The latest verdict for these inputs is not a pass (even when it was not
                // asked to be cached): an older pass must not be reported again. The local
                // store forgets it, which also keeps `lookup` from taking a pass from the
                // disk or remote cache, as Bazel re-runs a test whose last local run failed.
                let _ = tiers.forget(key);
            }
        }
        result
    }

    /// Bazel's test environment. Paths use `EXEC_ROOT_VAR`, which the runner replaces with
    /// the exec root as the test sees it.
    fn environment(&self, unit: &Unit) -> BTreeMap<String, String> {
        let root = EXEC_ROOT_VAR;
        let dir = format!("{root}/{}", unit.dir);
        let runfiles = format!("{root}/{}.runfiles", unit.executable);
        let mut env = BTreeMap::new();
        let mut set = |k: &str, v: String| {
            env.insert(k.to_owned(), v);
        };
        set("PATH", self.options.path.clone());
        set("LANG", "C".to_owned());
        set("TZ", "UTC".to_owned());
        set("TEST_SRCDIR", runfiles.clone());
        set("RUNFILES_DIR", runfiles.clone());
        set("PYTHON_RUNFILES", runfiles);
        set("TEST_WORKSPACE", self.workspace_name.to_owned());
        set("TEST_TARGET", unit.label.to_string());
        set(
            "TEST_BINARY",
            crate::core::layout::short_from_exec(unit.executable),
        );
        set("TEST_TMPDIR", format!("{dir}/_tmp"));
        set("TMPDIR", format!("{dir}/_tmp"));
        set("XML_OUTPUT_FILE", format!("{dir}/test.xml"));
        set("TEST_UNDECLARED_OUTPUTS_DIR", format!("{dir}/test.outputs"));
        set("TEST_SIZE", unit.spec.size.clone());
        set(
            "TEST_TIMEOUT",
            timeout_of(unit.spec, self.options.timeouts.as_deref())
                .as_secs()
                .to_string(),
        );
        if let Some((index, total)) = unit.shard {
            set("TEST_TOTAL_SHARDS", total.to_string());
            set("TEST_SHARD_INDEX", index.to_string());
            set("TEST_SHARD_STATUS_FILE", format!("{dir}/test.shard_status"));
        }
        if let Some((number, _)) = unit.run {
            set("TEST_RUN_NUMBER", number.to_string());
        }
        if let Some(filter) = &self.options.filter {
            set("TESTBRIDGE_TEST_ONLY", filter.clone());
        }
        for (k, v) in unit.spec.env.iter().chain(&self.options.env) {
            set(k, v.clone());
        }
        env
    }

    /// The test's program and every runfile — its runfiles path (the program's exec path),
    /// exec path and content digest (a directory by its whole content). `None` if one
    /// cannot be read.
    fn inputs<'u>(
        &self,
        unit: &'u Unit,
        digests: &CacheTiers,
    ) -> Option<Vec<(&'u str, &'u str, Digest)>> {
        let digest = |exec: &str| {
            digests.digest(exec).ok().or_else(|| {
                let file = self.remote_files?.remote_only(self.exec_root, exec)?;
                Some(file.key_digest())
            })
        };
        let mut inputs = vec![(unit.executable, unit.executable, digest(unit.executable)?)];
        for (rf, exec) in &unit.spec.runfiles {
            inputs.push((rf.as_str(), exec.as_str(), digest(exec)?));
        }
        Some(inputs)
    }

    /// What a cached result must match: the test's program and every runfile by content, its
    /// command line, environment and time limit. `None` if an input cannot be read.
    fn key(
        &self,
        unit: &Unit,
        argv: &[String],
        env: &BTreeMap<String, String>,
        timeout: Duration,
        digests: &CacheTiers,
    ) -> Option<Digest> {
        let mut text = format!("forge-test-1\0{}\0{}\0", unit.label, timeout.as_secs());
        for a in argv {
            text.push_str(a);
            text.push('\0');
        }
        for (k, v) in env {
            text.push_str(&format!("{k}={v}\0"));
        }
        // A directory (a tree output, a source directory) is keyed by its whole content; one
        // that cannot be read (a link leading out of it) makes the run uncached.
        for (path, _, digest) in self.inputs(unit, digests)? {
            text.push_str(&format!("{path}\0{}\0", digest.to_hex()));
        }
        Some(Digest::of_bytes(text.as_bytes()))
    }

    /// Restores a cached pass into the testlogs; its duration. A pass is not taken from any
    /// tier when the local store forgot it: the last local run with these inputs did not pass.
    fn lookup(&self, unit: &Unit, key: &Digest, tiers: &CacheTiers) -> Option<Duration> {
        let dir = self.exec_root.join(&unit.dir);
        let mut duration = None;
        let mut place = |entry: &AcEntry, blobs: crate::exec::Blobs| {
            clear_dir(&dir)?;
            let mut complete = true;
            for out in &entry.outputs {
                let dest = self.exec_root.join(&out.path);
                if !matches!(blobs.copy_out(&out.digest, &dest, 0o644), Ok(true)) {
                    complete = false;
                }
                if out.path.ends_with("test.cache_status") {
                    duration = fs::read_to_string(&dest)
                        .ok()
                        .and_then(|s| s.split_whitespace().nth(1)?.parse::<f64>().ok());
                }
            }
            Ok(complete)
        };
        tiers.lookup(key, &result_paths(unit), true, &mut place)?;
        Some(Duration::from_secs_f64(duration.unwrap_or(0.0)))
    }

    /// Keeps a pass in every tier.
    fn store(
        &self,
        unit: &Unit,
        key: &Digest,
        duration: Duration,
        tiers: &CacheTiers,
    ) -> io::Result<()> {
        let dir = self.exec_root.join(&unit.dir);
        fs::write(
            dir.join("test.cache_status"),
            format!("PASSED {:.3}\n", duration.as_secs_f64()),
        )?;
        let mut outputs = Vec::with_capacity(RESULT_FILES.len());
        for path in result_paths(unit) {
            // Stored as copies, not links: the testlogs are the user's to move and edit.
            let digest = Digest::of_file(&self.exec_root.join(&path))?;
            outputs.push(CachedOutput {
                path,
                digest,
                executable: false,
                tree: false,
                remote: None,
            });
        }
        tiers
            .store(key, &AcEntry { outputs }, true)
            .map_err(|e| io::Error::other(e.to_string()))
    }

    /// Runs the test once; writes `test.log` and `test.xml`.
    /// The synthetic `TestRunner` action of one run: the program and its runfiles in, the
    /// result files out, for the runner and the progress.
    fn action(&self, unit: &Unit, argv: &[String]) -> Action {
        let mut inputs: Vec<ExecPath> = std::iter::once(ExecPath::new(unit.executable))
            .chain(unit.spec.runfiles.iter().map(|(_, e)| e.clone()))
            .collect();
        inputs.sort();
        inputs.dedup();
        let out = |name: &str| ExecPath::new(format!("{}/{name}", unit.dir));
        let mut outputs = vec![
            out("test.xml"),
            out("test.outputs"),
            out("test.shard_status"),
        ];
        outputs.sort();
        Action {
            owner: unit.label.clone(),
            mnemonic: "TestRunner".to_owned(),
            progress_message: format!("Testing {}", unit.label),
            kind: ActionKind::Run {
                argv: argv.to_vec(),
            },
            inputs: inputs.into(),
            outputs,
            directory_outputs: vec![out("test.outputs")],
            // TEST_TMPDIR is the test's scratch space, not an output: whatever it leaves
            // there (sockets, FIFOs) is thrown away.
            scratch_dirs: vec![out("_tmp")],
            discovery: None,
            env: BTreeMap::new(),
            requirements: unit
                .spec
                .tags
                .iter()
                .filter(|t| {
                    [
                        "no-sandbox",
                        "local",
                        "requires-network",
                        "no-remote",
                        "no-remote-exec",
                    ]
                    .contains(&t.as_str())
                })
                .cloned()
                .collect(),
        }
    }

    fn execute(
        &self,
        unit: &Unit,
        argv: &[String],
        env: &BTreeMap<String, String>,
        timeout: Duration,
        cancel: &Cancel,
    ) -> RunResult {
        let dir = self.exec_root.join(&unit.dir);
        let log = dir.join("test.log");
        let action = self.action(unit, argv);
        let prepared = clear_dir(&dir)
            .and_then(|()| fs::create_dir_all(dir.join("_tmp")))
            .and_then(|()| fs::create_dir_all(dir.join("test.outputs")));
        let workdir = format!("{}.runfiles/{}", unit.executable, self.workspace_name);
        self.progress.started(&action);
        self.progress.command(&action, argv, env, self.exec_root);
        let started = Instant::now();
        let outcome = prepared.and_then(|()| {
            self.runner.run(
                &Spawn {
                    action: &action,
                    argv,
                    env,
                    cwd: self.exec_root,
                    workdir: Some(&workdir),
                    stream: self.options.streamed,
                    timeout: Some(timeout),
                },
                cancel,
            )
        });
        let duration = started.elapsed();
        // The verdict is the summary's to report; the progress only counts the run.
        self.progress
            .finished(&action, &ActionOutcome::Executed { output: b"" });
        let _ = fs::remove_dir_all(dir.join("_tmp"));
        let (status, output, message) = match outcome {
            Ok(o) => {
                let status = match o.status {
                    SpawnStatus::Exited(0) => Status::Passed,
                    SpawnStatus::TimedOut(_) => Status::Timeout,
                    _ => Status::Failed,
                };
                let message = match o.status {
                    SpawnStatus::Exited(code) => format!("exited with error code {code}"),
                    other => other.to_string(),
                };
                (
                    status,
                    String::from_utf8_lossy(&o.output).into_owned(),
                    message,
                )
            }
            Err(e) => (
                Status::Failed,
                format!("forge could not run the test: {e}\n"),
                e.to_string(),
            ),
        };
        let status = if cancel.is_cancelled() {
            Status::NoStatus
        } else {
            status
        };
        let text = format!(
            "exec ${{PAGER:-/usr/bin/less}} \"$0\" || exit 1\nExecuting tests from {}\n{}\n{output}",
            unit.label,
            "-".repeat(77)
        );
        let _ = fs::create_dir_all(&dir).and_then(|()| fs::write(&log, &text));
        let xml_path = dir.join("test.xml");
        let own_xml = fs::metadata(&xml_path).is_ok_and(|m| m.len() > 0);
        if !own_xml {
            let name = label_dir(unit.label);
            let error = (status != Status::Passed).then_some(message.as_str());
            let _ = fs::write(&xml_path, xml::generated(&name, duration, error, &text));
        }
        RunResult {
            status,
            duration,
            log,
            output: text,
            changes: Vec::new(),
        }
    }
}

/// The files of a passing result that the caches keep.
const RESULT_FILES: [&str; 3] = ["test.cache_status", "test.log", "test.xml"];

/// The exec paths of a unit's `RESULT_FILES`, in that order.
fn result_paths(unit: &Unit) -> Vec<ExecPath> {
    RESULT_FILES
        .iter()
        .map(|name| ExecPath::new(format!("{}/{name}", unit.dir)))
        .collect()
}

/// `pkg/name` of a label, as testlogs and XML name it.
pub fn label_dir(label: &Label) -> String {
    if label.package.is_empty() {
        label.name.clone()
    } else {
        format!("{}/{}", label.package, label.name)
    }
}

/// Removes what an earlier run left in a testlogs directory (outputs are read-only there
/// only if a sandbox copied them so; make them removable first) and makes it anew.
fn clear_dir(dir: &Path) -> io::Result<()> {
    crate::core::fs::remove_tree(dir)?;
    fs::create_dir_all(dir)
}

/// A target's status from its runs: any timeout or failure wins, then flakiness; all cached
/// is a cached pass.
fn overall(runs: &[RunResult]) -> Status {
    let worst = |s: Status| runs.iter().any(|r| r.status == s);
    if worst(Status::NoStatus) {
        Status::NoStatus
    } else if worst(Status::Timeout) {
        Status::Timeout
    } else if worst(Status::Failed) {
        Status::Failed
    } else if worst(Status::Flaky) {
        Status::Flaky
    } else if runs.iter().all(|r| r.status == Status::CachedPassed) {
        Status::CachedPassed
    } else {
        Status::Passed
    }
}

/// Whether `path` is a file the kernel would refuse to execute as it is: neither a `#!`
/// script nor an ELF binary.
fn is_bare_script(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 4];
    let Ok(mut file) = fs::File::open(path) else {
        return false;
    };
    let mut read = 0;
    while read < head.len() {
        match file.read(&mut head[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(_) => return false,
        }
    }
    !(head[..read].starts_with(b"#!") || head[..read].starts_with(b"\x7fELF"))
}

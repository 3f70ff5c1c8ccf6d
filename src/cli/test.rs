//! `forge test PATTERNS...`: builds what the tests need, runs them (`testing`), and prints
//! Bazel's summary; the exit code says whether everything passed (0), the build failed (1),
//! a test failed or timed out (3) or no test was found (4).

use clap::Args;

use super::build::{BuildOptions, build, key_values};
use crate::core::TestSpec;
use crate::core::{Diagnostic, ExitCode, Failure, Label};
use crate::testing::{Status, TestOptions, TestResult, Tests};
use crate::workspace::OutputBaseOptions;

#[derive(Args, Debug)]
pub struct TestArgs {
    #[command(flatten)]
    options: BuildOptions,

    /// How many tests run at once (default: --jobs).
    #[arg(long = "local_test_jobs", alias = "local-test-jobs", value_name = "N")]
    local_test_jobs: Option<usize>,

    /// Reuse passing results of unchanged tests: `yes` (the default, also `auto`) or `no`.
    #[arg(
        long = "cache_test_results",
        alias = "cache-test-results",
        value_name = "yes|no|auto"
    )]
    cache_test_results: Option<String>,

    /// Run every test, even unchanged ones.
    #[arg(long = "nocache_test_results", alias = "nocache-test-results")]
    nocache_test_results: bool,

    /// What to show of test output: `summary` (default), `errors`, `all` or `streamed`.
    #[arg(
        long = "test_output",
        alias = "test-output",
        value_name = "MODE",
        default_value = "summary"
    )]
    test_output: String,

    /// Time limit in seconds: one for every test, or four for short,moderate,long,eternal.
    #[arg(long = "test_timeout", alias = "test-timeout", value_name = "SECONDS")]
    test_timeout: Option<String>,

    /// How many times to try a failing test before calling it failed.
    #[arg(
        long = "flaky_test_attempts",
        alias = "flaky-test-attempts",
        value_name = "N"
    )]
    flaky_test_attempts: Option<u32>,

    /// Run each test this many times.
    #[arg(
        long = "runs_per_test",
        alias = "runs-per-test",
        value_name = "N",
        default_value_t = 1
    )]
    runs_per_test: u32,

    /// A variable for tests: `NAME=VALUE`, or `NAME` to pass its value.
    #[arg(long = "test_env", alias = "test-env", value_name = "NAME[=VALUE]")]
    test_env: Vec<String>,

    /// An extra argument for every test.
    #[arg(
        long = "test_arg",
        alias = "test-arg",
        value_name = "ARG",
        allow_hyphen_values = true
    )]
    test_arg: Vec<String>,

    /// Passed to tests as TESTBRIDGE_TEST_ONLY, for the test framework to select cases.
    #[arg(long = "test_filter", alias = "test-filter", value_name = "FILTER")]
    test_filter: Option<String>,

    /// Only tests with one of these tags, and none of the `-tags`: `a,b,-c`.
    #[arg(
        long = "test_tag_filters",
        alias = "test-tag-filters",
        value_name = "TAGS"
    )]
    test_tag_filters: Option<String>,

    /// Only tests of these sizes, and none of the `-sizes`: `small,medium`.
    #[arg(
        long = "test_size_filters",
        alias = "test-size-filters",
        value_name = "SIZES"
    )]
    test_size_filters: Option<String>,

    /// Target patterns naming tests or test suites.
    #[arg(value_name = "PATTERNS")]
    patterns: Vec<String>,
}

/// `a,b,-c` as (wanted, unwanted); an empty wanted list wants everything.
fn split_filter(text: &Option<String>) -> (Vec<String>, Vec<String>) {
    let mut wanted = Vec::new();
    let mut unwanted = Vec::new();
    for item in text.iter().flat_map(|t| t.split(',')).map(str::trim) {
        match item.strip_prefix('-') {
            Some(rest) if !rest.is_empty() => unwanted.push(rest.to_owned()),
            _ if !item.is_empty() => wanted.push(item.to_owned()),
            _ => {}
        }
    }
    (wanted, unwanted)
}

fn accepts(filter: &(Vec<String>, Vec<String>), values: &[String]) -> bool {
    let (wanted, unwanted) = filter;
    (wanted.is_empty() || values.iter().any(|v| wanted.contains(v)))
        && !values.iter().any(|v| unwanted.contains(v))
}

fn test_options(args: &TestArgs) -> Result<TestOptions, Failure> {
    let cache_results = match args.cache_test_results.as_deref() {
        _ if args.nocache_test_results => false,
        None | Some("yes" | "auto" | "true" | "1") => true,
        Some("no" | "false" | "0") => false,
        Some(other) => {
            return Err(Failure::usage(format!(
                "--cache_test_results expects yes, no or auto, not '{other}'"
            )));
        }
    };
    let streamed = match args.test_output.as_str() {
        "summary" | "errors" | "all" => false,
        "streamed" => true,
        other => {
            return Err(Failure::usage(format!(
                "--test_output expects summary, errors, all or streamed, not '{other}'"
            )));
        }
    };
    let timeouts = match &args.test_timeout {
        None => None,
        Some(text) => {
            let values: Result<Vec<u64>, _> = text.split(',').map(|v| v.trim().parse()).collect();
            match values {
                Ok(v) if v.len() == 1 || v.len() == 4 => Some(v),
                _ => {
                    return Err(Failure::usage(format!(
                        "--test_timeout expects SECONDS or four of them (short,moderate,long,eternal), not '{text}'"
                    )));
                }
            }
        }
    };
    let jobs = args
        .local_test_jobs
        .or(args.options.common.jobs)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
    Ok(TestOptions {
        jobs,
        cache_results,
        timeouts,
        flaky_attempts: args.flaky_test_attempts,
        runs_per_test: args.runs_per_test.max(1),
        env: key_values(&args.test_env, "test_env", true)?,
        args: args.test_arg.clone(),
        filter: args.test_filter.clone(),
        disk_cache: args.options.disk_cache.clone(),
        streamed,
    })
}

/// `label.ljust(78 - len(status)) + " " + status + " in 0.2s"`, as Bazel lines them up.
fn summary_line(result: &TestResult) -> String {
    let status = result.status.text();
    let label = result.label.to_string();
    let width = 78usize.saturating_sub(status.len());
    let secs: f64 = result
        .runs
        .iter()
        .map(|r| r.duration.as_secs_f64())
        .fold(0.0, f64::max);
    if matches!(result.status, Status::NoStatus | Status::FailedToBuild) {
        return format!("{label:<width$} {status}");
    }
    format!("{label:<width$} {status} in {secs:.1}s")
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub fn run(args: TestArgs, startup: &OutputBaseOptions) -> Result<ExitCode, Failure> {
    let options = test_options(&args)?;
    let built = build(&args.patterns, &args.options, startup, false, true)?;
    let tags = split_filter(&args.test_tag_filters);
    let sizes = split_filter(&args.test_size_filters);
    let mut targets: Vec<(Label, String, Vec<String>, TestSpec)> = Vec::new();
    // With --keep_going after a failed build: tests whose program or runfiles are missing.
    let mut unbuilt: Vec<TestResult> = Vec::new();
    for label in &built.plan.tests {
        let planned = built.plan.targets.get(label);
        let spec = planned.and_then(|p| p.test.clone());
        let exe = planned.and_then(|p| p.executable.clone());
        let (Some(planned), Some(spec), Some(exe)) = (planned, spec, exe) else {
            if built.build_failed {
                unbuilt.push(TestResult {
                    label: label.clone(),
                    status: Status::FailedToBuild,
                    runs: Vec::new(),
                });
            }
            continue;
        };
        if !(accepts(&tags, &spec.tags) && accepts(&sizes, std::slice::from_ref(&spec.size))) {
            continue;
        }
        let built_ok = std::iter::once(&exe)
            .chain(spec.runfiles.iter().map(|(_, e)| e))
            .all(|p| built.exec_root.join(p).exists());
        if !built_ok {
            unbuilt.push(TestResult {
                label: label.clone(),
                status: Status::FailedToBuild,
                runs: Vec::new(),
            });
            continue;
        }
        targets.push((label.clone(), exe.into_string(), planned.args.clone(), spec));
    }
    if targets.is_empty() && unbuilt.is_empty() {
        built.runner.cleanup();
        return Err(Failure {
            code: ExitCode::NoTestsFound,
            errors: vec![Diagnostic::new(
                "No test targets were found, yet testing was requested",
            )],
        });
    }

    let mode = args.test_output.as_str();
    let show = |result: &TestResult| {
        for run in &result.runs {
            let failed = matches!(run.status, Status::Failed | Status::Timeout);
            let wanted = match mode {
                // Streamed output was shown as it came.
                "all" => run.status != Status::CachedPassed,
                "errors" => failed,
                _ => false,
            };
            if wanted {
                eprintln!("==================== Test output for {}:", result.label);
                eprint!("{}", run.output);
                eprintln!("{}", "=".repeat(80));
            }
            if failed {
                let what = if run.status == Status::Timeout {
                    "TIMEOUT"
                } else {
                    "FAIL"
                };
                eprintln!("{what}: {} (see {})", result.label, run.log.display());
            }
        }
    };
    let remote = args.options.remote.client()?;
    let tests = Tests {
        exec_root: &built.exec_root,
        cache_dir: &built.workspace.output_base.join("cache"),
        workspace_name: &built.workspace.name,
        runner: &built.runner,
        interrupt: crate::exec::interrupt_flag(),
        options: &options,
        remote: remote.as_deref(),
    };
    let mut results = tests.run(&targets, &show);
    built.runner.cleanup();
    results.extend(unbuilt);
    results.sort_by(|a, b| a.label.cmp(&b.label));

    // The summary, sorted by label.
    for result in &results {
        eprintln!("{}", summary_line(result));
        if matches!(result.status, Status::Failed | Status::Timeout) {
            for run in &result.runs {
                if matches!(run.status, Status::Failed | Status::Timeout) {
                    eprintln!("  {}", run.log.display());
                }
            }
        }
        if result.runs.len() > 1 {
            let secs: Vec<f64> = result
                .runs
                .iter()
                .map(|r| r.duration.as_secs_f64())
                .collect();
            let n = secs.len() as f64;
            let avg = secs.iter().sum::<f64>() / n;
            let dev = (secs.iter().map(|s| (s - avg).powi(2)).sum::<f64>() / n).sqrt();
            let max = secs.iter().cloned().fold(0.0, f64::max);
            let min = secs.iter().cloned().fold(f64::MAX, f64::min);
            eprintln!(
                "  Stats over {} runs: max = {max:.1}s, min = {min:.1}s, avg = {avg:.1}s, dev = {dev:.1}s",
                secs.len()
            );
        }
    }
    let total = results.len();
    let executed = results.iter().filter(|r| r.executed()).count();
    let by = |f: &dyn Fn(Status) -> bool| results.iter().filter(|r| f(r.status)).count();
    let passed = by(&|s| s.passed());
    let failed = by(&|s| matches!(s, Status::Failed | Status::Timeout));
    let skipped = by(&|s| s == Status::NoStatus);
    let unbuilt = by(&|s| s == Status::FailedToBuild);
    let mut parts = Vec::new();
    if passed > 0 {
        parts.push(count(passed, "test passes", "tests pass"));
    }
    if unbuilt > 0 {
        parts.push(count(unbuilt, "fails to build", "fail to build"));
    }
    if failed > 0 {
        parts.push(count(failed, "fails locally", "fail locally"));
    }
    if skipped > 0 {
        parts.push(count(skipped, "was skipped", "were skipped"));
    }
    eprintln!(
        "\nExecuted {executed} out of {}: {}.",
        count(total, "test", "tests"),
        parts.join(" and ")
    );
    if skipped > 0 && crate::exec::interrupt_flag().load(std::sync::atomic::Ordering::SeqCst) {
        return Err(Failure {
            code: ExitCode::Interrupted,
            errors: vec![Diagnostic::new("Testing interrupted (Ctrl-C)")],
        });
    }
    if built.build_failed {
        return Err(Failure::from_diagnostics(vec![Diagnostic::new(
            "Build did NOT complete successfully: some tests could not be built",
        )]));
    }
    if failed > 0 {
        eprintln!(
            "INFO: Build completed, {} FAILED",
            count(failed, "test", "tests")
        );
        return Ok(ExitCode::PartialSuccess);
    }
    eprintln!("INFO: Build completed successfully");
    Ok(ExitCode::Success)
}

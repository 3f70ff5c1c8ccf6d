//! `forge test PATTERNS...`: builds what the tests need, runs them (`testing`), and prints
//! Bazel's summary; the exit code says whether everything passed (0), the build failed (1),
//! a test failed or timed out (3) or no test was found (4).

use clap::Args;

use super::build::{BuildOptions, build};
use crate::core::{ExitCode, Failure};
use crate::ops::key_values;
use crate::ops::test::{Filter, TestRequest, Totals, stats_line, summary_line, verdict};
use crate::testing::{Status, TestOptions, TestResult};
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
        value_name = "yes|no|auto",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "yes"
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
        .unwrap_or_else(super::host_cores);
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

pub fn run(args: TestArgs, startup: &OutputBaseOptions) -> Result<ExitCode, Failure> {
    let options = test_options(&args)?;
    let built = build(&args.patterns, &args.options, startup, false, true)?;
    let counted_before = built.runner.remote_counts();
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
    let request = TestRequest {
        options,
        tags: Filter::parse(args.test_tag_filters.as_deref()),
        sizes: Filter::parse(args.test_size_filters.as_deref()),
        remote: args.options.remote.client()?,
    };
    let results = crate::ops::test::run_tests(&built, &request, &show)?;
    if let Some(explain) = super::build::explain_request(&args.options) {
        crate::ops::explain::append_test_explanations(
            &explain,
            &results,
            &built.exec_root,
            &built.plan,
        )?;
    }

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
        if let Some(stats) = stats_line(result) {
            eprintln!("  {stats}");
        }
    }
    let totals = Totals::of(&results);
    eprintln!("\n{}", totals.line());
    // With a remote executor, where the test runs went (the build's summary counted its own
    // commands).
    if let (Some(before), Some(after)) = (counted_before, built.runner.remote_counts()) {
        let [remote, hits, local, sandboxed] = [0, 1, 2, 3].map(|i| after[i] - before[i]);
        eprintln!(
            "INFO: Test commands: {remote} remote, {hits} remote cache hit, {local} local, {sandboxed} sandboxed."
        );
    }
    let code = verdict(&totals, built.build_failed)?;
    if code == ExitCode::PartialSuccess {
        eprintln!(
            "INFO: Build completed, {} FAILED",
            crate::ops::plural(totals.failed, "test", "tests")
        );
    } else {
        eprintln!("INFO: Build completed successfully");
    }
    Ok(code)
}

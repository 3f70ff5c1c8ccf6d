//! `forge test PATTERNS...`: builds what the tests need, runs them (`testing`), and prints
//! Bazel's summary; the exit code says whether everything passed (0), the build failed (1),
//! a test failed or timed out (3) or no test was found (4).

use clap::Args;

use super::build::{BuildOptions, build};
use super::console;
use super::reporting::Session;
use crate::core::{ExitCode, Failure};
use crate::ops::key_values;
use crate::ops::test::{Filter, TestRequest, Totals, stats_line, summary_line, verdict};
use crate::testing::{Status, TestOptions, TestResult};
use crate::workspace::OutputBaseOptions;

#[derive(Args, Debug)]
pub struct TestArgs {
    #[command(flatten)]
    options: BuildOptions,

    #[command(flatten)]
    pub flags: TestFlags,

    /// Target patterns naming tests or test suites.
    #[arg(value_name = "PATTERNS")]
    patterns: Vec<String>,
}

/// The flags of `forge test` that decide how tests run (also taken by `forge why`, which
/// says whether a test would run).
#[derive(Args, Debug, Clone)]
pub struct TestFlags {
    /// How many tests run at once (default: --jobs).
    #[arg(long = "local_test_jobs", alias = "local-test-jobs", value_name = "N")]
    pub local_test_jobs: Option<usize>,

    /// Reuse passing results of unchanged tests: `yes` (the default, also `auto`) or `no`.
    #[arg(
        long = "cache_test_results",
        alias = "cache-test-results",
        value_name = "yes|no|auto",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "yes"
    )]
    pub cache_test_results: Option<String>,

    /// Run every test, even unchanged ones.
    #[arg(long = "nocache_test_results", alias = "nocache-test-results")]
    pub nocache_test_results: bool,

    /// What to show of test output: `summary` (default), `errors`, `all` or `streamed`.
    #[arg(
        long = "test_output",
        alias = "test-output",
        value_name = "MODE",
        default_value = "summary"
    )]
    pub test_output: String,

    /// Time limit in seconds: one for every test, or four for short,moderate,long,eternal.
    #[arg(long = "test_timeout", alias = "test-timeout", value_name = "SECONDS")]
    pub test_timeout: Option<String>,

    /// How many times to try a failing test before calling it failed.
    #[arg(
        long = "flaky_test_attempts",
        alias = "flaky-test-attempts",
        value_name = "N"
    )]
    pub flaky_test_attempts: Option<u32>,

    /// Run each test this many times.
    #[arg(
        long = "runs_per_test",
        alias = "runs-per-test",
        value_name = "N",
        default_value_t = 1
    )]
    pub runs_per_test: u32,

    /// A variable for tests: `NAME=VALUE`, or `NAME` to pass its value.
    #[arg(long = "test_env", alias = "test-env", value_name = "NAME[=VALUE]")]
    pub test_env: Vec<String>,

    /// An extra argument for every test.
    #[arg(
        long = "test_arg",
        alias = "test-arg",
        value_name = "ARG",
        allow_hyphen_values = true
    )]
    pub test_arg: Vec<String>,

    /// Passed to tests as TESTBRIDGE_TEST_ONLY, for the test framework to select cases.
    #[arg(long = "test_filter", alias = "test-filter", value_name = "FILTER")]
    pub test_filter: Option<String>,

    /// Only tests with one of these tags, and none of the `-tags`: `a,b,-c`.
    #[arg(
        long = "test_tag_filters",
        alias = "test-tag-filters",
        value_name = "TAGS"
    )]
    pub test_tag_filters: Option<String>,

    /// Only tests of these sizes, and none of the `-sizes`: `small,medium`.
    #[arg(
        long = "test_size_filters",
        alias = "test-size-filters",
        value_name = "SIZES"
    )]
    pub test_size_filters: Option<String>,

    /// How much of the summary to print: `short` (the default: every test), `terse` (only
    /// those that did not pass), `detailed` (also each failed test case, from test.xml) or
    /// `none`; the `Executed ...` line always follows.
    #[arg(
        long = "test_summary",
        alias = "test-summary",
        value_name = "short|terse|detailed|none",
        value_parser = SummaryMode::parse
    )]
    pub test_summary: Option<SummaryMode>,

    /// Name each passing test that ran much faster than its timeout allows, with the size
    /// or timeout to set instead.
    #[arg(
        long = "test_verbose_timeout_warnings",
        alias = "test-verbose-timeout-warnings"
    )]
    pub test_verbose_timeout_warnings: bool,
}

/// The test options the flags ask for; `options` are the build's (`--jobs`, the disk cache,
/// `--incompatible_strict_action_env`).
pub fn test_options(args: &TestFlags, options: &BuildOptions) -> Result<TestOptions, Failure> {
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
        .or(options.common.jobs)
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
        disk_cache: options.disk_cache.clone(),
        streamed,
        path: crate::testing::test_path(
            std::env::var("PATH").ok().as_deref(),
            options.incompatible_strict_action_env,
        ),
    })
}

/// `--test_summary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SummaryMode {
    #[default]
    Short,
    Terse,
    Detailed,
    None,
}

impl SummaryMode {
    fn parse(text: &str) -> Result<SummaryMode, String> {
        match text {
            "short" => Ok(SummaryMode::Short),
            "terse" => Ok(SummaryMode::Terse),
            "detailed" => Ok(SummaryMode::Detailed),
            "none" => Ok(SummaryMode::None),
            other => Err(format!("'{other}' is not short, terse, detailed or none")),
        }
    }
}

pub fn run(args: TestArgs, startup: &OutputBaseOptions) -> Result<ExitCode, Failure> {
    let build_options = &args.options;
    let session = Session::start("test", build_options, &args.patterns)?;
    let result = test(&args, startup, &session);
    session.finish(result)
}

fn test(
    args: &TestArgs,
    startup: &OutputBaseOptions,
    session: &Session,
) -> Result<ExitCode, Failure> {
    let options = test_options(&args.flags, &args.options)?;
    let Some(built) = build(&args.patterns, &args.options, startup, false, true, session)? else {
        // `--nobuild`: analysed; no test runs.
        return Ok(ExitCode::Success);
    };
    let counted_before = built.runner.remote_counts();
    let request = TestRequest {
        options,
        tags: Filter::parse(args.flags.test_tag_filters.as_deref()),
        sizes: Filter::parse(args.flags.test_size_filters.as_deref()),
        remote: args.options.remote.client()?,
    };
    let testing_started = std::time::Instant::now();
    // Streamed output goes to the terminal as it comes: no status may be drawn over it.
    let results = match request.options.streamed {
        true => {
            let progress = crate::exec::NoProgress;
            let show = |result: &TestResult| show(result, &args.flags.test_output, &progress);
            crate::ops::test::run_tests(&built, &request, &progress, &show)
        }
        false => session.with_progress(|progress| {
            let show = |result: &TestResult| show(result, &args.flags.test_output, progress);
            crate::ops::test::run_tests(&built, &request, progress, &show)
        }),
    }?;
    session.tested(&results, testing_started);
    if let Some(explain) = super::build::explain_request(&args.options) {
        crate::ops::explain::append_test_explanations(
            &explain,
            &results,
            &built.exec_root,
            &built.plan,
        )?;
    }

    let oversized = oversized_tests(&built, &results);
    if args.flags.test_verbose_timeout_warnings {
        for warning in &oversized {
            console::warning(warning);
        }
    }
    let totals = Totals::of(&results);
    let mut out = String::new();
    summary(
        &results,
        args.flags.test_summary.unwrap_or_default(),
        &mut out,
    );
    out.push_str(&format!("\n{}\n", totals.line()));
    if !oversized.is_empty() && !args.flags.test_verbose_timeout_warnings {
        out.push_str(
            "There were tests whose specified size is too big. Use the \
             --test_verbose_timeout_warnings command line option to see which ones these are.\n",
        );
    }
    super::print_out(out.as_bytes())?;
    // With a remote executor, where the test runs went (the build's summary counted its own
    // commands).
    if let (Some(before), Some(after)) = (counted_before, built.runner.remote_counts()) {
        let [remote, hits, local, sandboxed] = [0, 1, 2, 3].map(|i| after[i] - before[i]);
        console::info(format!(
            "Test commands: {remote} remote, {hits} remote cache hit, {local} local, {sandboxed} sandboxed."
        ));
    }
    let code = verdict(&totals, built.build_failed)?;
    if code == ExitCode::PartialSuccess {
        console::info(format!(
            "Build completed, {} FAILED",
            crate::ops::plural(totals.failed, "test", "tests")
        ));
    } else {
        console::info("Build completed successfully");
    }
    Ok(code)
}

/// What `--test_output` shows of a result as it comes, and the `FAIL:` line of a failed
/// run, printed through `progress` so a live status stays below them.
fn show(result: &TestResult, mode: &str, progress: &dyn crate::exec::Progress) {
    let mut text = String::new();
    for run in &result.runs {
        let failed = matches!(run.status, Status::Failed | Status::Timeout);
        let wanted = match mode {
            // Streamed output was shown as it came.
            "all" => run.status != Status::CachedPassed,
            "errors" => failed,
            _ => false,
        };
        if wanted {
            text.push_str(&format!(
                "==================== Test output for {}:\n{}",
                result.label, run.output
            ));
            if !run.output.is_empty() && !run.output.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&format!("{}\n", "=".repeat(80)));
        }
        if failed {
            let what = if run.status == Status::Timeout {
                "TIMEOUT"
            } else {
                "FAIL"
            };
            text.push_str(&console::line(
                what,
                console::Style::Error,
                &format!("{} (see {})", result.label, run.log.display()),
                console::stderr_colored(),
            ));
            text.push('\n');
        }
    }
    if !text.is_empty() {
        progress.message(&text);
    }
}

/// The summary's lines, sorted by label, as `--test_summary` asks: each test's status
/// (colored on a terminal), the logs of failed runs, statistics over several runs.
fn summary(results: &[TestResult], mode: SummaryMode, out: &mut String) {
    for result in results {
        let failed = matches!(result.status, Status::Failed | Status::Timeout);
        let shown = match mode {
            SummaryMode::None => false,
            SummaryMode::Terse => !result.status.passed(),
            SummaryMode::Short | SummaryMode::Detailed => true,
        };
        if !shown {
            continue;
        }
        let line = summary_line(result);
        let status = result.status.text();
        let painted = match line.rfind(status) {
            Some(at) => format!(
                "{}{}{}",
                &line[..at],
                console::status_for_stdout(status),
                &line[at + status.len()..]
            ),
            None => line,
        };
        out.push_str(&painted);
        out.push('\n');
        if failed {
            for run in &result.runs {
                if matches!(run.status, Status::Failed | Status::Timeout) {
                    out.push_str(&format!("  {}\n", run.log.display()));
                    if mode == SummaryMode::Detailed {
                        for case in failed_cases(&run.log.with_file_name("test.xml")) {
                            out.push_str(&format!("    FAILED  {case}\n"));
                        }
                    }
                }
            }
        }
        if let Some(stats) = stats_line(result) {
            out.push_str(&format!("  {stats}\n"));
        }
    }
}

/// The names of the test cases a JUnit XML file reports as failed or in error.
fn failed_cases(xml: &std::path::Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(xml) else {
        return Vec::new();
    };
    let mut cases = Vec::new();
    for (i, _) in text.match_indices("<testcase") {
        let rest = &text[i..];
        let end = rest.find("</testcase>").unwrap_or(rest.len());
        let body = &rest[..end];
        let head_end = body.find('>').unwrap_or(body.len());
        if body[..head_end].ends_with('/') {
            continue;
        }
        if !(body.contains("<failure") || body.contains("<error")) {
            continue;
        }
        let head = &body[..head_end];
        let attribute = |name: &str| {
            let key = format!(" {name}=\"");
            let start = head.find(&key)? + key.len();
            let len = head[start..].find('"')?;
            Some(head[start..start + len].to_owned())
        };
        let name = attribute("name").unwrap_or_default();
        cases.push(match attribute("classname") {
            Some(class) if !class.is_empty() => format!("{class}.{name}"),
            _ => name,
        });
    }
    cases
}

/// Bazel's timeout classes with the range of times each fits (its "fuzzy" ranges) and the
/// size that has it by default.
const TIMEOUT_CLASSES: [(&str, f64, f64, &str); 4] = [
    ("short", 0.0, 60.0, "small"),
    ("moderate", 30.0, 300.0, "medium"),
    ("long", 300.0, 900.0, "large"),
    ("eternal", 900.0, 3600.0, "enormous"),
];

/// Bazel's timeout warnings: each passing test whose slowest run took less than its timeout
/// class's range, with the class and size that fit.
fn oversized_tests(built: &crate::ops::build::Built, results: &[TestResult]) -> Vec<String> {
    let mut warnings = Vec::new();
    for result in results.iter().filter(|r| r.status.passed()) {
        let Some(spec) = built
            .plan
            .targets
            .get(&result.label)
            .and_then(|t| t.test.as_ref())
        else {
            continue;
        };
        let class = spec.timeout.clone().unwrap_or_else(|| {
            match spec.size.as_str() {
                "small" => "short",
                "large" => "long",
                "enormous" => "eternal",
                _ => "moderate",
            }
            .to_owned()
        });
        let Some(&(_, min, _, _)) = TIMEOUT_CLASSES.iter().find(|c| c.0 == class) else {
            continue;
        };
        let secs = result
            .runs
            .iter()
            .map(|r| r.duration.as_secs_f64())
            .fold(0.0, f64::max);
        if secs >= min {
            continue;
        }
        let (fit, _, _, size) = TIMEOUT_CLASSES
            .iter()
            .find(|c| secs <= c.2)
            .copied()
            .unwrap_or(TIMEOUT_CLASSES[3]);
        warnings.push(format!(
            "{}: Test execution time ({secs:.1}s excluding execution overhead) outside of \
             range for {} tests. Consider setting timeout=\"{fit}\" or size=\"{size}\".",
            result.label,
            class.to_uppercase()
        ));
    }
    warnings
}

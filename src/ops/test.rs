//! Tests of a build: the `Built` plan, the test settings and the `--test_*_filters` in; the
//! tests selected and run (or found passing in a cache) through `crate::testing`, then the
//! results' summary lines, statistics, totals and the command's verdict out.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::build::Built;
use super::plural as count;
use crate::analysis::plan::BuildPlan;
use crate::core::{Diagnostic, ExitCode, Failure, Label, TestSpec};
use crate::remote::RemoteCache;
use crate::testing::{Status, TestOptions, TestResult, Tests};

/// How to test what was built.
pub struct TestRequest {
    pub options: TestOptions,
    pub tags: Filter,
    pub sizes: Filter,
    pub remote: Option<Arc<RemoteCache>>,
}

/// Runs the tests of `built` that the filters select — `progress` hears each run start and
/// end, `show` each result as it comes — and returns every result, those that could not be
/// built included, sorted by label.
pub fn run_tests(
    built: &Built,
    request: &TestRequest,
    progress: &dyn crate::exec::Progress,
    show: &(dyn Fn(&TestResult) + Sync),
) -> Result<Vec<TestResult>, Failure> {
    // A file a build without the bytes left remote is built: it comes down when the test
    // runs here, and a remote run needs it not.
    let remote_only = |p: &str| {
        built
            .remote_files
            .as_ref()
            .is_some_and(|f| f.get(p).is_some())
    };
    let (targets, unbuilt) = select(
        &built.plan,
        &built.exec_root,
        built.build_failed,
        &request.tags,
        &request.sizes,
        &remote_only,
    );
    if targets.is_empty() && unbuilt.is_empty() {
        built.runner.cleanup();
        return Err(Failure {
            code: ExitCode::NoTestsFound,
            errors: vec![Diagnostic::new(
                "No test targets were found, yet testing was requested",
            )],
        });
    }
    let tests = Tests {
        exec_root: &built.exec_root,
        cache_dir: &built.workspace.output_base.join("cache"),
        workspace_name: &built.workspace.name,
        runner: &built.runner,
        interrupt: crate::exec::interrupt_flag(),
        options: &request.options,
        remote: request.remote.as_deref(),
        progress,
        remote_files: built.remote_files.as_deref(),
    };
    let mut results = tests.run(&targets, show);
    built.runner.cleanup();
    results.extend(unbuilt);
    results.sort_by(|a, b| a.label.cmp(&b.label));
    Ok(results)
}

/// How `forge test` ends: interrupted (8) when Ctrl-C left tests unrun, a failed build (1),
/// failed tests (3, Bazel's code for a build whose tests failed), or success.
pub fn verdict(totals: &Totals, build_failed: bool) -> Result<ExitCode, Failure> {
    if totals.skipped > 0 && crate::exec::interrupt_flag().load(Ordering::SeqCst) {
        return Err(Failure {
            code: ExitCode::Interrupted,
            errors: vec![Diagnostic::new("Testing interrupted (Ctrl-C)")],
        });
    }
    if build_failed {
        return Err(Failure::from_diagnostics(vec![Diagnostic::new(
            "Build did NOT complete successfully: some tests could not be built",
        )]));
    }
    if totals.failed > 0 {
        return Ok(ExitCode::PartialSuccess);
    }
    Ok(ExitCode::Success)
}

/// `a,b,-c` as a filter: tests with one of the wanted values (any, when none is named) and
/// none of the unwanted ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub wanted: Vec<String>,
    pub unwanted: Vec<String>,
}

impl Filter {
    /// `--test_tag_filters` / `--test_size_filters` text; none filters nothing.
    pub fn parse(text: Option<&str>) -> Filter {
        let mut filter = Filter::default();
        for item in text.iter().flat_map(|t| t.split(',')).map(str::trim) {
            match item.strip_prefix('-') {
                Some(rest) if !rest.is_empty() => filter.unwanted.push(rest.to_owned()),
                _ if !item.is_empty() => filter.wanted.push(item.to_owned()),
                _ => {}
            }
        }
        filter
    }

    /// Whether a test with these values (its tags, or its size) passes the filter.
    pub fn accepts(&self, values: &[String]) -> bool {
        (self.wanted.is_empty() || values.iter().any(|v| self.wanted.contains(v)))
            && !values.iter().any(|v| self.unwanted.contains(v))
    }
}

/// One test to run: its label, program, arguments and spec.
pub type TestTarget = (Label, String, Vec<String>, TestSpec);

/// The planned tests that pass the filters: those to run, and the results of those that
/// will not run: a program or runfiles missing (with `--keep_going` after a failed build),
/// `FailedToBuild`; a test the target platform cannot build, `Skipped`.
pub fn select(
    plan: &BuildPlan,
    exec_root: &Path,
    build_failed: bool,
    tags: &Filter,
    sizes: &Filter,
    remote_only: &dyn Fn(&str) -> bool,
) -> (Vec<TestTarget>, Vec<TestResult>) {
    let mut targets = Vec::new();
    let mut unbuilt = Vec::new();
    let failed_to_build = |label: &Label| TestResult {
        label: label.clone(),
        status: Status::FailedToBuild,
        runs: Vec::new(),
    };
    for label in &plan.skipped_tests {
        unbuilt.push(TestResult {
            label: label.clone(),
            status: Status::Skipped,
            runs: Vec::new(),
        });
    }
    for label in &plan.tests {
        let planned = plan.targets.get(label);
        let spec = planned.and_then(|p| p.test.clone());
        let exe = planned.and_then(|p| p.executable.clone());
        let (Some(planned), Some(spec), Some(exe)) = (planned, spec, exe) else {
            if build_failed {
                unbuilt.push(failed_to_build(label));
            }
            continue;
        };
        if !(tags.accepts(&spec.tags) && sizes.accepts(std::slice::from_ref(&spec.size))) {
            continue;
        }
        let built_ok = std::iter::once(&exe)
            .chain(spec.runfiles.iter().map(|(_, e)| e))
            .all(|p| exec_root.join(p).exists() || remote_only(p));
        if !built_ok {
            unbuilt.push(failed_to_build(label));
            continue;
        }
        targets.push((label.clone(), exe.into_string(), planned.args.clone(), spec));
    }
    (targets, unbuilt)
}

/// `label.ljust(78 - len(status)) + " " + status + " in 0.2s"`, as Bazel lines them up.
pub fn summary_line(result: &TestResult) -> String {
    let status = result.status.text();
    let label = result.label.to_string();
    let width = 78usize.saturating_sub(status.len());
    let secs: f64 = result
        .runs
        .iter()
        .map(|r| r.duration.as_secs_f64())
        .fold(0.0, f64::max);
    if matches!(
        result.status,
        Status::NoStatus | Status::FailedToBuild | Status::Skipped
    ) {
        return format!("{label:<width$} {status}");
    }
    format!("{label:<width$} {status} in {secs:.1}s")
}

/// `Stats over 3 runs: max = …, min = …, avg = …, dev = …` for a test run more than once.
pub fn stats_line(result: &TestResult) -> Option<String> {
    if result.runs.len() <= 1 {
        return None;
    }
    let secs: Vec<f64> = result
        .runs
        .iter()
        .map(|r| r.duration.as_secs_f64())
        .collect();
    Some(stats_of(&secs))
}

fn stats_of(secs: &[f64]) -> String {
    let n = secs.len() as f64;
    let avg = secs.iter().sum::<f64>() / n;
    let dev = (secs.iter().map(|s| (s - avg).powi(2)).sum::<f64>() / n).sqrt();
    let max = secs.iter().cloned().fold(0.0, f64::max);
    let min = secs.iter().cloned().fold(f64::MAX, f64::min);
    format!(
        "Stats over {} runs: max = {max:.1}s, min = {min:.1}s, avg = {avg:.1}s, dev = {dev:.1}s",
        secs.len()
    )
}

/// How many tests ended which way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub total: usize,
    pub executed: usize,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub unbuilt: usize,
}

impl Totals {
    pub fn of(results: &[TestResult]) -> Totals {
        let by = |f: &dyn Fn(Status) -> bool| results.iter().filter(|r| f(r.status)).count();
        Totals {
            total: results.len(),
            executed: results.iter().filter(|r| r.executed()).count(),
            passed: by(&|s| s.passed()),
            failed: by(&|s| matches!(s, Status::Failed | Status::Timeout)),
            skipped: by(&|s| matches!(s, Status::NoStatus | Status::Skipped)),
            unbuilt: by(&|s| s == Status::FailedToBuild),
        }
    }

    /// `Executed 2 out of 3 tests: 2 tests pass and 1 fails locally.`
    pub fn line(&self) -> String {
        let mut parts = Vec::new();
        if self.passed > 0 {
            parts.push(count(self.passed, "test passes", "tests pass"));
        }
        if self.unbuilt > 0 {
            parts.push(count(self.unbuilt, "fails to build", "fail to build"));
        }
        if self.failed > 0 {
            parts.push(count(self.failed, "fails locally", "fail locally"));
        }
        if self.skipped > 0 {
            parts.push(count(self.skipped, "was skipped", "were skipped"));
        }
        format!(
            "Executed {} out of {}: {}.",
            self.executed,
            count(self.total, "test", "tests"),
            parts.join(" and ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_follows_the_totals() {
        let passed = Totals {
            total: 2,
            executed: 2,
            passed: 2,
            ..Totals::default()
        };
        assert_eq!(verdict(&passed, false).unwrap(), ExitCode::Success);
        let failed = Totals {
            failed: 1,
            ..passed
        };
        assert_eq!(verdict(&failed, false).unwrap(), ExitCode::PartialSuccess);
        assert_eq!(
            verdict(&failed, true).unwrap_err().code,
            ExitCode::BuildFailed
        );
        // Skipped tests without a Ctrl-C (none came in this test) are no interruption.
        let skipped = Totals {
            skipped: 1,
            ..passed
        };
        assert_eq!(verdict(&skipped, false).unwrap(), ExitCode::Success);
    }
    use crate::core::PackageId;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn filters_split_wanted_and_unwanted() {
        let filter = Filter::parse(Some(" a, -b ,,c"));
        assert_eq!(filter.wanted, strings(&["a", "c"]));
        assert_eq!(filter.unwanted, strings(&["b"]));
        assert_eq!(Filter::parse(None), Filter::default());
    }

    #[test]
    fn filters_accept_by_wanted_and_reject_by_unwanted() {
        let filter = Filter::parse(Some("fast,-flaky"));
        assert!(filter.accepts(&strings(&["fast"])));
        assert!(!filter.accepts(&strings(&["fast", "flaky"])));
        assert!(!filter.accepts(&strings(&["slow"])));
        let only_unwanted = Filter::parse(Some("-flaky"));
        assert!(only_unwanted.accepts(&[]));
        assert!(!only_unwanted.accepts(&strings(&["flaky"])));
        assert!(Filter::default().accepts(&[]));
    }

    #[test]
    fn summary_lines_align_the_status_and_omit_time_when_nothing_ran() {
        let label = crate::core::Label::parse("//pkg:t", &PackageId::default()).expect("label");
        let result = TestResult {
            label,
            status: Status::FailedToBuild,
            runs: Vec::new(),
        };
        let line = summary_line(&result);
        let status = Status::FailedToBuild.text();
        assert!(line.starts_with("//pkg:t "), "{line}");
        assert!(line.ends_with(&format!(" {status}")), "{line}");
        assert_eq!(line.len(), 79);
        assert_eq!(stats_line(&result), None);
    }

    #[test]
    fn statistics_over_runs() {
        assert_eq!(
            stats_of(&[1.0, 3.0]),
            "Stats over 2 runs: max = 3.0s, min = 1.0s, avg = 2.0s, dev = 1.0s"
        );
    }

    #[test]
    fn totals_name_only_what_happened() {
        let totals = Totals {
            total: 3,
            executed: 2,
            passed: 2,
            failed: 1,
            ..Totals::default()
        };
        assert_eq!(
            totals.line(),
            "Executed 2 out of 3 tests: 2 tests pass and 1 fails locally."
        );
        let one = Totals {
            total: 1,
            executed: 0,
            unbuilt: 1,
            ..Totals::default()
        };
        assert_eq!(one.line(), "Executed 0 out of 1 test: 1 fails to build.");
    }
}

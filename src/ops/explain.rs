//! Explaining rebuilds: a build's `ExecResult` in, the `--explain` file out (why each action
//! ran, naming the input, variable, argument or tag that changed); and `forge why`: a target
//! and the build's settings in, its actions' last runs and what a build would do now out.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::plan::{PlanRequest, plan};
use crate::analysis::plan::BuildPlan;
use crate::core::{Action, Failure, Label};
use crate::exec::foresee::{Foreseen, Verdict, foresee};
use crate::exec::ingredients::{Change, Explanation, InputNamer, describe};
use crate::exec::{ExecConfig, ExecResult};
use crate::workspace::{OutputBaseOptions, Workspace};

/// `--explain=FILE` and `--verbose_explanations`.
#[derive(Clone, Debug)]
pub struct ExplainRequest {
    pub file: PathBuf,
    /// Every change of each action, not only the first.
    pub verbose: bool,
    /// The command line's options, for the file's first line as Bazel writes it.
    pub options: String,
}

/// The reasons in words: all of them (verbose), or the first and how many more.
fn reasons(changes: &[Change], verbose: bool, namer: &InputNamer) -> String {
    let name = |p: &str| namer.name(p);
    let words: Vec<String> = changes.iter().map(|c| describe(c, &name)).collect();
    match (verbose, words.as_slice()) {
        (_, []) => "it was not up to date".to_owned(),
        (false, [one]) => one.clone(),
        (false, [first, rest @ ..]) => format!(
            "{first} (and {}; --verbose_explanations lists them)",
            super::plural(rest.len(), "more change", "more changes")
        ),
        (true, all) => all.join("; "),
    }
}

/// Writes the `--explain` file: the options, then one line per action that ran.
pub fn write_explanations(
    request: &ExplainRequest,
    plan: &BuildPlan,
    exec_root: &Path,
    result: &ExecResult,
) -> Result<(), Failure> {
    let namer = InputNamer::new(&plan.actions, exec_root);
    let mut text = format!("Build options: {}\n", request.options);
    for e in &result.explanations {
        text.push_str(&explanation_line(e, request.verbose, &namer));
    }
    if result.explanations.is_empty() {
        text.push_str("Nothing ran: every action was up to date.\n");
    }
    crate::core::fs::write_atomic(&request.file, text.as_bytes()).map_err(|e| {
        Failure::failed(format!(
            "cannot write the explanation file '{}': {e}",
            request.file.display()
        ))
    })?;
    Ok(())
}

/// Adds to the `--explain` file why each test that ran did (a test from the cache did not
/// run): what changed since its last run.
pub fn append_test_explanations(
    request: &ExplainRequest,
    results: &[crate::testing::TestResult],
    exec_root: &Path,
    plan: &BuildPlan,
) -> Result<(), Failure> {
    let namer = InputNamer::new(&plan.actions, exec_root);
    let mut text = String::new();
    for result in results {
        for run in result.runs.iter().filter(|r| !r.changes.is_empty()) {
            let which = match result.runs.len() {
                1 => String::new(),
                _ => format!(" ({})", run.log.display()),
            };
            text.push_str(&format!(
                "Testing {}{which}: {}.\n",
                result.label,
                reasons(&run.changes, request.verbose, &namer)
            ));
        }
    }
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&request.file)
        .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()));
    file.as_mut().map_err(|e| {
        Failure::failed(format!(
            "cannot write the explanation file '{}': {e}",
            request.file.display()
        ))
    })?;
    Ok(())
}

fn explanation_line(e: &Explanation, verbose: bool, namer: &InputNamer) -> String {
    let action = match e.restored {
        true => format!("Restoring action '{}' from a cache", e.description),
        false => format!("Executing action '{}'", e.description),
    };
    format!("{action}: {}.\n", reasons(&e.changes, verbose, namer))
}

/// What `forge why` is asked.
pub struct WhyRequest<'a> {
    pub target: &'a str,
    pub cwd: PathBuf,
    pub startup: &'a OutputBaseOptions,
    pub plan: PlanSettings,
    pub action_env: std::collections::BTreeMap<String, String>,
    /// How `forge test` would run a test (`--test_env`, `--test_arg`, ...): a test's key.
    pub test_options: crate::testing::TestOptions,
}

/// The settings besides the patterns that decide a plan.
pub struct PlanSettings {
    pub defines: std::collections::BTreeMap<String, String>,
    pub stamp: bool,
    pub build_settings: Vec<String>,
    pub fetch: crate::fetch::FetchOptions,
    /// `-c` and `--cpu`: the top-level configuration.
    pub configuration: crate::core::layout::OutputConfiguration,
    /// `--platforms`, `--host_platform`, `--extra_toolchains`.
    pub platforms: super::platforms::PlatformFlags,
    /// `--copt`, `--linkopt`, `--features`, ...
    pub cpp: crate::analysis::cpp_fragment::CppOptions,
}

/// `forge why`'s answer, in words: the target's own actions (last run, and now), then the
/// actions of its dependencies that a build would run first.
pub fn why(request: WhyRequest<'_>, waiting: &mut dyn FnMut(&str)) -> Result<String, Failure> {
    let site = Workspace::locate(&request.cwd, request.startup)?;
    let _lock = crate::exec::lock_output_base_with(&site.output_base, waiting).map_err(|e| {
        Failure::failed(format!(
            "cannot lock the output base {}: {e}",
            site.output_base.display()
        ))
    })?;
    let workspace = Arc::new(super::fetch::evaluate_workspace(site, &request.plan.fetch)?);
    let cwd_package = workspace.package_of(&request.cwd);
    let target = match crate::core::TargetPattern::parse(request.target, &cwd_package) {
        Ok(crate::core::TargetPattern::Single(label)) => label,
        Ok(_) => {
            return Err(Failure::usage(format!(
                "forge why takes one target, not the pattern '{}'",
                request.target
            )));
        }
        Err(e) => {
            return Err(Failure::usage(format!(
                "invalid target '{}': {e}",
                request.target
            )));
        }
    };
    let patterns = [target.to_string()];
    let plan_for = |for_tests: bool| {
        plan(
            &workspace,
            &PlanRequest {
                patterns: &patterns,
                cwd_package: &cwd_package,
                defines: request.plan.defines.clone(),
                stamp: request.plan.stamp,
                build_settings: &request.plan.build_settings,
                keep_going: false,
                for_tests,
                fetch: &request.plan.fetch,
                output_groups: &[],
                configuration: &request.plan.configuration,
                platforms: &request.plan.platforms,
                cpp: &request.plan.cpp,
                aspects: &[],
                remote: None,
            },
        )
    };
    let mut plan = plan_for(false)?.plan;
    let is_test = plan.targets.get(&target).is_some_and(|t| t.is_test);
    if is_test {
        // As `forge test` plans it: with its runfiles, which its key covers.
        plan = plan_for(true)?.plan;
    }
    let exec_root = crate::outputs::prepare_exec_root(&workspace)
        .map_err(|e| Failure::failed(format!("cannot prepare the exec root: {e}")))?;
    let config = ExecConfig {
        workspace_root: Some(workspace.root.clone()),
        exec_root: exec_root.clone(),
        cache_dir: workspace.output_base.join("cache"),
        disk_cache: None,
        jobs: 1,
        keep_going: false,
        action_env: request.action_env,
        remote: None,
        remote_files: None,
    };
    let foreseen = foresee(&plan.actions, &plan.wanted, &config)
        .map_err(|e| Failure::failed(e.to_string()))?;
    let namer = InputNamer::new(&plan.actions, &exec_root);
    let mut text = render(&target, &plan.actions, &foreseen, &namer);
    if is_test {
        let rebuilds = foreseen.iter().any(|f| f.verdict != Verdict::UpToDate);
        let test = TestWhy {
            target: &target,
            plan: &plan,
            exec_root: &exec_root,
            cache_dir: &config.cache_dir,
            workspace_name: &workspace.name,
            options: &request.test_options,
        };
        text.push_str(&test.render(rebuilds, &namer));
    }
    Ok(text)
}

/// A test for `forge why`: its last run, and what `forge test` would do now.
struct TestWhy<'a> {
    target: &'a Label,
    plan: &'a BuildPlan,
    exec_root: &'a Path,
    cache_dir: &'a Path,
    workspace_name: &'a str,
    options: &'a crate::testing::TestOptions,
}

impl TestWhy<'_> {
    /// `<label>: the test itself`, its last run (its first shard and run, from the record
    /// `forge test` keeps) and its verdict now. `rebuilds`: some action it needs would run
    /// first, so its program or runfiles are not final yet.
    fn render(&self, rebuilds: bool, namer: &InputNamer) -> String {
        use crate::testing::{Forecast, Tests};
        let target = self.target;
        let log = format!(
            "{}/{}/test.log",
            self.plan.testlogs_dir,
            crate::testing::label_dir(target)
        );
        let runs = crate::exec::ingredients::IngredientLog::new(&self.cache_dir.join("tests"));
        let last = match runs.last(&log) {
            Some(record) => format!("ran last because {}", reasons(&record.changes, true, namer)),
            None => "has no recorded run".to_owned(),
        };
        let planned = &self.plan.targets[target];
        let now = match (&planned.executable, &planned.test) {
            _ if rebuilds => "its program or runfiles would be built again first (the actions \
                              above); it runs again unless they come out the same"
                .to_owned(),
            (Some(exe), Some(spec)) => {
                let interrupt = std::sync::atomic::AtomicBool::new(false);
                let tests = Tests {
                    exec_root: self.exec_root,
                    cache_dir: self.cache_dir,
                    workspace_name: self.workspace_name,
                    runner: &crate::exec::runner::LocalRunner,
                    interrupt: &interrupt,
                    options: self.options,
                    remote: None,
                    remote_files: None,
                    progress: &crate::exec::NoProgress,
                };
                let unit = (
                    target.clone(),
                    exe.to_string(),
                    planned.args.clone(),
                    spec.clone(),
                );
                match tests.forecast(&unit) {
                    Forecast::Cached => "a pass with these inputs is cached: `forge test` \
                                         would report it (cached) PASSED without running it"
                        .to_owned(),
                    Forecast::WouldRun(changes) => format!(
                        "`forge test` would run it because {}",
                        reasons(&changes, true, namer)
                    ),
                    Forecast::NotBuilt => "its program or runfiles are not built: `forge \
                                           test` would build them and run it"
                        .to_owned(),
                }
            }
            _ => "it has no program to run".to_owned(),
        };
        format!("{target}: the test itself\n  last time: it {last}\n  now: {now}\n")
    }
}

fn render(target: &Label, actions: &[Action], foreseen: &[Foreseen], namer: &InputNamer) -> String {
    let (own, others): (Vec<&Foreseen>, Vec<&Foreseen>) = foreseen
        .iter()
        .partition(|f| actions[f.index].owner == *target);
    let mut out = String::new();
    if own.is_empty() {
        let _ = writeln!(out, "{target} has no actions: there is nothing it runs.");
    }
    for f in &own {
        let action = &actions[f.index];
        let _ = writeln!(
            out,
            "{target}: {} action '{}' ({})",
            action.mnemonic,
            crate::exec::describe_action(action),
            action.outputs.first().map_or("", |o| o.as_str())
        );
        let last = match &f.last {
            Some(record) => format!("ran last because {}", reasons(&record.changes, true, namer)),
            None => "has no recorded run".to_owned(),
        };
        let _ = writeln!(out, "  last time: it {last}");
        let _ = writeln!(out, "  now: {}", verdict_words(&f.verdict, namer));
    }
    let upstream: Vec<&&Foreseen> = others
        .iter()
        .filter(|f| f.verdict != Verdict::UpToDate)
        .collect();
    if !upstream.is_empty() {
        let _ = writeln!(out, "Dependencies a build would run first:");
        for f in upstream {
            let action = &actions[f.index];
            let _ = writeln!(
                out,
                "  {} '{}': {}",
                action.owner,
                crate::exec::describe_action(action),
                verdict_words(&f.verdict, namer)
            );
        }
    }
    out
}

fn verdict_words(verdict: &Verdict, namer: &InputNamer) -> String {
    match verdict {
        Verdict::UpToDate => "up to date: a build would not run it".to_owned(),
        Verdict::WouldRun(changes) => {
            format!("it would run because {}", reasons(changes, true, namer))
        }
        Verdict::AfterInput { path, producer } => format!(
            "it waits for {}, which {producer} would make again first; it runs again if \
             that file's content changes",
            namer.name(path)
        ),
        Verdict::MissingInput { path, problem } => {
            format!(
                "it cannot run: input {} is missing ({problem})",
                namer.name(path)
            )
        }
    }
}

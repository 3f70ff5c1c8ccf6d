//! How a building command reports: the flags (`--curses`, `--show_progress`,
//! `--show_progress_rate_limit`, `--show_result`, `-s`, `--nobuild`, the build event files,
//! `--profile`) in; a `Session` out that carries them through the command — the console's
//! settings for the progress (colored as `--color` says), which requested targets were
//! built, the event files and the profile filled as the build reports,
//! and written when the command ends. Without those files nothing is recorded.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use clap::Args;

use super::build_events::{BuildEventFiles, Start};
use super::console::{self, Choice};
use super::profile::{Profile, Recording};
use crate::analysis::plan::BuildPlan;
use crate::core::{Action, ExitCode, Failure, Label};
use crate::exec::progress::{ConsoleSettings, terminal_size};
use crate::exec::{ActionOutcome, ConsoleProgress, Progress};
use crate::ops::build::Executed;
use crate::ops::plan::Planned;
use crate::testing::TestResult;

/// Flags of the building commands that decide what they print and record.
#[derive(Args, Debug, Clone)]
pub struct ReportingOptions {
    /// A live status redrawn in place: `yes`, `no`, or `auto` (the default: on a terminal).
    #[arg(long = "curses", value_name = "yes|no|auto", value_parser = Choice::parse)]
    pub curses: Option<Choice>,

    /// Show the progress of the build (the default; `--noshow_progress` hides it).
    #[arg(
        long = "show_progress",
        alias = "show-progress",
        value_name = "BOOL",
        value_parser = clap::value_parser!(bool)
    )]
    pub show_progress: Option<bool>,

    /// The least number of seconds between two progress lines (or redraws). Without it,
    /// progress on a terminal is redrawn ten times a second, and a log gets a line at most
    /// every second, less often as the build goes on.
    #[arg(
        long = "show_progress_rate_limit",
        alias = "show-progress-rate-limit",
        value_name = "SECONDS",
        value_parser = parse_seconds
    )]
    pub show_progress_rate_limit: Option<f64>,

    /// Print each target's outputs (`Target //x up-to-date:`) when at most this many
    /// targets were requested (default 1; 0 never).
    #[arg(long = "show_result", alias = "show-result", value_name = "N")]
    pub show_result: Option<usize>,

    /// Print each command line as it runs.
    #[arg(short = 's', long = "subcommands")]
    pub subcommands: bool,

    /// Execute the actions (the default); `--nobuild` stops after analysis.
    #[arg(long = "build", value_name = "BOOL", value_parser = clap::value_parser!(bool))]
    pub build: Option<bool>,

    /// Write Bazel's build events to this file, one JSON object a line.
    #[arg(
        long = "build_event_json_file",
        alias = "build-event-json-file",
        value_name = "FILE"
    )]
    pub build_event_json_file: Option<PathBuf>,

    /// Write Bazel's build events to this file in the protobuf text format.
    #[arg(
        long = "build_event_text_file",
        alias = "build-event-text-file",
        value_name = "FILE"
    )]
    pub build_event_text_file: Option<PathBuf>,

    /// Write a trace of the command (phases, each action on its worker thread) to this
    /// file, in the JSON format chrome://tracing and Perfetto open.
    #[arg(long = "profile", value_name = "FILE")]
    pub profile: Option<PathBuf>,
}

/// Seconds, zero or more: `0`, `2.5`, `30s`, `500ms`.
fn parse_seconds(text: &str) -> Result<f64, super::ValueError> {
    let (number, scale) = match text.strip_suffix("ms") {
        Some(n) => (n, 0.001),
        None => (text.strip_suffix('s').unwrap_or(text), 1.0),
    };
    match number.parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Ok(s * scale),
        _ => Err(super::ValueError::NotDuration(text.to_owned())),
    }
}

/// The whole command line after rc expansion, for the build event files; set once by
/// `cli::run` before the command starts.
static COMMAND_LINE: OnceLock<Vec<String>> = OnceLock::new();

pub fn remember_command_line(args: &[String]) {
    let _ = COMMAND_LINE.set(args.to_vec());
}

/// One building command's reporting, from its start to its exit code.
pub struct Session {
    console: ConsoleSettings,
    show_result: usize,
    execute: bool,
    patterns: Vec<String>,
    events: Mutex<Option<BuildEventFiles>>,
    profile: Option<Profile>,
    /// When analysis ended, to mark the execution phase.
    analyzed_at: Mutex<Option<Instant>>,
    /// The actions that succeeded, by address: which targets were built when some action
    /// failed.
    succeeded: Mutex<Vec<usize>>,
}

impl Session {
    /// Chooses the colors, opens the event files (writing `started`) and starts the profile.
    pub fn start(
        command: &str,
        build_options: &super::build::BuildOptions,
        patterns: &[String],
    ) -> Result<Session, Failure> {
        let origin = Instant::now();
        let options = &build_options.reporting;
        let verbose_failures = build_options.verbose_failures;
        console::choose(build_options.common.color.unwrap_or_default());
        let (width, height) = terminal_size();
        let stderr_terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let console = ConsoleSettings {
            live: options.curses.unwrap_or_default().on(stderr_terminal),
            color: console::stderr_colored(),
            show_progress: options.show_progress.unwrap_or(true),
            rate_limit: options
                .show_progress_rate_limit
                .map(Duration::from_secs_f64),
            subcommands: options.subcommands,
            verbose_failures,
            width,
            height,
        };
        let mut events = BuildEventFiles::create(
            options.build_event_json_file.as_ref(),
            options.build_event_text_file.as_ref(),
        )?;
        if let Some(events) = &mut events {
            let cwd = super::current_dir()?;
            let workspace = crate::workspace::find_root(&cwd).map(|(root, _)| root);
            let all = COMMAND_LINE.get().cloned().unwrap_or_default();
            // The arguments after the command's name.
            let args: Vec<String> = match all.iter().position(|a| a == command) {
                Some(i) => all[i + 1..].to_vec(),
                None => all,
            };
            events.started(&Start {
                command,
                args: &args,
                patterns,
                working_directory: &cwd,
                workspace_directory: workspace.as_deref(),
                started: SystemTime::now(),
            });
        }
        Ok(Session {
            console,
            show_result: options.show_result.unwrap_or(1),
            execute: options.build.unwrap_or(true),
            patterns: patterns.to_vec(),
            events: Mutex::new(events),
            profile: options.profile.as_ref().map(|p| Profile::new(p, origin)),
            analyzed_at: Mutex::new(None),
            succeeded: Mutex::new(Vec::new()),
        })
    }

    /// Whether actions run (false with `--nobuild`).
    pub fn executes(&self) -> bool {
        self.execute
    }

    /// `--show_result`.
    pub fn show_result(&self) -> usize {
        self.show_result
    }

    /// The console's progress on stderr, as the flags set it.
    fn console_progress(&self) -> ConsoleProgress {
        ConsoleProgress::with_settings(Box::new(std::io::stderr()), self.console.clone())
    }

    /// Runs `body` with the progress it should report to: the console, the profile when
    /// one is recorded, and what the event files need to know of each action.
    pub fn with_progress<T>(&self, body: impl FnOnce(&dyn Progress) -> T) -> T {
        let console = self.console_progress();
        let recording;
        let mut progress: &dyn Progress = &console;
        if let Some(profile) = &self.profile {
            recording = Recording {
                inner: progress,
                profile,
            };
            progress = &recording;
        }
        let observer = Observer {
            inner: progress,
            succeeded: &self.succeeded,
        };
        body(&observer)
    }

    fn events(&self) -> std::sync::MutexGuard<'_, Option<BuildEventFiles>> {
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The requested targets that were not built: those with an output whose action failed
    /// or never ran (a dependency failed, or the build stopped first).
    pub fn unbuilt<'a>(&self, plan: &'a BuildPlan, executed: &Executed) -> BTreeSet<&'a Label> {
        if executed.result.failures.is_empty() && !executed.result.interrupted {
            return BTreeSet::new();
        }
        let succeeded: HashSet<usize> = self
            .succeeded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect();
        // Each generated file, and whether the action making it succeeded.
        let made: HashMap<&str, bool> = plan
            .actions
            .iter()
            .flat_map(|a| {
                let ok = succeeded.contains(&address(a));
                a.outputs.iter().map(move |o| (o.as_str(), ok))
            })
            .collect();
        plan.targets
            .iter()
            .filter(|(_, target)| {
                target
                    .outputs
                    .iter()
                    .any(|o| made.get(o.as_str()) == Some(&false))
            })
            .map(|(label, _)| label)
            .collect()
    }

    /// Loading and analysis are done.
    pub fn analyzed(&self, planned: &Planned) {
        let now = Instant::now();
        *self.analyzed_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(now);
        if let Some(profile) = &self.profile {
            for phase in &planned.phases {
                profile.phase(phase.name, phase.start, phase.end);
            }
        }
        if let Some(events) = self.events().as_mut() {
            events.analyzed(&self.patterns, &planned.plan);
        }
    }

    /// The actions ran: each target completed or failed.
    pub fn executed(&self, plan: &BuildPlan, executed: &Executed) {
        let start = *self.analyzed_at.lock().unwrap_or_else(|e| e.into_inner());
        if let (Some(profile), Some(start)) = (&self.profile, start) {
            profile.phase("Execute actions", start, Instant::now());
        }
        if let Some(events) = self.events().as_mut() {
            let unbuilt = self.unbuilt(plan, executed);
            events.completed(plan, &executed.exec_root, &executed.result, &unbuilt);
        }
    }

    /// The tests ran, between `start` and now.
    pub fn tested(&self, results: &[TestResult], start: Instant) {
        if let Some(profile) = &self.profile {
            profile.phase("Run tests", start, Instant::now());
        }
        if let Some(events) = self.events().as_mut() {
            events.tested(results);
        }
    }

    /// The command is over: `buildFinished` with its exit code, and the profile written.
    pub fn finish(self, result: Result<ExitCode, Failure>) -> Result<ExitCode, Failure> {
        let code = match &result {
            Ok(code) => *code,
            Err(failure) => failure.code,
        };
        if let Some(events) = self.events().as_mut() {
            events.finished(code);
        }
        if let Some(profile) = &self.profile
            && let Err(failure) = profile.write()
        {
            return match result {
                Ok(_) => Err(failure),
                Err(mut earlier) => {
                    earlier.errors.extend(failure.errors);
                    Err(earlier)
                }
            };
        }
        result
    }
}

/// An action's identity for the length of the command: the plan's actions do not move.
fn address(action: &Action) -> usize {
    action as *const Action as usize
}

/// Progress that notes every action that succeeded (ran, came from a cache, or was up to
/// date) and passes every event on: whether a target was built when some action failed.
/// Only an address is noted, so a build that fails nothing pays next to nothing.
struct Observer<'a> {
    inner: &'a dyn Progress,
    succeeded: &'a Mutex<Vec<usize>>,
}

impl Progress for Observer<'_> {
    fn begin(&self, total: usize) {
        self.inner.begin(total);
    }

    fn started(&self, action: &Action) {
        self.inner.started(action);
    }

    fn command(
        &self,
        action: &Action,
        argv: &[String],
        env: &std::collections::BTreeMap<String, String>,
        exec_root: &Path,
    ) {
        self.inner.command(action, argv, env, exec_root);
    }

    fn finished(&self, action: &Action, outcome: &ActionOutcome<'_>) {
        if !matches!(outcome, ActionOutcome::Failed(_)) {
            self.succeeded
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(address(action));
        }
        self.inner.finished(action, outcome);
    }

    fn tick(&self) {
        self.inner.tick();
    }

    fn message(&self, text: &str) {
        self.inner.message(text);
    }

    fn end(&self) {
        self.inner.end();
    }
}

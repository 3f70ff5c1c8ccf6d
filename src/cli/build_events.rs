//! The build event files (`--build_event_json_file`, `--build_event_text_file`): what a
//! command started with, planned, built and tested in; Bazel's build events
//! (`build_event_stream.proto`: started, unstructuredCommandLine, pattern, configuration,
//! targetConfigured, actionCompleted, namedSetOfFiles, targetCompleted, testResult,
//! testSummary, buildFinished, buildMetrics) out, one JSON object a line or in the text
//! format.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::proto_text::{Msg, Value};
use crate::analysis::plan::BuildPlan;
use crate::core::{ExitCode, Failure, Label, layout};
use crate::exec::{ActionFailure, ExecResult};
use crate::testing::{Status, TestResult};

/// The open event files of one command.
pub struct BuildEventFiles {
    json: Option<BufWriter<File>>,
    text: Option<BufWriter<File>>,
    /// Named sets of files written so far (their ids are counted from 0).
    named_sets: usize,
    actions_executed: usize,
    actions_created: usize,
    packages_loaded: usize,
    targets_configured: usize,
    /// The top-level configuration's directory name (`k8-fastbuild`), known once the build
    /// is analysed: every target event names it.
    configuration: String,
}

/// What the `started` event says of the command.
pub struct Start<'a> {
    pub command: &'a str,
    /// The command's arguments after the command name, rc files' options included.
    pub args: &'a [String],
    pub patterns: &'a [String],
    pub working_directory: &'a Path,
    pub workspace_directory: Option<&'a Path>,
    pub started: SystemTime,
}

fn millis(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn open(path: &Path, flag: &str) -> Result<BufWriter<File>, Failure> {
    File::create(path).map(BufWriter::new).map_err(|e| {
        Failure::usage(format!(
            "--{flag}={}: cannot create the file: {e}",
            path.display()
        ))
    })
}

/// A fresh id for the build, in the form of a UUID (version 4): unique per process and time.
fn uuid() -> String {
    let seed = format!("{}:{:?}", std::process::id(), SystemTime::now());
    let hash = blake3::hash(seed.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&hash.as_bytes()[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn id(kind: &'static str, body: Msg) -> Msg {
    Msg::new().msg(kind, body)
}

fn children(ids: Vec<Msg>) -> Vec<Value> {
    ids.into_iter().map(Value::Msg).collect()
}

/// The id of a configuration: its directory name.
fn configuration_id(configuration: &str) -> Msg {
    Msg::new().str("id", configuration)
}

/// A requested target, in the top-level configuration.
fn label_id(label: &Label, configuration: &str) -> Msg {
    Msg::new()
        .str("label", label.to_string())
        .msg("configuration", configuration_id(configuration))
}

/// A `File` message for an output under the exec root.
fn file(exec_root: &Path, exec_path: &str) -> Msg {
    let (prefix, name) = match layout::bin_root_of(exec_path) {
        Some(root) => (root.to_owned(), exec_path[root.len() + 1..].to_owned()),
        None => (String::new(), exec_path.to_owned()),
    };
    Msg::new()
        .str("name", name)
        .str("uri", file_uri(&exec_root.join(exec_path)))
        .repeated(
            "path_prefix",
            prefix
                .split('/')
                .filter(|p| !p.is_empty())
                .map(|p| Value::Str(p.to_owned()))
                .collect(),
        )
}

fn file_uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

fn test_status(status: Status) -> &'static str {
    match status {
        Status::Passed | Status::CachedPassed => "PASSED",
        Status::Flaky => "FLAKY",
        Status::Failed => "FAILED",
        Status::Timeout => "TIMEOUT",
        // Bazel 4's TestStatus has no value for a test skipped as incompatible.
        Status::NoStatus | Status::Skipped => "NO_STATUS",
        Status::FailedToBuild => "FAILED_TO_BUILD",
    }
}

/// Bazel's `ExitCode` names.
fn exit_code_name(code: ExitCode) -> &'static str {
    match code {
        ExitCode::Success => "SUCCESS",
        ExitCode::BuildFailed => "BUILD_FAILURE",
        ExitCode::BadCommandLine => "COMMAND_LINE_ERROR",
        ExitCode::PartialSuccess => "TESTS_FAILED",
        ExitCode::NoTestsFound => "NO_TESTS_FOUND",
        ExitCode::Interrupted => "INTERRUPTED",
    }
}

impl BuildEventFiles {
    /// Creates the files the flags name (none: `None`, and nothing is ever done).
    pub fn create(
        json: Option<&PathBuf>,
        text: Option<&PathBuf>,
    ) -> Result<Option<BuildEventFiles>, Failure> {
        if json.is_none() && text.is_none() {
            return Ok(None);
        }
        Ok(Some(BuildEventFiles {
            json: json.map(|p| open(p, "build_event_json_file")).transpose()?,
            text: text.map(|p| open(p, "build_event_text_file")).transpose()?,
            named_sets: 0,
            actions_executed: 0,
            actions_created: 0,
            packages_loaded: 0,
            targets_configured: 0,
            configuration: String::new(),
        }))
    }

    fn write(&mut self, event: &Msg) {
        // The event files are a report; failing to write one must not fail the build.
        if let Some(json) = &mut self.json {
            let _ = writeln!(json, "{}", event.to_json());
        }
        if let Some(text) = &mut self.text {
            let _ = text.write_all(event.to_text().as_bytes());
        }
    }

    /// `started` and `unstructuredCommandLine`.
    pub fn started(&mut self, start: &Start) {
        let pattern = id(
            "pattern",
            Msg::new().repeated(
                "pattern",
                start
                    .patterns
                    .iter()
                    .map(|p| Value::Str(p.clone()))
                    .collect(),
            ),
        );
        let mut started = Msg::new()
            .str("uuid", uuid())
            .long("start_time_millis", millis(start.started))
            .str(
                "build_tool_version",
                format!("forge {}", env!("CARGO_PKG_VERSION")),
            )
            .str("command", start.command)
            .str(
                "working_directory",
                start.working_directory.display().to_string(),
            );
        if let Some(dir) = start.workspace_directory {
            started = started.str("workspace_directory", dir.display().to_string());
        }
        started = started.long("server_pid", i64::from(std::process::id()));
        self.write(
            &Msg::new()
                .msg("id", id("started", Msg::new()))
                .repeated(
                    "children",
                    children(vec![
                        id("unstructured_command_line", Msg::new()),
                        pattern,
                        id("build_finished", Msg::new()),
                    ]),
                )
                .msg("started", started),
        );
        let mut args = vec![Value::Str(start.command.to_owned())];
        args.extend(start.args.iter().map(|a| Value::Str(a.clone())));
        self.write(
            &Msg::new()
                .msg("id", id("unstructured_command_line", Msg::new()))
                .msg(
                    "unstructured_command_line",
                    Msg::new().repeated("args", args),
                ),
        );
    }

    /// `pattern` (expanded), `configuration` and a `targetConfigured` per target.
    pub fn analyzed(&mut self, patterns: &[String], plan: &BuildPlan) {
        self.packages_loaded = plan.packages_loaded;
        self.targets_configured = plan.targets_configured;
        self.actions_created = plan.actions.len();
        self.configuration = layout::configuration_of(&plan.bin_dir)
            .unwrap_or_default()
            .to_owned();
        let pattern = id(
            "pattern",
            Msg::new().repeated(
                "pattern",
                patterns.iter().map(|p| Value::Str(p.clone())).collect(),
            ),
        );
        let configured: Vec<Msg> = plan
            .targets
            .keys()
            .map(|l| id("target_configured", Msg::new().str("label", l.to_string())))
            .collect();
        self.write(
            &Msg::new()
                .msg("id", pattern)
                .repeated("children", children(configured))
                .msg("expanded", Msg::new()),
        );
        let config = self.configuration.clone();
        // `k8-fastbuild`: the CPU names the platform, as Bazel's configuration event does.
        let cpu = config.split('-').next().unwrap_or_default().to_owned();
        self.write(
            &Msg::new()
                .msg(
                    "id",
                    id("configuration", configuration_id(&self.configuration)),
                )
                .msg(
                    "configuration",
                    Msg::new()
                        .str("mnemonic", config.to_string())
                        .str("platform_name", cpu.clone())
                        .str("cpu", cpu),
                ),
        );
        for (label, target) in &plan.targets {
            let mut kids = vec![id("target_completed", label_id(label, &self.configuration))];
            if target.is_test {
                kids.push(id("test_summary", label_id(label, &self.configuration)));
            }
            let mut configured = Msg::new().str("target_kind", target.kind.clone());
            if let Some(test) = &target.test {
                let size = match test.size.as_str() {
                    "small" => "SMALL",
                    "large" => "LARGE",
                    "enormous" => "ENORMOUS",
                    _ => "MEDIUM",
                };
                configured = configured.enumeration("test_size", size);
            }
            configured = configured.repeated(
                "tag",
                target.tags.iter().map(|t| Value::Str(t.clone())).collect(),
            );
            self.write(
                &Msg::new()
                    .msg(
                        "id",
                        id(
                            "target_configured",
                            Msg::new().str("label", label.to_string()),
                        ),
                    )
                    .repeated("children", children(kids))
                    .msg("configured", configured),
            );
        }
    }

    /// An `actionCompleted` per failed action, then `namedSetOfFiles` and `targetCompleted`
    /// for each target: its outputs, or the failure for the `unbuilt` ones.
    pub fn completed(
        &mut self,
        plan: &BuildPlan,
        exec_root: &Path,
        result: &ExecResult,
        unbuilt: &BTreeSet<&Label>,
    ) {
        self.actions_executed = result.executed;
        for failure in &result.failures {
            self.action_failed(plan, exec_root, failure);
        }
        for (label, target) in &plan.targets {
            let mut completed = Msg::new();
            if unbuilt.contains(label) {
                completed = completed.msg(
                    "failure_detail",
                    Msg::new().str("message", format!("Target {label} failed to build")),
                );
            } else {
                let files: Vec<Value> = target
                    .outputs
                    .iter()
                    .map(|o| Value::Msg(file(exec_root, o.as_str())))
                    .collect();
                let set = self.named_sets.to_string();
                self.named_sets += 1;
                self.write(
                    &Msg::new()
                        .msg("id", id("named_set", Msg::new().str("id", set.clone())))
                        .msg(
                            "named_set_of_files",
                            Msg::new().repeated("files", files.clone()),
                        ),
                );
                completed = completed
                    .bool("success", true)
                    .repeated(
                        "output_group",
                        vec![Value::Msg(Msg::new().str("name", "default").repeated(
                            "file_sets",
                            vec![Value::Msg(Msg::new().str("id", set))],
                        ))],
                    )
                    .repeated("important_output", files);
            }
            completed = completed.repeated(
                "tag",
                target.tags.iter().map(|t| Value::Str(t.clone())).collect(),
            );
            self.write(
                &Msg::new()
                    .msg(
                        "id",
                        id("target_completed", label_id(label, &self.configuration)),
                    )
                    .msg("completed", completed),
            );
        }
    }

    /// Bazel's `actionCompleted` for a failed action: its label, mnemonic, exit code, command
    /// line and what went wrong.
    fn action_failed(&mut self, plan: &BuildPlan, exec_root: &Path, failure: &ActionFailure) {
        let primary = plan
            .actions
            .iter()
            .find(|a| a.owner == failure.owner && a.mnemonic == failure.mnemonic)
            .and_then(|a| a.outputs.first())
            .map(|o| o.as_str().to_owned())
            .unwrap_or_default();
        let mut action = Msg::new()
            .str("label", failure.owner.to_string())
            .str("type", failure.mnemonic.clone());
        if let Some(code) = failure
            .exit
            .strip_prefix("exit ")
            .and_then(|c| c.parse::<i64>().ok())
        {
            action = action.int("exit_code", code);
        }
        if !primary.is_empty() {
            action = action.msg("primary_output", file(exec_root, &primary));
        }
        action = action
            .repeated(
                "command_line",
                failure
                    .command
                    .iter()
                    .map(|a| Value::Str(a.clone()))
                    .collect(),
            )
            .msg(
                "failure_detail",
                Msg::new().str("message", format!("{}\n{}", failure.exit, failure.output)),
            );
        self.write(
            &Msg::new()
                .msg(
                    "id",
                    id(
                        "action_completed",
                        Msg::new()
                            .str("primary_output", primary)
                            .str("label", failure.owner.to_string())
                            .msg("configuration", configuration_id(&self.configuration)),
                    ),
                )
                .msg("action", action),
        );
    }

    /// A `testResult` per run and a `testSummary` per test.
    pub fn tested(&mut self, results: &[TestResult]) {
        for result in results {
            let mut passed = Vec::new();
            let mut failed = Vec::new();
            let mut cached = 0;
            let mut total_millis = 0;
            for (i, run) in result.runs.iter().enumerate() {
                let log = Value::Msg(Msg::new().str("uri", file_uri(&run.log)));
                match run.status.passed() {
                    true => passed.push(log),
                    false => failed.push(log),
                }
                let cached_locally = run.status == Status::CachedPassed;
                cached += usize::from(cached_locally);
                let duration = run.duration.as_millis() as i64;
                total_millis += duration;
                let xml = run.log.with_file_name("test.xml");
                let mut outputs = vec![Value::Msg(
                    Msg::new()
                        .str("name", "test.log")
                        .str("uri", file_uri(&run.log)),
                )];
                if xml.exists() {
                    outputs.push(Value::Msg(
                        Msg::new()
                            .str("name", "test.xml")
                            .str("uri", file_uri(&xml)),
                    ));
                }
                let mut body = Msg::new()
                    .repeated("test_action_output", outputs)
                    .long("test_attempt_duration_millis", duration)
                    .enumeration("status", test_status(run.status));
                if cached_locally {
                    body = body.bool("cached_locally", true);
                }
                self.write(
                    &Msg::new()
                        .msg(
                            "id",
                            id(
                                "test_result",
                                Msg::new()
                                    .str("label", result.label.to_string())
                                    .int("run", i as i64 + 1)
                                    .int("shard", 1)
                                    .int("attempt", 1)
                                    .msg("configuration", configuration_id(&self.configuration)),
                            ),
                        )
                        .msg("test_result", body),
                );
            }
            let runs = result.runs.len() as i64;
            let summary = Msg::new()
                .enumeration("overall_status", test_status(result.status))
                .int("total_run_count", runs)
                .int("run_count", runs)
                .int("attempt_count", runs.min(1))
                .int("shard_count", 1)
                .repeated("passed", passed)
                .repeated("failed", failed)
                .int("total_num_cached", cached as i64)
                .long("total_run_duration_millis", total_millis);
            self.write(
                &Msg::new()
                    .msg(
                        "id",
                        id("test_summary", label_id(&result.label, &self.configuration)),
                    )
                    .msg("test_summary", summary),
            );
        }
    }

    /// `buildFinished` with the exit code, then `buildMetrics`, the last message.
    pub fn finished(&mut self, code: ExitCode) {
        let number = code as i64;
        let mut exit = Msg::new().str("name", exit_code_name(code));
        if number != 0 {
            exit = exit.int("code", number);
        }
        let mut finished = Msg::new();
        if code == ExitCode::Success {
            finished = finished.bool("overall_success", true);
        }
        finished = finished
            .msg("exit_code", exit)
            .long("finish_time_millis", millis(SystemTime::now()));
        self.write(
            &Msg::new()
                .msg("id", id("build_finished", Msg::new()))
                .repeated("children", children(vec![id("build_metrics", Msg::new())]))
                .msg("finished", finished),
        );
        let metrics = Msg::new()
            .msg(
                "action_summary",
                Msg::new()
                    .long("actions_created", self.actions_created as i64)
                    .long("actions_executed", self.actions_executed as i64),
            )
            .msg(
                "target_metrics",
                Msg::new().long("targets_configured", self.targets_configured as i64),
            )
            .msg(
                "package_metrics",
                Msg::new().long("packages_loaded", self.packages_loaded as i64),
            );
        self.write(
            &Msg::new()
                .msg("id", id("build_metrics", Msg::new()))
                .bool("last_message", true)
                .msg("build_metrics", metrics),
        );
        for writer in [&mut self.json, &mut self.text].into_iter().flatten() {
            let _ = writer.flush();
        }
    }
}

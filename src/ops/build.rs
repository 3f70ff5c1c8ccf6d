//! Building: a `BuildRequest` (patterns and settings parsed from flags) in; the plan made
//! (`ops::plan`) and run — the exec root prepared (runfiles trees written), the actions run by
//! the chosen sandbox runner, the `forge-*` links made — out, as a `Built` for the commands
//! that go on (test, run), with `BuildEvent`s for the front end to report along the way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::plan::{PlanRequest, Planned, plan};
use super::plural;
use crate::analysis::plan::BuildPlan;
use crate::core::{Diagnostic, ExitCode, Failure};
use crate::exec::remote_outputs::{DownloadMode, FetchError, RemoteFiles};
use crate::exec::remote_runner::{RemoteExecSpec, RemoteRunner, Strategy};
use crate::exec::runner::{Cancel, Runner, Spawn, SpawnOutcome};
use crate::exec::sandbox::{self, SandboxConfig, SandboxRunner};
use crate::exec::{self, ExecConfig, Progress};
use crate::fetch::FetchOptions;
use crate::outputs;
use crate::remote::RemoteCache;
use crate::workspace::{OutputBaseOptions, Workspace};

/// One build, as the front end asks for it.
pub struct BuildRequest<'a> {
    pub patterns: &'a [String],
    /// The directory the command runs in: it finds the workspace and starts relative patterns.
    pub cwd: PathBuf,
    pub startup: &'a OutputBaseOptions,
    pub keep_going: bool,
    /// For `forge test`: the plan lists the tests, the runner stays for them, and a failed
    /// build with `--keep_going` still returns what built.
    pub for_tests: bool,
    pub jobs: usize,
    pub action_env: BTreeMap<String, String>,
    pub defines: BTreeMap<String, String>,
    /// `--stamp`.
    pub stamp: bool,
    /// Build settings as given on the command line: `--//pkg:flag=value`, `--no//pkg:flag`.
    pub build_settings: Vec<String>,
    pub disk_cache: Option<PathBuf>,
    pub remote: Option<Arc<RemoteCache>>,
    /// `--remote_download_minimal`, `--remote_download_toplevel`: what to download of the
    /// outputs made or found remotely.
    pub remote_download: DownloadMode,
    pub fetch: FetchOptions,
    pub sandbox: SandboxOptions,
    /// `--output_groups`: `+x`/`-x` add to or take from the defaults, `x` replaces them.
    pub output_groups: Vec<String>,
    /// `-c` and `--cpu`: the top-level configuration.
    pub configuration: crate::core::layout::OutputConfiguration,
    /// `--platforms`, `--host_platform`, `--extra_toolchains`.
    pub platforms: super::platforms::PlatformFlags,
    /// `--explain=FILE`: why each action ran, written there after execution.
    pub explain: Option<super::explain::ExplainRequest>,
    /// `--copt`, `--linkopt`, `--features`, ...
    pub cpp: crate::analysis::cpp_fragment::CppOptions,
    /// `--aspects`: `//pkg:file.bzl%name` items applied to the requested targets.
    pub aspects: Vec<String>,
}

/// What the front end hears while a build runs, in this order.
pub enum BuildEvent<'a> {
    /// Another forge holds the output base; this one waits.
    Waiting(&'a str),
    /// Loading and analysis are done, or the plan was reused.
    Analyzed(&'a Planned),
    /// The actions ran.
    Executed {
        plan: &'a BuildPlan,
        executed: &'a Executed,
        elapsed: Duration,
    },
    /// `forge test --keep_going`: the build failed; the tests that built still run.
    ContinuingAfterFailure(&'a [Diagnostic]),
    /// Everything built.
    Completed { total_actions: usize },
}

/// What a build produced, for the commands built on it.
pub struct Built {
    pub workspace: Arc<Workspace>,
    pub exec_root: PathBuf,
    /// What was built, per requested target.
    pub plan: BuildPlan,
    /// The runner, for commands that run more (tests); cleans up when dropped, before the
    /// lock below is released (fields drop in this order).
    pub runner: ActionRunner,
    /// Keeps the output base locked until the command is done with it.
    pub lock: exec::Lock,
    /// Only with `forge test --keep_going`: some of the build failed.
    pub build_failed: bool,
    /// Outputs left in the remote CAS (build without the bytes), for `forge run` to fetch.
    pub remote_files: Option<Arc<RemoteFiles>>,
}

/// What loading and analysis left for execution (`--nobuild` stops here).
pub struct Analyzed {
    pub workspace: Arc<Workspace>,
    pub planned: Planned,
    /// Keeps the output base locked until the command is done with it.
    pub lock: exec::Lock,
}

/// Loads and analyses the request's patterns (or reuses their plan), telling `events` when
/// it waits for another forge and when analysis is done.
pub fn analyze(
    request: &BuildRequest,
    events: &mut dyn FnMut(BuildEvent),
) -> Result<Analyzed, Failure> {
    // From the start: a Ctrl-C during loading or analysis stops the build before any action
    // runs, with exit code 8, instead of killing forge mid-write.
    let _ = exec::install_interrupt_handler();
    if request.patterns.is_empty() {
        return Err(Failure::usage(
            "no targets given: name at least one, e.g. `forge build //...`",
        ));
    }
    let site = Workspace::locate(&request.cwd, request.startup)?;
    // Locking makes the output base if needed.
    let lock = exec::lock_output_base_with(&site.output_base, &mut |msg| {
        events(BuildEvent::Waiting(msg))
    })
    .map_err(|e| {
        Failure::failed(format!(
            "cannot lock the output base {}: {e}",
            site.output_base.display()
        ))
    })?;
    // Evaluated under the lock: WORKSPACE's loads may fetch into the output base.
    let workspace = Arc::new(super::fetch::evaluate_workspace(site, &request.fetch)?);
    let cwd_package = workspace.package_of(&request.cwd);
    let planned = plan(
        &workspace,
        &PlanRequest {
            patterns: request.patterns,
            cwd_package: &cwd_package,
            defines: request.defines.clone(),
            stamp: request.stamp,
            build_settings: &request.build_settings,
            keep_going: request.keep_going,
            for_tests: request.for_tests,
            fetch: &request.fetch,
            output_groups: &request.output_groups,
            configuration: &request.configuration,
            platforms: &request.platforms,
            cpp: &request.cpp,
            aspects: &request.aspects,
            remote: request.remote.as_ref(),
        },
    )?;
    events(BuildEvent::Analyzed(&planned));
    Ok(Analyzed {
        workspace,
        planned,
        lock,
    })
}

/// Loads, analyses and executes the request's patterns, telling `events` how it goes.
pub fn build(
    request: BuildRequest,
    progress: &dyn Progress,
    events: &mut dyn FnMut(BuildEvent),
) -> Result<Built, Failure> {
    let started = Instant::now();
    let Analyzed {
        workspace,
        planned,
        lock,
    } = analyze(&request, events)?;
    let Planned {
        plan,
        mut errors,
        stored_key,
        ..
    } = planned;
    let config = ExecConfig {
        workspace_root: Some(workspace.root.clone()),
        exec_root: PathBuf::new(),
        cache_dir: workspace.output_base.join("cache"),
        disk_cache: request.disk_cache,
        jobs: request.jobs,
        keep_going: request.keep_going,
        action_env: request.action_env,
        remote_files: request
            .remote
            .as_ref()
            .map(|r| Arc::new(RemoteFiles::new(request.remote_download, r.clone()))),
        remote: request.remote.clone(),
    };
    let executed = execute(
        &plan,
        &workspace,
        config,
        &request.sandbox,
        progress,
        request.for_tests,
    )?;
    if let Some(explain) = &request.explain {
        super::explain::write_explanations(explain, &plan, &executed.exec_root, &executed.result)?;
    }
    events(BuildEvent::Executed {
        plan: &plan,
        executed: &executed,
        elapsed: started.elapsed(),
    });
    let Executed {
        exec_root,
        result,
        runner,
        remote_files,
        ..
    } = executed;
    if result.interrupted {
        errors.push(Diagnostic::new("Build interrupted (Ctrl-C)"));
        return Err(Failure {
            code: ExitCode::Interrupted,
            errors,
        });
    }
    let build_failed = !errors.is_empty() || !result.failures.is_empty();
    if build_failed && !(request.for_tests && request.keep_going) {
        errors.push(Diagnostic::new("Build did NOT complete successfully"));
        return Err(Failure::from_diagnostics(errors));
    }
    if !build_failed && super::compdb::wanted(&request.output_groups) {
        super::compdb::write(&plan, &exec_root, &workspace.root)?;
    }
    if build_failed {
        // The errors were reported as they happened; the front end says testing goes on.
        events(BuildEvent::ContinuingAfterFailure(&errors));
    } else {
        if let (Some(remote), Some(plan_key)) = (&request.remote, &stored_key) {
            super::build_entry::upload(&workspace, remote, plan_key, &plan);
        }
        events(BuildEvent::Completed {
            total_actions: plan.actions.len(),
        });
    }
    Ok(Built {
        workspace,
        exec_root,
        plan,
        lock,
        runner,
        build_failed,
        remote_files,
    })
}

/// How commands run, as the `--spawn_strategy`, `--strategy` and `--sandbox_*` flags say.
#[derive(Clone, Debug, Default)]
pub struct SandboxOptions {
    pub spawn_strategy: Option<String>,
    /// `MNEMONIC=STRATEGY` items.
    pub strategy: Vec<String>,
    pub debug: bool,
    pub writable_paths: Vec<PathBuf>,
    pub tmpfs_paths: Vec<PathBuf>,
    pub tmpfs_size: Option<String>,
    /// `SOURCE[:TARGET]` items.
    pub mount_pairs: Vec<String>,
    /// `--remote_executor` and its settings.
    pub remote_execution: Option<RemoteExecSpec>,
}

/// What runs a build's commands: the sandbox runner, or remote execution in front of it.
pub enum ActionRunner {
    /// With the outputs a remote cache left remote (build without the bytes), fetched for
    /// the commands that read them.
    Sandbox(Box<SandboxRunner>, Option<Arc<RemoteFiles>>),
    Remote(Box<RemoteRunner>),
}

impl ActionRunner {
    fn sandbox(&self) -> &SandboxRunner {
        match self {
            ActionRunner::Sandbox(s, _) => s,
            ActionRunner::Remote(r) => r.local(),
        }
    }

    pub fn cleanup(&self) {
        self.sandbox().cleanup();
    }

    /// With a remote executor, how many commands ran so far: remotely, answered by the
    /// executor's action cache, locally, sandboxed.
    pub fn remote_counts(&self) -> Option<[usize; 4]> {
        let relaxed = std::sync::atomic::Ordering::Relaxed;
        match self {
            ActionRunner::Sandbox(..) => None,
            ActionRunner::Remote(r) => Some([
                r.counts.remote.load(relaxed),
                r.counts.cache_hits.load(relaxed),
                r.local().counts.local.load(relaxed),
                r.local().counts.sandboxed.load(relaxed),
            ]),
        }
    }
}

impl Runner for ActionRunner {
    fn fetches_remote_inputs(&self) -> bool {
        true
    }

    fn run(&self, spawn: &Spawn, cancel: &Cancel) -> std::io::Result<SpawnOutcome> {
        match self {
            ActionRunner::Sandbox(s, files) => {
                // A remote cache's build without the bytes: what runs here comes down first.
                if let Some(files) = files {
                    files
                        .fetch_inputs(
                            spawn.cwd,
                            spawn.action.inputs.flatten().iter().map(|i| i.as_str()),
                        )
                        .map_err(|e| std::io::Error::other(e.to_string()))?;
                }
                s.run(spawn, cancel)
            }
            ActionRunner::Remote(r) => r.run(spawn, cancel),
        }
    }
}

/// What a plan run did.
pub struct Executed {
    pub exec_root: PathBuf,
    pub result: exec::ExecResult,
    /// The runner, for commands that run more (tests).
    pub runner: ActionRunner,
    /// Whether a remote cache took part.
    pub remote: bool,
    /// Outputs left in the remote CAS, and how much was fetched.
    pub remote_files: Option<Arc<RemoteFiles>>,
}

impl Executed {
    /// `3 actions executed, 1 from the cache, 0 already up to date.` with the remote hits
    /// (when a remote cache was used) and which strategy ran the commands, so a silently
    /// unsandboxed build cannot go unnoticed.
    pub fn summary(&self) -> String {
        let result = &self.result;
        let relaxed = std::sync::atomic::Ordering::Relaxed;
        let counts = &self.runner.sandbox().counts;
        let sandboxed = counts.sandboxed.load(relaxed);
        let local = counts.local.load(relaxed);
        let strategies = match &self.runner {
            // Where the work ran: remotely, answered by a remote cache (forge's own entries
            // or the executor's action cache), here.
            ActionRunner::Remote(r) => format!(
                " Commands: {} remote, {} remote cache hit, {local} local, {sandboxed} sandboxed.",
                r.counts.remote.load(relaxed),
                result.remote_hits + r.counts.cache_hits.load(relaxed),
            ),
            ActionRunner::Sandbox(..) if sandboxed + local > 0 => {
                format!(" Commands: {sandboxed} sandboxed, {local} local.")
            }
            ActionRunner::Sandbox(..) => String::new(),
        };
        let mut remote = match self.remote {
            true => format!(" {} from the remote cache.", result.remote_hits),
            false => String::new(),
        };
        // Build without the bytes: how much came down, so a build that should fetch
        // nothing shows it did not.
        if let Some(files) = self
            .remote_files
            .as_ref()
            .filter(|f| f.mode() != DownloadMode::All)
        {
            remote.push_str(&format!(
                " Fetched {} ({} bytes).",
                plural(files.fetched_files.load(relaxed), "file", "files"),
                files.fetched_bytes.load(relaxed)
            ));
        }
        format!(
            "{} executed, {} from the cache, {} already up to date.{remote}{strategies}",
            plural(result.executed, "action", "actions"),
            result.cache_hits,
            result.up_to_date
        )
    }
}

/// Prepares the exec root, writes the runfiles trees, runs the plan's actions (reporting to
/// `progress`) and makes the convenience links. With `keep_runner` the runner's sandboxes
/// stay for the tests; otherwise they are cleaned up here.
pub fn execute(
    plan: &BuildPlan,
    workspace: &Arc<Workspace>,
    mut config: ExecConfig,
    sandbox: &SandboxOptions,
    progress: &dyn Progress,
    keep_runner: bool,
) -> Result<Executed, Failure> {
    let exec_root = outputs::prepare_exec_root(workspace)
        .map_err(|e| Failure::failed(format!("cannot prepare the exec root: {e}")))?;
    write_workspace_status(&exec_root)?;
    for tree in &plan.runfiles {
        outputs::write_runfiles_tree(tree, workspace, &exec_root).map_err(|e| {
            Failure::failed(format!(
                "cannot write the runfiles of {}: {e}",
                tree.executable
            ))
        })?;
    }
    config.exec_root = exec_root.clone();
    let mut runner = sandbox_runner(sandbox, workspace, &exec_root)?;
    runner = match runner {
        ActionRunner::Remote(r) => {
            ActionRunner::Remote(Box::new(r.with_remote_files(config.remote_files.clone())))
        }
        ActionRunner::Sandbox(s, _) => ActionRunner::Sandbox(s, config.remote_files.clone()),
    };
    let mut result;
    let mut attempts = 0;
    loop {
        attempts += 1;
        result = exec::execute(&plan.actions, &plan.wanted, &config, &runner, progress)
            .map_err(|e| Failure::failed(e.to_string()))?;
        let Some(files) = &config.remote_files else {
            break;
        };
        // `--remote_download_toplevel`: the outputs of the targets asked for come down.
        let fetched = match files.mode() == DownloadMode::Toplevel
            && result.failures.is_empty()
            && !result.interrupted
        {
            true => exec::fetch_remote_outputs(&exec_root, &config.cache_dir, files, &plan.wanted),
            false => Ok(()),
        };
        // The remote CAS lost outputs this build needed (evicted): their actions were
        // made to miss the cache, so building again makes them anew, once, as Bazel's
        // --experimental_remote_cache_eviction_retries does.
        let lost = files.lost_count();
        match fetched {
            Err(FetchError::Lost(paths)) if attempts == 1 => {
                eprintln!(
                    "WARNING: the remote cache lost '{}' (evicted); building again to make it anew",
                    paths.join("', '")
                );
                continue;
            }
            Err(e) => return Err(Failure::failed(format!("cannot fetch the outputs: {e}"))),
            // Lost files that failed the build (a restore that found its blob gone just ran
            // its action again, and needs no second attempt).
            Ok(())
                if lost > 0
                    && attempts == 1
                    && !result.failures.is_empty()
                    && !result.interrupted =>
            {
                eprintln!(
                    "WARNING: the remote cache lost {} (evicted); building again to make {} anew",
                    plural(lost, "file", "files"),
                    if lost == 1 { "it" } else { "them" }
                );
                continue;
            }
            Ok(()) => break,
        }
    }
    if !keep_runner {
        runner.cleanup();
    }
    outputs::link_convenience_symlinks(workspace, &plan.bin_dir, &plan.testlogs_dir)
        .map_err(|e| Failure::failed(format!("cannot create the forge-* links: {e}")))?;
    Ok(Executed {
        exec_root,
        result,
        runner,
        remote: config.remote.is_some(),
        remote_files: config.remote_files,
    })
}

/// Writes the workspace status files that `ctx.info_file` and `ctx.version_file` name, with
/// the keys Bazel writes when there is no `--workspace_status_command`: the stable ones
/// (label, host, user) and the build time in seconds. Each is rewritten only when its
/// content changes, so an unchanged stable status is not a changed input.
fn write_workspace_status(exec_root: &Path) -> Result<(), Failure> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    let stable = format!(
        "BUILD_EMBED_LABEL \nBUILD_HOST {host}\nBUILD_USER {}\n",
        user_name()
    );
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let volatile = format!("BUILD_TIMESTAMP {seconds}\n");
    for (path, content) in [
        (crate::core::layout::STABLE_STATUS, stable),
        (crate::core::layout::VOLATILE_STATUS, volatile),
    ] {
        let full = exec_root.join(path);
        if std::fs::read(&full).is_ok_and(|old| old == content.as_bytes()) {
            continue;
        }
        crate::core::fs::write_atomic(&full, content.as_bytes())
            .map_err(|e| Failure::failed(format!("cannot write the workspace status: {e}")))?;
    }
    Ok(())
}

/// The user's name as Bazel's `BUILD_USER` has it: `$USER`, else the password file's
/// entry for this process's uid.
fn user_name() -> String {
    if let Ok(user) = std::env::var("USER")
        && !user.is_empty()
    {
        return user;
    }
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[2].parse::<u32>().ok() == uid)
        .map(|f| f[0].to_owned())
        .unwrap_or_default()
}

/// `remote`/`sandboxed`/`local` and their Bazel spellings; `remote` only with a remote
/// executor.
fn parse_strategy(value: &str, remote: bool) -> Result<Strategy, Failure> {
    match value {
        "sandboxed" | "linux-sandbox" | "processwrapper-sandbox" => Ok(Strategy::Sandboxed),
        "local" | "standalone" => Ok(Strategy::Local),
        "remote" if remote => Ok(Strategy::Remote),
        "remote" => Err(Failure::usage(
            "the 'remote' strategy needs --remote_executor=grpc://host:port",
        )),
        other => Err(Failure::usage(format!(
            "unknown strategy '{other}': use 'remote', 'sandboxed' or 'local'"
        ))),
    }
}

/// `--sandbox_tmpfs_size`: `<digits>[k|m|g]` or `<1-100>%`, as tmpfs's `size=` takes it.
fn parse_tmpfs_size(value: &str) -> Result<String, Failure> {
    let bad = || {
        Failure::usage(format!(
            "--sandbox_tmpfs_size='{value}': expected a size like 512m, 2g, 100000k or 10%"
        ))
    };
    let lower = value.trim().to_ascii_lowercase();
    if let Some(percent) = lower.strip_suffix('%') {
        return match percent.parse::<u32>() {
            Ok(p) if (1..=100).contains(&p) => Ok(lower),
            _ => Err(bad()),
        };
    }
    let digits = lower.trim_end_matches(['k', 'm', 'g']);
    if lower.len() - digits.len() > 1 || digits.parse::<u64>().map_or(true, |n| n == 0) {
        return Err(bad());
    }
    Ok(lower)
}

/// The runner the options ask for.
pub fn sandbox_runner(
    options: &SandboxOptions,
    workspace: &Workspace,
    exec_root: &Path,
) -> Result<ActionRunner, Failure> {
    let remote = options.remote_execution.is_some();
    // With a remote executor, what is not remote is sandboxed unless said otherwise.
    let default = match &options.spawn_strategy {
        Some(s) => parse_strategy(s, remote)?,
        None if remote => Strategy::Remote,
        None => Strategy::Sandboxed,
    };
    let default_sandboxed = default != Strategy::Local;
    let mut all_strategies = BTreeMap::new();
    for item in &options.strategy {
        let Some((mnemonic, value)) = item.split_once('=') else {
            return Err(Failure::usage(format!(
                "--strategy expects MNEMONIC=STRATEGY, got '{item}'"
            )));
        };
        all_strategies.insert(mnemonic.to_owned(), parse_strategy(value, remote)?);
    }
    let strategies: BTreeMap<String, bool> = all_strategies
        .iter()
        .filter(|(_, s)| **s != Strategy::Remote)
        .map(|(m, s)| (m.clone(), *s == Strategy::Sandboxed))
        .collect();
    let mount_pairs = options
        .mount_pairs
        .iter()
        .map(|p| match p.split_once(':') {
            Some((a, b)) => (PathBuf::from(a), PathBuf::from(b)),
            None => (PathBuf::from(p), PathBuf::from(p)),
        })
        .collect();
    let config = SandboxConfig {
        exec_root: exec_root.to_path_buf(),
        workspace_name: workspace.name.clone(),
        roots_dir: sandbox::roots_dir(&workspace.output_base),
        debug: options.debug,
        writable_paths: options.writable_paths.clone(),
        tmpfs_paths: options.tmpfs_paths.clone(),
        tmpfs_size: options
            .tmpfs_size
            .as_deref()
            .map(parse_tmpfs_size)
            .transpose()?,
        mount_pairs,
    };
    let local = SandboxRunner::new(config, strategies, default_sandboxed);
    Ok(match &options.remote_execution {
        None => ActionRunner::Sandbox(Box::new(local), None),
        Some(spec) => ActionRunner::Remote(Box::new(RemoteRunner::new(
            spec.clone(),
            local,
            all_strategies,
            default,
        ))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_accept_bazel_spellings() {
        assert_eq!(
            parse_strategy("sandboxed", false).ok(),
            Some(Strategy::Sandboxed)
        );
        assert_eq!(
            parse_strategy("linux-sandbox", false).ok(),
            Some(Strategy::Sandboxed)
        );
        assert_eq!(parse_strategy("local", false).ok(), Some(Strategy::Local));
        assert_eq!(
            parse_strategy("standalone", true).ok(),
            Some(Strategy::Local)
        );
        assert_eq!(parse_strategy("remote", true).ok(), Some(Strategy::Remote));
        let failure = parse_strategy("remote", false).expect_err("needs an executor");
        assert_eq!(failure.code, crate::core::ExitCode::BadCommandLine);
        let text = format!("{:?}", failure.errors);
        assert!(text.contains("--remote_executor"), "{text}");
        assert!(parse_strategy("worker", true).is_err());
    }

    #[test]
    fn tmpfs_sizes_are_checked_and_lowercased() {
        assert_eq!(parse_tmpfs_size("512M").expect("valid"), "512m");
        assert_eq!(parse_tmpfs_size("10%").expect("valid"), "10%");
        assert_eq!(parse_tmpfs_size("100000").expect("valid"), "100000");
        for bad in ["0", "0%", "101%", "12kk", "m", "-5", "1.5g"] {
            assert!(parse_tmpfs_size(bad).is_err(), "{bad} was accepted");
        }
    }
}

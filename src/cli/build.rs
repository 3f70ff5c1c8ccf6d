//! `forge build PATTERNS...`: load, analyse, execute, and report what was built. `forge run`
//! and (later) `forge test` share the pipeline through `build`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;

use super::CommonOptions;
use crate::analysis::plan::{BuildPlan, PlanCache, PlannedTarget};
use crate::analysis::{self, AnalysisConfig};
use crate::core::{Diagnostic, ExecPath, ExitCode, Failure, Label, PackageId, layout};
use crate::exec::sandbox::{self, SandboxConfig, SandboxRunner};
use crate::exec::{self, ConsoleProgress, ExecConfig};
use crate::graph::{TargetGraph, TargetPatternArg};
use crate::loading::Loader;
use crate::outputs;
use crate::workspace::{OutputBaseOptions, Workspace, fs_deps};

/// Flags of the commands that build.
#[derive(Args, Debug, Clone)]
pub struct BuildOptions {
    #[command(flatten)]
    pub common: CommonOptions,

    #[command(flatten)]
    pub remote: super::remote::RemoteOptions,

    /// A directory holding an action cache and content store shared between workspaces.
    #[arg(long = "disk_cache", alias = "disk-cache", value_name = "DIR")]
    pub disk_cache: Option<PathBuf>,

    /// Where downloads of external repositories are kept, by sha256 (default: shared by
    /// all workspaces of the user).
    #[arg(
        long = "repository_cache",
        alias = "repository-cache",
        value_name = "DIR"
    )]
    pub repository_cache: Option<PathBuf>,

    /// A directory searched for archives (by file name) before downloading them.
    #[arg(long = "distdir", value_name = "DIR")]
    pub distdir: Vec<PathBuf>,

    /// The most one external repository's archive may unpack to (bytes, or with a unit:
    /// 512M, 16G); beyond it the fetch fails. Default 16G.
    #[arg(
        long = "experimental_repository_extract_limit",
        alias = "experimental-repository-extract-limit",
        value_name = "SIZE",
        value_parser = super::fetch::parse_size
    )]
    pub extract_limit: Option<u64>,

    /// A download that receives nothing for this long fails (seconds, or 500ms, 2m).
    /// Default 60s.
    #[arg(
        long = "http_stall_timeout",
        alias = "http-stall-timeout",
        value_name = "SECONDS",
        value_parser = super::fetch::parse_duration
    )]
    pub http_stall_timeout: Option<std::time::Duration>,

    /// Pass an environment variable to actions: `NAME=VALUE`, or `NAME` to pass its value.
    #[arg(long = "action_env", alias = "action-env", value_name = "NAME[=VALUE]")]
    pub action_env: Vec<String>,

    /// Define a make variable for `select()` and `ctx.var`: `NAME=VALUE`.
    #[arg(short = 'D', long = "define", value_name = "NAME=VALUE")]
    pub define: Vec<String>,

    /// Show the full command line of failed actions (they are always shown; accepted for
    /// Bazel compatibility).
    #[arg(long = "verbose_failures", alias = "verbose-failures")]
    pub verbose_failures: bool,

    /// How commands run: `sandboxed` (the default: Linux namespaces, only declared inputs
    /// visible) or `local` (in the exec root, no isolation).
    #[arg(
        long = "spawn_strategy",
        alias = "spawn-strategy",
        value_name = "STRATEGY"
    )]
    pub spawn_strategy: Option<String>,

    /// The strategy for actions of one mnemonic: `MNEMONIC=sandboxed|local`.
    #[arg(long = "strategy", value_name = "MNEMONIC=STRATEGY")]
    pub strategy: Vec<String>,

    /// Keep each sandbox after its command ran and print where it is.
    #[arg(long = "sandbox_debug", alias = "sandbox-debug")]
    pub sandbox_debug: bool,

    /// A host path sandboxed commands may write to (bound at the same path).
    #[arg(
        long = "sandbox_writable_path",
        alias = "sandbox-writable-path",
        value_name = "PATH"
    )]
    pub sandbox_writable_path: Vec<PathBuf>,

    /// A path that gets an empty, private tmpfs in the sandbox.
    #[arg(
        long = "sandbox_tmpfs_path",
        alias = "sandbox-tmpfs-path",
        value_name = "PATH"
    )]
    pub sandbox_tmpfs_path: Vec<PathBuf>,

    /// The most each sandboxed command's /tmp, /dev/shm and --sandbox_tmpfs_path may hold:
    /// bytes with an optional k, m or g suffix, or a share of the RAM like `10%`.
    /// Default: 25% of the RAM.
    #[arg(
        long = "sandbox_tmpfs_size",
        alias = "sandbox-tmpfs-size",
        value_name = "SIZE"
    )]
    pub sandbox_tmpfs_size: Option<String>,

    /// Bind a host path read-only into the sandbox: `SOURCE[:TARGET]`.
    #[arg(
        long = "sandbox_add_mount_pair",
        alias = "sandbox-add-mount-pair",
        value_name = "SOURCE[:TARGET]"
    )]
    pub sandbox_add_mount_pair: Vec<String>,
}

impl BuildOptions {
    pub fn fetch_options(&self) -> crate::fetch::FetchOptions {
        crate::fetch::FetchOptions {
            repository_cache: self.repository_cache.clone(),
            distdirs: self.distdir.clone(),
            extract_limit: self.extract_limit,
            stall_timeout: self.http_stall_timeout,
            interrupt: Some(exec::interrupt_flag()),
        }
    }
}

/// `sandboxed`/`local` and their Bazel spellings: true for sandboxed.
fn parse_strategy(value: &str) -> Result<bool, Failure> {
    match value {
        "sandboxed" | "linux-sandbox" | "processwrapper-sandbox" => Ok(true),
        "local" | "standalone" => Ok(false),
        other => Err(Failure::usage(format!(
            "unknown strategy '{other}': use 'sandboxed' or 'local'"
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
fn sandbox_runner(
    options: &BuildOptions,
    workspace: &Workspace,
    exec_root: &std::path::Path,
) -> Result<SandboxRunner, Failure> {
    let default_sandboxed = match &options.spawn_strategy {
        Some(s) => parse_strategy(s)?,
        None => true,
    };
    let mut strategies = BTreeMap::new();
    for item in &options.strategy {
        let Some((mnemonic, value)) = item.split_once('=') else {
            return Err(Failure::usage(format!(
                "--strategy expects MNEMONIC=STRATEGY, got '{item}'"
            )));
        };
        strategies.insert(mnemonic.to_owned(), parse_strategy(value)?);
    }
    let mount_pairs = options
        .sandbox_add_mount_pair
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
        debug: options.sandbox_debug,
        writable_paths: options.sandbox_writable_path.clone(),
        tmpfs_paths: options.sandbox_tmpfs_path.clone(),
        tmpfs_size: options
            .sandbox_tmpfs_size
            .as_deref()
            .map(parse_tmpfs_size)
            .transpose()?,
        mount_pairs,
    };
    Ok(SandboxRunner::new(config, strategies, default_sandboxed))
}

#[derive(Args, Debug)]
pub struct BuildArgs {
    #[command(flatten)]
    pub options: BuildOptions,

    /// Target patterns: `//pkg:target`, `//pkg/...`; after `--`, `-//pkg/...` subtracts.
    #[arg(value_name = "PATTERNS")]
    pub patterns: Vec<String>,
}

/// What a build produced, for the commands built on it.
pub struct Built {
    pub workspace: Arc<Workspace>,
    pub exec_root: PathBuf,
    /// What was built, per requested target.
    pub plan: BuildPlan,
    /// The runner, for commands that run more (tests); cleans up when dropped, before the
    /// lock below is released (fields drop in this order).
    pub runner: SandboxRunner,
    /// Keeps the output base locked until the command is done with it.
    pub lock: exec::Lock,
    /// Only with `forge test --keep_going`: some of the build failed.
    pub build_failed: bool,
}

pub(crate) fn key_values(
    items: &[String],
    what: &str,
    from_env: bool,
) -> Result<BTreeMap<String, String>, Failure> {
    let mut map = BTreeMap::new();
    for item in items {
        match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                map.insert(k.to_owned(), v.to_owned());
            }
            None if from_env && !item.is_empty() => {
                if let Ok(v) = std::env::var(item) {
                    map.insert(item.clone(), v);
                }
            }
            _ => {
                return Err(Failure::usage(format!(
                    "--{what} expects NAME=VALUE, got '{item}'"
                )));
            }
        }
    }
    Ok(map)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Loads, analyses and executes `patterns`; prints Bazel's summary lines.
pub fn build(
    patterns: &[String],
    options: &BuildOptions,
    startup: &OutputBaseOptions,
    print_outputs: bool,
    for_tests: bool,
) -> Result<Built, Failure> {
    let started = Instant::now();
    // From the start: a Ctrl-C during loading or analysis stops the build before any action
    // runs, with exit code 8, instead of killing forge mid-write.
    let _ = exec::install_interrupt_handler();
    options.common.apply();
    let keep_going = options.common.keep_going && !options.common.no_keep_going;
    let action_env = key_values(&options.action_env, "action_env", true)?;
    let defines = key_values(&options.define, "define", false)?;
    let remote = options.remote.client()?;
    if patterns.is_empty() {
        return Err(Failure::usage(
            "no targets given: name at least one, e.g. `forge build //...`",
        ));
    }

    let cwd = super::current_dir()?;
    let workspace = Arc::new(Workspace::discover(&cwd, startup)?);
    // Locking makes the output base if needed.
    let lock = exec::lock_output_base_with(&workspace.output_base, &mut |msg| eprintln!("{msg}"))
        .map_err(|e| {
        Failure::failed(format!(
            "cannot lock the output base {}: {e}",
            workspace.output_base.display()
        ))
    })?;
    let cwd_package = workspace.package_of(&cwd);

    // The plan of an earlier identical command is reused when nothing loading read changed:
    // no BUILD file is evaluated and no rule implementation runs.
    let mut identity: Vec<String> = vec![
        workspace.root.display().to_string(),
        cwd_package.to_string(),
    ];
    identity.extend(patterns.iter().cloned());
    identity.extend(defines.iter().map(|(k, v)| format!("--define={k}={v}")));
    if for_tests {
        identity.push("(tests)".to_owned());
    }
    // The repositories WORKSPACE declares (also through the .bzl files it loads).
    identity.push(serde_json::to_string(&workspace.repositories).unwrap_or_default());
    let identity: Vec<&str> = identity.iter().map(String::as_str).collect();
    let key = PlanCache::key(&identity);
    let plans = PlanCache::new(workspace.output_base.join("cache").join("plans"));
    let mut errors = Vec::new();
    let (plan, reused) = match plans.load(&key) {
        Some(plan) => (plan, true),
        None => {
            let planned = plan_build(
                &workspace,
                &cwd_package,
                patterns,
                defines,
                keep_going,
                for_tests,
                &options.fetch_options(),
            );
            // Ctrl-C during loading (a download, an extraction) ends the command as one.
            super::fetch::interrupted_check()?;
            let (plan, plan_errors) = planned?;
            let deps = fs_deps::take_recording();
            if plan_errors.is_empty() {
                // A plan that cannot be stored only costs the next command its speed.
                let _ = plans.store(&key, &deps, &plan);
            }
            errors = plan_errors;
            (plan, false)
        }
    };
    let what = if plan.targets.len() == 1 {
        format!("target {}", plan.targets.keys().next().expect("one"))
    } else {
        plural(plan.targets.len(), "target", "targets")
    };
    let (packages, configured) = match reused {
        true => (0, 0),
        false => (plan.packages_loaded, plan.targets_configured),
    };
    eprintln!(
        "INFO: Analyzed {what} ({} loaded, {} configured).",
        plural(packages, "package", "packages"),
        plural(configured, "target", "targets")
    );

    let exec_root = outputs::prepare_exec_root(&workspace)
        .map_err(|e| Failure::failed(format!("cannot prepare the exec root: {e}")))?;
    for tree in &plan.runfiles {
        outputs::write_runfiles_tree(tree, &workspace, &exec_root).map_err(|e| {
            Failure::failed(format!(
                "cannot write the runfiles of {}: {e}",
                tree.executable
            ))
        })?;
    }
    let exec_config = ExecConfig {
        workspace_root: Some(workspace.root.clone()),
        exec_root: exec_root.clone(),
        cache_dir: workspace.output_base.join("cache"),
        disk_cache: options.disk_cache.clone(),
        jobs: options.common.jobs.unwrap_or_else(default_jobs),
        keep_going,
        action_env,
        remote,
    };
    let runner = sandbox_runner(options, &workspace, &exec_root)?;
    let progress = ConsoleProgress::stderr();
    let result = exec::execute(
        &plan.actions,
        &plan.wanted,
        &exec_config,
        &runner,
        &progress,
    )
    .map_err(|e| Failure::failed(e.to_string()))?;
    if !for_tests {
        runner.cleanup();
    }
    outputs::link_convenience_symlinks(&workspace)
        .map_err(|e| Failure::failed(format!("cannot create the forge-* links: {e}")))?;

    // Failed actions were reported by the progress as they happened.
    let failed_owners: BTreeSet<&Label> = result.failures.iter().map(|f| &f.owner).collect();

    if print_outputs {
        let bin = format!("{}/", layout::bin_dir());
        for (label, target) in &plan.targets {
            let outs = &target.outputs;
            if failed_owners.contains(label) {
                eprintln!("Target {label} failed to build");
                continue;
            }
            if plan.targets.len() > 1 {
                continue;
            }
            if outs.is_empty() {
                eprintln!("Target {label} up-to-date (nothing to build)");
                continue;
            }
            eprintln!("Target {label} up-to-date:");
            for o in outs {
                match o.strip_prefix(&bin) {
                    Some(rel) => eprintln!("  forge-bin/{rel}"),
                    None => eprintln!("  {o}"),
                }
            }
        }
    }
    eprintln!(
        "INFO: Elapsed time: {:.3}s",
        started.elapsed().as_secs_f64()
    );
    let total = plan.actions.len();
    // Which strategy ran the commands, so a silently unsandboxed build cannot go unnoticed.
    let sandboxed = runner
        .counts
        .sandboxed
        .load(std::sync::atomic::Ordering::Relaxed);
    let local = runner
        .counts
        .local
        .load(std::sync::atomic::Ordering::Relaxed);
    let strategies = if sandboxed + local > 0 {
        format!(" Commands: {sandboxed} sandboxed, {local} local.")
    } else {
        String::new()
    };
    let remote = match &exec_config.remote {
        Some(_) => format!(" {} from the remote cache.", result.remote_hits),
        None => String::new(),
    };
    eprintln!(
        "INFO: {} executed, {} from the cache, {} already up to date.{remote}{strategies}",
        plural(result.executed, "action", "actions"),
        result.cache_hits,
        result.up_to_date
    );
    if result.interrupted {
        errors.push(Diagnostic::new("Build interrupted (Ctrl-C)"));
        return Err(Failure {
            code: ExitCode::Interrupted,
            errors,
        });
    }
    let failed = !errors.is_empty() || !result.failures.is_empty();
    if failed && !(for_tests && keep_going) {
        errors.push(Diagnostic::new("Build did NOT complete successfully"));
        return Err(Failure::from_diagnostics(errors));
    }
    if failed {
        // forge test --keep_going: the tests that did build still run; the errors were
        // printed as they happened.
        for e in &errors {
            eprintln!("ERROR: {e}");
        }
        eprintln!("ERROR: Build did NOT complete successfully; running the tests that built");
    } else {
        eprintln!(
            "INFO: Build completed successfully, {}",
            plural(total, "total action", "total actions")
        );
    }
    Ok(Built {
        workspace,
        exec_root,
        plan,
        lock,
        runner,
        build_failed: failed,
    })
}

/// The targets the patterns name, as `expand_patterns` gives them, except that wildcards
/// (`//pkg:all`, `//...`) leave out rules tagged `manual`, as Bazel's build and test do;
/// naming such a target on its own still builds it.
fn expand_skipping_manual(
    graph: &mut TargetGraph,
    args: &[TargetPatternArg],
) -> (BTreeSet<Label>, Vec<Diagnostic>) {
    let mut result = BTreeSet::new();
    let mut errors = Vec::new();
    for arg in args {
        let labels = match graph.expand(&arg.pattern) {
            Ok(labels) => labels,
            Err(d) => {
                errors.push(d);
                continue;
            }
        };
        if arg.negative {
            result.retain(|l| !labels.contains(l));
            continue;
        }
        let wildcard = !matches!(arg.pattern, crate::core::TargetPattern::Single(_));
        for label in labels {
            let manual = wildcard
                && graph
                    .target(&label)
                    .and_then(|t| t.rule())
                    .is_some_and(|r| match r.attrs.get("tags") {
                        Some(crate::loading::AttrValue::StringList(tags)) => {
                            tags.iter().any(|t| t == "manual")
                        }
                        _ => false,
                    });
            if !manual {
                result.insert(label);
            }
        }
    }
    (result, errors)
}

/// Loads the packages `patterns` need and analyses the targets: the plan, and the problems
/// found (only with `--keep_going`; otherwise the first problems end the command).
/// File-system reads are recorded (`fs_deps`) so the plan can be reused.
fn plan_build(
    workspace: &Arc<Workspace>,
    cwd_package: &PackageId,
    patterns: &[String],
    defines: BTreeMap<String, String>,
    keep_going: bool,
    for_tests: bool,
    fetch: &crate::fetch::FetchOptions,
) -> Result<(BuildPlan, Vec<Diagnostic>), Failure> {
    fs_deps::start_recording();
    // The WORKSPACE file was read before recording started; note it too.
    let _ = fs_deps::read_to_string(&workspace.workspace_file);
    let loader = Loader::with_fetch_options(workspace.clone(), fetch).map_err(Failure::from)?;
    let mut graph = TargetGraph::new(&loader);

    let args = patterns
        .iter()
        .map(|p| TargetPatternArg::parse(p, cwd_package))
        .collect::<Result<Vec<_>, Diagnostic>>()
        .map_err(|d| Failure::usage(d.to_string()))?;
    let (mut targets, mut errors) = expand_skipping_manual(&mut graph, &args);
    let mut tests = BTreeSet::new();
    if for_tests {
        // The tests the patterns name, with test suites replaced by their tests — the query
        // language's tests(); they are built too, runfiles and all.
        graph.load_closure(&targets);
        let set = targets
            .iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
            .join(" ");
        let expr = crate::query::parse(&format!("tests(set({set}))"))
            .map_err(|d| Failure::failed(d.to_string()))?;
        let mut env = crate::query::GraphEnv {
            graph: &mut graph,
            cwd: cwd_package.clone(),
        };
        let evaluation = crate::query::evaluate(&expr, &mut env, keep_going);
        errors.extend(evaluation.errors);
        tests = evaluation.labels;
        targets.extend(tests.iter().cloned());
    }
    let closure = graph.load_closure(&targets);
    errors.extend(graph.errors().iter().cloned());
    let closure_list: Vec<Label> = closure.iter().cloned().collect();
    for cycle in graph.cycles(&closure_list) {
        errors.push(Diagnostic::new(cycle.to_string()));
    }
    errors.extend(graph.visibility_errors(&closure_list));
    if !errors.is_empty() && !keep_going {
        errors.push(Diagnostic::new(
            "Build did NOT complete successfully (loading failed)",
        ));
        return Err(Failure::from_diagnostics(errors));
    }

    let config = AnalysisConfig { defines };
    let analysis = analysis::analyze(&graph, &targets, &config);
    errors.extend(analysis.errors.iter().cloned());
    let configured = analysis.targets.len();
    let packages = graph.packages().count();
    if !errors.is_empty() && !keep_going {
        errors.push(Diagnostic::new(format!(
            "Build did NOT complete successfully ({} loaded, {} configured)",
            plural(packages, "package", "packages"),
            plural(configured, "target", "targets")
        )));
        return Err(Failure::from_diagnostics(errors));
    }

    // What the user asked for: each target's default outputs and, for executables, what
    // their runfiles trees point at.
    let mut plan = BuildPlan {
        packages_loaded: packages,
        targets_configured: configured,
        ..BuildPlan::default()
    };
    for label in &targets {
        let outputs = analysis.default_outputs(&graph, label);
        plan.wanted
            .extend(outputs.iter().cloned().map(ExecPath::new));
        let analyzed = analysis.targets.get(label);
        if let Some(tree) = analyzed.and_then(|a| a.runfiles.as_ref()) {
            plan.wanted
                .extend(tree.entries.iter().map(|(_, p)| p.clone()));
        }
        plan.targets.insert(
            label.clone(),
            PlannedTarget {
                outputs: outputs.into_iter().map(ExecPath::new).collect(),
                executable: analyzed.and_then(|a| a.executable.clone().map(ExecPath::new)),
                args: analyzed.map(|a| a.args.clone()).unwrap_or_default(),
                is_test: analyzed.is_some_and(|a| a.is_test),
                test: analyzed.and_then(|a| {
                    let mut spec = a.test.clone()?;
                    spec.runfiles = a
                        .runfiles
                        .as_ref()
                        .map(|t| t.entries.clone())
                        .unwrap_or_default();
                    Some(spec)
                }),
            },
        );
    }
    plan.tests = tests.into_iter().collect();
    plan.wanted.retain(|p| p.starts_with(layout::OUT_DIR));
    plan.wanted.sort();
    plan.wanted.dedup();
    plan.actions = analysis.actions().cloned().collect();
    plan.runfiles = analysis
        .targets
        .values()
        .filter_map(|a| a.runfiles.clone())
        .collect();
    plan.runfiles
        .sort_by(|a, b| a.executable.cmp(&b.executable));
    // The graph and the analysis are big and about to be dropped, which takes a noticeable
    // time (tens of ms for thousands of targets); the process ends soon and frees it all.
    std::mem::forget(analysis);
    std::mem::forget(graph);
    std::mem::forget(loader);
    Ok((plan, errors))
}

fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

pub fn run(args: BuildArgs, startup: &OutputBaseOptions) -> Result<ExitCode, Failure> {
    build(&args.patterns, &args.options, startup, true, false).map(|_| ExitCode::Success)
}

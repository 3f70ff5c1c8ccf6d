//! `forge build PATTERNS...`: plans (`ops::plan`), executes (`ops::build`) and reports what
//! was built. `forge run` and `forge test` share it through `build`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;

use super::CommonOptions;
use crate::analysis::plan::BuildPlan;
use crate::core::{Diagnostic, ExitCode, Failure, layout};
use crate::exec::sandbox::SandboxRunner;
use crate::exec::{self, ConsoleProgress, ExecConfig};
use crate::ops::plan::{PlanRequest, Planned};
use crate::ops::{self, key_values, plural};
use crate::workspace::{OutputBaseOptions, Workspace};

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
    /// The `--spawn_strategy`, `--strategy` and `--sandbox_*` flags as plain data.
    pub fn sandbox_options(&self) -> ops::build::SandboxOptions {
        ops::build::SandboxOptions {
            spawn_strategy: self.spawn_strategy.clone(),
            strategy: self.strategy.clone(),
            debug: self.sandbox_debug,
            writable_paths: self.sandbox_writable_path.clone(),
            tmpfs_paths: self.sandbox_tmpfs_path.clone(),
            tmpfs_size: self.sandbox_tmpfs_size.clone(),
            mount_pairs: self.sandbox_add_mount_pair.clone(),
        }
    }

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
    let fetch = options.fetch_options();
    let planned = ops::plan::plan(
        &workspace,
        &PlanRequest {
            patterns,
            cwd_package: &cwd_package,
            defines,
            keep_going,
            for_tests,
            fetch: &fetch,
        },
    )?;
    eprintln!("INFO: Analyzed {}.", planned.analyzed_summary());
    let Planned {
        plan, mut errors, ..
    } = planned;

    let exec_config = ExecConfig {
        workspace_root: Some(workspace.root.clone()),
        exec_root: PathBuf::new(),
        cache_dir: workspace.output_base.join("cache"),
        disk_cache: options.disk_cache.clone(),
        jobs: options.common.jobs.unwrap_or_else(default_jobs),
        keep_going,
        action_env,
        remote,
    };
    let progress = ConsoleProgress::stderr();
    let executed = ops::build::execute(
        &plan,
        &workspace,
        exec_config,
        &options.sandbox_options(),
        &progress,
        for_tests,
    )?;
    // Failed actions were reported by the progress as they happened.
    let failed_owners = executed.failed_owners();

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
    eprintln!("INFO: {}", executed.summary());
    let ops::build::Executed {
        exec_root,
        result,
        runner,
        ..
    } = executed;
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

fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

pub fn run(args: BuildArgs, startup: &OutputBaseOptions) -> Result<ExitCode, Failure> {
    build(&args.patterns, &args.options, startup, true, false).map(|_| ExitCode::Success)
}

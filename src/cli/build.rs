//! `forge build PATTERNS...`: the build flags parsed into an `ops::build::BuildRequest`, the
//! build run by `ops::build::build`, and what it reports printed as Bazel prints it.
//! `forge run` and `forge test` build through `build` here.

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::Args;

use super::CommonOptions;
use super::console;
use super::reporting::Session;
use crate::analysis::plan::BuildPlan;
use crate::core::{ExitCode, Failure, Label, layout};
use crate::exec;
use crate::ops::build::{BuildEvent, BuildRequest};
use crate::ops::{self, key_values, plural};
use crate::workspace::OutputBaseOptions;

pub use crate::ops::build::Built;

/// Flags of the commands that build.
#[derive(Args, Debug, Clone)]
pub struct BuildOptions {
    #[command(flatten)]
    pub common: CommonOptions,

    #[command(flatten)]
    pub remote: super::remote::RemoteOptions,

    #[command(flatten)]
    pub reporting: super::reporting::ReportingOptions,

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

    /// Tests see the fixed `PATH` (/usr/local/bin:/usr/bin:/bin) instead of `.:` and the
    /// client's. Build actions always have the fixed one in forge.
    #[arg(long = "incompatible_strict_action_env")]
    pub incompatible_strict_action_env: bool,

    /// What the convenience links' names start with (default `forge-`, or `bazel-` when
    /// forge runs as `bazel`); `/` makes no links.
    #[arg(long = "symlink_prefix", value_name = "PREFIX")]
    pub symlink_prefix: Option<String>,

    /// Define a make variable for `select()` and `ctx.var`: `NAME=VALUE`.
    #[arg(short = 'D', long = "define", value_name = "NAME=VALUE")]
    pub define: Vec<String>,

    /// `fastbuild` (the default), `opt` or `dbg`: the output directory (`forge-out/k8-opt`),
    /// `$(COMPILATION_MODE)` and `config_setting(values = {"compilation_mode": ...})`.
    #[arg(
        short = 'c',
        long = "compilation_mode",
        alias = "compilation-mode",
        value_name = "MODE"
    )]
    pub compilation_mode: Option<String>,

    /// The target CPU (default: the host's, `k8` on x86_64): the output directory
    /// (`forge-out/<cpu>-fastbuild`), `$(TARGET_CPU)` and `config_setting(values = {"cpu": ...})`.
    #[arg(long = "cpu", value_name = "CPU")]
    pub cpu: Option<String>,

    /// The target platform (the first label; Bazel 4 builds for one).
    #[arg(long = "platforms", value_name = "LABELS")]
    pub platforms: Vec<String>,

    /// The host platform, the last execution platform toolchain resolution tries.
    #[arg(long = "host_platform", alias = "host-platform", value_name = "LABEL")]
    pub host_platform: Vec<String>,

    /// Toolchains to register ahead of WORKSPACE's register_toolchains (patterns allowed).
    #[arg(
        long = "extra_toolchains",
        alias = "extra-toolchains",
        value_name = "LABELS"
    )]
    pub extra_toolchains: Vec<String>,

    /// Execution platforms tried ahead of WORKSPACE's register_execution_platforms
    /// (patterns allowed).
    #[arg(
        long = "extra_execution_platforms",
        alias = "extra-execution-platforms",
        value_name = "LABELS"
    )]
    pub extra_execution_platforms: Vec<String>,

    /// Let rules write build information into their outputs (`config_setting(values =
    /// {"stamp": "1"})` matches, rules with `stamp = -1` stamp).
    #[arg(long = "stamp", overrides_with = "nostamp")]
    pub stamp: bool,

    /// Do not stamp (the default).
    #[arg(long = "nostamp", alias = "no-stamp", overrides_with = "stamp")]
    pub nostamp: bool,

    /// Show a failed command with its working directory and whole environment, as a shell
    /// line that runs it again (its argv alone is always shown).
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

    /// The strategy for actions of one mnemonic: `MNEMONIC=remote|sandboxed|local`.
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

    /// Which output groups to build and report: `+NAME` / `-NAME` add to or take from the
    /// defaults, a bare `NAME` replaces them (comma-separated or repeated).
    #[arg(
        long = "output_groups",
        alias = "output-groups",
        value_name = "GROUPS",
        value_delimiter = ','
    )]
    pub output_groups: Vec<String>,

    /// Aspects to apply to the requested targets: `//pkg:file.bzl%name` (comma-separated or
    /// repeated); their output groups named by --output_groups are built.
    #[arg(long = "aspects", value_name = "ASPECTS", value_delimiter = ',')]
    pub aspects: Vec<String>,

    /// Write why each action ran (the input file, variable, argument or tag that changed
    /// since its last run) to this file.
    #[arg(long = "explain", value_name = "FILE")]
    pub explain: Option<PathBuf>,

    /// With --explain: every change of each action, not only the first.
    #[arg(long = "verbose_explanations", alias = "verbose-explanations")]
    pub verbose_explanations: bool,
    /// An option for every C and C++ compile.
    #[arg(long = "copt", value_name = "OPTION", allow_hyphen_values = true)]
    pub copt: Vec<String>,

    /// An option for every C++ compile (after `--copt`).
    #[arg(long = "cxxopt", value_name = "OPTION", allow_hyphen_values = true)]
    pub cxxopt: Vec<String>,

    /// An option for every C compile (after `--copt`).
    #[arg(long = "conlyopt", value_name = "OPTION", allow_hyphen_values = true)]
    pub conlyopt: Vec<String>,

    /// An option for every C++ link.
    #[arg(long = "linkopt", value_name = "OPTION", allow_hyphen_values = true)]
    pub linkopt: Vec<String>,

    /// Features to enable (`-x` to disable `x`) for every target, before the package's and
    /// the target's own `features`.
    #[arg(long = "features", value_name = "FEATURE", allow_hyphen_values = true)]
    pub features: Vec<String>,

    /// The minimum OS version the build targets, which rules read as
    /// `ctx.fragments.cpp.minimum_os_version()`.
    #[arg(long = "minimum_os_version", value_name = "VERSION")]
    pub minimum_os_version: Option<String>,

    /// Bind a host path read-only into the sandbox: `SOURCE[:TARGET]`.
    #[arg(
        long = "sandbox_add_mount_pair",
        alias = "sandbox-add-mount-pair",
        value_name = "SOURCE[:TARGET]"
    )]
    pub sandbox_add_mount_pair: Vec<String>,
}

/// The configuration `-c` and `--cpu` ask for, or Bazel's error for a mode it does not know
/// (shared by the commands that take them: build, test, run, info).
pub fn configuration_of(
    compilation_mode: Option<&str>,
    cpu: Option<&str>,
) -> Result<layout::OutputConfiguration, Failure> {
    let given = compilation_mode.unwrap_or("fastbuild");
    // Bazel's enum options ignore case: `-c OPT` is opt.
    let Some(compilation_mode) = layout::COMPILATION_MODES
        .iter()
        .find(|mode| mode.eq_ignore_ascii_case(given))
        .map(|mode| mode.to_string())
    else {
        return Err(Failure::usage(format!(
            "While parsing option --compilation_mode={given}: Not a valid compilation \
             mode: '{given}' (should be fastbuild, dbg or opt)"
        )));
    };
    let cpu = match cpu {
        Some(cpu) if cpu.is_empty() || cpu.contains('/') => {
            return Err(Failure::usage(format!(
                "While parsing option --cpu={cpu}: forge names an output directory after \
                 the cpu, so it must be a non-empty name without '/'"
            )));
        }
        Some(cpu) => cpu.to_owned(),
        None => layout::host_cpu(),
    };
    Ok(layout::OutputConfiguration {
        cpu,
        compilation_mode,
    })
}

impl BuildOptions {
    /// The configuration `-c` and `--cpu` ask for, or Bazel's error for a mode it does not
    /// know.
    pub fn output_configuration(&self) -> Result<layout::OutputConfiguration, Failure> {
        configuration_of(self.compilation_mode.as_deref(), self.cpu.as_deref())
    }

    /// `--platforms` and `--host_platform` (the last occurrence of each wins, as for Bazel's
    /// single-valued flags; empty is the default) and every `--extra_toolchains` and
    /// `--extra_execution_platforms`, in order.
    pub fn platform_flags(&self) -> ops::platforms::PlatformFlags {
        let split = |v: &String| -> Vec<String> {
            v.split(',')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect()
        };
        ops::platforms::PlatformFlags {
            platforms: self.platforms.last().map(split).unwrap_or_default(),
            host_platform: self
                .host_platform
                .last()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty()),
            extra_toolchains: self.extra_toolchains.iter().flat_map(split).collect(),
            extra_execution_platforms: self
                .extra_execution_platforms
                .iter()
                .flat_map(split)
                .collect(),
        }
    }

    /// `--copt`, `--cxxopt`, `--conlyopt`, `--linkopt` and `--features` as plain data.
    pub fn cpp_options(&self) -> crate::analysis::cpp_fragment::CppOptions {
        crate::analysis::cpp_fragment::CppOptions {
            copts: self.copt.clone(),
            cxxopts: self.cxxopt.clone(),
            conlyopts: self.conlyopt.clone(),
            linkopts: self.linkopt.clone(),
            features: self.features.clone(),
            minimum_os_version: self.minimum_os_version.clone(),
        }
    }

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
            remote_execution: None,
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

/// Builds `patterns` as the options say, printing Bazel's lines as the build reports and
/// telling `session` (the event files, the profile). With `--nobuild` the targets are only
/// analysed: `None`. `print_outputs` shows the `Target //x up-to-date:` lines.
pub fn build(
    patterns: &[String],
    options: &BuildOptions,
    startup: &OutputBaseOptions,
    print_outputs: bool,
    for_tests: bool,
    session: &Session,
) -> Result<Option<Built>, Failure> {
    options.common.apply();
    super::choose_link_prefix(options.symlink_prefix.as_deref());
    let request = BuildRequest {
        configuration: options.output_configuration()?,
        action_env: key_values(&options.action_env, "action_env", true)?,
        defines: key_values(&options.define, "define", false)?,
        stamp: options.stamp && !options.nostamp,
        build_settings: super::starlark_flags::given(),
        remote: options.remote.client()?,
        remote_download: options.remote.download_mode()?,
        patterns,
        cwd: super::current_dir()?,
        startup,
        keep_going: options.common.keep_going && !options.common.no_keep_going,
        for_tests,
        jobs: options.common.jobs.unwrap_or_else(super::host_cores),
        disk_cache: options.disk_cache.clone(),
        fetch: options.fetch_options(),
        sandbox: ops::build::SandboxOptions {
            remote_execution: options.remote.execution()?,
            ..options.sandbox_options()
        },
        output_groups: options.output_groups.clone(),
        aspects: options.aspects.clone(),
        platforms: options.platform_flags(),
        explain: explain_request(options),
        cpp: options.cpp_options(),
    };
    let show_result = print_outputs.then(|| ShowResult {
        limit: session.show_result(),
        verbose_failures: options.verbose_failures,
    });
    let mut events = |event: BuildEvent| report(&event, show_result, session);
    if !session.executes() {
        let analyzed = ops::build::analyze(&request, &mut events)?;
        let mut errors = analyzed.planned.errors;
        if !errors.is_empty() {
            errors.push(crate::core::Diagnostic::new(
                "Build did NOT complete successfully",
            ));
            return Err(Failure::from_diagnostics(errors));
        }
        console::info("Build completed successfully, 0 total actions");
        return Ok(None);
    }
    session
        .with_progress(|progress| ops::build::build(request, progress, &mut events))
        .map(Some)
}

/// `--explain=FILE` and `--verbose_explanations` as a request, if a file is given.
pub fn explain_request(options: &BuildOptions) -> Option<ops::explain::ExplainRequest> {
    options
        .explain
        .as_ref()
        .map(|file| ops::explain::ExplainRequest {
            file: file.clone(),
            verbose: options.verbose_explanations,
            options: std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        })
}

/// What `--show_result` prints the requested targets' results with.
#[derive(Clone, Copy)]
struct ShowResult {
    /// `--show_result=N`: with more targets than this, nothing is printed, as in Bazel.
    limit: usize,
    /// `--verbose_failures`: then no hint to use it.
    verbose_failures: bool,
}

/// Prints one thing a build reports, as Bazel words it, and tells the session.
fn report(event: &BuildEvent, show_result: Option<ShowResult>, session: &Session) {
    match event {
        BuildEvent::Waiting(message) => eprintln!("{message}"),
        BuildEvent::Analyzed(planned) => {
            if let Some(results) = planned.from_build_entry {
                console::info(format!(
                    "The plan and {} came from the remote cache's build entry",
                    plural(results, "action result", "action results")
                ));
            }
            console::info(format!("Analyzed {}.", planned.analyzed_summary()));
            session.analyzed(planned);
        }
        BuildEvent::Executed {
            plan,
            executed,
            elapsed,
        } => {
            if let Some(show_result) = show_result {
                let unbuilt = session.unbuilt(plan, executed);
                print_outputs_of(plan, &unbuilt, show_result, &executed.exec_root);
            }
            console::info(format!("Elapsed time: {:.3}s", elapsed.as_secs_f64()));
            console::info(executed.summary());
            session.executed(plan, executed);
        }
        BuildEvent::ContinuingAfterFailure(errors) => {
            for e in errors.iter() {
                console::error(e);
            }
            console::error("Build did NOT complete successfully; running the tests that built");
        }
        BuildEvent::Completed { total_actions } => console::info(format!(
            "Build completed successfully, {}",
            plural(*total_actions, "total action", "total actions")
        )),
    }
}

/// Bazel's result lines (`BuildResultPrinter`): when at most `show_result.limit` requested
/// targets (source files not counted) were asked for, `Target //x up-to-date:` and its
/// outputs for each built one, then `Target //y failed to build` for each not built (with a
/// hint to use `--verbose_failures` if it is off); with more, nothing at all, as Bazel 4.2.3
/// prints nothing then. Failed actions were reported by the progress as they happened.
fn print_outputs_of(
    plan: &BuildPlan,
    unbuilt: &BTreeSet<&Label>,
    show_result: ShowResult,
    exec_root: &std::path::Path,
) {
    let shown: Vec<_> = plan
        .targets
        .iter()
        .filter(|(_, target)| target.kind != "source file")
        .collect();
    if shown.len() > show_result.limit {
        return;
    }
    let bin = format!("{}/", plan.bin_dir);
    let (failed, built): (Vec<_>, Vec<_>) = shown
        .into_iter()
        .partition(|(label, _)| unbuilt.contains(label));
    for (label, target) in built {
        let outs = &target.outputs;
        if outs.is_empty() {
            eprintln!("Target {label} up-to-date (nothing to build)");
            continue;
        }
        eprintln!("Target {label} up-to-date:");
        print_paths(outs, &bin, exec_root);
    }
    for (label, _) in &failed {
        eprintln!("Target {label} failed to build");
    }
    // Then `--aspects`, each on each requested target, as Bazel reports them.
    for aspect in &plan.aspects {
        let (id, label) = (&aspect.aspect, &aspect.target);
        if unbuilt.contains(label) {
            eprintln!("Aspect {id} of {label} failed to build");
        } else if aspect.outputs.is_empty() {
            eprintln!("Aspect {id} of {label} up-to-date (nothing to build)");
        } else {
            eprintln!("Aspect {id} of {label} up-to-date:");
            print_paths(&aspect.outputs, &bin, exec_root);
        }
    }
    if !failed.is_empty() && !show_result.verbose_failures {
        eprintln!("Use --verbose_failures to see the command lines of failed build steps.");
    }
}

/// Output paths as the result lines show them: through the bin link, as Bazel shows them;
/// the whole path when there is no link.
fn print_paths(outs: &[crate::core::ExecPath], bin: &str, exec_root: &std::path::Path) {
    for o in outs {
        match (layout::link_prefix(), o.strip_prefix(bin)) {
            (Some(prefix), Some(rel)) => eprintln!("  {prefix}bin/{rel}"),
            (None, _) => eprintln!("  {}", exec_root.join(o.as_str()).display()),
            (Some(_), None) => eprintln!("  {o}"),
        }
    }
}

pub fn run(args: BuildArgs, startup: &OutputBaseOptions) -> Result<ExitCode, Failure> {
    let options = &args.options;
    let session = Session::start("build", options, &args.patterns)?;
    let result = build(&args.patterns, options, startup, true, false, &session).map(|built| {
        // The process ends with this command: freeing a large build's plan (millions of
        // input paths) one allocation at a time would only delay the exit.
        std::mem::forget(built);
        ExitCode::Success
    });
    session.finish(result)
}

//! The command line: arguments in (Bazel's flag spellings, kebab-case accepted too), one
//! command run, an exit code out. Each command is a thin wrapper over the pipeline phases.

mod aquery;
mod build;
mod build_events;
mod canonicalize;
mod clean;
mod completion;
mod console;
mod cquery;
mod fetch;
mod flag_forms;
mod help;
mod info;
mod man;
mod profile;
mod proto_text;
mod query;
mod rc;
mod remote;
mod reporting;
mod run;
mod shutdown;
mod starlark_flags;
mod test;
mod version;
mod why;
mod worker;

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::core::{ExitCode, Failure};
use crate::workspace::OutputBaseOptions;

#[derive(Parser, Debug)]
#[command(
    name = "forge",
    version,
    about = "Forge: a hermetic, content-addressed build tool with a Bazel-like command line",
    disable_help_subcommand = true,
    propagate_version = true
)]
pub struct Cli {
    /// Startup option: where this workspace's outputs and caches live.
    #[arg(
        long = "output_base",
        alias = "output-base",
        value_name = "PATH",
        global = false
    )]
    output_base: Option<PathBuf>,

    /// Startup option: the directory under which per-workspace output bases are made.
    #[arg(
        long = "output_user_root",
        alias = "output-user-root",
        value_name = "PATH"
    )]
    output_user_root: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Builds targets: `forge build //pkg:target //other/...`.
    Build(build::BuildArgs),
    /// Builds and runs one executable target: `forge run //pkg:bin -- args`.
    Run(run::RunArgs),
    /// Fetches the external repositories that targets need: `forge fetch //...`.
    Fetch(fetch::FetchArgs),
    /// Builds and runs tests: `forge test //...`.
    Test(test::TestArgs),
    /// Removes outputs and the local cache (`--expunge`: the whole output base).
    Clean(clean::CleanArgs),
    /// Answers questions about the target graph: `forge query 'deps(//pkg:target)'`.
    Query(query::QueryArgs),
    /// Queries the configured target graph: `forge cquery 'deps(//pkg:target)'`.
    Cquery(cquery::CqueryArgs),
    /// Prints facts about the workspace: `forge info [KEY...]`.
    Info(info::InfoArgs),
    /// Prints the actions of targets without running them: `forge aquery //pkg:target`.
    Aquery(aquery::AqueryArgs),
    /// Says why a target's actions (and a test) ran last time and whether a build (and
    /// `forge test`) would run them now: the input file, variable, argument or flag that changed.
    Why(why::WhyArgs),
    /// Does nothing and exits 0: forge runs no server (accepted as Bazel's command).
    Shutdown(shutdown::ShutdownArgs),
    /// Prints flags in their canonical forms: `forge canonicalize-flags -- -k --jobs 4`.
    #[command(name = "canonicalize-flags")]
    CanonicalizeFlags(canonicalize::CanonicalizeArgs),
    /// Prints a shell completion script: `forge completion bash` or `forge completion zsh`.
    Completion(completion::CompletionArgs),
    /// Prints help: the commands, one command's flags (`forge help build`), or a topic
    /// (`forge help target-syntax`).
    Help(help::HelpArgs),
    /// Prints the version of forge and the git commit it was built from.
    Version(version::VersionArgs),
    /// Runs actions for an REAPI server as a Remote Workers API bot: `forge worker --server grpc://host:port`
    Worker(worker::WorkerArgs),
}

/// Flags shared by commands that load packages.
#[derive(Args, Debug, Clone)]
pub struct CommonOptions {
    /// Continue as much as possible after an error.
    #[arg(
        short = 'k',
        long = "keep_going",
        alias = "keep-going",
        overrides_with = "no_keep_going"
    )]
    pub keep_going: bool,

    /// Stop at the first error (the default).
    #[arg(
        long = "nokeep_going",
        alias = "no-keep-going",
        hide = true,
        overrides_with = "keep_going"
    )]
    pub no_keep_going: bool,

    /// How many jobs run at once: a number or `auto` (the number of cores).
    #[arg(short = 'j', long = "jobs", value_name = "N", value_parser = parse_jobs)]
    pub jobs: Option<usize>,

    /// Colors in the output: `yes`, `no`, or `auto` (the default: only on a terminal).
    #[arg(long = "color", value_name = "yes|no|auto", value_parser = console::Choice::parse)]
    pub color: Option<console::Choice>,
}

/// A flag value clap's value parsers reject; clap prints it after "invalid value ... for ...".
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    #[error("must be at least 1")]
    NoJobs,
    #[error("'{0}' is not a number or 'auto'")]
    NotJobs(String),
    #[error("'{0}' is not a size: use bytes or a unit, e.g. 512M or 16G")]
    NotSize(String),
    #[error("unknown unit '{unit}' in '{text}': use K, M, G or T")]
    UnknownUnit { unit: String, text: String },
    #[error("'{0}' is not a duration: use seconds, e.g. 60, 2.5 or 500ms")]
    NotDuration(String),
    #[error("'{0}' must be more than zero")]
    NotPositive(String),
    #[error("'{0}' is not a boolean: use true, false, yes, no, 1 or 0")]
    NotBool(String),
}

/// How many cores the machine has: the default of `--jobs` and `--local_test_jobs`.
fn host_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn parse_jobs(text: &str) -> Result<usize, ValueError> {
    match text {
        "auto" | "HOST_CPUS" => Ok(host_cores()),
        _ => match text.parse::<usize>() {
            Ok(0) => Err(ValueError::NoJobs),
            Ok(n) => Ok(n),
            Err(_) => Err(ValueError::NotJobs(text.to_owned())),
        },
    }
}

impl CommonOptions {
    /// Chooses the output's colors, and sizes the thread pool that loads packages and
    /// analyses targets, with stacks deep enough for the Starlark nesting forge accepts.
    fn apply(&self) {
        console::choose(self.color.unwrap_or_default());
        // Only the first call configures the global pool; one command runs per process.
        let mut pool =
            rayon::ThreadPoolBuilder::new().stack_size(crate::core::nesting::STARLARK_STACK_BYTES);
        if let Some(threads) = loading_threads(self.jobs, host_cores()) {
            pool = pool.num_threads(threads);
        }
        let _ = pool.build_global();
    }
}

/// How many threads load packages and analyse targets under `--jobs`: no more than the
/// cores. `--jobs` bounds the actions, which mostly wait (on commands, on a remote
/// executor); loading and analysis mostly compute, and threads beyond the cores only cost
/// (a remote build's `-j 50` started 50, each with its deep stack, spinning before it slept,
/// even where a build entry left nothing to load). `None`: rayon's default, the cores.
fn loading_threads(jobs: Option<usize>, cores: usize) -> Option<usize> {
    jobs.map(|jobs| jobs.min(cores).max(1))
}

/// Parses the arguments and runs the command. Errors are printed here. The command runs on a
/// thread whose stack is as deep as the Starlark and query nesting forge accepts (the main
/// thread's is fixed by the system, often 8 MiB).
pub fn run(args: Vec<String>) -> ExitCode {
    let fallback = args.clone();
    let command = std::thread::Builder::new()
        .name("forge".into())
        .stack_size(crate::core::nesting::STARLARK_STACK_BYTES)
        .spawn(move || run_on_this_thread(args));
    match command {
        Ok(thread) => thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
        // No room for a large stack: run here, within the system's limits.
        Err(_) => run_on_this_thread(fallback),
    }
}

fn run_on_this_thread(args: Vec<String>) -> ExitCode {
    // Bazel's flag forms, then the rc files' options before the command line's.
    let command = flag_forms::uniform(Cli::command());
    // Without a current directory there is no workspace rc file; the command says why.
    let cwd = std::env::current_dir().unwrap_or_default();
    let flags = flag_forms::Flags::of(&command);
    let args = match rc::expand(args, &cwd, &flags, &mut |note| eprintln!("{note}")) {
        Ok(args) => args,
        Err(e) => {
            console::error(e);
            return ExitCode::BadCommandLine;
        }
    };
    // `--//pkg:flag=value` is no option clap knows: build settings are taken out first,
    // from the rc files' options too.
    let args = starlark_flags::extract(args);
    reporting::remember_command_line(&args);
    let parsed = command
        .try_get_matches_from(&args)
        .and_then(|mut matches| Cli::from_arg_matches_mut(&mut matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => return command_line_error(e),
    };
    let options = OutputBaseOptions {
        output_base: cli.output_base,
        output_user_root: cli.output_user_root,
    };
    let result = match cli.command {
        Command::Build(args) => build::run(args, &options),
        Command::Run(args) => run::run(args, &options),
        Command::Test(args) => test::run(args, &options),
        Command::Fetch(args) => fetch::run(args, &options),
        Command::Clean(args) => clean::run(args, &options),
        Command::Query(args) => query::run(args, &options),
        Command::Cquery(args) => cquery::run(args, &options),
        Command::Info(args) => info::run(args, &options),
        Command::Aquery(args) => aquery::run(args, &options),
        Command::Why(args) => why::run(args, &options),
        Command::Shutdown(args) => shutdown::run(args),
        Command::Help(args) => help::run(args),
        Command::Completion(args) => completion::run(args),
        Command::CanonicalizeFlags(args) => canonicalize::run(args),
        Command::Version(args) => version::run(args),
        Command::Worker(args) => worker::run(args),
    };
    match result {
        Ok(code) => code,
        Err(failure) => {
            for e in &failure.errors {
                // The build's verdict is Bazel's `FAILED:` line, the rest are errors.
                match e.to_string() {
                    verdict if verdict.starts_with("Build did NOT complete successfully") => {
                        console::failed(verdict)
                    }
                    other => console::error(other),
                }
            }
            failure.code
        }
    }
}

/// Help and version requests print normally; real errors become one line and exit 2.
fn command_line_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::Success
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            let _ = e.print();
            ExitCode::BadCommandLine
        }
        _ => {
            let rendered = e.render().to_string();
            let first = rendered
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid command line")
                .trim_start_matches("error: ");
            console::error(format!("{first} (see 'forge help')"));
            ExitCode::BadCommandLine
        }
    }
}

/// Sets the convenience links' prefix for this command: `--symlink_prefix` if given, else
/// `bazel-` when forge was started through a link named `bazel` (a drop-in for Bazel's
/// scripts and habits), else `forge-`.
fn choose_link_prefix(symlink_prefix: Option<&str>) {
    let invoked_as = std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    let default = match invoked_as.as_deref() {
        Some("bazel") => "bazel-",
        _ => crate::core::layout::DEFAULT_LINK_PREFIX,
    };
    crate::core::layout::set_link_prefix(symlink_prefix.unwrap_or(default));
}

/// The directory forge was started in.
fn current_dir() -> Result<PathBuf, Failure> {
    std::env::current_dir()
        .map_err(|e| Failure::failed(format!("cannot read the current directory: {e}")))
}

/// Writes a command's text to stdout. A reader that stops early (`forge help | head`) is no
/// error: the rest of the text is simply not wanted.
fn print_out(text: &[u8]) -> Result<(), Failure> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure::failed(format!(
            "cannot write to standard output: {e}"
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::loading_threads;

    #[test]
    fn loading_threads_follow_jobs_up_to_the_cores() {
        assert_eq!(loading_threads(None, 2), None);
        assert_eq!(loading_threads(Some(1), 2), Some(1));
        assert_eq!(loading_threads(Some(2), 8), Some(2));
        // A remote build's -j 50 on two cores: two loading threads, not fifty.
        assert_eq!(loading_threads(Some(50), 2), Some(2));
    }
}

//! `forge run //pkg:bin -- args`: builds one executable target, then replaces forge with it,
//! started in its runfiles tree, so its exit code is forge's.

use std::os::unix::process::CommandExt;
use std::process::Command;

use clap::Args;

use super::build::{BuildOptions, build};
use crate::core::{ExitCode, Failure};
use crate::exec::shell_words;
use crate::ops;
use crate::workspace::OutputBaseOptions;

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    options: BuildOptions,

    /// The executable target to run.
    target: String,

    /// Arguments for the program (after `--`).
    #[arg(last = true)]
    args: Vec<String>,
}

pub fn run(args: RunArgs, startup: &OutputBaseOptions) -> Result<ExitCode, Failure> {
    let built = build(
        std::slice::from_ref(&args.target),
        &args.options,
        startup,
        true,
        false,
    )?;
    let ops::run::Program {
        program,
        runfiles,
        cwd,
        args: argv,
    } = ops::run::program(
        &built.plan,
        &built.exec_root,
        &built.workspace.name,
        &args.target,
        &args.args,
    )?;
    eprintln!(
        "INFO: Running command line: {}",
        shell_words(
            &std::iter::once(program.display().to_string())
                .chain(argv.iter().cloned())
                .collect::<Vec<_>>()
        )
    );
    let client_cwd = super::current_dir()?;
    drop(built.lock);
    let err = Command::new(&program)
        .args(&argv)
        .current_dir(if cwd.is_dir() {
            cwd
        } else {
            client_cwd.clone()
        })
        .env("RUNFILES_DIR", &runfiles)
        .env("BUILD_WORKSPACE_DIRECTORY", &built.workspace.root)
        .env("BUILD_WORKING_DIRECTORY", &client_cwd)
        .exec();
    Err(Failure::failed(format!(
        "cannot run {}: {err}",
        program.display()
    )))
}

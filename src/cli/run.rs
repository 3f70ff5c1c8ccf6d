//! `forge run //pkg:bin -- args`: builds one executable target, then replaces forge with it,
//! started in its runfiles tree, so its exit code is forge's.

use std::os::unix::process::CommandExt;
use std::process::Command;

use clap::Args;

use super::build::{BuildOptions, build};
use super::reporting::Session;
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
    let patterns = std::slice::from_ref(&args.target);
    let options = &args.options;
    let session = Session::start("run", options, patterns)?;
    let built = match build(patterns, options, startup, true, false, &session) {
        Ok(Some(built)) => built,
        // `--nobuild`: analysed, nothing to run.
        Ok(None) => return session.finish(Ok(ExitCode::Success)),
        Err(failure) => return session.finish(Err(failure)),
    };
    // The build is over; what the program does is not part of it.
    session.finish(Ok(ExitCode::Success))?;
    let to_run = ops::run::program(
        &built.plan,
        &built.exec_root,
        &built.workspace.name,
        &args.target,
        &args.args,
    )?;
    // Build without the bytes: the program and its runfiles come down now.
    if let Some(files) = &built.remote_files {
        ops::run::fetch(
            files,
            &built.exec_root,
            &built.workspace.output_base,
            &to_run,
        )?;
    }
    let ops::run::Program {
        program,
        runfiles,
        cwd,
        args: argv,
    } = to_run;
    super::console::info(format!(
        "Running command line: {}",
        shell_words(
            &std::iter::once(program.display().to_string())
                .chain(argv.iter().cloned())
                .collect::<Vec<_>>()
        )
    ));
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

//! `forge clean` removes the outputs and the local cache; `--expunge` removes the whole
//! output base. A `--disk_cache` directory is never touched.

use clap::Args;

use crate::core::{ExitCode, Failure};
use crate::workspace::{OutputBaseOptions, Workspace};

#[derive(Args, Debug)]
pub struct CleanArgs {
    /// Remove the entire output base, including fetched external repositories.
    #[arg(long)]
    expunge: bool,
}

pub fn run(args: CleanArgs, startup: &OutputBaseOptions) -> Result<ExitCode, Failure> {
    let ws = Workspace::locate(&super::current_dir()?, startup)?;
    if !crate::ops::clean::clean(&ws, args.expunge, &mut |msg| eprintln!("{msg}"))? {
        return Ok(ExitCode::Success);
    }
    eprintln!(
        "INFO: {}",
        if args.expunge {
            "Output base deleted"
        } else {
            "Outputs and the local cache deleted"
        }
    );
    Ok(ExitCode::Success)
}

//! `forge clean` removes the outputs and the local cache; `--expunge` removes the whole
//! output base; `--async` moves them aside and deletes them in the background. A
//! `--disk_cache` directory is never touched.

use clap::Args;

use crate::core::{ExitCode, Failure};
use crate::workspace::{OutputBaseOptions, Workspace};

#[derive(Args, Debug)]
pub struct CleanArgs {
    /// Remove the entire output base, including fetched external repositories.
    #[arg(long)]
    expunge: bool,

    /// Return at once: what is removed is moved aside and deleted in the background.
    #[arg(long = "async")]
    in_background: bool,

    /// The prefix of the links to remove (as `build --symlink_prefix` made them).
    #[arg(long = "symlink_prefix", value_name = "PREFIX")]
    symlink_prefix: Option<String>,
}

pub fn run(args: CleanArgs, startup: &OutputBaseOptions) -> Result<ExitCode, Failure> {
    super::choose_link_prefix(args.symlink_prefix.as_deref());
    let ws = Workspace::locate(&super::current_dir()?, startup)?;
    if args.in_background {
        let moved =
            crate::ops::clean::clean_async(&ws, args.expunge, &mut |msg| eprintln!("{msg}"))?;
        if let Some(trash) = moved {
            let what = match args.expunge {
                true => "Output base",
                false => "Outputs and the local cache",
            };
            super::console::info(format!(
                "{what} moved to {} for deletion in the background",
                trash.display()
            ));
        }
        return Ok(ExitCode::Success);
    }
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

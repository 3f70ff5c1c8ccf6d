//! `forge clean` removes the outputs and the local cache; `--expunge` removes the whole
//! output base. A `--disk_cache` directory is never touched.

use clap::Args;

use crate::core::{ExitCode, Failure};
use crate::exec;
use crate::outputs;
use crate::workspace::{OutputBaseOptions, Workspace};

#[derive(Args, Debug)]
pub struct CleanArgs {
    /// Remove the entire output base, including fetched external repositories.
    #[arg(long)]
    expunge: bool,
}

pub fn run(args: CleanArgs, startup: &OutputBaseOptions) -> Result<ExitCode, Failure> {
    let ws = Workspace::discover(&super::current_dir()?, startup)?;
    if !ws.output_base.exists() {
        outputs::remove_convenience_symlinks(&ws);
        return Ok(ExitCode::Success);
    }
    let lock = exec::lock_output_base_with(&ws.output_base, &mut |msg| eprintln!("{msg}"))
        .map_err(|e| Failure::failed(format!("cannot lock the output base: {e}")))?;
    let doomed = if args.expunge {
        vec![ws.output_base.clone()]
    } else {
        vec![
            ws.output_base.join("execroot"),
            ws.output_base.join("cache"),
        ]
    };
    for dir in doomed {
        crate::core::fs::remove_tree(&dir)
            .map_err(|e| Failure::failed(format!("cannot remove {}: {e}", dir.display())))?;
    }
    drop(lock);
    outputs::remove_convenience_symlinks(&ws);
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

//! `forge shutdown`: Bazel's command to stop its server. Forge runs no server, so there is
//! nothing to stop and it exits 0; scripts that call `bazel shutdown` keep working.

use clap::Args;

use crate::core::{ExitCode, Failure};

#[derive(Args, Debug)]
pub struct ShutdownArgs {
    /// Shut down only if the server's heap is larger than this many megabytes. Accepted as
    /// Bazel's; forge has no server, so there is never anything to shut down.
    #[arg(long = "iff_heap_size_greater_than", value_name = "MB")]
    iff_heap_size_greater_than: Option<u64>,
}

pub fn run(args: ShutdownArgs) -> Result<ExitCode, Failure> {
    // The flag is only validated (a number of megabytes): no server, no heap.
    let _ = args.iff_heap_size_greater_than;
    Ok(ExitCode::Success)
}

//! `forge version`: the release and the git commit forge was built from in Bazel's
//! `Build label:` lines, or (`--gnu_format`) one `forge <release>` line.

use clap::Args;

use crate::core::{ExitCode, Failure};

#[derive(Args, Debug)]
pub struct VersionArgs {
    /// Print the version in GNU's format, `forge 0.1.0`, as Bazel's `--gnu_format`.
    #[arg(long = "gnu_format")]
    gnu_format: bool,
}

/// The commit forge was built from ("unknown" when built outside a git checkout).
pub const COMMIT: &str = env!("FORGE_GIT_COMMIT");

pub fn run(args: VersionArgs) -> Result<ExitCode, Failure> {
    let release = env!("CARGO_PKG_VERSION");
    if args.gnu_format {
        println!("forge {release}");
    } else {
        println!("Build label: {release}");
        println!("Build target: forge");
        println!("Build commit: {COMMIT}");
    }
    Ok(ExitCode::Success)
}

//! `forge info [KEY...]`: facts about the workspace and where forge keeps its files, as
//! Bazel prints them: every key as `key: value` lines, one key's bare value, several keys as
//! `key: value` lines in the order asked.

use std::path::PathBuf;

use clap::Args;

use crate::core::{ExitCode, Failure};
use crate::ops::info::{InfoRequest, entries, lookup};
use crate::workspace::OutputBaseOptions;

#[derive(Args, Debug)]
#[command(after_help = "\
Keys: workspace, workspace_name, install_base (the directory of the forge executable: forge \
unpacks nothing), output_base, execution_root, output_path, forge-bin, forge-genfiles (the same \
directory as forge-bin, as in Bazel 4), forge-testlogs, repository_cache, package_path, \
character-encoding, release. Bazel's names bazel-bin, bazel-genfiles and bazel-testlogs are \
answered too.

Keys that describe Bazel's server or its Java VM (server_pid, server_log, command_log, \
used-heap-size, committed-heap-size, max-heap-size, gc-count, gc-time, java-home, java-runtime, \
java-vm) have no true value in forge: there is no server and no JVM. Asking for one is an error \
saying so (exit 2), so a script never acts on a made-up pid or path.")]
pub struct InfoArgs {
    /// Print only these keys' values (e.g. `output_base`): one key's bare value, several as
    /// `key: value` lines.
    keys: Vec<String>,

    /// The repository cache to name (as `forge build --repository_cache`).
    #[arg(long = "repository_cache", value_name = "PATH")]
    repository_cache: Option<PathBuf>,

    /// The compilation mode whose directories `forge-bin` and friends name (as `forge build
    /// -c`): `bazel info -c opt bazel-bin` is `.../k8-opt/bin`.
    #[arg(
        short = 'c',
        long = "compilation_mode",
        alias = "compilation-mode",
        value_name = "MODE"
    )]
    compilation_mode: Option<String>,

    /// The target CPU whose directories `forge-bin` and friends name (as `forge build --cpu`).
    #[arg(long = "cpu", value_name = "CPU")]
    cpu: Option<String>,
}

pub fn run(args: InfoArgs, options: &OutputBaseOptions) -> Result<ExitCode, Failure> {
    let configuration =
        super::build::configuration_of(args.compilation_mode.as_deref(), args.cpu.as_deref())?;
    let ws = crate::ops::fetch::discover_workspace(
        &super::current_dir()?,
        options,
        &crate::fetch::FetchOptions::default(),
    )?;
    let entries = entries(&InfoRequest {
        workspace: &ws,
        repository_cache: args.repository_cache.as_deref(),
        configuration: &configuration,
    });
    if args.keys.is_empty() {
        for (k, v) in entries {
            println!("{k}: {v}");
        }
        return Ok(ExitCode::Success);
    }
    // Every key is checked before anything is printed, as Bazel does.
    let values = args
        .keys
        .iter()
        .map(|key| lookup(&entries, key).map_err(|e| Failure::usage(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    match values.as_slice() {
        [only] => println!("{only}"),
        _ => {
            for (key, value) in args.keys.iter().zip(&values) {
                println!("{key}: {value}");
            }
        }
    }
    Ok(ExitCode::Success)
}

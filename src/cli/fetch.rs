//! `forge fetch PATTERNS...`: loads what the patterns need, which fetches the external
//! repositories among it, so that a later build needs no network.

use std::sync::Arc;

use clap::Args;

use super::build::BuildOptions;
use crate::core::{Diagnostic, ExitCode, Failure};
use crate::graph::{TargetGraph, TargetPatternArg};
use crate::loading::Loader;
use crate::workspace::{OutputBaseOptions, Workspace};

#[derive(Args, Debug)]
pub struct FetchArgs {
    #[command(flatten)]
    options: BuildOptions,

    /// Target patterns whose dependencies to fetch.
    #[arg(value_name = "PATTERNS")]
    patterns: Vec<String>,
}

pub fn run(args: FetchArgs, startup: &OutputBaseOptions) -> Result<ExitCode, Failure> {
    if args.patterns.is_empty() {
        return Err(Failure::usage(
            "no targets given: name at least one, e.g. `forge fetch //...`",
        ));
    }
    args.options.common.apply();
    let cwd = super::current_dir()?;
    let workspace = Arc::new(Workspace::discover(&cwd, startup)?);
    let cwd_package = workspace.package_of(&cwd);
    let loader = Loader::with_fetch_options(workspace.clone(), &args.options.fetch_options())
        .map_err(Failure::from)?;
    let mut graph = TargetGraph::new(&loader);
    let patterns = args
        .patterns
        .iter()
        .map(|p| TargetPatternArg::parse(p, &cwd_package))
        .collect::<Result<Vec<_>, Diagnostic>>()
        .map_err(|d| Failure::usage(d.message))?;
    let (targets, mut errors) = graph.expand_patterns(&patterns);
    graph.load_closure(&targets);
    errors.extend(graph.errors().iter().cloned());
    if !errors.is_empty() {
        return Err(Failure::from_diagnostics(errors));
    }
    eprintln!("INFO: All external dependencies fetched successfully.");
    Ok(ExitCode::Success)
}

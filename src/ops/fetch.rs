//! Fetching ahead of a build: patterns and the workspace in, every external repository their
//! packages need fetched (or the problems met) out. Also what a Ctrl-C during loading means.

use std::sync::Arc;

use crate::core::{Diagnostic, ExitCode, Failure, PackageId};
use crate::graph::{TargetGraph, TargetPatternArg};
use crate::loading::Loader;
use crate::workspace::{OutputBaseOptions, Workspace, WorkspaceSite};

/// The workspace enclosing `cwd`, its WORKSPACE file evaluated: the repositories whose .bzl
/// files it loads are fetched with `options` (reused while their markers match).
pub fn discover_workspace(
    cwd: &std::path::Path,
    startup: &OutputBaseOptions,
    options: &crate::fetch::FetchOptions,
) -> Result<Workspace, Failure> {
    evaluate_workspace(Workspace::locate(cwd, startup)?, options)
}

/// `site`'s WORKSPACE file evaluated, fetching with `options` what its loads need.
pub fn evaluate_workspace(
    site: WorkspaceSite,
    options: &crate::fetch::FetchOptions,
) -> Result<Workspace, Failure> {
    let evaluated = Workspace::evaluate(site, &crate::fetch::WorkspaceFileFetcher::new(options));
    // Ctrl-C during a fetch WORKSPACE's loads needed ends the command as one (exit 8).
    if evaluated.is_err() {
        interrupted_check()?;
    }
    let workspace = evaluated?;
    // Labels in the files of a repository with a repo_mapping are read through it.
    crate::core::label::set_repo_mappings(workspace.repo_mappings());
    Ok(workspace)
}

/// Loads the packages `patterns` need (and what they depend on), which fetches the external
/// repositories among them.
pub fn fetch(
    workspace: &Arc<Workspace>,
    cwd_package: &PackageId,
    patterns: &[String],
    options: &crate::fetch::FetchOptions,
) -> Result<(), Failure> {
    let loader = Loader::with_fetch_options(workspace.clone(), options).map_err(Failure::from)?;
    let mut graph = TargetGraph::new(&loader);
    let patterns = patterns
        .iter()
        .map(|p| TargetPatternArg::parse(p, cwd_package))
        .collect::<Result<Vec<_>, Diagnostic>>()
        .map_err(super::usage)?;
    let (targets, mut errors) = graph.expand_patterns(&patterns);
    graph.load_closure(&targets);
    errors.extend(graph.errors().iter().cloned());
    interrupted_check()?;
    if !errors.is_empty() {
        return Err(Failure::from_diagnostics(errors));
    }
    Ok(())
}

/// Exit 8 when Ctrl-C came while loading (and fetching).
pub fn interrupted_check() -> Result<(), Failure> {
    if crate::exec::interrupt_flag().load(std::sync::atomic::Ordering::SeqCst) {
        return Err(Failure {
            code: ExitCode::Interrupted,
            errors: vec![Diagnostic::new(
                "Interrupted (Ctrl-C) while loading and fetching external repositories",
            )],
        });
    }
    Ok(())
}

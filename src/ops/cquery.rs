//! `cquery`: the workspace, a parsed query expression, the build options and an output format
//! in; the configured targets the expression selects written to `out` — each label with its
//! configuration (`--output=label`), with its dependency edges' transitions
//! (`--output=transitions`), or as a Starlark expression prints it (`--output=starlark`) —
//! and the errors (with `--keep_going`) out.
//!
//! As in Bazel, the patterns the expression names are the universe: they are analysed in the
//! top-level configuration, and the query language runs over the configured graph, so
//! `deps()` follows the select() branches taken and the edges into exec and transitioned
//! configurations.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::Arc;

use crate::analysis::configured_graph::DepEdge;
use crate::analysis::{self, Analysis, AnalysisConfig, ConfiguredLabel};
use crate::core::{Diagnostic, Failure, Label, PackageId, layout};
use crate::graph::{TargetGraph, TargetPatternArg};
use crate::loading::{Loader, Target, TargetKind};
use crate::query::{self, Expr, QueryEnv};
use crate::workspace::Workspace;

/// How configured targets are printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CqueryOutput {
    /// `//pkg:t (abc1234)`.
    Label,
    /// Each target, then its dependency edges with their transitions; `full` also prints
    /// the options each transition changed.
    Transitions { full: bool },
    /// The text of a Starlark expression over `target`.
    Starlark(String),
}

/// What a cquery is asked.
pub struct CqueryRequest<'a> {
    pub expression: &'a Expr,
    pub cwd_package: &'a PackageId,
    pub defines: BTreeMap<String, String>,
    pub stamp: bool,
    /// `--//pkg:flag=value` as given.
    pub build_settings: &'a [String],
    /// `-c`, `--cpu`.
    pub output_configuration: layout::OutputConfiguration,
    /// `--platforms`, `--host_platform`, `--extra_toolchains`.
    pub platforms: &'a super::platforms::PlatformFlags,
    /// `--copt`, `--linkopt`, `--features`, ...
    pub cpp: crate::analysis::cpp_fragment::CppOptions,
    pub keep_going: bool,
    pub output: CqueryOutput,
    pub fetch: &'a crate::fetch::FetchOptions,
}

/// Analyses the expression's patterns and prints what the expression selects of the
/// configured graph. Errors go to `report` as `ERROR:` lines; without `keep_going` they end
/// the command.
pub fn cquery(
    workspace: Arc<Workspace>,
    request: &CqueryRequest<'_>,
    report: &mut dyn FnMut(String),
    out: &mut dyn Write,
) -> Result<Vec<Diagnostic>, Failure> {
    let setting_args =
        analysis::build_settings::parse_args(request.build_settings, &workspace.name)
            .map_err(super::usage)?;
    let loader =
        Loader::with_fetch_options(workspace.clone(), request.fetch).map_err(Failure::from)?;
    let mut graph = TargetGraph::new(&loader);
    let mut errors = Vec::new();
    let mut universe = BTreeSet::new();
    for pattern in request.expression.patterns() {
        let arg = TargetPatternArg::parse(pattern, request.cwd_package).map_err(super::usage)?;
        match graph.expand(&arg.pattern) {
            Ok(labels) => universe.extend(labels),
            Err(d) => errors.push(d),
        }
    }
    graph.load_closure(&universe);
    graph.load_closure(&analysis::build_settings::labels(&setting_args));
    loop {
        let settings = analysis::transition_settings(&graph);
        graph.load_closure(&settings);
        if settings.iter().all(|l| graph.target(l).is_none()) {
            break;
        }
    }
    analysis::aspects::load_aspect_labels(&mut graph, &[]).map_err(Failure::failed)?;
    errors.extend(graph.errors().iter().cloned());
    let build_settings = analysis::build_settings::resolve(&graph, &setting_args, &workspace.name)
        .map_err(super::usage)?;
    let platforms = super::platforms::platform_config(&mut graph, &workspace, request.platforms)
        .map_err(Failure::from_diagnostics)?;
    let config = AnalysisConfig {
        defines: request.defines.clone(),
        stamp: request.stamp,
        build_settings,
        output: request.output_configuration.clone(),
        platforms,
        cpp: request.cpp.clone(),
        aspects: Vec::new(),
    };
    let analysis = analysis::analyze(&graph, &universe, &config);
    errors.extend(analysis.errors.iter().cloned());
    if !errors.is_empty() && !request.keep_going {
        return Err(Failure::from_diagnostics(errors));
    }
    for e in &errors {
        report(format!("ERROR: {e}"));
    }

    let configured = ConfiguredEnv::new(&mut graph, &analysis, request.cwd_package.clone());
    let mut env = configured;
    let evaluation = query::evaluate(request.expression, &mut env, request.keep_going);
    if !evaluation.errors.is_empty() && !request.keep_going {
        return Err(Failure::from_diagnostics(evaluation.errors));
    }
    errors.extend(evaluation.errors);
    let text = env.print(&evaluation.labels, &request.output)?;
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .or_else(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => Ok(()),
            _ => Err(e),
        })
        .map_err(|e| Failure::failed(format!("cannot write the cquery result: {e}")))?;
    Ok(errors)
}

/// The configured graph seen through the query language's interface: a label's
/// dependencies are those of its configured targets.
struct ConfiguredEnv<'g, 'l, 'a> {
    graph: &'g mut TargetGraph<'l>,
    analysis: &'a Analysis,
    cwd: PackageId,
    /// Each label's configured targets (a file's: its own configurations).
    configurations: BTreeMap<Label, BTreeSet<ConfiguredLabel>>,
    /// Each label's dependencies over all its configurations.
    deps: BTreeMap<Label, BTreeSet<(String, Label)>>,
}

impl<'g, 'l, 'a> ConfiguredEnv<'g, 'l, 'a> {
    fn new(graph: &'g mut TargetGraph<'l>, analysis: &'a Analysis, cwd: PackageId) -> Self {
        let mut configurations: BTreeMap<Label, BTreeSet<ConfiguredLabel>> = BTreeMap::new();
        let mut deps: BTreeMap<Label, BTreeSet<(String, Label)>> = BTreeMap::new();
        if let Some(cg) = &analysis.configured {
            for (key, node) in &cg.nodes {
                configurations
                    .entry(key.label.clone())
                    .or_default()
                    .insert(key.clone());
                for edge in &node.deps {
                    deps.entry(key.label.clone())
                        .or_default()
                        .insert((edge.attr.clone(), edge.label.clone()));
                    if edge.label != key.label {
                        configurations
                            .entry(edge.label.clone())
                            .or_default()
                            .insert(ConfiguredLabel {
                                label: edge.label.clone(),
                                config: edge.config.clone(),
                            });
                    }
                    // A generated file depends on its rule, in the same configuration.
                    if let Some(rule) = &edge.rule
                        && rule.label != edge.label
                    {
                        deps.entry(edge.label.clone())
                            .or_default()
                            .insert((String::new(), rule.label.clone()));
                    }
                }
            }
            for (label, key) in &cg.roots {
                configurations
                    .entry(label.clone())
                    .or_default()
                    .insert(key.clone());
                if *label != key.label {
                    deps.entry(label.clone())
                        .or_default()
                        .insert((String::new(), key.label.clone()));
                }
            }
        }
        ConfiguredEnv {
            graph,
            analysis,
            cwd,
            configurations,
            deps,
        }
    }

    /// `(null)` for a source file, as Bazel prints it; else the configuration's short id.
    fn configuration_text(&self, key: &ConfiguredLabel) -> String {
        match self.graph.target(&key.label).map(|t| &t.kind) {
            Some(TargetKind::SourceFile) | Some(TargetKind::PackageGroup(_)) => "null".into(),
            _ => key.config.short_id(),
        }
    }

    fn print(&self, labels: &BTreeSet<Label>, output: &CqueryOutput) -> Result<String, Failure> {
        let mut text = String::new();
        for label in labels {
            for key in self.configurations.get(label).into_iter().flatten() {
                let line = format!("{} ({})", key.label, self.configuration_text(key));
                match output {
                    CqueryOutput::Label => {
                        text.push_str(&line);
                        text.push('\n');
                    }
                    CqueryOutput::Starlark(expr) => {
                        let value = analysis::format_target(self.analysis, key, expr)
                            .map_err(Failure::failed)?;
                        text.push_str(&value);
                        text.push('\n');
                    }
                    CqueryOutput::Transitions { full } => {
                        text.push_str(&line);
                        text.push('\n');
                        for edge in self.edges(key) {
                            text.push_str(&format!(
                                "  {}#{}#{} -> {}\n",
                                edge.attr,
                                edge.label,
                                edge.transition,
                                edge.config.short_id()
                            ));
                            if *full {
                                for change in changes(&key.config, &edge.config) {
                                    text.push_str(&format!("      {change}\n"));
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(text)
    }

    fn edges(&self, key: &ConfiguredLabel) -> Vec<&DepEdge> {
        self.analysis
            .configured
            .as_ref()
            .and_then(|cg| cg.nodes.get(key))
            .map(|n| n.deps.iter().collect())
            .unwrap_or_default()
    }
}

/// The options that differ between two configurations, as `option: old -> new`.
fn changes(from: &analysis::Config, to: &analysis::Config) -> Vec<String> {
    let (a, b) = (from.options(), to.options());
    let mut out = Vec::new();
    let mut change = |name: &str, old: String, new: String| {
        if old != new {
            out.push(format!("{name}: {old} -> {new}"));
        }
    };
    change(
        "compilation_mode",
        a.compilation_mode.clone(),
        b.compilation_mode.clone(),
    );
    change("cpu", a.cpu.clone(), b.cpu.clone());
    change(
        "define",
        format!("{:?}", a.defines),
        format!("{:?}", b.defines),
    );
    change("stamp", a.stamp.to_string(), b.stamp.to_string());
    change(
        "allow_analysis_failures",
        a.allow_analysis_failures.to_string(),
        b.allow_analysis_failures.to_string(),
    );
    let settings: BTreeSet<&Label> = a
        .build_settings
        .keys()
        .chain(b.build_settings.keys())
        .collect();
    for s in settings {
        let show = |v: Option<&crate::loading::AttrValue>| {
            v.map_or_else(|| "(default)".to_owned(), |v| v.display())
        };
        change(
            &s.to_string(),
            show(a.build_settings.get(s)),
            show(b.build_settings.get(s)),
        );
    }
    out
}

impl QueryEnv for ConfiguredEnv<'_, '_, '_> {
    fn expand_pattern(&mut self, pattern: &str) -> Result<BTreeSet<Label>, Diagnostic> {
        let arg = TargetPatternArg::parse(pattern, &self.cwd)?;
        self.graph.expand(&arg.pattern)
    }

    /// What the configured graph reaches from `roots`.
    fn load_closure(&mut self, roots: &BTreeSet<Label>) -> BTreeSet<Label> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<Label> = roots.iter().cloned().collect();
        while let Some(label) = stack.pop() {
            if !seen.insert(label.clone()) {
                continue;
            }
            for (_, d) in self.deps.get(&label).into_iter().flatten() {
                if !seen.contains(d) {
                    stack.push(d.clone());
                }
            }
        }
        seen
    }

    fn target(&self, label: &Label) -> Option<&Target> {
        self.graph.target(label)
    }

    fn deps(&self, label: &Label) -> Vec<(String, Label)> {
        self.deps
            .get(label)
            .map(|d| d.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn build_files(&self, label: &Label) -> Vec<Label> {
        match self.graph.package(&label.package_id()) {
            Some(pkg) => std::iter::once(pkg.build_file.clone())
                .chain(pkg.bzl_files.iter().cloned())
                .collect(),
            None => Vec::new(),
        }
    }
}

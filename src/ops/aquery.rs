//! `aquery`: an expression — the query language, optionally inside Bazel's aquery filters
//! `inputs(PATTERN, e)`, `outputs(PATTERN, e)` and `mnemonic(PATTERN, e)` — and the build's
//! settings in; the actions of the targets the expression names (from the same plan a build
//! of those targets makes), each with its target's rule class and its command's whole
//! environment, out. No action runs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use regex::Regex;

use super::plan::{PlanRequest, plan};
use crate::core::{Action, Diagnostic, Digest, Failure, Label, layout};
use crate::graph::TargetGraph;
use crate::loading::Loader;
use crate::query::{self, GraphEnv};
use crate::workspace::{OutputBaseOptions, Workspace};

/// Which of an action's properties a filter matches its pattern against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterKind {
    /// Any input's exec path.
    Inputs,
    /// Any output's exec path.
    Outputs,
    Mnemonic,
}

/// One aquery filter: the whole property must match the pattern (as Bazel's `matches()`),
/// so the pattern is kept anchored.
#[derive(Clone, Debug)]
pub struct Filter {
    pub kind: FilterKind,
    pub pattern: Regex,
}

impl Filter {
    fn keeps(&self, action: &Action) -> bool {
        let whole = |text: &str| self.pattern.is_match(text);
        match self.kind {
            FilterKind::Inputs => action.inputs.flatten().iter().any(|p| whole(p)),
            FilterKind::Outputs => action.outputs.iter().any(|p| whole(p)),
            FilterKind::Mnemonic => whole(&action.mnemonic),
        }
    }
}

/// An aquery expression: its filters (outermost first) around a query expression.
#[derive(Clone, Debug)]
pub struct AqueryExpr {
    pub filters: Vec<Filter>,
    pub query: query::Expr,
}

/// Reads `text`: leading `inputs(...)`, `outputs(...)`, `mnemonic(...)` calls, each around
/// the rest of the expression, then a query expression.
pub fn parse(text: &str) -> Result<AqueryExpr, Diagnostic> {
    let mut filters = Vec::new();
    let mut rest = text.trim();
    while let Some((kind, name, args)) = filter_call(rest) {
        let (pattern, inner) = split_pattern(name, args)?;
        let pattern = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
            Diagnostic::new(format!(
                "{name}(): invalid regular expression '{pattern}': {e}"
            ))
        })?;
        filters.push(Filter { kind, pattern });
        rest = inner.trim();
    }
    Ok(AqueryExpr {
        filters,
        query: query::parse(rest)?,
    })
}

/// `name(ARGS)` when `text` is one call of an aquery filter spanning all of it.
fn filter_call(text: &str) -> Option<(FilterKind, &'static str, &str)> {
    for (kind, name) in [
        (FilterKind::Inputs, "inputs"),
        (FilterKind::Outputs, "outputs"),
        (FilterKind::Mnemonic, "mnemonic"),
    ] {
        if let Some(after) = text.strip_prefix(name)
            && let Some(open) = after.trim_start().strip_prefix('(')
            && let Some(args) = open.trim_end().strip_suffix(')')
        {
            return Some((kind, name, args));
        }
    }
    None
}

/// `PATTERN, EXPR` (the pattern quoted or a bare word) split in two.
fn split_pattern<'a>(name: &str, args: &'a str) -> Result<(String, &'a str), Diagnostic> {
    let args = args.trim_start();
    let usage = || {
        Diagnostic::new(format!(
            "{name}() takes a pattern and an expression: {name}('PATTERN', EXPRESSION)"
        ))
    };
    let (pattern, rest) = match args.chars().next() {
        Some(quote @ ('\'' | '"')) => {
            let end = args[1..].find(quote).ok_or_else(usage)? + 1;
            (args[1..end].to_owned(), &args[end + 1..])
        }
        _ => {
            let end = args.find(',').ok_or_else(usage)?;
            (args[..end].trim().to_owned(), &args[end..])
        }
    };
    let inner = rest.trim_start().strip_prefix(',').ok_or_else(usage)?;
    if inner.trim().is_empty() {
        return Err(usage());
    }
    Ok((pattern, inner))
}

/// What an aquery is asked, besides its expression: the settings that decide the plan.
pub struct AqueryRequest<'a> {
    pub expression: &'a AqueryExpr,
    pub cwd: PathBuf,
    pub startup: &'a OutputBaseOptions,
    pub keep_going: bool,
    pub defines: BTreeMap<String, String>,
    pub stamp: bool,
    pub build_settings: Vec<String>,
    pub fetch: crate::fetch::FetchOptions,
    /// `-c` and `--cpu`: the top-level configuration.
    pub configuration: layout::OutputConfiguration,
    /// `--platforms`, `--host_platform`, `--extra_toolchains`.
    pub platforms: super::platforms::PlatformFlags,
    /// `--copt`, `--linkopt`, `--features`, ...
    pub cpp: crate::analysis::cpp_fragment::CppOptions,
    /// `--action_env`: part of each command's environment.
    pub action_env: BTreeMap<String, String>,
}

/// One action as aquery shows it.
#[derive(Clone, Debug)]
pub struct ShownAction {
    pub action: Action,
    /// Its target's rule class (`genrule`, `my_rule`).
    pub rule_class: String,
    /// The command's whole environment (empty for in-process kinds).
    pub environment: BTreeMap<String, String>,
    /// A digest of what the action is (kind, command, environment, input and output paths,
    /// requirements) — not of its inputs' contents, which aquery does not read.
    pub key: Digest,
}

/// The actions aquery found, by target label, each target's in the order its rule declared
/// them.
pub struct ActionGraph {
    pub actions: Vec<ShownAction>,
    /// The configuration's name: `k8-fastbuild`.
    pub configuration: String,
    /// Problems met (only with `keep_going`).
    pub errors: Vec<Diagnostic>,
}

/// Evaluates the request's expression, plans its rule targets as a build would and keeps
/// their actions that pass every filter.
/// `waiting` hears that another forge holds the output base.
pub fn aquery(
    request: AqueryRequest<'_>,
    waiting: &mut dyn FnMut(&str),
) -> Result<ActionGraph, Failure> {
    let site = Workspace::locate(&request.cwd, request.startup)?;
    // Planning may fetch and stores its plan under the output base.
    let _lock = crate::exec::lock_output_base_with(&site.output_base, waiting).map_err(|e| {
        Failure::failed(format!(
            "cannot lock the output base {}: {e}",
            site.output_base.display()
        ))
    })?;
    let workspace = Arc::new(super::fetch::evaluate_workspace(site, &request.fetch)?);
    let cwd_package = workspace.package_of(&request.cwd);

    let loader =
        Loader::with_fetch_options(workspace.clone(), &request.fetch).map_err(Failure::from)?;
    let mut graph = TargetGraph::new(&loader);
    let evaluation = {
        let mut env = GraphEnv {
            graph: &mut graph,
            cwd: cwd_package.clone(),
        };
        query::evaluate(&request.expression.query, &mut env, request.keep_going)
    };
    let mut errors: Vec<Diagnostic> = graph.errors().to_vec();
    errors.extend(evaluation.errors);
    if !errors.is_empty() && !request.keep_going {
        return Err(Failure::from_diagnostics(errors));
    }
    // Only rules have actions; files and package groups name none.
    let mut rule_classes: BTreeMap<Label, String> = BTreeMap::new();
    for label in &evaluation.labels {
        if let Some(rule) = graph.target(label).and_then(|t| t.rule()) {
            rule_classes.insert(label.clone(), rule.class.clone());
        }
    }
    let patterns: Vec<String> = rule_classes.keys().map(Label::to_string).collect();
    let configuration = request.configuration.dir_name();
    if patterns.is_empty() {
        return Ok(ActionGraph {
            actions: Vec::new(),
            configuration,
            errors,
        });
    }
    let planned = plan(
        &workspace,
        &PlanRequest {
            patterns: &patterns,
            cwd_package: &cwd_package,
            defines: request.defines,
            stamp: request.stamp,
            build_settings: &request.build_settings,
            keep_going: request.keep_going,
            for_tests: false,
            fetch: &request.fetch,
            output_groups: &[],
            configuration: &request.configuration,
            platforms: &request.platforms,
            cpp: &request.cpp,
            aspects: &[],
            remote: None,
        },
    )?;
    errors.extend(planned.errors);
    let base = crate::exec::base_environment(&request.action_env);
    let named: BTreeSet<&Label> = rule_classes.keys().collect();
    let mut actions = planned
        .plan
        .actions
        .into_iter()
        .filter(|a| named.contains(&a.owner))
        .filter(|a| request.expression.filters.iter().all(|f| f.keeps(a)))
        .map(|action| {
            let environment = crate::exec::command_environment(&base, &action);
            ShownAction {
                rule_class: rule_classes.get(&action.owner).cloned().unwrap_or_default(),
                key: definition_key(&action, &environment),
                environment,
                action,
            }
        })
        .collect::<Vec<_>>();
    // By target, each target's actions in the order its rule declared them.
    actions.sort_by(|a, b| a.action.owner.cmp(&b.action.owner));
    Ok(ActionGraph {
        actions,
        configuration,
        errors,
    })
}

/// The digest aquery prints as `ActionKey`: the action's definition with its environment.
/// Inputs are listed flat, so the key does not depend on how they are grouped in sets.
fn definition_key(action: &Action, environment: &BTreeMap<String, String>) -> Digest {
    let mut flat = action.clone();
    flat.inputs = action.inputs.flatten().into();
    if let Some(discovery) = &mut flat.discovery {
        discovery.discoverable = discovery.discoverable.flatten().into();
    }
    let text = serde_json::to_vec(&(&flat, environment)).unwrap_or_default();
    Digest::of_bytes(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_wrap_a_query_expression() {
        let e = parse("mnemonic('Gen.*', inputs(\".*\\.txt\", deps(//a:b)))").expect("parses");
        assert_eq!(e.filters.len(), 2);
        assert_eq!(e.filters[0].kind, FilterKind::Mnemonic);
        assert_eq!(e.filters[1].kind, FilterKind::Inputs);
        assert_eq!(e.query.to_string(), "deps(//a:b)");
        let plain = parse("//a:b + //c:d").expect("parses");
        assert!(plain.filters.is_empty());
        let bare = parse("outputs(.*out, //a:b)").expect("parses");
        assert_eq!(bare.filters[0].pattern.as_str(), "^(?:.*out)$");
    }

    #[test]
    fn malformed_filters_say_how_to_call_them() {
        let e = parse("mnemonic('x')").expect_err("no expression");
        assert!(e.message.contains("mnemonic('PATTERN', EXPRESSION)"), "{e}");
        let e = parse("inputs('(', //a)").expect_err("bad regex");
        assert!(e.message.contains("invalid regular expression"), "{e}");
    }

    #[test]
    fn a_filter_matches_the_whole_property() {
        let action = Action {
            owner: Label::parse("//p:n", &Default::default()).expect("label"),
            mnemonic: "Genrule".into(),
            progress_message: String::new(),
            kind: crate::core::ActionKind::Run { argv: vec![] },
            inputs: vec!["p/a.txt".into()].into(),
            outputs: vec!["forge-out/x/bin/p/o".into()],
            directory_outputs: vec![],
            scratch_dirs: vec![],
            env: BTreeMap::new(),
            requirements: vec![],
            discovery: None,
        };
        let f = |kind, p: &str| Filter {
            kind,
            pattern: Regex::new(&format!("^(?:{p})$")).expect("regex"),
        };
        assert!(f(FilterKind::Mnemonic, "Gen.*").keeps(&action));
        assert!(!f(FilterKind::Mnemonic, "Gen").keeps(&action));
        assert!(f(FilterKind::Inputs, ".*\\.txt").keeps(&action));
        assert!(!f(FilterKind::Inputs, "a\\.txt").keeps(&action));
        assert!(f(FilterKind::Outputs, ".*/o").keeps(&action));
    }
}

//! Answering a query: the workspace, the parsed expression and an output format in; the
//! result written to `out`, the warnings about the loaded targets (cycles, visibility — when
//! the query followed edges) and the errors reported as lines, and the errors (with
//! `--keep_going`) returned.

use std::io::Write;
use std::sync::Arc;

use crate::core::{Diagnostic, Failure, Label, PackageId};
use crate::graph::TargetGraph;
use crate::loading::Loader;
use crate::query::{self, Expr, GraphEnv, NoImplicitDeps, OrderOutput, OutputFormat, QueryEnv};
use crate::workspace::Workspace;

/// One argument is an expression. Several are a target pattern list, where a leading `-`
/// subtracts: `a -b c` reads as `(a except b) + c`, the left-to-right meaning Bazel gives it.
pub fn expression_text(words: &[String]) -> String {
    if words.len() == 1 {
        return words[0].clone();
    }
    let mut text = String::new();
    for (i, word) in words.iter().enumerate() {
        match (i, word.strip_prefix('-')) {
            (0, _) => text.push_str(word),
            (_, Some(negated)) => text.push_str(&format!(" except {negated}")),
            (_, None) => text.push_str(&format!(" + {word}")),
        }
    }
    text
}

/// How a query is answered and printed, besides its expression.
#[derive(Clone, Debug)]
pub struct QuerySettings {
    pub format: OutputFormat,
    pub keep_going: bool,
    /// `--order_output`.
    pub order: OrderOutput,
    /// `--universe_scope`: patterns whose closure `allrdeps` and `rbuildfiles` search.
    pub universe_scope: Vec<String>,
    /// `--noimplicit_deps` turns this off: edges through `_` attributes are left out.
    pub implicit_deps: bool,
}

/// Loads what `expr` needs and evaluates it. Cycles and visibility violations among the loaded
/// targets are warnings (they fail a build, but query still answers), told when the query
/// needed the edges (not for one about the target set alone); they and the errors go
/// to `report` as `WARNING:`/`ERROR:` lines before the result is written to `out`. Without
/// `keep_going` an error ends the query; with it, the errors are returned.
pub fn query(
    workspace: Arc<Workspace>,
    cwd_package: &PackageId,
    expr: &Expr,
    settings: &QuerySettings,
    report: &mut dyn FnMut(String),
    out: &mut dyn Write,
) -> Result<Vec<Diagnostic>, Failure> {
    // Packages whose inputs are unchanged come from the store the builds fill, and a query
    // stores what it evaluates for the next command.
    let store = super::plan::package_store(&workspace);
    let loader = Loader::new(workspace)
        .map_err(Failure::from)?
        .with_package_store(store);
    // A question about the target set alone (`//...` printed as labels) keeps no attributes
    // and follows no edge; any other keeps the whole graph.
    let names_only = query::answered_by_target_set(expr, settings.format, settings.order);
    let mut graph = match names_only {
        true => TargetGraph::names_only(&loader),
        false => TargetGraph::new(&loader),
    };

    let keep_going = settings.keep_going;
    let evaluation = {
        let mut graph_env = GraphEnv {
            graph: &mut graph,
            cwd: cwd_package.clone(),
        };
        let mut without_implicit;
        let env: &mut dyn QueryEnv = match settings.implicit_deps {
            true => &mut graph_env,
            false => {
                without_implicit = NoImplicitDeps(&mut graph_env);
                &mut without_implicit
            }
        };
        query::evaluate_in(expr, env, keep_going, &settings.universe_scope)
    };

    let mut errors: Vec<Diagnostic> = graph.errors().to_vec();
    for e in evaluation.errors {
        if !errors.contains(&e) {
            errors.push(e);
        }
    }
    if !errors.is_empty() && !keep_going {
        return Err(Failure::from_diagnostics(errors));
    }

    // The edges' problems are told when the query followed edges; a query of names, like
    // Bazel's, says nothing about edges it never looked at.
    if !names_only {
        let mut loaded: Vec<Label> = graph.targets().map(|t| t.label.clone()).collect();
        loaded.sort_unstable();
        for cycle in graph.cycles(&loaded) {
            report(format!(
                "WARNING: {cycle}\nthis cycle will fail any build of these targets"
            ));
        }
        for problem in graph.visibility_errors(&loaded) {
            report(format!("WARNING: {problem}"));
        }
    }
    for e in &errors {
        report(format!("ERROR: {e}"));
    }

    let mut graph_env = GraphEnv {
        graph: &mut graph,
        cwd: PackageId::default(),
    };
    let without_implicit;
    let env: &dyn QueryEnv = match settings.implicit_deps {
        true => &graph_env,
        false => {
            without_implicit = NoImplicitDeps(&mut graph_env);
            &without_implicit
        }
    };
    let ordered = query::order(&evaluation.labels, env, settings.order, settings.format);
    query::print(settings.format, &ordered, env, out)
        .and_then(|()| out.flush())
        .or_else(|e| {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                Ok(())
            } else {
                Err(e)
            }
        })
        .map_err(|e| Failure::failed(format!("cannot write the query result: {e}")))?;

    // A store that cannot be written only costs the next command its speed.
    let _ = loader.flush_package_store();
    // The graph is big and about to be dropped, which takes a noticeable share of a query
    // (a tenth at 5,000 targets); the process ends soon and frees it all.
    std::mem::forget(graph);
    std::mem::forget(loader);
    Ok(errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn one_word_is_an_expression_and_several_are_a_pattern_list() {
        assert_eq!(expression_text(&words(&["deps(//a)"])), "deps(//a)");
        assert_eq!(
            expression_text(&words(&["//...", "-//app/...", "//x"])),
            "//... except //app/... + //x"
        );
    }
}

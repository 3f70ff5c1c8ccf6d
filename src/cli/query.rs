//! `forge query EXPR`: loads what the expression needs, evaluates it, prints the result in
//! the chosen `--output` format. Dependency cycles and visibility violations among the loaded
//! targets are printed as warnings: they will fail a build, but query still answers.

use std::io::Write;
use std::sync::Arc;

use clap::Args;

use super::CommonOptions;
use crate::core::{Diagnostic, ExitCode, Failure, Label, PackageId};
use crate::graph::TargetGraph;
use crate::loading::Loader;
use crate::query::{self, GraphEnv, OutputFormat};
use crate::workspace::{OutputBaseOptions, Workspace};

#[derive(Args, Debug)]
pub struct QueryArgs {
    #[command(flatten)]
    common: CommonOptions,

    /// The output format: label, label_kind, build, graph or json.
    #[arg(long = "output", value_name = "FORMAT", default_value = "label")]
    output: String,

    /// The query expression, e.g. `deps(//app:main)`. Several target patterns after `--`
    /// are read as `forge build` reads them: `-- //... -//app/...` subtracts `//app/...`.
    #[arg(required = true, value_name = "EXPR")]
    expression: Vec<String>,
}

/// One argument is an expression. Several are a target pattern list, where a leading `-`
/// subtracts: `a -b c` reads as `(a except b) + c`, the left-to-right meaning Bazel gives it.
fn expression_text(words: &[String]) -> String {
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

pub fn run(args: QueryArgs, options: &OutputBaseOptions) -> Result<ExitCode, Failure> {
    args.common.apply();
    let keep_going = args.common.keep_going && !args.common.no_keep_going;
    let format: OutputFormat = args
        .output
        .parse()
        .map_err(|d: Diagnostic| Failure::usage(d.to_string()))?;
    let text = expression_text(&args.expression);
    let expr = query::parse(&text).map_err(|d| Failure::usage(d.to_string()))?;

    let cwd = super::current_dir()?;
    let workspace = Arc::new(Workspace::discover(&cwd, options)?);
    let cwd_package = workspace.package_of(&cwd);
    let loader = Loader::new(workspace).map_err(Failure::from)?;
    let mut graph = TargetGraph::new(&loader);

    let evaluation = {
        let mut env = GraphEnv {
            graph: &mut graph,
            cwd: cwd_package,
        };
        query::evaluate(&expr, &mut env, keep_going)
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

    let mut loaded: Vec<Label> = graph.targets().map(|t| t.label.clone()).collect();
    loaded.sort_unstable();
    for cycle in graph.cycles(&loaded) {
        eprintln!("WARNING: {cycle}\nthis cycle will fail any build of these targets");
    }
    for problem in graph.visibility_errors(&loaded) {
        eprintln!("WARNING: {problem}");
    }
    for e in &errors {
        eprintln!("ERROR: {e}");
    }

    let env = GraphEnv {
        graph: &mut graph,
        cwd: PackageId::default(),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    query::print(format, &evaluation.labels, &env, &mut out)
        .and_then(|()| out.flush())
        .or_else(|e| {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                Ok(())
            } else {
                Err(e)
            }
        })
        .map_err(|e| Failure::failed(format!("cannot write the query result: {e}")))?;

    if errors.is_empty() {
        Ok(ExitCode::Success)
    } else {
        eprintln!("WARNING: --keep_going: the result above may be incomplete");
        Ok(ExitCode::PartialSuccess)
    }
}

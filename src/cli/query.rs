//! `forge query EXPR`: loads what the expression needs, evaluates it, prints the result in
//! the chosen `--output` format. Dependency cycles and visibility violations among the loaded
//! targets are printed as warnings when the query followed edges: they will fail a build, but
//! query still answers.

use std::sync::Arc;

use clap::Args;

use super::CommonOptions;
use crate::core::{ExitCode, Failure};
use crate::ops;
use crate::query::{self, OutputFormat};
use crate::workspace::OutputBaseOptions;

#[derive(Args, Debug)]
pub struct QueryArgs {
    #[command(flatten)]
    common: CommonOptions,

    /// The output format: label, label_kind, package, location, minrank, maxrank, build,
    /// graph, xml, json or streamed_jsonproto.
    #[arg(long = "output", value_name = "FORMAT", default_value = "label")]
    output: String,

    /// The order of the result: auto (the default) and no print label order, as Bazel
    /// streams these formats; deps and full put each target before its dependencies (full:
    /// Bazel's deterministic order).
    #[arg(
        long = "order_output",
        alias = "order-output",
        value_name = "ORDER",
        default_value = "auto"
    )]
    order_output: String,

    /// Target patterns (comma-separated or repeated) whose transitive closure is the
    /// universe of allrdeps() and rbuildfiles() (default: //...).
    #[arg(
        long = "universe_scope",
        alias = "universe-scope",
        value_name = "PATTERNS",
        value_delimiter = ','
    )]
    universe_scope: Vec<String>,

    /// Follow dependencies a rule adds itself (its `_` attributes: tools, runtimes): the
    /// default; --noimplicit_deps leaves them out.
    #[arg(
        long = "implicit_deps",
        alias = "implicit-deps",
        value_name = "BOOL",
        action = clap::ArgAction::Set,
        value_parser = clap::value_parser!(bool),
        default_value = "true"
    )]
    implicit_deps: bool,

    /// The query expression, e.g. `deps(//app:main)`. Several target patterns after `--`
    /// are read as `forge build` reads them: `-- //... -//app/...` subtracts `//app/...`.
    #[arg(required = true, value_name = "EXPR")]
    expression: Vec<String>,
}

pub fn run(args: QueryArgs, options: &OutputBaseOptions) -> Result<ExitCode, Failure> {
    args.common.apply();
    let keep_going = args.common.keep_going && !args.common.no_keep_going;
    let format: OutputFormat = args.output.parse().map_err(ops::usage)?;
    let settings = ops::query::QuerySettings {
        format,
        keep_going,
        order: args.order_output.parse().map_err(ops::usage)?,
        universe_scope: args
            .universe_scope
            .iter()
            .filter(|p| !p.is_empty())
            .cloned()
            .collect(),
        implicit_deps: args.implicit_deps,
    };
    let text = ops::query::expression_text(&args.expression);
    let expr = query::parse(&text).map_err(ops::usage)?;

    let cwd = super::current_dir()?;
    let workspace = Arc::new(crate::ops::fetch::discover_workspace(
        &cwd,
        options,
        &crate::fetch::FetchOptions::default(),
    )?);
    let cwd_package = workspace.package_of(&cwd);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let errors = ops::query::query(
        workspace,
        &cwd_package,
        &expr,
        &settings,
        &mut |line| eprintln!("{line}"),
        &mut out,
    )?;
    if errors.is_empty() {
        Ok(ExitCode::Success)
    } else {
        eprintln!("WARNING: --keep_going: the result above may be incomplete");
        Ok(ExitCode::PartialSuccess)
    }
}

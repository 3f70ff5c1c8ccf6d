//! `forge cquery EXPR`: the build options and an expression in; the configured targets it
//! selects printed with their configurations (`--output=label`), their edges' transitions
//! (`--output=transitions`, `--transitions=lite|full`) or a Starlark expression over each
//! (`--output=starlark --starlark:expr=...`).

use std::sync::Arc;

use clap::Args;

use super::build::BuildOptions;
use crate::core::{ExitCode, Failure};
use crate::ops::key_values;
use crate::ops::{self, cquery::CqueryOutput};
use crate::workspace::OutputBaseOptions;

#[derive(Args, Debug)]
pub struct CqueryArgs {
    #[command(flatten)]
    options: BuildOptions,

    /// The output format: label, transitions or starlark.
    #[arg(long = "output", value_name = "FORMAT", default_value = "label")]
    output: String,

    /// With --output=transitions: `lite` (the edges) or `full` (and the options each
    /// transition changed).
    #[arg(long = "transitions", value_name = "LEVEL")]
    transitions: Option<String>,

    /// With --output=starlark: the expression printed for each target, over `target`.
    #[arg(
        long = "starlark:expr",
        value_name = "EXPR",
        default_value = "str(target.label)"
    )]
    starlark_expr: String,

    /// The query expression, e.g. `deps(//app:main)`.
    #[arg(required = true, value_name = "EXPR")]
    expression: Vec<String>,
}

pub fn run(args: CqueryArgs, startup: &OutputBaseOptions) -> Result<ExitCode, Failure> {
    let options = &args.options;
    options.common.apply();
    let keep_going = options.common.keep_going && !options.common.no_keep_going;
    let output = match (args.output.as_str(), args.transitions.as_deref()) {
        ("label", None) => CqueryOutput::Label,
        ("starlark", None) => CqueryOutput::Starlark(args.starlark_expr.clone()),
        ("transitions", None | Some("lite")) => CqueryOutput::Transitions { full: false },
        ("transitions", Some("full")) => CqueryOutput::Transitions { full: true },
        ("transitions", Some(other)) => {
            return Err(Failure::usage(format!(
                "While parsing option --transitions={other}: use full, lite or none"
            )));
        }
        (_, Some(_)) => {
            return Err(Failure::usage(
                "--transitions is for --output=transitions".to_owned(),
            ));
        }
        (other, None) => {
            return Err(Failure::usage(format!(
                "Invalid output format '{other}'. Valid values are: label, transitions, starlark \
                 (forge's cquery does not support the others yet)"
            )));
        }
    };
    let text = ops::query::expression_text(&args.expression);
    let expression = crate::query::parse(&text).map_err(ops::usage)?;
    let output_configuration = options.output_configuration()?;
    let cwd = super::current_dir()?;
    let fetch = options.fetch_options();
    let workspace = Arc::new(ops::fetch::discover_workspace(&cwd, startup, &fetch)?);
    let cwd_package = workspace.package_of(&cwd);
    let build_settings = super::starlark_flags::given();
    let request = ops::cquery::CqueryRequest {
        expression: &expression,
        cwd_package: &cwd_package,
        defines: key_values(&options.define, "define", false)?,
        stamp: options.stamp && !options.nostamp,
        build_settings: &build_settings,
        output_configuration,
        platforms: &options.platform_flags(),
        cpp: options.cpp_options(),
        keep_going,
        output,
        fetch: &fetch,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let errors = ops::cquery::cquery(
        workspace,
        &request,
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

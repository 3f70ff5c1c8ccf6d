//! `forge why //pkg:target`: the build and test flags and one target in; why its actions (and,
//! for a test, the test) ran last time and whether (and why) a build or `forge test` would
//! run them now, as `ops::explain::why` words it.

use clap::Args;

use super::build::BuildOptions;
use crate::core::{ExitCode, Failure};
use crate::ops::explain::{PlanSettings, WhyRequest};
use crate::ops::{self, key_values};
use crate::workspace::OutputBaseOptions;

#[derive(Args, Debug)]
pub struct WhyArgs {
    #[command(flatten)]
    options: BuildOptions,

    /// For a test: how `forge test` would run it (`--test_env`, `--test_arg`, ...), which
    /// its key depends on.
    #[command(flatten)]
    test: super::test::TestFlags,

    /// The target whose actions to explain: `//pkg:target`.
    #[arg(value_name = "TARGET")]
    target: String,
}

pub fn run(args: WhyArgs, startup: &OutputBaseOptions) -> Result<ExitCode, Failure> {
    let options = &args.options;
    options.common.apply();
    let request = WhyRequest {
        target: &args.target,
        cwd: super::current_dir()?,
        startup,
        plan: PlanSettings {
            defines: key_values(&options.define, "define", false)?,
            stamp: options.stamp && !options.nostamp,
            build_settings: super::starlark_flags::given(),
            fetch: options.fetch_options(),
            configuration: options.output_configuration()?,
            platforms: options.platform_flags(),
            cpp: options.cpp_options(),
        },
        action_env: key_values(&options.action_env, "action_env", true)?,
        test_options: super::test::test_options(&args.test, options)?,
    };
    let text = ops::explain::why(request, &mut |msg| eprintln!("{msg}"))?;
    print!("{text}");
    Ok(ExitCode::Success)
}

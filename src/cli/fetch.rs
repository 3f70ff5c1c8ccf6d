//! `forge fetch PATTERNS...`: loads what the patterns need, which fetches the external
//! repositories among it, so that a later build needs no network (`ops::fetch`).

use std::sync::Arc;

use clap::Args;

use super::ValueError;
use super::build::BuildOptions;
use crate::core::{ExitCode, Failure};
use crate::workspace::OutputBaseOptions;

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
    let session = super::reporting::Session::start("fetch", &args.options, &args.patterns)?;
    let result = fetch(&args, startup);
    session.finish(result)
}

fn fetch(args: &FetchArgs, startup: &OutputBaseOptions) -> Result<ExitCode, Failure> {
    args.options.common.apply();
    // Ctrl-C stops a download at once and exits 8.
    let _ = crate::exec::install_interrupt_handler();
    let cwd = super::current_dir()?;
    let workspace = Arc::new(crate::ops::fetch::discover_workspace(
        &cwd,
        startup,
        &args.options.fetch_options(),
    )?);
    let cwd_package = workspace.package_of(&cwd);
    crate::ops::fetch::fetch(
        &workspace,
        &cwd_package,
        &args.patterns,
        &args.options.fetch_options(),
    )?;
    super::console::info("All external dependencies fetched successfully.");
    Ok(ExitCode::Success)
}

/// `16G`, `512M`, `1.5GiB`, `1000` (bytes) as bytes: `--experimental_repository_extract_limit`.
pub fn parse_size(text: &str) -> Result<u64, ValueError> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| ValueError::NotSize(text.to_owned()))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => {
            return Err(ValueError::UnknownUnit {
                unit: other.to_owned(),
                text: text.to_owned(),
            });
        }
    };
    Ok((number * scale as f64) as u64)
}

/// `60`, `2.5`, `500ms`, `30s`, `2m` as a duration: `--http_stall_timeout`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, ValueError> {
    let t = text.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| ValueError::NotDuration(text.to_owned()))?;
    if !(value > 0.0 && value.is_finite()) {
        return Err(ValueError::NotPositive(text.to_owned()));
    }
    Ok(std::time::Duration::from_secs_f64(value * scale))
}

//! `forge info [KEY]`: facts about the workspace and where forge keeps its files.

use clap::Args;

use crate::core::{ExitCode, Failure};
use crate::workspace::OutputBaseOptions;

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Print only this key's value (e.g. `output_base`).
    key: Option<String>,
}

pub fn run(args: InfoArgs, options: &OutputBaseOptions) -> Result<ExitCode, Failure> {
    let ws = crate::ops::fetch::discover_workspace(
        &super::current_dir()?,
        options,
        &crate::fetch::FetchOptions::default(),
    )?;
    let entries = crate::ops::info::entries(&ws);
    match args.key {
        None => {
            for (k, v) in entries {
                println!("{k}: {v}");
            }
        }
        Some(key) => {
            let value = entries
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v)
                .ok_or_else(|| {
                    let known: Vec<&str> = entries.iter().map(|(k, _)| *k).collect();
                    Failure::usage(format!(
                        "unknown info key '{key}'; known keys: {}",
                        known.join(", ")
                    ))
                })?;
            println!("{value}");
        }
    }
    Ok(ExitCode::Success)
}

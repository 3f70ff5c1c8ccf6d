//! `forge info [KEY]`: facts about the workspace and where forge keeps its files.

use clap::Args;

use crate::core::{ExitCode, Failure, layout};
use crate::workspace::{OutputBaseOptions, Workspace};

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Print only this key's value (e.g. `output_base`).
    key: Option<String>,
}

fn entries(ws: &Workspace) -> Vec<(&'static str, String)> {
    let exec_root = ws.execution_root();
    let output_path = exec_root.join(layout::OUT_DIR);
    vec![
        ("workspace", ws.root.display().to_string()),
        ("workspace_name", ws.name.clone()),
        ("output_base", ws.output_base.display().to_string()),
        ("execution_root", exec_root.display().to_string()),
        ("output_path", output_path.display().to_string()),
        (
            "forge-bin",
            exec_root.join(layout::bin_dir()).display().to_string(),
        ),
        (
            "forge-testlogs",
            exec_root.join(layout::testlogs_dir()).display().to_string(),
        ),
        ("release", format!("forge {}", env!("CARGO_PKG_VERSION"))),
    ]
}

pub fn run(args: InfoArgs, options: &OutputBaseOptions) -> Result<ExitCode, Failure> {
    let ws = Workspace::discover(&super::current_dir()?, options)?;
    let entries = entries(&ws);
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

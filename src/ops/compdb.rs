//! A compile database for editors (clangd): the compile commands the C/C++ rules report in
//! their `compdb` output group (one JSON fragment per target, built like any output) in;
//! `<workspace>/compile_commands.json` out, with the exec root as every entry's directory —
//! the commands are exactly those forge runs, whose paths are relative to it.

use std::path::Path;

use serde_json::Value;

use crate::analysis::plan::BuildPlan;
use crate::core::Failure;

/// The suffix of the fragments cc rules write (`<name>.compile_commands.json`).
const FRAGMENT_SUFFIX: &str = ".compile_commands.json";

/// Whether `--output_groups` asks for the compile database.
pub fn wanted(output_groups: &[String]) -> bool {
    crate::analysis::OutputGroups::from_flags(output_groups)
        .groups
        .contains("compdb")
}

/// Merges the built fragments of `plan` into `workspace_root/compile_commands.json`; the
/// number of entries.
pub fn write(plan: &BuildPlan, exec_root: &Path, workspace_root: &Path) -> Result<usize, Failure> {
    let directory = exec_root.display().to_string();
    let mut entries: Vec<Value> = Vec::new();
    let mut fragments: Vec<&str> = plan
        .wanted
        .iter()
        .map(|p| p.as_str())
        .filter(|p| p.ends_with(FRAGMENT_SUFFIX))
        .collect();
    fragments.sort_unstable();
    fragments.dedup();
    for fragment in fragments {
        let path = exec_root.join(fragment);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Failure::failed(format!(
                "cannot read the compile commands {}: {e}",
                path.display()
            ))
        })?;
        let list: Vec<Value> = serde_json::from_str(&text).map_err(|e| {
            Failure::failed(format!(
                "{} is not a list of compile commands: {e}",
                path.display()
            ))
        })?;
        for mut entry in list {
            if let Some(object) = entry.as_object_mut() {
                object.insert("directory".into(), Value::String(directory.clone()));
            }
            entries.push(entry);
        }
    }
    let out = workspace_root.join("compile_commands.json");
    let text = serde_json::to_string_pretty(&entries).expect("JSON values serialize") + "\n";
    crate::core::fs::write_atomic(&out, text.as_bytes())
        .map_err(|e| Failure::failed(format!("cannot write {}: {e}", out.display())))?;
    Ok(entries.len())
}

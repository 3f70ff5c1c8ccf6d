//! `info`: a workspace in, the facts about it and where forge keeps its files out, as
//! (key, value) pairs in the order `forge info` prints them. Bazel's keys are answered under
//! Bazel's names too; the keys that describe Bazel's Java server have no true value in forge
//! and are refused with the reason, never answered with a made-up one.

use std::path::{Path, PathBuf};

use crate::core::layout;
use crate::workspace::Workspace;

/// What forge answers about one workspace.
pub struct InfoRequest<'a> {
    pub workspace: &'a Workspace,
    /// `--repository_cache`, when given; otherwise the default one is named.
    pub repository_cache: Option<&'a Path>,
    /// `-c` and `--cpu`: the configuration `forge-bin` and `forge-testlogs` name.
    pub configuration: &'a layout::OutputConfiguration,
}

/// Why a key has no answer.
#[derive(Debug, PartialEq, Eq)]
pub enum InfoKeyError {
    /// Neither Bazel nor forge knows the key.
    Unknown(String),
    /// A Bazel key forge cannot give a true value for.
    NoValue { key: String, why: &'static str },
}

impl std::fmt::Display for InfoKeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Bazel's own words, so scripts matching them keep working.
            InfoKeyError::Unknown(key) => write!(f, "unknown key: '{key}'"),
            InfoKeyError::NoValue { key, why } => {
                write!(f, "forge has no value for info key '{key}': {why}")
            }
        }
    }
}

const NO_SERVER: &str = "forge runs no server (each command is one process)";
const NO_JVM: &str = "forge is not a Java program and has no Java heap, garbage collector or JVM";

/// Bazel 4.2.3's keys that describe its server or its JVM, with why forge has no value.
const WITHOUT_VALUE: &[(&str, &str)] = &[
    ("server_pid", NO_SERVER),
    ("server_log", NO_SERVER),
    (
        "command_log",
        "forge keeps no command log; its output goes to the terminal only",
    ),
    ("committed-heap-size", NO_JVM),
    ("used-heap-size", NO_JVM),
    ("used-heap-size-after-gc", NO_JVM),
    ("max-heap-size", NO_JVM),
    ("gc-count", NO_JVM),
    ("gc-time", NO_JVM),
    ("java-home", NO_JVM),
    ("java-runtime", NO_JVM),
    ("java-vm", NO_JVM),
    (
        "build-language",
        "forge does not describe its build language as a protocol buffer",
    ),
    (
        "starlark-semantics",
        "forge does not print its Starlark semantics",
    ),
    ("client-env", "forge does not print the client environment"),
];

/// Bazel's names of keys forge answers under its own name.
const BAZEL_NAMES: &[(&str, &str)] = &[
    ("bazel-bin", "forge-bin"),
    ("bazel-genfiles", "forge-genfiles"),
    ("bazel-testlogs", "forge-testlogs"),
];

/// Every key `forge info` prints without arguments, with its value.
pub fn entries(request: &InfoRequest) -> Vec<(&'static str, String)> {
    let ws = request.workspace;
    let exec_root = ws.execution_root();
    let shown = |p: PathBuf| p.display().to_string();
    let bin = shown(exec_root.join(request.configuration.bin_dir()));
    let repository_cache = request
        .repository_cache
        .map(Path::to_path_buf)
        .unwrap_or_else(|| crate::fetch::default_repository_cache(&ws.output_base));
    vec![
        ("workspace", shown(ws.root.clone())),
        ("workspace_name", ws.name.clone()),
        // Where forge itself is installed: its executable's directory. Forge unpacks nothing,
        // so this is the closest true counterpart of Bazel's extracted install base.
        ("install_base", install_base()),
        ("output_base", shown(ws.output_base.clone())),
        ("execution_root", shown(exec_root.clone())),
        ("output_path", shown(exec_root.join(layout::OUT_DIR))),
        ("forge-bin", bin.clone()),
        // Bazel 4 merges the genfiles directory into bin by default; so does forge.
        ("forge-genfiles", bin),
        (
            "forge-testlogs",
            shown(exec_root.join(request.configuration.testlogs_dir())),
        ),
        ("repository_cache", shown(repository_cache)),
        // Packages are read from the workspace only, as Bazel's default package path says.
        ("package_path", "%workspace%".to_owned()),
        ("character-encoding", "UTF-8".to_owned()),
        ("release", format!("forge {}", env!("CARGO_PKG_VERSION"))),
    ]
}

/// One key's value, looked up under forge's name or Bazel's.
pub fn lookup(entries: &[(&'static str, String)], key: &str) -> Result<String, InfoKeyError> {
    let name = BAZEL_NAMES
        .iter()
        .find(|(bazel, _)| *bazel == key)
        .map(|(_, forge)| *forge)
        .unwrap_or(match key {
            "default-package-path" => "package_path",
            other => other,
        });
    if let Some((_, value)) = entries.iter().find(|(k, _)| *k == name) {
        return Ok(value.clone());
    }
    match WITHOUT_VALUE.iter().find(|(k, _)| *k == key) {
        Some((_, why)) => Err(InfoKeyError::NoValue {
            key: key.to_owned(),
            why,
        }),
        None => Err(InfoKeyError::Unknown(key.to_owned())),
    }
}

fn install_base() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .map(|dir| dir.display().to_string())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::workspace::OutputBaseOptions;

    #[test]
    fn entries_name_the_workspace_and_paths_under_the_output_base() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("ws");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("WORKSPACE"), "workspace(name = \"w\")\n").unwrap();
        let output_base = dir.path().join("out");
        let options = OutputBaseOptions {
            output_base: Some(output_base.clone()),
            output_user_root: None,
        };
        let ws = Arc::new(Workspace::discover(&root, &options).expect("workspace"));
        let entries = entries(&InfoRequest {
            workspace: &ws,
            repository_cache: None,
            configuration: &layout::OutputConfiguration::default(),
        });
        let get = |key: &str| lookup(&entries, key).expect(key);
        assert_eq!(get("workspace_name"), "w");
        assert_eq!(get("output_base"), output_base.display().to_string());
        assert!(get("forge-bin").starts_with(&get("execution_root")));
        assert_eq!(get("bazel-bin"), get("forge-bin"));
        assert!(get("release").starts_with("forge "));
        assert!(matches!(
            lookup(&entries, "server_pid"),
            Err(InfoKeyError::NoValue { .. })
        ));
        assert_eq!(
            lookup(&entries, "nope"),
            Err(InfoKeyError::Unknown("nope".to_owned()))
        );
    }
}

//! `info`: a workspace in, the facts about it and where forge keeps its files out, as
//! (key, value) pairs in the order `forge info` prints them.

use crate::core::layout;
use crate::workspace::Workspace;

/// Every key `forge info` knows, with its value.
pub fn entries(ws: &Workspace) -> Vec<(&'static str, String)> {
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
        let entries = entries(&ws);
        let get = |key: &str| {
            entries
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone())
                .expect(key)
        };
        assert_eq!(get("workspace_name"), "w");
        assert_eq!(get("output_base"), output_base.display().to_string());
        assert!(get("forge-bin").starts_with(&get("execution_root")));
        assert!(get("release").starts_with("forge "));
    }
}

//! `clean`: a workspace's site in, its outputs and local cache (with `expunge`: its whole
//! output base) removed, and the `forge-*` links with them. A `--disk_cache` is never
//! touched. The WORKSPACE file is not evaluated: cleaning fetches nothing and works when
//! WORKSPACE is broken.

use crate::core::Failure;
use crate::exec;
use crate::outputs;
use crate::workspace::WorkspaceSite;

/// Removes what `forge clean` removes; `waiting` hears why the output base lock is waited for.
/// False when there was no output base, so nothing but stale links to remove.
pub fn clean(
    ws: &WorkspaceSite,
    expunge: bool,
    waiting: &mut dyn FnMut(&str),
) -> Result<bool, Failure> {
    if !ws.output_base.exists() {
        outputs::remove_convenience_symlinks(&ws.root);
        return Ok(false);
    }
    let lock = exec::lock_output_base_with(&ws.output_base, waiting).map_err(|e| {
        Failure::failed(format!(
            "cannot lock the output base {}: {e}",
            ws.output_base.display()
        ))
    })?;
    let doomed = if expunge {
        vec![ws.output_base.clone()]
    } else {
        vec![
            ws.output_base.join("execroot"),
            ws.output_base.join("cache"),
        ]
    };
    for dir in doomed {
        crate::core::fs::remove_tree(&dir)
            .map_err(|e| Failure::failed(format!("cannot remove {}: {e}", dir.display())))?;
    }
    drop(lock);
    outputs::remove_convenience_symlinks(&ws.root);
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::{OutputBaseOptions, Workspace};

    #[test]
    fn clean_removes_outputs_and_cache_but_keeps_the_rest_of_the_output_base() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("ws");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("WORKSPACE"), "workspace(name = \"w\")\n").unwrap();
        let options = OutputBaseOptions {
            output_base: Some(dir.path().join("out")),
            output_user_root: None,
        };
        let ws = Workspace::locate(&root, &options).expect("workspace");
        assert!(!clean(&ws, false, &mut |_| {}).expect("nothing to clean"));
        for sub in ["execroot/__main__", "cache/ac", "external/r"] {
            std::fs::create_dir_all(ws.output_base.join(sub)).unwrap();
        }
        assert!(clean(&ws, false, &mut |_| {}).expect("cleaned"));
        assert!(!ws.output_base.join("execroot").exists());
        assert!(!ws.output_base.join("cache").exists());
        assert!(ws.output_base.join("external/r").exists());
        assert!(clean(&ws, true, &mut |_| {}).expect("expunged"));
        assert!(!ws.output_base.exists());
    }
}

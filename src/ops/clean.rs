//! `clean`: a workspace's site in, its outputs and local cache (with `expunge`: its whole
//! output base) removed, and the `forge-*` links with them. A `--disk_cache` is never
//! touched. The WORKSPACE file is not evaluated: cleaning fetches nothing and works when
//! WORKSPACE is broken. `clean_async` moves the same aside and deletes it in the background.

use std::path::PathBuf;

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

/// `clean --async`: what `clean` removes is moved aside at once, under a new directory
/// beside the output base (a rename, so the next command finds a clean output base), and a
/// background process deletes it. The directory moved aside, or `None` when there was no
/// output base. Where a rename is impossible (another file system), it is removed here.
pub fn clean_async(
    ws: &WorkspaceSite,
    expunge: bool,
    waiting: &mut dyn FnMut(&str),
) -> Result<Option<PathBuf>, Failure> {
    if !ws.output_base.exists() {
        outputs::remove_convenience_symlinks(&ws.root);
        return Ok(None);
    }
    let lock = exec::lock_output_base_with(&ws.output_base, waiting).map_err(|e| {
        Failure::failed(format!(
            "cannot lock the output base {}: {e}",
            ws.output_base.display()
        ))
    })?;
    let parent = ws.output_base.parent().unwrap_or(&ws.output_base);
    let name = ws
        .output_base
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let trash = parent.join(format!(".{name}.deleting-{}-{nanos}", std::process::id()));
    std::fs::create_dir(&trash)
        .map_err(|e| Failure::failed(format!("cannot create {}: {e}", trash.display())))?;
    let doomed = match expunge {
        true => vec![ws.output_base.clone()],
        false => vec![
            ws.output_base.join("execroot"),
            ws.output_base.join("cache"),
        ],
    };
    for (i, dir) in doomed.iter().enumerate() {
        if !dir.exists() {
            continue;
        }
        if std::fs::rename(dir, trash.join(i.to_string())).is_err() {
            crate::core::fs::remove_tree(dir)
                .map_err(|e| Failure::failed(format!("cannot remove {}: {e}", dir.display())))?;
        }
    }
    // The expunged output base held the lock file: the lock is released with it.
    drop(lock);
    outputs::remove_convenience_symlinks(&ws.root);
    // Outputs are read-only: their directories are made writable, then removed, in a
    // process of its own group that outlives forge (a Ctrl-C at the terminal spares it).
    use std::os::unix::process::CommandExt;
    let started = std::process::Command::new("/bin/sh")
        .args(["-c", "chmod -R u+w \"$1\" 2>/dev/null; exec rm -rf \"$1\""])
        .arg("sh")
        .arg(&trash)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn();
    if started.is_err() {
        crate::core::fs::remove_tree(&trash)
            .map_err(|e| Failure::failed(format!("cannot remove {}: {e}", trash.display())))?;
    }
    Ok(Some(trash))
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

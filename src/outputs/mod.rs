//! The output tree as users see it: the exec root's links to the sources, runfiles trees
//! with their manifests next to each executable, and the `forge-*` (or `bazel-*`, or
//! `--symlink_prefix`) links in the workspace.
//! Paths in, files and symlinks on disk out; every replacement is atomic (temp + rename).

use std::io;
use std::path::{Path, PathBuf};

use crate::core::fs::{make_writable, replace_symlink, write_atomic};
use crate::core::{RunfilesTree, layout};
use crate::workspace::Workspace;

/// Makes `<output_base>/execroot/<name>` hold a link to every top-level entry of the
/// workspace (so sources are at their exec paths) and the real `forge-out` directory.
pub fn prepare_exec_root(ws: &Workspace) -> io::Result<PathBuf> {
    let exec_root = ws.execution_root();
    std::fs::create_dir_all(exec_root.join(layout::OUT_DIR))?;
    // External repositories are at `external/<name>` in the exec root, as in Bazel; every
    // workspace may use them, since forge provides @bazel_tools and @platforms itself.
    let external = ws.output_base.join("external");
    std::fs::create_dir_all(&external)?;
    replace_symlink(&external, &exec_root.join("external"))?;
    for entry in std::fs::read_dir(&ws.root)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name_str) = name.to_str() else {
            continue;
        };
        let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
        if name_str.starts_with(layout::DEFAULT_LINK_PREFIX)
            || (is_link && layout::is_convenience_link_name(name_str))
            || layout::link_dir() == Some(name_str)
            || name_str == layout::OUT_DIR
            || name_str == "external"
        {
            continue;
        }
        // Left alone when it already points there (`replace_symlink` looks first).
        replace_symlink(&ws.root.join(&name), &exec_root.join(&name))?;
    }
    Ok(exec_root)
}

/// The manifest of a runfiles tree: `<runfiles path> <absolute target>` per line, sorted.
/// Sources point into the workspace, generated files into the exec root, as in Bazel.
pub fn manifest(tree: &RunfilesTree, ws: &Workspace, exec_root: &Path) -> String {
    let mut lines: Vec<String> = tree
        .entries
        .iter()
        .map(|(rf, exec)| format!("{rf} {}", absolute_target(exec, ws, exec_root).display()))
        .collect();
    lines.sort();
    let mut text = lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    text
}

fn absolute_target(exec_path: &str, ws: &Workspace, exec_root: &Path) -> PathBuf {
    if exec_path.starts_with(&format!("{}/", layout::OUT_DIR)) {
        exec_root.join(exec_path)
    } else if let Some(external) = exec_path.strip_prefix("external/") {
        ws.output_base.join("external").join(external)
    } else {
        ws.root.join(exec_path)
    }
}

/// The symlink target, from `<exe>.runfiles/<runfiles path>`, of the file at exec path
/// `exec_path`: up to the exec root, then down.
fn relative_target(executable: &str, runfiles_path: &str, exec_path: &str) -> PathBuf {
    let link = format!("{executable}.runfiles/{runfiles_path}");
    let depth = link.split('/').count() - 1;
    let mut target = PathBuf::new();
    for _ in 0..depth {
        target.push("..");
    }
    target.join(exec_path)
}

/// Lays out `<exe>.runfiles/` with a symlink per entry, `<exe>.runfiles/MANIFEST` and
/// `<exe>.runfiles_manifest`. Unchanged trees (same manifest) are left alone, so a no-op
/// build touches nothing.
pub fn write_runfiles_tree(
    tree: &RunfilesTree,
    ws: &Workspace,
    exec_root: &Path,
) -> io::Result<()> {
    let exe = exec_root.join(&tree.executable);
    let dir = PathBuf::from(format!("{}.runfiles", exe.display()));
    let outer_manifest = PathBuf::from(format!("{}.runfiles_manifest", exe.display()));
    let text = manifest(tree, ws, exec_root);
    if std::fs::read(&outer_manifest).is_ok_and(|m| m == text.as_bytes())
        && std::fs::read(dir.join("MANIFEST")).is_ok_and(|m| m == text.as_bytes())
    {
        return Ok(());
    }
    if dir.exists() || dir.is_symlink() {
        make_writable(&dir);
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    for (rf, exec) in &tree.entries {
        let link = dir.join(rf);
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // Relative to the exec root, so the tree also works where only the exec root is
        // visible: in a sandbox that mounts the tree and the files at their exec paths.
        std::os::unix::fs::symlink(relative_target(&tree.executable, rf, exec), &link)?;
    }
    // The manifests are written last: their presence says the tree is complete.
    write_atomic(&dir.join("MANIFEST"), text.as_bytes())?;
    Ok(write_atomic(&outer_manifest, text.as_bytes())?)
}

/// `forge-bin`, `forge-out`, `forge-testlogs` and `forge-<workspace dir>` in the workspace
/// (with this command's prefix, `layout::link_prefix`; none for `--symlink_prefix=/`);
/// `bin_dir` and `testlogs_dir` are the top-level configuration's (exec paths).
pub fn link_convenience_symlinks(
    ws: &Workspace,
    bin_dir: &str,
    testlogs_dir: &str,
) -> io::Result<()> {
    let Some(prefix) = layout::link_prefix() else {
        return Ok(());
    };
    let exec_root = ws.execution_root();
    let targets = [
        exec_root.join(bin_dir),
        exec_root.join(layout::OUT_DIR),
        exec_root.join(testlogs_dir),
        exec_root.clone(),
    ];
    for (name, target) in link_names(&ws.root, prefix).into_iter().zip(targets) {
        std::fs::create_dir_all(&target)?;
        let link = ws.root.join(name);
        // A no-op build finds every link right and reads each once, as before.
        if std::fs::read_link(&link).is_ok_and(|t| t == target) {
            continue;
        }
        if target == exec_root {
            // Bazel follows directory symlinks in `//...` unless they lead into its own
            // output base; this file keeps it from following the exec root's links back
            // into the workspace through `forge-<dir>`, which would show every package
            // twice. Written with the link, so a build that finds the link right pays nothing.
            let sentinel = exec_root.join(layout::DONT_FOLLOW_SYMLINKS);
            if !sentinel.exists() {
                std::fs::write(&sentinel, "")?;
            }
        }
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent)?;
        }
        replace_symlink(&target, &link)?;
    }
    Ok(())
}

/// The four links of a workspace at `root` under `prefix`: bin, out, testlogs and the
/// exec root (named after the workspace directory, as Bazel names it).
fn link_names(root: &Path, prefix: &str) -> [String; 4] {
    let dir_name = root
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("workspace");
    [
        format!("{prefix}bin"),
        format!("{prefix}out"),
        format!("{prefix}testlogs"),
        format!("{prefix}{dir_name}"),
    ]
}

/// Removes the links `link_convenience_symlinks` made: every `forge-*` link, and this
/// command's four links when it has another prefix.
pub fn remove_convenience_symlinks(root: &Path) {
    if let Ok(entries) = std::fs::read_dir(root) {
        for entry in entries.flatten() {
            let is_ours = entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(layout::DEFAULT_LINK_PREFIX))
                && entry.file_type().is_ok_and(|t| t.is_symlink());
            if is_ours {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    if let Some(prefix) = layout::link_prefix() {
        for name in link_names(root, prefix) {
            let link = root.join(name);
            if link.is_symlink() {
                let _ = std::fs::remove_file(link);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runfiles_links_go_up_to_the_exec_root() {
        assert_eq!(
            relative_target("forge-out/bin/app/hello", "ws/lib/greet.py", "lib/greet.py"),
            PathBuf::from("../../../../../../lib/greet.py")
        );
    }
}

//! Where the sandbox binds inputs from: an input's exec path in, a layer (a host directory
//! that the command's mount namespace mounts as a read-only overlay) and the path within it
//! out — so that `/proc/self/mountinfo` shows `/pkg/a.txt` on `overlay`, not a host path.
//!
//! A bind mount shows, in mountinfo's root field, its source's path within its file system,
//! and nothing about how the bind is made changes that: binding the workspace's files would
//! tell a command where the workspace (and so often the home directory) is. A bind taken
//! from an overlay shows the path within the overlay instead, and the overlay's options name
//! its lower directories exactly as they were given: here `/proc/self/fd/N`, descriptors the
//! sandbox's child opens in its own mount namespace (an overlay's layers must be mounts of
//! the namespace that mounts it). The overlay is unmounted again once the binds are made, so
//! the command sees only its inputs.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The host directories inputs come from, numbered in the order they were first needed.
pub struct Layers {
    /// An empty directory: an overlay without an upper directory needs two lower ones.
    pub empty: PathBuf,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    dirs: Vec<PathBuf>,
    index: HashMap<PathBuf, usize>,
    /// An exec path's first component (or `external/<repo>`) → its layer and path within.
    prefixes: HashMap<String, (usize, PathBuf)>,
}

impl Layers {
    /// `empty` is made empty here; it must lie outside every directory inputs come from.
    pub fn new(empty: &Path) -> io::Result<Layers> {
        match fs::remove_dir_all(empty) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        fs::create_dir_all(empty)?;
        Ok(Layers {
            empty: empty.to_path_buf(),
            state: Mutex::new(State::default()),
        })
    }

    /// The layer holding `exec_root/exec_path` and the path within it. The exec root holds
    /// a link per top-level entry of the workspace (and `external` to the repositories, where
    /// local ones are links again), and `forge-out` itself: following those first links
    /// here, and the layers stopping nowhere else, keeps the overlays few.
    pub fn locate(&self, exec_root: &Path, exec_path: &str) -> io::Result<(usize, PathBuf)> {
        let mut parts = exec_path.splitn(3, '/');
        let first = parts.next().unwrap_or_default();
        let (prefix, rest) = if first == "external" {
            let repo = parts.next().unwrap_or_default();
            (format!("external/{repo}"), parts.next())
        } else {
            let rest = exec_path.split_once('/').map(|(_, r)| r);
            (first.to_owned(), rest)
        };
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (layer, within) = match state.prefixes.get(&prefix) {
            Some(found) => found.clone(),
            None => {
                let (dir, within) = anchor(exec_root, &prefix)?;
                let layer = match state.index.get(&dir) {
                    Some(i) => *i,
                    None => {
                        if !dir.is_dir() {
                            return Err(io::Error::other(format!(
                                "cannot bind inputs from '{}': not a directory",
                                dir.display()
                            )));
                        }
                        state.dirs.push(dir.clone());
                        let i = state.dirs.len() - 1;
                        state.index.insert(dir, i);
                        i
                    }
                };
                state.prefixes.insert(prefix, (layer, within.clone()));
                (layer, within)
            }
        };
        Ok((layer, rest.map_or(within.clone(), |r| within.join(r))))
    }

    /// The host directory of `layer`.
    pub fn dir(&self, layer: usize) -> io::Result<PathBuf> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state
            .dirs
            .get(layer)
            .cloned()
            .ok_or_else(|| io::Error::other(format!("no sandbox layer {layer}")))
    }
}

/// The directory a prefix of exec paths lives in, and the prefix's path within it: for a
/// link, the directory holding its target; else the exec root itself.
fn anchor(exec_root: &Path, prefix: &str) -> io::Result<(PathBuf, PathBuf)> {
    let resolve = |link: &Path| -> Option<PathBuf> {
        let target = fs::read_link(link).ok()?;
        Some(match link.parent() {
            Some(parent) if target.is_relative() => parent.join(target),
            _ => target,
        })
    };
    if let Some(repo) = prefix.strip_prefix("external/") {
        let external =
            resolve(&exec_root.join("external")).unwrap_or_else(|| exec_root.join("external"));
        let repo_dir = external.join(repo);
        if let Some(target) = resolve(&repo_dir) {
            return split(&target);
        }
        return Ok((external, PathBuf::from(repo)));
    }
    match resolve(&exec_root.join(prefix)) {
        Some(target) => split(&target),
        None => Ok((exec_root.to_path_buf(), PathBuf::from(prefix))),
    }
}

fn split(target: &Path) -> io::Result<(PathBuf, PathBuf)> {
    match (target.parent(), target.file_name()) {
        (Some(dir), Some(name)) if !dir.as_os_str().is_empty() => {
            Ok((dir.to_path_buf(), PathBuf::from(name)))
        }
        _ => Err(io::Error::other(format!(
            "cannot bind inputs from '{}'",
            target.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_found_past_the_exec_roots_first_links() -> io::Result<()> {
        let tmp = tempfile::tempdir()?;
        let ws = tmp.path().join("ws");
        let base = tmp.path().join("base");
        let exec_root = base.join("execroot/w");
        let local = tmp.path().join("elsewhere/local_repo");
        fs::create_dir_all(ws.join("pkg"))?;
        fs::create_dir_all(exec_root.join("forge-out"))?;
        fs::create_dir_all(base.join("external/http_repo"))?;
        fs::create_dir_all(&local)?;
        std::os::unix::fs::symlink(ws.join("pkg"), exec_root.join("pkg"))?;
        std::os::unix::fs::symlink(base.join("external"), exec_root.join("external"))?;
        std::os::unix::fs::symlink(&local, base.join("external/local"))?;
        let layers = Layers::new(&tmp.path().join("empty"))?;
        let (a, p) = layers.locate(&exec_root, "pkg/sub/a.txt")?;
        assert_eq!(p, Path::new("pkg/sub/a.txt"));
        let output = "forge-out/k8-fastbuild/bin/x".to_owned();
        let (b, p) = layers.locate(&exec_root, &output)?;
        assert_eq!(p, Path::new(&output));
        let (c, p) = layers.locate(&exec_root, "external/http_repo/f")?;
        assert_eq!(p, Path::new("http_repo/f"));
        let (d, p) = layers.locate(&exec_root, "external/local/g")?;
        assert_eq!(p, Path::new("local_repo/g"));
        let distinct: std::collections::BTreeSet<_> = [a, b, c, d].into();
        assert_eq!(distinct.len(), 4);
        assert_eq!(layers.locate(&exec_root, "pkg/b")?.0, a);
        assert_eq!(layers.dir(a)?, ws);
        assert_eq!(layers.dir(d)?, tmp.path().join("elsewhere"));
        Ok(())
    }
}

//! The package walk of a recursive pattern (`//foo/...`): a repository's root and the
//! directory to start from in, every package at or below it out, in walk order (a directory
//! before its subdirectories, each directory's children by name), each with the name of its
//! BUILD file. Each directory's listing is read once and says which entries are directories
//! and which BUILD file is there; only symlinks (and entries whose kind the listing leaves
//! unknown) cost a `stat`.

use std::cell::OnceCell;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::BUILD_FILE_NAMES;
use crate::core::PackageId;
use crate::core::layout::DONT_FOLLOW_SYMLINKS;
use crate::workspace::fs_deps;

/// Every package at or below `start`, with the name of its BUILD file (the preferred one
/// of `BUILD_FILE_NAMES` that is a file), (a directory under `root`, the root of repository
/// `repo`). Symlinked directories are followed (their packages named by the link's path),
/// except links that `followed_link` refuses and links to a directory on the way down to
/// them or above `start` (a cycle). Dot-directories and the directories in `ignored`
/// (absolute paths) are skipped. A `start` that is not a directory has no packages.
pub(super) fn packages_below(
    root: &Path,
    repo: &str,
    start: &Path,
    ignored: &[PathBuf],
    output_base: Option<&Path>,
) -> Vec<(PackageId, &'static str)> {
    let walk = Walk {
        root,
        repo,
        start,
        ignored,
        output_base,
        above_start: OnceCell::new(),
    };
    let mut found = Vec::new();
    match fs::metadata(start) {
        Ok(meta) if meta.is_dir() => walk.visit(start, None, &mut found),
        // Noted as the walk looked at it, so that a directory appearing there is seen.
        Ok(_) => fs_deps::listed(start),
        Err(_) => {}
    }
    found
}

/// Which directory a path leads to, for telling a link back up the tree.
#[derive(Clone, Copy, PartialEq, Eq)]
struct DirId {
    dev: u64,
    ino: u64,
}

impl DirId {
    fn of(path: &Path) -> Option<DirId> {
        fs::metadata(path).ok().map(|m| DirId {
            dev: m.dev(),
            ino: m.ino(),
        })
    }
}

/// A directory on the way down to the one being listed. Which directory it is on disk is
/// asked only when a symlink needs comparing with it: most trees have no symlinks.
struct OnTheWay<'p> {
    dir: &'p Path,
    id: OnceCell<Option<DirId>>,
    parent: Option<&'p OnTheWay<'p>>,
}

struct Walk<'a> {
    root: &'a Path,
    repo: &'a str,
    start: &'a Path,
    ignored: &'a [PathBuf],
    output_base: Option<&'a Path>,
    /// The directories above `start` (once a symlink needs them): a link to one of them
    /// would lead back to `start`.
    above_start: OnceCell<Vec<DirId>>,
}

impl Walk<'_> {
    fn visit(
        &self,
        dir: &Path,
        parent: Option<&OnTheWay<'_>>,
        found: &mut Vec<(PackageId, &'static str)>,
    ) {
        fs_deps::listed(dir);
        let here = OnTheWay {
            dir,
            id: OnceCell::new(),
            parent,
        };
        let Ok(entries) = fs::read_dir(dir) else {
            // A directory that cannot be listed may still let its BUILD file be seen.
            if let Some(name) = BUILD_FILE_NAMES.iter().find(|b| dir.join(b).is_file()) {
                found.push((self.package_id(dir), name));
            }
            return;
        };
        // The preferred BUILD file name seen to be a file, as an index of BUILD_FILE_NAMES.
        let mut build_file: Option<usize> = None;
        // Directories and symlinks (which may lead to one), with whether it is a symlink.
        let mut subdirs: Vec<(OsString, bool)> = Vec::new();
        for entry in entries.flatten() {
            let kind = entry.file_type().ok();
            let name = entry.file_name();
            if let Some(preference) = BUILD_FILE_NAMES
                .iter()
                .position(|b| name.to_str() == Some(b))
                && build_file.is_none_or(|found| preference < found)
                && match kind {
                    Some(kind) if kind.is_file() => true,
                    Some(kind) if kind.is_dir() => false,
                    // A link (or an entry of unknown kind) counts if it leads to a file.
                    _ => dir.join(&name).is_file(),
                }
            {
                build_file = Some(preference);
            }
            if let Some(kind) = kind
                && (kind.is_dir() || kind.is_symlink())
                && !name.as_encoded_bytes().starts_with(b".")
            {
                subdirs.push((name, kind.is_symlink()));
            }
        }
        if let Some(preference) = build_file {
            found.push((self.package_id(dir), BUILD_FILE_NAMES[preference]));
        }
        subdirs.sort_unstable();
        for (name, is_symlink) in subdirs {
            let path = dir.join(&name);
            if self.ignored.contains(&path) || is_symlink && !self.follows(&path, &here) {
                continue;
            }
            self.visit(&path, Some(&here), found);
        }
    }

    /// Whether the walk goes on through the symlink `link` in directory `here`: it leads to
    /// a directory, not to one on the way down to it (a cycle), and `followed_link` agrees.
    fn follows(&self, link: &Path, here: &OnTheWay<'_>) -> bool {
        let Some(target) = fs::metadata(link)
            .ok()
            .filter(|m| m.is_dir())
            .map(|m| DirId {
                dev: m.dev(),
                ino: m.ino(),
            })
        else {
            return false;
        };
        let mut on_the_way = Some(here);
        while let Some(dir) = on_the_way {
            if *dir.id.get_or_init(|| DirId::of(dir.dir)) == Some(target) {
                return false;
            }
            on_the_way = dir.parent;
        }
        let above_start = self.above_start.get_or_init(|| {
            fs::canonicalize(self.start)
                .map(|start| start.ancestors().skip(1).filter_map(DirId::of).collect())
                .unwrap_or_default()
        });
        !above_start.contains(&target) && followed_link(link, self.output_base)
    }

    fn package_id(&self, dir: &Path) -> PackageId {
        let rel = dir.strip_prefix(self.root).unwrap_or(dir);
        let package = rel
            .to_string_lossy()
            .replace(std::path::MAIN_SEPARATOR, "/");
        PackageId::new(self.repo, &package)
    }
}

/// Whether a recursive pattern follows the directory symlink at `link`: not when its
/// directory holds `DONT_FOLLOW_SYMLINKS`, nor when it leads into forge's output base or
/// into any exec root (`.../execroot/...`, where Bazel's `bazel-*` links and forge's
/// `forge-*` links lead), which would show every package a second time.
fn followed_link(link: &Path, output_base: Option<&Path>) -> bool {
    if link
        .parent()
        .is_some_and(|dir| dir.join(DONT_FOLLOW_SYMLINKS).exists())
    {
        return false;
    }
    let Ok(real) = std::fs::canonicalize(link) else {
        return false;
    };
    let into_output = output_base.is_some_and(|base| real.starts_with(base))
        || real.components().any(|c| c.as_os_str() == "execroot");
    !into_output
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    /// The walk as forge made it before it read kinds from the listing: walkdir following
    /// every link, a `stat` per BUILD file name per directory. The new walk must find the
    /// same packages in the same order.
    fn walkdir_reference(
        root: &Path,
        start: &Path,
        ignored: &[PathBuf],
        output_base: Option<&Path>,
    ) -> Vec<(String, &'static str)> {
        walkdir::WalkDir::new(start)
            .follow_links(true)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| {
                e.depth() == 0
                    || e.file_type().is_dir()
                        && !e.file_name().to_string_lossy().starts_with('.')
                        && !ignored.iter().any(|i| e.path() == i)
                        && (!e.path_is_symlink() || followed_link(e.path(), output_base))
            })
            .flatten()
            .filter_map(|e| {
                let name = BUILD_FILE_NAMES
                    .iter()
                    .find(|b| e.path().join(b).is_file())?;
                let rel = e.path().strip_prefix(root).unwrap_or(e.path());
                Some((rel.to_string_lossy().into_owned(), *name))
            })
            .collect()
    }

    fn write(path: &Path) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, "").unwrap();
    }

    #[test]
    fn finds_what_the_walkdir_walk_found_in_the_same_order() {
        let top = tempfile::tempdir().unwrap();
        let root = top.path().join("ws");
        let output_base = top.path().join("ob");
        for file in [
            "BUILD",
            "a/BUILD",
            "a/b/BUILD.bazel",
            "a-b/BUILD",
            "a-b/BUILD.bazel",
            "a-b/x/BUILD.bazel/BUILD",
            "a-b/x/BUILD",
            "a.b/BUILD",
            ".hidden/BUILD",
            "ignored/BUILD",
            "ignored/kept/BUILD",
            // A directory named BUILD is no BUILD file, but may hold one.
            "dir_named_build/BUILD/BUILD",
            "dont_follow/BUILD",
            "dont_follow/DONT_FOLLOW_SYMLINKS_WHEN_TRAVERSING_THIS_DIRECTORY_VIA_A_RECURSIVE_TARGET_PATTERN",
            "no_build/file.txt",
            "no_build/deeper/BUILD",
        ] {
            write(&root.join(file));
        }
        write(&output_base.join("execroot/ws/pkg/BUILD"));
        write(&top.path().join("outside/BUILD"));
        let link = |target: &str, at: &str| symlink(target, root.join(at)).unwrap();
        fs::create_dir_all(root.join("linked_build")).unwrap();
        link("../a/BUILD", "linked_build/BUILD");
        fs::create_dir_all(root.join("broken_build")).unwrap();
        link("../nowhere/BUILD", "broken_build/BUILD");
        link("a", "linked");
        link("a", "linked_again");
        link("../outside", "outside");
        link("../..", "a/b/up_to_root");
        link("..", "a/up_to_root");
        link("../..", "a/above_root");
        link("nowhere", "broken");
        link("a/BUILD", "file_link");
        link("../a", "dont_follow/not_followed");
        link("../ob/execroot/ws", "forge-ws");
        link("a", ".hidden_link");
        link("a", "ignored_link");

        let ignored = [root.join("ignored"), root.join("ignored_link")];
        let output_base = Some(output_base.as_path());
        let walk = |start: &Path| -> Vec<(String, &'static str)> {
            packages_below(&root, "", start, &ignored, output_base)
                .into_iter()
                .map(|(id, build_file)| (id.package.to_string(), build_file))
                .collect()
        };
        let found = walk(&root);
        assert_eq!(
            found.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
            [
                "",
                "a",
                "a/b",
                "a-b",
                "a-b/x",
                "a-b/x/BUILD.bazel",
                "a.b",
                "dir_named_build/BUILD",
                "dont_follow",
                "linked",
                "linked/b",
                "linked_again",
                "linked_again/b",
                "linked_build",
                "no_build/deeper",
                "outside",
            ]
        );
        // BUILD.bazel is preferred when it is a file.
        assert!(found.contains(&("a-b".to_owned(), "BUILD.bazel")));
        assert!(found.contains(&("a-b/x".to_owned(), "BUILD")));
        for start in [
            root.clone(),
            root.join("a"),
            root.join("linked"),
            root.join("no_build"),
            root.join("nowhere"),
            root.join("a/BUILD"),
            root.join("ignored"),
        ] {
            assert_eq!(
                walk(&start),
                walkdir_reference(&root, &start, &ignored, output_base),
                "from {}",
                start.display()
            );
        }
    }
}

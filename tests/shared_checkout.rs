//! Sharing a checkout with Bazel: `//...` follows symlinked source directories as Bazel's
//! does — but not forge's or Bazel's output links, nor a link back up the tree — and the exec
//! root that `forge-<dir>` leads to tells Bazel not to follow its links back into the
//! workspace, so Bazel does not see every package twice.

mod common;

use std::os::unix::fs::symlink;

use common::Workspace;

const SENTINEL: &str =
    "DONT_FOLLOW_SYMLINKS_WHEN_TRAVERSING_THIS_DIRECTORY_VIA_A_RECURSIVE_TARGET_PATTERN";

fn workspace() -> Workspace {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "workspace(name = \"shared\")\n");
    ws.write(
        "real/BUILD",
        "genrule(name = \"x\", outs = [\"x.txt\"], cmd = \"echo x > $@\")\n",
    );
    ws
}

fn packages(ws: &Workspace) -> Vec<String> {
    let run = ws.forge(&["query", "//...", "--output=package"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.stdout.lines().map(str::to_owned).collect()
}

#[test]
fn recursive_patterns_follow_symlinked_source_directories() {
    let ws = workspace();
    let outside = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        outside.path().join("BUILD"),
        "filegroup(name = \"y\", srcs = [])\n",
    )
    .unwrap();
    symlink(ws.root().join("real"), ws.root().join("linked")).unwrap();
    symlink(outside.path(), ws.root().join("vendored")).unwrap();
    // A link back up the tree would make `//...` endless.
    symlink("..", ws.root().join("real/up")).unwrap();
    // So would one to a directory above the workspace.
    symlink("../..", ws.root().join("real/above")).unwrap();
    // A BUILD file may itself be a link; a directory named BUILD is no BUILD file.
    std::fs::create_dir_all(ws.root().join("by_link")).unwrap();
    symlink("../real/BUILD", ws.root().join("by_link/BUILD")).unwrap();
    std::fs::create_dir_all(ws.root().join("not_a_package/BUILD")).unwrap();
    assert_eq!(packages(&ws), ["by_link", "linked", "real", "vendored"]);
    let run = ws.forge(&["build", "//linked:x", "//vendored:y"]);
    assert_eq!(run.code, 0, "{}", run.stderr);

    // Bazel's opt-out file in a directory keeps its links from being followed.
    ws.write(SENTINEL, "");
    assert_eq!(packages(&ws), ["by_link", "real"]);
}

#[test]
fn output_links_are_not_followed_and_the_exec_root_stops_bazel() {
    let ws = workspace();
    let run = ws.forge(&["build", "//real:x"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(ws.root().join("forge-ws").is_symlink());
    // A Bazel output link: into an exec root of Bazel's output base, which mirrors the
    // workspace's top-level entries as links.
    let bazel_base = tempfile::tempdir().expect("temp dir");
    let bazel_exec_root = bazel_base.path().join("execroot/shared");
    std::fs::create_dir_all(&bazel_exec_root).unwrap();
    symlink(ws.root().join("real"), bazel_exec_root.join("real")).unwrap();
    symlink(&bazel_exec_root, ws.root().join("bazel-ws")).unwrap();
    assert_eq!(packages(&ws), ["real"]);

    // What Bazel meets through forge-ws: the exec root holds Bazel's opt-out file, and the
    // workspace's packages are reachable there only through links, which Bazel then does
    // not follow.
    let exec_root = std::fs::canonicalize(ws.root().join("forge-ws")).unwrap();
    assert!(
        exec_root.join(SENTINEL).is_file(),
        "{}",
        exec_root.display()
    );
    for entry in std::fs::read_dir(&exec_root).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type().unwrap();
        assert!(
            kind.is_symlink() || name == SENTINEL || name == "forge-out",
            "{name} in the exec root is not a link"
        );
    }
    let builds: Vec<_> = walkdir::WalkDir::new(exec_root.join("forge-out"))
        .into_iter()
        .flatten()
        .filter(|e| matches!(e.file_name().to_str(), Some("BUILD" | "BUILD.bazel")))
        .collect();
    assert!(builds.is_empty(), "{builds:?}");
}

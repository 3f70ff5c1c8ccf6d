//! Directories where Bazel 4 allows them and forge did not: a label naming a source
//! directory as an action's input (its whole content in the action key, shown read-only in
//! the sandbox, present in runfiles), and a declared file output the command makes a
//! directory (kept, cached and restored as a tree) — with the hardening both need: no
//! symlink in an input directory leading out of it, no FIFO in a directory output.

mod common;

use std::fs;
use std::path::Path;

use common::{Run, Workspace, counts};

fn ok(run: Run) -> Run {
    assert_eq!(run.code, 0, "forge failed:\n{}", run.both());
    run
}

fn failed(run: Run) -> Run {
    assert_ne!(run.code, 0, "forge should have failed:\n{}", run.both());
    run
}

fn read(ws: &Workspace, path: &str) -> String {
    fs::read_to_string(ws.root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Sets a file's mtime well away from now, as `touch -d` would, without changing it.
fn touch(path: &Path) {
    let file = fs::File::options().write(true).open(path).unwrap();
    file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(3600))
        .unwrap();
}

/// A workspace with `pkg/dir/{a, sub/c}` and a symlink `pkg/dir/link -> a` inside it.
fn with_source_dir() -> Workspace {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "");
    ws.write("pkg/dir/a", "alpha\n");
    ws.write("pkg/dir/sub/c", "gamma\n");
    std::os::unix::fs::symlink("a", ws.root().join("pkg/dir/link")).unwrap();
    ws
}

/// As skylib's `copy_directory`: a rule whose `src` is a single file (here a directory) and
/// whose output is a declared directory, copied with `cp -fR`.
const COPY_DIRECTORY_BZL: &str = r#"
def _impl(ctx):
    dst = ctx.actions.declare_directory(ctx.attr.out)
    ctx.actions.run_shell(
        tools = [ctx.file.src],
        outputs = [dst],
        command = 'if [ ! -d "$1" ]; then echo "$1 is not a directory"; exit 1; fi; rm -rf "$2" && cp -fR "$1/" "$2"',
        arguments = [ctx.file.src.path, dst.path],
        mnemonic = "CopyDirectory",
    )
    return [DefaultInfo(files = depset([dst]), runfiles = ctx.runfiles(files = [dst]))]

copy_directory = rule(
    implementation = _impl,
    attrs = {
        "src": attr.label(mandatory = True, allow_single_file = True),
        "out": attr.string(mandatory = True),
    },
)
"#;

#[test]
fn an_action_reads_a_source_directory_and_reruns_only_when_its_content_changes() {
    let ws = with_source_dir();
    ws.write(
        "pkg/BUILD",
        "genrule(\n    name = 'listing',\n    srcs = ['dir'],\n    outs = ['listing.txt'],\n    \
         cmd = 'cd $(location dir) && for f in $$(find . -type f | sort); do echo $$f; cat $$f; done > $$OLDPWD/$@ && cat link >> $$OLDPWD/$@',\n)\n",
    );
    let first = ok(ws.forge(&["build", "//pkg:listing"]));
    assert_eq!(counts(&first).0, 1);
    let expected = "./a\nalpha\n./sub/c\ngamma\nalpha\n";
    assert_eq!(read(&ws, "forge-bin/pkg/listing.txt"), expected);

    // A touch changes no content: nothing runs.
    touch(&ws.root().join("pkg/dir/sub/c"));
    let touched = ok(ws.forge(&["build", "//pkg:listing"]));
    assert_eq!(counts(&touched), (0, 0, 1), "{}", touched.stderr);

    // A change inside the directory, however deep, reruns the action.
    ws.write("pkg/dir/sub/c", "changed\n");
    let changed = ok(ws.forge(&["build", "//pkg:listing"]));
    assert_eq!(counts(&changed).0, 1, "{}", changed.stderr);
    assert_eq!(
        read(&ws, "forge-bin/pkg/listing.txt"),
        "./a\nalpha\n./sub/c\nchanged\nalpha\n"
    );

    // So does a new file, and a symlink pointed elsewhere.
    ws.write("pkg/dir/sub/d", "delta\n");
    assert_eq!(counts(&ok(ws.forge(&["build", "//pkg:listing"]))).0, 1);
    fs::remove_file(ws.root().join("pkg/dir/link")).unwrap();
    std::os::unix::fs::symlink("sub/d", ws.root().join("pkg/dir/link")).unwrap();
    assert_eq!(counts(&ok(ws.forge(&["build", "//pkg:listing"]))).0, 1);
    assert!(read(&ws, "forge-bin/pkg/listing.txt").ends_with("delta\ndelta\n"));
}

#[test]
fn a_sandboxed_action_sees_the_source_directory_read_only() {
    let ws = with_source_dir();
    ws.write(
        "pkg/BUILD",
        "genrule(\n    name = 'look',\n    srcs = ['dir'],\n    outs = ['look.txt'],\n    \
         cmd = 'cat $(location dir)/sub/c > $@; if touch $(location dir)/new 2>/dev/null; then echo writable >> $@; else echo read-only >> $@; fi',\n)\n",
    );
    ok(ws.forge(&["build", "//pkg:look"]));
    assert_eq!(read(&ws, "forge-bin/pkg/look.txt"), "gamma\nread-only\n");
    assert!(!ws.root().join("pkg/dir/new").exists());
}

#[test]
fn a_source_directory_is_whole_in_the_sandbox_when_a_file_in_it_is_an_input_too() {
    let ws = with_source_dir();
    ws.write(
        "pkg/BUILD",
        "genrule(\n    name = 'both',\n    srcs = ['dir/a', 'dir'],\n    outs = ['both.txt'],\n    \
         cmd = 'cat $(location dir/a) $(location dir)/sub/c > $@',\n)\n",
    );
    ok(ws.forge(&["build", "//pkg:both"]));
    assert_eq!(read(&ws, "forge-bin/pkg/both.txt"), "alpha\ngamma\n");
}

#[test]
fn a_top_level_source_directory_is_an_input_too() {
    // The exec root reaches a top-level entry of the workspace through a link of its own.
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "");
    ws.write("top/sub/c", "gamma\n");
    ws.write(
        "BUILD",
        "genrule(name = 'top_listing', srcs = ['top'], outs = ['top.txt'], \
         cmd = 'cat $(location top)/sub/c > $@')\n",
    );
    ok(ws.forge(&["build", "//:top_listing"]));
    assert_eq!(read(&ws, "forge-bin/top.txt"), "gamma\n");
    ws.write("top/sub/c", "changed\n");
    let changed = ok(ws.forge(&["build", "//:top_listing"]));
    assert_eq!(counts(&changed).0, 1, "{}", changed.stderr);
    assert_eq!(read(&ws, "forge-bin/top.txt"), "changed\n");
}

#[test]
fn a_source_directory_is_copied_as_skylibs_copy_directory_does() {
    let ws = with_source_dir();
    ws.write("pkg/copy.bzl", COPY_DIRECTORY_BZL);
    ws.write(
        "pkg/BUILD",
        "load(':copy.bzl', 'copy_directory')\n\
         copy_directory(name = 'copy', src = 'dir', out = 'dir_copy')\n",
    );
    ok(ws.forge(&["build", "//pkg:copy"]));
    assert_eq!(read(&ws, "forge-bin/pkg/dir_copy/a"), "alpha\n");
    assert_eq!(read(&ws, "forge-bin/pkg/dir_copy/sub/c"), "gamma\n");
    // The link inside was resolved inside the copy and is kept as a copy.
    assert_eq!(read(&ws, "forge-bin/pkg/dir_copy/link"), "alpha\n");
}

#[test]
fn a_source_directory_in_runfiles_appears_with_its_contents() {
    let ws = with_source_dir();
    ws.write(
        "pkg/show.sh",
        "#!/bin/sh\nset -e\ncat pkg/dir/a pkg/dir/sub/c\n",
    );
    fs::set_permissions(
        ws.root().join("pkg/show.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    ws.write(
        "pkg/BUILD",
        "sh_test(name = 'show_test', srcs = ['show.sh'], data = ['dir'])\n",
    );
    ok(ws.forge(&["test", "//pkg:show_test", "--test_output=all"]));
    let log = read(&ws, "forge-testlogs/pkg/show_test/test.log");
    assert!(log.contains("alpha\ngamma\n"), "{log}");
    // A change inside the directory is a change of the test's inputs: it runs again.
    ws.write("pkg/dir/sub/c", "changed\n");
    let again = ok(ws.forge(&["test", "//pkg:show_test"]));
    assert!(!again.stdout.contains("(cached)"), "{}", again.stdout);
    let log = read(&ws, "forge-testlogs/pkg/show_test/test.log");
    assert!(log.contains("alpha\nchanged\n"), "{log}");
}

#[test]
fn a_symlink_in_a_source_directory_leading_out_of_it_is_refused() {
    let ws = with_source_dir();
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret"), "secret\n").unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret"),
        ws.root().join("pkg/dir/sub/escape"),
    )
    .unwrap();
    ws.write(
        "pkg/BUILD",
        "genrule(\n    name = 'leak',\n    srcs = ['dir'],\n    outs = ['leak.txt'],\n    \
         tags = ['no-sandbox'],\n    cmd = 'cat $(location dir)/sub/escape > $@',\n)\n",
    );
    let run = failed(ws.forge(&["build", "//pkg:leak"]));
    assert!(
        run.stderr
            .contains("'sub/escape' in input directory 'pkg/dir' is a symlink to"),
        "{}",
        run.stderr
    );
    assert!(!ws.root().join("forge-bin/pkg/leak.txt").exists());

    // A relative one climbing out of the directory is refused the same way.
    fs::remove_file(ws.root().join("pkg/dir/sub/escape")).unwrap();
    ws.write("pkg/other", "other\n");
    std::os::unix::fs::symlink("../../other", ws.root().join("pkg/dir/sub/escape")).unwrap();
    let run = failed(ws.forge(&["build", "//pkg:leak"]));
    assert!(
        run.stderr
            .contains("'sub/escape' in input directory 'pkg/dir' is a symlink to '../../other'"),
        "{}",
        run.stderr
    );
}

/// A genrule whose one declared output the command makes a directory, and a second action
/// reading a file in it.
fn with_directory_genrule() -> Workspace {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "");
    ws.write("pkg/copy.bzl", COPY_DIRECTORY_BZL);
    ws.write(
        "pkg/BUILD",
        "load(':copy.bzl', 'copy_directory')\n\
         genrule(name = 'made', outs = ['made_dir'], cmd = 'mkdir -p $@/sub && echo inside > $@/sub/f')\n\
         genrule(name = 'empty_directory', outs = ['empty_dir'], cmd = 'mkdir $@')\n\
         genrule(name = 'reader', srcs = [':made'], outs = ['read.txt'], cmd = 'cat $(location :made)/sub/f > $@')\n\
         copy_directory(name = 'copy_of_empty', src = 'empty_dir', out = 'empty_copy')\n",
    );
    ws
}

#[test]
fn a_declared_output_made_a_directory_is_kept_used_and_restored() {
    let ws = with_directory_genrule();
    let first = ok(ws.forge(&["build", "//pkg:reader", "//pkg:copy_of_empty"]));
    assert_eq!(counts(&first).0, 4, "{}", first.stderr);
    assert_eq!(read(&ws, "forge-bin/pkg/made_dir/sub/f"), "inside\n");
    assert_eq!(read(&ws, "forge-bin/pkg/read.txt"), "inside\n");
    assert!(ws.root().join("forge-bin/pkg/empty_dir").is_dir());
    assert!(ws.root().join("forge-bin/pkg/empty_copy").is_dir());

    // Nothing changed: nothing runs, and the directory output is up to date.
    let again = ok(ws.forge(&["build", "//pkg:reader", "//pkg:copy_of_empty"]));
    assert_eq!(counts(&again), (0, 0, 4), "{}", again.stderr);

    // Deleted under forge-bin: restored from the cache.
    fs::remove_dir_all(ws.root().join("forge-bin/pkg/made_dir")).unwrap();
    fs::remove_dir_all(ws.root().join("forge-bin/pkg/empty_dir")).unwrap();
    let restored = ok(ws.forge(&["build", "//pkg:reader", "//pkg:copy_of_empty"]));
    assert_eq!(counts(&restored).0, 0, "{}", restored.stderr);
    assert_eq!(read(&ws, "forge-bin/pkg/made_dir/sub/f"), "inside\n");
    assert!(ws.root().join("forge-bin/pkg/empty_dir").is_dir());

    // `forge clean` takes the local cache too; a `--disk_cache` keeps directory outputs.
    let disk = tempfile::tempdir().unwrap();
    let disk_cache = format!("--disk_cache={}", disk.path().display());
    let targets = ["//pkg:reader", "//pkg:copy_of_empty"];
    ok(ws.forge(&["clean"]));
    let filled = ok(ws.forge(&[&["build", &disk_cache][..], &targets].concat()));
    assert_eq!(counts(&filled).0, 4, "{}", filled.stderr);
    ok(ws.forge(&["clean"]));
    let cleaned = ok(ws.forge(&[&["build", &disk_cache][..], &targets].concat()));
    assert_eq!(counts(&cleaned), (0, 4, 0), "{}", cleaned.stderr);
    assert_eq!(read(&ws, "forge-bin/pkg/made_dir/sub/f"), "inside\n");
    assert_eq!(read(&ws, "forge-bin/pkg/read.txt"), "inside\n");
    assert!(ws.root().join("forge-bin/pkg/empty_copy").is_dir());
}

#[test]
fn a_directory_output_in_runfiles_appears_with_its_contents() {
    let ws = with_directory_genrule();
    ws.write("pkg/show.sh", "#!/bin/sh\nset -e\ncat pkg/made_dir/sub/f\n");
    fs::set_permissions(
        ws.root().join("pkg/show.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let build = read(&ws, "pkg/BUILD");
    ws.write(
        "pkg/BUILD",
        &format!("{build}sh_test(name = 'show_test', srcs = ['show.sh'], data = [':made'])\n"),
    );
    ok(ws.forge(&["test", "//pkg:show_test"]));
    let log = read(&ws, "forge-testlogs/pkg/show_test/test.log");
    assert!(log.contains("inside\n"), "{log}");
}

#[test]
fn a_fifo_in_an_output_made_a_directory_is_refused() {
    for tags in ["[]", "['no-sandbox']"] {
        let ws = Workspace::empty();
        ws.write("WORKSPACE", "");
        ws.write(
            "pkg/BUILD",
            &format!(
                "genrule(name = 'fifo', outs = ['d'], tags = {tags}, cmd = 'mkdir $@ && mkfifo $@/pipe')\n"
            ),
        );
        let run = failed(ws.forge(&["build", "//pkg:fifo"]));
        assert!(
            run.stderr.contains("'pipe' in declared output '")
                && run
                    .stderr
                    .contains("bin/pkg/d' (a directory the command made)")
                && run.stderr.contains("is a FIFO"),
            "{tags}: {}",
            run.stderr
        );
        assert!(!ws.root().join("forge-bin/pkg/d/pipe").exists(), "{tags}");
    }
}

#[test]
fn a_symlink_out_of_the_exec_root_in_an_output_made_a_directory_is_refused() {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "");
    ws.write(
        "pkg/BUILD",
        "genrule(name = 'link', outs = ['d'], cmd = 'mkdir $@ && ln -s /etc/passwd $@/passwd')\n",
    );
    let run = failed(ws.forge(&["build", "//pkg:link"]));
    assert!(
        run.stderr.contains("'passwd' in declared output '")
            && run.stderr.contains("outside the exec root"),
        "{}",
        run.stderr
    );
}

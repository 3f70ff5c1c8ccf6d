//! `@bazel_tools`, the repository forge writes itself: the `bazel_tools` fixture runs and
//! tests shell programs that find their data with `runfiles.bash`, selects on Bazel's host
//! conditions, loads the Python .bzl files rules_python re-exports and depends on toolchain
//! types — each with the real binary.

mod common;

use common::{Run, Workspace};

fn ok(run: Run) -> Run {
    assert_eq!(run.code, 0, "forge failed:\n{}", run.both());
    run
}

fn read(ws: &Workspace, path: &str) -> String {
    std::fs::read_to_string(ws.root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `<output_base>/external` of the workspace's only output base.
fn external_dir(ws: &Workspace) -> std::path::PathBuf {
    let bases: Vec<_> = std::fs::read_dir(ws.cache_dir().join("forge"))
        .expect("forge made its cache")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("external").is_dir())
        .collect();
    assert_eq!(bases.len(), 1, "{bases:?}");
    bases[0].join("external")
}

#[test]
fn a_binary_finds_its_data_with_rlocation_under_forge_run() {
    let ws = Workspace::fixture("bazel_tools");
    let run = ok(ws.forge(&["run", "//app:reader"]));
    assert_eq!(run.stdout, "read: the data\n", "{}", run.both());
}

#[test]
fn a_sandboxed_test_uses_every_part_of_runfiles_bash() {
    let ws = Workspace::fixture("bazel_tools");
    let run = ws.forge(&["test", "--test_output=errors", "//app:reader_test"]);
    assert_eq!(run.code, 0, "{}", run.both());
    assert!(run.both().contains("1 test passes"), "{}", run.both());
    assert!(
        read(&ws, "forge-testlogs/app/reader_test/test.log").contains("PASS"),
        "the test script ran to its end"
    );
}

#[test]
fn runfiles_bash_is_an_input_from_external_bazel_tools() {
    let ws = Workspace::fixture("bazel_tools");
    ok(ws.forge(&["build", "//app:reader"]));
    let manifest = read(&ws, "forge-bin/app/reader.runfiles_manifest");
    let paths: Vec<&str> = manifest
        .lines()
        .map(|l| l.split_once(' ').expect("two fields").0)
        .collect();
    // Under its repository's name, and (--legacy_external_runfiles) under the workspace's.
    assert!(
        paths.contains(&"bazel_tools/tools/bash/runfiles/runfiles.bash"),
        "{manifest}"
    );
    assert!(
        paths.contains(&"tools_ws/external/bazel_tools/tools/bash/runfiles/runfiles.bash"),
        "{manifest}"
    );
    // The file itself is in the output base, a real directory written by forge.
    let file = external_dir(&ws).join("bazel_tools/tools/bash/runfiles/runfiles.bash");
    assert!(
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .contains("function rlocation()"),
    );
    assert!(
        ws.root()
            .join("forge-ws/external/bazel_tools/tools/bash/runfiles/runfiles.bash")
            .is_file(),
        "the exec root has it at its exec path"
    );
}

#[test]
fn host_conditions_tell_linux_from_windows() {
    let ws = Workspace::fixture("bazel_tools");
    ok(ws.forge(&["build", "//app:host"]));
    let expected = match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => "linux_x86_64\n",
        ("linux", "aarch64") => "linux_aarch64\n",
        ("windows", _) => "windows\n",
        _ => "other\n",
    };
    assert_eq!(read(&ws, "forge-bin/app/host.txt"), expected);

    ok(ws.forge(&["build", "//app:executor"]));
    assert_eq!(read(&ws, "forge-bin/app/executor.txt"), "local\n");
    ok(ws.forge(&["build", "--define=EXECUTOR=remote", "//app:executor"]));
    assert_eq!(read(&ws, "forge-bin/app/executor.txt"), "remote\n");
}

#[test]
fn toolchain_types_are_targets_rules_depend_on() {
    let ws = Workspace::fixture("bazel_tools");
    ok(ws.forge(&["build", "//app:types"]));
    assert_eq!(
        read(&ws, "forge-bin/app/types.txt"),
        "@bazel_tools//tools/sh:toolchain_type\n\
         @bazel_tools//tools/cpp:toolchain_type\n\
         @bazel_tools//tools/python:toolchain_type\n"
    );
    let kind = ok(ws.forge(&["query", "kind(toolchain_type, @bazel_tools//...)"]));
    assert_eq!(
        kind.stdout,
        "@bazel_tools//tools/cpp:toolchain_type\n\
         @bazel_tools//tools/python:toolchain_type\n\
         @bazel_tools//tools/sh:toolchain_type\n\
         @bazel_tools//tools/test:default_test_toolchain_type\n"
    );
}

#[test]
fn the_python_bzl_files_load_and_what_forge_cannot_do_is_refused() {
    let ws = Workspace::fixture("bazel_tools");
    // defs.bzl loads srcs_version.bzl and toolchain.bzl and re-exports their symbols.
    ok(ws.forge(&["build", "//app:aspect_name"]));
    assert_eq!(
        read(&ws, "forge-bin/app/aspect_name.txt"),
        "<aspect @bazel_tools//tools/python:srcs_version.bzl%find_requirements>\n"
    );
    // py_runtime_pair from toolchain.bzl is forge's built-in rule: a pair of runtimes builds.
    ok(ws.forge(&["build", "//app:py_pair"]));
    // find_requirements applies as an aspect, propagating along `deps`.
    ws.write(
        "aspects/defs.bzl",
        "load(\"@bazel_tools//tools/python:srcs_version.bzl\", \"find_requirements\")\n\
         r = rule(implementation = lambda ctx: [], attrs = {\"dep\": attr.label(aspects = [find_requirements]), \"deps\": attr.label_list()})\n",
    );
    ws.write(
        "aspects/BUILD",
        "load(\":defs.bzl\", \"r\")\nr(name = \"leaf\")\nr(name = \"dep\", deps = [\":leaf\"])\nr(name = \"x\", dep = \":dep\")\n",
    );
    ok(ws.forge(&["build", "//aspects:x"]));
}

#[test]
fn a_missing_package_names_the_ones_there_are() {
    let ws = Workspace::fixture("bazel_tools");
    let run = ws.forge(&["build", "@bazel_tools//tools/nope:x"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains(
            "no such package '@bazel_tools//tools/nope': BUILD file not found in forge's \
             built-in repository '@bazel_tools' (its packages: platforms, src/conditions, \
             tools/allowlists/function_transition_allowlist, tools/bash/runfiles, tools/cpp, \
             tools/cpp/runfiles, tools/python, tools/python/runfiles, tools/sh, tools/test)"
        ),
        "{}",
        run.both()
    );
}

#[test]
fn a_workspace_that_declares_bazel_tools_gets_its_own() {
    let ws = Workspace::fixture("bazel_tools");
    ws.write(
        "my_tools/tools/bash/runfiles/BUILD",
        "sh_library(name = \"runfiles\", srcs = [\"runfiles.bash\"], visibility = [\"//visibility:public\"])\n",
    );
    ws.write(
        "my_tools/tools/bash/runfiles/runfiles.bash",
        "function rlocation() { echo \"$RUNFILES_DIR/$1\"; }\n# mine\n",
    );
    ws.write("my_tools/WORKSPACE", "");
    // Only the reader: the workspace's bazel_tools has no Python files for app/defs.bzl.
    ws.write(
        "app/BUILD",
        "sh_binary(name = \"reader\", srcs = [\"reader.sh\"], data = [\"data.txt\"], \
         deps = [\"@bazel_tools//tools/bash/runfiles\"])\n",
    );
    // Built first with forge's, so the directory under external/ must be replaced.
    ok(ws.forge(&["build", "//app:reader"]));
    ws.write(
        "WORKSPACE",
        "workspace(name = \"tools_ws\")\n\
         local_repository(name = \"bazel_tools\", path = \"my_tools\")\n",
    );
    ok(ws.forge(&["build", "//app:reader"]));
    let runfiles_bash = ws
        .root()
        .join("forge-bin/app/reader.runfiles/bazel_tools/tools/bash/runfiles/runfiles.bash");
    assert!(
        std::fs::read_to_string(&runfiles_bash)
            .unwrap()
            .contains("# mine"),
        "the workspace's repository wins"
    );
    // Its packages are the only ones: forge's src/conditions is not there.
    let run = ws.forge(&["query", "@bazel_tools//src/conditions:all"]);
    assert_ne!(run.code, 0, "{}", run.both());
    // Without the declaration, forge's comes back.
    ws.write("WORKSPACE", "workspace(name = \"tools_ws\")\n");
    ok(ws.forge(&["build", "//app:reader"]));
    assert!(
        std::fs::read_to_string(&runfiles_bash)
            .unwrap()
            .contains("function rlocation()"),
    );
}

#[test]
fn the_platforms_repository_is_written_the_same_way() {
    let ws = Workspace::fixture("bazel_tools");
    let run = ok(ws.forge(&["query", "@bazel_tools//platforms:linux"]));
    assert_eq!(run.stdout, "@bazel_tools//platforms:linux\n");
    ok(ws.forge(&["query", "@platforms//os:linux"]));
    let external = external_dir(&ws);
    assert!(external.join("platforms/os/BUILD").is_file());
    assert!(!external.join("platforms").is_symlink());
}

#[test]
fn a_tool_run_by_an_action_runs_another_tool_through_its_runfiles() {
    let ws = Workspace::fixture("bazel_tools");
    ok(ws.forge(&["build", "//app:from_tool"]));
    // The inner tool, found by rlocation in the outer tool's runfiles (it is there only
    // through the outer rule merging its default runfiles), read its own data file.
    assert_eq!(
        read(&ws, "forge-bin/app/from_tool.txt"),
        "the data\nouter\n"
    );
    // The outer tool (cfg = "exec") is built in the exec configuration's directory.
    let exec_dir = std::fs::read_dir(ws.root().join("forge-out"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.contains("-opt-exec-"))
        .expect("an exec configuration directory");
    let manifest = read(
        &ws,
        &format!("forge-out/{exec_dir}/bin/app/outer.runfiles_manifest"),
    );
    let paths: Vec<&str> = manifest
        .lines()
        .map(|l| l.split_once(' ').expect("two fields").0)
        .collect();
    assert_eq!(
        paths,
        [
            "bazel_tools/tools/bash/runfiles/runfiles.bash",
            "tools_ws/app/data.txt",
            "tools_ws/app/inner",
            "tools_ws/app/outer",
            "tools_ws/external/bazel_tools/tools/bash/runfiles/runfiles.bash",
        ]
    );
}

#[test]
fn python_programs_find_their_data_with_the_python_runfiles_library() {
    let ws = Workspace::fixture("bazel_tools");
    let run = ok(ws.forge(&["run", "//pyapp:reader"]));
    assert_eq!(run.stdout, "read: python data\n", "{}", run.both());
    let run = ws.forge(&["test", "--test_output=errors", "//pyapp:reader_test"]);
    assert_eq!(run.code, 0, "{}", run.both());
    assert!(
        read(&ws, "forge-testlogs/pyapp/reader_test/test.log").contains("PASS"),
        "the test ran to its end"
    );
}

#[test]
fn the_function_transition_allowlist_is_a_package_group_rules_may_name() {
    let ws = Workspace::fixture("bazel_tools");
    ws.write(
        "allow/defs.bzl",
        "def _impl(ctx):\n    return []\n\n\
         with_allowlist = rule(implementation = _impl, attrs = {\n    \
         '_allowlist_function_transition': attr.label(\n        \
         default = '@bazel_tools//tools/allowlists/function_transition_allowlist'),\n})\n",
    );
    ws.write(
        "allow/BUILD",
        "load(':defs.bzl', 'with_allowlist')\nwith_allowlist(name = 'x')\n",
    );
    let run = ok(ws.forge(&[
        "query",
        "@bazel_tools//tools/allowlists/function_transition_allowlist",
        "--output=label_kind",
    ]));
    assert_eq!(
        run.stdout,
        "package group @bazel_tools//tools/allowlists/function_transition_allowlist:\
         function_transition_allowlist\n"
    );
    ok(ws.forge(&["build", "//allow:x"]));
}

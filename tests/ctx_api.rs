//! The rule API Bazel's own examples and rule sets lean on, through real `forge build` and
//! `forge run` on the `ctx_api` fixture: `ctx.expand_location` (targets given
//! positionally), `expand_make_variables` with `ctx.var`, `coverage_instrumented`,
//! `build_file_path`; `Args` in full and parameter files; `resolve_command` and
//! `resolve_tools`; `--output_groups`; output modes and `files_to_run`.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::{Run, Workspace};

fn ok(run: Run) -> Run {
    assert_eq!(run.code, 0, "forge failed:\n{}", run.both());
    run
}

fn bin(ws: &Workspace, path: &str) -> String {
    fs::read_to_string(ws.root().join("forge-bin").join(path))
        .unwrap_or_else(|e| panic!("forge-bin/{path}: {e}"))
}

const BIN: &str = "forge-out/k8-fastbuild/bin";

#[test]
fn expand_location_make_variables_and_what_ctx_tells() {
    let ws = Workspace::fixture("ctx_api");
    ok(ws.forge(&["build", "--define", "GREETING=hello", "//expand:loc"]));
    assert_eq!(
        bin(&ws, "expand/loc.txt"),
        "data at expand/d.txt and expand/d.txt\n\
         hello world fastbuild $x\n\
         coverage: False\n\
         build file: expand/BUILD\n\
         configuration: False : {}\n\
         empty files: 0\n"
    );
    // A variable neither ctx.var nor the substitutions define is an error naming it.
    let run = ws.forge(&["build", "//expand:loc"]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr.contains("in text: $(GREETING) is not defined"),
        "{}",
        run.stderr
    );
}

#[test]
fn args_add_all_and_add_joined_in_full() {
    let ws = Workspace::fixture("ctx_api");
    ok(ws.forge(&["build", "//args:flags"]));
    // Written as a parameter file of Bazel's default "shell" format: quoted where needed.
    assert_eq!(
        bin(&ws, "args/flags.args"),
        "--one\n'a b'\n'100% x'\n--each\n-e\n'<p>'\n-e\n'<q>'\nm\nm2\nn\nn2\n--end\n\
         --empty\n--stop\n--joined\n'[A,B,C]'\nargs/in.txt\n"
    );
}

#[test]
fn args_spill_into_parameter_files_written_by_actions() {
    let ws = Workspace::fixture("ctx_api");
    ok(ws.forge(&["build", "//args:all"]));
    let flagfile = |name: &str| format!("--flagfile={BIN}/args/{name}.out-0.params|\n");
    assert_eq!(
        bin(&ws, "args/shell.out"),
        format!(
            "{}--name\n'it'\\''s here'\n--k\nv\nplain\n",
            flagfile("shell")
        )
    );
    assert_eq!(
        bin(&ws, "args/multiline.out"),
        format!(
            "{}--name\nit's here\n--k\nv\nplain\n",
            flagfile("multiline")
        )
    );
    assert_eq!(
        bin(&ws, "args/per_line.out"),
        format!("{}--name=it's here\n--k=v\nplain\n", flagfile("per_line"))
    );
    // The parameter file is an output of its own action, beside the action's first output.
    assert_eq!(
        bin(&ws, "args/shell.out-0.params"),
        "--name\n'it'\\''s here'\n--k\nv\nplain\n"
    );
    // use_always = False: a short command line keeps its arguments...
    assert_eq!(
        bin(&ws, "args/short.out"),
        "--name|it's here|--k|v|plain|\n"
    );
    assert!(!ws.root().join(BIN).join("args/short.out-0.params").exists());
    // ...a long one spills them.
    let long = bin(&ws, "args/long.out");
    assert!(long.starts_with(&flagfile("long")), "{long}");
    let params = bin(&ws, "args/long.out-0.params");
    assert_eq!(params.lines().count(), 5 + 400, "{}", &params[..200]);
}

#[test]
fn resolve_command_and_resolve_tools_run_tools_with_their_runfiles() {
    let ws = Workspace::fixture("ctx_api");
    ok(ws.forge(&["build", "//resolve:all"]));
    // $(location) of a tool and of a label_dict entry, $(OUT) from make_variables; the tool
    // reads its data file through its runfiles tree.
    assert_eq!(bin(&ws, "resolve/cmd.out"), "tool data\nnamed file\n");
    assert_eq!(
        bin(&ws, "resolve/cmd.facts"),
        "argv: 3 bash -c\ninputs: resolve/tool.sh resolve/tool_data.txt\nmanifests: []\n"
    );
    // A command longer than 64000 characters is run from a script.
    assert_eq!(
        bin(&ws, "resolve/long.facts"),
        format!(
            "argv: 2 {BIN}/resolve/long.script.sh\n\
             inputs: resolve/long.script.sh resolve/tool.sh resolve/tool_data.txt\n\
             manifests: []\n"
        )
    );
    assert_eq!(bin(&ws, "resolve/long.out"), "tool data\n");
    assert!(bin(&ws, "resolve/long.script.sh").len() > 70000);
    // The tool (cfg = "exec") is built in the exec configuration's directory, as in Bazel.
    let tools = bin(&ws, "resolve/tools.out");
    let tool = tools
        .strip_prefix("tool data\nTOOL=forge-out/")
        .and_then(|t| t.strip_suffix("/bin/resolve/tool.sh\n"))
        .unwrap_or_else(|| panic!("{tools}"));
    assert!(tool.contains("-opt-exec-"), "{tools}");
}

#[test]
fn output_groups_choose_what_is_built_and_reported() {
    let ws = Workspace::fixture("ctx_api");
    let run = ok(ws.forge(&["build", "--output_groups=debug,extra", "//groups:g"]));
    assert!(
        run.stderr.contains(
            "Target //groups:g up-to-date:\n  forge-bin/groups/g.debug\n  forge-bin/groups/g.extra\n"
        ),
        "{}",
        run.stderr
    );
    assert!(!ws.root().join(BIN).join("groups/g.main").exists());
    let run = ok(ws.forge(&["build", "--output_groups=+extra", "//groups:g"]));
    assert!(
        run.stderr.contains(
            "Target //groups:g up-to-date:\n  forge-bin/groups/g.main\n  forge-bin/groups/g.extra\n"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(bin(&ws, "groups/g.main"), "g.main\n");
    let run = ok(ws.forge(&["build", "--output_groups=-default", "//groups:g"]));
    assert!(
        run.stderr
            .contains("Target //groups:g up-to-date (nothing to build)"),
        "{}",
        run.stderr
    );
}

#[test]
fn outputs_are_executable_as_bazel_leaves_them_and_tools_merge_sub_tools() {
    let ws = Workspace::fixture("ctx_api");
    // Written without is_executable and returned as the executable: it runs.
    let run = ok(ws.forge(&["run", "//modes:script"]));
    assert_eq!(run.stdout, "script ran\n");
    let mode = fs::metadata(ws.root().join(BIN).join("modes/script.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o555);
    let run = ok(ws.forge(&["run", "//modes:templated"]));
    assert_eq!(run.stdout, "template ran\n");
    // A tool that merges a sub-tool's runfiles finds the sub-tool in its own tree.
    ok(ws.forge(&["build", "//modes:user"]));
    assert_eq!(bin(&ws, "modes/user.out"), "sub tool\n");
}

#[test]
fn info_file_and_version_file_hold_the_workspace_status() {
    let ws = Workspace::fixture("ctx_api");
    ok(ws.forge(&["build", "//status:stamped"]));
    let text = bin(&ws, "status/stamped.txt");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert_eq!(lines[0], "BUILD_EMBED_LABEL ");
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(lines[1], format!("BUILD_HOST {}", host.trim()));
    assert!(lines[2].len() > "BUILD_USER ".len(), "{text}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let stamp: u64 = lines[3]
        .strip_prefix("BUILD_TIMESTAMP ")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(now.abs_diff(stamp) < 600, "{text}");
    assert_eq!(
        lines[4],
        "forge-out/stable-status.txt forge-out/volatile-status.txt"
    );
}

#[test]
fn what_forge_does_not_implement_is_refused_by_name() {
    let ws = Workspace::fixture("ctx_api");
    let run = ws.forge(&["build", "//refused:exec_group"]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr
            .contains("forge does not support the 'exec_group' parameter yet"),
        "{}",
        run.stderr
    );
    // do_nothing is accepted and creates nothing.
    ok(ws.forge(&["build", "//refused:nothing"]));
    assert_eq!(bin(&ws, "refused/nothing.out"), "written\n");
}

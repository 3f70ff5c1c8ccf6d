//! `forge cquery` with the real binary on a workspace written here: labels with their
//! configurations, select() branches chosen by the command line, the edges' transitions
//! (lite and full), and `--output=starlark`.

mod common;

use common::{Run, Workspace};

fn ok(run: Run) -> Run {
    assert_eq!(run.code, 0, "forge failed:\n{}", run.both());
    run
}

fn workspace() -> Workspace {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "");
    ws.write(
        "tree/defs.bzl",
        r#"
def _opt_impl(settings, attr):
    return {"//command_line_option:compilation_mode": "opt"}

to_opt = transition(
    implementation = _opt_impl,
    inputs = [],
    outputs = ["//command_line_option:compilation_mode"],
)

NameInfo = provider(fields = ["name"])

def _impl(ctx):
    return [NameInfo(name = ctx.label.name)]

holder = rule(
    implementation = _impl,
    attrs = {
        "dep": attr.label(cfg = to_opt),
        "tool": attr.label(cfg = "exec"),
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    },
)
"#,
    );
    ws.write(
        "tree/BUILD",
        r#"
load(":defs.bzl", "holder")

config_setting(name = "excelsior", values = {"define": "species=excelsior"})

filegroup(
    name = "ash",
    srcs = select({
        ":excelsior": [":manna-ash"],
        "//conditions:default": [":common-ash"],
    }),
)

filegroup(name = "manna-ash", srcs = ["manna.txt"])

filegroup(name = "common-ash")

filegroup(name = "tool")

holder(name = "h", dep = ":ash", tool = ":tool")
"#,
    );
    ws.write("tree/manna.txt", "");
    ws
}

/// The configuration of each line: `//tree:ash (abc1234)` -> (`//tree:ash`, `abc1234`).
fn lines(run: &Run) -> Vec<(String, String)> {
    run.stdout
        .lines()
        .map(|l| {
            let (label, config) = l.split_once(' ').unwrap_or_else(|| panic!("{l}"));
            (
                label.to_owned(),
                config.trim_matches(|c| c == '(' || c == ')').to_owned(),
            )
        })
        .collect()
}

#[test]
fn labels_come_with_their_configuration_and_only_the_select_branch_taken() {
    let ws = workspace();
    let run = ok(ws.forge(&[
        "cquery",
        "deps(//tree:ash)",
        "--define",
        "species=excelsior",
    ]));
    let got = lines(&run);
    let labels: Vec<&str> = got.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        labels,
        [
            "//tree:ash",
            "//tree:excelsior",
            "//tree:manna-ash",
            "//tree:manna.txt"
        ],
        "{}",
        run.stdout
    );
    // One configuration for the rules, a short hex id as Bazel prints; a source file has none.
    let config = &got[0].1;
    assert_eq!(config.len(), 7, "{}", run.stdout);
    assert!(
        config.chars().all(|c| c.is_ascii_hexdigit()),
        "{}",
        run.stdout
    );
    assert!(got[..3].iter().all(|(_, c)| c == config), "{}", run.stdout);
    assert_eq!(got[3].1, "null");
    // Without the define, the other branch; plain `query` lists both.
    let run = ok(ws.forge(&["cquery", "deps(//tree:ash)"]));
    assert!(run.stdout.contains("//tree:common-ash ("), "{}", run.stdout);
    assert!(!run.stdout.contains("manna"), "{}", run.stdout);
}

#[test]
fn a_transitioned_and_an_exec_dependency_are_in_other_configurations() {
    let ws = workspace();
    let run = ok(ws.forge(&["cquery", "deps(//tree:h)"]));
    let got = lines(&run);
    let config = |label: &str| -> Vec<String> {
        got.iter()
            .filter(|(l, _)| l == label)
            .map(|(_, c)| c.clone())
            .collect()
    };
    let top = config("//tree:h");
    let ash = config("//tree:ash");
    let tool = config("//tree:tool");
    assert_eq!(
        (top.len(), ash.len(), tool.len()),
        (1, 1, 1),
        "{}",
        run.stdout
    );
    assert_ne!(top, ash);
    assert_ne!(top, tool);
    assert_ne!(ash, tool);
}

#[test]
fn transitions_output_names_each_edge_and_full_the_options_it_changed() {
    let ws = workspace();
    let run = ok(ws.forge(&["cquery", "--output=transitions", "//tree:h"]));
    let out = &run.stdout;
    assert!(out.starts_with("//tree:h ("), "{out}");
    assert!(
        out.contains("\n  dep#//tree:ash#StarlarkTransition -> "),
        "{out}"
    );
    assert!(
        out.contains("\n  tool#//tree:tool#ExecutionTransition -> "),
        "{out}"
    );
    assert!(!out.contains("compilation_mode:"), "{out}");
    let run = ok(ws.forge(&[
        "cquery",
        "--output=transitions",
        "--transitions=full",
        "//tree:h",
    ]));
    assert!(
        run.stdout
            .contains("      compilation_mode: fastbuild -> opt\n"),
        "{}",
        run.stdout
    );
    let run = ws.forge(&[
        "cquery",
        "--output=transitions",
        "--transitions=most",
        "//tree:h",
    ]);
    assert_eq!(run.code, 2, "{}", run.both());
}

#[test]
fn starlark_output_prints_an_expression_over_each_target() {
    let ws = workspace();
    let run = ok(ws.forge(&[
        "cquery",
        "--output=starlark",
        "--starlark:expr=str(target.label) + ' ' + providers(target)['//tree:defs.bzl%NameInfo'].name",
        "//tree:h",
    ]));
    assert_eq!(run.stdout, "//tree:h h\n");
    let run = ok(ws.forge(&[
        "cquery",
        "--output=starlark",
        "--starlark:expr=[f.path for f in target.files.to_list()]",
        "//tree:manna-ash",
    ]));
    assert_eq!(run.stdout, "[\"tree/manna.txt\"]\n");
}

//! Deeply nested Starlark and queries: generated files and expressions in, one error line
//! with a location and exit code 1 (2 for a query, as any query syntax error) out, or a
//! correct result; never a crash by signal.

mod common;

use common::{Run, Workspace};

fn workspace() -> Workspace {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "");
    ws
}

/// Exits with `code` (not a signal: a signal has no code) and says `message` at `place`.
#[track_caller]
fn assert_fails(run: &Run, code: i32, place: &str, message: &str) {
    assert_eq!(run.code, code, "{}", run.both());
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains(message))
        .unwrap_or_else(|| panic!("no '{message}' in:\n{}", run.both()));
    assert!(line.contains(place), "'{place}' not in '{line}'");
    assert!(!run.stderr.contains("overflow"), "{}", run.both());
}

fn nested(open: &str, inner: &str, close: &str, n: usize) -> String {
    format!("{}{inner}{}", open.repeat(n), close.repeat(n))
}

#[test]
fn deeply_nested_brackets_in_a_build_file_are_one_error_with_its_place() {
    let ws = workspace();
    let cases = [
        ("lists", nested("[", "", "]", 1000), 205),
        ("dicts", nested("{1: ", "1", "}", 1000), 805),
        ("calls", nested("str(", "1", ")", 1000), 808),
        ("parens", nested("(", "1", ")", 10_000), 205),
    ];
    for (pkg, expr, column) in &cases {
        ws.write(&format!("{pkg}/BUILD"), &format!("# {pkg}\nx = {expr}\n"));
        let run = ws.forge(&["query", &format!("//{pkg}:all")]);
        assert_fails(
            &run,
            1,
            &format!("{pkg}/BUILD:2:{column}:"),
            "nested too deeply: more than 200 levels of brackets",
        );
    }
}

#[test]
fn nested_select_is_refused_before_it_is_evaluated() {
    let ws = workspace();
    let selects = nested("select({\"//conditions:default\": ", "[]", "})", 500);
    ws.write(
        "sel/BUILD",
        &format!("filegroup(\n    name = \"x\",\n    srcs = {selects},\n)\n"),
    );
    let run = ws.forge(&["build", "//sel:x"]);
    assert_fails(&run, 1, "sel/BUILD:3:", "nested too deeply");
}

#[test]
fn long_operator_chains_evaluate() {
    let ws = workspace();
    let plus = vec!["1"; 1000].join(" + ");
    let nots = format!("{}True", "not ".repeat(1000));
    let lower = format!("\"A\"{}", ".lower()".repeat(500));
    ws.write(
        "chains/BUILD",
        &format!("print({plus})\nprint({nots})\nprint({lower})\n"),
    );
    let run = ws.forge(&["query", "//chains:all"]);
    assert_eq!(run.code, 0, "{}", run.both());
    for printed in ["BUILD:1:1: 1000", "BUILD:2:1: True", "BUILD:3:1: a"] {
        assert!(run.stderr.contains(printed), "{printed}: {}", run.both());
    }
}

#[test]
fn chains_too_long_to_evaluate_are_one_error() {
    let ws = workspace();
    ws.write(
        "chain/BUILD",
        &format!("x = {}\n", vec!["1"; 5000].join(" + ")),
    );
    let run = ws.forge(&["query", "//chain:all"]);
    assert_fails(&run, 1, "chain/BUILD:1:", "expression nested too deeply");
}

#[test]
fn deep_blocks_and_attribute_chains_in_a_bzl_file() {
    let ws = workspace();
    let mut ifs = String::from("def f(x):\n");
    for depth in 1..=500 {
        ifs += &format!("{}if x:\n", "    ".repeat(depth));
    }
    ifs += &format!("{}pass\n", "    ".repeat(501));
    ws.write("ifs/defs.bzl", &ifs);
    ws.write("ifs/BUILD", "load(\":defs.bzl\", \"f\")\n");
    let run = ws.forge(&["query", "//ifs:all"]);
    assert_fails(
        &run,
        1,
        "ifs/defs.bzl:202:",
        "nested too deeply: more than 200 levels of blocks",
    );
    assert!(run.stderr.contains("cannot load '//ifs:defs.bzl'"));

    // 500 attribute lookups evaluate; the last one fails as it should, with its line.
    ws.write(
        "attrs/defs.bzl",
        &format!("s = struct(x = 1)\ny = s{}\n", ".x".repeat(500)),
    );
    ws.write("attrs/BUILD", "load(\":defs.bzl\", \"y\")\n");
    let run = ws.forge(&["query", "//attrs:all"]);
    assert_fails(&run, 1, "", "has no attribute `x`");
    assert!(run.stderr.contains("attrs/defs.bzl:2:"), "{}", run.both());
}

#[test]
fn deep_nesting_in_the_workspace_file() {
    let ws = Workspace::empty();
    ws.write(
        "WORKSPACE",
        &format!(
            "workspace(name = \"w\")\nx = {}\n",
            nested("[", "", "]", 1000)
        ),
    );
    ws.write("BUILD", "");
    let run = ws.forge(&["query", "//:all"]);
    assert_fails(&run, 1, "WORKSPACE:2:205:", "nested too deeply");
}

const DEEP_DEPSET: &str = r#"
def deep(n):
    d = depset(["leaf"])
    for i in range(n):
        d = depset([str(i)], transitive = [d])
    return d
"#;

#[test]
fn a_depset_100000_deep_is_refused_while_loading_and_while_analysing() {
    let ws = workspace();
    ws.write("d/defs.bzl", DEEP_DEPSET);
    ws.write(
        "d/BUILD",
        "load(\":defs.bzl\", \"deep\")\nx = len(deep(100000).to_list())\n",
    );
    let run = ws.forge(&["query", "//d:all"]);
    assert_fails(
        &run,
        1,
        "",
        "depset nested too deeply: depth 3501 exceeds the limit of 3500",
    );
    assert!(run.stderr.contains("d/defs.bzl:5:"), "{}", run.both());

    // The same in a rule implementation, on an analysis thread.
    ws.write(
        "r/rules.bzl",
        &format!(
            "{DEEP_DEPSET}\ndef _impl(ctx):\n    return [DefaultInfo(files = deep(ctx.attr.n))]\n\ndeep_rule = rule(implementation = _impl, attrs = {{\"n\": attr.int()}})\n"
        ),
    );
    ws.write(
        "r/BUILD",
        "load(\":rules.bzl\", \"deep_rule\")\ndeep_rule(name = \"too_deep\", n = 100000)\n",
    );
    let run = ws.forge(&["build", "//r:too_deep"]);
    assert_fails(&run, 1, "", "depset nested too deeply");
}

#[test]
fn a_depset_just_under_the_limit_flattens_and_freezes() {
    let ws = workspace();
    ws.write("d/defs.bzl", DEEP_DEPSET);
    ws.write(
        "d/BUILD",
        "load(\":defs.bzl\", \"deep\")\nprint(len(deep(3499).to_list()), deep(3499).to_list()[:2])\n",
    );
    let run = ws.forge(&["query", "//d:all"]);
    assert_eq!(run.code, 0, "{}", run.both());
    assert!(
        run.stderr.contains("3500 [\"leaf\", \"0\"]"),
        "{}",
        run.both()
    );
    // Kept at the top level of a .bzl file, it is frozen (a recursive walk in Starlark).
    ws.write(
        "f/defs.bzl",
        &format!("{DEEP_DEPSET}\nD = deep(3499)\nN = len(D.to_list())\n"),
    );
    ws.write("f/BUILD", "load(\":defs.bzl\", \"N\")\nprint(N)\n");
    let run = ws.forge(&["query", "//f:all"]);
    assert_eq!(run.code, 0, "{}", run.both());
    assert!(run.stderr.contains("f/BUILD:2:1: 3500"), "{}", run.both());
}

#[test]
fn deeply_nested_queries_are_a_syntax_error_or_evaluate() {
    let ws = workspace();
    ws.write("p/BUILD", "filegroup(name = \"a\")\n");
    let run = ws.forge(&["query", &nested("deps(", "//p:a", ")", 10_000)]);
    assert_fails(
        &run,
        2,
        "(character 5005)",
        "query nested too deeply: more than 1000 levels",
    );
    // 1000 levels parse and evaluate on the thread that parses the query.
    let run = ws.forge(&["query", &nested("deps(", "//p:a", ")", 1000)]);
    assert_eq!(run.code, 0, "{}", run.both());
    assert_eq!(run.stdout, "//p:a\n");

    let union = vec!["//p:a"; 20_000].join("+");
    let run = ws.forge(&["query", &union]);
    assert_fails(&run, 2, "", "list many targets in one set(...)");
}

//! The main error messages, exactly: Starlark errors with file:line:column and snippet,
//! unknown labels naming the referring target and its BUILD line, visibility, cycles, load
//! cycles, duplicate targets, and the BUILD dialect's restrictions.

mod common;

use common::Workspace;

fn query(ws: &Workspace, expr: &str) -> String {
    ws.forge(&["query", expr]).both()
}

#[test]
fn syntax_error_shows_file_line_column_and_snippet() {
    let ws = Workspace::fixture("errors");
    insta::assert_snapshot!("syntax", query(&ws, "//syntax:all"));
}

#[test]
fn undefined_name() {
    let ws = Workspace::fixture("errors");
    insta::assert_snapshot!("undefined", query(&ws, "//undefined:all"));
}

#[test]
fn duplicate_target_names_both_lines() {
    let ws = Workspace::fixture("errors");
    insta::assert_snapshot!("dupname", query(&ws, "//dupname:all"));
}

#[test]
fn unknown_packages_and_targets_name_the_referrer() {
    let ws = Workspace::fixture("errors");
    insta::assert_snapshot!("missingdep", query(&ws, "deps(//missingdep:all)"));
    insta::assert_snapshot!(
        "missing_on_command_line",
        query(&ws, "//cycle:aa + //cycel:a")
    );
}

#[test]
fn cycles_are_warnings_in_query_with_the_whole_loop() {
    let ws = Workspace::fixture("errors");
    insta::assert_snapshot!("cycle", query(&ws, "deps(//cycle:a)"));
}

#[test]
fn load_cycles_show_their_chain() {
    let ws = Workspace::fixture("errors");
    insta::assert_snapshot!("loadcycle", query(&ws, "//loadcycle:all"));
}

#[test]
fn private_symbols_cannot_be_loaded() {
    let ws = Workspace::fixture("errors");
    insta::assert_snapshot!("private_load", query(&ws, "//private_load:all"));
}

#[test]
fn build_dialect_forbids_star_args_def_and_top_level_for() {
    let ws = Workspace::fixture("errors");
    insta::assert_snapshot!("star_args", query(&ws, "//star_args:all"));
    ws.write("def_in_build/BUILD", "def f():\n    pass\n");
    insta::assert_snapshot!("def_in_build", query(&ws, "//def_in_build:all"));
    ws.write(
        "for_in_build/BUILD",
        "for n in ['a']:\n    filegroup(name = n)\n",
    );
    insta::assert_snapshot!("for_in_build", query(&ws, "//for_in_build:all"));
    // A comprehension is fine, as in Bazel.
    ws.write(
        "comprehension/BUILD",
        "[filegroup(name = n) for n in ['a', 'b']]\n",
    );
    assert_eq!(
        ws.forge(&["query", "//comprehension:all"]).stdout,
        "//comprehension:a\n//comprehension:b\n"
    );
}

#[test]
fn attribute_values_are_checked_at_the_build_line() {
    let ws = Workspace::fixture("errors");
    insta::assert_snapshot!("badattr", query(&ws, "//badattr:all"));
    ws.write(
        "badattr/BUILD",
        "genrule(\n    name = 'wrongtype',\n    outs = 'b.txt',\n    cmd = 'x',\n)\n",
    );
    insta::assert_snapshot!("wrongtype", query(&ws, "//badattr:all"));
    ws.write(
        "badattr/BUILD",
        "py_test(\n    name = 'badsize',\n    srcs = ['t.py'],\n    size = 'huge',\n)\n",
    );
    insta::assert_snapshot!("badsize", query(&ws, "//badattr:all"));
    insta::assert_snapshot!("mandatory", query(&ws, "//mandatory:all"));
    insta::assert_snapshot!("badlabel", query(&ws, "//badlabel:all"));
}

#[test]
fn errors_in_macros_show_the_starlark_traceback() {
    let ws = Workspace::fixture("errors");
    insta::assert_snapshot!("macro_fail", query(&ws, "//macro_fail:all"));
    insta::assert_snapshot!("bzl_toplevel", query(&ws, "//bzl_toplevel:all"));
    insta::assert_snapshot!("rule_in_build", query(&ws, "//rule_in_build:all"));
}

#[test]
fn visibility_is_enforced_with_both_targets_and_the_fix() {
    let ws = Workspace::fixture("errors");
    insta::assert_snapshot!("visibility", query(&ws, "deps(//visibility/b:user)"));
    // The graph fixture's package_group admits //vis/b: no warning there.
    let ok = Workspace::fixture("graph");
    let run = ok.forge(&["query", "deps(//vis/b:user)"]);
    assert_eq!((run.code, run.stderr.as_str()), (0, ""));
}

#[test]
fn keep_going_reports_what_it_could() {
    let ws = Workspace::fixture("errors");
    let run = ws.forge(&[
        "query",
        "--keep_going",
        "//cycle:all + //syntax:all + //nope:x",
    ]);
    assert_eq!(run.code, 3);
    assert_eq!(run.stdout, "//cycle:a\n//cycle:b\n//cycle:c\n");
    assert!(run.stderr.contains("syntax/BUILD:3:5"), "{}", run.stderr);
    assert!(run.stderr.contains("Skipping '//nope:x'"), "{}", run.stderr);
    let strict = ws.forge(&["query", "//cycle:all + //syntax:all"]);
    assert_eq!((strict.code, strict.stdout.as_str()), (1, ""));
}

#[test]
fn declaration_errors_point_at_the_bzl_line() {
    let ws = Workspace::fixture("errors");
    ws.write("decl/BUILD", "load(':defs.bzl', 'r')\n");
    ws.write(
        "decl/defs.bzl",
        "def _i(ctx):\n    pass\n\nr = rule(implementation = _i, attrs = {'tool': attr.label(executable = True)})\n",
    );
    insta::assert_snapshot!("executable_without_cfg", query(&ws, "//decl:all"));
    ws.write(
        "decl/defs.bzl",
        "def _i(ctx):\n    pass\n\nr = rule(implementation = _i, attrs = {'n': attr.int(default = 'three')})\n",
    );
    insta::assert_snapshot!("bad_default", query(&ws, "//decl:all"));
    ws.write(
        "decl/defs.bzl",
        "def _i(ctx):\n    pass\n\nmy_test = rule(implementation = _i)\n",
    );
    insta::assert_snapshot!("test_name_without_test_flag", query(&ws, "//decl:all"));
}

#[test]
fn glob_allow_empty_false_fails_on_no_match() {
    let ws = Workspace::fixture("errors");
    ws.write(
        "g/BUILD",
        "filegroup(name = 'g', srcs = glob(['*.none'], allow_empty = False))\n",
    );
    insta::assert_snapshot!("glob_empty", query(&ws, "//g:all"));
    ws.write(
        "g/BUILD",
        "filegroup(name = 'g', srcs = glob(['*.none']))\n",
    );
    assert_eq!(ws.forge(&["query", "//g:all"]).stdout, "//g:g\n");
}

#[test]
fn subpackages_visibility() {
    let ws = Workspace::fixture("errors");
    ws.write(
        "top/BUILD",
        "filegroup(name = 't', visibility = ['//top:__subpackages__'])\n",
    );
    ws.write(
        "top/inner/deep/BUILD",
        "filegroup(name = 'ok', srcs = ['//top:t'])\n",
    );
    ws.write(
        "outside/BUILD",
        "filegroup(name = 'no', srcs = ['//top:t'])\n",
    );
    let ok = ws.forge(&["query", "deps(//top/inner/deep:ok)"]);
    assert_eq!((ok.code, ok.stderr.as_str()), (0, ""));
    let no = ws.forge(&["query", "deps(//outside:no)"]);
    assert!(no.stderr.starts_with("WARNING: outside/BUILD:1:1: in filegroup rule //outside:no: target '//top:t' is not visible"), "{}", no.stderr);
}

//! Hardening of analysis: labels that name nothing are errors, and Starlark parameters are
//! honoured or refused, never dropped. Each test runs the real forge on
//! `tests/fixtures/hardening_analysis`.

mod common;

use common::{Run, Workspace};

fn ws() -> Workspace {
    Workspace::fixture("hardening_analysis")
}

fn ok(run: Run) -> Run {
    assert_eq!(run.code, 0, "{}", run.both());
    run
}

/// The ERROR lines of a run, for snapshots that should not depend on timing lines.
fn errors(run: &Run) -> String {
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("ERROR:"))
        .collect();
    format!("exit: {}\n{}\n", run.code, lines.join("\n"))
}

#[test]
fn a_label_that_names_no_rule_and_no_file_is_a_missing_input() {
    let ws = ws();
    insta::assert_snapshot!(
        "missing_input",
        errors(&ws.forge(&["build", "//missing:fg"]))
    );
    // With --keep_going every referrer is reported, the typo with its close rule name, and
    // the rest still builds.
    let run = ws.forge(&[
        "build",
        "--keep_going",
        "//missing:bin",
        "//missing:lib",
        "//missing:ext_missing",
        "//missing:good",
    ]);
    insta::assert_snapshot!("missing_input_keep_going", errors(&run));
    // Query does not look at files, as in Bazel.
    let run = ok(ws.forge(&["query", "deps(//missing:fg)"]));
    assert_eq!(run.stdout, "//missing:alsonot\n//missing:fg\n");
}

#[test]
fn globbed_subdirectory_exported_and_external_files_are_found() {
    let ws = ws();
    let run = ok(ws.forge(&["build", "//missing:good"]));
    assert!(run.stderr.contains("missing/sub/b.txt"), "{}", run.stderr);
    // A file deleted after a successful build is missed on the next one too (the reused
    // plan notices the directory changed).
    std::fs::remove_file(ws.root().join("missing/sub/b.txt")).unwrap();
    let run = ws.forge(&["build", "//missing:good"]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr
            .contains("//missing:good: missing input file '//missing:sub/b.txt'"),
        "{}",
        run.stderr
    );
}

fn build_with_ws(ws: &Workspace, target: &str) -> Run {
    let env = format!("--action_env=WS={}", ws.root().display());
    ws.forge(&["build", &env, target])
}

#[test]
fn execution_requirements_are_merged_like_tags() {
    let ws = ws();
    // The sandbox hides the workspace's absolute path...
    let run = build_with_ws(&ws, "//reqs:sandboxed");
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr.contains("No such file or directory"),
        "{}",
        run.stderr
    );
    // ...which an action with no-sandbox (or local) in execution_requirements sees.
    ok(build_with_ws(&ws, "//reqs:unsandboxed"));
    let out = std::fs::read_to_string(ws.root().join("forge-bin/reqs/unsandboxed.out")).unwrap();
    assert_eq!(out, "from the host\n");
    let run = ok(build_with_ws(&ws, "//reqs:unsandboxed_run"));
    assert!(
        run.stderr.contains("0 sandboxed, 1 local"),
        "{}",
        run.stderr
    );
    // no-cache: run again on every build; without it, once.
    for target in ["//reqs:uncached", "//reqs:cached"] {
        ok(ws.forge(&["build", target]));
    }
    let again = ok(ws.forge(&["build", "//reqs:uncached"]));
    assert!(
        again.stderr.contains("INFO: 1 action executed"),
        "{}",
        again.stderr
    );
    let cached = ok(ws.forge(&["build", "//reqs:cached"]));
    assert!(
        cached.stderr.contains("INFO: 0 actions executed"),
        "{}",
        cached.stderr
    );
    // A key forge does not act on is refused, named.
    insta::assert_snapshot!(
        "unknown_execution_requirement",
        ws.forge(&["build", "//reqs:unknown"]).both()
    );
}

/// The first `error:` line of a run: the message of a Starlark error without its snippet.
fn error_line(run: &Run) -> String {
    assert_eq!(run.code, 1, "{}", run.both());
    run.stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in:\n{}", run.stderr))
        .to_owned()
}

#[test]
fn parameters_forge_cannot_honour_are_refused_by_name() {
    let ws = ws();
    insta::assert_snapshot!(
        "aspects_refused",
        ws.forge(&["build", "//aspects:x"]).both()
    );
    let refused: Vec<String> = ["computed", "manifests", "toolchain"]
        .iter()
        .map(|t| error_line(&ws.forge(&["build", &format!("//refuse:{t}")])))
        .collect();
    insta::assert_snapshot!("refused_parameters", refused.join("\n"));
}

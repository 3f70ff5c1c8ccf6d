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

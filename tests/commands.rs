//! Bazel's smaller commands run on the real binary: `shutdown`, `info` with Bazel's keys,
//! `version`, `help` and its topics, `canonicalize-flags`.

mod common;

use common::Workspace;

#[test]
fn shutdown_exits_0_and_takes_bazels_heap_flag() {
    let ws = Workspace::fixture("graph");
    for args in [
        &["shutdown"][..],
        &["shutdown", "--iff_heap_size_greater_than=1024"][..],
        &["shutdown", "--iff_heap_size_greater_than", "10"][..],
    ] {
        let run = ws.forge(args);
        assert_eq!(
            (run.code, run.stdout.as_str()),
            (0, ""),
            "{args:?}: {}",
            run.stderr
        );
    }
    let bad = ws.forge(&["shutdown", "--iff_heap_size_greater_than=big"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}

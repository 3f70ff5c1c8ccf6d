//! A build keeps of each analysed target only what later steps read: once no dependent
//! still to be analysed reads a target's providers, the Starlark heap they were made in is
//! let go of and they are kept as packed plain data. Shown by forge's peak memory (the
//! largest resident size of the children this test process waited for, so this file holds
//! one test, its builds one after the other), and by the outputs the build reads from that
//! plain data.

mod common;

use common::Workspace;

/// Targets in a chain, each a dependency of the next and each returning a provider with a
/// list of `items` integers (8 bytes each as Starlark values); with `transitive`, a depset
/// reaching the files of all the targets below it too (then each target's values refer to
/// those of the one below, and keep them alive).
fn chain(ws: &Workspace, targets: usize, items: usize, transitive: bool) {
    ws.write("WORKSPACE", "workspace(name = \"mem\")\n");
    let below = match transitive {
        true => "[d[Big].files for d in ctx.attr.deps]",
        false => "[]",
    };
    ws.write(
        "defs.bzl",
        &format!(
            r#"Big = provider(fields = ["data", "files", "depth"])

def _impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    ctx.actions.write(out, ctx.label.name + "\n")
    files = depset([out], transitive = {below})
    depth = 1 + max([0] + [d[Big].depth for d in ctx.attr.deps])
    return [
        DefaultInfo(files = files),
        Big(data = [0] * {items}, files = files, depth = depth),
    ]

link = rule(implementation = _impl, attrs = {{"deps": attr.label_list()}})
"#
        ),
    );
    let mut build = String::from("load(\":defs.bzl\", \"link\")\n");
    for i in 0..targets {
        let deps = match i {
            0 => String::new(),
            _ => format!("\":t{}\"", i - 1),
        };
        build.push_str(&format!("link(name = \"t{i}\", deps = [{deps}])\n"));
    }
    ws.write("BUILD", &build);
}

#[test]
fn analysed_targets_heaps_are_let_go_of_once_their_dependents_are_analysed() {
    const TARGETS: usize = 300;
    // As Starlark values, 300 × 160 kB = 48 MB alive at once if every heap were kept (each
    // target's heap keeps those of the dependencies its analysis read).
    const ITEMS: usize = 20_000;
    let small = Workspace::empty();
    chain(&small, TARGETS, 1, false);
    let run = small.forge(&["build", "--nobuild", "//..."]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let base = common::children_peak();

    let big = Workspace::empty();
    chain(&big, TARGETS, ITEMS, false);
    let run = big.forge(&["build", "--nobuild", "//..."]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let grown = common::children_peak() - base;
    // Packed plain data: 2 bytes an item, 12 MB for all of them; two heaps alive at most.
    assert!(
        grown < 28 << 20,
        "the build's peak memory grew by {} MB with the providers' size",
        grown >> 20
    );
    outputs_are_read_from_plain_data_through_dependencies_let_go_of();
}

fn outputs_are_read_from_plain_data_through_dependencies_let_go_of() {
    // The requested target's outputs, read from the plain data of a depset reaching every
    // target below it (each let go of by then), are all built.
    let ws = Workspace::empty();
    chain(&ws, 50, 10, true);
    let run = ws.forge(&["build", "//:t49"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for i in 0..50 {
        let out = ws.root().join(format!("forge-bin/t{i}.txt"));
        assert_eq!(
            std::fs::read_to_string(&out).unwrap_or_default(),
            format!("t{i}\n"),
            "{} is built",
            out.display()
        );
    }
    // Analysed again from the store after an edit that changes the package (a target the
    // build does not ask for: a comment alone would reuse the stored plan), with the same
    // outputs.
    ws.write(
        "BUILD",
        &format!(
            "{}filegroup(name = \"unrelated\")\n",
            std::fs::read_to_string(ws.root().join("BUILD")).unwrap()
        ),
    );
    let run = ws.forge(&["build", "//:t49"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("0 targets configured"),
        "{}",
        run.stderr
    );
}

//! Loaded packages keep each rule class's default attribute values once, not once per
//! target: a build's peak memory does not grow with the size of defaults its targets left
//! as they are, whether the packages were evaluated or read back from the package store.
//! Shown by forge's peak memory (the largest resident size of the children this test
//! process waited for, so this file holds one test, its builds one after the other).

mod common;

use common::Workspace;

const PACKAGES: usize = 100;
const TARGETS: usize = 20;
const ATTRIBUTES: usize = 40;

/// `PACKAGES` packages of `TARGETS` targets of a rule with `ATTRIBUTES` string attributes,
/// each defaulting to `default_size` bytes, none given by the targets. (Many small packages:
/// a package read back from the store has every value its own until it is shared again.)
fn workspace(default_size: usize) -> Workspace {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "workspace(name = \"mem\")\n");
    let default = "d".repeat(default_size);
    let attrs: String = (0..ATTRIBUTES)
        .map(|i| format!("        \"a{i}\": attr.string(default = \"{default}\"),\n"))
        .collect();
    ws.write(
        "defs.bzl",
        &format!(
            "def _impl(ctx):\n    return []\n\nwide = rule(\n    implementation = _impl,\n    attrs = {{\n{attrs}    }},\n)\n"
        ),
    );
    for p in 0..PACKAGES {
        let build: String = std::iter::once("load(\"//:defs.bzl\", \"wide\")\n".to_owned())
            .chain((0..TARGETS).map(|t| format!("wide(name = \"t{t}\", a0 = \"own{t}\")\n")))
            .collect();
        ws.write(&format!("p{p}/BUILD"), &build);
    }
    ws
}

/// Builds `ws` with nothing stored, then again after a comment in one BUILD file (the
/// other packages read back from the package store).
fn clean_then_edited(ws: &Workspace) {
    let run = ws.forge(&["build", "--nobuild", "//..."]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let build = std::fs::read_to_string(ws.root().join("p0/BUILD")).unwrap();
    ws.write("p0/BUILD", &format!("{build}# edited\n"));
    let run = ws.forge(&["build", "--nobuild", "//..."]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn default_attribute_values_are_kept_once_per_rule_class() {
    // 2,000 targets × 40 defaults × 1 kB: 80 MB if every target kept its own copies (the
    // release binary of before grew by 75 MB; after, by 1–3 MB).
    clean_then_edited(&workspace(1));
    let base = common::children_peak();
    let big = workspace(1000);
    clean_then_edited(&big);
    let grown = common::children_peak() - base;
    assert!(
        grown < 20 << 20,
        "the build's peak memory grew by {} MB with the size of defaults no target gave",
        grown >> 20
    );
    // The values are still every target's: `query --output=build` shows those given and
    // `attr()` matches a default.
    let run = big.forge(&["query", "--output=build", "//p1:t7"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("a0 = \"own7\""), "{}", run.stdout);
    assert!(!run.stdout.contains("a1 ="), "{}", run.stdout);
    let run = big.forge(&["query", &format!("attr(a5, {}, //p1:*)", "d".repeat(1000))]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), TARGETS, "{}", run.stdout);
}

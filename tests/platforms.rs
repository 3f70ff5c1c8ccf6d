//! Platforms: `platform()` with constraint values and parents, the host platform
//! (`@local_config_platform//:host`, `@platforms//host`), `--platforms` deciding select()
//! on constraint values and `config_setting(constraint_values = ...)`,
//! `default_constraint_value`, and `target_compatible_with` (skipped by wildcards, an
//! error when named). Each test builds a workspace written here with the real binary.

mod common;

use common::{Run, Workspace};

fn ok(run: Run) -> Run {
    assert_eq!(run.code, 0, "forge failed:\n{}", run.both());
    run
}

fn read(ws: &Workspace, path: &str) -> String {
    std::fs::read_to_string(ws.root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The machine's OS as @platforms names it (Rust and @platforms agree on linux, macos,
/// windows, freebsd).
fn host_os() -> &'static str {
    std::env::consts::OS
}

fn workspace() -> Workspace {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "");
    ws.write(
        "p/BUILD",
        r#"
package(default_visibility = ["//visibility:public"])

constraint_setting(name = "flavour", default_constraint_value = ":vanilla")
constraint_value(name = "vanilla", constraint_setting = ":flavour")
constraint_value(name = "chocolate", constraint_setting = ":flavour")

platform(
    name = "win",
    constraint_values = ["@platforms//os:windows", "@platforms//cpu:x86_64"],
)

# Inherits windows/x86_64 and overrides the CPU.
platform(
    name = "win_arm",
    parents = [":win"],
    constraint_values = ["@platforms//cpu:aarch64", ":chocolate"],
)

platform(
    name = "two_oses",
    constraint_values = ["@platforms//os:windows", "@platforms//os:linux"],
)
"#,
    );
    ws.write(
        "pkg/BUILD",
        r#"
config_setting(name = "is_win_arm", constraint_values = ["@platforms//os:windows", "@platforms//cpu:aarch64"])

genrule(
    name = "os",
    outs = ["os.txt"],
    cmd = select({
        ":is_win_arm": "echo win-arm > $@",
        "@platforms//os:windows": "echo windows > $@",
        "@platforms//os:linux": "echo linux > $@",
        "@platforms//os:macos": "echo macos > $@",
        "//conditions:default": "echo other > $@",
    }),
)

genrule(
    name = "flavour",
    outs = ["flavour.txt"],
    cmd = select({
        "//p:vanilla": "echo vanilla > $@",
        "//p:chocolate": "echo chocolate > $@",
    }),
)
"#,
    );
    ws
}

#[test]
fn the_host_platform_is_the_default_target_platform() {
    let ws = workspace();
    ok(ws.forge(&["build", "//pkg:os", "//pkg:flavour"]));
    assert_eq!(
        read(&ws, "forge-bin/pkg/os.txt"),
        format!("{}\n", host_os())
    );
    // A setting the platform does not name takes its default_constraint_value.
    assert_eq!(read(&ws, "forge-bin/pkg/flavour.txt"), "vanilla\n");
    // The host platform is a real target, with the machine's constraints.
    let run = ok(ws.forge(&["query", "--output=build", "@local_config_platform//:host"]));
    assert!(run.stdout.contains("platform("), "{}", run.stdout);
    assert!(
        run.stdout
            .contains(&format!("\"@platforms//os:{}\"", host_os())),
        "{}",
        run.stdout
    );
    // @platforms//host names it too; given as --platforms it changes nothing.
    ok(ws.forge(&["build", "--platforms=@platforms//host", "//pkg:os"]));
    assert_eq!(
        read(&ws, "forge-bin/pkg/os.txt"),
        format!("{}\n", host_os())
    );
}

#[test]
fn platforms_decides_select_on_constraint_values_and_config_settings() {
    let ws = workspace();
    ok(ws.forge(&["build", "--platforms=//p:win", "//pkg:os", "//pkg:flavour"]));
    assert_eq!(read(&ws, "forge-bin/pkg/os.txt"), "windows\n");
    assert_eq!(read(&ws, "forge-bin/pkg/flavour.txt"), "vanilla\n");
    // The child platform keeps its parent's OS, replaces its CPU, adds a flavour; the
    // config_setting needing both wins over the single constraint (it is more specialised).
    ok(ws.forge(&[
        "build",
        "--platforms=//p:win_arm",
        "//pkg:os",
        "//pkg:flavour",
    ]));
    assert_eq!(read(&ws, "forge-bin/pkg/os.txt"), "win-arm\n");
    assert_eq!(read(&ws, "forge-bin/pkg/flavour.txt"), "chocolate\n");
    // Back to the host: the plan cache tells the platforms apart.
    ok(ws.forge(&["build", "//pkg:os"]));
    assert_eq!(
        read(&ws, "forge-bin/pkg/os.txt"),
        format!("{}\n", host_os())
    );
}

#[test]
fn a_bad_platform_is_named() {
    let ws = workspace();
    let run = ws.forge(&["build", "--platforms=//p:nope", "//pkg:os"]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr
            .contains("no such target '//p:nope', named as the target platform (--platforms)"),
        "{}",
        run.both()
    );
    let run = ws.forge(&["build", "--platforms=//p:vanilla", "//pkg:os"]);
    assert_ne!(run.code, 0, "{}", run.both());
    assert!(
        run.stderr
            .contains("'//p:vanilla' is a constraint_value rule, not a platform"),
        "{}",
        run.both()
    );
    let run = ws.forge(&["build", "--platforms=//p:two_oses", "//pkg:os"]);
    assert_ne!(run.code, 0, "{}", run.both());
    assert!(
        run.stderr.contains(
            "platform '//p:two_oses' has more than one value for the constraint_setting \
             '@platforms//os:os'"
        ),
        "{}",
        run.both()
    );
}

fn compatibility_workspace() -> Workspace {
    let ws = workspace();
    ws.write(
        "inc/BUILD",
        r#"
genrule(
    name = "win_only",
    outs = ["win.txt"],
    cmd = "echo win > $@",
    target_compatible_with = ["@platforms//os:windows"],
)

genrule(name = "uses_win", srcs = [":win.txt"], outs = ["uses.txt"], cmd = "cat $< > $@")

genrule(
    name = "never",
    outs = ["never.txt"],
    cmd = "echo never > $@",
    target_compatible_with = ["@platforms//:incompatible"],
)

genrule(name = "fine", outs = ["fine.txt"], cmd = "echo fine > $@")

sh_test(
    name = "win_test",
    srcs = ["t.sh"],
    target_compatible_with = select({
        "@platforms//os:windows": [],
        "//conditions:default": ["@platforms//:incompatible"],
    }),
)

sh_test(name = "plain_test", srcs = ["t.sh"])
"#,
    );
    ws.write("inc/t.sh", "#!/bin/sh\nexit 0\n");
    std::fs::set_permissions(
        ws.root().join("inc/t.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    ws
}

#[test]
fn wildcards_skip_incompatible_targets_and_what_depends_on_them() {
    let ws = compatibility_workspace();
    let run = ok(ws.forge(&["build", "//inc:all"]));
    assert!(ws.root().join("forge-bin/inc/fine.txt").is_file());
    for skipped in ["win.txt", "uses.txt", "never.txt"] {
        assert!(
            !ws.root().join("forge-bin/inc").join(skipped).exists(),
            "{skipped} was built:\n{}",
            run.both()
        );
    }
    // Bazel says nothing of skipped build targets.
    assert!(!run.stderr.contains("incompatible"), "{}", run.both());
    // For the windows platform, the windows targets build; @platforms//:incompatible never.
    ok(ws.forge(&["build", "--platforms=//p:win", "//inc/..."]));
    assert_eq!(read(&ws, "forge-bin/inc/uses.txt"), "win\n");
    assert!(!ws.root().join("forge-bin/inc/never.txt").exists());
}

#[test]
fn an_incompatible_test_is_reported_skipped() {
    let ws = compatibility_workspace();
    let run = ok(ws.forge(&["test", "//inc:all"]));
    let skipped = run
        .stdout
        .lines()
        .chain(run.stderr.lines())
        .find(|l| l.starts_with("//inc:win_test"))
        .unwrap_or_else(|| panic!("no summary line:\n{}", run.both()))
        .to_owned();
    assert!(skipped.ends_with(" SKIPPED"), "{skipped}");
    assert!(
        run.both()
            .contains("Executed 1 out of 2 tests: 1 test passes and 1 was skipped."),
        "{}",
        run.both()
    );
}

#[test]
fn naming_an_incompatible_target_is_an_error_with_the_dependency_chain() {
    let ws = compatibility_workspace();
    let run = ws.forge(&["build", "//inc:uses_win"]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr.contains(
            "ERROR: Target //inc:uses_win is incompatible and cannot be built, but was \
             explicitly requested.\nDependency chain:\n    //inc:uses_win\n    \
             //inc:win_only   <-- target platform (@local_config_platform//:host) didn't \
             satisfy constraint @platforms//os:windows"
        ),
        "{}",
        run.both()
    );
    let run = ws.forge(&["build", "--platforms=//p:win", "//inc:never"]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr.contains(
            "//inc:never   <-- target platform (//p:win) didn't satisfy constraint \
             @platforms//:incompatible"
        ),
        "{}",
        run.both()
    );
}

#[test]
fn rules_read_platform_providers_and_ask_about_the_target_platform() {
    let ws = workspace();
    ws.write(
        "ask/defs.bzl",
        r#"
def _impl(ctx):
    windows = ctx.attr._windows[platform_common.ConstraintValueInfo]
    vanilla = ctx.attr._vanilla[platform_common.ConstraintValueInfo]
    platform = ctx.attr.platform[platform_common.PlatformInfo]
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    ctx.actions.write(out, "%s %s | %s of %s, default %s | %s\n" % (
        ctx.target_platform_has_constraint(windows),
        ctx.target_platform_has_constraint(vanilla),
        vanilla.label,
        vanilla.constraint.label,
        vanilla.constraint.default_constraint_value,
        platform.label,
    ))
    return [DefaultInfo(files = depset([out]))]

ask = rule(_impl, attrs = {
    "platform": attr.label(providers = [platform_common.PlatformInfo]),
    "_windows": attr.label(default = "@platforms//os:windows"),
    "_vanilla": attr.label(default = "//p:vanilla"),
})

def _make_impl(ctx):
    return [platform_common.ConstraintValueInfo(label = ctx.label)]

make = rule(_make_impl)
"#,
    );
    ws.write(
        "ask/BUILD",
        "load(':defs.bzl', 'ask', 'make')\nask(name = 'q', platform = '//p:win_arm')\nmake(name = 'm')\n",
    );
    ok(ws.forge(&["build", "//ask:q"]));
    assert_eq!(
        read(&ws, "forge-bin/ask/q.txt"),
        "False True | //p:vanilla of //p:flavour, default //p:vanilla | //p:win_arm\n"
    );
    ok(ws.forge(&["build", "--platforms=//p:win_arm", "//ask:q"]));
    assert!(
        read(&ws, "forge-bin/ask/q.txt").starts_with("True False | "),
        "{}",
        read(&ws, "forge-bin/ask/q.txt")
    );
    // As in Bazel, rules cannot make these providers.
    let run = ws.forge(&["build", "//ask:m"]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr
            .contains("forge does not support creating `ConstraintValueInfo`"),
        "{}",
        run.both()
    );
}

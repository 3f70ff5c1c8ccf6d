//! Toolchain resolution: `toolchain_type`, `toolchain()`, `register_toolchains` patterns,
//! `--extra_toolchains`, `register_execution_platforms`, `rule(toolchains = ...)` with
//! mandatory and optional (`config_common.toolchain_type`) types, `exec_compatible_with` on
//! rules and targets, and `ctx.toolchains[type]`. Each test builds a workspace written here
//! with the real binary and reads which toolchain a rule got.

mod common;

use common::{Run, Workspace};

fn ok(run: Run) -> Run {
    assert_eq!(run.code, 0, "forge failed:\n{}", run.both());
    run
}

fn read(ws: &Workspace, path: &str) -> String {
    std::fs::read_to_string(ws.root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A compiler toolchain type with a Windows, a Linux and an arm-hosted Linux toolchain; an
/// optional "linter" type nobody implements; `//app:u` writes the compiler it got.
fn workspace(workspace_file: &str) -> Workspace {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", workspace_file);
    ws.write(
        "p/BUILD",
        r#"
platform(name = "linux", constraint_values = ["@platforms//os:linux", "@platforms//cpu:x86_64"])
platform(name = "windows", constraint_values = ["@platforms//os:windows", "@platforms//cpu:x86_64"])
platform(name = "mac", constraint_values = ["@platforms//os:macos"])
platform(name = "arm_builder", constraint_values = ["@platforms//os:linux", "@platforms//cpu:arm"])
"#,
    );
    ws.write(
        "tc/defs.bzl",
        r#"
def _compiler_impl(ctx):
    return [platform_common.ToolchainInfo(compiler = ctx.attr.compiler)]

compiler = rule(_compiler_impl, attrs = {"compiler": attr.string()})

def _use_impl(ctx):
    tc = ctx.toolchains["//tc:compiler_type"]
    linter = ctx.toolchains[Label("//tc:linter_type")]
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    ctx.actions.write(out, "%s %s\n" % (tc.compiler, "no-linter" if linter == None else "linter"))
    return [DefaultInfo(files = depset([out]))]

use = rule(
    _use_impl,
    toolchains = [
        "//tc:compiler_type",
        config_common.toolchain_type("//tc:linter_type", mandatory = False),
    ],
)

use_on_x86 = rule(
    _use_impl,
    toolchains = ["//tc:compiler_type", config_common.toolchain_type("//tc:linter_type", mandatory = False)],
    exec_compatible_with = ["@platforms//cpu:x86_64"],
)

def _peek_impl(ctx):
    return [ctx.toolchains["//tc:linter_type"]]

peek = rule(_peek_impl, toolchains = ["//tc:compiler_type"])
"#,
    );
    ws.write(
        "tc/BUILD",
        r#"
load(":defs.bzl", "compiler")

package(default_visibility = ["//visibility:public"])

toolchain_type(name = "compiler_type")
toolchain_type(name = "linter_type")

compiler(name = "msvc", compiler = "msvc")
compiler(name = "gcc", compiler = "gcc")
compiler(name = "cross_gcc", compiler = "cross-gcc")

toolchain(
    name = "windows",
    toolchain_type = ":compiler_type",
    toolchain = ":msvc",
    target_compatible_with = ["@platforms//os:windows"],
)

toolchain(
    name = "linux",
    toolchain_type = ":compiler_type",
    toolchain = ":gcc",
    target_compatible_with = ["@platforms//os:linux"],
)
"#,
    );
    ws.write(
        "tc/cross/BUILD",
        r#"
toolchain(
    name = "cross",
    toolchain_type = "//tc:compiler_type",
    toolchain = "//tc:cross_gcc",
    exec_compatible_with = ["@platforms//cpu:arm"],
    target_compatible_with = ["@platforms//os:linux"],
)
"#,
    );
    ws.write(
        "app/BUILD",
        r#"
load("//tc:defs.bzl", "peek", "use", "use_on_x86")

use(name = "u")
use(name = "u_x86", exec_compatible_with = ["@platforms//cpu:x86_64"])
use_on_x86(name = "rule_x86")
peek(name = "peek")
"#,
    );
    ws
}

#[test]
fn two_toolchains_chosen_by_the_target_platform() {
    let ws = workspace("register_toolchains(\"//tc:all\")\n");
    ok(ws.forge(&["build", "--platforms=//p:linux", "//app:u"]));
    assert_eq!(read(&ws, "forge-bin/app/u.txt"), "gcc no-linter\n");
    ok(ws.forge(&["build", "--platforms=//p:windows", "//app:u"]));
    assert_eq!(read(&ws, "forge-bin/app/u.txt"), "msvc no-linter\n");
}

#[test]
fn no_matching_toolchain_lists_what_was_tried() {
    let ws = workspace("register_toolchains(\"//tc:all\")\n");
    let run = ws.forge(&["build", "--platforms=//p:mac", "//app:u"]);
    assert_eq!(run.code, 1, "{}", run.both());
    for expected in [
        "in use rule //app:u: while resolving toolchains: no matching toolchains found for \
         types //tc:compiler_type (target platform //p:mac",
        "rejected toolchain //tc:linux (implementation //tc:gcc): the target platform \
         //p:mac lacks @platforms//os:linux",
        "rejected toolchain //tc:windows (implementation //tc:msvc): the target platform \
         //p:mac lacks @platforms//os:windows",
        "register a matching toolchain with register_toolchains() in WORKSPACE or \
         --extra_toolchains",
    ] {
        assert!(run.stderr.contains(expected), "{expected}\n{}", run.both());
    }
    // The optional linter type is not an error; only the mandatory one is listed.
    assert!(!run.stderr.contains("linter_type"), "{}", run.both());
}

#[test]
fn execution_platforms_are_tried_in_order_and_exec_constraints_skip_them() {
    // The arm builder is registered, so it is tried before the host: the cross toolchain,
    // registered first and runnable only there, wins for a Linux target.
    let ws = workspace(
        "register_execution_platforms(\"//p:arm_builder\")\n\
         register_toolchains(\"//tc/cross/...\", \"//tc/...\")\n",
    );
    ok(ws.forge(&["build", "--platforms=//p:linux", "//app:u"]));
    assert_eq!(read(&ws, "forge-bin/app/u.txt"), "cross-gcc no-linter\n");
    // A target (or a rule) that needs an x86_64 execution platform skips the arm builder
    // and gets the host's toolchain.
    let host_x86 = std::env::consts::ARCH == "x86_64";
    let target = ws.forge(&[
        "build",
        "--platforms=//p:linux",
        "//app:u_x86",
        "//app:rule_x86",
    ]);
    if host_x86 {
        ok(target);
        assert_eq!(read(&ws, "forge-bin/app/u_x86.txt"), "gcc no-linter\n");
        assert_eq!(read(&ws, "forge-bin/app/rule_x86.txt"), "gcc no-linter\n");
    } else {
        assert_eq!(target.code, 1, "{}", target.both());
        assert!(
            target
                .stderr
                .contains("skipped: the target needs @platforms//cpu:x86_64 of it"),
            "{}",
            target.both()
        );
    }
}

#[test]
fn extra_toolchains_come_before_the_registered_ones() {
    let ws = workspace(
        "register_execution_platforms(\"//p:arm_builder\")\n\
         register_toolchains(\"//tc:linux\")\n",
    );
    // With only //tc:linux registered, the arm builder has no toolchain and the host wins.
    ok(ws.forge(&["build", "--platforms=//p:linux", "//app:u"]));
    assert_eq!(read(&ws, "forge-bin/app/u.txt"), "gcc no-linter\n");
    ok(ws.forge(&[
        "build",
        "--platforms=//p:linux",
        "--extra_toolchains=//tc/cross:cross",
        "//app:u",
    ]));
    assert_eq!(read(&ws, "forge-bin/app/u.txt"), "cross-gcc no-linter\n");
    // An extra toolchain that is not a toolchain is named.
    let run = ws.forge(&["build", "--extra_toolchains=//tc:gcc", "//app:u"]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr.contains(
            "invalid registered toolchain '//tc:gcc': it is a compiler rule, not a toolchain"
        ),
        "{}",
        run.both()
    );
}

#[test]
fn an_optional_toolchain_that_matches_is_given() {
    let ws = workspace("register_toolchains(\"//tc:all\", \"//lint:all\")\n");
    ws.write(
        "lint/BUILD",
        r#"
load("//tc:defs.bzl", "compiler")
compiler(name = "impl", compiler = "lint")
toolchain(name = "lint", toolchain_type = "//tc:linter_type", toolchain = ":impl")
"#,
    );
    ok(ws.forge(&["build", "--platforms=//p:linux", "//app:u"]));
    assert_eq!(read(&ws, "forge-bin/app/u.txt"), "gcc linter\n");
}

#[test]
fn ctx_toolchains_refuses_a_type_the_rule_did_not_request() {
    let ws = workspace("register_toolchains(\"//tc:all\")\n");
    let run = ws.forge(&["build", "--platforms=//p:linux", "//app:peek"]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr.contains(
            "toolchain type //tc:linter_type was not requested by this rule; add it to the \
             rule's `toolchains` (requested: //tc:compiler_type)"
        ),
        "{}",
        run.both()
    );
}

#[test]
fn a_toolchain_implementation_without_toolchain_info_is_named() {
    let ws = workspace("register_toolchains(\"//bad:all\")\n");
    ws.write(
        "bad/BUILD",
        r#"
filegroup(name = "not_a_toolchain")
toolchain(name = "bad", toolchain_type = "//tc:compiler_type", toolchain = ":not_a_toolchain")
"#,
    );
    let run = ws.forge(&["build", "//app:u"]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr.contains(
            "toolchain '//bad:not_a_toolchain', chosen for type '//tc:compiler_type', does not \
             provide platform_common.ToolchainInfo"
        ),
        "{}",
        run.both()
    );
}

#[test]
fn the_first_registered_toolchain_usable_on_an_execution_platform_wins() {
    // //tc:linux has no execution constraints, so on the arm builder (tried first) it
    // comes before the cross toolchain registered after it.
    let ws = workspace(
        "register_execution_platforms(\"//p:arm_builder\")\n\
         register_toolchains(\"//tc/...\")\n",
    );
    ok(ws.forge(&["build", "--platforms=//p:linux", "//app:u"]));
    assert_eq!(read(&ws, "forge-bin/app/u.txt"), "gcc no-linter\n");
}

#[test]
fn extra_execution_platforms_come_before_the_registered_ones() {
    // The cross toolchain runs only on the arm builder; given on the command line, the
    // builder is tried first and the cross toolchain (registered first) wins.
    let ws = workspace("register_toolchains(\"//tc/cross:all\", \"//tc:all\")\n");
    ok(ws.forge(&["build", "--platforms=//p:linux", "//app:u"]));
    assert_eq!(read(&ws, "forge-bin/app/u.txt"), "gcc no-linter\n");
    ok(ws.forge(&[
        "build",
        "--platforms=//p:linux",
        "--extra_execution_platforms=//p:arm_builder",
        "//app:u",
    ]));
    assert_eq!(read(&ws, "forge-bin/app/u.txt"), "cross-gcc no-linter\n");
}

#[test]
fn the_default_shell_toolchain_is_registered_after_the_workspaces() {
    let ws = workspace("");
    ws.write(
        "sh/defs.bzl",
        r#"
def _impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    ctx.actions.write(out, ctx.toolchains["@bazel_tools//tools/sh:toolchain_type"].path + "\n")
    return [DefaultInfo(files = depset([out]))]

shell_path = rule(_impl, toolchains = ["@bazel_tools//tools/sh:toolchain_type"])
"#,
    );
    ws.write(
        "sh/BUILD",
        r#"
load(":defs.bzl", "shell_path")
load("@bazel_tools//tools/sh:sh_toolchain.bzl", "sh_toolchain")

shell_path(name = "which")

sh_toolchain(name = "zsh", path = "/bin/zsh")

toolchain(name = "zsh_toolchain", toolchain = ":zsh", toolchain_type = "@bazel_tools//tools/sh:toolchain_type")
"#,
    );
    ok(ws.forge(&["build", "//sh:which"]));
    assert_eq!(read(&ws, "forge-bin/sh/which.txt"), "/bin/bash\n");
    // A shell toolchain the workspace registers comes first.
    ws.write("WORKSPACE", "register_toolchains(\"//sh:zsh_toolchain\")\n");
    ok(ws.forge(&["build", "//sh:which"]));
    assert_eq!(read(&ws, "forge-bin/sh/which.txt"), "/bin/zsh\n");
}

//! `-c`/`--compilation_mode`, `--cpu` and the platform flags' errors: each test builds a
//! workspace written here with the real binary and checks the output directory, the
//! `forge-bin` link, `$(COMPILATION_MODE)`/`$(TARGET_CPU)`, `config_setting` and the caches.

mod common;

use common::{Run, Workspace};

fn ok(run: Run) -> Run {
    assert_eq!(run.code, 0, "forge failed:\n{}", run.both());
    run
}

fn read(ws: &Workspace, path: &str) -> String {
    std::fs::read_to_string(ws.root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The host's CPU as Bazel names it, the default of `--cpu`.
fn host_cpu() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "k8",
        other => other,
    }
}

/// A genrule printing the configuration's make variables, and one choosing by config_setting.
fn workspace() -> Workspace {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "");
    ws.write(
        "pkg/BUILD",
        r#"
genrule(
    name = "vars",
    outs = ["vars.txt"],
    cmd = "echo $(COMPILATION_MODE) $(TARGET_CPU) > $@",
    visibility = ["//visibility:public"],
)

config_setting(name = "opt", values = {"compilation_mode": "opt"})
config_setting(name = "dbg", values = {"compilation_mode": "dbg"})
config_setting(name = "arm", values = {"cpu": "armv7"})

genrule(
    name = "chosen",
    outs = ["chosen.txt"],
    cmd = select({
        ":opt": "echo optimized > $@",
        ":dbg": "echo debugging > $@",
        ":arm": "echo arm > $@",
        "//conditions:default": "echo default > $@",
    }),
)
"#,
    );
    ws
}

#[test]
fn opt_builds_into_its_own_directory_and_forge_bin_points_there() {
    let ws = workspace();
    let run = ok(ws.forge(&["build", "-c", "opt", "//pkg:vars"]));
    let cpu = host_cpu();
    let expected = format!("opt {cpu}\n");
    assert_eq!(
        read(&ws, &format!("forge-out/{cpu}-opt/bin/pkg/vars.txt")),
        expected
    );
    assert_eq!(read(&ws, "forge-bin/pkg/vars.txt"), expected);
    let link = std::fs::read_link(ws.root().join("forge-bin")).unwrap();
    assert!(
        link.ends_with(format!("forge-out/{cpu}-opt/bin")),
        "forge-bin -> {}",
        link.display()
    );
    assert!(
        !ws.root()
            .join(format!("forge-out/{cpu}-fastbuild/bin/pkg/vars.txt"))
            .exists(),
        "{}",
        run.both()
    );
    // Bazel reads the mode without regard to case.
    ok(ws.forge(&["build", "-c", "OPT", "//pkg:vars"]));
    assert_eq!(read(&ws, "forge-bin/pkg/vars.txt"), expected);
    // The long form, with `=`, and dbg.
    ok(ws.forge(&["build", "--compilation_mode=dbg", "//pkg:vars"]));
    assert_eq!(
        read(&ws, &format!("forge-out/{cpu}-dbg/bin/pkg/vars.txt")),
        format!("dbg {cpu}\n")
    );
}

#[test]
fn cpu_names_the_output_directory_and_target_cpu() {
    let ws = workspace();
    ok(ws.forge(&["build", "--cpu=armv7", "//pkg:vars", "//pkg:chosen"]));
    assert_eq!(
        read(&ws, "forge-out/armv7-fastbuild/bin/pkg/vars.txt"),
        "fastbuild armv7\n"
    );
    assert_eq!(read(&ws, "forge-bin/pkg/chosen.txt"), "arm\n");
}

#[test]
fn config_setting_on_compilation_mode_chooses_the_branch() {
    let ws = workspace();
    let cases = [
        (None, "default\n"),
        (Some("opt"), "optimized\n"),
        (Some("dbg"), "debugging\n"),
    ];
    for (mode, expected) in cases {
        let mut args = vec!["build", "//pkg:chosen"];
        if let Some(mode) = mode {
            args.extend(["-c", mode]);
        }
        ok(ws.forge(&args));
        assert_eq!(read(&ws, "forge-bin/pkg/chosen.txt"), expected, "{mode:?}");
    }
}

#[test]
fn switching_modes_back_and_forth_keeps_both_outputs() {
    let ws = workspace();
    let cpu = host_cpu();
    ok(ws.forge(&["build", "//pkg:vars"]));
    let opt = ok(ws.forge(&["build", "-c", "opt", "//pkg:vars"]));
    assert!(opt.stderr.contains("1 action executed"), "{}", opt.both());
    // Back to fastbuild: its output is still there, nothing runs; the same for opt.
    for args in [
        vec!["build", "//pkg:vars"],
        vec!["build", "-c", "opt", "//pkg:vars"],
    ] {
        let again = ok(ws.forge(&args));
        assert!(
            again.stderr.contains("0 actions executed"),
            "{args:?}: {}",
            again.both()
        );
    }
    assert_eq!(read(&ws, "forge-bin/pkg/vars.txt"), format!("opt {cpu}\n"));
    assert_eq!(
        read(&ws, &format!("forge-out/{cpu}-fastbuild/bin/pkg/vars.txt")),
        format!("fastbuild {cpu}\n")
    );
}

#[test]
fn an_unknown_compilation_mode_is_named() {
    let ws = workspace();
    let run = ws.forge(&["build", "-c", "fast", "//pkg:vars"]);
    assert_eq!(run.code, 2, "{}", run.both());
    assert!(
        run.stderr.contains(
            "While parsing option --compilation_mode=fast: Not a valid compilation mode: \
             'fast' (should be fastbuild, dbg or opt)"
        ),
        "{}",
        run.both()
    );
}

#[test]
fn platform_flags_name_targets_that_must_exist() {
    let ws = workspace();
    for (flag, expected) in [
        (
            "--platforms=//x",
            "no such target '//x:x', named as the target platform (--platforms)",
        ),
        ("--host_platform=//x", "no such target '//x:x'"),
        (
            "--extra_toolchains=//x:t",
            "invalid toolchain pattern '//x:t' (--extra_toolchains)",
        ),
    ] {
        let run = ws.forge(&["build", flag, "//pkg:vars"]);
        assert_eq!(run.code, 1, "{flag}: {}", run.both());
        assert!(run.stderr.contains(expected), "{flag}: {}", run.both());
    }
    // The empty value is the default and is taken.
    ok(ws.forge(&["build", "--platforms=", "//pkg:vars"]));
}

#[test]
fn an_rc_file_sets_the_compilation_mode() {
    let ws = workspace();
    ws.write(".bazelrc", "build -c opt\n");
    ok(ws.forge(&["build", "//pkg:vars", "//pkg:chosen"]));
    assert_eq!(
        read(&ws, "forge-bin/pkg/vars.txt"),
        format!("opt {}\n", host_cpu())
    );
    assert_eq!(read(&ws, "forge-bin/pkg/chosen.txt"), "optimized\n");
    // The long form; the command line wins over the rc file.
    ws.write(".bazelrc", "build --compilation_mode=dbg\n");
    ok(ws.forge(&["build", "//pkg:chosen"]));
    assert_eq!(read(&ws, "forge-bin/pkg/chosen.txt"), "debugging\n");
    ok(ws.forge(&["build", "-c", "fastbuild", "//pkg:chosen"]));
    assert_eq!(read(&ws, "forge-bin/pkg/chosen.txt"), "default\n");
}

#[test]
fn test_and_run_take_the_compilation_mode() {
    let ws = workspace();
    let cpu = host_cpu();
    ws.write(
        "app/check.sh",
        "#!/bin/sh\nread mode cpu < \"$1\"\necho \"mode=$mode\"\n[ \"$mode\" = \"$2\" ]\n",
    );
    ws.write(
        "app/BUILD",
        r#"
sh_test(
    name = "t",
    srcs = ["check.sh"],
    data = ["//pkg:vars"],
    args = ["pkg/vars.txt", "opt"],
)

sh_binary(
    name = "r",
    srcs = ["check.sh"],
    data = ["//pkg:vars"],
    args = ["pkg/vars.txt", "dbg"],
)
"#,
    );
    let failed = ws.forge(&["test", "//app:t"]);
    assert_eq!(
        failed.code,
        3,
        "a fastbuild test must fail: {}",
        failed.both()
    );
    let fastbuild_log = format!("forge-out/{cpu}-fastbuild/testlogs/app/t/test.log");
    let log = read(&ws, &fastbuild_log);
    assert!(log.contains("mode=fastbuild"), "{log}");
    ok(ws.forge(&["test", "-c", "opt", "//app:t"]));
    let log = read(&ws, &format!("forge-out/{cpu}-opt/testlogs/app/t/test.log"));
    assert!(log.contains("mode=opt"), "{log}");
    assert_eq!(read(&ws, "forge-testlogs/app/t/test.log"), log);
    let run = ok(ws.forge(&["run", "--compilation_mode=dbg", "//app:r"]));
    assert!(run.stdout.contains("mode=dbg"), "{}", run.both());
}

#[test]
fn a_starlark_rule_reads_the_mode_in_ctx_var() {
    let ws = workspace();
    ws.write(
        "rules/defs.bzl",
        r#"
def _impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    ctx.actions.write(out, "%s %s %s\n" % (
        ctx.var["COMPILATION_MODE"],
        ctx.var["TARGET_CPU"],
        ctx.bin_dir.path,
    ))
    return [DefaultInfo(files = depset([out]))]

mode_file = rule(implementation = _impl)
"#,
    );
    ws.write(
        "rules/BUILD",
        "load(\":defs.bzl\", \"mode_file\")\nmode_file(name = \"m\")\n",
    );
    ok(ws.forge(&["build", "-c", "dbg", "--cpu=ppc", "//rules:m"]));
    assert_eq!(
        read(&ws, "forge-out/ppc-dbg/bin/rules/m.txt"),
        "dbg ppc forge-out/ppc-dbg/bin\n"
    );
}

#[test]
fn info_names_the_directories_of_the_mode_asked_for() {
    let ws = workspace();
    let cpu = host_cpu();
    let fastbuild = ok(ws.forge(&["info", "forge-bin"]));
    assert!(
        fastbuild
            .stdout
            .trim_end()
            .ends_with(&format!("/{cpu}-fastbuild/bin")),
        "{}",
        fastbuild.both()
    );
    let opt = ok(ws.forge(&["info", "-c", "opt", "bazel-bin"]));
    assert!(
        opt.stdout.trim_end().ends_with(&format!("/{cpu}-opt/bin")),
        "{}",
        opt.both()
    );
    let arm = ok(ws.forge(&[
        "info",
        "--cpu=armv7",
        "--compilation_mode=dbg",
        "forge-testlogs",
    ]));
    assert!(
        arm.stdout.trim_end().ends_with("/armv7-dbg/testlogs"),
        "{}",
        arm.both()
    );
    // `info` inherits build's rc options, as in Bazel.
    ws.write(".bazelrc", "build -c opt\n");
    let rc = ok(ws.forge(&["info", "forge-bin"]));
    assert!(
        rc.stdout.trim_end().ends_with(&format!("/{cpu}-opt/bin")),
        "{}",
        rc.both()
    );
}

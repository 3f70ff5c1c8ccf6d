//! Configuration transitions with the real binary on workspaces written here: outgoing and
//! incoming Starlark transitions on native options and build settings (their own `-ST-`
//! output directories, select() flipping), split transitions and `ctx.split_attr`, tools in
//! the exec configuration built once, `analysis_test_transition` with
//! `allow_analysis_failures`, and the errors Bazel gives for a wrong transition.

mod common;

use common::{Run, Workspace, config_dir};

fn ok(run: Run) -> Run {
    assert_eq!(run.code, 0, "forge failed:\n{}", run.both());
    run
}

fn read(ws: &Workspace, path: &str) -> String {
    std::fs::read_to_string(ws.root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The configuration directories under `forge-out/` whose names start with `prefix`.
fn config_dirs(ws: &Workspace, prefix: &str) -> Vec<String> {
    let mut dirs: Vec<String> = std::fs::read_dir(ws.root().join("forge-out"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect();
    dirs.sort();
    dirs
}

/// `k8` on x86_64: the first part of every target configuration's directory.
fn cpu() -> String {
    config_dir()
        .split('-')
        .next()
        .expect("<cpu>-<mode>")
        .to_owned()
}

const DEFS: &str = r#"
FlavorInfo = provider(fields = ["value"])

def _flavor_impl(ctx):
    return [FlavorInfo(value = ctx.build_setting_value)]

flavor_flag = rule(
    implementation = _flavor_impl,
    build_setting = config.string(flag = True),
)

def _to_opt_impl(settings, attr):
    return {
        "//command_line_option:compilation_mode": "opt",
        "//pkg:flavor": attr.flavor,
    }

to_opt = transition(
    implementation = _to_opt_impl,
    inputs = [],
    outputs = ["//command_line_option:compilation_mode", "//pkg:flavor"],
)

def _copy(ctx, srcs, out):
    ctx.actions.run_shell(
        inputs = srcs,
        outputs = [out],
        command = "cat %s > %s" % (" ".join([f.path for f in srcs]), out.path),
    )

def _with_opt_impl(ctx):
    # A 1:1 transition still makes ctx.attr a list, as in Bazel.
    if type(ctx.attr.dep) != "list" or len(ctx.attr.dep) != 1:
        fail("expected a list of one target, got %r" % ctx.attr.dep)
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    _copy(ctx, ctx.files.dep, out)
    return [DefaultInfo(files = depset([out]))]

with_opt = rule(
    implementation = _with_opt_impl,
    attrs = {
        "dep": attr.label(cfg = to_opt),
        "flavor": attr.string(default = "plain"),
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    },
)

def _modes_impl(settings, attr):
    return {
        "debugging": {"//command_line_option:compilation_mode": "dbg"},
        "optimized": {"//command_line_option:compilation_mode": "opt"},
    }

modes = transition(
    implementation = _modes_impl,
    inputs = [],
    outputs = ["//command_line_option:compilation_mode"],
)

def _split_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    lines = ["attr: %d" % len(ctx.attr.deps)]
    for key, deps in sorted(ctx.split_attr.deps.items()):
        for dep in deps:
            for f in dep.files.to_list():
                lines.append("%s: %s" % (key, f.path))
    ctx.actions.write(out, "\n".join(lines) + "\n")
    return [DefaultInfo(files = depset([out] + ctx.files.deps))]

split = rule(
    implementation = _split_impl,
    attrs = {
        "deps": attr.label_list(cfg = modes),
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    },
)

def _dbg_impl(settings, attr):
    return {"//command_line_option:compilation_mode": "dbg"}

to_dbg = transition(
    implementation = _dbg_impl,
    inputs = ["//command_line_option:compilation_mode"],
    outputs = ["//command_line_option:compilation_mode"],
)

def _mode_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".mode")
    ctx.actions.write(out, ctx.var["COMPILATION_MODE"] + "\n")
    return [DefaultInfo(files = depset([out]))]

# An incoming transition: every target of this rule is built in dbg.
in_dbg = rule(
    implementation = _mode_impl,
    cfg = to_dbg,
    attrs = {
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    },
)

def _use_tool_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".out")
    ctx.actions.run(
        executable = ctx.executable.tool,
        arguments = [out.path, ctx.var["COMPILATION_MODE"]],
        outputs = [out],
    )
    return [DefaultInfo(files = depset([out]))]

use_tool = rule(
    implementation = _use_tool_impl,
    attrs = {"tool": attr.label(executable = True, cfg = "exec", default = "//pkg:tool")},
)

def _in_dbg_dep_impl(ctx):
    return [DefaultInfo(files = depset(ctx.files.dep))]

through_dbg = rule(
    implementation = _in_dbg_dep_impl,
    attrs = {
        "dep": attr.label(cfg = to_dbg),
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    },
)
"#;

const BUILD: &str = r#"
load(":defs.bzl", "flavor_flag", "in_dbg", "split", "through_dbg", "use_tool", "with_opt")

flavor_flag(name = "flavor", build_setting_default = "plain")

config_setting(name = "sweet", flag_values = {":flavor": "sweet"})

genrule(
    name = "vars",
    outs = ["vars.txt"],
    cmd = "echo $(COMPILATION_MODE) " + select({
        ":sweet": "sweet",
        "//conditions:default": "plain",
    }) + " > $@",
)

with_opt(name = "top", dep = ":vars", flavor = "sweet")

split(name = "both", deps = [":vars"])

in_dbg(name = "incoming")

sh_binary(name = "tool", srcs = ["tool.sh"])

use_tool(name = "direct")

use_tool(name = "transitioned")

through_dbg(name = "via_dbg", dep = ":transitioned")
"#;

fn workspace() -> Workspace {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "");
    ws.write("pkg/defs.bzl", DEFS);
    ws.write("pkg/BUILD", BUILD);
    ws.write("pkg/tool.sh", "#!/bin/bash\necho \"tool in $2\" > \"$1\"\n");
    std::fs::set_permissions(
        ws.root().join("pkg/tool.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    ws
}

#[test]
fn an_outgoing_transition_builds_the_dependency_in_its_own_directory_and_flips_its_select() {
    let ws = workspace();
    ok(ws.forge(&["build", "//pkg:top"]));
    // The dependency was built with -c opt and the flag set, in a `-ST-<hash>` directory.
    let st = config_dirs(&ws, &format!("{}-opt-ST-", cpu()));
    assert_eq!(st.len(), 1, "{st:?}");
    let hash = st[0].rsplit('-').next().unwrap();
    assert_eq!(hash.len(), 12, "{}", st[0]);
    assert!(hash.chars().all(|c| c.is_ascii_hexdigit()), "{}", st[0]);
    assert_eq!(
        read(&ws, &format!("forge-out/{}/bin/pkg/vars.txt", st[0])),
        "opt sweet\n"
    );
    // The rule itself stays in the top-level configuration.
    assert_eq!(read(&ws, "forge-bin/pkg/top.txt"), "opt sweet\n");
    // Built directly, the genrule is in the top-level configuration, with the defaults.
    ok(ws.forge(&["build", "//pkg:vars"]));
    assert_eq!(read(&ws, "forge-bin/pkg/vars.txt"), "fastbuild plain\n");
}

#[test]
fn a_split_transition_builds_each_branch_and_ctx_split_attr_names_them() {
    let ws = workspace();
    ok(ws.forge(&["build", "//pkg:both"]));
    let dbg = config_dirs(&ws, &format!("{}-dbg-ST-", cpu()));
    let opt = config_dirs(&ws, &format!("{}-opt-ST-", cpu()));
    assert_eq!((dbg.len(), opt.len()), (1, 1), "{dbg:?} {opt:?}");
    assert_eq!(
        read(&ws, "forge-bin/pkg/both.txt"),
        format!(
            "attr: 2\ndebugging: forge-out/{}/bin/pkg/vars.txt\noptimized: forge-out/{}/bin/pkg/vars.txt\n",
            dbg[0], opt[0]
        )
    );
    assert_eq!(
        read(&ws, &format!("forge-out/{}/bin/pkg/vars.txt", dbg[0])),
        "dbg plain\n"
    );
    assert_eq!(
        read(&ws, &format!("forge-out/{}/bin/pkg/vars.txt", opt[0])),
        "opt plain\n"
    );
}

#[test]
fn an_incoming_transition_on_a_rule_applies_to_its_targets() {
    let ws = workspace();
    ok(ws.forge(&["build", "//pkg:incoming"]));
    let dbg = config_dirs(&ws, &format!("{}-dbg-ST-", cpu()));
    assert_eq!(dbg.len(), 1, "{dbg:?}");
    assert_eq!(
        read(&ws, &format!("forge-out/{}/bin/pkg/incoming.mode", dbg[0])),
        "dbg\n"
    );
    assert!(!ws.root().join("forge-bin/pkg/incoming.mode").exists());
}

#[test]
fn an_exec_tool_shared_by_two_configurations_is_built_once() {
    let ws = workspace();
    ok(ws.forge(&["build", "//pkg:direct", "//pkg:via_dbg"]));
    // Two target configurations used the tool...
    assert_eq!(read(&ws, "forge-bin/pkg/direct.out"), "tool in fastbuild\n");
    let dbg = config_dirs(&ws, &format!("{}-dbg-ST-", cpu()));
    assert_eq!(dbg.len(), 1, "{dbg:?}");
    assert_eq!(
        read(
            &ws,
            &format!("forge-out/{}/bin/pkg/transitioned.out", dbg[0])
        ),
        "tool in dbg\n"
    );
    // ...and it was built once, in the one exec configuration.
    let exec = config_dirs(&ws, &format!("{}-opt-exec-", cpu()));
    assert_eq!(exec.len(), 1, "{exec:?}");
    assert!(
        ws.root()
            .join(format!("forge-out/{}/bin/pkg/tool", exec[0]))
            .exists()
    );
    assert!(!ws.root().join("forge-bin/pkg/tool").exists());
    let listed = ok(ws.forge(&["cquery", "deps(//pkg:direct + //pkg:via_dbg)"]));
    let tools: Vec<&str> = listed
        .stdout
        .lines()
        .filter(|l| l.starts_with("//pkg:tool "))
        .collect();
    assert_eq!(tools.len(), 1, "{}", listed.stdout);
}

fn error_workspace(defs: &str, build: &str) -> Workspace {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "");
    ws.write("pkg/defs.bzl", defs);
    ws.write("pkg/BUILD", build);
    ws
}

const ERROR_RULE: &str = r#"
def _impl(ctx):
    return []

r = rule(
    implementation = _impl,
    attrs = {
        "dep": attr.label(cfg = t),
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    },
)
"#;

#[test]
fn a_transition_returning_an_undeclared_output_is_an_error_at_the_target() {
    let defs = format!(
        r#"
def _t(settings, attr):
    return {{"//command_line_option:compilation_mode": "opt", "//command_line_option:cpu": "arm"}}

t = transition(implementation = _t, inputs = [], outputs = ["//command_line_option:compilation_mode"])
{ERROR_RULE}"#
    );
    let ws = error_workspace(
        &defs,
        "load(':defs.bzl', 'r')\nr(name = 'x', dep = ':y')\nfilegroup(name = 'y')\n",
    );
    let run = ws.forge(&["build", "//pkg:x"]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr.contains("pkg/BUILD:2:")
            && run.stderr.contains(
                "transition function returned undeclared output '//command_line_option:cpu'"
            ),
        "{}",
        run.stderr
    );
}

#[test]
fn a_transition_leaving_out_a_declared_output_or_setting_a_wrong_type_is_an_error() {
    let missing = format!(
        r#"
def _t(settings, attr):
    return {{}}

t = transition(implementation = _t, inputs = [], outputs = ["//command_line_option:compilation_mode"])
{ERROR_RULE}"#
    );
    let ws = error_workspace(
        &missing,
        "load(':defs.bzl', 'r')\nr(name = 'x', dep = ':y')\nfilegroup(name = 'y')\n",
    );
    let run = ws.forge(&["build", "//pkg:x"]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr.contains(
            "transition outputs [//command_line_option:compilation_mode] were not defined by transition function"
        ),
        "{}",
        run.stderr
    );
    let wrong = format!(
        r#"
def _t(settings, attr):
    return {{"//command_line_option:compilation_mode": "fast"}}

t = transition(implementation = _t, inputs = [], outputs = ["//command_line_option:compilation_mode"])
{ERROR_RULE}"#
    );
    ws.write("pkg/defs.bzl", &wrong);
    let run = ws.forge(&["build", "//pkg:x"]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr.contains("'fast' is not a compilation mode"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_native_option_forge_does_not_model_is_refused_by_name() {
    let defs = format!(
        r#"
def _t(settings, attr):
    return {{"//command_line_option:copt": ["-O3"]}}

t = transition(implementation = _t, inputs = [], outputs = ["//command_line_option:copt"])
{ERROR_RULE}"#
    );
    let ws = error_workspace(
        &defs,
        "load(':defs.bzl', 'r')\nr(name = 'x', dep = ':y')\nfilegroup(name = 'y')\n",
    );
    let run = ws.forge(&["build", "//pkg:x"]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr
            .contains("forge does not support the option '//command_line_option:copt'"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_rule_with_a_starlark_transition_needs_the_allowlist_attribute() {
    let ws = error_workspace(
        r#"
def _t(settings, attr):
    return {"//command_line_option:compilation_mode": "opt"}

t = transition(implementation = _t, inputs = [], outputs = ["//command_line_option:compilation_mode"])

def _impl(ctx):
    return []

r = rule(implementation = _impl, attrs = {"dep": attr.label(cfg = t)})
"#,
        "load(':defs.bzl', 'r')\nr(name = 'x')\n",
    );
    let run = ws.forge(&["build", "//pkg:x"]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr.contains(
            "Use of Starlark transition without allowlist attribute '_allowlist_function_transition'"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn an_analysis_test_transition_turns_the_target_under_tests_failure_into_a_provider() {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "");
    ws.write(
        "pkg/defs.bzl",
        r##"
def _failing_impl(ctx):
    fail("this target is broken on purpose")

failing = rule(implementation = _failing_impl, attrs = {"deps": attr.label_list()})

def _expect_failure_impl(ctx):
    # Through a Starlark transition, ctx.attr is a list, as in Bazel (skylib takes [0]).
    if type(ctx.attr.target_under_test) != "list":
        fail("expected a list")
    target = ctx.attr.target_under_test[0]
    script = ctx.actions.declare_file(ctx.label.name + ".sh")
    if AnalysisFailureInfo not in target:
        fail("expected an AnalysisFailureInfo")
    causes = target[AnalysisFailureInfo].causes.to_list()
    ok = [c for c in causes if "broken on purpose" in c.message]
    ctx.actions.write(
        script,
        "#!/bin/bash\necho '%s %d'\nexit %d\n" % (causes[0].label, len(causes), 0 if ok else 1),
        is_executable = True,
    )
    return [DefaultInfo(executable = script)]

expect_failure_test = rule(
    implementation = _expect_failure_impl,
    test = True,
    attrs = {
        "target_under_test": attr.label(cfg = analysis_test_transition(
            settings = {"//command_line_option:allow_analysis_failures": True},
        )),
    },
)
"##,
    );
    ws.write(
        "pkg/BUILD",
        r#"
load(":defs.bzl", "expect_failure_test", "failing")

failing(name = "broken")

failing(name = "above", deps = [":broken"], tags = ["manual"])

expect_failure_test(name = "broken_test", target_under_test = ":broken")

expect_failure_test(name = "above_test", target_under_test = ":above")
"#,
    );
    let run = ok(ws.forge(&["test", "//pkg:broken_test", "//pkg:above_test"]));
    assert!(run.both().contains("2 tests pass"), "{}", run.both());
    // A dependency's failure is the dependent's, with the dependency as the cause.
    let log = read(&ws, "forge-testlogs/pkg/above_test/test.log");
    assert!(log.contains("//pkg:broken 1"), "{log}");
    // Outside the analysis test, the failure fails the build.
    let run = ws.forge(&["build", "//pkg:broken"]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(run.stderr.contains("broken on purpose"), "{}", run.stderr);
}

#[test]
fn a_transition_reading_a_target_that_is_no_build_setting_is_an_error() {
    let defs = format!(
        r#"
def _t(settings, attr):
    return {{"//command_line_option:compilation_mode": "opt"}}

t = transition(implementation = _t, inputs = ["//pkg:y"], outputs = ["//command_line_option:compilation_mode"])
{ERROR_RULE}"#
    );
    let ws = error_workspace(
        &defs,
        "load(':defs.bzl', 'r')\nr(name = 'x', dep = ':y')\nfilegroup(name = 'y')\n",
    );
    let run = ws.forge(&["build", "//pkg:x"]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr
            .contains("'//pkg:y' is a filegroup rule, not a build setting"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_transition_setting_a_build_setting_to_a_value_of_another_type_is_an_error() {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "");
    ws.write(
        "pkg/defs.bzl",
        &format!(
            r#"
def _flag_impl(ctx):
    return []

int_flag = rule(implementation = _flag_impl, build_setting = config.int(flag = True))

def _t(settings, attr):
    return {{"//pkg:level": "high"}}

t = transition(implementation = _t, inputs = [], outputs = ["//pkg:level"])
{ERROR_RULE}"#
        ),
    );
    ws.write(
        "pkg/BUILD",
        "load(':defs.bzl', 'int_flag', 'r')\nint_flag(name = 'level', build_setting_default = 1)\nr(name = 'x', dep = ':y')\nfilegroup(name = 'y')\n",
    );
    let run = ws.forge(&["build", "//pkg:x"]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr
            .contains("invalid value for '//pkg:level' in transition")
            && run.stderr.contains("expected a value of type int"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_transition_sets_a_build_setting_of_another_repository_and_flips_a_select_on_it() {
    let ws = Workspace::empty();
    ws.write(
        "WORKSPACE",
        "workspace(name = 'main')\nlocal_repository(name = 'flags', path = 'flags')\n",
    );
    ws.write("flags/WORKSPACE", "workspace(name = 'flags')\n");
    ws.write(
        "flags/defs.bzl",
        r#"
def _impl(ctx):
    return []

string_setting = rule(implementation = _impl, build_setting = config.string(flag = True))
"#,
    );
    ws.write(
        "flags/BUILD",
        "load(':defs.bzl', 'string_setting')\n\
         string_setting(name = 'mode', build_setting_default = 'plain', visibility = ['//visibility:public'])\n",
    );
    ws.write(
        "pkg/defs.bzl",
        r#"
def _t(settings, attr):
    return {"@flags//:mode": settings["@flags//:mode"] + "-fancy"}

fancy = transition(implementation = _t, inputs = ["@flags//:mode"], outputs = ["@flags//:mode"])

def _impl(ctx):
    return [DefaultInfo(files = depset(ctx.files.dep))]

with_fancy = rule(
    implementation = _impl,
    attrs = {
        "dep": attr.label(cfg = fancy),
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    },
)
"#,
    );
    ws.write(
        "pkg/BUILD",
        r#"
load(":defs.bzl", "with_fancy")

config_setting(name = "fancy", flag_values = {"@flags//:mode": "plain-fancy"})

genrule(
    name = "g",
    outs = ["g.txt"],
    cmd = select({":fancy": "echo fancy > $@", "//conditions:default": "echo plain > $@"}),
)

with_fancy(name = "w", dep = ":g")
"#,
    );
    let run = ok(ws.forge(&["build", "//pkg:w"]));
    let st = config_dirs(&ws, &format!("{}-fastbuild-ST-", cpu()));
    assert_eq!(st.len(), 1, "{st:?}\n{}", run.both());
    assert_eq!(
        read(&ws, &format!("forge-out/{}/bin/pkg/g.txt", st[0])),
        "fancy\n"
    );
}

#[test]
fn a_failing_incoming_transition_on_a_requested_target_is_reported() {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "");
    ws.write(
        "pkg/defs.bzl",
        r#"
def _t(settings, attr):
    return {"//command_line_option:compilation_mode": "turbo"}

t = transition(implementation = _t, inputs = [], outputs = ["//command_line_option:compilation_mode"])

def _impl(ctx):
    return []

r = rule(
    implementation = _impl,
    cfg = t,
    attrs = {
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    },
)
"#,
    );
    ws.write("pkg/BUILD", "load(':defs.bzl', 'r')\nr(name = 'x')\n");
    let run = ws.forge(&["build", "//pkg:x"]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr.contains("in r rule //pkg:x")
            && run.stderr.contains("'turbo' is not a compilation mode"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_analysis_test_transition_sets_native_options_as_skylib_does_and_selects_follow() {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "");
    ws.write(
        "pkg/defs.bzl",
        r##"
BoolInfo = provider(fields = ["value", "features"])

def _bool_impl(ctx):
    return [BoolInfo(value = ctx.attr.value, features = ctx.features)]

bool_rule = rule(implementation = _bool_impl, attrs = {"value": attr.bool()})

def _check_impl(ctx):
    info = ctx.attr.target_under_test[0][BoolInfo]
    script = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.write(
        script,
        "#!/bin/bash\necho '%s %s'\nexit %d\n" % (info.value, info.features, 0 if info.value else 1),
        is_executable = True,
    )
    return [DefaultInfo(executable = script)]

# As skylib's analysistest.make(config_settings = ...): strings for booleans, a list option.
check_test = rule(
    implementation = _check_impl,
    test = True,
    attrs = {
        "target_under_test": attr.label(cfg = analysis_test_transition(settings = {
            "//command_line_option:cpu": "ppc",
            "//command_line_option:compilation_mode": "opt",
            "//command_line_option:features": ["myfeature"],
            "//command_line_option:allow_analysis_failures": "True",
        })),
    },
)
"##,
    );
    ws.write(
        "pkg/BUILD",
        r#"
load(":defs.bzl", "bool_rule", "check_test")

config_setting(name = "ppc", values = {"cpu": "ppc"})

config_setting(name = "opt_with_feature", values = {"compilation_mode": "opt", "features": "myfeature"})

bool_rule(
    name = "chosen",
    value = select({":ppc": True, "//conditions:default": False}),
    tags = ["manual"],
)

bool_rule(
    name = "chosen_too",
    value = select({":opt_with_feature": True, "//conditions:default": False}),
    tags = ["manual"],
)

check_test(name = "cpu_test", target_under_test = ":chosen")

check_test(name = "features_test", target_under_test = ":chosen_too")
"#,
    );
    let run = ok(ws.forge(&["test", "//pkg:all"]));
    assert!(run.both().contains("2 tests pass"), "{}", run.both());
    let log = read(&ws, "forge-testlogs/pkg/features_test/test.log");
    assert!(log.contains("True [\"myfeature\"]"), "{log}");
    // Without the transition the default branch is taken.
    ok(ws.forge(&["build", "//pkg:chosen"]));
}

#[test]
fn minimum_os_version_is_set_by_a_transition_and_read_from_the_cpp_fragment() {
    // skylib's change_setting tests: a transition sets --minimum_os_version and the
    // dependency reads ctx.fragments.cpp.minimum_os_version().
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "");
    ws.write(
        "pkg/defs.bzl",
        r#"
def _read_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    ctx.actions.write(out, str(ctx.fragments.cpp.minimum_os_version()) + "\n")
    return [DefaultInfo(files = depset([out]))]

read_version = rule(implementation = _read_impl, fragments = ["cpp"])

def _set_impl(settings, attr):
    return {"//command_line_option:minimum_os_version": "1234.5678"}

set_version = transition(
    implementation = _set_impl,
    inputs = [],
    outputs = ["//command_line_option:minimum_os_version"],
)

def _outer_impl(ctx):
    return [DefaultInfo(files = ctx.attr.dep[0][DefaultInfo].files)]

outer = rule(
    implementation = _outer_impl,
    attrs = {
        "dep": attr.label(cfg = set_version),
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    },
)
"#,
    );
    ws.write(
        "pkg/BUILD",
        "load(':defs.bzl', 'outer', 'read_version')\n\
         read_version(name = 'plain')\n\
         read_version(name = 'versioned')\n\
         outer(name = 'outer', dep = ':versioned')\n",
    );
    ok(ws.forge(&["build", "//pkg:plain", "//pkg:outer"]));
    assert_eq!(read(&ws, "forge-bin/pkg/plain.txt"), "None\n");
    let dirs = config_dirs(&ws, &format!("{}-fastbuild-ST-", cpu()));
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    assert_eq!(
        read(&ws, &format!("forge-out/{}/bin/pkg/versioned.txt", dirs[0])),
        "1234.5678\n"
    );
    // The command line sets it too.
    ok(ws.forge(&["build", "--minimum_os_version=9.1", "//pkg:plain"]));
    assert_eq!(read(&ws, "forge-bin/pkg/plain.txt"), "9.1\n");
}

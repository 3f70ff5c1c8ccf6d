//! Analysis tests as skylib's `unittest`/`analysistest` write them: `rule(analysis_test =
//! True)` returning `AnalysisTestResultInfo`, a test toolchain read through
//! `ctx.toolchains`, an aspect on `target_under_test` that hands the test the target's
//! actions (`target.actions`: mnemonic, argv, inputs, outputs, content, substitutions,
//! env) and providers, and `testing.TestEnvironment` / `testing.ExecutionInfo`. The
//! workspaces are written here, following the patterns of those frameworks.

mod common;

use common::{Run, Workspace};

fn ok(run: Run) -> Run {
    assert_eq!(run.code, 0, "forge failed:\n{}", run.both());
    run
}

fn read(ws: &Workspace, path: &str) -> String {
    std::fs::read_to_string(ws.root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

const FRAMEWORK: &str = r#"
TOOLCHAIN_TYPE = "//testing:toolchain_type"

_ReporterInfo = provider(fields = ["success_templ", "failure_templ"])

def _reporter_impl(ctx):
    return [platform_common.ToolchainInfo(reporter = _ReporterInfo(
        success_templ = ctx.attr.success_templ,
        failure_templ = ctx.attr.failure_templ,
    ))]

reporter = rule(_reporter_impl, attrs = {
    "success_templ": attr.string(),
    "failure_templ": attr.string(),
})

# A unit test: the implementation's failures become a script the toolchain shapes.
def _unit_impl(ctx):
    failures = ctx.attr.failures
    tc = ctx.toolchains[TOOLCHAIN_TYPE].reporter
    script = ctx.actions.declare_file(ctx.label.name + ".sh")
    content = tc.failure_templ % "; ".join(failures) if failures else tc.success_templ
    ctx.actions.write(script, content, is_executable = True)
    return [DefaultInfo(executable = script)]

unit_test = rule(
    _unit_impl,
    attrs = {"failures": attr.string_list()},
    test = True,
    toolchains = [TOOLCHAIN_TYPE],
    _skylark_testable = True,
)

_ActionsInfo = provider(fields = ["actions", "bin_path"])

def _retrieve_actions_impl(target, ctx):
    return [_ActionsInfo(actions = target.actions, bin_path = ctx.bin_dir.path)]

retrieve_actions = aspect(implementation = _retrieve_actions_impl, attr_aspects = [])

def make(impl, attrs = {}, extra_aspects = []):
    attrs = dict(attrs)
    attrs["target_under_test"] = attr.label(aspects = [retrieve_actions] + extra_aspects, mandatory = True)
    return rule(
        impl,
        attrs = attrs,
        test = True,
        analysis_test = True,
        toolchains = [TOOLCHAIN_TYPE],
    )

def target_actions(ctx):
    return ctx.attr.target_under_test[_ActionsInfo].actions

def bin_path(ctx):
    return ctx.attr.target_under_test[_ActionsInfo].bin_path
"#;

const RULES: &str = r##"
load("//testing:framework.bzl", "bin_path", "make", "target_actions")

def _subject_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".out")
    ctx.actions.run_shell(
        outputs = [out],
        inputs = ctx.files.srcs,
        command = "cat $@ > " + out.path,
        env = {"MODE": "fast"},
        mnemonic = "Concat",
    )
    note = ctx.actions.declare_file(ctx.label.name + ".note")
    ctx.actions.write(note, "hello note")
    expanded = ctx.actions.declare_file(ctx.label.name + ".expanded")
    ctx.actions.expand_template(template = ctx.file.template, output = expanded, substitutions = {"{WHO}": "world"})
    return [DefaultInfo(files = depset([out, note, expanded]))]

subject = rule(_subject_impl, attrs = {
    "srcs": attr.label_list(allow_files = True),
    "template": attr.label(allow_single_file = True),
})

def _describe(a):
    return "%s argv=%s inputs=%s outputs=%s content=%s subs=%s env=%s" % (
        a.mnemonic,
        a.argv,
        [f.basename for f in a.inputs.to_list()],
        [f.basename for f in a.outputs.to_list()],
        a.content,
        a.substitutions,
        a.env,
    )

def _actions_test_impl(ctx):
    lines = [_describe(a) for a in target_actions(ctx)]
    lines.append("bin=" + bin_path(ctx))
    expected = ctx.attr.expected
    return [AnalysisTestResultInfo(
        success = expected in "\n".join(lines),
        message = "expected '%s' in:\n%s" % (expected, "\n".join(lines)),
    )]

actions_test = make(_actions_test_impl, attrs = {"expected": attr.string()})

_TagInfo = provider(fields = ["tag"])

def _tag_impl(target, ctx):
    return [_TagInfo(tag = "tagged %s (%s)" % (ctx.label.name, ctx.rule.kind))]

tag = aspect(implementation = _tag_impl)

def _tag_test_impl(ctx):
    got = ctx.attr.target_under_test[_TagInfo].tag
    return [AnalysisTestResultInfo(success = got == "tagged s (subject)", message = got)]

tag_test = make(_tag_test_impl, extra_aspects = [tag])

def _no_result_impl(ctx):
    return []

no_result_test = rule(_no_result_impl, test = True, analysis_test = True)

def _env_impl(ctx):
    script = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.write(script, "#!/bin/sh\necho \"GREETING=$GREETING\"\n[ \"$GREETING\" = hi ]\n", is_executable = True)
    return [
        DefaultInfo(executable = script),
        testing.TestEnvironment({"GREETING": "hi"}),
        testing.ExecutionInfo(requirements = {"requires-network": ""}),
    ]

env_test = rule(_env_impl, test = True)
"##;

/// The framework above, its toolchain registered, and `//t` using it.
fn workspace(expected: &str) -> Workspace {
    let ws = Workspace::empty();
    ws.write(
        "WORKSPACE",
        "register_toolchains(\"//testing:bash_toolchain\")\n",
    );
    ws.write("testing/framework.bzl", FRAMEWORK);
    ws.write(
        "testing/BUILD",
        r##"
load(":framework.bzl", "reporter")

package(default_visibility = ["//visibility:public"])

toolchain_type(name = "toolchain_type")

reporter(
    name = "bash",
    success_templ = "#!/bin/sh\nexit 0\n",
    failure_templ = "#!/bin/sh\necho '%s'\nexit 1\n",
)

toolchain(name = "bash_toolchain", toolchain_type = ":toolchain_type", toolchain = ":bash")
"##,
    );
    ws.write("t/rules.bzl", RULES);
    ws.write("t/a.txt", "a\n");
    ws.write("t/tmpl.txt", "hello {WHO}\n");
    ws.write(
        "t/BUILD",
        &format!(
            r#"
load("//testing:framework.bzl", "unit_test")
load(":rules.bzl", "actions_test", "env_test", "subject", "tag_test")

subject(name = "s", srcs = ["a.txt"], template = "tmpl.txt", tags = ["manual"])

actions_test(name = "actions_test", target_under_test = ":s", expected = {expected:?})

tag_test(name = "tag_test", target_under_test = ":s")

unit_test(name = "passing_unit_test")

unit_test(name = "failing_unit_test", failures = ["one is not two"], tags = ["manual"])

env_test(name = "env_test")
"#
        ),
    );
    ws
}

#[test]
fn an_analysis_test_sees_the_actions_of_its_target() {
    for expected in [
        "Concat argv=[\"/bin/bash\", \"-c\", \"cat $@ > ",
        "inputs=[\"a.txt\"] outputs=[\"s.out\"] content=None subs=None env={\"MODE\": \"fast\"}",
        "FileWrite argv=None inputs=[] outputs=[\"s.note\"] content=hello note",
        "outputs=[\"s.expanded\"] content=None subs={\"{WHO}\": \"world\"}",
        "bin=forge-out/",
    ] {
        let ws = workspace(expected);
        let run = ok(ws.forge(&["test", "//t:actions_test"]));
        assert!(run.both().contains("PASSED"), "{expected}\n{}", run.both());
    }
}

#[test]
fn a_failing_analysis_test_fails_with_its_message_in_the_log() {
    let ws = workspace("an action nobody registered");
    let run = ws.forge(&["test", "//t:actions_test"]);
    assert_eq!(run.code, 3, "{}", run.both());
    let log = read(&ws, "forge-testlogs/t/actions_test/test.log");
    assert!(
        log.contains("expected 'an action nobody registered' in:"),
        "{log}"
    );
    assert!(log.contains("Concat argv="), "{log}");
    // The analysis test's script is what Bazel writes: the message, then the verdict.
    let script = read(&ws, "forge-bin/t/actions_test");
    assert!(script.starts_with("#!/bin/bash\necho "), "{script}");
    assert!(script.ends_with("\nexit 1\n"), "{script}");
}

#[test]
fn aspects_add_providers_and_unit_tests_use_the_registered_toolchain() {
    let ws = workspace("Concat");
    let run = ok(ws.forge(&["test", "//t:all"]));
    for test in ["actions_test", "tag_test", "passing_unit_test", "env_test"] {
        let line = run
            .stdout
            .lines()
            .chain(run.stderr.lines())
            .find(|l| l.starts_with(&format!("//t:{test} ")))
            .unwrap_or_else(|| panic!("{test}:\n{}", run.both()))
            .to_owned();
        assert!(line.contains("PASSED"), "{line}\n{}", run.both());
    }
    // The toolchain's failure template makes the failing unit test's script.
    let run = ws.forge(&["test", "//t:failing_unit_test"]);
    assert_eq!(run.code, 3, "{}", run.both());
    let log = read(&ws, "forge-testlogs/t/failing_unit_test/test.log");
    assert!(log.contains("one is not two"), "{log}");
    // testing.TestEnvironment set the variable the test checks.
    let log = read(&ws, "forge-testlogs/t/env_test/test.log");
    assert!(log.contains("GREETING=hi"), "{log}");
}

#[test]
fn without_the_toolchain_registered_the_tests_say_what_is_missing() {
    let ws = workspace("Concat");
    ws.write("WORKSPACE", "");
    let run = ws.forge(&["test", "//t:passing_unit_test"]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr.contains(
            "while resolving toolchains: no matching toolchains found for types \
             //testing:toolchain_type"
        ),
        "{}",
        run.both()
    );
    assert!(run.stderr.contains("registered: none"), "{}", run.both());
}

#[test]
fn what_forge_cannot_do_in_analysis_tests_is_refused_by_name() {
    let ws = workspace("Concat");
    ws.write(
        "bad/defs.bzl",
        r#"
def _noop(target, ctx):
    return []

spreading = aspect(implementation = _noop, attr_aspects = ["deps"], toolchains = ["//bad:type"])

def _impl(ctx):
    return [AnalysisTestResultInfo(success = True, message = "")]

spreading_test = rule(_impl, attrs = {"dep": attr.label(aspects = [spreading])}, test = True, analysis_test = True)
"#,
    );
    ws.write(
        "bad/BUILD",
        r#"
load(":defs.bzl", "spreading_test")
load("//t:rules.bzl", "no_result_test")

filegroup(name = "fg")

spreading_test(name = "spreading_test", dep = ":fg")

no_result_test(name = "no_result_test")
"#,
    );
    let run = ws.forge(&["test", "//bad:spreading_test"]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr.contains(
            "forge does not support aspect '//bad:defs.bzl%spreading' yet: it is declared \
             with 'toolchains = [\"//bad:type\"]'"
        ),
        "{}",
        run.both()
    );
    let run = ws.forge(&["test", "//bad:no_result_test"]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr.contains(
            "an analysis test (rule(analysis_test = True)) must return AnalysisTestResultInfo"
        ),
        "{}",
        run.both()
    );
}

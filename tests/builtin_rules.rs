//! Built-in rules and BUILD functions as real Bazel packages use them: genrule's
//! `cmd_bash`/`cmd_bat`/`cmd_ps`/`executable`/`toolchains`, `alias(actual = select(...))`,
//! `config_setting(values = {"stamp": ...})` with `--stamp`, `native.existing_rule(s)`,
//! `native.package_relative_label`, `py_runtime(_pair)`, rules loaded from a declared
//! `@rules_python`/`@rules_shell`, and select() keys that visibility does not check.
//! Each test writes its workspace and runs the real binary on it.

mod common;

use common::{Run, Workspace};

fn ok(run: Run) -> Run {
    assert_eq!(run.code, 0, "forge failed:\n{}", run.both());
    run
}

fn failed(run: Run) -> Run {
    assert_eq!(run.code, 1, "forge should have failed:\n{}", run.both());
    run
}

fn read(ws: &Workspace, path: &str) -> String {
    std::fs::read_to_string(ws.root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A workspace with `files` (path, content) besides its WORKSPACE.
fn workspace(files: &[(&str, &str)]) -> Workspace {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "workspace(name = \"ws\")\n");
    for (path, content) in files {
        ws.write(path, content);
    }
    ws
}

// ---- select() keys and visibility (Bazel 4) ----

const PRIVATE_CONDITION: &str = r#"
config_setting(name = "fast", values = {"define": "mode=fast"})
genrule(name = "hidden", outs = ["hidden.txt"], cmd = "echo hidden > $@")
"#;

#[test]
fn a_select_key_in_another_package_is_not_visibility_checked() {
    let ws = workspace(&[
        ("conf/BUILD", PRIVATE_CONDITION),
        (
            "app/BUILD",
            r#"
genrule(
    name = "mode",
    outs = ["mode.txt"],
    cmd = select({"//conf:fast": "echo fast > $@", "//conditions:default": "echo default > $@"}),
)
"#,
        ),
    ]);
    ok(ws.forge(&["build", "//app:mode"]));
    assert_eq!(read(&ws, "forge-bin/app/mode.txt"), "default\n");
    ok(ws.forge(&["build", "--define=mode=fast", "//app:mode"]));
    assert_eq!(read(&ws, "forge-bin/app/mode.txt"), "fast\n");
}

#[test]
fn a_private_target_chosen_by_a_select_branch_is_still_refused() {
    let ws = workspace(&[
        ("conf/BUILD", PRIVATE_CONDITION),
        (
            "app/BUILD",
            r#"
filegroup(
    name = "pick",
    srcs = select({"//conf:fast": ["//conf:hidden"], "//conditions:default": []}),
)
"#,
        ),
    ]);
    // The branch taken names a private target: Bazel refuses that edge too.
    let run = failed(ws.forge(&["build", "--define=mode=fast", "//app:pick"]));
    assert!(
        run.stderr
            .contains("target '//conf:hidden' is not visible from target '//app:pick'"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("'//conf:fast' is not visible"),
        "{}",
        run.stderr
    );
}

// ---- config_setting(values = ...) and --stamp ----

const STAMP_PACKAGE: &str = r#"
config_setting(name = "stamped", values = {"stamp": "1"})
config_setting(name = "stamped_true", values = {"stamp": "true"})
config_setting(name = "unstamped", values = {"stamp": "0"})
genrule(
    name = "stamp",
    outs = ["stamp.txt"],
    cmd = select({":stamped": "echo stamped > $@", ":unstamped": "echo unstamped > $@"}),
)
genrule(
    name = "stamp_true",
    outs = ["stamp_true.txt"],
    cmd = select({":stamped_true": "echo yes > $@", "//conditions:default": "echo no > $@"}),
)
"#;

#[test]
fn values_stamp_follows_the_stamp_flag() {
    let ws = workspace(&[("pkg/BUILD", STAMP_PACKAGE)]);
    let built = |flags: &[&str]| {
        let mut args = vec!["build"];
        args.extend_from_slice(flags);
        args.extend(["//pkg:stamp", "//pkg:stamp_true"]);
        ok(ws.forge(&args));
        (
            read(&ws, "forge-bin/pkg/stamp.txt"),
            read(&ws, "forge-bin/pkg/stamp_true.txt"),
        )
    };
    let unstamped = ("unstamped\n".to_owned(), "no\n".to_owned());
    let stamped = ("stamped\n".to_owned(), "yes\n".to_owned());
    assert_eq!(built(&[]), unstamped);
    assert_eq!(built(&["--stamp"]), stamped);
    // The last of --stamp and --nostamp wins, as in Bazel.
    assert_eq!(built(&["--stamp", "--nostamp"]), unstamped);
    assert_eq!(built(&["--nostamp", "--stamp"]), stamped);
}

#[test]
fn stamp_reaches_run_and_test() {
    let ws = workspace(&[
        (
            "pkg/check.sh",
            "#!/bin/sh\ntest \"$(cat pkg/stamp.txt)\" = stamped\n",
        ),
        (
            "pkg/BUILD",
            &format!(
                "{STAMP_PACKAGE}\nsh_test(name = \"check\", srcs = [\"check.sh\"], data = [\":stamp\"])\n"
            ),
        ),
    ]);
    std::fs::set_permissions(
        ws.root().join("pkg/check.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    assert_eq!(ws.forge(&["test", "//pkg:check"]).code, 3);
    ok(ws.forge(&["test", "--stamp", "//pkg:check"]));
    ok(ws.forge(&["run", "--stamp", "//pkg:check"]));
    assert_eq!(ws.forge(&["run", "//pkg:check"]).code, 1);
}

#[test]
fn a_value_that_is_not_a_boolean_for_stamp_is_refused() {
    let ws = workspace(&[(
        "pkg/BUILD",
        r#"
config_setting(name = "odd", values = {"stamp": "maybe"})
genrule(name = "g", outs = ["g.txt"], cmd = select({":odd": "true > $@", "//conditions:default": "true > $@"}))
"#,
    )]);
    let run = failed(ws.forge(&["build", "//pkg:g"]));
    assert!(
        run.stderr.contains(
            "values: 'maybe' is not a valid value for the boolean option 'stamp'; use '1' or '0'"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn host_cpu_and_host_compilation_mode_are_build_options_and_unknown_ones_are_named() {
    let cpu = match std::env::consts::ARCH {
        "x86_64" => "k8",
        other => other,
    };
    let ws = workspace(&[(
        "pkg/BUILD",
        &format!(
            r#"
config_setting(name = "on_host", values = {{"host_cpu": "{cpu}", "host_compilation_mode": "opt"}})
config_setting(name = "unknown_option", values = {{"java_runtime_version": "11"}})
genrule(name = "host", outs = ["host.txt"], cmd = select({{":on_host": "echo host > $@", "//conditions:default": "echo other > $@"}}))
genrule(name = "unknown", outs = ["unknown.txt"], cmd = select({{":unknown_option": "true > $@", "//conditions:default": "true > $@"}}))
"#
        ),
    )]);
    ok(ws.forge(&["build", "//pkg:host"]));
    assert_eq!(read(&ws, "forge-bin/pkg/host.txt"), "host\n");
    let run = failed(ws.forge(&["build", "//pkg:unknown"]));
    assert!(
        run.stderr.contains(
            "values: 'java_runtime_version' is not a build option forge knows; use one of \
             define, compilation_mode, cpu, host_compilation_mode, host_cpu, stamp"
        ),
        "{}",
        run.stderr
    );
}

// ---- genrule ----

#[test]
fn genrule_prefers_cmd_bash_and_accepts_the_windows_commands() {
    let ws = workspace(&[(
        "pkg/BUILD",
        r#"
genrule(
    name = "g",
    outs = ["g.txt"],
    cmd = "echo from cmd > $@",
    cmd_bash = "echo from cmd_bash > $@",
    cmd_bat = "echo from cmd_bat > $@",
    cmd_ps = "Write-Output from cmd_ps > $@",
    output_to_bindir = True,
)
genrule(name = "windows_only", outs = ["w.txt"], cmd_bat = "echo > $@", cmd_ps = "echo > $@")
"#,
    )]);
    ok(ws.forge(&["build", "//pkg:g"]));
    // output_to_bindir changes nothing: genfiles is the bin directory since Bazel 1.0.
    assert_eq!(read(&ws, "forge-bin/pkg/g.txt"), "from cmd_bash\n");
    let run = failed(ws.forge(&["build", "//pkg:windows_only"]));
    assert!(
        run.stderr.contains(
            "missing value for `cmd` attribute of genrule //pkg:windows_only: you can also set \
             `cmd_ps` or `cmd_bat` on Windows and `cmd_bash` on other platforms"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn an_executable_genrule_is_run_by_forge_run_and_through_an_alias() {
    let ws = workspace(&[(
        "pkg/BUILD",
        r#"
genrule(
    name = "hello",
    outs = ["hello.sh"],
    cmd_bash = "printf '#!/bin/sh\\necho hello \"$$@\"\\n' > $@",
    executable = True,
)
alias(name = "hi", actual = ":hello")
genrule(name = "two", outs = ["a.sh", "b.sh"], cmd = "touch $(OUTS)", executable = True)
"#,
    )]);
    let run = ok(ws.forge(&["run", "//pkg:hello", "--", "world"]));
    assert_eq!(run.stdout, "hello world\n", "{}", run.both());
    let run = ok(ws.forge(&["run", "//pkg:hi"]));
    assert_eq!(run.stdout, "hello\n", "{}", run.both());
    let run = failed(ws.forge(&["build", "//pkg:two"]));
    assert!(
        run.stderr
            .contains("executable = True needs exactly one file in `outs`, got 2"),
        "{}",
        run.stderr
    );
}

#[test]
fn genrule_toolchains_without_template_variables_are_refused_by_name() {
    let ws = workspace(&[(
        "pkg/BUILD",
        r#"
filegroup(name = "vars")
genrule(name = "g", outs = ["g.txt"], cmd = "true > $@", toolchains = [":vars"])
"#,
    )]);
    let run = failed(ws.forge(&["build", "//pkg:g"]));
    assert!(
        run.stderr.contains(
            "in toolchains attribute of genrule //pkg:g: '//pkg:vars' does not have mandatory \
             providers: 'TemplateVariableInfo'"
        ),
        "{}",
        run.stderr
    );
}

// ---- alias(actual = select(...)) ----

#[test]
fn an_alias_of_a_select_forwards_the_providers_of_the_chosen_target() {
    let ws = workspace(&[
        (
            "pkg/defs.bzl",
            r#"
MessageInfo = provider(fields = ["text"])

def _message_impl(ctx):
    return [MessageInfo(text = ctx.attr.text)]

message = rule(implementation = _message_impl, attrs = {"text": attr.string()})

def _show_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    ctx.actions.write(out, ctx.attr.message[MessageInfo].text + "\n")
    return [DefaultInfo(files = depset([out]))]

show = rule(implementation = _show_impl, attrs = {"message": attr.label(providers = [MessageInfo])})
"#,
        ),
        (
            "pkg/BUILD",
            r#"
load(":defs.bzl", "message", "show")
config_setting(name = "fast", define_values = {"mode": "fast"})
message(name = "fast_message", text = "fast")
message(name = "slow_message", text = "slow")
alias(name = "message", actual = select({":fast": ":fast_message", "//conditions:default": ":slow_message"}))
show(name = "show", message = ":message")
"#,
        ),
    ]);
    ok(ws.forge(&["build", "//pkg:show"]));
    assert_eq!(read(&ws, "forge-bin/pkg/show.txt"), "slow\n");
    ok(ws.forge(&["build", "--define=mode=fast", "//pkg:show"]));
    assert_eq!(read(&ws, "forge-bin/pkg/show.txt"), "fast\n");
}

// ---- native.existing_rule(s), native.package_relative_label ----

#[test]
fn macros_see_the_rules_declared_before_them_and_package_relative_labels() {
    let ws = workspace(&[
        (
            "pkg/macros.bzl",
            r#"
def describe(name):
    rules = native.existing_rules()
    lines = ["%s %s" % (n, rules[n]["kind"]) for n in rules]
    g = native.existing_rule("gen")
    lines.append("gen outs=%s srcs=%s cmd=%s" % (g["outs"], g["srcs"], g["cmd"]))
    lines.append("tool tags=%s" % (native.existing_rule("tool")["tags"],))
    lines.append("picked=%s" % native.existing_rule("picked")["srcs"])
    lines.append("missing=%s" % native.existing_rule("missing"))
    lines.append("labels=%s %s" % (
        native.package_relative_label(":x"),
        native.package_relative_label("//other:y"),
    ))
    native.genrule(
        name = name,
        outs = [name + ".txt"],
        # `$$`: the text is not for make-variable expansion.
        cmd = "cat > $@ <<'EOF'\n" + "\n".join(lines).replace("$", "$$") + "\nEOF",
    )
"#,
        ),
        (
            "pkg/BUILD",
            r#"
load(":macros.bzl", "describe")
config_setting(name = "fast", values = {"define": "mode=fast"})
genrule(name = "gen", srcs = ["in.txt", "//other:file"], outs = ["gen.txt"], cmd = "cat $(SRCS) > $@")
filegroup(name = "tool", tags = ["manual"])
filegroup(name = "picked", srcs = select({":fast": [":gen"], "//conditions:default": []}))
describe(name = "described")
"#,
        ),
        ("pkg/in.txt", "in\n"),
        ("other/BUILD", "exports_files([\"file\"])\n"),
        ("other/file", ""),
    ]);
    ok(ws.forge(&["build", "//pkg:described"]));
    assert_eq!(
        read(&ws, "forge-bin/pkg/described.txt"),
        "fast config_setting\n\
         gen genrule\n\
         tool filegroup\n\
         picked filegroup\n\
         gen outs=(\":gen.txt\",) srcs=(\":in.txt\", \"//other:file\") cmd=cat $(SRCS) > $@\n\
         tool tags=(\"manual\",)\n\
         picked=select({\":fast\": (\":gen\",), \"//conditions:default\": ()})\n\
         missing=None\n\
         labels=//pkg:x //other:y\n"
    );
}

#[test]
fn existing_rules_outside_a_build_file_is_an_error() {
    let ws = workspace(&[
        ("pkg/defs.bzl", "RULES = native.existing_rules()\n"),
        ("pkg/BUILD", "load(\":defs.bzl\", \"RULES\")\n"),
    ]);
    let run = failed(ws.forge(&["build", "//pkg:all"]));
    assert!(
        run.stderr
            .contains("native.existing_rules() can only be used while evaluating a BUILD file"),
        "{}",
        run.stderr
    );
}

// ---- licenses, exports_files visibility ----

#[test]
fn licenses_are_recorded_for_later_rules_and_exports_files_visibility_is_honoured() {
    let ws = workspace(&[
        (
            "lib/BUILD",
            r#"
filegroup(name = "before")
licenses(["notice"])
exports_files(["shared.txt"], visibility = ["//friend:__pkg__"])
exports_files(["public.txt"])
filegroup(name = "after")
filegroup(name = "own", licenses = ["restricted"])
"#,
        ),
        (
            "packaged/BUILD",
            "package(licenses = [\"permissive\"])\nfilegroup(name = \"x\")\n",
        ),
        ("lib/shared.txt", "shared\n"),
        ("lib/public.txt", "public\n"),
        (
            "friend/BUILD",
            "filegroup(name = \"f\", srcs = [\"//lib:shared.txt\", \"//lib:public.txt\"])\n",
        ),
        (
            "stranger/BUILD",
            "filegroup(name = \"s\", srcs = [\"//lib:public.txt\"])\n\
             filegroup(name = \"no\", srcs = [\"//lib:shared.txt\"])\n",
        ),
    ]);
    ok(ws.forge(&["build", "//friend:f", "//stranger:s"]));
    // licenses() is the default of the rules declared after it, as in Bazel.
    let query = ok(ws.forge(&["query", "attr(licenses, notice, //lib:all)"]));
    assert_eq!(query.stdout, "//lib:after\n", "{}", query.both());
    let query = ok(ws.forge(&["query", "attr(licenses, restricted, //lib:all)"]));
    assert_eq!(query.stdout, "//lib:own\n", "{}", query.both());
    let query = ok(ws.forge(&["query", "attr(licenses, permissive, //packaged:all)"]));
    assert_eq!(query.stdout, "//packaged:x\n", "{}", query.both());
    let run = failed(ws.forge(&["build", "//stranger:no"]));
    assert!(
        run.stderr
            .contains("target '//lib:shared.txt' is not visible from target '//stranger:no'"),
        "{}",
        run.stderr
    );
}

// ---- py_runtime, py_runtime_pair ----

#[test]
fn py_runtime_and_py_runtime_pair_check_their_runtimes() {
    let ws = workspace(&[
        (
            "py/BUILD",
            r#"
py_runtime(name = "installed", interpreter_path = "/usr/bin/python3", python_version = "PY3")
py_runtime(name = "bundled", interpreter = "fake_python.sh", files = ["lib.txt"], python_version = "PY2")
py_runtime_pair(name = "pair", py2_runtime = ":bundled", py3_runtime = ":installed")
py_runtime_pair(name = "swapped", py2_runtime = ":installed")
py_runtime(name = "both", interpreter = "fake_python.sh", interpreter_path = "/usr/bin/python3")
py_runtime(name = "relative", interpreter_path = "bin/python3")
"#,
        ),
        ("py/fake_python.sh", "#!/bin/sh\n"),
        ("py/lib.txt", ""),
    ]);
    let run = ok(ws.forge(&["build", "//py:pair", "//py:bundled"]));
    assert!(!run.stderr.contains("ERROR"), "{}", run.stderr);
    let cases = [
        (
            "//py:swapped",
            "the Python runtime in the 'py2_runtime' attribute did not have version 'PY2'",
        ),
        (
            "//py:both",
            "exactly one of the 'interpreter' or 'interpreter_path' attributes must be specified",
        ),
        (
            "//py:relative",
            "interpreter_path must be an absolute path, got 'bin/python3'",
        ),
    ];
    for (target, message) in cases {
        let run = failed(ws.forge(&["build", target]));
        assert!(run.stderr.contains(message), "{target}: {}", run.stderr);
    }
}

// ---- @rules_python and @rules_shell declared by the workspace ----

#[test]
fn python_and_shell_rules_load_from_declared_rules_python_and_rules_shell() {
    let ws = Workspace::empty();
    ws.write(
        "WORKSPACE",
        r#"workspace(name = "ws")
local_repository(name = "rules_python", path = "third_party/rules_python")
local_repository(name = "rules_shell", path = "third_party/rules_shell")
"#,
    );
    // As rules_python 0.1.0's python/defs.bzl: re-exports of the native rules, with a tag.
    ws.write(
        "third_party/rules_python/WORKSPACE",
        "workspace(name = \"rules_python\")\n",
    );
    ws.write("third_party/rules_python/python/BUILD", "");
    ws.write(
        "third_party/rules_python/python/private/reexports.bzl",
        "internal_PyInfo = PyInfo\ninternal_PyRuntimeInfo = PyRuntimeInfo\n",
    );
    ws.write("third_party/rules_python/python/private/BUILD", "");
    ws.write(
        "third_party/rules_python/python/defs.bzl",
        r#"load(":private/reexports.bzl", "internal_PyInfo", "internal_PyRuntimeInfo")

PyInfo = internal_PyInfo
PyRuntimeInfo = internal_PyRuntimeInfo

_TAG = "__PYTHON_RULES_MIGRATION_DO_NOT_USE_WILL_BREAK__"

def _add_tags(attrs):
    attrs["tags"] = attrs.get("tags", []) + [_TAG]
    return attrs

def py_library(**attrs):
    native.py_library(**_add_tags(attrs))

def py_binary(**attrs):
    native.py_binary(**_add_tags(attrs))

def py_runtime(**attrs):
    native.py_runtime(**_add_tags(attrs))
"#,
    );
    // As rules_shell: one .bzl per rule, each the native one.
    ws.write(
        "third_party/rules_shell/WORKSPACE",
        "workspace(name = \"rules_shell\")\n",
    );
    ws.write("third_party/rules_shell/shell/BUILD", "");
    ws.write(
        "third_party/rules_shell/shell/sh_binary.bzl",
        "sh_binary = native.sh_binary\n",
    );
    ws.write(
        "app/BUILD",
        r#"load("@rules_python//python:defs.bzl", "PyInfo", "py_binary", "py_library", "py_runtime")
load("@rules_shell//shell:sh_binary.bzl", "sh_binary")
load(":check.bzl", "needs_py_info")

py_runtime(name = "runtime", interpreter_path = "/usr/bin/python3")
py_library(name = "lib", srcs = ["lib.py"])
py_binary(name = "main", srcs = ["main.py"], deps = [":lib"])
needs_py_info(name = "checked", dep = ":lib")
sh_binary(name = "hello", srcs = ["hello.sh"])
"#,
    );
    ws.write(
        "app/check.bzl",
        r#"load("@rules_python//python:defs.bzl", "PyInfo")

def _impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    ctx.actions.write(out, "%d sources\n" % len(ctx.attr.dep[PyInfo].transitive_sources.to_list()))
    return [DefaultInfo(files = depset([out]))]

needs_py_info = rule(implementation = _impl, attrs = {"dep": attr.label(providers = [PyInfo])})
"#,
    );
    ws.write("app/lib.py", "GREETING = 'hi from lib'\n");
    ws.write(
        "app/main.py",
        "from app.lib import GREETING\nprint(GREETING)\n",
    );
    ws.write("app/hello.sh", "#!/bin/sh\necho hello from sh\n");
    std::fs::set_permissions(
        ws.root().join("app/hello.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    ok(ws.forge(&["build", "//app:all"]));
    assert_eq!(read(&ws, "forge-bin/app/checked.txt"), "1 sources\n");
    let run = ok(ws.forge(&["run", "//app:main"]));
    assert_eq!(run.stdout, "hi from lib\n", "{}", run.both());
    let run = ok(ws.forge(&["run", "//app:hello"]));
    assert_eq!(run.stdout, "hello from sh\n", "{}", run.both());
    let query = ok(ws.forge(&["query", "attr(tags, PYTHON_RULES_MIGRATION, //app:all)"]));
    assert_eq!(
        query.stdout,
        "//app:lib\n//app:main\n//app:runtime\n",
        "{}",
        query.both()
    );
}

#[test]
fn genrule_toolchains_give_make_variables_and_stamp_reads_the_status_files() {
    let ws = workspace(&[
        (
            "pkg/vars.bzl",
            r#"
def _impl(ctx):
    return [platform_common.TemplateVariableInfo({"GREETING": ctx.attr.greeting})]

template_vars = rule(implementation = _impl, attrs = {"greeting": attr.string()})
"#,
        ),
        (
            "pkg/BUILD",
            r#"
load(":vars.bzl", "template_vars")
template_vars(name = "vars", greeting = "hi from a toolchain")
genrule(name = "g", outs = ["g.txt"], cmd = "echo $(GREETING) > $@", toolchains = [":vars"])
genrule(
    name = "stamped",
    outs = ["stamped.txt"],
    cmd = "grep -c BUILD_TIMESTAMP forge-out/volatile-status.txt > $@",
    stamp = 1,
)
"#,
        ),
    ]);
    ok(ws.forge(&["build", "//pkg:g", "//pkg:stamped"]));
    assert_eq!(read(&ws, "forge-bin/pkg/g.txt"), "hi from a toolchain\n");
    // The status files are inputs of a stamped genrule (in its sandbox), as in Bazel.
    assert_eq!(read(&ws, "forge-bin/pkg/stamped.txt"), "1\n");
}

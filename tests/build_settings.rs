//! Build settings (Starlark flags) as Bazel has them: `rule(build_setting = config.*)`,
//! `ctx.build_setting_value` from `build_setting_default` or the command line
//! (`--//pkg:flag=value`, `--no//pkg:flag`, `--@repo//pkg:flag=value`, `allow_multiple`),
//! `config_setting(flag_values)`, `label_flag` / `label_setting`, the errors for an unknown
//! flag or a mistyped value, and the plan cache keeping flag values apart.

mod common;

use common::{Run, Workspace, counts};

fn ok(run: Run) -> Run {
    assert_eq!(run.code, 0, "forge failed:\n{}", run.both());
    run
}

fn fails_with(run: &Run, code: i32, expected: &[&str]) {
    assert_eq!(run.code, code, "forge should have failed:\n{}", run.both());
    for e in expected {
        assert!(run.stderr.contains(e), "expected {e:?} in:\n{}", run.both());
    }
}

fn read(ws: &Workspace, path: &str) -> String {
    std::fs::read_to_string(ws.root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Flag rules in the pattern of skylib's common_settings.bzl (written for these tests): a
/// provider carrying the value, one rule per type, a string flag checking its `values` in
/// its implementation, and non-flag settings.
const SETTINGS_BZL: &str = "\
SettingInfo = provider(fields = ['value'])

def _impl(ctx):
    return SettingInfo(value = ctx.build_setting_value)

def _checked_string_impl(ctx):
    value = ctx.build_setting_value
    if ctx.attr.values and value not in ctx.attr.values:
        fail('Error setting %s: invalid value \\'%s\\'. Allowed values are %s' % (
            ctx.label, value, ctx.attr.values))
    return SettingInfo(value = value)

bool_flag = rule(implementation = _impl, build_setting = config.bool(flag = True))
int_flag = rule(implementation = _impl, build_setting = config.int(flag = True))
string_flag = rule(
    implementation = _checked_string_impl,
    build_setting = config.string(flag = True),
    attrs = {'values': attr.string_list()},
)
string_list_flag = rule(implementation = _impl, build_setting = config.string_list(flag = True))
repeated_flag = rule(
    implementation = _impl,
    build_setting = config.string(flag = True, allow_multiple = True),
)
string_setting = rule(implementation = _impl, build_setting = config.string())

def _show_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + '.txt')
    lines = ['%s=%r' % (d.label.name, d[SettingInfo].value) for d in ctx.attr.deps]
    ctx.actions.write(out, '\\n'.join(lines) + '\\n')
    return [DefaultInfo(files = depset([out]))]

show = rule(implementation = _show_impl, attrs = {'deps': attr.label_list()})

def _value_impl(ctx):
    return [SettingInfo(value = ctx.attr.value)]

value = rule(implementation = _value_impl, attrs = {'value': attr.string()})
";

const SETTINGS_BUILD: &str = "\
load(':settings.bzl', 'bool_flag', 'int_flag', 'repeated_flag', 'show', 'string_flag',
     'string_list_flag', 'string_setting')

package(default_visibility = ['//visibility:public'])

bool_flag(name = 'fast', build_setting_default = False)
int_flag(name = 'level', build_setting_default = 3)
string_flag(name = 'color', build_setting_default = 'red', values = ['red', 'blue'])
string_list_flag(name = 'langs', build_setting_default = ['c'])
repeated_flag(name = 'copt', build_setting_default = 'O0')
string_setting(name = 'fixed', build_setting_default = 'always')

show(name = 'all', deps = [':fast', ':level', ':color', ':langs', ':copt', ':fixed'])
";

fn settings_workspace() -> Workspace {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "");
    ws.write("flags/settings.bzl", SETTINGS_BZL);
    ws.write("flags/BUILD", SETTINGS_BUILD);
    ws
}

#[test]
fn each_type_of_setting_has_its_default_or_the_command_lines_value() {
    let ws = settings_workspace();
    ok(ws.forge(&["build", "//flags:all"]));
    assert_eq!(
        read(&ws, "forge-bin/flags/all.txt"),
        "fast=False\nlevel=3\ncolor=\"red\"\nlangs=[\"c\"]\ncopt=[\"O0\"]\nfixed=\"always\"\n"
    );
    ok(ws.forge(&[
        "build",
        "--//flags:fast",
        "--//flags:level=7",
        "//flags:all",
        "--//flags:color=blue",
        "--//flags:langs=go,rust",
        "--//flags:copt=-O2",
        "--//flags:copt=-g",
    ]));
    assert_eq!(
        read(&ws, "forge-bin/flags/all.txt"),
        "fast=True\nlevel=7\ncolor=\"blue\"\nlangs=[\"go\", \"rust\"]\ncopt=[\"-O2\", \"-g\"]\n\
         fixed=\"always\"\n"
    );
    // Booleans read as Bazel reads them; `--no` turns one off; the last value given wins.
    ok(ws.forge(&[
        "build",
        "//flags:all",
        "--//flags:fast=1",
        "--no//flags:fast",
    ]));
    assert!(read(&ws, "forge-bin/flags/all.txt").starts_with("fast=False\n"));
    ok(ws.forge(&[
        "build",
        "//flags:all",
        "--//flags:fast=false",
        "--//flags:fast=yes",
    ]));
    assert!(read(&ws, "forge-bin/flags/all.txt").starts_with("fast=True\n"));
}

#[test]
fn an_unknown_flag_or_a_mistyped_value_is_named() {
    let ws = settings_workspace();
    fails_with(
        &ws.forge(&["build", "//flags:all", "--//flags:nope=1"]),
        2,
        &["Error loading option //flags:nope: no such target '//flags:nope'"],
    );
    fails_with(
        &ws.forge(&["build", "//flags:all", "--//flags:all=1"]),
        2,
        &["Unrecognized option: //flags:all (a show rule, not a build setting)"],
    );
    fails_with(
        &ws.forge(&["build", "//flags:all", "--//flags:fixed=x"]),
        2,
        &[
            "ERROR: Unrecognized option: //flags:fixed=x (",
            "not a flag",
        ],
    );
    fails_with(
        &ws.forge(&["build", "//flags:all", "--//flags:level=high"]),
        2,
        &["While parsing option --//flags:level=high: 'high' is not an int"],
    );
    fails_with(
        &ws.forge(&["build", "//flags:all", "--//flags:fast=maybe"]),
        2,
        &["'maybe' is not a boolean"],
    );
    fails_with(
        &ws.forge(&["build", "//flags:all", "--no//flags:color"]),
        2,
        &["Illegal use of 'no' prefix on non-boolean option: --no//flags:color"],
    );
    fails_with(
        &ws.forge(&["build", "//flags:all", "--//flags:color"]),
        2,
        &["Expected value after --//flags:color"],
    );
    // A value the rule does not allow is refused by its implementation, as skylib does.
    fails_with(
        &ws.forge(&["build", "//flags:all", "--//flags:color=green"]),
        1,
        &[
            "\nError in fail: Error setting //flags:color: invalid value 'green'. Allowed \
           values are [\"red\", \"blue\"]\n",
        ],
    );
    // The default is mandatory and typed.
    ws.write(
        "bad/BUILD",
        "load('//flags:settings.bzl', 'int_flag')\nint_flag(name = 'n')\n\
         int_flag(name = 'm', build_setting_default = 'x')\n",
    );
    fails_with(
        &ws.forge(&["build", "//bad:n"]),
        1,
        &["missing value for mandatory attribute 'build_setting_default'"],
    );
    fails_with(
        &ws.forge(&["build", "//bad:m"]),
        1,
        &["build_setting_default"],
    );
}

#[test]
fn configs_transitions_are_refused_by_name() {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "");
    ws.write(
        "pkg/defs.bzl",
        "def _impl(ctx):\n    return []\n\
         r = rule(_impl, attrs = {'tool': attr.label(cfg = config.exec('group'))})\n",
    );
    ws.write("pkg/BUILD", "load(':defs.bzl', 'r')\nr(name = 'x')\n");
    fails_with(
        &ws.forge(&["build", "//pkg:x"]),
        1,
        &["forge does not support `config.exec` yet"],
    );
}

#[test]
fn config_setting_flag_values_choose_a_select_branch() {
    let ws = settings_workspace();
    ws.write(
        "pick/BUILD",
        "\
config_setting(name = 'blue', flag_values = {'//flags:color': 'blue'})
config_setting(name = 'fast_and_high', flag_values = {'//flags:fast': 'true', '//flags:level': '9'})
config_setting(name = 'debugging', flag_values = {'//flags:copt': '-g'})
config_setting(name = 'go_only', flag_values = {'//flags:langs': 'go'})
genrule(
    name = 'pick',
    outs = ['pick.txt'],
    cmd = 'echo ' + select({
        ':blue': 'blue',
        ':fast_and_high': 'fast',
        ':debugging': 'debug',
        ':go_only': 'go',
        '//conditions:default': 'default',
    }) + ' > $@',
)
",
    );
    let pick = |args: &[&str]| -> String {
        let mut all = vec!["build", "//pick"];
        all.extend_from_slice(args);
        ok(ws.forge(&all));
        read(&ws, "forge-bin/pick/pick.txt").trim().to_owned()
    };
    assert_eq!(pick(&[]), "default");
    assert_eq!(pick(&["--//flags:color=blue"]), "blue");
    assert_eq!(pick(&["--//flags:fast", "--//flags:level=9"]), "fast");
    assert_eq!(pick(&["--//flags:fast", "--//flags:level=8"]), "default");
    // A flag given several times matches each of its values.
    assert_eq!(pick(&["--//flags:copt=-O2", "--//flags:copt=-g"]), "debug");
    assert_eq!(pick(&["--//flags:langs=go"]), "go");
    assert_eq!(pick(&["--//flags:langs=go,c"]), "default");
    // A value the setting's type cannot read, and a key that is no build setting.
    ws.write(
        "wrong/BUILD",
        "config_setting(name = 'c', flag_values = {'//flags:level': 'high'})\n\
         config_setting(name = 'd', flag_values = {'//flags:all': 'x'})\n\
         genrule(name = 'g', outs = ['g.txt'], cmd = select({':c': 'a', '//conditions:default': 'b'}))\n\
         genrule(name = 'h', outs = ['h.txt'], cmd = select({':d': 'a', '//conditions:default': 'b'}))\n",
    );
    fails_with(
        &ws.forge(&["build", "//wrong:g"]),
        1,
        &["flag_values: 'high' is not a value of '//flags:level': 'high' is not an int"],
    );
    fails_with(
        &ws.forge(&["build", "//wrong:h"]),
        1,
        &["flag_values: '//flags:all' is a show rule, not a build setting"],
    );
}

#[test]
fn label_flag_and_label_setting_forward_the_providers_of_their_target() {
    let ws = settings_workspace();
    ws.write(
        "impls/BUILD",
        "load('//flags:settings.bzl', 'value')\n\
         value(name = 'default_impl', value = 'default', visibility = ['//visibility:public'])\n\
         value(name = 'other_impl', value = 'other', visibility = ['//visibility:public'])\n",
    );
    // Macros reach it as native.label_flag.
    ws.write(
        "uses/macros.bzl",
        "def impl_flag(name, default):\n    \
         native.label_flag(name = name, build_setting_default = default)\n",
    );
    ws.write(
        "uses/BUILD",
        "load('//flags:settings.bzl', 'show')\nload(':macros.bzl', 'impl_flag')\n\
         impl_flag(name = 'impl', default = '//impls:default_impl')\n\
         label_setting(name = 'fixed_impl', build_setting_default = '//impls:default_impl')\n\
         show(name = 'uses', deps = [':impl', ':fixed_impl'])\n",
    );
    ok(ws.forge(&["build", "//uses"]));
    assert_eq!(
        read(&ws, "forge-bin/uses/uses.txt"),
        "impl=\"default\"\nfixed_impl=\"default\"\n"
    );
    ok(ws.forge(&["build", "//uses", "--//uses:impl=//impls:other_impl"]));
    assert_eq!(
        read(&ws, "forge-bin/uses/uses.txt"),
        "impl=\"other\"\nfixed_impl=\"default\"\n"
    );
    fails_with(
        &ws.forge(&["build", "//uses", "--//uses:fixed_impl=//impls:other_impl"]),
        2,
        &[
            "Unrecognized option: //uses:fixed_impl=//impls:other_impl (",
            "not a flag",
        ],
    );
    fails_with(
        &ws.forge(&["build", "//uses", "--//uses:impl=//impls:missing"]),
        1,
        &["no such target '//impls:missing'"],
    );
    // A chosen target that fails is the one error: the flag waits for it.
    ws.write(
        "broken/BUILD",
        "genrule(name = 'b', outs = ['b.txt'], cmd = 'true', srcs = [':absent'])\n",
    );
    let run = ws.forge(&["build", "//uses", "--//uses:impl=//broken:b"]);
    fails_with(&run, 1, &["missing input file '//broken:absent'"]);
    assert!(!run.stderr.contains("label_flag rule"), "{}", run.both());
}

/// The `(N packages loaded, M targets configured)` of the analysis line.
fn loaded(run: &Run) -> String {
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("INFO: Analyzed"))
        .unwrap_or_else(|| panic!("no analysis line in:\n{}", run.stderr));
    line[line.find('(').unwrap()..].to_owned()
}

#[test]
fn a_changed_flag_value_plans_and_builds_again_and_the_old_value_comes_from_the_cache() {
    let ws = settings_workspace();
    let reused = "(0 packages loaded, 0 targets configured).";
    let first = ok(ws.forge(&["build", "//flags:all"]));
    assert_eq!(counts(&first).0, 1);
    assert_eq!(loaded(&ok(ws.forge(&["build", "//flags:all"]))), reused);

    let blue = ok(ws.forge(&["build", "//flags:all", "--//flags:color=blue"]));
    assert_ne!(loaded(&blue), reused);
    assert_eq!(counts(&blue).0, 1, "the changed value is written again");
    assert!(read(&ws, "forge-bin/flags/all.txt").contains("color=\"blue\""));
    let again = ok(ws.forge(&["build", "//flags:all", "--//flags:color=blue"]));
    assert_eq!(loaded(&again), reused);
    assert_eq!(counts(&again), (0, 0, 1));

    // Back to the default: the plan and the action's outputs come from the caches.
    let back = ok(ws.forge(&["build", "//flags:all"]));
    assert_eq!(loaded(&back), reused);
    assert_eq!(counts(&back), (0, 1, 0));
    assert!(read(&ws, "forge-bin/flags/all.txt").contains("color=\"red\""));
    // The output directory stays the same: a flag is no transition.
    assert!(ws.root().join("forge-bin/flags/all.txt").exists());
}

#[test]
fn flags_of_an_external_repository_are_set_with_its_name() {
    let ws = Workspace::empty();
    ws.write(
        "WORKSPACE",
        "workspace(name = 'main')\nlocal_repository(name = 'flaglib', path = 'flaglib')\n",
    );
    ws.write("flaglib/WORKSPACE", "workspace(name = 'flaglib')\n");
    ws.write("flaglib/flags/settings.bzl", SETTINGS_BZL);
    ws.write(
        "flaglib/flags/BUILD",
        "load(':settings.bzl', 'string_flag')\n\
         string_flag(name = 'color', build_setting_default = 'red', \
         visibility = ['//visibility:public'])\n",
    );
    ws.write(
        "BUILD",
        "load('@flaglib//flags:settings.bzl', 'show', 'string_flag')\n\
         string_flag(name = 'local', build_setting_default = 'here')\n\
         show(name = 'all', deps = ['@flaglib//flags:color', ':local'])\n\
         config_setting(name = 'blue', flag_values = {'@flaglib//flags:color': 'blue'})\n\
         genrule(name = 'g', outs = ['g.txt'], \
         cmd = select({':blue': 'echo blue', '//conditions:default': 'echo red'}) + ' > $@')\n",
    );
    ok(ws.forge(&["build", "//:all", "//:g"]));
    assert_eq!(
        read(&ws, "forge-bin/all.txt"),
        "color=\"red\"\nlocal=\"here\"\n"
    );
    assert_eq!(read(&ws, "forge-bin/g.txt"), "red\n");
    // The main repository by its own name is the main repository.
    ok(ws.forge(&[
        "build",
        "//:all",
        "//:g",
        "--@flaglib//flags:color=blue",
        "--@main//:local=there",
    ]));
    assert_eq!(
        read(&ws, "forge-bin/all.txt"),
        "color=\"blue\"\nlocal=\"there\"\n"
    );
    assert_eq!(read(&ws, "forge-bin/g.txt"), "blue\n");
}

#[test]
fn build_settings_in_rc_files_apply_with_the_command_line_last() {
    let ws = settings_workspace();
    ws.write(
        ".bazelrc",
        "build --//flags:level=5\nbuild:blue --//flags:color=blue\n",
    );
    ok(ws.forge(&["build", "//flags:all", "--config=blue"]));
    let shown = read(&ws, "forge-bin/flags/all.txt");
    assert!(shown.contains("level=5\n"), "{shown}");
    assert!(shown.contains("color=\"blue\"\n"), "{shown}");
    // The command line comes after the rc file, so it wins.
    ok(ws.forge(&["build", "//flags:all", "--//flags:level=9"]));
    assert!(read(&ws, "forge-bin/flags/all.txt").contains("level=9\n"));
}

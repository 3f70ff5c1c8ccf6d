//! Rules as values and attributes as Bazel has them: rules reached however a .bzl file
//! passes them around, computed and late-bound defaults, `allow_rules`, `providers` with
//! Bazel's message, `aspects` recorded, and 0/1 where a bool is expected.

mod common;

use common::{Run, Workspace};

fn ok(run: Run) -> Run {
    assert_eq!(run.code, 0, "forge failed:\n{}", run.both());
    run
}

fn fails_with(run: &Run, expected: &[&str]) {
    assert_ne!(run.code, 0, "forge should have failed:\n{}", run.both());
    for e in expected {
        assert!(run.stderr.contains(e), "expected {e:?} in:\n{}", run.both());
    }
}

/// An empty workspace with its WORKSPACE file, for a test to write packages into.
fn new_workspace() -> Workspace {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "");
    ws
}

fn read(ws: &Workspace, path: &str) -> String {
    std::fs::read_to_string(ws.root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A rule that writes `<name>.txt` holding its `msg`, made by a function, so that each
/// test can reach it in another way.
const WRITER: &str = "\
def _impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + '.txt')
    ctx.actions.write(out, ctx.attr.msg)
    return [DefaultInfo(files = depset([out]))]

def make_rule():
    return rule(implementation = _impl, attrs = {'msg': attr.string()})
";

#[test]
fn a_rule_is_found_however_it_is_reached() {
    let ws = new_workspace();
    ws.write(
        "pkg/defs.bzl",
        &format!(
            "{WRITER}
_private = make_rule()
made = make_rule()
kinds = struct(member = _private)

def public_macro(name, **kwargs):
    _private(name = name, **kwargs)
"
        ),
    );
    // Re-exported under other names from a second file, and as a struct member.
    ws.write(
        "pkg/reexport.bzl",
        "load(':defs.bzl', 'kinds', _m = 'made')\nrenamed = _m\nmember_kind = kinds.member\n",
    );
    ws.write(
        "pkg/BUILD",
        "load(':defs.bzl', 'public_macro', 'made', 'kinds')
load(':reexport.bzl', 'renamed', 'member_kind')
public_macro(name = 'a', msg = 'private behind a macro')
made(name = 'b', msg = 'returned from a function')
kinds.member(name = 'c', msg = 'struct member')
renamed(name = 'd', msg = 're-exported')
member_kind(name = 'e', msg = 'member re-exported')
",
    );
    ok(ws.forge(&["build", "//pkg:all"]));
    assert_eq!(read(&ws, "forge-bin/pkg/a.txt"), "private behind a macro");
    assert_eq!(read(&ws, "forge-bin/pkg/b.txt"), "returned from a function");
    assert_eq!(read(&ws, "forge-bin/pkg/c.txt"), "struct member");
    assert_eq!(read(&ws, "forge-bin/pkg/d.txt"), "re-exported");
    assert_eq!(read(&ws, "forge-bin/pkg/e.txt"), "member re-exported");
    // `kind()` names the rule by the global it was first assigned to, as Bazel does.
    let q = ok(ws.forge(&["query", "kind('made rule', //pkg:all)"]));
    assert_eq!(q.stdout.trim(), "//pkg:b\n//pkg:d");
}

#[test]
fn a_rule_never_assigned_to_a_global_loads_but_cannot_be_called() {
    let ws = new_workspace();
    ws.write(
        "pkg/defs.bzl",
        &format!(
            "{WRITER}
written = make_rule()
UNEXPORTED = [make_rule()]

def call_unexported(name):
    UNEXPORTED[0](name = name)
"
        ),
    );
    ws.write(
        "pkg/BUILD",
        "load(':defs.bzl', 'written')\nwritten(name = 'fine', msg = 'loads')\n",
    );
    // Bazel loads a .bzl file holding an unexported rule; only calling it is an error.
    ok(ws.forge(&["build", "//pkg:fine"]));
    assert_eq!(read(&ws, "forge-bin/pkg/fine.txt"), "loads");

    ws.write(
        "bad/BUILD",
        "load('//pkg:defs.bzl', 'call_unexported')\ncall_unexported('x')\n",
    );
    let run = ws.forge(&["build", "//bad:all"]);
    fails_with(
        &run,
        &[
            "pkg/defs.bzl:",
            "was never assigned to a global variable",
            "`my_rule = rule(...)`",
        ],
    );
}

#[test]
fn computed_defaults_see_the_other_attributes() {
    // As bazelbuild/examples' computed_dependencies: a private label whose default is a
    // function of another attribute, choosing a tool or none.
    let ws = new_workspace();
    ws.write(
        "tools/BUILD",
        "genrule(name = 'upper', outs = ['upper.sh'], cmd = 'echo \"tr a-z A-Z\" > $@', \
         executable = True, visibility = ['//visibility:public'])\n",
    );
    ws.write(
        "pkg/filter.bzl",
        "_filters = {'upper': Label('//tools:upper'), 'none': None}

def _pick(filter):
    return _filters[filter]

def _impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + '.txt')
    if ctx.attr._filter_bin:
        ctx.actions.run_shell(
            inputs = [ctx.file.src],
            tools = [ctx.executable._filter_bin],
            outputs = [out],
            command = '$(cat %s) < %s > %s' % (ctx.executable._filter_bin.path, ctx.file.src.path, out.path),
        )
    else:
        ctx.actions.run_shell(inputs = [ctx.file.src], outputs = [out],
                              command = 'cp %s %s' % (ctx.file.src.path, out.path))
    return [DefaultInfo(files = depset([out]))]

filtered = rule(implementation = _impl, attrs = {
    'filter': attr.string(values = _filters.keys(), default = 'none'),
    'src': attr.label(allow_single_file = True, mandatory = True),
    '_filter_bin': attr.label(default = _pick, executable = True, cfg = 'exec'),
})
",
    );
    ws.write("pkg/hello.txt", "hello\n");
    ws.write(
        "pkg/BUILD",
        "load(':filter.bzl', 'filtered')
filtered(name = 'loud', src = 'hello.txt', filter = 'upper')
filtered(name = 'plain', src = 'hello.txt')
",
    );
    ok(ws.forge(&["build", "//pkg:all"]));
    assert_eq!(read(&ws, "forge-bin/pkg/loud.txt"), "HELLO\n");
    assert_eq!(read(&ws, "forge-bin/pkg/plain.txt"), "hello\n");
    // The computed dependency is a real edge of the graph.
    let deps = ok(ws.forge(&["query", "deps(//pkg:loud)"]));
    assert!(deps.stdout.contains("//tools:upper"), "{}", deps.both());
    let deps = ok(ws.forge(&["query", "deps(//pkg:plain)"]));
    assert!(!deps.stdout.contains("//tools:upper"), "{}", deps.both());

    // A parameter that names no attribute is the .bzl author's mistake, named.
    ws.write(
        "pkg/filter.bzl",
        &read(&ws, "pkg/filter.bzl").replace("def _pick(filter):", "def _pick(filtr):"),
    );
    ws.write(
        "pkg/filter.bzl",
        &read(&ws, "pkg/filter.bzl").replace("_filters[filter]", "_filters[filtr]"),
    );
    let run = ws.forge(&["build", "//pkg:all"]);
    fails_with(
        &run,
        &[
            "pkg/BUILD:2",
            "computed default of attribute '_filter_bin'",
            "parameter 'filtr' names no attribute",
        ],
    );
}

#[test]
fn late_bound_defaults_have_no_label_without_their_flag() {
    let ws = new_workspace();
    ws.write(
        "pkg/defs.bzl",
        "def _impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + '.txt')
    ctx.actions.write(out, 'generator: %s' % ctx.attr._lcov_merger)
    return [DefaultInfo(files = depset([out]))]

covered = rule(implementation = _impl, attrs = {
    '_lcov_merger': attr.label(default = configuration_field(fragment = 'coverage', name = 'output_generator')),
})
",
    );
    ws.write(
        "pkg/BUILD",
        "load(':defs.bzl', 'covered')\ncovered(name = 'c')\n",
    );
    ok(ws.forge(&["build", "//pkg:c"]));
    assert_eq!(read(&ws, "forge-bin/pkg/c.txt"), "generator: None");

    // A public late-bound attribute is refused, as Bazel refuses it.
    ws.write(
        "pkg/defs.bzl",
        &read(&ws, "pkg/defs.bzl").replace("'_lcov_merger'", "'lcov_merger'"),
    );
    let run = ws.forge(&["build", "//pkg:c"]);
    fails_with(&run, &["attribute 'lcov_merger' has a late-bound default"]);

    // A field forge cannot give a value is named, never guessed.
    ws.write(
        "pkg/defs.bzl",
        "x = configuration_field(fragment = 'java', name = 'java_toolchain')\n",
    );
    let run = ws.forge(&["build", "//pkg:c"]);
    fails_with(
        &run,
        &[
            "pkg/defs.bzl:1",
            "forge does not support configuration_field(fragment = \"java\", name = \"java_toolchain\")",
        ],
    );
}

/// A rule `kind` with attribute `deps` declared by `attr_decl`, and two rules to depend on.
fn deps_workspace(attr_decl: &str) -> Workspace {
    let ws = new_workspace();
    ws.write(
        "pkg/defs.bzl",
        &format!(
            "InfoA = provider(fields = [])

def _provider_impl(ctx):
    return [InfoA()]

def _plain_impl(ctx):
    return []

def _user_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + '.txt')
    ctx.actions.write(out, ','.join([str(d.label) for d in ctx.attr.deps]))
    return [DefaultInfo(files = depset([out]))]

with_info = rule(implementation = _provider_impl)
plain = rule(implementation = _plain_impl)
user = rule(implementation = _user_impl, attrs = {{'deps': {attr_decl}}})
"
        ),
    );
    ws
}

#[test]
fn allow_rules_and_providers_are_checked_with_bazels_message() {
    let ws = deps_workspace("attr.label_list(allow_rules = ['with_info'])");
    ws.write(
        "pkg/BUILD",
        "load(':defs.bzl', 'plain', 'user', 'with_info')
with_info(name = 'i')
plain(name = 'p')
user(name = 'good', deps = [':i'])
user(name = 'bad', deps = [':i', ':p'])
",
    );
    ok(ws.forge(&["build", "//pkg:good"]));
    assert_eq!(read(&ws, "forge-bin/pkg/good.txt"), "//pkg:i");
    let run = ws.forge(&["build", "//pkg:bad"]);
    fails_with(
        &run,
        &[
            "pkg/BUILD:5:1: in deps attribute of user rule //pkg:bad: rule '//pkg:p' is \
             misplaced here (expected with_info)",
        ],
    );

    // With providers too, a rule of another kind is fine when it has them.
    let ws = deps_workspace("attr.label_list(allow_rules = ['plain'], providers = [InfoA])");
    ws.write(
        "pkg/BUILD",
        "load(':defs.bzl', 'plain', 'user', 'with_info')
with_info(name = 'i')
plain(name = 'p')
user(name = 'both', deps = [':i', ':p'])
",
    );
    ok(ws.forge(&["build", "//pkg:both"]));

    let ws = deps_workspace("attr.label_list(providers = [InfoA])");
    ws.write(
        "pkg/BUILD",
        "load(':defs.bzl', 'plain', 'user')\nplain(name = 'p')\nuser(name = 'bad', deps = [':p'])\n",
    );
    let run = ws.forge(&["build", "//pkg:bad"]);
    fails_with(
        &run,
        &[
            "pkg/BUILD:3:1: in deps attribute of user rule //pkg:bad: '//pkg:p' does not have \
           mandatory providers: 'InfoA'",
        ],
    );
}

#[test]
fn propagating_aspects_apply_where_an_attribute_asks_for_them() {
    let ws = deps_workspace("attr.label_list(aspects = [collect])");
    // The aspect is declared before the rule that names it; it counts the targets it
    // visits along `deps`, and the user rule sees the count on each dependency.
    let defs = read(&ws, "pkg/defs.bzl");
    ws.write(
        "pkg/defs.bzl",
        &defs
            .replace(
                "with_info = rule(",
                "CountInfo = provider(fields = ['n'])\n\n\
                 def _collect_impl(target, ctx):\n    \
                 return [CountInfo(n = 1 + len([d for d in getattr(ctx.rule.attr, 'deps', []) if CountInfo in d]))]\n\n\
                 collect = aspect(implementation = _collect_impl, attr_aspects = ['deps'])\n\n\
                 with_info = rule(",
            )
            .replace(
                "str(d.label) for d in ctx.attr.deps",
                "'%s=%d' % (d.label, d[CountInfo].n) for d in ctx.attr.deps",
            ),
    );
    ws.write(
        "pkg/BUILD",
        "load(':defs.bzl', 'plain', 'user')
plain(name = 'p')
user(name = 'alone')
user(name = 'middle', deps = [':p'])
user(name = 'through', deps = [':middle', ':p'])
",
    );
    ok(ws.forge(&["build", "//pkg:alone"]));
    ok(ws.forge(&["build", "//pkg:through"]));
    assert_eq!(
        read(&ws, "forge-bin/pkg/through.txt"),
        "//pkg:middle=2,//pkg:p=1"
    );
}

#[test]
fn zero_and_one_are_booleans_where_bazel_takes_them() {
    let ws = new_workspace();
    ws.write(
        "pkg/BUILD",
        "package(default_testonly = 1, default_visibility = ['//visibility:public'])\n\
         filegroup(name = 'fg', srcs = [])\n",
    );
    ws.write(
        "user/BUILD",
        "filegroup(name = 'u', srcs = ['//pkg:fg'], testonly = 0)\n",
    );
    // default_testonly = 1 made //pkg:fg testonly, so a non-testonly user is refused.
    let run = ws.forge(&["build", "//user:u"]);
    fails_with(&run, &["depends on testonly target '//pkg:fg'"]);
    ws.write(
        "user/BUILD",
        "filegroup(name = 'u', srcs = ['//pkg:fg'], testonly = 1)\n",
    );
    ok(ws.forge(&["build", "//user:u"]));
    ws.write(
        "pkg/BUILD",
        "package(default_testonly = 2)\nfilegroup(name = 'fg', srcs = [])\n",
    );
    let run = ws.forge(&["build", "//pkg:fg"]);
    fails_with(&run, &["pkg/BUILD:1", "default_testonly", "bool"]);
}

#[test]
fn bazel_globals_forge_lacks_load_and_refuse_to_be_used_by_name() {
    let ws = new_workspace();
    ws.write(
        "pkg/defs.bzl",
        "def _impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + '.txt')
    has = [str(JavaInfo in d) for d in ctx.attr.deps]
    ctx.actions.write(out, ','.join(has))
    if ctx.attr.compile:
        java_common.compile(actions = ctx.actions)
    if ctx.attr.make_info:
        return [JavaInfo()]
    return [DefaultInfo(files = depset([out]))]

# Only reached when called: in Bazel this file loads, so it must in forge.
def _unused_toolchain(ctx):
    return platform_common.ToolchainInfo(compiler = 'cc')

uses = rule(implementation = _impl, attrs = {
    'deps': attr.label_list(),
    'compile': attr.bool(),
    'make_info': attr.bool(),
})
",
    );
    ws.write(
        "pkg/BUILD",
        "load(':defs.bzl', 'uses')
filegroup(name = 'files', srcs = [])
uses(name = 'asks', deps = [':files'])
uses(name = 'compiles', compile = True)
uses(name = 'creates', make_info = True)
",
    );
    // Asking whether a target has a provider no forge rule returns: it has not.
    ok(ws.forge(&["build", "//pkg:asks"]));
    assert_eq!(read(&ws, "forge-bin/pkg/asks.txt"), "False");
    let run = ws.forge(&["build", "//pkg:compiles"]);
    fails_with(
        &run,
        &[
            "pkg/defs.bzl:6",
            "forge does not support `java_common.compile` yet",
        ],
    );
    let run = ws.forge(&["build", "//pkg:creates"]);
    fails_with(
        &run,
        &[
            "pkg/defs.bzl:8",
            "forge does not support creating `JavaInfo` yet",
        ],
    );
}

#[test]
fn a_rule_whose_toolchain_is_not_registered_fails_only_at_its_targets() {
    // As rules_cc's cc_flags_supplier.bzl: a file whose rules need a toolchain the
    // workspace does not register, loaded by a file whose other rules do not.
    let ws = new_workspace();
    ws.write(
        "pkg/defs.bzl",
        &format!(
            "{WRITER}
written = make_rule()
needs_toolchain = rule(implementation = _impl, toolchains = ['//tc:type'], fragments = ['cpp'])
"
        ),
    );
    ws.write(
        "pkg/BUILD",
        "load(':defs.bzl', 'needs_toolchain', 'written')
written(name = 'fine', msg = 'built')
needs_toolchain(name = 'tc')
",
    );
    ok(ws.forge(&["build", "//pkg:fine"]));
    assert_eq!(read(&ws, "forge-bin/pkg/fine.txt"), "built");
    let run = ws.forge(&["build", "//pkg:tc"]);
    fails_with(
        &run,
        &[
            "pkg/BUILD:3:1: in needs_toolchain rule //pkg:tc: while resolving toolchains: no \
             matching toolchains found for types //tc:type",
        ],
    );
}

#[test]
fn output_group_info_is_a_mapping_and_ctx_fields_forge_lacks_are_named() {
    let ws = new_workspace();
    ws.write(
        "pkg/defs.bzl",
        "def _groups_impl(ctx):
    a = ctx.actions.declare_file('a.txt')
    ctx.actions.write(a, 'a')
    return [OutputGroupInfo(first = depset([a]), second = depset())]

def _reader_impl(ctx):
    info = ctx.attr.dep[OutputGroupInfo]
    out = ctx.actions.declare_file(ctx.label.name + '.txt')
    names = sorted([g for g in info])
    files = [f.basename for f in info['first'].to_list()]
    ctx.actions.write(out, '%s %s %s %s' % (names, 'first' in info, 'third' in info, files))
    if ctx.attr.missing:
        info['third']
    if ctx.attr.fragments:
        list(ctx.fragments.java.default_javac_flags)
    return [DefaultInfo(files = depset([out]))]

groups = rule(implementation = _groups_impl)
reader = rule(implementation = _reader_impl, attrs = {
    'dep': attr.label(),
    'missing': attr.bool(),
    'fragments': attr.bool(),
})
",
    );
    ws.write(
        "pkg/BUILD",
        "load(':defs.bzl', 'groups', 'reader')
groups(name = 'g')
reader(name = 'r', dep = ':g')
reader(name = 'missing', dep = ':g', missing = True)
reader(name = 'fragments', dep = ':g', fragments = True)
genrule(name = 'script', outs = ['script.sh'], cmd = 'echo \"echo ran\" > $@')
",
    );
    ok(ws.forge(&["build", "//pkg:r"]));
    assert_eq!(
        read(&ws, "forge-bin/pkg/r.txt"),
        "[\"first\", \"second\"] True False [\"a.txt\"]"
    );
    fails_with(
        &ws.forge(&["build", "//pkg:missing"]),
        &["Output group third not present"],
    );
    fails_with(
        &ws.forge(&["build", "//pkg:fragments"]),
        &["forge does not support `ctx.fragments.java.default_javac_flags` yet"],
    );
    // Every output of a command is r-xr-xr-x, as Bazel leaves it: a script a genrule
    // writes without chmod runs.
    ok(ws.forge(&["build", "//pkg:script"]));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(ws.root().join("forge-bin/pkg/script.sh"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o555);
}

#[test]
fn an_action_reading_the_volatile_status_does_not_run_again_for_it_alone() {
    let ws = new_workspace();
    ws.write(
        "pkg/defs.bzl",
        "def _impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + '.txt')
    ctx.actions.run_shell(inputs = [ctx.version_file], outputs = [out],
                          command = 'grep -c BUILD_TIMESTAMP %s > %s' % (ctx.version_file.path, out.path))
    return [DefaultInfo(files = depset([out]))]

stamped = rule(implementation = _impl)
",
    );
    ws.write(
        "pkg/BUILD",
        "load(':defs.bzl', 'stamped')\nstamped(name = 's')\n",
    );
    let first = ok(ws.forge(&["build", "//pkg:s"]));
    assert!(
        first.stderr.contains("1 action executed"),
        "{}",
        first.both()
    );
    assert_eq!(read(&ws, "forge-bin/pkg/s.txt"), "1\n");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = ok(ws.forge(&["build", "//pkg:s"]));
    assert!(
        second.stderr.contains("0 actions executed"),
        "{}",
        second.both()
    );
}

#[test]
fn transitions_are_declared_and_applied_to_the_targets_needing_them() {
    // As skylib's unittest.bzl: every test file loads a file that declares transitions.
    let ws = new_workspace();
    ws.write(
        "pkg/defs.bzl",
        &format!(
            "{WRITER}
def _flip(settings, attr):
    return {{'//command_line_option:compilation_mode': 'opt'}}

flip = transition(implementation = _flip, inputs = [],
                  outputs = ['//command_line_option:compilation_mode'])
for_tests = analysis_test_transition(settings = {{'//command_line_option:cpu': 'arm'}})

written = make_rule()
incoming = rule(_impl, cfg = flip, attrs = {{
    'msg': attr.string(),
    '_allowlist_function_transition': attr.label(
        default = '@bazel_tools//tools/allowlists/function_transition_allowlist'),
}})
outgoing = rule(_impl, attrs = {{'msg': attr.string(), 'dep': attr.label(cfg = for_tests)}})
"
        ),
    );
    ws.write(
        "pkg/BUILD",
        "load(':defs.bzl', 'incoming', 'outgoing', 'written')
written(name = 'fine', msg = 'built')
incoming(name = 'in', msg = 'transitioned')
outgoing(name = 'out', msg = 'tested', dep = ':fine')
",
    );
    ok(ws.forge(&["build", "//pkg:fine", "//pkg:in", "//pkg:out"]));
    assert_eq!(read(&ws, "forge-bin/pkg/fine.txt"), "built");
    assert_eq!(read(&ws, "forge-bin/pkg/out.txt"), "tested");
    // The incoming transition builds its target with -c opt, in a directory of its own.
    assert!(!ws.root().join("forge-bin/pkg/in.txt").exists());
    let opt = std::fs::read_dir(ws.root().join("forge-out"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.contains("-opt-ST-"))
        .expect("a transitioned directory");
    assert_eq!(
        read(&ws, &format!("forge-out/{opt}/bin/pkg/in.txt")),
        "transitioned"
    );
}

#[test]
fn args_and_test_env_are_expanded_and_tokenized_as_bazel_does() {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "workspace(name = 'ws')\n");
    ws.write("pkg/data.txt", "the data\n");
    ws.write(
        "pkg/check.sh",
        "#!/bin/bash\nset -e\n\
         [ \"$1\" = pkg/data.txt ] || { echo \"arg 1: $1\"; exit 1; }\n\
         [ \"$2\" = 'two words' ] || { echo \"arg 2: $2\"; exit 1; }\n\
         [ \"$3\" = fastbuild ] || { echo \"arg 3: $3\"; exit 1; }\n\
         [ \"$4\" = '$(location :data.txt)' ] || { echo \"arg 4: $4\"; exit 1; }\n\
         [ \"$5\" = '$TEST_SRCDIR' ] || { echo \"arg 5: $5\"; exit 1; }\n\
         [ \"$DATA\" = pkg/data.txt ] || { echo \"DATA: $DATA\"; exit 1; }\n\
         cat \"$1\"\n",
    );
    ws.write(
        "pkg/BUILD",
        "sh_test(
    name = 'check_test',
    srcs = ['check.sh'],
    data = ['data.txt'],
    args = [\"$(location :data.txt) 'two words'\", '$(COMPILATION_MODE)', \"'$$(location :data.txt)'\", '$$TEST_SRCDIR'],
    env = {'DATA': '$(rootpath :data.txt)'},
)
sh_binary(
    name = 'check',
    srcs = ['check.sh'],
    data = ['data.txt'],
    args = [\"$(location :data.txt) 'two words'\", '$(COMPILATION_MODE)', \"'$$(location :data.txt)'\", '$$TEST_SRCDIR'],
)
",
    );
    let run = ws.forge(&["test", "--test_output=errors", "//pkg:check_test"]);
    assert_eq!(run.code, 0, "{}", run.both());
    let run = ws.forge_with("", &["run", "//pkg:check"], &[("DATA", "pkg/data.txt")]);
    assert_eq!(run.code, 0, "{}", run.both());
    assert_eq!(run.stdout, "the data\n");
    // A rule that runs nothing may have an `args` attribute of its own (skylib's
    // run_binary): its implementation gets it as written.
    ws.write(
        "pkg/own.bzl",
        "def _impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + '.txt')
    ctx.actions.write(out, '|'.join(ctx.attr.args) + '\\n')
    return [DefaultInfo(files = depset([out]))]

own_args = rule(implementation = _impl, attrs = {'args': attr.string_list()})
",
    );
    ws.write(
        "pkg/BUILD",
        "load(':own.bzl', 'own_args')\nown_args(name = 'own', args = ['$PATH', '$$PATH', 'a b'])\n",
    );
    let run = ws.forge(&["build", "//pkg:own"]);
    assert_eq!(run.code, 0, "{}", run.both());
    assert_eq!(
        std::fs::read_to_string(ws.root().join("forge-bin/pkg/own.txt")).unwrap(),
        "$PATH|$$PATH|a b\n"
    );
    // A label the target does not depend on is named.
    ws.write(
        "pkg/BUILD",
        "sh_binary(name = 'bad', srcs = ['check.sh'], args = ['$(location :nope.txt)'])\n",
    );
    fails_with(
        &ws.forge(&["build", "//pkg:bad"]),
        &[
            "in args attribute",
            "'//pkg:nope.txt' is not a dependency of //pkg:bad",
        ],
    );
}

#[test]
fn targets_writing_one_file_conflict_and_keep_going_builds_the_rest() {
    let ws = new_workspace();
    ws.write(
        "pkg/defs.bzl",
        "def _impl(ctx):
    out = ctx.actions.declare_file('out.txt')
    ctx.actions.write(out, ctx.label.name)
    return [DefaultInfo(files = depset([out]))]

same_name = rule(implementation = _impl)
",
    );
    ws.write(
        "pkg/BUILD",
        "load(':defs.bzl', 'same_name')
same_name(name = 'a')
same_name(name = 'b')
genrule(name = 'fine', outs = ['fine.txt'], cmd = 'echo fine > $@')
",
    );
    let conflict = "file 'forge-out/";
    let run = ws.forge(&["build", "//pkg:all"]);
    fails_with(
        &run,
        &[
            conflict,
            "out.txt' is generated by these conflicting actions of //pkg:a and //pkg:b",
        ],
    );
    assert!(!ws.root().join("forge-bin/pkg/fine.txt").exists());
    // With --keep_going the two are left out, the rest is built, and the build fails.
    let run = ws.forge(&["build", "--keep_going", "//pkg:all"]);
    fails_with(&run, &[conflict]);
    assert_eq!(read(&ws, "forge-bin/pkg/fine.txt"), "fine\n");
}

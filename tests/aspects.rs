//! Aspects as Bazel 4 applies them: propagating along `attr_aspects` (each target visited
//! once), the aspect's own attributes (a private tool, a parameter from the requesting
//! rule), `required_providers`, aspect-on-aspect (`required_aspect_providers`, `requires`),
//! `--aspects` with `--output_groups` on the command line (cached like any action), and the
//! errors.

mod common;

use common::{Run, Workspace, bin_dir, counts};

fn ok(run: Run) -> Run {
    assert_eq!(run.code, 0, "forge failed:\n{}", run.both());
    run
}

fn failed_with(run: &Run, parts: &[&str]) {
    assert_ne!(run.code, 0, "forge should have failed:\n{}", run.both());
    for part in parts {
        assert!(run.stderr.contains(part), "no {part:?} in:\n{}", run.both());
    }
}

fn read(ws: &Workspace, path: &str) -> String {
    std::fs::read_to_string(ws.root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Rules: `lang_library` (srcs, one `main` file, deps; advertises `LangInfo`), `data_blob`
/// (no provider advertised, deps), and the aspects and collectors each test uses.
const DEFS: &str = r#"
LangInfo = provider(fields = ["name"])
CollectedInfo = provider(fields = ["files", "kinds"])

def _lang_library_impl(ctx):
    return [LangInfo(name = ctx.label.name)]

lang_library = rule(
    implementation = _lang_library_impl,
    attrs = {
        "srcs": attr.label_list(allow_files = True),
        "main": attr.label(allow_single_file = True),
        "deps": attr.label_list(),
        "mode": attr.string(default = "upper"),
    },
    provides = [LangInfo],
)

def _data_blob_impl(ctx):
    return []

data_blob = rule(
    implementation = _data_blob_impl,
    attrs = {"srcs": attr.label_list(allow_files = True), "deps": attr.label_list()},
)

# Collects every source along `deps`, transitively, and the rule kinds it visited.
def _collect_impl(target, ctx):
    print("visiting " + str(ctx.label))
    direct = [f for f in ctx.rule.files.srcs]
    if ctx.rule.file.main:
        direct.append(ctx.rule.file.main)
    kinds = [ctx.rule.kind]
    for dep in ctx.rule.attr.deps:
        kinds.extend(dep[CollectedInfo].kinds)
    return [CollectedInfo(
        files = depset(direct, transitive = [dep[CollectedInfo].files for dep in ctx.rule.attr.deps]),
        kinds = kinds,
    )]

collect = aspect(implementation = _collect_impl, attr_aspects = ["deps"])

def _report_impl(ctx):
    lines = []
    for dep in ctx.attr.deps:
        info = dep[CollectedInfo]
        lines.append("%s: %s %s" % (
            dep.label.name,
            sorted([f.short_path for f in info.files.to_list()]),
            sorted(info.kinds),
        ))
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    ctx.actions.write(out, "\n".join(lines) + "\n")
    return [DefaultInfo(files = depset([out]))]

report = rule(
    implementation = _report_impl,
    attrs = {"deps": attr.label_list(aspects = [collect])},
)
"#;

/// A diamond: `top` -> `left`, `right` -> `base`, each with a source and `top` with a
/// `main` file.
const GRAPH: &str = r#"
load(":defs.bzl", "lang_library", "data_blob", "report")

lang_library(name = "base", srcs = ["base.src"])
lang_library(name = "left", srcs = ["left.src"], deps = [":base"])
lang_library(name = "right", srcs = ["right.src"], deps = [":base"])
lang_library(name = "top", srcs = ["top.src"], main = "main.src", deps = [":left", ":right"])

report(name = "files", deps = [":top", ":left"])

alias(name = "top_alias", actual = ":top")
report(name = "through_alias", deps = [":top_alias"])
"#;

fn workspace() -> Workspace {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "workspace(name = \"aspects\")\n");
    ws.write("pkg/defs.bzl", DEFS);
    ws.write("pkg/BUILD", GRAPH);
    for f in ["base", "left", "right", "top", "main"] {
        ws.write(&format!("pkg/{f}.src"), f);
    }
    ws
}

#[test]
fn an_aspect_propagates_along_deps_and_visits_each_target_once() {
    let ws = workspace();
    let run = ok(ws.forge(&["build", "//pkg:files"]));
    assert_eq!(
        read(&ws, "forge-bin/pkg/files.txt"),
        "top: [\"pkg/base.src\", \"pkg/left.src\", \"pkg/main.src\", \"pkg/right.src\", \
         \"pkg/top.src\"] [\"lang_library\", \"lang_library\", \"lang_library\", \
         \"lang_library\", \"lang_library\"]\n\
         left: [\"pkg/base.src\", \"pkg/left.src\"] [\"lang_library\", \"lang_library\"]\n"
    );
    // As in Bazel, an aspect goes through an alias to the target it stands for (visited
    // once, whichever way it is reached).
    let aliased = ok(ws.forge(&["build", "//pkg:through_alias", "//pkg:files"]));
    assert!(
        read(&ws, "forge-bin/pkg/through_alias.txt").starts_with(
            "top_alias: [\"pkg/base.src\", \"pkg/left.src\", \"pkg/main.src\", \"pkg/right.src\", \
             \"pkg/top.src\"] [\"lang_library\""
        ),
        "{}",
        read(&ws, "forge-bin/pkg/through_alias.txt")
    );
    assert_eq!(
        aliased.stderr.matches("visiting //pkg:top\n").count(),
        1,
        "{}",
        aliased.stderr
    );
    // Reached through four paths (top/left/right and report's own left), `base` is visited
    // once: one application per (target, configuration, aspect).
    for label in ["base", "left", "right", "top"] {
        let visits = run
            .stderr
            .matches(&format!("visiting //pkg:{label}\n"))
            .count();
        assert_eq!(visits, 1, "{label}:\n{}", run.stderr);
    }
}

#[test]
fn an_aspect_has_a_private_tool_and_a_parameter_from_the_requesting_rule() {
    let ws = workspace();
    ws.write(
        "tools/BUILD",
        "sh_binary(name = \"shout\", srcs = [\"shout.sh\"], visibility = [\"//visibility:public\"])\n",
    );
    ws.write(
        "tools/shout.sh",
        "#!/bin/sh\nset -e\nmode=$1; out=$2; shift 2\n\
         if [ \"$mode\" = upper ]; then cat \"$@\" | tr a-z A-Z > \"$out\"; \
         else cat \"$@\" > \"$out\"; fi\n",
    );
    std::fs::set_permissions(
        ws.root().join("tools/shout.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    ws.write(
        "pkg/shout.bzl",
        r#"
ShoutInfo = provider(fields = ["outs"])

def _shout_impl(target, ctx):
    out = ctx.actions.declare_file("%s.%s.out" % (ctx.label.name, ctx.attr.mode))
    ctx.actions.run(
        executable = ctx.executable._tool,
        arguments = [ctx.attr.mode, out.path] + [f.path for f in ctx.rule.files.srcs],
        inputs = ctx.rule.files.srcs,
        outputs = [out],
    )
    return [ShoutInfo(outs = depset([out], transitive = [d[ShoutInfo].outs for d in ctx.rule.attr.deps]))]

shout = aspect(
    implementation = _shout_impl,
    attr_aspects = ["deps"],
    attrs = {
        "mode": attr.string(values = ["upper", "lower"]),
        "_tool": attr.label(default = "//tools:shout", executable = True, cfg = "exec"),
    },
)

def _shouted_impl(ctx):
    return [DefaultInfo(files = depset(transitive = [d[ShoutInfo].outs for d in ctx.attr.deps]))]

shouted = rule(
    implementation = _shouted_impl,
    attrs = {
        "deps": attr.label_list(aspects = [shout]),
        "mode": attr.string(),
    },
)
"#,
    );
    ws.write(
        "pkg/BUILD",
        &format!(
            "{GRAPH}\nload(':shout.bzl', 'shouted')\n\
             shouted(name = 'loud', deps = [':left'], mode = 'upper')\n\
             shouted(name = 'quiet', deps = [':left'], mode = 'lower')\n\
             shouted(name = 'wrong', deps = [':left'], mode = 'shrill')\n"
        ),
    );
    ok(ws.forge(&["build", "//pkg:loud", "//pkg:quiet"]));
    assert_eq!(read(&ws, "forge-bin/pkg/left.upper.out"), "LEFT");
    assert_eq!(read(&ws, "forge-bin/pkg/base.upper.out"), "BASE");
    // The same targets, visited with another parameter: another application.
    assert_eq!(read(&ws, "forge-bin/pkg/left.lower.out"), "left");
    assert_eq!(read(&ws, "forge-bin/pkg/base.lower.out"), "base");
    // A parameter outside the aspect's `values` is an error naming both.
    failed_with(
        &ws.forge(&["build", "//pkg:wrong"]),
        &[
            "//pkg:wrong",
            "invalid value in 'mode' attribute: has to be one of \"upper\", \"lower\" \
             instead of 'shrill'",
        ],
    );
}

#[test]
fn an_aspect_with_a_tool_follows_every_attribute_across_transitions() {
    let ws = workspace();
    ws.write(
        "tools/BUILD",
        "sh_binary(name = \"stamp\", srcs = [\"stamp.sh\"], visibility = [\"//visibility:public\"])\n",
    );
    ws.write("tools/stamp.sh", "#!/bin/sh\necho \"$1\" > \"$2\"\n");
    std::fs::set_permissions(
        ws.root().join("tools/stamp.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    ws.write(
        "pkg/stamp.bzl",
        r#"
StampInfo = provider(fields = ["stamps"])

def _stamp_impl(target, ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".stamp")
    ctx.actions.run(executable = ctx.executable._tool, arguments = [ctx.label.name, out.path], outputs = [out])
    stamps = [out]
    for name in ["deps", "helpers"]:
        for d in getattr(ctx.rule.attr, name, []):
            if StampInfo in d:
                stamps.extend(d[StampInfo].stamps)
    return [StampInfo(stamps = stamps)]

# A private tool in the visited target's configuration (cfg = "target").
stamp = aspect(
    implementation = _stamp_impl,
    attr_aspects = ["*"],
    attrs = {"_tool": attr.label(default = "//tools:stamp", executable = True, cfg = "target")},
)

def _with_helpers_impl(ctx):
    return []

with_helpers = rule(
    implementation = _with_helpers_impl,
    attrs = {"helpers": attr.label_list(cfg = "exec")},
)

def _stamped_impl(ctx):
    return [DefaultInfo(files = depset([s for d in ctx.attr.deps for s in d[StampInfo].stamps]))]

stamped = rule(implementation = _stamped_impl, attrs = {"deps": attr.label_list(aspects = [stamp])})
"#,
    );
    ws.write(
        "pkg/BUILD",
        &format!(
            "{GRAPH}\nload(':stamp.bzl', 'stamped', 'with_helpers')\n\
             with_helpers(name = 'uses', helpers = [':left'])\n\
             stamped(name = 'stamped', deps = [':uses'])\n"
        ),
    );
    let run = ok(ws.forge(&["build", "//pkg:stamped"]));
    // `left` and `base` are reached through an exec-configured attribute: the aspect's tool
    // was analysed there too, and their stamps are built in the exec configuration.
    let built: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains(".stamp"))
        .collect();
    assert!(
        built
            .iter()
            .any(|l| l.contains("-exec-") && l.ends_with("pkg/base.stamp")),
        "{}",
        run.stderr
    );
    assert_eq!(read(&ws, "forge-bin/pkg/uses.stamp"), "uses\n");
}

#[test]
fn required_providers_limit_the_targets_an_aspect_applies_to() {
    let ws = workspace();
    ws.write(
        "pkg/names.bzl",
        r#"
load(":defs.bzl", "LangInfo")

NamesInfo = provider(fields = ["names"])

def _names_impl(target, ctx):
    return [NamesInfo(names = [target[LangInfo].name] + [n for d in ctx.rule.attr.deps if NamesInfo in d for n in d[NamesInfo].names])]

names = aspect(implementation = _names_impl, attr_aspects = ["deps"], required_providers = [LangInfo])

def _list_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    lines = ["%s: %s" % (d.label.name, d[NamesInfo].names if NamesInfo in d else "skipped") for d in ctx.attr.deps]
    ctx.actions.write(out, "\n".join(lines) + "\n")
    return [DefaultInfo(files = depset([out]))]

list_names = rule(implementation = _list_impl, attrs = {"deps": attr.label_list(aspects = [names])})
"#,
    );
    ws.write(
        "pkg/BUILD",
        &format!(
            "{GRAPH}\nload(':names.bzl', 'list_names')\n\
             data_blob(name = 'blob', deps = [':left'])\n\
             lang_library(name = 'above_blob', deps = [':blob', ':right'])\n\
             list_names(name = 'names', deps = [':top', ':blob', ':above_blob'])\n"
        ),
    );
    ok(ws.forge(&["build", "//pkg:names"]));
    // `data_blob` advertises no LangInfo: the aspect skips it, and does not go through it.
    assert_eq!(
        read(&ws, "forge-bin/pkg/names.txt"),
        "top: [\"top\", \"left\", \"base\", \"right\", \"base\"]\n\
         blob: skipped\n\
         above_blob: [\"above_blob\", \"right\", \"base\"]\n"
    );
}

#[test]
fn cc_library_advertises_cc_info_to_aspects_as_in_bazel() {
    let ws = workspace();
    ws.write(
        "cc/defs.bzl",
        r#"
SeenInfo = provider(fields = [])

def _seen_impl(target, ctx):
    return [SeenInfo()]

seen = aspect(implementation = _seen_impl, required_providers = [CcInfo])

def _which_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    ctx.actions.write(out, " ".join(["%s=%s" % (d.label.name, SeenInfo in d) for d in ctx.attr.deps]))
    return [DefaultInfo(files = depset([out]))]

which = rule(implementation = _which_impl, attrs = {"deps": attr.label_list(aspects = [seen])})
"#,
    );
    ws.write(
        "cc/BUILD",
        "load(':defs.bzl', 'which')\n\
         cc_library(name = 'lib', srcs = ['lib.cc'])\n\
         cc_binary(name = 'app', srcs = ['app.cc'], deps = [':lib'])\n\
         which(name = 'which', deps = [':lib', ':app'])\n",
    );
    ws.write("cc/lib.cc", "int f() { return 1; }\n");
    ws.write("cc/app.cc", "int main() { return 0; }\n");
    ok(ws.forge(&["build", "//cc:which"]));
    // cc_binary advertises nothing in Bazel 4: the aspect skips it.
    assert_eq!(read(&ws, "forge-bin/cc/which.txt"), "lib=True app=False");
}

#[test]
fn output_groups_of_a_target_and_an_aspect_are_merged() {
    let ws = workspace();
    ws.write(
        "groups/defs.bzl",
        r#"
def _grouped_impl(ctx):
    return [OutputGroupInfo(own = depset([]))]

grouped = rule(implementation = _grouped_impl)

# One provider on its own, not in a list.
def _extra_impl(target, ctx):
    return OutputGroupInfo(extra = depset([]))

extra = aspect(implementation = _extra_impl)

def _clash_impl(target, ctx):
    return [OutputGroupInfo(own = depset([]))]

clash = aspect(implementation = _clash_impl)

def _groups_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    g = ctx.attr.dep[OutputGroupInfo]
    ctx.actions.write(out, "own=%s extra=%s" % (hasattr(g, "own"), hasattr(g, "extra")))
    return [DefaultInfo(files = depset([out]))]

groups = rule(implementation = _groups_impl, attrs = {"dep": attr.label(aspects = [extra])})
clashing = rule(implementation = _groups_impl, attrs = {"dep": attr.label(aspects = [clash])})
"#,
    );
    ws.write(
        "groups/BUILD",
        "load(':defs.bzl', 'grouped', 'groups', 'clashing')\n\
         grouped(name = 'g')\n\
         groups(name = 'merged', dep = ':g')\n\
         clashing(name = 'clash', dep = ':g')\n",
    );
    ok(ws.forge(&["build", "//groups:merged"]));
    assert_eq!(
        read(&ws, "forge-bin/groups/merged.txt"),
        "own=True extra=True"
    );
    failed_with(
        &ws.forge(&["build", "//groups:clash"]),
        &["Output group own provided twice: by '//groups:g' and by an aspect applied to it"],
    );
}

#[test]
fn a_later_aspect_sees_the_providers_of_an_earlier_one() {
    let ws = workspace();
    ws.write(
        "pkg/chain.bzl",
        r#"
CountInfo = provider(fields = ["count"])
DoubledInfo = provider(fields = ["value"])
NeedsInfo = provider(fields = ["value"])

def _count_impl(target, ctx):
    count = 1
    for d in ctx.rule.attr.deps:
        count += d[CountInfo].count
    return [CountInfo(count = count)]

count = aspect(implementation = _count_impl, attr_aspects = ["deps"], provides = [CountInfo])

# Sees `count` on the same target through required_aspect_providers.
def _double_impl(target, ctx):
    return [DoubledInfo(value = 2 * target[CountInfo].count)]

double = aspect(implementation = _double_impl, required_aspect_providers = [CountInfo])

# Asks for `count` itself with `requires`.
def _needs_impl(target, ctx):
    return [NeedsInfo(value = "needs %d" % target[CountInfo].count)]

needs = aspect(implementation = _needs_impl, requires = [count])

def _show_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    lines = []
    for d in ctx.attr.deps:
        if CountInfo in d:
            lines.append("%s count %d" % (d.label.name, d[CountInfo].count))
        if DoubledInfo in d:
            lines.append("%s doubled %d" % (d.label.name, d[DoubledInfo].value))
        if NeedsInfo in d:
            lines.append("%s %s" % (d.label.name, d[NeedsInfo].value))
    ctx.actions.write(out, "\n".join(lines) + "\n")
    return [DefaultInfo(files = depset([out]))]

show_doubled = rule(implementation = _show_impl, attrs = {"deps": attr.label_list(aspects = [count, double])})
show_needs = rule(implementation = _show_impl, attrs = {"deps": attr.label_list(aspects = [needs])})
"#,
    );
    ws.write(
        "pkg/BUILD",
        &format!(
            "{GRAPH}\nload(':chain.bzl', 'show_doubled', 'show_needs')\n\
             show_doubled(name = 'doubled', deps = [':top'])\n\
             show_needs(name = 'needs', deps = [':left'])\n"
        ),
    );
    ok(ws.forge(&["build", "//pkg:doubled", "//pkg:needs"]));
    assert_eq!(
        read(&ws, "forge-bin/pkg/doubled.txt"),
        "top count 5\ntop doubled 10\n"
    );
    assert_eq!(
        read(&ws, "forge-bin/pkg/needs.txt"),
        "left count 2\nleft needs 2\n"
    );
}

/// An aspect for the command line: writes, for each target, the sources it collected, in
/// the output group `sources`.
const LISTING: &str = r#"
load(":defs.bzl", "CollectedInfo", "collect")

def _listing_impl(target, ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".sources")
    ctx.actions.write(out, "\n".join(sorted([f.short_path for f in target[CollectedInfo].files.to_list()])) + "\n")
    return [OutputGroupInfo(sources = depset([out]))]

listing = aspect(implementation = _listing_impl, requires = [collect])
"#;

#[test]
fn aspects_on_the_command_line_build_their_output_groups_once() {
    let ws = workspace();
    ws.write("pkg/listing.bzl", LISTING);
    let args = [
        "build",
        "//pkg:top",
        "--aspects=//pkg:listing.bzl%listing",
        "--output_groups=sources",
    ];
    let run = ok(ws.forge(&args));
    assert!(
        run.stderr.contains(
            "Target //pkg:top up-to-date (nothing to build)\n\
             Aspect //pkg:listing.bzl%listing of //pkg:top up-to-date:\n  \
             forge-bin/pkg/top.sources\n"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(
        read(&ws, "forge-bin/pkg/top.sources"),
        "pkg/base.src\npkg/left.src\npkg/main.src\npkg/right.src\npkg/top.src\n"
    );
    assert_eq!(counts(&run).0, 1, "{}", run.stderr);
    // The second build runs nothing.
    let again = ok(ws.forge(&args));
    assert_eq!(counts(&again), (0, 0, 1), "{}", again.stderr);
    // From the stored plan, the aspect is reported the same way.
    assert!(
        again
            .stderr
            .contains("Aspect //pkg:listing.bzl%listing of //pkg:top up-to-date:\n"),
        "{}",
        again.stderr
    );
    // Both targets: each gets the aspect, reported after the targets (with
    // --show_result high enough, as in Bazel).
    let both = ok(ws.forge(&[
        "build",
        "//pkg:top",
        "//pkg:left",
        "--aspects=//pkg:listing.bzl%listing",
        "--output_groups=sources",
        "--show_result=5",
    ]));
    assert!(
        both.stderr.contains(
            "Target //pkg:left up-to-date (nothing to build)\n\
             Target //pkg:top up-to-date (nothing to build)\n\
             Aspect //pkg:listing.bzl%listing of //pkg:left up-to-date:\n  \
             forge-bin/pkg/left.sources\n\
             Aspect //pkg:listing.bzl%listing of //pkg:top up-to-date:\n  \
             forge-bin/pkg/top.sources\n"
        ),
        "{}",
        both.stderr
    );
    assert_eq!(
        read(&ws, "forge-bin/pkg/left.sources"),
        "pkg/base.src\npkg/left.src\n"
    );
    // Another aspect on the command line plans again; the aspect's file is still there.
    let plain = ok(ws.forge(&["build", "//pkg:top"]));
    assert!(!plain.stderr.contains("Aspect "), "{}", plain.stderr);
    assert!(
        ws.root()
            .join(format!("{}/pkg/top.sources", bin_dir()))
            .exists()
    );
}

#[test]
fn aspect_errors_name_the_aspect_and_what_to_change() {
    let ws = workspace();
    ws.write("pkg/listing.bzl", LISTING);
    // An aspect the .bzl file does not define.
    failed_with(
        &ws.forge(&["build", "//pkg:top", "--aspects=//pkg:listing.bzl%nope"]),
        &["--aspects: //pkg:listing.bzl has no aspect 'nope'"],
    );
    // A .bzl file that is not there.
    let run = ws.forge(&["build", "//pkg:top", "--aspects=//pkg:missing.bzl%x"]);
    failed_with(&run, &["--aspects: ", "missing.bzl"]);
    assert!(!run.stderr.contains("has no aspect"), "{}", run.stderr);
    // Not an aspect.
    failed_with(
        &ws.forge(&["build", "//pkg:top", "--aspects=//pkg:defs.bzl%report"]),
        &["--aspects: 'report' in //pkg:defs.bzl is not an aspect"],
    );
    // Not <label>%<name>.
    let run = ws.forge(&["build", "//pkg:top", "--aspects=//pkg:listing.bzl"]);
    failed_with(&run, &["is not <bzl file label>%<aspect name>"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    // A parameterized aspect cannot be applied from the command line (Bazel 4).
    ws.write(
        "pkg/param.bzl",
        "def _impl(target, ctx):\n    return []\n\n\
         param = aspect(implementation = _impl, attrs = {'mode': attr.string(values = ['a'])})\n",
    );
    failed_with(
        &ws.forge(&["build", "//pkg:top", "--aspects=//pkg:param.bzl%param"]),
        &["Cannot instantiate parameterized aspect //pkg:param.bzl%param at the top level."],
    );
    // A provider the target already has.
    ws.write(
        "pkg/twice.bzl",
        "load(':defs.bzl', 'LangInfo')\n\
         def _impl(target, ctx):\n    return [LangInfo(name = 'again')]\n\n\
         twice = aspect(implementation = _impl)\n\
         def _user_impl(ctx):\n    return []\n\n\
         user = rule(implementation = _user_impl, attrs = {'deps': attr.label_list(aspects = [twice])})\n",
    );
    ws.write(
        "pkg/BUILD",
        &format!("{GRAPH}\nload(':twice.bzl', 'user')\nuser(name = 'user', deps = [':base'])\n"),
    );
    failed_with(
        &ws.forge(&["build", "//pkg:user"]),
        &[
            "pkg/BUILD:",
            "//pkg:user",
            "Provider LangInfo provided twice: by '//pkg:base' and by aspect //pkg:twice.bzl%twice",
        ],
    );
    // An aspect that does not return what its `provides` declares.
    ws.write(
        "pkg/promise.bzl",
        "P = provider(fields = [])\n\
         def _impl(target, ctx):\n    return []\n\n\
         promise = aspect(implementation = _impl, provides = [P])\n",
    );
    failed_with(
        &ws.forge(&["build", "//pkg:top", "--aspects=//pkg:promise.bzl%promise"]),
        &[
            "in aspect //pkg:promise.bzl%promise on lang_library rule //pkg:top: The following \
             declared providers have not been returned: P",
        ],
    );
    // Declared attributes are checked when the aspect is declared, as in Bazel.
    ws.write(
        "pkg/bad.bzl",
        "def _impl(target, ctx):\n    return []\n\n\
         bad = aspect(implementation = _impl, attrs = {'mode': attr.string()})\n",
    );
    ws.write("pkg/BUILD", "load(':bad.bzl', 'bad')\n");
    failed_with(
        &ws.forge(&["build", "//pkg:all"]),
        &[
            "Aspect parameter attribute 'mode' must have type 'string' and use the 'values' restriction.",
        ],
    );
    // What forge cannot do yet is refused by name.
    ws.write(
        "pkg/tc.bzl",
        "def _impl(target, ctx):\n    return []\n\n\
         tc = aspect(implementation = _impl, toolchains = ['//pkg:type'])\n",
    );
    ws.write("pkg/BUILD", GRAPH);
    failed_with(
        &ws.forge(&["build", "//pkg:top", "--aspects=//pkg:tc.bzl%tc"]),
        &[
            "forge does not support aspect '//pkg:tc.bzl%tc' yet: it is declared with 'toolchains = [\"//pkg:type\"]'",
        ],
    );
}

/// An aspect reads what it propagates to (here an attribute no provider shows): a change
/// deep below is seen even though every result between is the same and reused.
#[test]
fn an_aspect_sees_an_attribute_changed_below_results_that_came_out_the_same() {
    let ws = workspace();
    ws.write(
        "pkg/modes.bzl",
        r#"
ModesInfo = provider(fields = ["modes"])

def _modes_impl(target, ctx):
    modes = ["%s=%s" % (ctx.label.name, ctx.rule.attr.mode)]
    for dep in ctx.rule.attr.deps:
        modes.extend(dep[ModesInfo].modes)
    return [ModesInfo(modes = modes)]

modes = aspect(implementation = _modes_impl, attr_aspects = ["deps"])

def _list_modes_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    lines = sorted({m: None for d in ctx.attr.deps for m in d[ModesInfo].modes}.keys())
    ctx.actions.write(out, "\n".join(lines) + "\n")
    return [DefaultInfo(files = depset([out]))]

list_modes = rule(
    implementation = _list_modes_impl,
    attrs = {"deps": attr.label_list(aspects = [modes])},
)
"#,
    );
    let graph = format!(
        "{GRAPH}\nload(\":modes.bzl\", \"list_modes\")\nlist_modes(name = \"modes\", deps = [\":top\"])\n"
    );
    ws.write("pkg/BUILD", &graph);
    ok(ws.forge(&["build", "//pkg:modes"]));
    assert!(read(&ws, "forge-bin/pkg/modes.txt").contains("base=upper\n"));
    // `base`'s own result does not show `mode`: `left`, `right` and `top` come out the same.
    ws.write(
        "pkg/BUILD",
        &graph.replace(
            "lang_library(name = \"base\", srcs = [\"base.src\"])",
            "lang_library(name = \"base\", srcs = [\"base.src\"], mode = \"lower\")",
        ),
    );
    ok(ws.forge(&["build", "//pkg:modes"]));
    let listed = read(&ws, "forge-bin/pkg/modes.txt");
    assert!(listed.contains("base=lower\n"), "{listed}");
    assert!(!listed.contains("base=upper"), "{listed}");
}

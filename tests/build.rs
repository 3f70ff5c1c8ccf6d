//! `forge build` and `forge run` on fixture workspaces: the classic first example, the
//! content-addressed cache (no-op, touch, edits with early cutoff, reverts, damaged outputs
//! and store), make variables, custom rules, the action environment, failures, the output
//! tree and runfiles.

mod common;

use std::fs;
use std::path::Path;

use common::{Run, Workspace, counts};

/// A progress line for every action that starts (a log gets fewer by default).
const EVERY_LINE: &str = "--show_progress_rate_limit=0";

/// The labels whose genrules started, from the plain progress lines (with `EVERY_LINE`).
fn executed_genrules(run: &Run) -> Vec<String> {
    let mut labels: Vec<String> = run
        .stderr
        .lines()
        .filter_map(|l| {
            l.split_once("Executing genrule ")
                .map(|(_, l)| l.to_owned())
        })
        .collect();
    labels.sort();
    labels
}

fn ok(run: Run) -> Run {
    assert_eq!(run.code, 0, "forge failed:\n{}", run.both());
    run
}

fn read(ws: &Workspace, path: &str) -> String {
    fs::read_to_string(ws.root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Sets a file's mtime well away from now, as `touch -d` would, without changing it.
fn touch(path: &Path) {
    let file = fs::File::options().write(true).open(path).unwrap();
    file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(3600))
        .unwrap();
}

#[test]
fn the_classic_first_example_builds_runs_and_then_does_nothing() {
    let ws = Workspace::fixture("classic");
    let first = ok(ws.forge(&["build", "//:hello"]));
    assert!(
        first
            .stderr
            .contains("Target //:hello up-to-date:\n  forge-bin/hello\n"),
        "{}",
        first.stderr
    );
    // The launcher finds its runfiles from anywhere, here from another directory.
    let out = std::process::Command::new(ws.root().join("forge-bin/hello"))
        .current_dir("/")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Hello from dep!\n");

    let second = ok(ws.forge(&["build", "//:hello"]));
    assert_eq!(counts(&second).0, 0, "{}", second.stderr);
    assert!(!second.stderr.contains("Writing"), "{}", second.stderr);

    let run = ws.forge(&["run", "//:hello"]);
    assert_eq!(run.code, 0, "{}", run.both());
    assert_eq!(run.stdout, "Hello from dep!\n");
}

#[test]
fn no_op_and_touch_run_nothing() {
    let ws = Workspace::fixture("build");
    let first = ok(ws.forge(&["build", "//chain:all"]));
    assert_eq!(counts(&first), (4, 0, 0));
    assert_eq!(read(&ws, "forge-bin/chain/c.out"), "c\none\n");

    let again = ok(ws.forge(&["build", EVERY_LINE, "//chain:all"]));
    assert_eq!(counts(&again), (0, 0, 4));
    assert!(executed_genrules(&again).is_empty(), "{}", again.stderr);

    touch(&ws.root().join("chain/a.txt"));
    let touched = ok(ws.forge(&["build", "//chain:all"]));
    assert_eq!(counts(&touched).0, 0, "{}", touched.stderr);
}

#[test]
fn an_edit_reruns_only_what_is_downstream_and_stops_where_outputs_are_unchanged() {
    let ws = Workspace::fixture("build");
    ok(ws.forge(&["build", "//chain:all"]));

    // The first line changes: a, b and c rerun; side does not.
    ws.write("chain/a.txt", "ONE\ntwo\n");
    let run = ok(ws.forge(&["build", EVERY_LINE, "//chain:all"]));
    assert_eq!(
        executed_genrules(&run),
        ["//chain:a", "//chain:b", "//chain:c"]
    );
    assert_eq!(read(&ws, "forge-bin/chain/c.out"), "c\nONE\n");

    // Only the second line changes: b.out comes out identical, so c does not rerun.
    ws.write("chain/a.txt", "ONE\nTWO\n");
    let run = ok(ws.forge(&["build", EVERY_LINE, "//chain:all"]));
    assert_eq!(executed_genrules(&run), ["//chain:a", "//chain:b"]);
    assert_eq!(read(&ws, "forge-bin/chain/a.out"), "ONE\nTWO\n");
}

#[test]
fn going_back_to_an_earlier_content_reuses_the_earlier_results() {
    let ws = Workspace::fixture("build");
    ok(ws.forge(&["build", "//chain:all"]));
    ws.write("chain/a.txt", "changed\n");
    ok(ws.forge(&["build", "//chain:all"]));
    assert_eq!(read(&ws, "forge-bin/chain/c.out"), "c\nchanged\n");

    ws.write("chain/a.txt", "one\ntwo\n");
    let back = ok(ws.forge(&["build", "//chain:all"]));
    let (executed, from_cache, _) = counts(&back);
    assert_eq!((executed, from_cache), (0, 3), "{}", back.stderr);
    assert_eq!(read(&ws, "forge-bin/chain/c.out"), "c\none\n");
}

#[test]
fn deleted_or_modified_outputs_are_restored() {
    let ws = Workspace::fixture("build");
    ok(ws.forge(&["build", "//chain:all", "//rules:tree"]));
    let c = ws.root().join("forge-bin/chain/c.out");
    fs::remove_file(&c).unwrap();
    let tree_file = ws.root().join("forge-bin/rules/tree_dir/sub/two.txt");
    fs::remove_file(&tree_file).unwrap();
    let run = ok(ws.forge(&["build", "//chain:all", "//rules:tree"]));
    assert_eq!(counts(&run).0, 0, "restored from the cache: {}", run.stderr);
    assert_eq!(read(&ws, "forge-bin/chain/c.out"), "c\none\n");
    assert_eq!(read(&ws, "forge-bin/rules/tree_dir/sub/two.txt"), "two\n");

    // An output edited in place (made writable first, as an editor would) is put back.
    fs::set_permissions(&c, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    fs::write(&c, "tampered\n").unwrap();
    ok(ws.forge(&["build", "//chain:all"]));
    assert_eq!(read(&ws, "forge-bin/chain/c.out"), "c\none\n");
}

#[test]
fn a_corrupted_blob_in_the_store_is_dropped_and_the_action_reruns() {
    let ws = Workspace::fixture("build");
    ok(ws.forge(&["build", "//chain:a"]));
    // Damage every blob in the store, then make forge need them.
    let cas = ws.cache_dir().join("forge");
    let mut damaged = 0;
    for entry in walkdir::WalkDir::new(&cas) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() && entry.path().components().any(|c| c.as_os_str() == "cas")
        {
            let p = entry.path();
            fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
            fs::write(p, "garbage").unwrap();
            damaged += 1;
        }
    }
    assert!(damaged > 0, "no blobs found under {}", cas.display());
    fs::remove_file(ws.root().join("forge-bin/chain/a.out")).unwrap();
    let run = ok(ws.forge(&["build", EVERY_LINE, "//chain:a"]));
    assert_eq!(executed_genrules(&run), ["//chain:a"], "{}", run.stderr);
    assert_eq!(read(&ws, "forge-bin/chain/a.out"), "one\ntwo\n");
}

#[test]
fn a_disk_cache_is_shared_between_workspaces() {
    let shared = tempfile::tempdir().unwrap();
    let disk = format!("--disk_cache={}", shared.path().display());
    let one = Workspace::fixture("build");
    ok(one.forge(&["build", &disk, "//chain:all"]));
    let two = Workspace::fixture("build");
    let run = ok(two.forge(&["build", &disk, "//chain:all"]));
    assert_eq!(counts(&run), (0, 4, 0), "{}", run.stderr);
    assert_eq!(read(&two, "forge-bin/chain/c.out"), "c\none\n");
}

#[test]
fn genrule_make_variables_and_tools() {
    let ws = Workspace::fixture("build");
    ok(ws.forge(&["build", "//makevars:all"]));
    let bin = format!("{}/makevars", common::bin_dir());
    assert_eq!(
        read(&ws, "forge-bin/makevars/vars.out"),
        format!(
            "SRCS=makevars/x.txt makevars/y.txt makevars/z.txt {bin}/single.out
OUTS={bin}/vars.out {bin}/other.out
RULEDIR={bin}
AT_D={bin}
location=makevars/z.txt
locations=makevars/x.txt makevars/y.txt
execpath={bin}/single.out
execpaths=makevars/x.txt makevars/y.txt
rootpath=makevars/single.out
rootpaths=makevars/x.txt makevars/y.txt
tool says hi
dollar=
"
        )
    );
    assert_eq!(
        read(&ws, "forge-bin/makevars/single.out"),
        format!("in=makevars/x.txt out={bin}/single.out dir={bin}\n")
    );
}

#[test]
fn actions_get_a_fixed_environment() {
    let ws = Workspace::fixture("build");
    let env = [("FORGE_TEST_SECRET", "leaked"), ("LANG", "de_DE.UTF-8")];
    ok(ws.forge_with("", &["build", "//envs:env"], &env));
    let seen = read(&ws, "forge-bin/envs/env.out");
    let names: Vec<&str> = seen
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| k)
        .collect();
    assert_eq!(names, ["LANG", "PATH", "TMPDIR", "TZ"], "{seen}");
    assert!(
        seen.contains("LANG=C\n") && seen.contains("TZ=UTC\n"),
        "{seen}"
    );
    assert!(
        seen.contains("PATH=/usr/local/bin:/usr/bin:/bin\n"),
        "{seen}"
    );

    // --action_env passes a variable (and changes the action key, so the action reruns).
    let run = ok(ws.forge_with(
        "",
        &[
            "build",
            EVERY_LINE,
            "--action_env=FORGE_TEST_SECRET",
            "//envs:env",
        ],
        &env,
    ));
    assert_eq!(executed_genrules(&run), ["//envs:env"]);
    assert!(read(&ws, "forge-bin/envs/env.out").contains("FORGE_TEST_SECRET=leaked\n"));
}

#[test]
fn custom_rules_written_as_the_bazel_documentation_teaches() {
    let ws = Workspace::fixture("build");
    let run = ok(ws.forge(&["build", "//rules:all", "--", "-//rules:broken"]));
    assert!(
        run.stderr
            .contains("DEBUG: rules/defs.bzl:132:5: reporting on facts\n"),
        "{}",
        run.stderr
    );
    let bin = common::bin_dir();
    assert_eq!(
        read(&ws, "forge-bin/rules/facts.report"),
        format!("count=5
files=leaf1.txt leaf2.txt mid.txt top.txt
default=a d c b
preorder=own l1 l2 r1
postorder=l1 r1 own
topological=top mid leaf
features=own_feature pkg_feature
label=//rules:x name=facts package=rules
struct=two
file path=rules/data.txt short_path=rules/data.txt basename=data.txt dirname=rules extension=txt is_source=True owner=//rules:data.txt root=
file path={bin}/rules/transformed.args short_path=rules/transformed.args basename=transformed.args dirname={bin}/rules extension=args is_source=False owner=//rules:transformed root={bin}
")
    );
    // A tool built from another target, driven by Args.
    assert_eq!(
        read(&ws, "forge-bin/rules/transformed.args"),
        "--flag\nvalue\nrules/data.txt\nrules/more.txt\nDATA.TXT,MORE.TXT\n-x\na\n-x\nb\n"
    );
    // Directories, symlinks and templates.
    assert_eq!(
        read(&ws, "forge-bin/rules/tree.listing"),
        "./one.txt\n./sub/two.txt\ntwo\n"
    );
    assert_eq!(
        read(&ws, "forge-bin/rules/tree.link"),
        read(&ws, "forge-bin/rules/tree.listing")
    );
    assert_eq!(
        read(&ws, "forge-bin/rules/tree.expanded"),
        "Hello forge from tree\n"
    );

    // An executable rule and its runfiles; the macro made two of them.
    for (name, greeting) in [
        ("greet", "hello there"),
        ("pair", "hey"),
        ("pair_loud", "HEY"),
    ] {
        let out = std::process::Command::new(ws.root().join(format!("forge-bin/rules/{name}.sh")))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{greeting}\nthe data\n"),
            "{name}"
        );
    }
    let run = ws.forge(&["run", "//rules:greet"]);
    assert_eq!(run.stdout, "hello there\nthe data\n", "{}", run.both());
    // The build half of a test rule, and forge test runs it like any test.
    assert!(ws.root().join("forge-bin/rules/check_test").is_file());
    let test = ws.forge(&["test", "//rules:check_test"]);
    assert_eq!(test.code, 0, "{}", test.both());
    assert!(test.stdout.contains(" PASSED in "), "{}", test.both());
}

#[test]
fn an_error_in_a_rule_implementation_shows_the_traceback_and_the_target() {
    let ws = Workspace::fixture("build");
    let run = ws.forge(&["build", "//rules:broken"]);
    assert_eq!(run.code, 1, "{}", run.both());
    for expected in [
        "ERROR: rules/BUILD:55:1: in broken rule //rules:broken",
        "rules/defs.bzl:174, in _broken_impl",
        "rules/defs.bzl:177, in helper_fails",
        "rule broken is broken on purpose",
    ] {
        assert!(run.stderr.contains(expected), "{expected}:\n{}", run.stderr);
    }
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn a_failing_action_shows_its_command_and_output_and_keep_going_builds_the_rest() {
    let ws = Workspace::fixture("build");
    let run = ws.forge(&["build", "//fail:broken", "//fail:fine"]);
    assert_eq!(run.code, 1, "{}", run.both());
    for expected in [
        "//fail:broken",
        "exit 3",
        "something went wrong",
        "echo something went wrong >&2; exit 3",
        "Build did NOT complete successfully",
    ] {
        assert!(run.stderr.contains(expected), "{expected}:\n{}", run.stderr);
    }

    let run = ws.forge(&[
        "build",
        "--keep_going",
        "//fail:all",
        "--",
        "-//fail:no_output",
    ]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert_eq!(read(&ws, "forge-bin/fail/fine.out"), "fine\n");
    assert!(!ws.root().join("forge-bin/fail/after_broken.out").exists());

    let run = ws.forge(&["build", "//fail:no_output"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(&format!(
            "declared output '{}/fail/promised.out' was not created",
            common::bin_dir()
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn forge_run_passes_arguments_environment_and_exit_code() {
    let ws = Workspace::fixture("build");
    let run = ws.forge_in("chain", &["run", "//run:report", "--", "a b", "c"]);
    assert_eq!(run.code, 7, "{}", run.both());
    let root = ws.root();
    let real_root = fs::canonicalize(&root).unwrap();
    let stdout = run.stdout.clone();
    assert!(stdout.contains("args: a b c\n"), "{stdout}");
    assert!(
        stdout.contains("BUILD_WORKSPACE_DIRECTORY=[TMP]/ws\n")
            || stdout.contains(&format!(
                "BUILD_WORKSPACE_DIRECTORY={}\n",
                real_root.display()
            )),
        "{stdout}"
    );
    assert!(
        stdout.contains("BUILD_WORKING_DIRECTORY=[TMP]/ws/chain\n"),
        "{stdout}"
    );
    assert!(stdout.contains("/run/report.runfiles\n"), "{stdout}");
    assert!(stdout.contains("data: some data\n"), "{stdout}");
}

#[test]
fn runfiles_trees_and_manifests_are_laid_out_as_bazel_does() {
    let ws = Workspace::fixture("build");
    ok(ws.forge(&["build", "//run:report"]));
    let bin = ws.root().join("forge-bin/run");
    let tree = bin.join("report.runfiles");
    assert_eq!(
        fs::read_to_string(tree.join("buildws/run/data.txt")).unwrap(),
        "some data\n"
    );
    assert!(tree.join("buildws/run/report").is_file());
    let manifest = fs::read_to_string(tree.join("MANIFEST")).unwrap();
    let paths: Vec<&str> = manifest
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    // As Bazel's sh_binary: the script under its own name and under the target's name.
    assert_eq!(
        paths,
        [
            "buildws/run/data.txt",
            "buildws/run/report",
            "buildws/run/report.sh"
        ]
    );
    for line in manifest.lines() {
        let target = line.split_once(' ').unwrap().1;
        assert!(
            Path::new(target).is_absolute() && Path::new(target).exists(),
            "{line}"
        );
    }
    assert_eq!(
        fs::read_to_string(bin.join("report.runfiles_manifest")).unwrap(),
        manifest
    );
    for link in ["forge-bin", "forge-out", "forge-testlogs", "forge-ws"] {
        assert!(
            fs::symlink_metadata(ws.root().join(link))
                .unwrap()
                .file_type()
                .is_symlink(),
            "{link}"
        );
    }
}

#[test]
fn clean_removes_outputs_and_expunge_the_output_base() {
    let ws = Workspace::fixture("build");
    ok(ws.forge(&["build", "//chain:a"]));
    let output_base = fs::canonicalize(ws.root().join("forge-ws"))
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    assert!(output_base.join("execroot").is_dir());
    ok(ws.forge(&["clean"]));
    assert!(!ws.root().join("forge-bin").exists());
    assert!(!output_base.join("execroot/buildws/forge-out").exists());
    // As with Bazel, a clean build is clean: the local action cache went too.
    let run = ok(ws.forge(&["build", "//chain:a"]));
    assert_eq!(counts(&run), (1, 0, 0), "{}", run.stderr);
    assert_eq!(read(&ws, "forge-bin/chain/a.out"), "one\ntwo\n");

    ok(ws.forge(&["clean", "--expunge"]));
    assert!(!output_base.exists());
    let run = ok(ws.forge(&["build", "//chain:a"]));
    assert_eq!(counts(&run), (1, 0, 0), "{}", run.stderr);
}

#[test]
fn python_imports_shell_libraries_aliases_and_runfiles_collection() {
    let ws = Workspace::fixture("build");
    ok(ws.forge(&["build", "//py:all", "//shell:all", "//rules:bundle"]));
    // `imports` of a py_library reach the binaries that depend on it; an alias runs its actual.
    let run = ws.forge(&["run", "//py:main_alias", "--", "x", "y"]);
    assert_eq!(
        run.stdout,
        "found through imports ['x', 'y']\n",
        "{}",
        run.both()
    );
    // The build half of py_test and sh_test: runnable programs with their runfiles.
    let test = std::process::Command::new(ws.root().join("forge-bin/py/main_test"))
        .output()
        .unwrap();
    assert!(
        test.status.success(),
        "{}",
        String::from_utf8_lossy(&test.stderr)
    );
    for program in ["forge-bin/shell/bin", "forge-bin/shell/bin_test"] {
        let out = std::process::Command::new(ws.root().join(program))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "lib says hello from data\n",
            "{program}"
        );
    }
    // collect_data takes a dependency's data_runfiles; OutputGroupInfo reaches dependents.
    let out = std::process::Command::new(ws.root().join("forge-bin/rules/bundle.sh"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "./MANIFEST\n./buildws/rules/bundle.sh\n./buildws/rules/data.txt\n\
         ./buildws/rules/groups_of_other.txt\n./buildws/rules/more.txt\n"
    );
    assert_eq!(
        read(&ws, "forge-bin/rules/groups_of_other.txt"),
        "rules/template.in\n"
    );
    // A file another package exports.
    ok(ws.forge(&["build", "//globbed:uses_export"]));
    assert_eq!(read(&ws, "forge-bin/globbed/uses_export.out"), "exported\n");
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
fn the_plan_is_reused_only_while_what_loading_read_is_unchanged() {
    let ws = Workspace::fixture("build");
    let patterns = [
        "build",
        EVERY_LINE,
        "//chain:all",
        "//globbed:all",
        "//rules:facts",
    ];
    let first = ok(ws.forge(&patterns));
    assert_ne!(loaded(&first), "(0 packages loaded, 0 targets configured).");
    let again = ok(ws.forge(&patterns));
    assert_eq!(loaded(&again), "(0 packages loaded, 0 targets configured).");
    assert_eq!(counts(&again).0, 0);

    // touch keeps the plan; an edited BUILD file does not.
    touch(&ws.root().join("chain/BUILD"));
    assert_eq!(
        loaded(&ok(ws.forge(&patterns))),
        "(0 packages loaded, 0 targets configured)."
    );
    let build = read(&ws, "chain/BUILD").replace("(echo c;", "(echo C;");
    ws.write("chain/BUILD", &build);
    let run = ok(ws.forge(&patterns));
    assert_ne!(loaded(&run), "(0 packages loaded, 0 targets configured).");
    assert_eq!(executed_genrules(&run), ["//chain:c"]);
    assert_eq!(read(&ws, "forge-bin/chain/c.out"), "C\none\n");

    // A new file a glob matches.
    ws.write("globbed/parts/b.txt", "b\n");
    ok(ws.forge(&patterns));
    assert_eq!(read(&ws, "forge-bin/globbed/all.out"), "a\nb\n");

    // An edited .bzl file.
    let defs = read(&ws, "rules/defs.bzl").replace("\"struct=\" + ", "\"STRUCT=\" + ");
    ws.write("rules/defs.bzl", &defs);
    ok(ws.forge(&patterns));
    assert!(read(&ws, "forge-bin/rules/facts.report").contains("\nSTRUCT=two\n"));

    // A new package under //...
    ws.write(
        "extra/BUILD",
        "genrule(name = 'x', outs = ['x.out'], cmd = 'echo x > $@')\n",
    );
    let all = [
        "build",
        "//...",
        "--",
        "-//fail/...",
        "-//slow/...",
        "-//rules:broken",
    ];
    ok(ws.forge(&all));
    ws.write(
        "extra2/BUILD",
        "genrule(name = 'y', outs = ['y.out'], cmd = 'echo y > $@')\n",
    );
    ok(ws.forge(&all));
    assert_eq!(read(&ws, "forge-bin/extra2/y.out"), "y\n");

    // Other arguments make another plan.
    let run = ok(ws.forge(&["build", "--define=x=1", "//chain:all"]));
    assert_ne!(loaded(&run), "(0 packages loaded, 0 targets configured).");
}

#[test]
fn wildcards_leave_out_manual_targets() {
    let ws = Workspace::fixture("build");
    let all = ok(ws.forge(&["build", "//chain:all"]));
    assert_eq!(counts(&all), (4, 0, 0));
    assert!(!ws.root().join("forge-bin/chain/manual_only.out").exists());
    ok(ws.forge(&["build", "//chain:manual_only"]));
    assert_eq!(read(&ws, "forge-bin/chain/manual_only.out"), "manual\n");
    // Query still sees it.
    let query = ws.forge(&["query", "//chain:all"]);
    assert!(
        query.stdout.contains("//chain:manual_only\n"),
        "{}",
        query.stdout
    );
}

#[test]
fn a_private_rule_reached_through_a_public_macro_builds() {
    // As bazelbuild/examples' mandatory_provider: `_sum = rule(...)` behind `def sum(...)`.
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "");
    ws.write(
        "pkg/sum.bzl",
        "def _impl(ctx):\n    out = ctx.actions.declare_file(ctx.label.name + '.txt')\n    \
         ctx.actions.write(out, str(ctx.attr.number + 1))\n    \
         return [DefaultInfo(files = depset([out]))]\n\n\
         _sum = rule(implementation = _impl, attrs = {'number': attr.int()})\n\n\
         def sum(**kwargs):\n    _sum(**kwargs)\n",
    );
    ws.write(
        "pkg/BUILD",
        "load(':sum.bzl', 'sum')\nsum(name = 'total', number = 41)\n",
    );
    ok(ws.forge(&["build", "//pkg:total"]));
    assert_eq!(read(&ws, "forge-bin/pkg/total.txt"), "42");
}

#[test]
fn print_shows_a_struct_as_bazel_does_fields_in_name_order() {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "");
    ws.write(
        "p/show.bzl",
        "def _impl(ctx):\n    \
         print(struct(zeta = [struct(b = 2, a = 'x')], alpha = False, mid = {'k': (1,)}))\n    \
         print('plain', 3)\n\
         show = rule(implementation = _impl)\n",
    );
    ws.write("p/BUILD", "load(':show.bzl', 'show')\nshow(name = 's')\n");
    let run = ok(ws.forge(&["build", "//p:s"]));
    assert!(
        run.stderr.contains(
            ": struct(alpha = False, mid = {\"k\": (1,)}, zeta = [struct(a = \"x\", b = 2)])\n"
        ),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(": plain 3\n"), "{}", run.stderr);
}

//! The command line and the workspace: flags as Bazel spells them, one-line errors with exit
//! code 2, workspace discovery, `forge info` and `forge version`.

mod common;

use std::path::PathBuf;

use common::Workspace;

#[test]
fn version_and_help() {
    let ws = Workspace::fixture("graph");
    let v = ws.forge(&["version"]);
    assert_eq!(v.code, 0);
    assert!(
        v.stdout.starts_with("Build label: [VERSION]\n"),
        "{}",
        v.stdout
    );
    let h = ws.forge(&["help"]);
    assert_eq!(h.code, 0);
    for command in ["query", "info", "version"] {
        assert!(
            h.stdout.contains(command),
            "help lists {command}:\n{}",
            h.stdout
        );
    }
    let hq = ws.forge(&["help", "query"]);
    assert!(
        hq.stdout.contains("--keep_going") && hq.stdout.contains("--output"),
        "{}",
        hq.stdout
    );
}

#[test]
fn bad_command_lines_get_one_line_and_exit_2() {
    let ws = Workspace::fixture("graph");
    for (args, expected) in [
        (
            &["query", "--no_such_flag", "//..."][..],
            "ERROR: unexpected argument '--no_such_flag' found (see 'forge help')\n",
        ),
        (
            &["query", "--jobs=lots", "//..."][..],
            "ERROR: invalid value 'lots' for '--jobs <N>': 'lots' is not a number or 'auto' (see 'forge help')\n",
        ),
        (
            &["frobnicate"][..],
            "ERROR: unrecognized subcommand 'frobnicate' (see 'forge help')\n",
        ),
        (
            &["query", "--output=prot", "//..."][..],
            "ERROR: invalid output format 'prot'; valid values are: label, label_kind, build, \
             graph, json, package, location, minrank, maxrank, xml, streamed_jsonproto\n",
        ),
        (
            &["query", "--output=proto", "//..."][..],
            "ERROR: forge does not support --output=proto yet (binary and text protocol \
             buffers); streamed_jsonproto gives the same Target messages as JSON, and the valid \
             values are: label, label_kind, build, graph, json, package, location, minrank, \
             maxrank, xml, streamed_jsonproto\n",
        ),
        (
            &["query", "deps(//app:app"][..],
            "ERROR: syntax error at end of query (character 14): expected ',' or ')'\n",
        ),
        (
            &["query", "depz(//app:app)"][..],
            "ERROR: syntax error at 'depz(//app:app' (character 0): unknown function 'depz'; did you mean 'deps'?\n",
        ),
        (
            &["info", "no_such_key"][..],
            "ERROR: unknown key: 'no_such_key'\n",
        ),
    ] {
        let run = ws.forge(args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr, expected, "{args:?}");
        assert!(run.stdout.is_empty());
    }
}

#[test]
fn bazel_flag_spellings_and_kebab_case_aliases() {
    let ws = Workspace::fixture("errors");
    for flags in [
        &["--keep_going"][..],
        &["--keep-going"],
        &["-k"],
        &["--jobs=1", "-k"],
        &["-j", "2", "--keep_going"],
    ] {
        let mut args = vec!["query"];
        args.extend_from_slice(flags);
        args.push("//cycle:a + //nope:x");
        let run = ws.forge(&args);
        assert_eq!(run.code, 3, "{flags:?} is keep-going: {}", run.stderr);
        assert_eq!(run.stdout, "//cycle:a\n");
    }
    // The last of --keep_going / --nokeep_going wins, as in Bazel.
    let run = ws.forge(&[
        "query",
        "--keep_going",
        "--nokeep_going",
        "//cycle:a + //nope:x",
    ]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.is_empty());
}

#[test]
fn outside_a_workspace_is_a_clear_error() {
    let ws = Workspace::empty();
    let run = ws.forge(&["query", "//..."]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        "ERROR: the current directory '[TMP]/ws' is not inside a workspace: no WORKSPACE or WORKSPACE.bazel file found here or in any parent directory. Run forge from inside a workspace, or create an empty WORKSPACE file at its root\n"
    );
}

#[test]
fn workspace_root_is_found_from_a_subdirectory_and_named_by_workspace() {
    let ws = Workspace::fixture("graph");
    let run = ws.forge_in("app", &["info", "workspace"]);
    assert_eq!(run.stdout, "[TMP]/ws\n");
    assert_eq!(
        ws.forge_in("data/sub", &["info", "workspace_name"]).stdout,
        "graph_example\n"
    );

    // WORKSPACE.bazel works too, and without workspace() the name is __main__.
    let plain = Workspace::empty();
    plain.write("WORKSPACE.bazel", "");
    plain.write("a/BUILD", "filegroup(name = 'a')\n");
    assert_eq!(
        plain.forge_in("a", &["info", "workspace_name"]).stdout,
        "__main__\n"
    );
    assert_eq!(plain.forge_in("a", &["query", ":all"]).stdout, "//a:a\n");
}

#[test]
fn output_base_is_per_workspace_under_the_cache_dir_and_overridable() {
    let ws = Workspace::fixture("graph");
    let info = ws.forge(&["info"]);
    assert_eq!(info.code, 0, "{}", info.stderr);
    let base = info
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("output_base: "))
        .expect("output_base listed")
        .to_owned();
    assert!(base.starts_with("[TMP]/cache/forge/"), "{base}");
    assert!(
        info.stdout
            .contains(&format!("execution_root: {base}/execroot/graph_example\n"))
    );

    // Another workspace under the same cache dir gets another output base beside it.
    let other = Workspace::fixture("graph");
    let shared_cache = ws.cache_dir().display().to_string();
    let env = [("XDG_CACHE_HOME", shared_cache.as_str())];
    let other_base = other.forge_with("", &["info", "output_base"], &env).stdout;
    let other_base = PathBuf::from(other_base.trim_end());
    let base =
        PathBuf::from(base.replace("[TMP]", &ws.root().parent().unwrap().display().to_string()));
    assert_eq!(
        other_base.parent(),
        base.parent(),
        "{other_base:?} vs {base:?}"
    );
    assert_ne!(other_base, base);

    let flagged = ws.root().parent().unwrap().join("ob");
    let overridden = ws.forge(&[
        &format!("--output_base={}", flagged.display()),
        "info",
        "output_base",
    ]);
    assert_eq!(overridden.stdout, "[TMP]/ob\n");
    let kebab = ws.forge(&[
        "--output-base",
        &format!("{}2", flagged.display()),
        "info",
        "execution_root",
    ]);
    assert_eq!(kebab.stdout, "[TMP]/ob2/execroot/graph_example\n");
}

#[test]
fn no_panic_or_backtrace_even_with_rust_backtrace_set() {
    let ws = Workspace::fixture("errors");
    for pattern in ["//syntax:all", "//macro_fail:x", "//nope/...", "//a:b:c"] {
        let run = ws.forge_with("", &["query", pattern], &[("RUST_BACKTRACE", "1")]);
        assert!(run.code == 1 || run.code == 2, "{pattern}: {}", run.code);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        assert!(!run.stderr.contains("stack backtrace"), "{}", run.stderr);
        assert!(run.stderr.starts_with("ERROR: "), "{}", run.stderr);
    }
}

#[test]
fn the_readme_example_answers() {
    let ws = Workspace::example("hello");
    let run = ws.forge(&["query", "deps(//app:hello)", "--output=label_kind"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "py_binary rule //app:hello\nsource file //app:hello.py\npy_library rule //lib:greet\n\
         source file //lib:greet.py\nfilegroup rule //lib:words\nsource file //lib:words/hello.txt\n\
         source file //lib:words/world.txt\n"
    );
    let all = ws.forge(&["query", "//..."]);
    assert_eq!(
        all.stdout,
        "//app:banner\n//app:hello\n//app:hello_test\n//app:welcome\n//app:welcome_loud\n//lib:greet\n//lib:words\n"
    );
}

#[test]
fn the_readme_main_command_builds_and_runs_the_example() {
    let ws = Workspace::example("hello");
    let run = ws.forge(&["run", "//app:hello"]);
    assert_eq!(run.code, 0, "{}", run.both());
    assert_eq!(run.stdout, "Hello, forge!\n");
    let all = ws.forge(&["build", "//..."]);
    assert_eq!(all.code, 0, "{}", all.both());
    let banner = std::fs::read_to_string(ws.root().join("forge-bin/app/banner.txt")).unwrap();
    assert_eq!(banner, "hello\nworld\n");
    let again = ws.forge(&["build", "//..."]);
    assert!(
        again.stderr.contains("INFO: 0 actions executed"),
        "{}",
        again.stderr
    );
    // The README's test commands: a pass, then a cached pass.
    let test = ws.forge(&["test", "//..."]);
    assert_eq!(test.code, 0, "{}", test.both());
    assert!(test.stdout.contains("//app:hello_test "), "{}", test.both());
    assert!(test.stdout.contains(" PASSED in "), "{}", test.both());
    let cached = ws.forge(&["test", "//..."]);
    assert!(
        cached.stdout.contains("(cached) PASSED"),
        "{}",
        cached.both()
    );
}

//! rc files (`.bazelrc`, `.forgerc`: system, workspace, home, `--bazelrc=`) with Bazel's
//! sections, inheritance, `--config`, imports and `--announce_rc`; and Bazel's flag forms
//! (`--flag=BOOL`, `--noflag`, `--flag value`, a repeated flag's last value).

mod common;

use common::{Run, Workspace};

/// A workspace whose `//pkg:env` genrule writes `$MYVAR$OTHER` to `forge-bin/pkg/env.txt`, whose
/// `//pkg:env_test` passes only when that genrule saw `MYVAR=fromrc`, and whose `//pkg:ok`
/// builds. `forge query '//pkg:ok + //nope:x'` exits 3 with `--keep_going`, 1 without.
fn workspace() -> Workspace {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "");
    ws.write(
        "pkg/BUILD",
        "genrule(name = 'env', outs = ['env.txt'], cmd = 'echo \"MYVAR=$$MYVAR$$OTHER\" > $@')\n\
         genrule(\n\
             name = 'check',\n\
             outs = ['check.sh'],\n\
             cmd = 'if [ \"$$MYVAR\" = fromrc ]; then echo \"exit 0\"; else echo \"exit 1\"; fi > $@',\n\
             executable = True,\n\
         )\n\
         sh_test(name = 'env_test', srcs = [':check'])\n\
         genrule(name = 'ok', outs = ['ok.txt'], cmd = 'touch $@')\n",
    );
    ws
}

fn ok(run: Run) -> Run {
    assert_eq!(run.code, 0, "{}", run.both());
    run
}

/// What the `//pkg:env` genrule saw after `forge ARGS //pkg:env` (ARGS name `build`).
fn myvar(ws: &Workspace, args: &[&str]) -> String {
    let mut line = args.to_vec();
    line.push("//pkg:env");
    ok(ws.forge(&line));
    std::fs::read_to_string(ws.root().join("forge-bin/pkg/env.txt"))
        .unwrap()
        .trim()
        .to_owned()
}

fn write_home(ws: &Workspace, name: &str, text: &str) {
    std::fs::create_dir_all(ws.home_dir()).unwrap();
    std::fs::write(ws.home_dir().join(name), text).unwrap();
}

fn write_system(ws: &Workspace, name: &str, text: &str) {
    std::fs::create_dir_all(ws.system_rc_dir()).unwrap();
    std::fs::write(ws.system_rc_dir().join(name), text).unwrap();
}

#[test]
fn build_options_of_the_workspace_bazelrc_reach_actions() {
    let ws = workspace();
    assert_eq!(myvar(&ws, &["build"]), "MYVAR=");
    ws.write(
        ".bazelrc",
        "# CI settings\nbuild --action_env=MYVAR=fromrc # the variable the genrule reads\n",
    );
    assert_eq!(myvar(&ws, &["build"]), "MYVAR=fromrc");
    // The command line comes after the rc files: it wins.
    assert_eq!(
        myvar(&ws, &["build", "--action_env=MYVAR=cmdline"]),
        "MYVAR=cmdline"
    );
}

#[test]
fn test_inherits_build_and_query_does_not() {
    let ws = workspace();
    let run = ws.forge(&["test", "//pkg:env_test"]);
    assert_eq!(run.code, 3, "{}", run.both());
    ws.write(
        ".bazelrc",
        "build --action_env=MYVAR=fromrc\nbuild --keep_going\n",
    );
    ok(ws.forge(&["test", "//pkg:env_test"]));
    // query takes `common` and `query` options, not `build`'s.
    let run = ws.forge(&["query", "//pkg:ok + //nope:x"]);
    assert_eq!(run.code, 1, "{}", run.both());
    ws.write(".bazelrc", "query --keep_going\n");
    let run = ws.forge(&["query", "//pkg:ok + //nope:x"]);
    assert_eq!(run.code, 3, "{}", run.both());
}

#[test]
fn config_expands_its_section_in_place() {
    let ws = workspace();
    ws.write(
        ".bazelrc",
        "build --action_env=MYVAR=base\n\
         build:ci --action_env=MYVAR=ci\n\
         build:nested --config=ci\n\
         test:ci --test_output=errors\n",
    );
    assert_eq!(myvar(&ws, &["build"]), "MYVAR=base");
    assert_eq!(myvar(&ws, &["build", "--config=ci"]), "MYVAR=ci");
    assert_eq!(myvar(&ws, &["build", "--config", "nested"]), "MYVAR=ci");
    // In place: what comes after `--config` on the command line wins over it.
    assert_eq!(
        myvar(&ws, &["build", "--config=ci", "--action_env=MYVAR=after"]),
        "MYVAR=after"
    );
    assert_eq!(
        myvar(&ws, &["build", "--action_env=MYVAR=before", "--config=ci"]),
        "MYVAR=ci"
    );
}

#[test]
fn an_undefined_config_and_a_config_cycle_are_named() {
    let ws = workspace();
    ws.write(".bazelrc", "build:a --config=b\nbuild:b --config=a\n");
    let run = ws.forge(&["build", "--config=ci", "//pkg:ok"]);
    assert_eq!(run.code, 2, "{}", run.both());
    assert_eq!(
        run.stderr,
        "ERROR: Config value 'ci' is not defined in any .rc file\n"
    );
    let run = ws.forge(&["build", "--config=a", "//pkg:ok"]);
    assert_eq!(run.code, 2, "{}", run.both());
    assert_eq!(
        run.stderr,
        "ERROR: Config expansion has a cycle: config value a expands to itself, see inheritance chain [a, b, a]\n"
    );
}

#[test]
fn import_and_try_import_with_the_workspace_path() {
    let ws = workspace();
    ws.write(
        ".bazelrc",
        "try-import %workspace%/user.bazelrc\nimport %workspace%/tools/shared.bazelrc\n",
    );
    ws.write("tools/shared.bazelrc", "build --action_env=MYVAR=shared\n");
    assert_eq!(myvar(&ws, &["build"]), "MYVAR=shared");
    // Once it exists, the try-import is read (before shared.bazelrc, which still wins).
    ws.write(
        "user.bazelrc",
        "build --action_env=MYVAR=user\nbuild:mine --action_env=MYVAR=mine\n",
    );
    assert_eq!(myvar(&ws, &["build"]), "MYVAR=shared");
    assert_eq!(myvar(&ws, &["build", "--config=mine"]), "MYVAR=mine");
    // A missing import is an error naming the line that asked for it.
    ws.write(".bazelrc", "\nimport %workspace%/missing.bazelrc\n");
    let run = ws.forge(&["build", "//pkg:ok"]);
    assert_eq!(run.code, 2, "{}", run.both());
    assert_eq!(
        run.stderr,
        "ERROR: [TMP]/ws/.bazelrc:2: imported rc file '[TMP]/ws/missing.bazelrc' does not exist (use try-import for an optional file)\n"
    );
}

#[test]
fn forgerc_is_read_after_bazelrc() {
    let ws = workspace();
    ws.write(".bazelrc", "build --action_env=MYVAR=bazelrc\n");
    ws.write(".forgerc", "build --action_env=MYVAR=forgerc\n");
    assert_eq!(myvar(&ws, &["build"]), "MYVAR=forgerc");
}

#[test]
fn system_workspace_home_and_explicit_rc_files_in_bazels_order() {
    let ws = workspace();
    write_system(&ws, "bazel.bazelrc", "build --action_env=MYVAR=system\n");
    assert_eq!(myvar(&ws, &["build"]), "MYVAR=system");
    ws.write(".bazelrc", "build --action_env=MYVAR=workspace\n");
    assert_eq!(myvar(&ws, &["build"]), "MYVAR=workspace");
    write_home(&ws, ".bazelrc", "build --action_env=MYVAR=home\n");
    assert_eq!(myvar(&ws, &["build"]), "MYVAR=home");
    ws.write("extra.rc", "build --action_env=MYVAR=extra\n");
    assert_eq!(myvar(&ws, &["--bazelrc=extra.rc", "build"]), "MYVAR=extra");
    assert_eq!(
        myvar(&ws, &["--bazelrc", "extra.rc", "build"]),
        "MYVAR=extra"
    );
    let run = ws.forge(&["--bazelrc=missing.rc", "build", "//pkg:ok"]);
    assert_eq!(run.code, 2, "{}", run.both());
    assert!(
        run.stderr
            .starts_with("ERROR: cannot read rc file [TMP]/ws/missing.rc: "),
        "{}",
        run.stderr
    );
    assert_eq!(myvar(&ws, &["--nohome_rc", "build"]), "MYVAR=workspace");
    assert_eq!(
        myvar(&ws, &["--nohome_rc", "--noworkspace_rc", "build"]),
        "MYVAR=system"
    );
    assert_eq!(
        myvar(
            &ws,
            &["--nohome_rc", "--noworkspace_rc", "--nosystem_rc", "build"]
        ),
        "MYVAR="
    );
    assert_eq!(
        myvar(
            &ws,
            &["--ignore_all_rc_files", "--bazelrc=extra.rc", "build"]
        ),
        "MYVAR="
    );
}

#[test]
fn announce_rc_prints_what_was_applied_from_where() {
    let ws = workspace();
    ws.write(
        ".bazelrc",
        "common --announce_rc\nbuild --action_env=MYVAR=fromrc\nbuild --jobs=2\nbuild:ci --keep_going\ntest --test_output=errors\n",
    );
    let run = ok(ws.forge(&["test", "--config=ci", "//pkg:env_test"]));
    let announced: Vec<&str> = run
        .stderr
        .lines()
        .take_while(|l| {
            l.starts_with("INFO: Reading") || l.starts_with("INFO: Found") || l.starts_with("  ")
        })
        .collect();
    assert_eq!(
        announced,
        [
            "INFO: Reading rc options for 'test' from [TMP]/ws/.bazelrc:",
            "  Inherited 'common' options: --announce_rc",
            "INFO: Reading rc options for 'test' from [TMP]/ws/.bazelrc:",
            "  Inherited 'build' options: --action_env=MYVAR=fromrc --jobs=2",
            "INFO: Reading rc options for 'test' from [TMP]/ws/.bazelrc:",
            "  'test' options: --test_output=errors",
            "INFO: Found applicable config definition build:ci in file [TMP]/ws/.bazelrc: --keep_going",
        ],
        "{}",
        run.stderr
    );
    // Without it, nothing is announced.
    let run = ok(ws.forge(&["build", "--noannounce_rc", "//pkg:ok"]));
    assert!(!run.stderr.contains("INFO: Reading"), "{}", run.stderr);
}

#[test]
fn an_unknown_option_in_an_rc_file_names_the_file_and_line() {
    let ws = workspace();
    ws.write(".bazelrc", "build --jobs=2\nbuild --bogus_flag=1\n");
    let run = ws.forge(&["build", "//pkg:ok"]);
    assert_eq!(run.code, 2, "{}", run.both());
    assert_eq!(
        run.stderr,
        "ERROR: [TMP]/ws/.bazelrc:2: forge does not know the 'build' option '--bogus_flag' (remove it, or move it to a section of a command that takes it)\n"
    );
    // A test option under `build` is just as wrong for `forge build`.
    ws.write(".bazelrc", "build --test_output=errors\n");
    let run = ws.forge(&["build", "//pkg:ok"]);
    assert_eq!(run.code, 2, "{}", run.both());
    assert!(run.stderr.contains(".bazelrc:1: "), "{}", run.stderr);
    // So is a startup option forge does not have.
    ws.write(".bazelrc", "startup --host_jvm_args=-Xmx2g\n");
    let run = ws.forge(&["build", "//pkg:ok"]);
    assert_eq!(run.code, 2, "{}", run.both());
    assert!(
        run.stderr
            .contains(".bazelrc:1: forge does not know the startup option '--host_jvm_args'"),
        "{}",
        run.stderr
    );
}

#[test]
fn common_options_a_command_does_not_take_are_skipped() {
    let ws = workspace();
    // --test_output is a test option, --output a query option: `build` skips both.
    ws.write(
        ".bazelrc",
        "common --test_output=errors --output=label_kind --keep_going --action_env=MYVAR=fromrc\n",
    );
    assert_eq!(myvar(&ws, &["build"]), "MYVAR=fromrc");
    let run = ws.forge(&["query", "//pkg:ok + //nope:x"]);
    assert_eq!(run.code, 3, "{}", run.both());
    assert_eq!(run.stdout, "genrule rule //pkg:ok\n");
    // An option no command takes is still an error, even under `common`.
    ws.write(".bazelrc", "common --bogus_flag\n");
    let run = ws.forge(&["build", "//pkg:ok"]);
    assert_eq!(run.code, 2, "{}", run.both());
    assert!(run.stderr.contains(".bazelrc:1: "), "{}", run.stderr);
}

#[test]
fn startup_options_from_an_rc_file() {
    let ws = workspace();
    let base = ws.root().parent().unwrap().join("rc_base");
    ws.write(
        ".bazelrc",
        &format!(
            "startup --output_base={}\nbuild --jobs=2 --action_env=A=1\n",
            base.display()
        ),
    );
    // `info` inherits `build` as in Bazel; the build options it does not take are skipped.
    let run = ok(ws.forge(&["info", "output_base"]));
    assert_eq!(run.stdout, "[TMP]/rc_base\n");
}

#[test]
fn every_boolean_takes_bazels_forms() {
    let ws = workspace();
    // query of a good and a missing target: 3 when keeping going, 1 when not.
    for (flags, code) in [
        (&["--keep_going"][..], 3),
        (&["--keep_going=yes"], 3),
        (&["--keep_going=true"], 3),
        (&["--keep_going=1"], 3),
        (&["--keep_going=no"], 1),
        (&["--keep_going=false"], 1),
        (&["--keep_going=0"], 1),
        (&["--keep_going", "--nokeep_going"], 1),
        (&["--nokeep_going", "--keep_going"], 3),
        (&["--keep_going=yes", "--keep_going=no"], 1),
    ] {
        let mut args = vec!["query"];
        args.extend_from_slice(flags);
        args.push("//pkg:ok + //nope:x");
        let run = ws.forge(&args);
        assert_eq!(run.code, code, "{flags:?}: {}", run.both());
    }
    let run = ws.forge(&["query", "--keep_going=maybe", "//pkg:ok"]);
    assert_eq!(run.code, 2, "{}", run.both());
    assert!(
        run.stderr.contains("'maybe' is not a boolean"),
        "{}",
        run.stderr
    );
    // Booleans that had no `no` form take one now, and `=BOOL`.
    ok(ws.forge(&[
        "build",
        "--noverbose_failures",
        "--nosandbox_debug",
        "//pkg:ok",
    ]));
    ok(ws.forge(&["build", "--verbose_failures=yes", "--stamp=0", "//pkg:ok"]));
    // Bazel's tri-state --cache_test_results alone means yes.
    ok(ws.forge(&[
        "test",
        "--cache_test_results",
        "--action_env=MYVAR=fromrc",
        "//pkg:env_test",
    ]));
    // A switch never swallows the next word: the pattern stays a pattern.
    ok(ws.forge(&["build", "--keep_going", "//pkg:ok"]));
}

#[test]
fn flags_take_a_separate_value_and_a_repeated_flag_keeps_its_last_value() {
    let ws = workspace();
    ok(ws.forge(&["query", "--output", "label_kind", "--jobs", "2", "//pkg:ok"]));
    let run = ok(ws.forge(&[
        "query",
        "--output=label",
        "--jobs=1",
        "--jobs=2",
        "--output",
        "label_kind",
        "//pkg:ok",
    ]));
    assert_eq!(run.stdout, "genrule rule //pkg:ok\n");
    // List flags accumulate, from the rc file and the command line.
    ws.write(
        ".bazelrc",
        "build --action_env OTHER=+other -j2\nbuild -j 3\n",
    );
    assert_eq!(
        myvar(&ws, &["build", "--action_env", "MYVAR=spaced"]),
        "MYVAR=spaced+other"
    );
}

#[test]
fn cquery_and_aquery_inherit_build_and_read_their_own_sections() {
    let ws = workspace();
    ws.write(
        ".bazelrc",
        "build -c opt\naquery --output=summary\ncquery --output=starlark\n",
    );
    // aquery takes build's options (the opt configuration) and its own section's format.
    let run = ok(ws.forge(&["aquery", "//pkg:ok"]));
    assert!(run.stdout.contains("Mnemonics:"), "{}", run.both());
    assert!(
        run.stdout.contains("k8-opt") || run.stdout.contains("-opt: 1"),
        "{}",
        run.both()
    );
    // cquery reads its section (Bazel's starlark output prints the label by default)...
    let run = ok(ws.forge(&["cquery", "//pkg:ok"]));
    assert_eq!(run.stdout.trim(), "//pkg:ok", "{}", run.both());
    // ...which query does not take.
    ws.write(".bazelrc", "cquery --output=starlark\n");
    let run = ok(ws.forge(&["query", "//pkg:ok"]));
    assert_eq!(run.stdout.trim(), "//pkg:ok", "{}", run.both());
}

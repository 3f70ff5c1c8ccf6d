//! The everyday reporting flags, on the real binary: `--color` and `--curses` (under a
//! pseudo-terminal for `auto`), Bazel's colors, the paced progress of a log,
//! `--noshow_progress`, `--show_progress_rate_limit`, `--show_result`, `--nobuild`, `-s`,
//! `--verbose_failures`, `--test_summary`, `--test_verbose_timeout_warnings`, the test
//! summary on stdout, the `FAILED:` verdict, `clean --async`, and these flags in rc files.

mod common;

use std::io::Read;
use std::os::fd::OwnedFd;

use common::{Run, Workspace};

const GREEN_INFO: &str = "\x1b[32mINFO: \x1b[0m";
const RED_ERROR: &str = "\x1b[31m\x1b[1mERROR: \x1b[0m";
const RED_FAILED: &str = "\x1b[31m\x1b[1mFAILED: \x1b[0m";

/// `//pkg:a` and `//pkg:b` write a file each, `//pkg:bad` fails, `//pkg:s1` and `//pkg:s2`
/// sleep, `//pkg:chain_0..11` run one after another; `//pkg:pass_test` passes,
/// `//pkg:fail_test` fails with a JUnit XML naming its failed case, `//pkg:small_test` is
/// small.
fn workspace() -> Workspace {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "workspace(name = 'rep')\n");
    let mut build = String::from(
        "genrule(name = 'a', outs = ['a.txt'], cmd = 'echo a > $@')\n\
         genrule(name = 'b', outs = ['b.txt'], cmd = 'echo b > $@')\n\
         genrule(name = 'bad', outs = ['bad.txt'], cmd = 'echo oops >&2; exit 3')\n\
         genrule(name = 'after_bad', srcs = [':bad'], outs = ['after.txt'], cmd = 'cp $< $@')\n\
         genrule(name = 's1', outs = ['s1.txt'], cmd = 'sleep 2; echo > $@')\n\
         genrule(name = 's2', outs = ['s2.txt'], cmd = 'sleep 2; echo > $@')\n\
         sh_test(name = 'pass_test', srcs = ['pass.sh'])\n\
         sh_test(name = 'small_test', srcs = ['pass.sh'], size = 'small')\n\
         sh_test(name = 'fail_test', srcs = ['fail.sh'])\n",
    );
    for i in 0..12 {
        let srcs = match i {
            0 => String::new(),
            _ => format!("srcs = [':chain_{}'], ", i - 1),
        };
        build.push_str(&format!(
            "genrule(name = 'chain_{i}', {srcs}outs = ['chain_{i}.txt'], cmd = 'echo {i} > $@')\n"
        ));
    }
    ws.write("pkg/BUILD", &build);
    ws.write("pkg/pass.sh", "#!/bin/sh\necho fine\n");
    ws.write(
        "pkg/fail.sh",
        "#!/bin/sh\n\
         cat > \"$XML_OUTPUT_FILE\" <<'EOF'\n\
         <?xml version=\"1.0\"?>\n\
         <testsuites><testsuite name=\"Suite\" tests=\"2\" failures=\"1\">\n\
         <testcase name=\"case_one\" classname=\"Suite\"/>\n\
         <testcase name=\"case_two\" classname=\"Suite\"><failure message=\"no\"/></testcase>\n\
         </testsuite></testsuites>\n\
         EOF\n\
         echo broken\nexit 1\n",
    );
    use std::os::unix::fs::PermissionsExt;
    for script in ["pkg/pass.sh", "pkg/fail.sh"] {
        std::fs::set_permissions(
            ws.root().join(script),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
    }
    ws
}

fn ok(run: Run) -> Run {
    assert_eq!(run.code, 0, "{}", run.both());
    run
}

/// The plain progress lines (`[N / M] ...`) a run printed.
fn progress_lines(run: &Run) -> usize {
    run.stderr.lines().filter(|l| l.starts_with('[')).count()
}

#[test]
fn color_yes_paints_bazels_prefixes_and_no_or_a_log_paints_nothing() {
    let ws = workspace();
    let run = ws.forge(&["build", "--color=yes", "//pkg:bad"]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(run.stderr.contains(GREEN_INFO), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "{RED_ERROR}//pkg:bad: Executing genrule //pkg:bad failed"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.ends_with(&format!(
            "{RED_FAILED}Build did NOT complete successfully\n"
        )),
        "{}",
        run.stderr
    );
    let test = ws.forge(&["test", "--color=yes", "//pkg:pass_test", "//pkg:fail_test"]);
    assert_eq!(test.code, 3, "{}", test.both());
    assert!(
        test.stdout.contains("\x1b[32mPASSED\x1b[0m in "),
        "{}",
        test.stdout
    );
    assert!(
        test.stdout.contains("\x1b[31m\x1b[1mFAILED\x1b[0m in "),
        "{}",
        test.stdout
    );
    // `no`, and `auto` (the default) when the output is no terminal.
    for color in ["--color=no", "--color=auto"] {
        let run = ws.forge(&["build", color, "//pkg:bad"]);
        assert!(!run.stderr.contains('\x1b'), "{color}: {:?}", run.stderr);
        assert!(
            run.stderr
                .ends_with("FAILED: Build did NOT complete successfully\n"),
            "{}",
            run.stderr
        );
    }
    let bad = ws.forge(&["build", "--color=sometimes", "//pkg:a"]);
    assert_eq!(bad.code, 2, "{}", bad.both());
}

/// Runs forge with stdin, stdout and stderr on a fresh pseudo-terminal and returns what the
/// terminal showed and the exit code.
fn on_a_terminal(ws: &Workspace, args: &[&str]) -> (String, i32) {
    let pty = nix::pty::openpty(None, None).expect("a pseudo-terminal");
    let slave: OwnedFd = pty.slave;
    let mut cmd = ws.command(args);
    cmd.env("TERM", "xterm")
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave.try_clone().unwrap());
    let mut child = cmd.spawn().expect("forge runs");
    drop(cmd);
    drop(slave);
    let mut master = std::fs::File::from(pty.master);
    let mut shown = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        // The terminal reports EIO once every holder of its other end is gone.
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => shown.extend_from_slice(&buf[..n]),
        }
    }
    let code = child.wait().unwrap().code().unwrap_or(-1);
    (String::from_utf8_lossy(&shown).into_owned(), code)
}

#[test]
fn on_a_terminal_auto_colors_and_lists_the_running_actions_under_the_counts() {
    let ws = workspace();
    let (shown, code) = on_a_terminal(&ws, &["build", "--jobs=2", "//pkg:s1", "//pkg:s2"]);
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains(GREEN_INFO), "{shown:?}");
    // Two actions sleep at once: the counts, then one line each with its time, redrawn.
    assert!(shown.contains("[0 / 2] 2 actions running"), "{shown:?}");
    for label in ["//pkg:s1", "//pkg:s2"] {
        assert!(
            shown.contains(&format!("    Executing genrule {label}; 1s")),
            "{label}: {shown:?}"
        );
    }
    assert!(shown.contains("\x1b[J"), "{shown:?}");
    // Told not to, forge paints nothing and redraws nothing, even on a terminal.
    let (shown, code) = on_a_terminal(
        &ws,
        &["build", "--color=no", "--curses=no", "//pkg:chain_11"],
    );
    assert_eq!(code, 0, "{shown}");
    assert!(!shown.contains('\x1b'), "{shown:?}");
    assert!(
        shown.contains("[0 / 12] Executing genrule //pkg:chain_0"),
        "{shown:?}"
    );
}

#[test]
fn a_log_gets_few_progress_lines_unless_the_rate_limit_says_otherwise() {
    let ws = workspace();
    let every = ok(ws.forge(&["build", "--show_progress_rate_limit=0", "//pkg:chain_11"]));
    assert_eq!(progress_lines(&every), 12, "{}", every.stderr);
    ok(ws.forge(&["clean"]));
    let paced = ok(ws.forge(&["build", "//pkg:chain_11"]));
    // The first line at once, then at most one a second.
    assert!(progress_lines(&paced) >= 1, "{}", paced.stderr);
    assert!(progress_lines(&paced) < 12, "{}", paced.stderr);
    ok(ws.forge(&["clean"]));
    let slow = ok(ws.forge(&["build", "--show_progress_rate_limit=600", "//pkg:chain_11"]));
    assert_eq!(progress_lines(&slow), 1, "{}", slow.stderr);
    ok(ws.forge(&["clean"]));
    let none = ok(ws.forge(&["build", "--noshow_progress", "//pkg:chain_11"]));
    assert_eq!(progress_lines(&none), 0, "{}", none.stderr);
    assert!(
        none.stderr.contains("INFO: Build completed successfully"),
        "{}",
        none.stderr
    );
    let negative = ws.forge(&["build", "--show_progress_rate_limit=-1", "//pkg:a"]);
    assert_eq!(negative.code, 2, "{}", negative.both());
}

#[test]
fn show_result_is_the_most_targets_whose_outputs_are_listed() {
    let ws = workspace();
    let two = ok(ws.forge(&["build", "//pkg:a", "//pkg:b"]));
    assert!(!two.stderr.contains("up-to-date"), "{}", two.stderr);
    let shown = ok(ws.forge(&["build", "--show_result=2", "//pkg:a", "//pkg:b"]));
    for (label, file) in [("//pkg:a", "a.txt"), ("//pkg:b", "b.txt")] {
        assert!(
            shown.stderr.contains(&format!(
                "Target {label} up-to-date:\n  forge-bin/pkg/{file}\n"
            )),
            "{}",
            shown.stderr
        );
    }
    let one = ok(ws.forge(&["build", "//pkg:a"]));
    assert!(
        one.stderr.contains("Target //pkg:a up-to-date:"),
        "{}",
        one.stderr
    );
    let zero = ok(ws.forge(&["build", "--show_result=0", "//pkg:a"]));
    assert!(!zero.stderr.contains("up-to-date"), "{}", zero.stderr);
    // A source file named with a rule is not counted, as Bazel's result printer skips it.
    let with_source = ok(ws.forge(&["build", "//pkg:a", "//pkg:pass.sh"]));
    assert!(
        with_source.stderr.contains("Target //pkg:a up-to-date:"),
        "{}",
        with_source.stderr
    );
    assert!(
        !with_source.stderr.contains("pass.sh"),
        "{}",
        with_source.stderr
    );
    // A target whose dependency failed was not built, whichever action failed; the built
    // ones come first, then the failed ones, then Bazel's hint.
    let failed = ws.forge(&[
        "build",
        "--keep_going",
        "--show_result=2",
        "//pkg:after_bad",
        "//pkg:b",
    ]);
    assert_eq!(failed.code, 1, "{}", failed.both());
    assert!(
        failed.stderr.contains(
            "Target //pkg:b up-to-date:\n  forge-bin/pkg/b.txt\n\
             Target //pkg:after_bad failed to build\n\
             Use --verbose_failures to see the command lines of failed build steps.\n"
        ),
        "{}",
        failed.stderr
    );
    let verbose = ws.forge(&["build", "--verbose_failures", "//pkg:after_bad"]);
    assert!(
        verbose
            .stderr
            .contains("Target //pkg:after_bad failed to build\n"),
        "{}",
        verbose.stderr
    );
    assert!(
        !verbose.stderr.contains("Use --verbose_failures"),
        "{}",
        verbose.stderr
    );
    // More targets than --show_result: Bazel 4.2.3 prints no result lines at all, not even
    // for the failed ones.
    let many = ws.forge(&["build", "--keep_going", "//pkg:after_bad", "//pkg:b"]);
    assert_eq!(many.code, 1, "{}", many.both());
    assert!(!many.stderr.contains("Target //pkg:"), "{}", many.stderr);
    assert!(
        !many.stderr.contains("Use --verbose_failures"),
        "{}",
        many.stderr
    );
}

#[test]
fn nobuild_analyses_and_runs_nothing() {
    let ws = workspace();
    let run = ok(ws.forge(&["build", "--nobuild", "//pkg:a"]));
    assert!(
        run.stderr.contains("INFO: Analyzed target //pkg:a"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("INFO: Build completed successfully, 0 total actions"),
        "{}",
        run.stderr
    );
    assert!(!ws.root().join("forge-bin/pkg/a.txt").exists());
    let test = ok(ws.forge(&["test", "--nobuild", "//pkg:fail_test"]));
    assert!(!test.stdout.contains("Executed"), "{}", test.both());
    // Analysis errors still fail it.
    ws.write(
        "broken/BUILD",
        "genrule(name = 'x', srcs = ['missing.txt'], outs = ['x'], cmd = 'true')\n",
    );
    let broken = ws.forge(&["build", "--nobuild", "//broken:x"]);
    assert_eq!(broken.code, 1, "{}", broken.both());
    // And `--build` (the default) builds.
    ok(ws.forge(&["build", "--build", "//pkg:a"]));
    assert!(ws.root().join("forge-bin/pkg/a.txt").exists());
}

#[test]
fn subcommands_print_each_command_line_as_it_runs() {
    let ws = workspace();
    for flag in ["-s", "--subcommands"] {
        ok(ws.forge(&["clean"]));
        let run = ok(ws.forge(&["build", flag, "//pkg:a"]));
        assert!(
            run.stderr.contains(
                "SUBCOMMAND: # //pkg:a [action 'Executing genrule //pkg:a', configuration: "
            ),
            "{flag}: {}",
            run.stderr
        );
        assert!(
            run.stderr
                .contains("/execroot/rep && \\\n  exec env - \\\n"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("    PATH="), "{}", run.stderr);
        assert!(run.stderr.contains("/bin/bash -c "), "{}", run.stderr);
    }
    ok(ws.forge(&["clean"]));
    let quiet = ok(ws.forge(&["build", "//pkg:a"]));
    assert!(!quiet.stderr.contains("SUBCOMMAND"), "{}", quiet.stderr);
}

#[test]
fn verbose_failures_add_the_environment_and_working_directory() {
    let ws = workspace();
    let plain = ws.forge(&["build", "--action_env=MYVAR=seen", "//pkg:bad"]);
    assert_eq!(plain.code, 1, "{}", plain.both());
    assert!(
        plain.stderr.contains("failed (exit 3): /bin/bash -c "),
        "{}",
        plain.stderr
    );
    assert!(!plain.stderr.contains("MYVAR=seen"), "{}", plain.stderr);
    let verbose = ws.forge(&[
        "build",
        "--verbose_failures",
        "--action_env=MYVAR=seen",
        "//pkg:bad",
    ]);
    assert_eq!(verbose.code, 1, "{}", verbose.both());
    assert!(
        verbose
            .stderr
            .contains("failed (exit 3): error executing command \n  (cd "),
        "{}",
        verbose.stderr
    );
    assert!(
        verbose
            .stderr
            .contains("/execroot/rep && \\\n  exec env - \\\n"),
        "{}",
        verbose.stderr
    );
    assert!(
        verbose.stderr.contains("    MYVAR=seen \\\n"),
        "{}",
        verbose.stderr
    );
    assert!(verbose.stderr.contains("oops\n"), "{}", verbose.stderr);
}

#[test]
fn the_test_summary_is_on_stdout_as_test_summary_asks() {
    let ws = workspace();
    let tests = ["//pkg:pass_test", "//pkg:fail_test"];
    fn with<'a>(mode: &'a str, tests: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["test", mode];
        args.extend(tests);
        args
    }
    let args = |mode: &'static str| with(mode, &tests);
    let short = ws.forge(&args("--test_summary=short"));
    assert_eq!(short.code, 3, "{}", short.both());
    assert!(
        short.stdout.contains("//pkg:pass_test "),
        "{}",
        short.stdout
    );
    assert!(
        short.stdout.contains("//pkg:fail_test "),
        "{}",
        short.stdout
    );
    assert!(
        short
            .stdout
            .contains("\nExecuted 2 out of 2 tests: 1 test passes and 1 fails locally.\n"),
        "{}",
        short.stdout
    );
    assert!(!short.stderr.contains("Executed"), "{}", short.stderr);
    assert!(!short.stdout.contains("Suite.case_two"), "{}", short.stdout);
    let default = ws.forge(&args("--nocache_test_results"));
    assert!(
        default.stdout.contains("//pkg:pass_test "),
        "{}",
        default.stdout
    );

    let terse = ws.forge(&args("--test_summary=terse"));
    assert!(
        !terse.stdout.contains("//pkg:pass_test"),
        "{}",
        terse.stdout
    );
    assert!(
        terse.stdout.contains("//pkg:fail_test "),
        "{}",
        terse.stdout
    );
    assert!(terse.stdout.contains("Executed "), "{}", terse.stdout);

    let detailed = ws.forge(&args("--test_summary=detailed"));
    assert!(
        detailed.stdout.contains("    FAILED  Suite.case_two\n"),
        "{}",
        detailed.stdout
    );
    assert!(!detailed.stdout.contains("case_one"), "{}", detailed.stdout);

    let none = ws.forge(&args("--test_summary=none"));
    assert!(!none.stdout.contains("//pkg:"), "{}", none.stdout);
    assert!(none.stdout.contains("Executed "), "{}", none.stdout);
    assert_eq!(none.code, 3);

    // The test runs show in the progress, as actions do; a failure's FAIL line on stderr.
    let progress = ws.forge(&[
        "test",
        "--show_progress_rate_limit=0",
        "--nocache_test_results",
        "//pkg:pass_test",
        "//pkg:fail_test",
    ]);
    for label in tests {
        assert!(
            progress.stderr.contains(&format!("] Testing {label}\n")),
            "{}",
            progress.stderr
        );
    }
    assert!(
        progress.stderr.contains("FAIL: //pkg:fail_test (see "),
        "{}",
        progress.stderr
    );

    let bad = ws.forge(&args("--test_summary=long"));
    assert_eq!(bad.code, 2, "{}", bad.both());
}

#[test]
fn timeout_warnings_name_the_tests_whose_size_is_too_big() {
    let ws = workspace();
    let hint = "There were tests whose specified size is too big. Use the \
                --test_verbose_timeout_warnings command line option to see which ones these are.";
    let run = ok(ws.forge(&["test", "//pkg:pass_test"]));
    assert!(run.stdout.contains(hint), "{}", run.stdout);
    let verbose = ok(ws.forge(&["test", "--test_verbose_timeout_warnings", "//pkg:pass_test"]));
    let warning = verbose
        .stderr
        .lines()
        .find(|l| l.starts_with("WARNING: //pkg:pass_test: Test execution time ("))
        .unwrap_or_else(|| panic!("no warning in {}", verbose.stderr));
    assert!(
        warning.ends_with(
            "s excluding execution overhead) outside of range for MODERATE tests. Consider \
             setting timeout=\"short\" or size=\"small\"."
        ),
        "{warning}"
    );
    assert!(!verbose.stdout.contains(hint), "{}", verbose.stdout);
    // A small test that is quick is the right size.
    let small = ok(ws.forge(&[
        "test",
        "--test_verbose_timeout_warnings",
        "//pkg:small_test",
    ]));
    assert!(!small.stderr.contains("WARNING"), "{}", small.stderr);
    assert!(!small.stdout.contains(hint), "{}", small.stdout);
}

#[test]
fn reporting_flags_work_from_rc_files_and_common_skips_what_a_command_lacks() {
    let ws = workspace();
    ws.write(
        ".bazelrc",
        "common --color=yes\n\
         common --test_summary=terse\n\
         build --show_result=2\n\
         test --test_verbose_timeout_warnings\n",
    );
    // `build` takes --color and --show_result; `common --test_summary` is no build flag and
    // is skipped, as Bazel skips it.
    let build = ok(ws.forge(&["build", "//pkg:a", "//pkg:b"]));
    assert!(build.stderr.contains(GREEN_INFO), "{}", build.stderr);
    assert!(
        build.stderr.contains("Target //pkg:b up-to-date:"),
        "{}",
        build.stderr
    );
    let test = ws.forge(&["test", "//pkg:pass_test", "//pkg:fail_test"]);
    assert_eq!(test.code, 3, "{}", test.both());
    assert!(!test.stdout.contains("//pkg:pass_test"), "{}", test.stdout);
    assert!(
        test.stderr
            .contains("\x1b[35mWARNING: \x1b[0m//pkg:pass_test: Test execution time"),
        "{}",
        test.stderr
    );
    // A test flag in a build section is an error naming the file, as in Bazel.
    ws.write(".bazelrc", "build --test_summary=terse\n");
    let wrong = ws.forge(&["build", "//pkg:a"]);
    assert_eq!(wrong.code, 2, "{}", wrong.both());
    assert!(wrong.stderr.contains(".bazelrc"), "{}", wrong.stderr);
}

#[test]
fn clean_async_returns_at_once_and_deletes_in_the_background() {
    let ws = workspace();
    ok(ws.forge(&["build", "//pkg:a"]));
    let base = ok(ws.forge(&["info", "output_base"]))
        .stdout
        .trim()
        .to_owned();
    let base = std::path::PathBuf::from(
        base.replace("[TMP]", &ws.root().parent().unwrap().display().to_string()),
    );
    assert!(base.join("execroot").is_dir());
    for expunge in [false, true] {
        let mut args = vec!["clean", "--async"];
        if expunge {
            args.push("--expunge");
        }
        let run = ok(ws.forge(&args));
        let moved = run
            .stderr
            .lines()
            .find_map(|l| l.split_once(" moved to "))
            .and_then(|(_, rest)| rest.strip_suffix(" for deletion in the background"))
            .unwrap_or_else(|| panic!("no move in {}", run.stderr))
            .replace("[TMP]", &ws.root().parent().unwrap().display().to_string());
        // Gone from the output base at once, and the links with it.
        assert!(!base.join("execroot").exists());
        assert_eq!(base.exists(), !expunge);
        assert!(!ws.root().join("forge-bin").exists());
        // The background process removes what was moved aside.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::path::Path::new(&moved).exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "{moved} is still there"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        ok(ws.forge(&["build", "//pkg:a"]));
        assert!(ws.root().join("forge-bin/pkg/a.txt").exists());
    }
}

#[test]
fn query_and_fetch_take_color_too_and_curses_yes_redraws_even_in_a_log() {
    let ws = workspace();
    let query = ws.forge(&["query", "--color=yes", "//nope:x"]);
    assert_ne!(query.code, 0, "{}", query.both());
    assert!(query.stderr.contains(RED_ERROR), "{:?}", query.stderr);
    let plain = ws.forge(&["query", "//nope:x"]);
    assert!(!plain.stderr.contains('\x1b'), "{:?}", plain.stderr);
    let fetch = ok(ws.forge(&["fetch", "--color=yes", "//pkg:a"]));
    assert!(
        fetch
            .stderr
            .contains(&format!("{GREEN_INFO}All external dependencies fetched")),
        "{:?}",
        fetch.stderr
    );
    let live = ok(ws.forge(&["build", "--curses=yes", "--color=no", "//pkg:s1"]));
    assert!(live.stderr.contains("\r\x1b[J"), "{:?}", live.stderr);
    assert!(!live.stderr.contains("\x1b[3"), "{:?}", live.stderr);
}

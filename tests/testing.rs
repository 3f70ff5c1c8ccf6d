//! `forge test` on the `testing` fixture: results cached until an input changes, Bazel's
//! summary and exit codes, time limits, flaky tests, shards, repeats, filters, the test
//! environment, logs and JUnit XML, and a shared --disk_cache.

mod common;

use std::fs;
use std::path::Path;

use common::{Run, Workspace};

/// The summary line of `label`, without the time.
fn status_of(run: &Run, label: &str) -> String {
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("{label} ")))
        .unwrap_or_else(|| panic!("no summary line for {label} in:\n{}", run.both()));
    let rest = line[label.len()..].trim();
    rest.rsplit_once(" in ").map_or(rest, |(s, _)| s).to_owned()
}

fn executed_line(run: &Run) -> &str {
    run.stdout
        .lines()
        .find(|l| l.starts_with("Executed "))
        .unwrap_or_else(|| panic!("no Executed line in:\n{}", run.both()))
}

fn log(ws: &Workspace, path: &str) -> String {
    fs::read_to_string(ws.root().join("forge-testlogs").join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every test.xml under the testlogs parses as XML, with <testsuites> at the top.
fn assert_junit_xml(ws: &Workspace) {
    let mut files = 0;
    for entry in walkdir::WalkDir::new(ws.root().join("forge-testlogs/")).follow_links(true) {
        let entry = entry.unwrap();
        if entry.file_name() != "test.xml" {
            continue;
        }
        files += 1;
        let check = std::process::Command::new("python3")
            .args([
                "-c",
                "import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); \
                 assert r.tag == 'testsuites', r.tag; \
                 assert all(s.tag == 'testsuite' for s in r), 'not JUnit'",
            ])
            .arg(entry.path())
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{}: {}",
            entry.path().display(),
            String::from_utf8_lossy(&check.stderr)
        );
    }
    assert!(files > 0, "no test.xml found");
}

#[test]
fn the_classic_test_passes_then_is_cached_until_its_library_changes() {
    let ws = Workspace::fixture("testing");
    let first = ws.forge(&["test", "//:hello_test"]);
    assert_eq!(first.code, 0, "{}", first.both());
    assert_eq!(status_of(&first, "//:hello_test"), "PASSED");
    assert_eq!(
        executed_line(&first),
        "Executed 1 out of 1 test: 1 test passes."
    );

    let second = ws.forge(&["test", "//:hello_test"]);
    assert_eq!(second.code, 0);
    assert_eq!(status_of(&second, "//:hello_test"), "(cached) PASSED");
    assert_eq!(
        executed_line(&second),
        "Executed 0 out of 1 test: 1 test passes."
    );
    assert!(log(&ws, "hello_test/test.log").contains("Ran 1 test"));

    ws.write("dep.py", "def hello():\n    return 'hello'  # edited\n");
    let third = ws.forge(&["test", "//:hello_test"]);
    assert_eq!(status_of(&third, "//:hello_test"), "PASSED");

    // Forced runs.
    let forced = ws.forge(&["test", "--nocache_test_results", "//:hello_test"]);
    assert_eq!(status_of(&forced, "//:hello_test"), "PASSED");
    let forced = ws.forge(&["test", "--cache_test_results=no", "//:hello_test"]);
    assert_eq!(status_of(&forced, "//:hello_test"), "PASSED");
    ok_twice_external(&ws);
}

/// The `external` tag makes a test run every time.
fn ok_twice_external(ws: &Workspace) {
    for _ in 0..2 {
        let run = ws.forge(&["test", "//pkg:external_test"]);
        assert_eq!(
            status_of(&run, "//pkg:external_test"),
            "PASSED",
            "{}",
            run.stderr
        );
    }
}

#[test]
fn a_failing_test_exits_3_names_its_log_and_is_never_cached() {
    let ws = Workspace::fixture("testing");
    for _ in 0..2 {
        let run = ws.forge(&[
            "test",
            "--test_output=errors",
            "//pkg:fail_test",
            "//pkg:pass_test",
        ]);
        assert_eq!(run.code, 3, "{}", run.both());
        assert_eq!(status_of(&run, "//pkg:fail_test"), "FAILED");
        assert!(
            run.stdout.contains("testlogs/pkg/fail_test/test.log\n"),
            "{}",
            run.both()
        );
        assert!(
            run.stderr.contains("FAIL: //pkg:fail_test (see "),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr
                .contains("==================== Test output for //pkg:fail_test:"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("INFO: Build completed, 1 test FAILED"));
    }
    let run = ws.forge(&["test", "//pkg:fail_test", "//pkg:pass_test"]);
    assert!(
        executed_line(&run)
            .starts_with("Executed 1 out of 2 tests: 1 test passes and 1 fails locally."),
        "{}",
        run.stderr
    );
    assert!(log(&ws, "pkg/fail_test/test.log").contains("something is broken"));
    let xml = log(&ws, "pkg/fail_test/test.xml");
    assert!(
        xml.contains("<error message=\"exited with error code 1\">"),
        "{xml}"
    );
    assert_junit_xml(&ws);
}

#[test]
fn a_test_past_its_time_limit_is_killed_and_reported_timeout() {
    let ws = Workspace::fixture("testing");
    let started = std::time::Instant::now();
    let run = ws.forge(&["test", "--test_timeout=1", "//pkg:sleep_test"]);
    assert_eq!(run.code, 3, "{}", run.both());
    assert_eq!(status_of(&run, "//pkg:sleep_test"), "TIMEOUT");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert!(log(&ws, "pkg/sleep_test/test.log").contains("going to sleep"));
    // Sizes and timeouts give the limit the test sees.
    let run = ws.forge(&["test", "//pkg:env_test"]);
    assert_eq!(run.code, 0, "{}", run.both());
    assert!(log(&ws, "pkg/env_test/test.log").contains("TEST_TIMEOUT=900\n"));
}

#[test]
fn a_test_that_passes_on_retry_is_flaky_not_passed_and_not_cached() {
    let ws = Workspace::fixture("testing");
    let state = ws.root().parent().unwrap().join("flaky-state");
    let env = format!("--test_env=FLAKY_STATE={}", state.display());
    let run = ws.forge(&["test", &env, "//pkg:flaky_test"]);
    assert_eq!(run.code, 0, "{}", run.both());
    assert_eq!(status_of(&run, "//pkg:flaky_test"), "FLAKY");
    // Not cached: the next run executes again (and now passes at once).
    let run = ws.forge(&["test", &env, "//pkg:flaky_test"]);
    assert_eq!(status_of(&run, "//pkg:flaky_test"), "PASSED");
    // Without retries, the first failure is the result.
    fs::remove_file(&state).unwrap();
    // (The second run passed at once, so it was cached: force a run.)
    let run = ws.forge(&[
        "test",
        &env,
        "--flaky_test_attempts=1",
        "--nocache_test_results",
        "//pkg:flaky_test",
    ]);
    assert_eq!(status_of(&run, "//pkg:flaky_test"), "FAILED");
    assert_eq!(run.code, 3);
}

#[test]
fn shards_and_repeats_get_their_variables_and_directories() {
    let ws = Workspace::fixture("testing");
    let run = ws.forge(&["test", "//pkg:shard_test"]);
    assert_eq!(run.code, 0, "{}", run.both());
    for i in 0..3 {
        let dir = format!("pkg/shard_test/shard_{}_of_3", i + 1);
        assert!(log(&ws, &format!("{dir}/test.log")).contains(&format!("shard {i} of 3\n")));
        assert_eq!(
            log(&ws, &format!("{dir}/test.outputs/shard.txt")),
            format!("shard {i} of 3\n")
        );
    }
    let run = ws.forge(&["test", "--runs_per_test=2", "//pkg:env_test"]);
    assert_eq!(run.code, 0, "{}", run.both());
    assert!(run.stdout.contains("Stats over 2 runs"), "{}", run.both());
    for r in 1..=2 {
        let text = log(&ws, &format!("pkg/env_test/run_{r}_of_2/test.log"));
        assert!(text.contains(&format!("TEST_RUN_NUMBER={r}\n")), "{text}");
    }
}

#[test]
fn the_test_environment_contract() {
    let ws = Workspace::fixture("testing");
    let run = ws.forge(&[
        "test",
        "--test_env=FROM_FLAG=flag value",
        "--test_filter=SomeCase",
        "--test_arg=--extra",
        "//pkg:env_test",
    ]);
    assert_eq!(run.code, 0, "{}", run.both());
    let text = log(&ws, "pkg/env_test/test.log");
    assert!(text.starts_with(
        "exec ${PAGER:-/usr/bin/less} \"$0\" || exit 1\nExecuting tests from //pkg:env_test\n-----------------------------------------------------------------------------\n"
    ), "{text}");
    let tl = format!("{}/pkg/env_test", common::testlogs_dir());
    let rf = format!("{}/pkg/env_test.runfiles", common::bin_dir());
    for expected in [
        "args: 3 [arg1] [arg two] [--extra]".to_owned(),
        format!("pwd: /execroot/testws/{rf}/testws"),
        "data: the data".to_owned(),
        format!("TEST_SRCDIR=/execroot/testws/{rf}"),
        format!("RUNFILES_DIR=/execroot/testws/{rf}"),
        "TEST_WORKSPACE=testws".to_owned(),
        "TEST_TARGET=//pkg:env_test".to_owned(),
        "TEST_BINARY=pkg/env_test".to_owned(),
        format!("TEST_TMPDIR=/execroot/testws/{tl}/_tmp"),
        format!("XML_OUTPUT_FILE=/execroot/testws/{tl}/test.xml"),
        format!("TEST_UNDECLARED_OUTPUTS_DIR=/execroot/testws/{tl}/test.outputs"),
        "TEST_SIZE=large".to_owned(),
        "TEST_TIMEOUT=900".to_owned(),
        "TZ=UTC".to_owned(),
        "FROM_RULE=rule value".to_owned(),
        "FROM_FLAG=flag value".to_owned(),
        "TESTBRIDGE_TEST_ONLY=SomeCase".to_owned(),
        "HOME=".to_owned(),
        "TEST_TMPDIR is an empty directory".to_owned(),
        "TEST_TMPDIR is writable".to_owned(),
    ] {
        assert!(
            text.contains(&format!("{expected}\n")),
            "missing {expected}:\n{text}"
        );
    }
    assert_eq!(
        log(&ws, "pkg/env_test/test.outputs/extra.txt"),
        "an extra file\n"
    );
    // Changing the environment or the arguments reruns it; the same ones do not.
    let again = ws.forge(&[
        "test",
        "--test_env=FROM_FLAG=flag value",
        "--test_filter=SomeCase",
        "--test_arg=--extra",
        "//pkg:env_test",
    ]);
    assert_eq!(status_of(&again, "//pkg:env_test"), "(cached) PASSED");
    let changed = ws.forge(&["test", "--test_env=FROM_FLAG=other", "//pkg:env_test"]);
    assert_eq!(status_of(&changed, "//pkg:env_test"), "PASSED");
}

#[test]
fn suites_filters_and_exit_codes() {
    let ws = Workspace::fixture("testing");
    let run = ws.forge(&["test", "//pkg:quick"]);
    assert_eq!(run.code, 0, "{}", run.both());
    assert_eq!(status_of(&run, "//pkg:pass_test"), "PASSED");
    assert_eq!(status_of(&run, "//pkg:xml_test"), "PASSED");
    assert_eq!(
        executed_line(&run),
        "Executed 2 out of 2 tests: 2 tests pass."
    );
    // The test's own XML is kept; the others are generated.
    assert!(log(&ws, "pkg/xml_test/test.xml").contains("<testsuite name=\"own\""));
    assert_junit_xml(&ws);

    let run = ws.forge(&["test", "--test_size_filters=large", "//pkg:all"]);
    assert_eq!(run.code, 0, "{}", run.both());
    assert_eq!(
        executed_line(&run),
        "Executed 1 out of 1 test: 1 test passes."
    );
    assert_eq!(status_of(&run, "//pkg:env_test"), "PASSED");
    let run = ws.forge(&[
        "test",
        "--test_tag_filters=-no-sandbox,-external",
        "--test_size_filters=-large",
        "--test_timeout=1",
        "//pkg:pass_test",
        "//pkg:flaky_test",
        "//pkg:external_test",
    ]);
    assert_eq!(
        executed_line(&run),
        "Executed 1 out of 1 test: 1 test passes."
    );

    let none = ws.forge(&[
        "test",
        "--test_tag_filters=nothing-has-this",
        "//pkg:pass_test",
    ]);
    assert_eq!(none.code, 4, "{}", none.both());
    assert!(
        none.stderr
            .contains("ERROR: No test targets were found, yet testing was requested")
    );
    let broken = ws.forge(&["test", "//broken:broken_test"]);
    assert_eq!(broken.code, 1, "{}", broken.both());
}

#[test]
fn a_shared_disk_cache_makes_a_fresh_checkout_report_every_test_cached() {
    let shared = tempfile::tempdir().unwrap();
    let disk = format!("--disk_cache={}", shared.path().display());
    let patterns = ["//:hello_test", "//pkg:quick", "//pkg:shard_test"];
    let first = Workspace::fixture("testing");
    let mut args = vec!["test", disk.as_str()];
    args.extend(patterns);
    let run = first.forge(&args);
    assert_eq!(run.code, 0, "{}", run.both());

    // Another checkout, another output base: everything comes from the disk cache.
    let ci = Workspace::fixture("testing");
    let run = ci.forge(&args);
    assert_eq!(run.code, 0, "{}", run.both());
    for label in [
        "//:hello_test",
        "//pkg:pass_test",
        "//pkg:xml_test",
        "//pkg:shard_test",
    ] {
        assert_eq!(status_of(&run, label), "(cached) PASSED", "{}", run.stderr);
    }
    assert_eq!(
        executed_line(&run),
        "Executed 0 out of 4 tests: 4 tests pass."
    );
    assert!(log(&ci, "pkg/xml_test/test.xml").contains("<testsuite name=\"own\""));

    // The disk-cache hits were copied into the local store, as build actions' are: without
    // the disk cache, every test is still a cached pass.
    let local_only: Vec<&str> = std::iter::once("test").chain(patterns).collect();
    let run = ci.forge(&local_only);
    assert_eq!(
        executed_line(&run),
        "Executed 0 out of 4 tests: 4 tests pass.",
        "{}",
        run.stderr
    );

    // And they survive forge clean.
    assert_eq!(ci.forge(&["clean"]).code, 0);
    let run = ci.forge(&args);
    assert_eq!(
        executed_line(&run),
        "Executed 0 out of 4 tests: 4 tests pass.",
        "{}",
        run.stderr
    );
    assert!(Path::new(&ci.root().join("forge-testlogs/hello_test/test.log")).exists());
}

#[test]
fn test_output_all_and_streamed() {
    let ws = Workspace::fixture("testing");
    let run = ws.forge(&["test", "--test_output=all", "//pkg:pass_test"]);
    assert_eq!(run.code, 0, "{}", run.both());
    assert!(
        run.stderr
            .contains("==================== Test output for //pkg:pass_test:\nexec ${PAGER"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("all good\n"), "{}", run.stderr);
    let run = ws.forge(&[
        "test",
        "--test_output=streamed",
        "--nocache_test_results",
        "//pkg:pass_test",
    ]);
    assert_eq!(run.code, 0, "{}", run.both());
    assert_eq!(
        run.stderr.matches("all good\n").count(),
        1,
        "{}",
        run.stderr
    );
    // Without --test_output, a passing test's output stays in its log.
    let run = ws.forge(&["test", "--nocache_test_results", "//pkg:pass_test"]);
    assert!(!run.stderr.contains("all good"), "{}", run.stderr);
}

#[test]
fn ctrl_c_during_tests_reports_no_status_and_exits_8() {
    let ws = Workspace::fixture("testing");
    let child = ws
        .command(&["test", "//pkg:sleep_test"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the test is running (its log directory appears), then interrupt.
    let started = std::time::Instant::now();
    let forge = child.id();
    // A `sleep 600` that descends from our forge (other tests run the same test).
    let running = |_: &Workspace| {
        common::processes_with("sleep 600")
            .into_iter()
            .any(|p| common::descends_from(p, forge))
    };
    while !running(&ws) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the test never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(8), "{stderr}");
    // The summary is on stdout, as Bazel prints it.
    assert!(
        stdout.contains("//pkg:sleep_test") && stdout.contains("NO STATUS"),
        "{stdout}"
    );
    assert!(stdout.contains("1 was skipped"), "{stdout}");
}

#[test]
fn keep_going_runs_the_tests_that_built_and_reports_the_rest() {
    let ws = Workspace::fixture("testing");
    ws.write(
        "pkg2/BUILD",
        "genrule(name = 'gen', outs = ['gen.sh'], cmd = 'exit 1')\n\
         sh_test(name = 'needs_gen_test', srcs = [':gen'])\n\
         sh_test(name = 'ok_test', srcs = ['ok.sh'])\n",
    );
    ws.write("pkg2/ok.sh", "#!/bin/sh\necho ok\n");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(
        ws.root().join("pkg2/ok.sh"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let run = ws.forge(&["test", "--keep_going", "//pkg2:all", "//broken:broken_test"]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert_eq!(status_of(&run, "//pkg2:ok_test"), "PASSED");
    assert_eq!(status_of(&run, "//pkg2:needs_gen_test"), "FAILED TO BUILD");
    assert_eq!(status_of(&run, "//broken:broken_test"), "FAILED TO BUILD");
    assert_eq!(
        executed_line(&run),
        "Executed 1 out of 3 tests: 1 test passes and 2 fail to build."
    );
    // Without --keep_going the build failure ends the command before any test runs.
    let run = ws.forge(&["test", "//pkg2:all"]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(!run.both().contains("Executed "), "{}", run.both());
}

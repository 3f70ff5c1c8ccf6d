//! What CI reads, on the real binary: the build event files (`--build_event_json_file` parsed
//! as JSON lines with Bazel's event kinds and field names, `--build_event_text_file` in the
//! text format) and the `--profile` trace (parsed as Chrome's Trace Event JSON: phases on the
//! main thread, each action on its worker thread).

mod common;

use serde_json::Value;

use common::Workspace;

/// `//pkg:a` writes a file, `//pkg:bad` fails (and `//pkg:after_bad` with it), `//pkg:s1`/`//pkg:s2` sleep; `//pkg:pass_test`
/// passes (tagged `fast`), `//pkg:fail_test` fails.
fn workspace() -> Workspace {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "workspace(name = 'bep')\n");
    ws.write(
        "pkg/BUILD",
        "genrule(name = 'a', outs = ['a.txt'], cmd = 'echo a > $@', tags = ['mine'])\n\
         genrule(name = 'bad', outs = ['bad.txt'], cmd = 'exit 3')\n\
         genrule(name = 'after_bad', srcs = [':bad'], outs = ['after.txt'], cmd = 'cp $< $@')\n\
         genrule(name = 's1', outs = ['s1.txt'], cmd = 'sleep 1; echo > $@')\n\
         genrule(name = 's2', outs = ['s2.txt'], cmd = 'sleep 1; echo > $@')\n\
         sh_test(name = 'pass_test', srcs = ['pass.sh'], tags = ['fast'])\n\
         sh_test(name = 'fail_test', srcs = ['fail.sh'])\n",
    );
    ws.write("pkg/pass.sh", "#!/bin/sh\necho fine\n");
    ws.write("pkg/fail.sh", "#!/bin/sh\necho broken\nexit 1\n");
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

/// Every line of the JSON event file, parsed.
fn events(path: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("the event file");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The events whose id is of `kind` (`targetCompleted`, ...).
fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["id"].get(kind).is_some())
        .collect()
}

/// The one event of `kind` about `label`.
fn about<'a>(events: &'a [Value], kind: &str, label: &str) -> &'a Value {
    of_kind(events, kind)
        .into_iter()
        .find(|e| e["id"][kind]["label"] == label)
        .unwrap_or_else(|| panic!("no {kind} event for {label} in {events:#?}"))
}

fn uri_path(uri: &Value) -> std::path::PathBuf {
    let uri = uri.as_str().expect("a uri");
    std::path::PathBuf::from(uri.strip_prefix("file://").expect("a file uri"))
}

#[test]
fn the_json_event_file_follows_a_build_from_start_to_exit_code() {
    let ws = workspace();
    let file = ws.root().join("events.json");
    let flag = format!("--build_event_json_file={}", file.display());
    let run = ws.forge(&[
        "build",
        "--keep_going",
        &flag,
        "//pkg:a",
        "//pkg:bad",
        "//pkg:after_bad",
    ]);
    assert_eq!(run.code, 1, "{}", run.both());
    let events = events(&file);

    let started = &events[0];
    assert!(started["id"]["started"].is_object(), "{started}");
    assert_eq!(started["started"]["command"], "build");
    assert!(started["started"]["uuid"].as_str().unwrap().len() == 36);
    assert!(
        started["started"]["startTimeMillis"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .is_ok()
    );
    let command_line = &of_kind(&events, "unstructuredCommandLine")[0];
    assert_eq!(
        command_line["unstructuredCommandLine"]["args"][0], "build",
        "{command_line}"
    );

    let pattern = &of_kind(&events, "pattern")[0];
    assert_eq!(
        pattern["id"]["pattern"]["pattern"],
        serde_json::json!(["//pkg:a", "//pkg:bad", "//pkg:after_bad"])
    );
    let configured = about(&events, "targetConfigured", "//pkg:a");
    assert_eq!(configured["configured"]["targetKind"], "genrule rule");
    assert_eq!(configured["configured"]["tag"], serde_json::json!(["mine"]));

    let good = about(&events, "targetCompleted", "//pkg:a");
    assert_eq!(good["completed"]["success"], true, "{good}");
    let outputs = good["completed"]["importantOutput"].as_array().unwrap();
    assert_eq!(outputs.len(), 1, "{good}");
    assert_eq!(outputs[0]["name"], "pkg/a.txt");
    assert_eq!(
        std::fs::read_to_string(uri_path(&outputs[0]["uri"])).unwrap(),
        "a\n"
    );
    // The output group names the set of files that lists the same output.
    let set_id = &good["completed"]["outputGroup"][0]["fileSets"][0]["id"];
    let set = of_kind(&events, "namedSet")
        .into_iter()
        .find(|e| &e["id"]["namedSet"]["id"] == set_id)
        .expect("the named set");
    assert_eq!(set["namedSetOfFiles"]["files"][0]["name"], "pkg/a.txt");

    // The failed target, and the one that needed it, which never ran.
    for label in ["//pkg:bad", "//pkg:after_bad"] {
        let failed = about(&events, "targetCompleted", label);
        assert!(failed["completed"]["success"].is_null(), "{failed}");
        assert!(failed["completed"]["failureDetail"]["message"].is_string());
    }
    let action = about(&events, "actionCompleted", "//pkg:bad");
    assert_eq!(action["action"]["type"], "Genrule", "{action}");
    assert_eq!(action["action"]["exitCode"], 3, "{action}");
    assert_eq!(action["action"]["label"], "//pkg:bad");
    assert!(action["action"]["success"].is_null());
    assert_eq!(action["action"]["commandLine"][0], "/bin/bash", "{action}");
    assert_eq!(
        action["id"]["actionCompleted"]["primaryOutput"],
        format!("{}/pkg/bad.txt", common::bin_dir())
    );

    let finished = &of_kind(&events, "buildFinished")[0];
    assert_eq!(finished["finished"]["exitCode"]["name"], "BUILD_FAILURE");
    assert_eq!(finished["finished"]["exitCode"]["code"], 1);
    assert!(finished["finished"]["overallSuccess"].is_null());
    let last = events.last().unwrap();
    assert_eq!(last["lastMessage"], true, "{last}");
    assert!(last["id"]["buildMetrics"].is_object());

    // A build that succeeds says so.
    let run = ws.forge(&["build", &flag, "//pkg:a"]);
    assert_eq!(run.code, 0, "{}", run.both());
    let events = self::events(&file);
    let finished = &of_kind(&events, "buildFinished")[0];
    assert_eq!(finished["finished"]["overallSuccess"], true);
    assert_eq!(finished["finished"]["exitCode"]["name"], "SUCCESS");
}

#[test]
fn test_results_and_summaries_carry_their_status_and_logs() {
    let ws = workspace();
    let file = ws.root().join("events.json");
    let flag = format!("--build_event_json_file={}", file.display());
    let run = ws.forge(&["test", &flag, "//pkg:pass_test", "//pkg:fail_test"]);
    assert_eq!(run.code, 3, "{}", run.both());
    let events = events(&file);
    let configured = about(&events, "targetConfigured", "//pkg:pass_test");
    assert_eq!(configured["configured"]["testSize"], "MEDIUM");
    assert_eq!(configured["configured"]["targetKind"], "sh_test rule");

    for (label, status) in [("//pkg:pass_test", "PASSED"), ("//pkg:fail_test", "FAILED")] {
        let result = about(&events, "testResult", label);
        assert_eq!(result["testResult"]["status"], status, "{result}");
        assert_eq!(result["id"]["testResult"]["run"], 1);
        let outputs = result["testResult"]["testActionOutput"].as_array().unwrap();
        let log = outputs
            .iter()
            .find(|o| o["name"] == "test.log")
            .expect("test.log");
        let text = std::fs::read_to_string(uri_path(&log["uri"])).unwrap();
        let said = if status == "PASSED" { "fine" } else { "broken" };
        assert!(text.contains(said), "{text}");
        let summary = about(&events, "testSummary", label);
        assert_eq!(summary["testSummary"]["overallStatus"], status);
        assert_eq!(summary["testSummary"]["totalRunCount"], 1);
    }
    let finished = &of_kind(&events, "buildFinished")[0];
    assert_eq!(finished["finished"]["exitCode"]["name"], "TESTS_FAILED");
    assert_eq!(finished["finished"]["exitCode"]["code"], 3);

    // Cached the second time, and said so.
    let run = ws.forge(&["test", &flag, "//pkg:pass_test"]);
    assert_eq!(run.code, 0, "{}", run.both());
    let events = self::events(&file);
    let result = about(&events, "testResult", "//pkg:pass_test");
    assert_eq!(result["testResult"]["cachedLocally"], true, "{result}");
}

#[test]
fn the_text_event_file_is_the_protobuf_text_format() {
    let ws = workspace();
    let file = ws.root().join("events.txt");
    let flag = format!("--build_event_text_file={}", file.display());
    let run = ws.forge(&["build", &flag, "//pkg:a"]);
    assert_eq!(run.code, 0, "{}", run.both());
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("id {\n  started {\n  }\n}\n"), "{text}");
    for expected in [
        "  command: \"build\"\n",
        "target_completed {\n    label: \"//pkg:a\"\n",
        "  success: true\n",
        "exit_code {\n    name: \"SUCCESS\"\n  }\n",
        "last_message: true\n",
    ] {
        assert!(text.contains(expected), "{expected:?} in:\n{text}");
    }
}

#[test]
fn no_event_file_and_no_profile_unless_asked() {
    let ws = workspace();
    let bad_dir = ws.root().join("no/such/dir/events.json");
    let flag = format!("--build_event_json_file={}", bad_dir.display());
    let run = ws.forge(&["build", &flag, "//pkg:a"]);
    assert_eq!(run.code, 2, "{}", run.both());
    assert!(
        run.stderr.contains("--build_event_json_file="),
        "{}",
        run.stderr
    );
    let run = ws.forge(&["build", "//pkg:a"]);
    assert_eq!(run.code, 0, "{}", run.both());
    let names: Vec<String> = std::fs::read_dir(ws.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".json")), "{names:?}");
}

#[test]
fn the_profile_is_a_chrome_trace_with_phases_and_each_action_on_its_worker() {
    let ws = workspace();
    let file = ws.root().join("profile.json");
    let flag = format!("--profile={}", file.display());
    let run = ws.forge(&["build", "--jobs=2", &flag, "//pkg:s1", "//pkg:s2"]);
    assert_eq!(run.code, 0, "{}", run.both());
    let trace: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).expect("JSON");
    let events = trace["traceEvents"].as_array().expect("traceEvents");
    let complete: Vec<&Value> = events.iter().filter(|e| e["ph"] == "X").collect();
    for e in &complete {
        assert!(e["ts"].is_u64() && e["dur"].is_u64(), "{e}");
        assert_eq!(e["pid"], 1);
    }
    let phase = |name: &str| {
        complete
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {events:#?}"))
    };
    for name in ["Load packages", "Analyze targets", "Execute actions"] {
        assert_eq!(phase(name)["tid"], 0, "{name}");
    }
    assert!(phase("Load packages")["ts"].as_u64() <= phase("Analyze targets")["ts"].as_u64());
    let s1 = phase("Executing genrule //pkg:s1");
    let s2 = phase("Executing genrule //pkg:s2");
    assert!(s1["dur"].as_u64().unwrap() >= 1_000_000, "{s1}");
    assert_eq!(s1["cat"], "action processing");
    assert_eq!(s1["args"]["target"], "//pkg:s1");
    // They ran at once, on two workers, each named by a metadata event.
    assert_ne!(s1["tid"], s2["tid"]);
    for action in [s1, s2] {
        let tid = &action["tid"];
        assert!(tid.as_u64().unwrap() >= 1);
        let named = events
            .iter()
            .any(|e| e["ph"] == "M" && e["name"] == "thread_name" && &e["tid"] == tid);
        assert!(named, "thread {tid} has no name");
    }

    // Tests are a phase of their own.
    let run = ws.forge(&["test", &flag, "//pkg:pass_test"]);
    assert_eq!(run.code, 0, "{}", run.both());
    let trace: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let names: Vec<&str> = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert!(names.contains(&"Run tests"), "{names:?}");
    // Each test run is an action of its own on a worker thread.
    let test_run = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "Testing //pkg:pass_test" && e["ph"] == "X")
        .unwrap_or_else(|| panic!("no test run in {names:?}"));
    assert!(test_run["tid"].as_u64().unwrap() >= 1, "{test_run}");
    assert_eq!(test_run["args"]["mnemonic"], "TestRunner");
}

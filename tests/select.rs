//! `select()`, `config_setting` and the built-in `@platforms` repository: each test builds or
//! queries the `select` fixture with the real binary and checks which branch was taken, or
//! the error when none (or more than one) can be.

mod common;

use common::{Run, Workspace};

fn ok(run: Run) -> Run {
    assert_eq!(run.code, 0, "forge failed:\n{}", run.both());
    run
}

fn read(ws: &Workspace, path: &str) -> String {
    std::fs::read_to_string(ws.root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Builds `target` with `flags` and returns the content of its output under forge-bin.
fn build_and_read(ws: &Workspace, flags: &[&str], target: &str, output: &str) -> String {
    let mut args = vec!["build"];
    args.extend_from_slice(flags);
    args.push(target);
    ok(ws.forge(&args));
    read(ws, &format!("forge-bin/{output}"))
}

fn lines(stdout: &str) -> Vec<&str> {
    stdout.lines().collect()
}

#[test]
fn a_define_picks_the_branch_of_the_matching_config_setting() {
    let ws = Workspace::fixture("select");
    assert_eq!(
        build_and_read(&ws, &[], "//pkg:mode", "pkg/mode.txt"),
        "default\n"
    );
    assert_eq!(
        build_and_read(
            &ws,
            &["--define", "mode=fast"],
            "//pkg:mode",
            "pkg/mode.txt"
        ),
        "fast\n"
    );
    // Another value of the same define matches nothing but the default.
    assert_eq!(
        build_and_read(&ws, &["--define=mode=slow"], "//pkg:mode", "pkg/mode.txt"),
        "default\n"
    );
}

#[test]
fn constraint_values_match_the_host_platform() {
    let ws = Workspace::fixture("select");
    let expected = match std::env::consts::OS {
        "linux" => "linux\n",
        "macos" => "macos\n",
        _ => "other\n",
    };
    assert_eq!(build_and_read(&ws, &[], "//pkg:os", "pkg/os.txt"), expected);
    // A constraint_value is a condition on its own.
    let direct = match std::env::consts::OS {
        "linux" => "linux\n",
        "windows" => "windows\n",
        _ => "other\n",
    };
    assert_eq!(
        build_and_read(&ws, &[], "//pkg:os_direct", "pkg/os_direct.txt"),
        direct
    );
}

#[test]
fn values_cpu_matches_bazels_cpu_name_and_compilation_mode_is_fastbuild() {
    let ws = Workspace::fixture("select");
    let expected = match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => "k8\n",
        ("linux", "aarch64") => "aarch64\n",
        _ => "other\n",
    };
    assert_eq!(
        build_and_read(&ws, &[], "//pkg:cpu", "pkg/cpu.txt"),
        expected
    );
}

#[test]
fn lists_and_strings_concatenate_with_selects() {
    let ws = Workspace::fixture("select");
    let linux = if cfg!(target_os = "linux") {
        "linux\n"
    } else {
        ""
    };
    assert_eq!(
        build_and_read(&ws, &[], "//pkg:concat", "pkg/concat.txt"),
        format!("a\nslow\n{linux}")
    );
    assert_eq!(
        build_and_read(
            &ws,
            &["--define", "mode=fast"],
            "//pkg:concat",
            "pkg/concat.txt"
        ),
        format!("a\nfast\n{linux}cmd-fast\n")
    );
}

#[test]
fn a_more_specialised_condition_wins_over_the_one_it_refines() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let ws = Workspace::fixture("select");
    assert_eq!(
        build_and_read(
            &ws,
            &["--define", "mode=fast"],
            "//pkg:specialized",
            "pkg/specialized.txt"
        ),
        "fast_linux\n"
    );
    assert_eq!(
        build_and_read(&ws, &[], "//pkg:specialized", "pkg/specialized.txt"),
        "default\n"
    );
}

#[test]
fn no_matching_condition_names_the_target_attribute_line_and_conditions() {
    let ws = Workspace::fixture("select");
    let run = ws.forge(&["build", "//pkg:no_default"]);
    assert_eq!(run.code, 1, "{}", run.both());
    let expected = "ERROR: pkg/BUILD:117:1: in genrule rule //pkg:no_default: configurable \
                    attribute \"cmd\" in //pkg:no_default doesn't match this configuration \
                    (would a default condition help?).\nConditions checked:\n  //pkg:fast\n  \
                    //pkg:opt\n";
    assert!(run.stderr.contains(expected), "{}", run.stderr);
    // With the define, the same target builds.
    assert_eq!(
        build_and_read(
            &ws,
            &["--define", "mode=fast"],
            "//pkg:no_default",
            "pkg/no_default.txt"
        ),
        "fast\n"
    );
}

#[test]
fn no_match_error_replaces_the_list_of_conditions() {
    let ws = Workspace::fixture("select");
    let run = ws.forge(&["build", "//pkg:custom_error"]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr.contains(
            "configurable attribute \"cmd\" in //pkg:custom_error doesn't match this \
             configuration: build this with --define mode=fast"
        ),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("Conditions checked"), "{}", run.stderr);
}

#[test]
fn two_equally_specific_matches_are_ambiguous() {
    let ws = Workspace::fixture("select");
    let run = ws.forge(&["build", "--define", "mode=fast", "//pkg:ambiguous"]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr.contains(
            "illegal ambiguous match on configurable attribute \"cmd\" in //pkg:ambiguous:\n  \
             //pkg:fast\n  //pkg:fast_dv\n"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn query_deps_include_every_branch_and_the_conditions() {
    let ws = Workspace::fixture("select");
    let run = ok(ws.forge(&["query", "deps(//pkg:concat)"]));
    assert_eq!(
        lines(&run.stdout),
        [
            "//pkg:a.txt",
            "//pkg:concat",
            "//pkg:fast",
            "//pkg:fast.txt",
            "//pkg:linux",
            "//pkg:linux.txt",
            "//pkg:slow.txt",
            "@platforms//os:linux",
            "@platforms//os:os",
        ]
    );
    let build = ok(ws.forge(&["query", "//pkg:mode", "--output=build"]));
    assert!(
        build.stdout.contains(
            "cmd = select({\"//pkg:fast\": \"echo fast > $@\", \"//conditions:default\": \
             \"echo default > $@\"}),"
        ),
        "{}",
        build.stdout
    );
}

#[test]
fn the_platforms_repository_is_built_in() {
    let ws = Workspace::fixture("select");
    let os = ok(ws.forge(&["query", "@platforms//os:all"]));
    for name in ["os", "linux", "macos", "windows"] {
        let label = format!("@platforms//os:{name}");
        assert!(lines(&os.stdout).contains(&label.as_str()), "{}", os.stdout);
    }
    let cpu = ok(ws.forge(&["query", "@platforms//cpu:all"]));
    for name in ["cpu", "x86_64", "aarch64", "arm64"] {
        let label = format!("@platforms//cpu:{name}");
        assert!(
            lines(&cpu.stdout).contains(&label.as_str()),
            "{}",
            cpu.stdout
        );
    }
    let kind = ok(ws.forge(&["query", "kind(constraint_value, @platforms//...)"]));
    assert!(
        lines(&kind.stdout).contains(&"@platforms//cpu:x86_64"),
        "{}",
        kind.stdout
    );
    let missing = ws.forge(&["query", "@platforms//nope:all"]);
    assert_ne!(missing.code, 0);
    assert!(
        missing
            .stderr
            .contains("no such package '@platforms//nope'"),
        "{}",
        missing.stderr
    );
}

#[test]
fn arm64_is_an_alias_of_aarch64_in_constraint_values() {
    let ws = Workspace::fixture("select");
    ws.write(
        "arm/BUILD",
        r#"
config_setting(name = "arm64", constraint_values = ["@platforms//cpu:arm64"])
config_setting(name = "x86_64", constraint_values = ["@platforms//cpu:x86_64"])
genrule(
    name = "t",
    outs = ["t.txt"],
    cmd = select({":arm64": "echo arm64 > $@", ":x86_64": "echo x86_64 > $@"}),
)
"#,
    );
    let expected = match std::env::consts::ARCH {
        "aarch64" => "arm64\n",
        "x86_64" => "x86_64\n",
        _ => return,
    };
    assert_eq!(build_and_read(&ws, &[], "//arm:t", "arm/t.txt"), expected);
}

#[test]
fn selects_work_in_macros_and_as_bzl_globals() {
    let ws = Workspace::fixture("select");
    ws.write(
        "mac/defs.bzl",
        r#"
EXTRA = select({"//mac:fast": ["fast.txt"], "//conditions:default": ["slow.txt"]})

def cat_all(name, srcs):
    native.genrule(
        name = name,
        srcs = srcs + EXTRA,
        outs = [name + ".txt"],
        cmd = "cat $(SRCS) > $@",
    )
"#,
    );
    ws.write(
        "mac/BUILD",
        r#"
load(":defs.bzl", "cat_all")
config_setting(name = "fast", define_values = {"mode": "fast"})
cat_all(name = "m", srcs = ["a.txt"])
"#,
    );
    for (f, text) in [("a", "a\n"), ("fast", "f\n"), ("slow", "s\n")] {
        ws.write(&format!("mac/{f}.txt"), text);
    }
    assert_eq!(build_and_read(&ws, &[], "//mac:m", "mac/m.txt"), "a\ns\n");
    assert_eq!(
        build_and_read(&ws, &["--define", "mode=fast"], "//mac:m", "mac/m.txt"),
        "a\nf\n"
    );
}

#[test]
fn name_and_visibility_are_not_configurable() {
    let ws = Workspace::fixture("select");
    ws.write(
        "bad/BUILD",
        r#"genrule(name = select({"//conditions:default": "x"}), outs = ["x.txt"], cmd = "")"#,
    );
    let run = ws.forge(&["query", "//bad:all"]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr.contains("attribute 'name' is not configurable"),
        "{}",
        run.stderr
    );
    ws.write(
        "bad/BUILD",
        r#"genrule(name = "x", outs = ["x.txt"], cmd = "",
           visibility = select({"//conditions:default": ["//visibility:public"]}))"#,
    );
    let run = ws.forge(&["query", "//bad:all"]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr
            .contains("attribute 'visibility' is not configurable"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_branch_of_the_wrong_type_is_a_loading_error() {
    let ws = Workspace::fixture("select");
    ws.write(
        "bad/BUILD",
        r#"genrule(name = "x", outs = ["x.txt"], cmd = select({"//conditions:default": ["a"]}))"#,
    );
    let run = ws.forge(&["query", "//bad:all"]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr.contains(
            "expected a string for attribute 'cmd' of genrule rule '//bad:x', but got [\"a\"] \
             of type 'list' (in the select() branch for '//conditions:default')"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn a_condition_that_is_not_a_config_setting_is_an_error() {
    let ws = Workspace::fixture("select");
    ws.write(
        "bad/BUILD",
        r#"
genrule(name = "y", outs = ["y.txt"], cmd = "echo > $@")
genrule(name = "x", outs = ["x.txt"], cmd = select({":y": "echo > $@"}))
"#,
    );
    let run = ws.forge(&["build", "//bad:x"]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr.contains(
            "'//bad:y' is not a valid select() condition: it is a genrule rule, but a \
             condition must be a config_setting, a constraint_value or '//conditions:default'"
        ),
        "{}",
        run.stderr
    );
}

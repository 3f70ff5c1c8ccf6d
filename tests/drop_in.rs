//! Forge as a drop-in `bazel`: tests see Bazel 4's `PATH` (`.:` and the client's, or the
//! fixed one under `--incompatible_strict_action_env`, part of the test's key), forge started
//! through a link named `bazel` makes `bazel-*` links, `--symlink_prefix`, and a test that
//! runs a nested `bazel build` of its own workspace, as skylib's end-to-end tests do.

mod common;

use std::path::{Path, PathBuf};

use common::{Run, Workspace};

fn ok(run: Run) -> Run {
    assert_eq!(run.code, 0, "forge failed:\n{}", run.both());
    run
}

/// A directory holding `bazel`, a link to the forge binary under test.
fn bazel_link_dir(ws: &Workspace) -> PathBuf {
    let dir = ws.root().parent().unwrap().join("bin");
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("bazel");
    if !link.is_symlink() {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_forge"), &link).unwrap();
    }
    dir
}

/// Runs `program` (the `bazel` link) as `ws.forge` runs forge, with `PATH` set to `path`.
fn run_program(ws: &Workspace, program: &Path, args: &[&str], path: &str) -> Run {
    let out = std::process::Command::new(program)
        .current_dir(ws.root())
        .env("XDG_CACHE_HOME", ws.cache_dir())
        .env("HOME", ws.home_dir())
        .env("FORGE_SYSTEM_RC_DIR", ws.system_rc_dir())
        .env("PATH", path)
        .args(args)
        .output()
        .expect("runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn system_path() -> String {
    std::env::var("PATH").unwrap_or_default()
}

/// A test that writes the `PATH` it sees into its log.
fn path_workspace() -> Workspace {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "workspace(name = 'paths')\n");
    ws.write(
        "t/BUILD",
        "sh_test(name = 'path_test', srcs = ['path_test.sh'])\n",
    );
    ws.write("t/path_test.sh", "#!/bin/bash\necho \"PATH=[$PATH]\"\n");
    ws
}

fn seen_path(ws: &Workspace) -> String {
    let log = std::fs::read_to_string(ws.root().join("forge-testlogs/t/path_test/test.log"))
        .expect("test.log");
    let start = log.find("PATH=[").expect("PATH line") + "PATH=[".len();
    log[start..start + log[start..].find(']').unwrap()].to_owned()
}

fn test_with_path(ws: &Workspace, path: &str, flags: &[&str]) -> Run {
    let mut args = vec!["test", "--test_output=all"];
    args.extend_from_slice(flags);
    args.push("//t:path_test");
    ok(ws.forge_with("", &args, &[("PATH", path)]))
}

#[test]
fn a_test_sees_dot_and_the_clients_path_and_reruns_when_it_changes() {
    let ws = path_workspace();
    let first = format!("/opt/first-tools:{}", system_path());
    let run = test_with_path(&ws, &first, &[]);
    assert_eq!(seen_path(&ws), format!(".:{first}"), "{}", run.both());
    // The same PATH: the cached pass.
    let again = test_with_path(&ws, &first, &[]);
    assert!(again.stdout.contains("(cached) PASSED"), "{}", again.both());
    // Another PATH is another key: the test runs again and sees it.
    let second = format!("/opt/second-tools:{}", system_path());
    let rerun = test_with_path(&ws, &second, &[]);
    assert!(!rerun.stdout.contains("(cached)"), "{}", rerun.both());
    assert_eq!(seen_path(&ws), format!(".:{second}"));
}

#[test]
fn strict_action_env_gives_tests_the_fixed_path_in_every_form() {
    let ws = path_workspace();
    let client = format!("/opt/client-tools:{}", system_path());
    for form in [
        "--incompatible_strict_action_env",
        "--incompatible_strict_action_env=true",
        "--incompatible_strict_action_env=yes",
        "--incompatible_strict_action_env=1",
    ] {
        let run = test_with_path(&ws, &client, &[form]);
        assert_eq!(
            seen_path(&ws),
            "/usr/local/bin:/usr/bin:/bin",
            "{form}\n{}",
            run.both()
        );
    }
    for form in [
        "--noincompatible_strict_action_env",
        "--incompatible_strict_action_env=false",
        "--incompatible_strict_action_env=0",
    ] {
        test_with_path(&ws, &client, &[form]);
        assert_eq!(seen_path(&ws), format!(".:{client}"), "{form}");
    }
    // In an rc file, as CI configurations write it; build accepts it too.
    ws.write(".bazelrc", "build --incompatible_strict_action_env\n");
    test_with_path(&ws, &client, &[]);
    assert_eq!(seen_path(&ws), "/usr/local/bin:/usr/bin:/bin");
    ok(ws.forge(&["build", "//t:path_test"]));
    // An explicit --test_env=PATH wins over both.
    test_with_path(&ws, &client, &["--test_env=PATH=/only/this"]);
    assert_eq!(seen_path(&ws), "/only/this");
    std::fs::remove_file(ws.root().join(".bazelrc")).unwrap();
    test_with_path(&ws, &client, &["--test_env=PATH"]);
    assert_eq!(
        seen_path(&ws),
        client,
        "--test_env=PATH takes the client's value"
    );
}

/// The links in the workspace root whose names start with `prefix`.
fn links_with(ws: &Workspace, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(ws.root())
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_symlink())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    names
}

fn genrule_workspace() -> Workspace {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "workspace(name = 'links')\n");
    ws.write(
        "p/BUILD",
        "genrule(name = 'g', outs = ['g.txt'], cmd = 'echo hi > $@')\n",
    );
    ws
}

#[test]
fn started_as_bazel_forge_makes_bazel_links_and_cleans_them() {
    let ws = genrule_workspace();
    let bazel = bazel_link_dir(&ws).join("bazel");
    let run = run_program(&ws, &bazel, &["build", "//p:g"], &system_path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        links_with(&ws, "bazel-"),
        ["bazel-bin", "bazel-out", "bazel-testlogs", "bazel-ws"]
    );
    assert!(links_with(&ws, "forge-").is_empty());
    assert!(
        run.stderr
            .contains("Target //p:g up-to-date:\n  bazel-bin/p/g.txt\n"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(ws.root().join("bazel-bin/p/g.txt")).unwrap(),
        "hi\n"
    );
    // A second build finds nothing changed: the links are not sources.
    let again = run_program(&ws, &bazel, &["build", "//p:g"], &system_path());
    assert!(
        again.stderr.contains("0 actions executed"),
        "{}",
        again.stderr
    );
    // `//...` does not see the packages twice through bazel-ws.
    let query = run_program(&ws, &bazel, &["query", "//..."], &system_path());
    assert_eq!(query.stdout, "//p:g\n", "{}", query.stderr);
    let clean = run_program(&ws, &bazel, &["clean"], &system_path());
    assert_eq!(clean.code, 0, "{}", clean.stderr);
    assert!(links_with(&ws, "bazel-").is_empty());
    // Started as forge, the links are forge's.
    ok(ws.forge(&["build", "//p:g"]));
    assert_eq!(
        links_with(&ws, "forge-"),
        ["forge-bin", "forge-out", "forge-testlogs", "forge-ws"]
    );
    assert!(links_with(&ws, "bazel-").is_empty());
}

#[test]
fn symlink_prefix_names_the_links_and_slash_makes_none() {
    let ws = genrule_workspace();
    let run = ok(ws.forge(&["build", "--symlink_prefix=out-", "//p:g"]));
    assert_eq!(
        links_with(&ws, "out-"),
        ["out-bin", "out-out", "out-testlogs", "out-ws"]
    );
    assert!(links_with(&ws, "forge-").is_empty());
    assert!(run.stderr.contains("  out-bin/p/g.txt\n"), "{}", run.stderr);
    ok(ws.forge(&["clean", "--symlink_prefix=out-"]));
    assert!(links_with(&ws, "out-").is_empty());

    // A prefix with a slash puts the links in that directory, as Bazel does.
    ok(ws.forge(&["build", "--symlink_prefix=.links/", "//p:g"]));
    assert_eq!(
        std::fs::read_to_string(ws.root().join(".links/bin/p/g.txt")).unwrap(),
        "hi\n"
    );
    let query = ok(ws.forge(&["query", "//..."]));
    assert_eq!(query.stdout, "//p:g\n");

    // `/`: no links at all; the outputs are shown by their whole path.
    let ws = genrule_workspace();
    let none = ok(ws.forge(&["build", "--symlink_prefix=/", "//p:g"]));
    assert!(links_with(&ws, "").is_empty(), "{:?}", links_with(&ws, ""));
    let shown = none
        .stderr
        .lines()
        .find(|l| l.ends_with("/p/g.txt"))
        .unwrap_or_else(|| panic!("{}", none.stderr));
    // `ws.forge` shows the temporary directory as [TMP].
    let path = shown
        .trim()
        .replace("[TMP]", &ws.root().parent().unwrap().display().to_string());
    assert!(Path::new(&path).is_absolute(), "{shown}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "hi\n");
}

#[test]
fn without_home_the_output_base_is_under_the_users_home_from_the_password_database() {
    let ws = genrule_workspace();
    let mut cmd = ws.command(&["info", "output_base"]);
    cmd.env_remove("HOME").env_remove("XDG_CACHE_HOME");
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let home = String::from_utf8(
        std::process::Command::new("getent")
            .args(["passwd", &own_uid().to_string()])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let home = home
        .trim()
        .split(':')
        .nth(5)
        .expect("a home in passwd")
        .to_owned();
    let base = String::from_utf8(out.stdout).unwrap();
    assert!(
        base.starts_with(&format!("{home}/.cache/forge/")),
        "{base} is not under {home}/.cache/forge"
    );
}

/// The uid this test runs as.
fn own_uid() -> u32 {
    std::fs::metadata("/proc/self").map_or(0, |m| std::os::unix::fs::MetadataExt::uid(&m))
}

/// A workspace whose local test runs `bazel build` of a workspace it writes in its
/// `TEST_TMPDIR`, and checks what that build printed: the pattern of skylib's
/// `common_settings_e2e_test` (flags set on the nested command line, one that is a setting
/// and not a flag, a value the rule refuses).
fn nested_workspace() -> Workspace {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "workspace(name = 'outer')\n");
    ws.write(
        "e2e/BUILD",
        "sh_test(\n    name = 'nested_test',\n    srcs = ['nested_test.sh'],\n    \
         data = ['settings.bzl'],\n    tags = ['local'],\n)\n",
    );
    ws.write(
        "e2e/settings.bzl",
        r#"SettingInfo = provider(fields = ["value"])

def _int_impl(ctx):
    return SettingInfo(value = ctx.build_setting_value)

int_flag = rule(implementation = _int_impl, build_setting = config.int(flag = True))
int_setting = rule(implementation = _int_impl, build_setting = config.int())

def _string_impl(ctx):
    value = ctx.build_setting_value
    if ctx.attr.values and value not in ctx.attr.values:
        fail("Error setting " + str(ctx.label) + ": invalid value '" + value +
             "'. Allowed values are " + str(ctx.attr.values))
    return SettingInfo(value = value)

string_flag = rule(
    implementation = _string_impl,
    build_setting = config.string(flag = True),
    attrs = {"values": attr.string_list()},
)

def _show_impl(ctx):
    print(struct(height = ctx.attr.height[SettingInfo].value,
                 name = ctx.attr.namer[SettingInfo].value))

show = rule(implementation = _show_impl, attrs = {"height": attr.label(), "namer": attr.label()})
"#,
    );
    ws.write(
        "e2e/nested_test.sh",
        r#"#!/bin/bash
set -u
settings="$(pwd)/e2e/settings.bzl"
cd "$TEST_TMPDIR"
mkdir -p inner/rules inner/pkg
cd inner
echo "workspace(name = 'inner')" > WORKSPACE
echo 'exports_files(["settings.bzl"])' > rules/BUILD
ln -sf "$settings" rules/settings.bzl
cat > pkg/BUILD <<'EOF'
load("//rules:settings.bzl", "int_flag", "int_setting", "string_flag", "show")
int_flag(name = "height-flag", build_setting_default = 1)
int_setting(name = "height-setting", build_setting_default = 1)
string_flag(name = "namer-flag", build_setting_default = "a", values = ["a", "b"])
show(name = "thing", height = ":height-flag", namer = ":namer-flag")
EOF
failures=0
expect() {
  grep -q -- "$1" log || { echo "missing in the nested log: $1"; cat log; failures=1; }
}
bazel build pkg:thing --//pkg:height-flag=8366 --//pkg:namer-flag=b > log 2>&1 \
  || { echo "the nested build failed"; cat log; exit 1; }
expect 'height = 8366'
expect 'name = "b"'
[[ -L bazel-bin ]] || { echo "no bazel-bin link"; failures=1; }
bazel build pkg:thing --//pkg:height-setting=8366 > log 2>&1 && { echo "a setting was set"; exit 1; }
expect 'Unrecognized option: //pkg:height-setting'
bazel build pkg:thing --//pkg:namer-flag=me > log 2>&1 && { echo "a refused value built"; exit 1; }
expect "Error setting //pkg:namer-flag: invalid value 'me'. Allowed values are"
exit $failures
"#,
    );
    ws
}

#[test]
fn a_local_test_runs_a_nested_bazel_build_through_a_bazel_link_on_path() {
    let ws = nested_workspace();
    let path = format!("{}:{}", bazel_link_dir(&ws).display(), system_path());
    // The nested forge has no HOME (Bazel's test environment sets none); its output bases
    // go where this workspace keeps its own, so the test leaves nothing behind.
    let cache = format!("--test_env=XDG_CACHE_HOME={}", ws.cache_dir().display());
    let run = ws.forge_with(
        "",
        &["test", "--test_output=errors", &cache, "//e2e:nested_test"],
        &[("PATH", &path)],
    );
    assert_eq!(run.code, 0, "{}", run.both());
    assert!(run.stdout.contains("//e2e:nested_test"), "{}", run.stdout);
    assert!(run.stdout.contains("PASSED"), "{}", run.stdout);
    // Under the strict PATH there is no bazel to run.
    let strict = ws.forge_with(
        "",
        &[
            "test",
            "--test_output=errors",
            "--incompatible_strict_action_env",
            &cache,
            "//e2e:nested_test",
        ],
        &[("PATH", &path)],
    );
    assert_eq!(strict.code, 3, "{}", strict.both());
    assert!(
        strict.stderr.contains("bazel: command not found"),
        "{}",
        strict.both()
    );
}

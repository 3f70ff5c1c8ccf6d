//! Hardening of analysis: labels that name nothing are errors, and Starlark parameters are
//! honoured or refused, never dropped. Each test runs the real forge on
//! `tests/fixtures/hardening_analysis`.

mod common;

use common::{Run, Workspace};

fn ws() -> Workspace {
    Workspace::fixture("hardening_analysis")
}

fn ok(run: Run) -> Run {
    assert_eq!(run.code, 0, "{}", run.both());
    run
}

/// The ERROR lines and the FAILED verdict of a run, for snapshots that should not depend on
/// timing lines.
fn errors(run: &Run) -> String {
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("ERROR:") || l.starts_with("FAILED:"))
        .collect();
    format!("exit: {}\n{}\n", run.code, lines.join("\n"))
}

#[test]
fn a_label_that_names_no_rule_and_no_file_is_a_missing_input() {
    let ws = ws();
    insta::assert_snapshot!(
        "missing_input",
        errors(&ws.forge(&["build", "//missing:fg"]))
    );
    // With --keep_going every referrer is reported, the typo with its close rule name, and
    // the rest still builds.
    let run = ws.forge(&[
        "build",
        "--keep_going",
        "//missing:bin",
        "//missing:lib",
        "//missing:ext_missing",
        "//missing:good",
        "//missing:builds",
    ]);
    insta::assert_snapshot!("missing_input_keep_going", errors(&run));
    let copy = std::fs::read_to_string(ws.root().join("forge-bin/missing/copy.txt")).unwrap();
    assert_eq!(copy, "a\n");
    // A missing file named on the command line is reported too.
    insta::assert_snapshot!(
        "missing_input_top_level",
        errors(&ws.forge(&["build", "//missing:alsonot"]))
    );
    // Query does not look at files, as in Bazel.
    let run = ok(ws.forge(&["query", "deps(//missing:fg)"]));
    assert_eq!(run.stdout, "//missing:alsonot\n//missing:fg\n");
}

#[test]
fn globbed_subdirectory_exported_and_external_files_are_found() {
    let ws = ws();
    let run = ok(ws.forge(&["build", "//missing:good"]));
    assert!(run.stderr.contains("missing/sub/b.txt"), "{}", run.stderr);
    // A file deleted after a successful build is missed on the next one too (the reused
    // plan notices the directory changed).
    std::fs::remove_file(ws.root().join("missing/sub/b.txt")).unwrap();
    let run = ws.forge(&["build", "//missing:good"]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr
            .contains("//missing:good: missing input file '//missing:sub/b.txt'"),
        "{}",
        run.stderr
    );
}

fn build_with_ws(ws: &Workspace, target: &str) -> Run {
    let env = format!("--action_env=WS={}", ws.root().display());
    ws.forge(&["build", &env, target])
}

#[test]
fn execution_requirements_are_merged_like_tags() {
    let ws = ws();
    // The sandbox hides the workspace's absolute path...
    let run = build_with_ws(&ws, "//reqs:sandboxed");
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr.contains("No such file or directory"),
        "{}",
        run.stderr
    );
    // ...which an action with no-sandbox (or local) in execution_requirements sees.
    ok(build_with_ws(&ws, "//reqs:unsandboxed"));
    let out = std::fs::read_to_string(ws.root().join("forge-bin/reqs/unsandboxed.out")).unwrap();
    assert_eq!(out, "from the host\n");
    let run = ok(build_with_ws(&ws, "//reqs:unsandboxed_run"));
    assert!(
        run.stderr.contains("0 sandboxed, 1 local"),
        "{}",
        run.stderr
    );
    // no-cache: run again on every build; without it, once.
    for target in ["//reqs:uncached", "//reqs:cached"] {
        ok(ws.forge(&["build", target]));
    }
    let again = ok(ws.forge(&["build", "//reqs:uncached"]));
    assert!(
        again.stderr.contains("INFO: 1 action executed"),
        "{}",
        again.stderr
    );
    let cached = ok(ws.forge(&["build", "//reqs:cached"]));
    assert!(
        cached.stderr.contains("INFO: 0 actions executed"),
        "{}",
        cached.stderr
    );
    // A key forge does not act on is refused, named.
    insta::assert_snapshot!(
        "unknown_execution_requirement",
        ws.forge(&["build", "//reqs:unknown"]).both()
    );
}

/// The first `error:` line of a run (`Error in fail:` for a `fail()`, as Bazel words it):
/// the message of a Starlark error without its snippet.
fn error_line(run: &Run) -> String {
    assert_eq!(run.code, 1, "{}", run.both());
    run.stderr
        .lines()
        .find(|l| l.starts_with("error: ") || l.starts_with("Error in fail: "))
        .unwrap_or_else(|| panic!("no error line in:\n{}", run.stderr))
        .to_owned()
}

#[test]
fn parameters_forge_cannot_honour_are_refused_by_name() {
    let ws = ws();
    insta::assert_snapshot!(
        "aspects_refused",
        ws.forge(&["build", "//aspects:x"]).both()
    );
    insta::assert_snapshot!("cfg_refused", error_line(&ws.forge(&["build", "//cfg:x"])));
    let refused: Vec<String> = ["computed", "manifests", "toolchain"]
        .iter()
        .map(|t| error_line(&ws.forge(&["build", &format!("//refuse:{t}")])))
        .collect();
    insta::assert_snapshot!("refused_parameters", refused.join("\n"));
}

/// A .tar.gz holding `lib-1/BUILD` and `lib-1/value.txt`.
fn lib_archive() -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, content) in [
        ("lib-1/BUILD", "exports_files(['value.txt'])\n"),
        ("lib-1/value.txt", "forty-two\n"),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, path, content.as_bytes())
            .unwrap();
    }
    let data = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &data).unwrap();
    gz.finish().unwrap()
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A workspace whose `@lib` is the archive above, pinned by `pin` (e.g. `integrity = "..."`).
fn archive_workspace(pin: &str) -> Workspace {
    let ws = Workspace::empty();
    let archive = ws.root().parent().unwrap().join("lib-1.tar.gz");
    std::fs::write(&archive, lib_archive()).unwrap();
    ws.write(
        "WORKSPACE",
        &format!(
            "http_archive(name = \"lib\", url = \"file://{}\", {pin}, strip_prefix = \"lib-1\")\n",
            archive.display()
        ),
    );
    ws.write(
        "BUILD",
        "genrule(name = 'v', srcs = ['@lib//:value.txt'], outs = ['v.txt'], cmd = 'cp $< $@')\n",
    );
    ws
}

#[test]
fn http_archive_integrity_is_verified_like_sha256() {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(lib_archive());
    let ws = archive_workspace(&format!("integrity = \"sha256-{}\"", base64(&digest)));
    ok(ws.forge(&["build", "//:v"]));
    let out = std::fs::read_to_string(ws.root().join("forge-bin/v.txt")).unwrap();
    assert_eq!(out, "forty-two\n");

    // A wrong digest fails the fetch.
    let wrong = sha2::Sha256::digest(b"something else");
    let ws = archive_workspace(&format!("integrity = \"sha256-{}\"", base64(&wrong)));
    let run = ws.forge(&["build", "//:v"]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(run.stderr.contains("sha256 mismatch"), "{}", run.stderr);

    // Other algorithms are refused, named.
    let ws = archive_workspace("integrity = \"sha384-AAAA\"");
    let run = ws.forge(&["build", "//:v"]);
    insta::assert_snapshot!("integrity_sha384", error_line(&run));
    let ws = archive_workspace(&format!(
        "integrity = \"sha256-{}\", workspace_file_content = \"\"",
        base64(&digest)
    ));
    let run = ws.forge(&["build", "//:v"]);
    assert!(
        error_line(&run).contains("'workspace_file_content' is not supported"),
        "{}",
        run.stderr
    );
}

#[test]
fn provider_init_computes_the_fields_and_the_raw_constructor_skips_it() {
    let ws = ws();
    ok(ws.forge(&["build", "//init:show"]));
    let out = std::fs::read_to_string(ws.root().join("forge-bin/init/show.txt")).unwrap();
    assert_eq!(out, "True one 1 2 3\nTrue raw 7 8 None\n");
    // init can refuse its arguments.
    let run = ws.forge(&["build", "//init:negative"]);
    assert!(
        error_line(&run).contains("x must not be negative"),
        "{}",
        run.stderr
    );
}

#[test]
fn runfiles_symlinks_go_under_the_workspace_and_root_symlinks_under_the_root() {
    let ws = ws();
    let run = ok(ws.forge(&["run", "//links:show"]));
    assert_eq!(run.stdout, "linked data\nlinked data\nlinked data\n");
    let manifest =
        std::fs::read_to_string(ws.root().join("forge-bin/links/show.runfiles_manifest")).unwrap();
    let paths: Vec<&str> = manifest
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "again/renamed/data.txt",
            "hard/links/show",
            "hard/links/show.sh",
            "hard/renamed/data.txt",
            "top/root.txt",
        ]
    );
}

#[test]
fn expand_directories_false_passes_the_path_and_true_passes_the_files() {
    let ws = ws();
    ok(ws.forge(&["build", "//dirs:path"]));
    let out = std::fs::read_to_string(ws.root().join("forge-bin/dirs/path.txt")).unwrap();
    let dir = format!("{}/dirs/path_dir", common::bin_dir());
    assert_eq!(out, format!("{dir} --dirs {dir}\nx\n"));
    // The directory's files, sorted, each formatted, as the action runs.
    ok(ws.forge(&["build", "//dirs:expanded"]));
    let out = std::fs::read_to_string(ws.root().join("forge-bin/dirs/expanded.txt")).unwrap();
    let dir = format!("{}/dirs/expanded_dir", common::bin_dir());
    assert_eq!(
        out,
        format!(
            "-i --in={dir}/sub/y.txt -i --in={dir}/x.txt --all dirs/src.txt,{dir}/sub/y.txt,{dir}/x.txt\n"
        )
    );
    // What forge cannot do at execution is refused by name.
    let run = ws.forge(&["build", "//dirs:mapped"]);
    assert!(
        error_line(&run).contains("forge cannot call map_each on the files of directory"),
        "{}",
        run.both()
    );
    let run = ws.forge(&["build", "//dirs:spilled"]);
    assert!(
        error_line(&run).contains(
            "forge does not support expanding a directory into its files inside a parameter file"
        ),
        "{}",
        run.both()
    );
}

#[test]
fn attribute_providers_are_required_of_rule_dependencies() {
    let ws = ws();
    let run = ws.forge(&["build", "//init:bad"]);
    insta::assert_snapshot!("missing_providers", errors(&run));
}

#[test]
fn rule_provides_is_checked_and_an_unresolved_toolchain_is_named() {
    let ws = ws();
    ok(ws.forge(&["build", "//provides:keeps"]));
    insta::assert_snapshot!(
        "provides_broken",
        errors(&ws.forge(&["build", "//provides:breaks"]))
    );
    insta::assert_snapshot!(
        "toolchain_unresolved",
        errors(&ws.forge(&["build", "//toolchains:x"]))
    );
}

#[test]
fn package_default_testonly_and_deprecation_apply_to_its_rules() {
    let ws = ws();
    let run = ok(ws.forge(&["query", "attr(testonly, 1, //pkgdefaults:all)"]));
    assert_eq!(run.stdout, "//pkgdefaults:inherits\n");
    let run = ok(ws.forge(&[
        "query",
        "attr(deprecation, 'use //other', //pkgdefaults:all)",
    ]));
    assert_eq!(
        run.stdout,
        "//pkgdefaults:inherits\n//pkgdefaults:overrides\n"
    );
}

#[test]
fn filegroup_output_group_and_genrule_local_are_honoured() {
    let ws = ws();
    let run = ok(ws.forge(&["build", "//prelude_attrs:extras"]));
    assert!(
        run.stderr.contains("forge-bin/prelude_attrs/g.extra") && !run.stderr.contains("g.main"),
        "{}",
        run.stderr
    );
    let run = ok(build_with_ws(&ws, "//prelude_attrs:local"));
    assert!(
        run.stderr.contains("0 sandboxed, 1 local"),
        "{}",
        run.stderr
    );
}

/// A test rule that writes `ctx.outputs.executable` without `is_executable` (as
/// bazelbuild/examples' `test_rule` does) gets an executable, as in Bazel; one without a
/// `#!` line runs under bash, as Bazel's test runner runs it.
#[test]
fn the_rules_executable_is_executable_even_written_without_is_executable() {
    let ws = ws();
    for target in ["//exe:written_test", "//exe:bare_script_test"] {
        let run = ws.forge(&["test", target]);
        assert_eq!(run.code, 0, "{target}: {}", run.both());
        assert!(run.stdout.contains("PASSED"), "{}", run.both());
    }
}

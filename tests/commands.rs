//! Bazel's smaller commands run on the real binary: `shutdown`, `info` with Bazel's keys,
//! `version`, `help` and its topics, `canonicalize-flags`.

mod common;

use common::Workspace;

#[test]
fn shutdown_exits_0_and_takes_bazels_heap_flag() {
    let ws = Workspace::fixture("graph");
    for args in [
        &["shutdown"][..],
        &["shutdown", "--iff_heap_size_greater_than=1024"][..],
        &["shutdown", "--iff_heap_size_greater_than", "10"][..],
    ] {
        let run = ws.forge(args);
        assert_eq!(
            (run.code, run.stdout.as_str()),
            (0, ""),
            "{args:?}: {}",
            run.stderr
        );
    }
    let bad = ws.forge(&["shutdown", "--iff_heap_size_greater_than=big"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}

#[test]
fn info_answers_bazels_keys_under_both_names_and_several_at_once() {
    let ws = Workspace::fixture("graph");
    let all = ws.forge(&["info"]);
    assert_eq!(all.code, 0, "{}", all.stderr);
    let value_of = |key: &str| {
        all.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}: ")))
            .unwrap_or_else(|| panic!("{key} in:\n{}", all.stdout))
            .to_owned()
    };
    for key in [
        "workspace",
        "install_base",
        "output_base",
        "execution_root",
        "output_path",
        "forge-bin",
        "forge-genfiles",
        "forge-testlogs",
        "repository_cache",
        "package_path",
        "release",
    ] {
        let one = ws.forge(&["info", key]);
        assert_eq!(one.code, 0, "{key}: {}", one.stderr);
        assert_eq!(one.stdout, format!("{}\n", value_of(key)), "{key}");
    }
    for (bazel, forge) in [
        ("bazel-bin", "forge-bin"),
        ("bazel-genfiles", "forge-genfiles"),
        ("bazel-testlogs", "forge-testlogs"),
    ] {
        assert_eq!(
            ws.forge(&["info", bazel]).stdout,
            format!("{}\n", value_of(forge))
        );
    }
    assert!(value_of("forge-bin").starts_with(&value_of("execution_root")));
    assert!(value_of("execution_root").starts_with(&value_of("output_base")));
    assert_eq!(value_of("package_path"), "%workspace%");

    let several = ws.forge(&["info", "bazel-bin", "output_base", "workspace"]);
    assert_eq!(several.code, 0, "{}", several.stderr);
    assert_eq!(
        several.stdout,
        format!(
            "bazel-bin: {}\noutput_base: {}\nworkspace: {}\n",
            value_of("forge-bin"),
            value_of("output_base"),
            value_of("workspace")
        )
    );

    let cache = ws.forge(&["info", "repository_cache", "--repository_cache=/tmp/repos"]);
    assert_eq!(cache.stdout, "/tmp/repos\n", "{}", cache.stderr);
}

#[test]
fn info_names_an_unknown_key_and_refuses_keys_of_bazels_server() {
    let ws = Workspace::fixture("graph");
    let unknown = ws.forge(&["info", "output_base", "no_such_key"]);
    assert_eq!(
        (
            unknown.code,
            unknown.stdout.as_str(),
            unknown.stderr.as_str()
        ),
        (2, "", "ERROR: unknown key: 'no_such_key'\n")
    );
    for key in ["server_pid", "used-heap-size", "java-home", "command_log"] {
        let run = ws.forge(&["info", key]);
        assert_eq!((run.code, run.stdout.as_str()), (2, ""), "{key}");
        assert!(
            run.stderr
                .starts_with(&format!("ERROR: forge has no value for info key '{key}': ")),
            "{key}: {}",
            run.stderr
        );
    }
    let help = ws.forge(&["help", "info"]);
    assert!(help.stdout.contains("server_pid"), "{}", help.stdout);
}

#[test]
fn version_prints_the_build_label_and_the_commit_forge_was_built_from() {
    let ws = Workspace::fixture("graph");
    let run = ws.forge(&["version"]);
    let commit = env!("FORGE_GIT_COMMIT");
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (
            0,
            format!("Build label: [VERSION]\nBuild target: forge\nBuild commit: {commit}\n")
                .as_str()
        ),
        "{}",
        run.stderr
    );
    // Built from this repository's checkout, the commit is a real one.
    if std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".git")
        .exists()
    {
        assert!(
            commit.len() == 40 && commit.chars().all(|c| c.is_ascii_hexdigit()),
            "{commit}"
        );
    }
    let gnu = ws.forge(&["version", "--gnu_format"]);
    assert_eq!((gnu.code, gnu.stdout.as_str()), (0, "forge [VERSION]\n"));
}

#[test]
fn help_prints_the_commands_one_command_and_the_target_syntax_topic() {
    let ws = Workspace::fixture("graph");
    let all = ws.forge(&["help"]);
    assert_eq!(all.code, 0, "{}", all.stderr);
    for command in ["build", "shutdown", "info", "help", "version"] {
        assert!(all.stdout.contains(command), "{command}:\n{}", all.stdout);
    }
    let build = ws.forge(&["help", "build"]);
    assert_eq!(build.code, 0, "{}", build.stderr);
    assert!(
        build.stdout.contains("forge build") && build.stdout.contains("--keep_going"),
        "{}",
        build.stdout
    );
    let syntax = ws.forge(&["help", "target-syntax"]);
    assert_eq!(syntax.code, 0, "{}", syntax.stderr);
    for pattern in [
        "//foo/bar:wiz",
        "//foo/bar:all",
        "//foo/...:*",
        "-//foo/bar/...",
        "@repo//",
    ] {
        assert!(
            syntax.stdout.contains(pattern),
            "{pattern}:\n{}",
            syntax.stdout
        );
    }
    let unknown = ws.forge(&["help", "frobnicate"]);
    assert_eq!(
        (
            unknown.code,
            unknown.stdout.as_str(),
            unknown.stderr.as_str()
        ),
        (
            2,
            "",
            "ERROR: 'frobnicate' is neither a command nor a help topic\n"
        )
    );
}

#[test]
fn canonicalize_flags_prints_each_flag_once_in_its_canonical_form() {
    let ws = Workspace::fixture("graph");
    let run = ws.forge(&[
        "canonicalize-flags",
        "--",
        "-k",
        "--jobs",
        "4",
        "--define=a=1",
        "--jobs=8",
        "--define",
        "b=2",
        "--verbose-failures",
        "--keep_going=no",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "--define=a=1\n--define=b=2\n--jobs=8\n--keep_going=0\n--verbose_failures=1\n"
    );
    let declared_no = ws.forge(&["canonicalize-flags", "--", "--nokeep_going"]);
    assert_eq!(
        declared_no.stdout, "--keep_going=0\n",
        "{}",
        declared_no.stderr
    );
    let test = ws.forge(&[
        "canonicalize-flags",
        "--for_command=test",
        "--",
        "--test_arg=x",
        "--test_arg=y",
    ]);
    assert_eq!(
        test.stdout, "--test_arg=x\n--test_arg=y\n",
        "{}",
        test.stderr
    );

    for (args, error) in [
        (
            &["canonicalize-flags", "--", "-k", "//app:app"][..],
            "ERROR: canonicalize-flags takes flags only, not '//app:app'\n",
        ),
        (
            &["canonicalize-flags", "--", "--no_such_flag"][..],
            "ERROR: unexpected argument '--no_such_flag' found\n",
        ),
        (
            &["canonicalize-flags", "--", "--config=nowhere"][..],
            "ERROR: Config value 'nowhere' is not defined in any .rc file\n",
        ),
    ] {
        let run = ws.forge(args);
        assert_eq!(
            (run.code, run.stdout.as_str(), run.stderr.as_str()),
            (2, "", error),
            "{args:?}"
        );
    }
    // A --config is expanded from the rc files for the command, as Bazel prints it.
    ws.write(
        ".bazelrc",
        "build:fast -c opt --jobs=3\ntest:fast --test_arg=t\n",
    );
    let fast = ws.forge(&["canonicalize-flags", "--", "--config=fast", "-k"]);
    assert_eq!(
        fast.stdout, "--compilation_mode=opt\n--jobs=3\n--keep_going=1\n",
        "{}",
        fast.stderr
    );
    let fast = ws.forge(&[
        "canonicalize-flags",
        "--for_command=test",
        "--",
        "--config=fast",
    ]);
    assert_eq!(
        fast.stdout, "--compilation_mode=opt\n--jobs=3\n--test_arg=t\n",
        "{}",
        fast.stderr
    );
    let bad_command = ws.forge(&["canonicalize-flags", "--for_command=nope", "--", "-k"]);
    assert_eq!(bad_command.code, 2);
    assert!(
        bad_command
            .stderr
            .starts_with("ERROR: Not a valid command: 'nope' (should be one of build, "),
        "{}",
        bad_command.stderr
    );
}

/// What bash's completion offers for `words` (the last one being completed) with `script`.
fn bash_completes(script: &std::path::Path, words: &[&str]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let current = words.last().unwrap();
    let previous = words[words.len() - 2];
    let program = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={}; _forge forge '{current}' '{previous}'; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words.len() - 1
    );
    let out = std::process::Command::new("bash")
        .args(["--norc", "-c", &program])
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn completion_scripts_complete_commands_and_flags_in_bash_and_zsh() {
    let ws = Workspace::fixture("graph");
    let bash = ws.forge(&["completion", "bash"]);
    assert_eq!(bash.code, 0, "{}", bash.stderr);
    let script = ws.root().join("forge.bash");
    std::fs::write(&script, &bash.stdout).unwrap();
    assert_eq!(bash_completes(&script, &["forge", "inf"]), "info\n");
    assert_eq!(
        bash_completes(&script, &["forge", "canon"]),
        "canonicalize-flags\n"
    );
    assert_eq!(
        bash_completes(&script, &["forge", "build", "--keep_g"]),
        "--keep_going\n"
    );

    let zsh = ws.forge(&["completion", "zsh"]);
    assert_eq!(zsh.code, 0, "{}", zsh.stderr);
    assert!(zsh.stdout.starts_with("#compdef forge\n"), "{}", zsh.stdout);
    for word in ["'shutdown:", "'canonicalize-flags:", "--keep_going"] {
        assert!(zsh.stdout.contains(word), "{word}");
    }

    let unknown = ws.forge(&["completion", "tcsh"]);
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
}

#[test]
fn help_and_completion_end_quietly_when_the_reader_has_gone() {
    let ws = Workspace::fixture("graph");
    for args in [&["help", "target-syntax"][..], &["completion", "bash"][..]] {
        // A pipe whose reading end is already closed, as `forge help | head -1` leaves it.
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = ws
            .command(args)
            .stdout(writer)
            .output()
            .expect("forge runs");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The long flags (`--name`) at the start of the option lines of a `--help` text.
fn help_flags(help: &str) -> std::collections::BTreeSet<String> {
    help.lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('-'))
        .flat_map(|l| l.split([',', ' ', '[', '=']))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(str::to_owned)
        .collect()
}

/// The sections of a roff page by their `.SH` title (quotes dropped).
fn man_sections(page: &str) -> Vec<(String, String)> {
    let mut sections: Vec<(String, String)> = Vec::new();
    for line in page.lines() {
        if let Some(title) = line.strip_prefix(".SH ") {
            sections.push((title.trim_matches('"').to_owned(), String::new()));
        } else if let Some((_, body)) = sections.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    sections
}

/// The long flags of the `.TP` entries of a roff section, unescaped (`\-` is `-`, fonts
/// dropped).
fn man_flags(section: &str) -> std::collections::BTreeSet<String> {
    let lines: Vec<&str> = section.lines().collect();
    lines
        .windows(2)
        .filter(|pair| pair[0] == ".TP")
        .map(|pair| {
            pair[1]
                .replace("\\-", "-")
                .replace("\\fB", "")
                .replace("\\fR", "")
        })
        .flat_map(|entry| {
            entry
                .split([',', ' ', '[', '='])
                .filter(|w| w.starts_with("--") && w.len() > 2)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_man_page_has_every_command_and_each_of_its_flags() {
    let ws = Workspace::fixture("graph");
    let man = ws.forge(&["help", "--man"]);
    assert_eq!(man.code, 0, "{}", man.stderr);
    let page = man.stdout;
    assert!(
        page.contains(".TH FORGE 1 "),
        "{}",
        &page[..200.min(page.len())]
    );
    let sections = man_sections(&page);
    let section = |title: &str| -> &str {
        sections
            .iter()
            .find(|(t, _)| t == title)
            .map(|(_, body)| body.as_str())
            .unwrap_or_else(|| panic!("no section {title}"))
    };
    for title in [
        "NAME",
        "SYNOPSIS",
        "STARTUP OPTIONS",
        "COMMANDS",
        "TARGET PATTERNS",
    ] {
        section(title);
    }
    // The commands `forge help` lists, each in COMMANDS and with its own section holding
    // every flag its `forge help COMMAND` shows.
    let listing = ws.forge(&["help"]).stdout;
    let commands: Vec<&str> = listing
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(commands.len() >= 16, "{commands:?}");
    for command in &commands {
        assert!(
            section("COMMANDS").contains(&format!("\\fB{}\\fR", command.replace('-', "\\-"))),
            "{command} not in COMMANDS"
        );
        let title = format!("FORGE {}", command.to_uppercase());
        let body = section(&title);
        let help = ws.forge(&["help", command]);
        assert_eq!(help.code, 0, "{}", help.stderr);
        let wanted = help_flags(&help.stdout);
        let documented = man_flags(body);
        let missing: Vec<_> = wanted.difference(&documented).collect();
        assert!(missing.is_empty(), "{title} lacks {missing:?}");
    }
    // Spot checks that the parsing above sees real flags.
    assert!(man_flags(section("FORGE BUILD")).contains("--keep_going"));
    assert!(man_flags(section("FORGE TEST")).contains("--test_env"));
    assert!(man_flags(section("STARTUP OPTIONS")).contains("--output_base"));
    // groff reads it without a warning, where it is installed.
    if let Ok(out) = std::process::Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(page.as_bytes())?;
            child.wait_with_output()
        })
    {
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    }
}

//! `forge aquery` on the actions fixture: the text, summary and jsonproto forms, the targets
//! an expression names, the inputs()/outputs()/mnemonic() filters, and that nothing runs.

mod common;

use std::collections::HashMap;

use common::Workspace;
use serde_json::Value;

fn aquery(ws: &Workspace, args: &[&str]) -> String {
    let mut all = vec!["aquery"];
    all.extend_from_slice(args);
    let run = ws.forge(&all);
    assert_eq!(run.code, 0, "forge {all:?} failed:\n{}", run.stderr);
    run.stdout
}

/// The `Target:` line of each action block, in order.
fn targets(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.strip_prefix("  Target: "))
        .collect()
}

#[test]
fn text_shows_each_action_of_the_named_target() {
    let ws = Workspace::fixture("actions");
    let text = aquery(&ws, &["//pkg:hi", "--action_env=EXTRA=1"]);
    let blocks: Vec<&str> = text.split("\n\n").filter(|b| !b.is_empty()).collect();
    assert_eq!(blocks.len(), 2, "{text}");
    let write = blocks[0];
    assert!(
        write.starts_with("action 'Writing file pkg/hi.sh'\n"),
        "{write}"
    );
    assert!(write.contains("  Mnemonic: FileWrite\n"), "{write}");
    assert!(
        !write.contains("Command Line"),
        "a write runs no command: {write}"
    );

    let run = blocks[1];
    let lines: Vec<&str> = run.lines().collect();
    assert_eq!(lines[0], "action 'Greeting world'");
    assert_eq!(lines[1], "  Mnemonic: Greet");
    assert_eq!(lines[2], "  Target: //pkg:hi");
    assert!(lines[3].starts_with("  Configuration: ") && lines[3].ends_with("-fastbuild"));
    assert!(lines[4].starts_with("  ActionKey: "), "{run}");
    let config = lines[3].trim_start_matches("  Configuration: ");
    assert_eq!(
        lines[5],
        format!("  Inputs: [forge-out/{config}/bin/pkg/hi.sh]")
    );
    assert_eq!(
        lines[6],
        format!("  Outputs: [forge-out/{config}/bin/pkg/hi.txt]")
    );
    assert_eq!(
        lines[7],
        "  Environment: [EXTRA=1, GREETING=hello, LANG=C, PATH=/usr/local/bin:/usr/bin:/bin, TZ=UTC]"
    );
    assert_eq!(
        lines[8..].join("\n"),
        format!(
            "  Command Line: (exec forge-out/{config}/bin/pkg/hi.sh \\\n    world \\\n    forge-out/{config}/bin/pkg/hi.txt)"
        )
    );
    // aquery plans; it runs nothing.
    assert!(!ws.root().join("forge-bin").exists());
}

#[test]
fn a_shell_command_is_quoted_as_a_shell_reads_it() {
    let ws = Workspace::fixture("actions");
    let text = aquery(&ws, &["//pkg:gen"]);
    assert!(
        text.contains(
            "  Command Line: (exec /bin/bash \\\n    -c \\\n    'cat pkg/in.txt > forge-out/"
        ),
        "{text}"
    );
    assert!(text.contains("  Inputs: [pkg/in.txt]\n"), "{text}");
}

#[test]
fn the_expression_decides_the_targets_and_filters_the_actions() {
    let ws = Workspace::fixture("actions");
    assert_eq!(targets(&aquery(&ws, &["//pkg:upper"])), ["//pkg:upper"]);
    assert_eq!(
        targets(&aquery(&ws, &["deps(//pkg:upper)"])),
        ["//pkg:gen", "//pkg:upper"]
    );
    assert_eq!(
        targets(&aquery(&ws, &["mnemonic('Gen.*', //pkg:all)"])),
        ["//pkg:gen", "//pkg:upper"]
    );
    // The pattern must match the whole mnemonic, as Bazel's.
    assert_eq!(
        targets(&aquery(&ws, &["mnemonic('Gen', //pkg:all)"])),
        Vec::<&str>::new()
    );
    assert_eq!(
        targets(&aquery(&ws, &["inputs('.*\\.txt', //pkg:all)"])),
        ["//pkg:gen"]
    );
    assert_eq!(
        targets(&aquery(&ws, &["outputs('.*/hi\\..*', //pkg:all)"])),
        ["//pkg:hi", "//pkg:hi"]
    );
    assert_eq!(
        targets(&aquery(
            &ws,
            &["mnemonic(Greet, outputs('.*/hi\\..*', //pkg:all))"]
        )),
        ["//pkg:hi"]
    );
}

#[test]
fn summary_counts_actions_by_mnemonic_and_configuration() {
    let ws = Workspace::fixture("actions");
    let text = aquery(&ws, &["//pkg:all", "--output=summary"]);
    let config = text
        .lines()
        .skip_while(|l| *l != "Configurations:")
        .nth(1)
        .expect("a configuration line");
    assert!(config.ends_with("-fastbuild: 4"), "{text}");
    assert!(
        text.starts_with(
            "4 total actions.\n\nMnemonics:\n  FileWrite: 1\n  Genrule: 2\n  Greet: 1\n\nConfigurations:\n"
        ),
        "{text}"
    );
}

#[test]
fn jsonproto_is_the_action_graph_container_as_json() {
    let ws = Workspace::fixture("actions");
    let text = aquery(&ws, &["//pkg:hi + //pkg:gen", "--output=jsonproto"]);
    let graph: Value = serde_json::from_str(&text).expect("JSON");
    let table = |name: &str| -> HashMap<u64, Value> {
        graph[name]
            .as_array()
            .unwrap_or_else(|| panic!("{name} in {text}"))
            .iter()
            .map(|row| (row["id"].as_u64().expect("id"), row.clone()))
            .collect()
    };
    let fragments = table("pathFragments");
    let artifacts = table("artifacts");
    let targets = table("targets");
    let classes = table("ruleClasses");
    let dep_sets = table("depSetOfFiles");
    let configurations = table("configuration");
    let path_of = |artifact: u64| -> String {
        let mut parts = Vec::new();
        let mut id = artifacts[&artifact]["pathFragmentId"].as_u64();
        while let Some(f) = id {
            parts.push(fragments[&f]["label"].as_str().expect("label").to_owned());
            id = fragments[&f]["parentId"].as_u64();
        }
        parts.reverse();
        parts.join("/")
    };
    let actions = graph["actions"].as_array().expect("actions");
    assert_eq!(actions.len(), 3, "{text}");
    let greet = actions
        .iter()
        .find(|a| a["mnemonic"] == "Greet")
        .expect("the Greet action");
    let target = &targets[&greet["targetId"].as_u64().unwrap()];
    assert_eq!(target["label"], "//pkg:hi");
    assert_eq!(
        classes[&target["ruleClassId"].as_u64().unwrap()]["name"],
        "greet"
    );
    let config = &configurations[&greet["configurationId"].as_u64().unwrap()];
    let config_name = config["mnemonic"].as_str().expect("mnemonic");
    let output = path_of(greet["primaryOutputId"].as_u64().unwrap());
    assert_eq!(output, format!("forge-out/{config_name}/bin/pkg/hi.txt"));
    let args: Vec<&str> = greet["arguments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        args,
        [
            format!("forge-out/{config_name}/bin/pkg/hi.sh").as_str(),
            "world",
            output.as_str()
        ]
    );
    let inputs: Vec<String> = greet["inputDepSetIds"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|set| {
            dep_sets[&set.as_u64().unwrap()]["directArtifactIds"]
                .as_array()
                .unwrap()
                .clone()
        })
        .map(|a| path_of(a.as_u64().unwrap()))
        .collect();
    assert_eq!(inputs, [format!("forge-out/{config_name}/bin/pkg/hi.sh")]);
    assert!(
        greet["environmentVariables"]
            .as_array()
            .unwrap()
            .iter()
            .any(|kv| kv["key"] == "GREETING" && kv["value"] == "hello"),
        "{greet}"
    );
}

#[test]
fn bad_formats_and_filters_are_command_line_errors() {
    let ws = Workspace::fixture("actions");
    let run = ws.forge(&["aquery", "//pkg:gen", "--output=graph"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("Invalid output format 'graph'"),
        "{}",
        run.stderr
    );
    let run = ws.forge(&["aquery", "mnemonic('Gen')"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("mnemonic('PATTERN', EXPRESSION)"),
        "{}",
        run.stderr
    );
    let run = ws.forge(&["aquery", "//pkg:missing"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("missing"), "{}", run.stderr);
}

#[test]
fn command_lines_and_artifacts_can_be_left_out() {
    let ws = Workspace::fixture("actions");
    let text = aquery(&ws, &["//pkg:gen", "--noinclude_commandline"]);
    assert!(!text.contains("Command Line"), "{text}");
    assert!(text.contains("  Inputs: [pkg/in.txt]\n"), "{text}");
    let text = aquery(&ws, &["//pkg:gen", "--include_artifacts=false"]);
    assert!(
        !text.contains("Inputs:") && !text.contains("Outputs:"),
        "{text}"
    );
    assert!(text.contains("  Command Line: (exec /bin/bash"), "{text}");
    let json = aquery(
        &ws,
        &[
            "//pkg:gen",
            "--output=jsonproto",
            "--include_artifacts=false",
            "--include_commandline=false",
        ],
    );
    let graph: Value = serde_json::from_str(&json).expect("JSON");
    assert!(graph.get("artifacts").is_none(), "{json}");
    assert!(graph["actions"][0].get("arguments").is_none(), "{json}");
    assert_eq!(graph["actions"][0]["mnemonic"], "Genrule");
}

//! `forge aquery EXPR`: the build flags and `--output` in; the actions `ops::aquery` finds,
//! printed in Bazel's `text`, `summary` or `jsonproto` (analysis_v2.proto's JSON) form.

use std::collections::BTreeMap;
use std::io::Write;

use clap::Args;
use serde_json::{Value, json};

use super::build::BuildOptions;
use crate::core::{ActionKind, ExitCode, Failure, command_line};
use crate::exec::shell_words;
use crate::ops::aquery::{ActionGraph, AqueryRequest, ShownAction};
use crate::ops::{self, key_values};
use crate::workspace::OutputBaseOptions;

#[derive(Args, Debug)]
pub struct AqueryArgs {
    #[command(flatten)]
    options: BuildOptions,

    /// The output format: text (the default), summary or jsonproto.
    #[arg(long = "output", value_name = "FORMAT", default_value = "text")]
    output: String,

    /// Show each command's argv (`Command Line:`, `arguments`); the default.
    #[arg(
        long = "include_commandline",
        alias = "include-commandline",
        value_name = "BOOL",
        action = clap::ArgAction::Set,
        value_parser = clap::value_parser!(bool),
        default_value = "true"
    )]
    include_commandline: bool,

    /// Show each action's inputs and outputs (`Inputs:`/`Outputs:`, `artifacts`,
    /// `depSetOfFiles`, `pathFragments`); the default.
    #[arg(
        long = "include_artifacts",
        alias = "include-artifacts",
        value_name = "BOOL",
        action = clap::ArgAction::Set,
        value_parser = clap::value_parser!(bool),
        default_value = "true"
    )]
    include_artifacts: bool,

    /// The expression: a query expression, optionally inside `inputs('PATTERN', ...)`,
    /// `outputs('PATTERN', ...)` or `mnemonic('PATTERN', ...)`.
    #[arg(required = true, value_name = "EXPR")]
    expression: Vec<String>,
}

/// The formats `--output` takes.
#[derive(Clone, Copy)]
enum Format {
    Text,
    Summary,
    JsonProto,
}

pub fn run(args: AqueryArgs, startup: &OutputBaseOptions) -> Result<ExitCode, Failure> {
    let format = match args.output.as_str() {
        "text" => Format::Text,
        "summary" => Format::Summary,
        "jsonproto" => Format::JsonProto,
        other => {
            return Err(Failure::usage(format!(
                "Invalid output format '{other}'. Valid values are: text, summary, jsonproto \
                 (forge does not support proto and textproto yet)"
            )));
        }
    };
    let options = &args.options;
    options.common.apply();
    let text = ops::query::expression_text(&args.expression);
    let expression = ops::aquery::parse(&text).map_err(ops::usage)?;
    let keep_going = options.common.keep_going && !options.common.no_keep_going;
    let request = AqueryRequest {
        expression: &expression,
        cwd: super::current_dir()?,
        startup,
        keep_going,
        defines: key_values(&options.define, "define", false)?,
        stamp: options.stamp && !options.nostamp,
        build_settings: super::starlark_flags::given(),
        fetch: options.fetch_options(),
        action_env: key_values(&options.action_env, "action_env", true)?,
        configuration: options.output_configuration()?,
        platforms: options.platform_flags(),
        cpp: options.cpp_options(),
    };
    let graph = ops::aquery::aquery(request, &mut |msg| eprintln!("{msg}"))?;
    for e in &graph.errors {
        eprintln!("ERROR: {e}");
    }
    let include = Include {
        commandline: args.include_commandline,
        artifacts: args.include_artifacts,
    };
    let rendered = match format {
        Format::Text => text_form(&graph, include),
        Format::Summary => summary_form(&graph),
        Format::JsonProto => {
            let mut text = serde_json::to_string_pretty(&jsonproto_form(&graph, include))
                .map_err(|e| Failure::failed(format!("cannot write the action graph: {e}")))?;
            text.push('\n');
            text
        }
    };
    let mut out = std::io::stdout().lock();
    match out
        .write_all(rendered.as_bytes())
        .and_then(|()| out.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(Failure::failed(format!(
                "cannot write the action graph: {e}"
            )));
        }
        _ => {}
    }
    if graph.errors.is_empty() {
        Ok(ExitCode::Success)
    } else {
        Ok(ExitCode::PartialSuccess)
    }
}

/// The argv a `Run` action's command gets, directories to expand shown as `<files of DIR>`.
fn arguments(shown: &ShownAction) -> Option<Vec<String>> {
    match &shown.action.kind {
        ActionKind::Run { argv } => Some(argv.iter().map(|a| command_line::printable(a)).collect()),
        _ => None,
    }
}

/// What `--include_commandline` and `--include_artifacts` keep.
#[derive(Clone, Copy)]
struct Include {
    commandline: bool,
    artifacts: bool,
}

/// Bazel's text form: one block per action.
fn text_form(graph: &ActionGraph, include: Include) -> String {
    let mut out = String::new();
    for shown in &graph.actions {
        let action = &shown.action;
        let list = |items: &[crate::core::ExecPath]| {
            items
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "action '{}'\n",
            crate::exec::describe_action(&shown.action)
        ));
        out.push_str(&format!("  Mnemonic: {}\n", action.mnemonic));
        out.push_str(&format!("  Target: {}\n", action.owner));
        out.push_str(&format!("  Configuration: {}\n", graph.configuration));
        out.push_str(&format!("  ActionKey: {}\n", shown.key.to_hex()));
        if include.artifacts {
            out.push_str(&format!("  Inputs: [{}]\n", list(&action.inputs.flatten())));
            out.push_str(&format!("  Outputs: [{}]\n", list(&action.outputs)));
        }
        if !shown.environment.is_empty() {
            let env: Vec<String> = shown
                .environment
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            out.push_str(&format!("  Environment: [{}]\n", env.join(", ")));
        }
        if let Some(argv) = arguments(shown).filter(|_| include.commandline) {
            let words: Vec<String> = argv
                .iter()
                .map(|a| shell_words(std::slice::from_ref(a)))
                .collect();
            out.push_str(&format!(
                "  Command Line: (exec {})\n",
                words.join(" \\\n    ")
            ));
        }
        if !action.requirements.is_empty() {
            let reqs: Vec<String> = action
                .requirements
                .iter()
                .map(|r| format!("{r}: ''"))
                .collect();
            out.push_str(&format!("  ExecutionInfo: {{{}}}\n", reqs.join(", ")));
        }
        out.push('\n');
    }
    out
}

/// Bazel's summary form: the count, then the actions per mnemonic and per configuration.
fn summary_form(graph: &ActionGraph) -> String {
    let mut mnemonics: BTreeMap<&str, usize> = BTreeMap::new();
    for shown in &graph.actions {
        *mnemonics.entry(&shown.action.mnemonic).or_default() += 1;
    }
    let mut out = format!(
        "{}.\n",
        ops::plural(graph.actions.len(), "total action", "total actions")
    );
    out.push_str("\nMnemonics:\n");
    for (mnemonic, count) in &mnemonics {
        out.push_str(&format!("  {mnemonic}: {count}\n"));
    }
    out.push_str("\nConfigurations:\n");
    if !graph.actions.is_empty() {
        out.push_str(&format!(
            "  {}: {}\n",
            graph.configuration,
            graph.actions.len()
        ));
    }
    out
}

/// Interns values as the 1-based ids analysis_v2.proto's tables use.
struct Table<K: Ord> {
    ids: BTreeMap<K, u64>,
    rows: Vec<Value>,
}

impl<K: Ord + Clone> Table<K> {
    fn new() -> Self {
        Table {
            ids: BTreeMap::new(),
            rows: Vec::new(),
        }
    }

    /// The id of `key`, its row made by `row(id)` the first time.
    fn id(&mut self, key: &K, row: impl FnOnce(u64) -> Value) -> u64 {
        if let Some(id) = self.ids.get(key) {
            return *id;
        }
        let id = self.rows.len() as u64 + 1;
        self.ids.insert(key.clone(), id);
        self.rows.push(row(id));
        id
    }
}

/// analysis_v2.proto's `ActionGraphContainer` as JSON (the proto3 JSON mapping Bazel's
/// `--output=jsonproto` uses: lowerCamelCase names, ids as numbers, empty fields left out).
fn jsonproto_form(graph: &ActionGraph, include: Include) -> Value {
    let mut fragments: Table<(u64, String)> = Table::new();
    let mut artifacts: Table<String> = Table::new();
    let mut targets: Table<String> = Table::new();
    let mut rule_classes: Table<String> = Table::new();
    let mut dep_sets: Table<Vec<u64>> = Table::new();
    let configuration_id = 1;
    let mut actions = Vec::new();

    // A path is a chain of fragments, each naming its parent (0: none).
    let fragment_of = |fragments: &mut Table<(u64, String)>, path: &str| -> u64 {
        let mut parent = 0;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            parent = fragments.id(&(parent, part.to_owned()), |id| {
                let mut row = json!({ "id": id, "label": part });
                if parent != 0 {
                    row["parentId"] = json!(parent);
                }
                row
            });
        }
        parent
    };
    let artifact_of = |fragments: &mut Table<(u64, String)>,
                       artifacts: &mut Table<String>,
                       path: &str,
                       tree: bool|
     -> u64 {
        let fragment = fragment_of(fragments, path);
        artifacts.id(&path.to_owned(), |id| {
            let mut row = json!({ "id": id, "pathFragmentId": fragment });
            if tree {
                row["isTreeArtifact"] = json!(true);
            }
            row
        })
    };

    for shown in &graph.actions {
        let action = &shown.action;
        let class_id = rule_classes.id(
            &shown.rule_class,
            |id| json!({ "id": id, "name": shown.rule_class }),
        );
        let target_id = targets.id(
            &action.owner.to_string(),
            |id| json!({ "id": id, "label": action.owner.to_string(), "ruleClassId": class_id }),
        );
        let no_paths: &[crate::core::ExecPath] = &[];
        let flat_inputs = match include.artifacts {
            true => action.inputs.flatten(),
            false => Vec::new(),
        };
        let (input_paths, output_paths) = match include.artifacts {
            true => (&flat_inputs[..], &action.outputs[..]),
            false => (no_paths, no_paths),
        };
        let inputs: Vec<u64> = input_paths
            .iter()
            .map(|p| artifact_of(&mut fragments, &mut artifacts, p, false))
            .collect();
        let outputs: Vec<u64> = output_paths
            .iter()
            .map(|p| {
                let tree = action.directory_outputs.contains(p);
                artifact_of(&mut fragments, &mut artifacts, p, tree)
            })
            .collect();
        let mut row = json!({
            "targetId": target_id,
            "actionKey": shown.key.to_hex(),
            "mnemonic": action.mnemonic,
            "configurationId": configuration_id,
        });
        if let Some(argv) = arguments(shown).filter(|_| include.commandline) {
            row["arguments"] = json!(argv);
        }
        if !shown.environment.is_empty() {
            row["environmentVariables"] = Value::Array(
                shown
                    .environment
                    .iter()
                    .map(|(k, v)| json!({ "key": k, "value": v }))
                    .collect(),
            );
        }
        if !inputs.is_empty() {
            let set = dep_sets.id(
                &inputs,
                |id| json!({ "id": id, "directArtifactIds": inputs }),
            );
            row["inputDepSetIds"] = json!([set]);
        }
        if !outputs.is_empty() {
            row["primaryOutputId"] = json!(outputs[0]);
            row["outputIds"] = json!(outputs);
        }
        if !action.requirements.is_empty() {
            row["executionInfo"] = Value::Array(
                action
                    .requirements
                    .iter()
                    .map(|r| json!({ "key": r, "value": "" }))
                    .collect(),
            );
        }
        actions.push(row);
    }

    let mut container = serde_json::Map::new();
    let mut put = |name: &str, rows: Vec<Value>| {
        if !rows.is_empty() {
            container.insert(name.to_owned(), Value::Array(rows));
        }
    };
    put("artifacts", artifacts.rows);
    put("actions", actions);
    put("targets", targets.rows);
    put("depSetOfFiles", dep_sets.rows);
    put(
        "configuration",
        match graph.actions.is_empty() {
            true => Vec::new(),
            false => vec![json!({
                "id": configuration_id,
                "mnemonic": graph.configuration,
                "platformName": graph.configuration.split('-').next().unwrap_or_default(),
                "checksum": crate::core::Digest::of_bytes(graph.configuration.as_bytes()).to_hex(),
            })],
        },
    );
    put("ruleClasses", rule_classes.rows);
    put("pathFragments", fragments.rows);
    Value::Object(container)
}

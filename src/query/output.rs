//! A query result (labels in the order `--order_output` chose) and the env that loaded them
//! in, text in one of Bazel's `--output` formats out: `label`, `label_kind`, `package`,
//! `location`, `minrank`, `maxrank`, `build`, `graph`, `json`, and (in `structured.rs`)
//! `xml` and `streamed_jsonproto`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use serde::Serialize;
use serde_json::Value;

use super::{QueryEnv, kind_of};
use crate::core::{Diagnostic, Label, diag::did_you_mean};
use crate::loading::{AttrValue, Target, TargetKind};

/// A `--output` format.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OutputFormat {
    /// One canonical label per line.
    Label,
    /// `<kind> <label>` per line.
    LabelKind,
    /// Each rule as the BUILD-file call that would create it.
    Build,
    /// A Graphviz DOT graph of the result and the edges among its members.
    Graph,
    /// A JSON array with one object per target.
    Json,
    /// The packages of the result, one per line, sorted.
    Package,
    /// `/abs/path/BUILD:line:col: <kind> <label>` per target.
    Location,
    /// `<rank> <label>`: the shortest distance from a root of the result.
    MinRank,
    /// `<rank> <label>`: the longest distance from a root of the result.
    MaxRank,
    /// Bazel's XML document of the targets.
    Xml,
    /// One JSON `Target` message (build.proto's, in proto3 JSON) per line.
    StreamedJsonProto,
}

const FORMATS: [(&str, OutputFormat); 11] = [
    ("label", OutputFormat::Label),
    ("label_kind", OutputFormat::LabelKind),
    ("build", OutputFormat::Build),
    ("graph", OutputFormat::Graph),
    ("json", OutputFormat::Json),
    ("package", OutputFormat::Package),
    ("location", OutputFormat::Location),
    ("minrank", OutputFormat::MinRank),
    ("maxrank", OutputFormat::MaxRank),
    ("xml", OutputFormat::Xml),
    ("streamed_jsonproto", OutputFormat::StreamedJsonProto),
];

impl FromStr for OutputFormat {
    type Err = Diagnostic;

    fn from_str(name: &str) -> Result<Self, Diagnostic> {
        if let Some((_, format)) = FORMATS.iter().find(|(n, _)| *n == name) {
            return Ok(*format);
        }
        let names: Vec<&str> = FORMATS.iter().map(|(n, _)| *n).collect();
        if matches!(name, "proto" | "textproto" | "streamed_proto") {
            return Err(Diagnostic::new(format!(
                "forge does not support --output={name} yet (binary and text protocol \
                 buffers); streamed_jsonproto gives the same Target messages as JSON, and \
                 the valid values are: {}",
                names.join(", ")
            )));
        }
        let hint = did_you_mean(name, names.iter().copied())
            .map(|n| format!(" (did you mean '{n}'?)"))
            .unwrap_or_default();
        Err(Diagnostic::new(format!(
            "invalid output format '{name}'{hint}; valid values are: {}",
            names.join(", ")
        )))
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = FORMATS
            .iter()
            .find(|(_, format)| format == self)
            .map_or("label", |(n, _)| *n);
        f.write_str(name)
    }
}

/// Writes `labels` in `format`, in the order given (graph and the ranks have their own).
pub fn print(
    format: OutputFormat,
    labels: &[Label],
    env: &dyn QueryEnv,
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        OutputFormat::Package => {
            let packages: BTreeSet<String> = labels.iter().map(package_name).collect();
            packages.iter().try_for_each(|p| writeln!(out, "{p}"))
        }
        OutputFormat::Location => labels
            .iter()
            .try_for_each(|l| writeln!(out, "{}: {} {l}", location(env, l), kind_of(env, l))),
        OutputFormat::MinRank | OutputFormat::MaxRank => {
            let set: BTreeSet<Label> = labels.iter().cloned().collect();
            let longest = format == OutputFormat::MaxRank;
            super::order::ranks(&set, env, longest)
                .into_iter()
                .try_for_each(|(rank, l)| writeln!(out, "{rank} {l}"))
        }
        OutputFormat::Xml => super::structured::print_xml(labels, env, out),
        OutputFormat::StreamedJsonProto => {
            super::structured::print_streamed_proto(labels, env, out)
        }
        OutputFormat::Label => labels.iter().try_for_each(|l| writeln!(out, "{l}")),
        OutputFormat::LabelKind => labels
            .iter()
            .try_for_each(|l| writeln!(out, "{} {l}", kind_of(env, l))),
        OutputFormat::Build => print_build(labels, env, out),
        OutputFormat::Graph => print_graph(labels, env, out),
        OutputFormat::Json => print_json(labels, env, out),
    }
}

/// How `--output=package` names a label's package: `pkg/sub`, `@repo//pkg`.
fn package_name(label: &Label) -> String {
    match label.repo.is_empty() {
        true => label.package.clone(),
        false => format!("@{}//{}", label.repo, label.package),
    }
}

/// Where a target is, as Bazel's `location` output and XML say: a rule (and the files it
/// generates) at its call's `(` in the BUILD file, a source file at its own first line —
/// absolute paths when the env knows the package's directory.
pub(super) fn location(env: &dyn QueryEnv, label: &Label) -> String {
    let dir = env.package_dir(label);
    let target = match env.target(label) {
        Some(t) if !matches!(t.kind, TargetKind::SourceFile) => t,
        _ => {
            return match &dir {
                Some(dir) => format!("{}:1:1", dir.join(&label.name).display()),
                None => format!("{}:1:1", label.name),
            };
        }
    };
    let loc = &target.location;
    let file_name = std::path::Path::new(&loc.file)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Some(dir) = dir.filter(|_| matches!(file_name.as_str(), "BUILD" | "BUILD.bazel")) else {
        return loc.to_string();
    };
    let path = dir.join(&file_name);
    // Bazel points at the call's `(`: the first one at or after the call's start.
    let column = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| {
            let line = text
                .lines()
                .nth(loc.line.checked_sub(1)? as usize)?
                .to_owned();
            let start = (loc.column as usize).saturating_sub(1);
            let chars: Vec<char> = line.chars().collect();
            let offset = chars.get(start..)?.iter().position(|c| *c == '(')?;
            Some(start + offset + 1)
        })
        .unwrap_or(loc.column as usize);
    format!("{}:{}:{column}", path.display(), loc.line)
}

/// Rules print as calls, each once, followed by a blank line as in Bazel. A generated file
/// prints as the rule that generates it (Bazel's behaviour); other targets, which no call
/// creates, print as a comment.
fn print_build(labels: &[Label], env: &dyn QueryEnv, out: &mut dyn Write) -> io::Result<()> {
    let mut printed_rules = BTreeSet::new();
    for label in labels {
        let target = env.target(label);
        let rule_target = match target.map(|t| &t.kind) {
            Some(TargetKind::Rule(_)) => target,
            Some(TargetKind::GeneratedFile { generating_rule }) => env.target(generating_rule),
            _ => None,
        };
        let Some(rule_target) = rule_target.filter(|t| t.rule().is_some()) else {
            writeln!(out, "# {label} ({})\n", kind_of(env, label))?;
            continue;
        };
        if printed_rules.insert(&rule_target.label) {
            write_rule(rule_target, out)?;
        }
    }
    Ok(())
}

fn write_rule(target: &Target, out: &mut dyn Write) -> io::Result<()> {
    let Some(rule) = target.rule() else {
        return Ok(());
    };
    writeln!(out, "# {}", target.location)?;
    if let Some(call) = &rule.macro_call {
        writeln!(
            out,
            "# generated by macro {} at {}",
            call.function, call.location
        )?;
    }
    writeln!(out, "{}(", rule.class)?;
    let name = AttrValue::String(target.label.name.clone());
    writeln!(out, "  name = {},", name.display())?;
    for (attr, value) in &rule.attrs {
        if attr != "name" && *value != AttrValue::None && rule.explicit.contains(attr) {
            writeln!(out, "  {attr} = {},", value.display())?;
        }
    }
    writeln!(out, ")\n")
}

/// Every member of the result is a node; edges are the dependencies between members.
fn print_graph(labels: &[Label], env: &dyn QueryEnv, out: &mut dyn Write) -> io::Result<()> {
    let labels: BTreeSet<Label> = labels.iter().cloned().collect();
    let labels = &labels;
    writeln!(out, "digraph mygraph {{")?;
    writeln!(out, "  node [shape=box];")?;
    for label in labels {
        let node = dot_string(label);
        writeln!(out, "  {node}")?;
        // Two attributes naming the same dependency make one edge.
        let targets: BTreeSet<Label> = env
            .deps(label)
            .into_iter()
            .map(|(_, dep)| dep)
            .filter(|dep| labels.contains(dep))
            .collect();
        for dep in &targets {
            writeln!(out, "  {node} -> {}", dot_string(dep))?;
        }
    }
    writeln!(out, "}}")
}

/// A DOT quoted string: `"` and `\` escaped.
fn dot_string(label: &Label) -> String {
    let text = label.to_string();
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

#[derive(Serialize)]
struct JsonTarget {
    label: String,
    kind: String,
    /// Absent for files the env knows only by name (BUILD and .bzl files).
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<String>,
    /// For a target a macro made: the macro and the rule call inside it.
    #[serde(skip_serializing_if = "Option::is_none")]
    generator_function: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    generator_location: Option<String>,
    attributes: BTreeMap<String, Value>,
}

fn print_json(labels: &[Label], env: &dyn QueryEnv, out: &mut dyn Write) -> io::Result<()> {
    let targets: Vec<JsonTarget> = labels
        .iter()
        .map(|label| {
            let target = env.target(label);
            let attributes = target
                .and_then(Target::rule)
                .map(|rule| {
                    rule.attrs
                        .iter()
                        .filter_map(|(name, value)| Some((name.to_owned(), json_value(value)?)))
                        .collect()
                })
                .unwrap_or_default();
            let macro_call = target
                .and_then(Target::rule)
                .and_then(|r| r.macro_call.as_ref());
            JsonTarget {
                label: label.to_string(),
                kind: kind_of(env, label),
                location: target.map(|t| t.location.to_string()),
                generator_function: macro_call.map(|m| m.function.clone()),
                generator_location: macro_call.map(|m| m.location.to_string()),
                attributes,
            }
        })
        .collect();
    serde_json::to_writer_pretty(&mut *out, &targets).map_err(io::Error::other)?;
    writeln!(out)
}

/// An attribute value as JSON; `None` (unset) is left out.
pub(super) fn json_value(value: &AttrValue) -> Option<Value> {
    let labels = |ls: &[Label]| Value::from(ls.iter().map(Label::to_string).collect::<Vec<_>>());
    Some(match value {
        AttrValue::None => return None,
        AttrValue::Bool(b) => Value::from(*b),
        AttrValue::Int(i) => Value::from(*i),
        AttrValue::String(s) => Value::from(s.as_str()),
        AttrValue::StringList(items) => Value::from(items.clone()),
        AttrValue::StringDict(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect(),
        ),
        AttrValue::Label(label) | AttrValue::Output(label) => Value::from(label.to_string()),
        AttrValue::LabelList(items) | AttrValue::OutputList(items) => labels(items),
        AttrValue::LabelKeyedStringDict(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), Value::from(v.as_str())))
                .collect(),
        ),
        AttrValue::Select(s) => Value::from(s.display()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::fake::{FakeEnv, labels};

    fn render(format: &str, targets: &[&str]) -> String {
        let env = FakeEnv::new();
        let format: OutputFormat = format.parse().unwrap();
        let mut out = Vec::new();
        let ordered: Vec<Label> = labels(targets).into_iter().collect();
        print(format, &ordered, &env, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn formats_parse_and_unknown_ones_list_the_valid_ones() {
        for (name, format) in FORMATS {
            assert_eq!(name.parse::<OutputFormat>().unwrap(), format);
            assert_eq!(format.to_string(), name);
        }
        assert_eq!(
            "labels".parse::<OutputFormat>().unwrap_err().message,
            "invalid output format 'labels' (did you mean 'label'?); \
             valid values are: label, label_kind, build, graph, json, package, location, \
             minrank, maxrank, xml, streamed_jsonproto"
        );
    }

    #[test]
    fn label_and_label_kind() {
        let targets = [
            "//b:util",
            "//a:bin",
            "//b:gen.txt",
            "//b:in.txt",
            "//b:BUILD",
        ];
        assert_eq!(
            render("label", &targets),
            "//a:bin\n//b:BUILD\n//b:gen.txt\n//b:in.txt\n//b:util\n"
        );
        assert_eq!(
            render("label_kind", &targets),
            "sh_binary rule //a:bin\n\
             source file //b:BUILD\n\
             generated file //b:gen.txt\n\
             source file //b:in.txt\n\
             cc_library rule //b:util\n"
        );
        assert_eq!(render("label", &[]), "");
    }

    #[test]
    fn build_prints_rules_as_calls() {
        assert_eq!(
            render("build", &["//a:bin", "//a:main.sh"]),
            r#"# a/BUILD:3:1
sh_binary(
  name = "bin",
  args = [],
  deps = ["//a:lib"],
  srcs = ["//a:main.sh"],
  stamp = -1,
  testonly = False,
)

# //a:main.sh (source file)

"#
        );
    }

    #[test]
    fn build_prints_macro_rules_and_generated_files_once() {
        assert_eq!(
            render("build", &["//b:gen", "//b:gen.txt", "//b:BUILD"]),
            r#"# //b:BUILD (source file)

# b/BUILD:7:1
# generated by macro make_gen at tools/defs.bzl:12:5
genrule(
  name = "gen",
  cmd = "cat $< > \"$@\"",
  outs = ["//b:gen.txt"],
  srcs = ["//b:in.txt"],
)

"#
        );
    }

    #[test]
    fn graph_shows_edges_among_the_result() {
        assert_eq!(
            render("graph", &["//c:x", "//c:y", "//b:util", "//a:lib"]),
            r#"digraph mygraph {
  node [shape=box];
  "//a:lib"
  "//a:lib" -> "//b:util"
  "//b:util"
  "//c:x"
  "//c:x" -> "//c:y"
  "//c:y"
  "//c:y" -> "//b:util"
  "//c:y" -> "//c:x"
}
"#
        );
    }

    #[test]
    fn graph_escapes_quotes() {
        let label = Label {
            repo: String::new(),
            package: "p".into(),
            name: "a\"b".into(),
        };
        assert_eq!(dot_string(&label), r#""//p:a\"b""#);
    }

    #[test]
    fn json_has_one_object_per_target() {
        assert_eq!(
            render("json", &["//a:lib", "//b:gen.txt", "//tools:defs.bzl"]),
            r#"[
  {
    "label": "//a:lib",
    "kind": "cc_library rule",
    "location": "a/BUILD:10:1",
    "attributes": {
      "defines": {
        "K": "V"
      },
      "deps": [
        "//b:util"
      ],
      "srcs": [
        "//a:lib.cc"
      ],
      "tags": [
        "core",
        "fast"
      ]
    }
  },
  {
    "label": "//b:gen.txt",
    "kind": "generated file",
    "location": "b/BUILD:7:1",
    "attributes": {}
  },
  {
    "label": "//tools:defs.bzl",
    "kind": "source file",
    "attributes": {}
  }
]
"#
        );
    }

    #[test]
    fn json_values_keep_their_types() {
        let env = FakeEnv::new();
        let mut out = Vec::new();
        let ordered: Vec<Label> = labels(&["//a:bin"]).into_iter().collect();
        print(OutputFormat::Json, &ordered, &env, &mut out).unwrap();
        let parsed: Value = serde_json::from_slice(&out).unwrap();
        let attrs = &parsed[0]["attributes"];
        assert_eq!(attrs["stamp"], Value::from(-1));
        assert_eq!(attrs["testonly"], Value::from(false));
        assert_eq!(attrs["args"], Value::Array(Vec::new()));
        assert!(attrs.get("toolchain").is_none());
    }
}

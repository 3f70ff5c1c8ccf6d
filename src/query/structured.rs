//! The structured query outputs: the result's labels and the env in; Bazel's XML document
//! (`--output=xml`) or one build.proto `Target` per line in proto3 JSON
//! (`--output=streamed_jsonproto`) out. A rule shows every attribute (defaults filled in,
//! as Bazel's do), its inputs (dependencies) and its declared outputs.

use std::collections::BTreeSet;
use std::io::{self, Write};

use serde_json::{Value, json};

use super::QueryEnv;
use super::output::location;
use crate::core::Label;
use crate::loading::{AttrValue, Target, TargetKind};

/// `&`, `<`, `>`, `"` and `'` as XML entities.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The rule's dependencies (each once, sorted) and the outputs it declares.
fn inputs_and_outputs(
    env: &dyn QueryEnv,
    label: &Label,
    target: &Target,
) -> (Vec<Label>, Vec<Label>) {
    let inputs: BTreeSet<Label> = env.deps(label).into_iter().map(|(_, l)| l).collect();
    let mut outputs: Vec<Label> = target
        .rule()
        .map(|r| {
            r.attrs
                .values()
                .flat_map(|v| match v {
                    AttrValue::Output(l) => vec![l.clone()],
                    AttrValue::OutputList(ls) => ls.clone(),
                    _ => Vec::new(),
                })
                .collect()
        })
        .unwrap_or_default();
    outputs.sort();
    outputs.dedup();
    (inputs.into_iter().collect(), outputs)
}

/// One attribute as an XML element, indented by `pad`; `None` for unset values.
fn xml_attribute(name: Option<&str>, value: &AttrValue, pad: &str) -> Option<String> {
    let named = |tag: &str, v: &str| match name {
        Some(n) => format!(
            "{pad}<{tag} name=\"{}\" value=\"{}\"/>\n",
            escape(n),
            escape(v)
        ),
        None => format!("{pad}<{tag} value=\"{}\"/>\n", escape(v)),
    };
    let list = |tag: &str, items: Vec<String>| {
        let list_name = escape(name.unwrap_or(""));
        if items.is_empty() {
            return format!("{pad}<list name=\"{list_name}\"/>\n");
        }
        let mut out = format!("{pad}<list name=\"{list_name}\">\n");
        for item in items {
            out.push_str(&format!("{pad}    <{tag} value=\"{}\"/>\n", escape(&item)));
        }
        out.push_str(&format!("{pad}</list>\n"));
        out
    };
    let dict = |key_tag: &str, pairs: Vec<(String, String)>| {
        let dict_name = escape(name.unwrap_or(""));
        if pairs.is_empty() {
            return format!("{pad}<dict name=\"{dict_name}\"/>\n");
        }
        let mut out = format!("{pad}<dict name=\"{dict_name}\">\n");
        for (k, v) in pairs {
            out.push_str(&format!(
                "{pad}    <pair>\n{pad}        <{key_tag} value=\"{}\"/>\n{pad}        <string value=\"{}\"/>\n{pad}    </pair>\n",
                escape(&k),
                escape(&v)
            ));
        }
        out.push_str(&format!("{pad}</dict>\n"));
        out
    };
    let strings = |ls: &[Label]| ls.iter().map(Label::to_string).collect::<Vec<_>>();
    Some(match value {
        AttrValue::None => return None,
        AttrValue::Bool(b) => named("boolean", if *b { "true" } else { "false" }),
        AttrValue::Int(i) => named("int", &i.to_string()),
        AttrValue::String(s) => named("string", s),
        AttrValue::Label(l) => named("label", &l.to_string()),
        AttrValue::Output(l) => named("output", &l.to_string()),
        AttrValue::StringList(items) => list("string", items.clone()),
        AttrValue::LabelList(items) => list("label", strings(items)),
        AttrValue::OutputList(items) => list("output", strings(items)),
        AttrValue::StringDict(pairs) => dict("string", pairs.clone()),
        AttrValue::LabelKeyedStringDict(pairs) => dict(
            "label",
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        ),
        // A configurable value is shown as the select() it is.
        AttrValue::Select(s) => named("string", &s.display()),
    })
}

/// Bazel's `--output=xml` document.
pub fn print_xml(labels: &[Label], env: &dyn QueryEnv, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "<?xml version=\"1.1\" encoding=\"UTF-8\" standalone=\"no\"?>"
    )?;
    writeln!(out, "<query version=\"2\">")?;
    for label in labels {
        let name = escape(&label.to_string());
        let place = escape(&location(env, label));
        let Some(target) = env.target(label) else {
            writeln!(
                out,
                "    <source-file location=\"{place}\" name=\"{name}\"/>"
            )?;
            continue;
        };
        match &target.kind {
            TargetKind::Rule(rule) => {
                writeln!(
                    out,
                    "    <rule class=\"{}\" location=\"{place}\" name=\"{name}\">",
                    escape(&rule.class)
                )?;
                let pad = "        ";
                out.write_all(
                    xml_attribute(Some("name"), &AttrValue::String(label.name.clone()), pad)
                        .unwrap_or_default()
                        .as_bytes(),
                )?;
                for (attr, value) in &rule.attrs {
                    if attr == "name" {
                        continue;
                    }
                    if let Some(text) = xml_attribute(Some(attr), value, pad) {
                        out.write_all(text.as_bytes())?;
                    }
                }
                let (inputs, outputs) = inputs_and_outputs(env, label, target);
                for input in inputs {
                    writeln!(
                        out,
                        "{pad}<rule-input name=\"{}\"/>",
                        escape(&input.to_string())
                    )?;
                }
                for output in outputs {
                    writeln!(
                        out,
                        "{pad}<rule-output name=\"{}\"/>",
                        escape(&output.to_string())
                    )?;
                }
                writeln!(out, "    </rule>")?;
            }
            TargetKind::SourceFile => {
                writeln!(
                    out,
                    "    <source-file location=\"{place}\" name=\"{name}\">"
                )?;
                for v in &target.visibility {
                    writeln!(
                        out,
                        "        <visibility-label name=\"{}\"/>",
                        escape(&v.to_string())
                    )?;
                }
                writeln!(out, "    </source-file>")?;
            }
            TargetKind::GeneratedFile { generating_rule } => writeln!(
                out,
                "    <generated-file generating-rule=\"{}\" location=\"{place}\" name=\"{name}\"/>",
                escape(&generating_rule.to_string())
            )?,
            TargetKind::PackageGroup(group) => {
                writeln!(
                    out,
                    "    <package-group location=\"{place}\" name=\"{name}\">"
                )?;
                for include in &group.includes {
                    writeln!(
                        out,
                        "        <includes name=\"{}\"/>",
                        escape(&include.to_string())
                    )?;
                }
                writeln!(out, "    </package-group>")?;
            }
        }
    }
    writeln!(out, "</query>")
}

/// One attribute as build.proto's `Attribute` in proto3 JSON.
fn proto_attribute(name: &str, value: &AttrValue, explicit: bool) -> Option<Value> {
    let labels = |ls: &[Label]| ls.iter().map(Label::to_string).collect::<Vec<_>>();
    let pairs = |ps: Vec<(String, String)>| {
        ps.into_iter()
            .map(|(k, v)| json!({ "key": k, "value": v }))
            .collect::<Vec<_>>()
    };
    let mut attr = match value {
        AttrValue::None => return None,
        AttrValue::Bool(b) => {
            json!({ "type": "BOOLEAN", "intValue": i64::from(*b), "booleanValue": b })
        }
        AttrValue::Int(i) => json!({ "type": "INTEGER", "intValue": i }),
        AttrValue::String(s) => json!({ "type": "STRING", "stringValue": s }),
        AttrValue::Label(l) => json!({ "type": "LABEL", "stringValue": l.to_string() }),
        AttrValue::Output(l) => json!({ "type": "OUTPUT", "stringValue": l.to_string() }),
        AttrValue::StringList(items) => json!({ "type": "STRING_LIST", "stringListValue": items }),
        AttrValue::LabelList(items) => {
            json!({ "type": "LABEL_LIST", "stringListValue": labels(items) })
        }
        AttrValue::OutputList(items) => {
            json!({ "type": "OUTPUT_LIST", "stringListValue": labels(items) })
        }
        AttrValue::StringDict(ps) => {
            json!({ "type": "STRING_DICT", "stringDictValue": pairs(ps.clone()) })
        }
        AttrValue::LabelKeyedStringDict(ps) => json!({
            "type": "LABEL_KEYED_STRING_DICT",
            "labelKeyedStringDictValue": pairs(ps.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()),
        }),
        AttrValue::Select(s) => json!({ "type": "STRING", "stringValue": s.display() }),
    };
    attr["name"] = json!(name);
    attr["explicitlySpecified"] = json!(explicit);
    Some(attr)
}

/// `--output=streamed_jsonproto`: one `Target` message a line.
pub fn print_streamed_proto(
    labels: &[Label],
    env: &dyn QueryEnv,
    out: &mut dyn Write,
) -> io::Result<()> {
    for label in labels {
        let name = label.to_string();
        let place = location(env, label);
        let message = match env.target(label).map(|t| (t, &t.kind)) {
            None | Some((_, TargetKind::SourceFile)) => json!({
                "type": "SOURCE_FILE",
                "sourceFile": { "name": name, "location": place },
            }),
            Some((target, TargetKind::Rule(rule))) => {
                let mut attributes: Vec<Value> = Vec::new();
                attributes.extend(proto_attribute(
                    "name",
                    &AttrValue::String(label.name.clone()),
                    true,
                ));
                for (attr, value) in &rule.attrs {
                    if attr != "name" {
                        attributes.extend(proto_attribute(
                            attr,
                            value,
                            rule.explicit.contains(attr),
                        ));
                    }
                }
                let (inputs, outputs) = inputs_and_outputs(env, label, target);
                let strings = |ls: Vec<Label>| ls.iter().map(Label::to_string).collect::<Vec<_>>();
                json!({
                    "type": "RULE",
                    "rule": {
                        "name": name,
                        "ruleClass": rule.class,
                        "location": place,
                        "attribute": attributes,
                        "ruleInput": strings(inputs),
                        "ruleOutput": strings(outputs),
                    },
                })
            }
            Some((_, TargetKind::GeneratedFile { generating_rule })) => json!({
                "type": "GENERATED_FILE",
                "generatedFile": {
                    "name": name,
                    "generatingRule": generating_rule.to_string(),
                    "location": place,
                },
            }),
            Some((_, TargetKind::PackageGroup(group))) => json!({
                "type": "PACKAGE_GROUP",
                "packageGroup": {
                    "name": name,
                    "includedPackageGroup": group.includes.iter().map(Label::to_string).collect::<Vec<_>>(),
                },
            }),
        };
        serde_json::to_writer(&mut *out, &message).map_err(io::Error::other)?;
        writeln!(out)?;
    }
    Ok(())
}

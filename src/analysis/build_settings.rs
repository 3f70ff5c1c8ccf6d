//! Build settings' values in this build: the command line's `--//pkg:flag=value` arguments
//! and the loaded setting targets in, each setting's typed value out — the command line's
//! when it sets one, else the target's `build_setting_default` — for `ctx.build_setting_value`
//! and `config_setting(flag_values = ...)`.
//!
//! As in Bazel, setting a flag on the command line changes no output directory (a transition
//! setting one does: `configuration`).

use std::collections::{BTreeMap, BTreeSet};

use super::conditions::is_builtin;
use crate::core::{Diagnostic, Label, PackageId};
use crate::graph::TargetGraph;
use crate::loading::{AttrValue, RuleTarget, SettingKind};

/// One build-setting argument, read but not yet checked against its target.
#[derive(Clone, Debug)]
pub struct SettingArg {
    /// The argument as given, for messages (`--//pkg:flag=value`).
    pub text: String,
    pub label: Label,
    /// After `=`; none for `--//pkg:flag` and `--no//pkg:flag`.
    pub value: Option<String>,
    /// `--no//pkg:flag`.
    pub negated: bool,
}

/// Reads the arguments' labels (absolute: `//pkg:flag` or `@repo//pkg:flag`; the main
/// repository's own name, `workspace_name`, means the main repository).
pub fn parse_args(given: &[String], workspace_name: &str) -> Result<Vec<SettingArg>, Diagnostic> {
    given
        .iter()
        .map(|text| {
            let body = text.strip_prefix("--").unwrap_or(text);
            let (negated, body) = match body.strip_prefix("no") {
                Some(rest) if rest.starts_with("//") || rest.starts_with('@') => (true, rest),
                _ => (false, body),
            };
            let (label, value) = match body.split_once('=') {
                Some((l, v)) => (l, Some(v.to_owned())),
                None => (body, None),
            };
            let label = Label::parse(label, &PackageId::default())
                .map_err(|e| Diagnostic::new(format!("Unrecognized option: {text}: {e}")))?;
            let label = main_repo_as_empty(label, workspace_name);
            if negated && value.is_some() {
                return Err(Diagnostic::new(format!(
                    "Unexpected value after boolean option: {text}"
                )));
            }
            Ok(SettingArg {
                text: text.clone(),
                label,
                value,
                negated,
            })
        })
        .collect()
}

/// `label` with the main repository's own name (`@<workspace name>//`) read as the main
/// repository, whose labels the BUILD files' targets carry.
fn main_repo_as_empty(mut label: Label, workspace_name: &str) -> Label {
    if label.repo == workspace_name {
        label.repo.clear();
    }
    label
}

/// The labels the arguments name, to load before `resolve`.
pub fn labels(args: &[SettingArg]) -> BTreeSet<Label> {
    args.iter().map(|a| a.label.clone()).collect()
}

/// Each setting the arguments set, with its typed value; the first argument that names no
/// flag, or gives a value its type does not read, is the error.
pub fn resolve(
    graph: &TargetGraph,
    args: &[SettingArg],
    workspace_name: &str,
) -> Result<BTreeMap<Label, AttrValue>, Diagnostic> {
    let mut values: BTreeMap<Label, AttrValue> = BTreeMap::new();
    for arg in args {
        let rule = graph.target(&arg.label).and_then(|t| t.rule());
        if rule.is_some_and(|r| is_builtin(r, "label_flag")) {
            let target = match (&arg.value, arg.negated) {
                (Some(text), false) => main_repo_as_empty(
                    Label::parse(text, &PackageId::default()).map_err(|e| {
                        Diagnostic::new(format!("While parsing option {}: {e}", arg.text))
                    })?,
                    workspace_name,
                ),
                (_, true) => {
                    return Err(Diagnostic::new(format!(
                        "Illegal use of 'no' prefix on non-boolean option: {}",
                        arg.text
                    )));
                }
                (None, false) => {
                    return Err(Diagnostic::new(format!(
                        "Expected value after {}: write {}=//pkg:target",
                        arg.text, arg.text
                    )));
                }
            };
            values.insert(arg.label.clone(), AttrValue::Label(target));
            continue;
        }
        let setting = rule.and_then(|r| r.build_setting).filter(|s| s.flag);
        let Some(setting) = setting else {
            return Err(not_a_flag(graph, arg));
        };
        let value = match (setting.kind, &arg.value, arg.negated) {
            (SettingKind::Bool, None, negated) => AttrValue::Bool(!negated),
            (_, _, true) => {
                return Err(Diagnostic::new(format!(
                    "Illegal use of 'no' prefix on non-boolean option: {}",
                    arg.text
                )));
            }
            (_, None, false) => {
                return Err(Diagnostic::new(format!(
                    "Expected value after {}: write {}=VALUE",
                    arg.text, arg.text
                )));
            }
            (kind, Some(text), false) => kind.parse(text).map_err(|why| {
                Diagnostic::new(format!(
                    "While parsing option {}: {why}; '{}' is a config.{} setting",
                    arg.text,
                    arg.label,
                    kind.name()
                ))
            })?,
        };
        match (setting.allow_multiple, value) {
            (true, AttrValue::String(s)) => match values.get_mut(&arg.label) {
                Some(AttrValue::StringList(list)) => list.push(s),
                _ => {
                    values.insert(arg.label.clone(), AttrValue::StringList(vec![s]));
                }
            },
            // As Bazel's options: the last one given wins.
            (_, value) => {
                values.insert(arg.label.clone(), value);
            }
        }
    }
    Ok(values)
}

/// Bazel's error for an argument that names no flag, word for word (scripts grep for it),
/// with what the target is instead: `Unrecognized option: //pkg:setting=VALUE` for a
/// build setting that is not a flag, `Unrecognized option: //pkg:target` for another
/// target, Bazel's loading error for no target.
fn not_a_flag(graph: &TargetGraph, arg: &SettingArg) -> Diagnostic {
    let Some(target) = graph.target(&arg.label) else {
        return Diagnostic::new(format!(
            "Error loading option {}: no such target '{}'",
            arg.label, arg.label
        ));
    };
    let is_setting = target
        .rule()
        .is_some_and(|r| r.build_setting.is_some() || is_builtin(r, "label_setting"));
    if is_setting {
        // Bazel names the setting with the value it was given (`true` for `--//pkg:b`).
        let value = match (&arg.value, arg.negated) {
            (Some(v), _) => v.clone(),
            (None, negated) => (!negated).to_string(),
        };
        Diagnostic::new(format!(
            "Unrecognized option: {}={value} (a build setting that is not a flag: declare \
             it with config.<type>(flag = True) to set it on the command line)",
            arg.label
        ))
    } else {
        Diagnostic::new(format!(
            "Unrecognized option: {} (a {}, not a build setting)",
            arg.label,
            target.kind_name()
        ))
    }
}

/// The targets `label_flag`s are set to on the command line: loaded before analysis, and
/// analysed in place of the flags' defaults.
pub fn chosen_targets(values: &BTreeMap<Label, AttrValue>) -> BTreeSet<Label> {
    values
        .values()
        .filter_map(|v| match v {
            AttrValue::Label(l) => Some(l.clone()),
            _ => None,
        })
        .collect()
}

/// The target the command line chose for `label` when it is a `label_flag`.
pub(super) fn chosen_target<'c>(
    values: &'c BTreeMap<Label, AttrValue>,
    label: &Label,
) -> Option<&'c Label> {
    match values.get(label) {
        Some(AttrValue::Label(l)) => Some(l),
        _ => None,
    }
}

/// The value of the build setting `rule` (the target `label`) in this build, given the
/// command line's settings, or none when the rule is no build setting.
pub(super) fn value_of(
    given: &BTreeMap<Label, AttrValue>,
    label: &Label,
    rule: &RuleTarget,
) -> Option<AttrValue> {
    let setting = rule.build_setting?;
    if let Some(given) = given.get(label) {
        return Some(given.clone());
    }
    let default = rule.attrs.get("build_setting_default")?.clone();
    Some(match (setting.allow_multiple, default) {
        // A setting given several times is a list; its default is one of them.
        (true, AttrValue::String(s)) => AttrValue::StringList(vec![s]),
        (_, default) => default,
    })
}

/// Whether the setting `rule`, whose value is `actual`, has the value `wanted` as a
/// `config_setting(flag_values)` writes it: read as the setting's type reads the command
/// line; a setting given several times matches each of its values, as in Bazel.
pub(super) fn has_value(
    rule: &RuleTarget,
    actual: &AttrValue,
    wanted: &str,
) -> Result<bool, String> {
    let Some(setting) = rule.build_setting else {
        return Ok(false);
    };
    let wanted = setting.kind.parse(wanted)?;
    Ok(match (setting.allow_multiple, actual, &wanted) {
        (true, AttrValue::StringList(values), AttrValue::String(w)) => values.contains(w),
        _ => *actual == wanted,
    })
}

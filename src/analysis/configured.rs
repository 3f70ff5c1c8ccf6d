//! Configured attributes: the build configuration and a target's loaded attributes in, the
//! same attributes with every `select()` replaced by the branch the configuration takes out.
//!
//! `Settings` is computed once per build: it decides, for every `config_setting` and
//! `constraint_value` target in the graph, whether the configuration matches it and which
//! requirements it makes (for Bazel's "most specialised condition wins" rule). Resolving a
//! target's attributes is then a lookup per select key.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};

use super::AnalysisConfig;
use crate::core::Label;
use crate::graph::TargetGraph;
use crate::loading::{
    AttrValue, RuleTarget, Select, SelectPart, Selector, Target, TargetKind, is_default_condition,
};

/// One thing a condition requires of the configuration. A condition whose requirements are
/// a superset of another's is more specialised, and wins when both match.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Requirement {
    /// `--define NAME=VALUE` (from `values = {"define": ...}` or `define_values`).
    Define(String, String),
    /// A build option in `values`: `compilation_mode`, `cpu`.
    Option(String, String),
    /// The platform has this constraint value.
    Constraint(Label),
}

/// What a condition target means in this configuration.
#[derive(Clone, Debug)]
struct Condition {
    matches: bool,
    requirements: BTreeSet<Requirement>,
}

/// The build options `config_setting(values = ...)` can test, with this build's values.
#[derive(Clone, Debug)]
pub struct Configuration {
    pub defines: std::collections::BTreeMap<String, String>,
    pub compilation_mode: String,
    /// Bazel's `--cpu` value for the host: `k8`, `aarch64`, `darwin_arm64`, ...
    pub cpu: String,
    /// The host platform's constraint values, one per setting: `(setting, value)`.
    pub constraints: Vec<(Label, Label)>,
}

fn platforms(package: &str, name: &str) -> Label {
    Label {
        repo: "platforms".into(),
        package: package.into(),
        name: name.into(),
    }
}

impl Configuration {
    /// The configuration of a build on this machine, for this machine.
    pub fn host(config: &AnalysisConfig) -> Configuration {
        let (os, arch) = (std::env::consts::OS, std::env::consts::ARCH);
        let cpu_value = match arch {
            "x86" => "x86_32",
            "powerpc64" => "ppc",
            other => other,
        };
        let cpu = match (os, arch) {
            ("macos", "aarch64") => "darwin_arm64".to_owned(),
            ("macos", a) => format!("darwin_{a}"),
            ("windows", "x86_64") => "x64_windows".to_owned(),
            (_, "x86_64") => "k8".to_owned(),
            (_, a) => a.to_owned(),
        };
        Configuration {
            defines: config.defines.clone(),
            compilation_mode: "fastbuild".into(),
            cpu,
            constraints: vec![
                (platforms("os", "os"), platforms("os", os)),
                (platforms("cpu", "cpu"), platforms("cpu", cpu_value)),
            ],
        }
    }

    fn option(&self, key: &str) -> Option<&str> {
        match key {
            "compilation_mode" => Some(&self.compilation_mode),
            "cpu" | "host_cpu" => Some(&self.cpu),
            _ => None,
        }
    }
}

/// Every condition of the build, decided once.
pub struct Settings {
    conditions: HashMap<Label, Result<Condition, String>>,
}

fn is_builtin(rule: &RuleTarget, class: &str) -> bool {
    rule.class == class && rule.defined_in.starts_with("@prelude//")
}

/// Follows `alias` targets to what they stand for.
fn unalias<'g>(graph: &'g TargetGraph, label: &Label) -> Result<(Label, &'g Target), String> {
    let mut current = label.clone();
    for _ in 0..32 {
        let target = graph
            .target(&current)
            .ok_or_else(|| format!("'{current}' is not loaded"))?;
        match target.rule() {
            Some(r) if is_builtin(r, "alias") => match r.attrs.get("actual") {
                Some(AttrValue::Label(next)) => current = next.clone(),
                _ => return Err(format!("alias '{current}' has no label in 'actual'")),
            },
            _ => return Ok((current, target)),
        }
    }
    Err(format!("'{label}' is an alias chain that does not end"))
}

fn string_dict<'r>(rule: &'r RuleTarget, attr: &str) -> Result<&'r [(String, String)], String> {
    match rule.attrs.get(attr) {
        Some(AttrValue::StringDict(kv)) => Ok(kv),
        None => Ok(&[]),
        Some(_) => Err(format!("attribute '{attr}' is not configurable")),
    }
}

impl Settings {
    /// Decides every `config_setting` and `constraint_value` loaded in `graph`.
    pub fn new(graph: &TargetGraph, config: &AnalysisConfig) -> Settings {
        let configuration = Configuration::host(config);
        let conditions = graph
            .targets()
            .filter(|t| {
                t.rule().is_some_and(|r| {
                    is_builtin(r, "config_setting") || is_builtin(r, "constraint_value")
                })
            })
            .map(|t| (t.label.clone(), evaluate(graph, &configuration, t)))
            .collect();
        Settings { conditions }
    }

    fn condition(&self, graph: &TargetGraph, label: &Label) -> Result<&Condition, String> {
        // Aliases are followed, so `@platforms//cpu:arm64` works as a key.
        let (resolved, target) = unalias(graph, label)?;
        match self.conditions.get(&resolved) {
            Some(Ok(c)) => Ok(c),
            Some(Err(e)) => Err(format!("in select() condition '{label}': {e}")),
            None => Err(format!(
                "'{label}' is not a valid select() condition: it is a {}, but a condition must \
                 be a config_setting, a constraint_value or '//conditions:default'",
                target.kind_name()
            )),
        }
    }

    /// `rule`'s attributes with every select resolved. Borrowed when there is none.
    pub fn resolve<'r>(
        &self,
        graph: &TargetGraph,
        target: &Target,
        rule: &'r RuleTarget,
    ) -> Result<Cow<'r, RuleTarget>, String> {
        if !rule
            .attrs
            .values()
            .any(|v| matches!(v, AttrValue::Select(_)))
        {
            return Ok(Cow::Borrowed(rule));
        }
        let mut resolved = rule.clone();
        for (name, value) in resolved.attrs.iter_mut() {
            if let AttrValue::Select(select) = value {
                *value = self.resolve_select(graph, target, name, select)?;
            }
        }
        Ok(Cow::Owned(resolved))
    }

    fn resolve_select(
        &self,
        graph: &TargetGraph,
        target: &Target,
        attr: &str,
        select: &Select,
    ) -> Result<AttrValue, String> {
        let mut values = Vec::with_capacity(select.parts.len());
        for part in &select.parts {
            values.push(match part {
                SelectPart::Plain(v) => v.clone(),
                SelectPart::Selector(s) => self.choose(graph, target, attr, s)?.clone(),
            });
        }
        concat(attr, values)
    }

    /// The branch of one selector this configuration takes, by Bazel's rules.
    fn choose<'s>(
        &self,
        graph: &TargetGraph,
        target: &Target,
        attr: &str,
        selector: &'s Selector,
    ) -> Result<&'s AttrValue, String> {
        let mut matched: Vec<(&Label, &Condition, &AttrValue)> = Vec::new();
        let mut default = None;
        for (label, value) in &selector.conditions {
            if is_default_condition(label) {
                default = Some(value);
                continue;
            }
            let condition = self.condition(graph, label)?;
            if condition.matches {
                matched.push((label, condition, value));
            }
        }
        // A match refined by another (its requirements a strict subset) steps aside.
        let winners: Vec<_> = matched
            .iter()
            .filter(|(_, c, _)| {
                !matched.iter().any(|(_, other, _)| {
                    other.requirements.len() > c.requirements.len()
                        && c.requirements.is_subset(&other.requirements)
                })
            })
            .collect();
        match winners.as_slice() {
            [] => default.ok_or_else(|| {
                let target = &target.label;
                match &selector.no_match_error {
                    Some(msg) => format!(
                        "configurable attribute \"{attr}\" in {target} doesn't match this \
                         configuration: {msg}"
                    ),
                    None => {
                        let checked: String = selector
                            .conditions
                            .iter()
                            .map(|(l, _)| format!("\n  {l}"))
                            .collect();
                        format!(
                            "configurable attribute \"{attr}\" in {target} doesn't match this \
                             configuration (would a default condition help?).\n\
                             Conditions checked:{checked}"
                        )
                    }
                }
            }),
            [(_, _, first), rest @ ..] if rest.iter().all(|(_, _, v)| v == first) => Ok(first),
            _ => {
                let labels: String = winners.iter().map(|(l, _, _)| format!("\n  {l}")).collect();
                Err(format!(
                    "illegal ambiguous match on configurable attribute \"{attr}\" in {}:{labels}\n\
                     Multiple matches are not allowed unless one is unambiguously more \
                     specialized or they resolve to the same value.",
                    target.label
                ))
            }
        }
    }
}

/// Joins the resolved parts of `a + select(...) + ...`.
fn concat(attr: &str, values: Vec<AttrValue>) -> Result<AttrValue, String> {
    let mut values = values.into_iter();
    let mut acc = values.next().unwrap_or(AttrValue::None);
    for next in values {
        acc = match (acc, next) {
            (AttrValue::String(mut a), AttrValue::String(b)) => {
                a.push_str(&b);
                AttrValue::String(a)
            }
            (AttrValue::StringList(mut a), AttrValue::StringList(b)) => {
                a.extend(b);
                AttrValue::StringList(a)
            }
            (AttrValue::LabelList(mut a), AttrValue::LabelList(b)) => {
                for l in b {
                    if a.contains(&l) {
                        return Err(format!(
                            "label '{l}' is duplicated in attribute '{attr}' after resolving select()"
                        ));
                    }
                    a.push(l);
                }
                AttrValue::LabelList(a)
            }
            (AttrValue::StringDict(mut a), AttrValue::StringDict(b)) => {
                for (k, v) in b {
                    a.retain(|(x, _)| *x != k);
                    a.push((k, v));
                }
                AttrValue::StringDict(a)
            }
            (AttrValue::LabelKeyedStringDict(mut a), AttrValue::LabelKeyedStringDict(b)) => {
                for (k, v) in b {
                    a.retain(|(x, _)| *x != k);
                    a.push((k, v));
                }
                AttrValue::LabelKeyedStringDict(a)
            }
            (a, b) => {
                return Err(format!(
                    "attribute '{attr}': cannot concatenate {} and {}",
                    a.display(),
                    b.display()
                ));
            }
        };
    }
    Ok(acc)
}

/// Decides one `config_setting` or `constraint_value` target.
fn evaluate(
    graph: &TargetGraph,
    configuration: &Configuration,
    target: &Target,
) -> Result<Condition, String> {
    let TargetKind::Rule(rule) = &target.kind else {
        unreachable!("only rules are conditions")
    };
    if is_builtin(rule, "constraint_value") {
        return Ok(Condition {
            matches: has_constraint(graph, configuration, &target.label)?,
            requirements: BTreeSet::from([Requirement::Constraint(target.label.clone())]),
        });
    }
    let mut requirements = BTreeSet::new();
    let mut matches = true;
    for (key, value) in string_dict(rule, "values")? {
        let requirement = if key == "define" {
            let (name, v) = value.split_once('=').ok_or_else(|| {
                format!("values: 'define' must be given as NAME=VALUE, got '{value}'")
            })?;
            Requirement::Define(name.to_owned(), v.to_owned())
        } else {
            match configuration.option(key) {
                Some(actual) => {
                    matches &= actual == value;
                    Requirement::Option(key.clone(), value.clone())
                }
                None => {
                    return Err(format!(
                        "values: '{key}' is not a build option forge knows; use 'define', \
                         'compilation_mode' or 'cpu'"
                    ));
                }
            }
        };
        requirements.insert(requirement);
    }
    for (name, value) in string_dict(rule, "define_values")? {
        requirements.insert(Requirement::Define(name.clone(), value.clone()));
    }
    for r in &requirements {
        if let Requirement::Define(name, value) = r {
            matches &= configuration.defines.get(name) == Some(value);
        }
    }
    match rule.attrs.get("constraint_values") {
        Some(AttrValue::LabelList(labels)) => {
            for l in labels {
                let (resolved, _) = unalias(graph, l)?;
                matches &= has_constraint(graph, configuration, &resolved)?;
                requirements.insert(Requirement::Constraint(resolved));
            }
        }
        None => {}
        Some(_) => return Err("attribute 'constraint_values' is not configurable".into()),
    }
    if !string_dict(rule, "flag_values")?.is_empty() {
        return Err("flag_values is not supported by forge yet".into());
    }
    if requirements.is_empty() {
        return Err(format!(
            "config_setting '{}' tests nothing: give at least one of values, define_values or \
             constraint_values",
            target.label
        ));
    }
    Ok(Condition {
        matches,
        requirements,
    })
}

/// Whether the host platform has the constraint value `value` (an unaliased label).
fn has_constraint(
    graph: &TargetGraph,
    configuration: &Configuration,
    value: &Label,
) -> Result<bool, String> {
    let target = graph
        .target(value)
        .ok_or_else(|| format!("'{value}' is not loaded"))?;
    let setting = match target.rule() {
        Some(r) if is_builtin(r, "constraint_value") => match r.attrs.get("constraint_setting") {
            Some(AttrValue::Label(s)) => unalias(graph, s)?.0,
            _ => {
                return Err(format!(
                    "constraint_value '{value}' has no constraint_setting"
                ));
            }
        },
        _ => {
            return Err(format!(
                "'{value}' in constraint_values is a {}, not a constraint_value",
                target.kind_name()
            ));
        }
    };
    if let Some((_, host)) = configuration
        .constraints
        .iter()
        .find(|(s, _)| *s == setting)
    {
        return Ok(host == value);
    }
    // A setting the host platform does not name takes its default value, if it has one.
    let default = graph.target(&setting).and_then(Target::rule).and_then(|r| {
        match r.attrs.get("default_constraint_value") {
            Some(AttrValue::Label(d)) => Some(d.clone()),
            _ => None,
        }
    });
    Ok(match default {
        Some(d) => unalias(graph, &d)?.0 == *value,
        None => false,
    })
}

//! Conditions: a `config_setting` or `constraint_value` target and the build configuration
//! in, whether the configuration matches it and what it requires of the configuration out
//! (the requirements decide Bazel's "most specialised condition wins" rule).

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use super::configuration::BuildOptions;
use crate::core::Label;
use crate::graph::TargetGraph;
use crate::loading::{AttrValue, RuleTarget, Target, TargetKind};

/// An `alias` chain that does not lead to a target.
#[derive(Clone, Debug, Error)]
pub(super) enum AliasError {
    #[error("'{0}' is not loaded")]
    NotLoaded(Label),
    #[error("alias '{0}' has no label in 'actual'")]
    NoActual(Label),
    #[error("'{0}' is an alias chain that does not end")]
    Endless(Label),
}

/// Why a condition target cannot be decided. Kept per condition and reported for each
/// select() that uses it, hence `Clone`.
#[derive(Clone, Debug, Error)]
pub(super) enum ConditionError {
    #[error(transparent)]
    Alias(#[from] AliasError),
    #[error("attribute '{0}' is not configurable")]
    NotConfigurable(&'static str),
    #[error("values: 'define' must be given as NAME=VALUE, got '{0}'")]
    DefineWithoutValue(String),
    #[error(
        "values: '{0}' is not a build option forge knows; use one of {known}",
        known = KNOWN_OPTIONS.join(", ")
    )]
    UnknownOption(String),
    #[error(
        "values: '{value}' is not a valid value for the boolean option '{option}'; use \
         '1' or '0' (or true/false, yes/no)"
    )]
    NotABoolean { option: String, value: String },
    #[error("flag_values: '{label}' is a {kind}, not a build setting")]
    NotABuildSetting { label: Label, kind: String },
    #[error("flag_values: '{value}' is not a value of '{label}': {why}")]
    NotASettingValue {
        label: Label,
        value: String,
        why: String,
    },
    #[error(
        "config_setting '{0}' tests nothing: give at least one of values, define_values, \
         flag_values or constraint_values"
    )]
    TestsNothing(Label),
    #[error("'{0}' is not loaded")]
    ConstraintNotLoaded(Label),
    #[error("constraint_value '{0}' has no constraint_setting")]
    NoConstraintSetting(Label),
    #[error("'{label}' in constraint_values is a {kind}, not a constraint_value")]
    NotAConstraintValue { label: Label, kind: String },
}

/// The build options `config_setting(values = ...)` can test (besides `define`).
const KNOWN_OPTIONS: &[&str] = &[
    "define",
    "compilation_mode",
    "cpu",
    "host_compilation_mode",
    "host_cpu",
    "stamp",
    "features",
];

/// One thing a condition requires of the configuration. A condition whose requirements are
/// a superset of another's is more specialised, and wins when both match.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(super) enum Requirement {
    /// `--define NAME=VALUE` (from `values = {"define": ...}` or `define_values`).
    Define(String, String),
    /// A build option in `values` (`compilation_mode`, `cpu`, `stamp`, ...), with the value
    /// as the option reads it (a boolean as `1` or `0`).
    Option(String, String),
    /// The platform has this constraint value.
    Constraint(Label),
    /// A build setting has this value (`flag_values`).
    Flag(Label, String),
}

/// What a condition target means in this configuration.
#[derive(Clone, Debug)]
pub(super) struct Condition {
    pub matches: bool,
    pub requirements: BTreeSet<Requirement>,
}

/// The build options `config_setting(values = ...)` can test, with this build's values.
#[derive(Clone, Debug)]
pub struct Configuration {
    pub defines: BTreeMap<String, String>,
    pub compilation_mode: String,
    /// Bazel's `--cpu`: the host's (`k8`, `aarch64`, `darwin_arm64`, ...) unless given.
    pub cpu: String,
    /// The host's `--cpu` name, whatever `--cpu` says.
    pub host_cpu: String,
    /// `--stamp`.
    pub stamp: bool,
    /// `--features`.
    pub features: Vec<String>,
    /// The target platform's constraint values, one per setting: `(setting, value)`.
    pub constraints: Vec<(Label, Label)>,
    /// The build settings the command line sets (the others have their defaults).
    pub build_settings: BTreeMap<Label, AttrValue>,
}

impl Configuration {
    /// The conditions' view of a configuration's options, building for `platform`.
    pub fn of(config: &BuildOptions, platform: &super::platforms::Platform) -> Configuration {
        Configuration {
            defines: config.defines.clone(),
            compilation_mode: config.compilation_mode.clone(),
            cpu: config.cpu.clone(),
            host_cpu: crate::core::layout::host_cpu(),
            stamp: config.stamp,
            features: config.features.clone(),
            build_settings: config.build_settings.clone(),
            constraints: platform.constraints.clone().into_iter().collect(),
        }
    }

    /// The value of the build option `key` and the value `wanted` as that option reads it
    /// (booleans as `1` or `0`), or why `key = wanted` cannot be tested.
    fn option(&self, key: &str, wanted: &str) -> Result<(String, String), ConditionError> {
        let boolean = |actual: bool| -> Result<(String, String), ConditionError> {
            let wanted = parse_boolean(wanted).ok_or_else(|| ConditionError::NotABoolean {
                option: key.to_owned(),
                value: wanted.to_owned(),
            })?;
            let bit = |b: bool| if b { "1" } else { "0" }.to_owned();
            Ok((bit(actual), bit(wanted)))
        };
        let text = |actual: &str| Ok((actual.to_owned(), wanted.to_owned()));
        match key {
            "compilation_mode" => text(&self.compilation_mode),
            // Bazel's default for `--host_compilation_mode`; forge has no flag to change it.
            "host_compilation_mode" => text("opt"),
            "cpu" => text(&self.cpu),
            "host_cpu" => text(&self.host_cpu),
            "stamp" => boolean(self.stamp),
            // A list option matches when it holds the value, as in Bazel.
            "features" => Ok(match self.features.iter().any(|f| f == wanted) {
                true => (wanted.to_owned(), wanted.to_owned()),
                false => (String::new(), wanted.to_owned()),
            }),
            _ => Err(ConditionError::UnknownOption(key.to_owned())),
        }
    }
}

/// A boolean option's value as Bazel's converter reads it.
pub(super) fn parse_boolean(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "t" | "y" => Some(true),
        "0" | "false" | "no" | "f" | "n" => Some(false),
        _ => None,
    }
}

pub(super) fn is_builtin(rule: &RuleTarget, class: &str) -> bool {
    rule.class == class && rule.defined_in.starts_with("@prelude//")
}

/// Follows `alias` targets to what they stand for.
pub(super) fn unalias<'g>(
    graph: &'g TargetGraph,
    label: &Label,
) -> Result<(Label, &'g Target), AliasError> {
    let mut current = label.clone();
    for _ in 0..32 {
        let Some(target) = graph.target(&current) else {
            return Err(AliasError::NotLoaded(current));
        };
        match target.rule() {
            Some(r) if is_builtin(r, "alias") => match r.attrs.get("actual") {
                Some(AttrValue::Label(next)) => current = next.clone(),
                _ => return Err(AliasError::NoActual(current)),
            },
            _ => return Ok((current, target)),
        }
    }
    Err(AliasError::Endless(label.clone()))
}

fn string_dict<'r>(
    rule: &'r RuleTarget,
    attr: &'static str,
) -> Result<&'r [(String, String)], ConditionError> {
    match rule.attrs.get(attr) {
        Some(AttrValue::StringDict(kv)) => Ok(kv),
        None => Ok(&[]),
        Some(_) => Err(ConditionError::NotConfigurable(attr)),
    }
}

/// Decides one `config_setting` or `constraint_value` target.
pub(super) fn evaluate(
    graph: &TargetGraph,
    configuration: &Configuration,
    target: &Target,
) -> Result<Condition, ConditionError> {
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
            let (name, v) = value
                .split_once('=')
                .ok_or_else(|| ConditionError::DefineWithoutValue(value.clone()))?;
            Requirement::Define(name.to_owned(), v.to_owned())
        } else {
            let (actual, wanted) = configuration.option(key, value)?;
            matches &= actual == wanted;
            Requirement::Option(key.clone(), wanted)
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
        Some(_) => return Err(ConditionError::NotConfigurable("constraint_values")),
    }
    match rule.attrs.get("flag_values") {
        Some(AttrValue::LabelKeyedStringDict(entries)) => {
            for (l, wanted) in entries {
                let (resolved, setting) = unalias(graph, l)?;
                let rule = setting.rule().filter(|r| r.build_setting.is_some());
                let value = rule.and_then(|r| {
                    super::build_settings::value_of(&configuration.build_settings, &resolved, r)
                });
                let (Some(rule), Some(value)) = (rule, value) else {
                    return Err(ConditionError::NotABuildSetting {
                        label: resolved,
                        kind: setting.kind_name(),
                    });
                };
                matches &=
                    super::build_settings::has_value(rule, &value, wanted).map_err(|why| {
                        ConditionError::NotASettingValue {
                            label: resolved.clone(),
                            value: wanted.clone(),
                            why,
                        }
                    })?;
                requirements.insert(Requirement::Flag(resolved, wanted.clone()));
            }
        }
        None => {}
        Some(_) => return Err(ConditionError::NotConfigurable("flag_values")),
    }
    if requirements.is_empty() {
        return Err(ConditionError::TestsNothing(target.label.clone()));
    }
    Ok(Condition {
        matches,
        requirements,
    })
}

/// Whether the target platform has the constraint value `value` (an unaliased label).
fn has_constraint(
    graph: &TargetGraph,
    configuration: &Configuration,
    value: &Label,
) -> Result<bool, ConditionError> {
    let target = graph
        .target(value)
        .ok_or_else(|| ConditionError::ConstraintNotLoaded(value.clone()))?;
    let setting = match target.rule() {
        Some(r) if is_builtin(r, "constraint_value") => match r.attrs.get("constraint_setting") {
            Some(AttrValue::Label(s)) => unalias(graph, s)?.0,
            _ => return Err(ConditionError::NoConstraintSetting(value.clone())),
        },
        _ => {
            return Err(ConditionError::NotAConstraintValue {
                label: value.clone(),
                kind: target.kind_name(),
            });
        }
    };
    if let Some((_, host)) = configuration
        .constraints
        .iter()
        .find(|(s, _)| *s == setting)
    {
        return Ok(host == value);
    }
    // A setting the target platform does not name takes its default value, if it has one.
    let default = super::platforms::default_value(graph, &setting);
    Ok(match default {
        Some(d) => unalias(graph, &d)?.0 == *value,
        None => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configuration(stamp: bool) -> Configuration {
        let output = crate::core::layout::OutputConfiguration {
            cpu: crate::core::layout::host_cpu(),
            compilation_mode: "fastbuild".into(),
        };
        Configuration::of(
            &BuildOptions::top_level(
                &output,
                BTreeMap::new(),
                stamp,
                BTreeMap::new(),
                Default::default(),
            ),
            &crate::analysis::platforms::machine_platform(),
        )
    }

    #[test]
    fn stamp_is_a_boolean_option_read_as_bazel_reads_it() {
        for wanted in ["1", "true", "True", "yes", "t", "y"] {
            assert_eq!(
                configuration(true).option("stamp", wanted).unwrap(),
                ("1".to_owned(), "1".to_owned()),
                "{wanted}"
            );
        }
        for wanted in ["0", "false", "FALSE", "no", "f", "n"] {
            assert_eq!(
                configuration(true).option("stamp", wanted).unwrap(),
                ("1".to_owned(), "0".to_owned()),
                "{wanted}"
            );
        }
        assert_eq!(
            configuration(false).option("stamp", "0").unwrap(),
            ("0".to_owned(), "0".to_owned())
        );
        assert!(matches!(
            configuration(false).option("stamp", "2"),
            Err(ConditionError::NotABoolean { .. })
        ));
    }

    #[test]
    fn text_options_compare_as_written_and_unknown_ones_are_refused() {
        let c = configuration(false);
        assert_eq!(
            c.option("compilation_mode", "opt").unwrap(),
            ("fastbuild".to_owned(), "opt".to_owned())
        );
        assert_eq!(c.option("host_compilation_mode", "opt").unwrap().0, "opt");
        assert_eq!(c.option("host_cpu", "x").unwrap().0, c.cpu);
        let error = c.option("copt", "-O2").unwrap_err();
        assert!(matches!(error, ConditionError::UnknownOption(ref o) if o == "copt"));
        assert!(error.to_string().ends_with(
            "use one of define, compilation_mode, cpu, host_compilation_mode, host_cpu, stamp, features"
        ));
    }
}

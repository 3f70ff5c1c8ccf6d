//! Configured attributes: the conditions of the build (`Settings`) and a target's loaded
//! attributes in, the same attributes with every `select()` replaced by the branch the
//! configuration takes out.
//!
//! `Settings` is computed once per configuration: it decides every `config_setting` and
//! `constraint_value` target in the graph (see `conditions`). Resolving a target's
//! attributes is then a lookup per select key.

use std::borrow::Cow;
use std::collections::HashMap;

use thiserror::Error;

use super::conditions::{
    AliasError, Condition, ConditionError, Configuration, evaluate, is_builtin, unalias,
};
use super::configuration::Config;
use crate::core::Label;
use crate::graph::TargetGraph;
use crate::loading::{
    AttrValue, RuleTarget, Select, SelectPart, Selector, Target, is_default_condition,
};

/// Why a target's `select()`s cannot be resolved in this configuration.
///
/// Boxed: it is rare, and a `Result` that may hold it stays small on the path that succeeds.
#[derive(Debug, Error)]
#[error(transparent)]
pub struct SelectError(Box<SelectErrorKind>);

impl<K: Into<SelectErrorKind>> From<K> for SelectError {
    fn from(kind: K) -> Self {
        SelectError(Box::new(kind.into()))
    }
}

/// What went wrong, inside a `SelectError`.
#[derive(Debug, Error)]
pub enum SelectErrorKind {
    #[error(transparent)]
    Alias(#[from] AliasError),
    #[error("in select() condition '{label}': {error}")]
    Condition { label: Label, error: ConditionError },
    #[error(
        "'{label}' is not a valid select() condition: it is a {kind}, but a condition must \
         be a config_setting, a constraint_value or '//conditions:default'"
    )]
    NotACondition { label: Label, kind: String },
    /// No condition matched and there is no default; `message` is the select's
    /// `no_match_error`.
    #[error(
        "configurable attribute \"{attr}\" in {target} doesn't match this configuration: {message}"
    )]
    NoMatchWithMessage {
        attr: String,
        target: Label,
        message: String,
    },
    #[error(
        "configurable attribute \"{attr}\" in {target} doesn't match this \
         configuration (would a default condition help?).\n\
         Conditions checked:{}",
        indented_lines(checked)
    )]
    NoMatch {
        attr: String,
        target: Label,
        checked: Vec<Label>,
    },
    #[error(
        "illegal ambiguous match on configurable attribute \"{attr}\" in {target}:{}\n\
         Multiple matches are not allowed unless one is unambiguously more \
         specialized or they resolve to the same value.",
        indented_lines(matches)
    )]
    Ambiguous {
        attr: String,
        target: Label,
        matches: Vec<Label>,
    },
    #[error("label '{label}' is duplicated in attribute '{attr}' after resolving select()")]
    DuplicateLabel { label: Label, attr: String },
    #[error("attribute '{attr}': cannot concatenate {left} and {right}")]
    CannotConcatenate {
        attr: String,
        left: String,
        right: String,
    },
}

/// Each label on a line of its own, indented by two spaces.
fn indented_lines(labels: &[Label]) -> String {
    labels.iter().map(|l| format!("\n  {l}")).collect()
}

/// Every condition of one configuration, decided once.
pub struct Settings {
    conditions: HashMap<Label, Result<Condition, ConditionError>>,
    /// The command line's build settings: a `label_flag` set there names another target.
    build_settings: std::collections::BTreeMap<Label, AttrValue>,
}

impl Settings {
    /// Decides every `config_setting` and `constraint_value` loaded in `graph`, for a
    /// configuration building for `platform`.
    pub fn new(
        graph: &TargetGraph,
        config: &Config,
        platform: &super::platforms::Platform,
    ) -> Settings {
        let configuration = Configuration::of(config.options(), platform);
        let conditions = graph
            .targets()
            .filter(|t| {
                t.rule().is_some_and(|r| {
                    is_builtin(r, "config_setting") || is_builtin(r, "constraint_value")
                })
            })
            .map(|t| (t.label.clone(), evaluate(graph, &configuration, t)))
            .collect();
        Settings {
            conditions,
            build_settings: config.options().build_settings.clone(),
        }
    }

    fn condition(&self, graph: &TargetGraph, label: &Label) -> Result<&Condition, SelectError> {
        // Aliases are followed, so `@platforms//cpu:arm64` works as a key.
        let (resolved, target) = self.configured_unalias(graph, label)?;
        match self.conditions.get(&resolved) {
            Some(Ok(c)) => Ok(c),
            Some(Err(error)) => Err(SelectErrorKind::Condition {
                label: label.clone(),
                error: error.clone(),
            }
            .into()),
            None => Err(SelectErrorKind::NotACondition {
                label: label.clone(),
                kind: target.kind_name(),
            }
            .into()),
        }
    }

    /// Follows `alias` targets as `unalias` does, an alias whose `actual` is a select()
    /// taking the branch this configuration chooses (skylib's `config_setting_group` is a
    /// chain of such aliases).
    fn configured_unalias<'g>(
        &self,
        graph: &'g TargetGraph,
        label: &Label,
    ) -> Result<(Label, &'g Target), SelectError> {
        let mut current = label.clone();
        for _ in 0..32 {
            let (resolved, target) = match unalias(graph, &current) {
                Ok(found) => return Ok(found),
                Err(AliasError::NoActual(at)) => {
                    let target = graph.target(&at).ok_or(AliasError::NotLoaded(at.clone()))?;
                    (at, target)
                }
                Err(e) => return Err(e.into()),
            };
            let select = match target.rule().and_then(|r| r.attrs.get("actual")) {
                Some(AttrValue::Select(select)) => select,
                _ => return Err(AliasError::NoActual(resolved).into()),
            };
            match self.resolve_select(graph, target, "actual", select)? {
                AttrValue::Label(next) => current = next,
                _ => return Err(AliasError::NoActual(resolved).into()),
            }
        }
        Err(AliasError::Endless(label.clone()).into())
    }

    /// `rule`'s attributes with every select resolved. Borrowed when there is none.
    pub fn resolve<'r>(
        &self,
        graph: &TargetGraph,
        target: &Target,
        rule: &'r RuleTarget,
    ) -> Result<Cow<'r, RuleTarget>, SelectError> {
        if let Some(chosen) = self.chosen_target(&target.label) {
            let mut chosen_rule = rule.clone();
            chosen_rule
                .attrs
                .insert("build_setting_default", AttrValue::Label(chosen.clone()));
            return Ok(Cow::Owned(chosen_rule));
        }
        if !rule
            .attrs
            .values()
            .any(|v| matches!(v, AttrValue::Select(_)))
        {
            return Ok(Cow::Borrowed(rule));
        }
        let mut resolved = rule.clone();
        for (name, value) in &rule.attrs {
            if let AttrValue::Select(select) = value {
                let value = self.resolve_select(graph, target, name, select)?;
                resolved.attrs.insert(name, value);
            }
        }
        Ok(Cow::Owned(resolved))
    }

    /// The target the command line chose for the `label_flag` `label`, if it chose one.
    pub fn chosen_target(&self, label: &Label) -> Option<&Label> {
        super::build_settings::chosen_target(&self.build_settings, label)
    }

    fn resolve_select(
        &self,
        graph: &TargetGraph,
        target: &Target,
        attr: &str,
        select: &Select,
    ) -> Result<AttrValue, SelectError> {
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
    ) -> Result<&'s AttrValue, SelectError> {
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
                let (attr, target) = (attr.to_owned(), target.label.clone());
                let kind = match &selector.no_match_error {
                    Some(message) => SelectErrorKind::NoMatchWithMessage {
                        attr,
                        target,
                        message: message.clone(),
                    },
                    None => SelectErrorKind::NoMatch {
                        attr,
                        target,
                        checked: selector.conditions.iter().map(|(l, _)| l.clone()).collect(),
                    },
                };
                kind.into()
            }),
            [(_, _, first), rest @ ..] if rest.iter().all(|(_, _, v)| v == first) => Ok(first),
            _ => Err(SelectErrorKind::Ambiguous {
                attr: attr.to_owned(),
                target: target.label.clone(),
                matches: winners.iter().map(|(l, _, _)| (*l).clone()).collect(),
            }
            .into()),
        }
    }
}

/// Joins the resolved parts of `a + select(...) + ...`.
fn concat(attr: &str, values: Vec<AttrValue>) -> Result<AttrValue, SelectError> {
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
                        return Err(SelectErrorKind::DuplicateLabel {
                            label: l,
                            attr: attr.to_owned(),
                        }
                        .into());
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
                return Err(SelectErrorKind::CannotConcatenate {
                    attr: attr.to_owned(),
                    left: a.display(),
                    right: b.display(),
                }
                .into());
            }
        };
    }
    Ok(acc)
}

//! Platforms: a `platform` target of the graph in, its constraint values (one per
//! constraint_setting, its parent's merged under its own) out; and whether a platform
//! satisfies a list of constraint values, a setting it does not name taking the setting's
//! `default_constraint_value`.

use std::collections::BTreeMap;

use thiserror::Error;

use super::conditions::{AliasError, is_builtin, unalias};
use crate::core::Label;
use crate::graph::TargetGraph;
use crate::loading::{AttrValue, RuleTarget, Target};

/// The label of the platform of the machine forge runs on.
pub fn host_platform_label() -> Label {
    Label {
        repo: "local_config_platform".into(),
        package: String::new(),
        name: "host".into(),
    }
}

/// Why a platform or a constraint cannot be read.
#[derive(Clone, Debug, Error)]
pub enum PlatformError {
    /// An alias chain that does not lead to a target (the alias error's text).
    #[error("{0}")]
    Alias(String),
    #[error("'{label}' is a {kind}, not a platform")]
    NotAPlatform { label: Label, kind: String },
    #[error("'{label}' is a {kind}, not a constraint_value")]
    NotAConstraintValue { label: Label, kind: String },
    #[error("constraint_value '{0}' has no constraint_setting")]
    NoConstraintSetting(Label),
    /// `values`: `'<setting>': '<first>' and '<second>'`.
    #[error("platform '{platform}' has more than one value for the constraint_setting {values}")]
    DuplicateSetting { platform: Label, values: String },
    #[error("platform '{0}' has more than one parent; Bazel 4 allows one")]
    TooManyParents(Label),
    #[error("platform '{0}' is its own ancestor")]
    ParentCycle(Label),
    #[error("platform '{0}': forge does not support select() in a platform's attributes yet")]
    Configurable(Label),
    #[error(
        "platform '{0}': forge does not support `remote_execution_properties` yet; use \
         exec_properties"
    )]
    RemoteExecutionProperties(Label),
}

impl From<AliasError> for PlatformError {
    fn from(e: AliasError) -> Self {
        PlatformError::Alias(e.to_string())
    }
}

/// A platform as resolution and select() see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub label: Label,
    /// constraint_setting -> constraint_value, both unaliased.
    pub constraints: BTreeMap<Label, Label>,
    pub exec_properties: BTreeMap<String, String>,
}

fn label_list<'r>(
    rule: &'r RuleTarget,
    attr: &str,
    platform: &Label,
) -> Result<&'r [Label], PlatformError> {
    match rule.attrs.get(attr) {
        Some(AttrValue::LabelList(l)) => Ok(l),
        None | Some(AttrValue::None) => Ok(&[]),
        Some(_) => Err(PlatformError::Configurable(platform.clone())),
    }
}

/// The constraint_value `value` names (aliases followed) and its constraint_setting.
pub fn setting_of(graph: &TargetGraph, value: &Label) -> Result<(Label, Label), PlatformError> {
    let (resolved, target) = unalias(graph, value)?;
    match target.rule() {
        Some(r) if is_builtin(r, "constraint_value") => match r.attrs.get("constraint_setting") {
            Some(AttrValue::Label(s)) => Ok((resolved, unalias(graph, s)?.0)),
            _ => Err(PlatformError::NoConstraintSetting(resolved)),
        },
        _ => Err(PlatformError::NotAConstraintValue {
            label: resolved,
            kind: target.kind_name(),
        }),
    }
}

/// The `platform` target `label` (aliases followed), with its parent's constraints.
pub fn platform(graph: &TargetGraph, label: &Label) -> Result<Platform, PlatformError> {
    platform_within(graph, label, &mut Vec::new())
}

fn platform_within(
    graph: &TargetGraph,
    label: &Label,
    seen: &mut Vec<Label>,
) -> Result<Platform, PlatformError> {
    let (resolved, target) = unalias(graph, label)?;
    let rule = match target.rule() {
        Some(r) if is_builtin(r, "platform") => r,
        _ => {
            return Err(PlatformError::NotAPlatform {
                label: resolved,
                kind: target.kind_name(),
            });
        }
    };
    if seen.contains(&resolved) {
        return Err(PlatformError::ParentCycle(resolved));
    }
    seen.push(resolved.clone());
    if matches!(rule.attrs.get("remote_execution_properties"), Some(AttrValue::String(s)) if !s.is_empty())
    {
        return Err(PlatformError::RemoteExecutionProperties(resolved));
    }
    let mut inherited = match label_list(rule, "parents", &resolved)? {
        [] => Platform {
            label: resolved.clone(),
            constraints: BTreeMap::new(),
            exec_properties: BTreeMap::new(),
        },
        [parent] => platform_within(graph, parent, seen)?,
        _ => return Err(PlatformError::TooManyParents(resolved)),
    };
    // The platform's own values replace its parent's for the same settings.
    let mut own: BTreeMap<Label, Label> = BTreeMap::new();
    for value in label_list(rule, "constraint_values", &resolved)? {
        let (value, setting) = setting_of(graph, value)?;
        if let Some(first) = own.get(&setting).filter(|first| **first != value) {
            return Err(PlatformError::DuplicateSetting {
                platform: resolved,
                values: format!("'{setting}': '{first}' and '{value}'"),
            });
        }
        own.insert(setting, value);
    }
    inherited.constraints.extend(own);
    match rule.attrs.get("exec_properties") {
        Some(AttrValue::StringDict(kv)) => inherited.exec_properties.extend(kv.iter().cloned()),
        None | Some(AttrValue::None) => {}
        Some(_) => return Err(PlatformError::Configurable(resolved)),
    }
    inherited.label = resolved;
    Ok(inherited)
}

/// The `default_constraint_value` of the constraint_setting `setting`, read against the
/// setting's package.
pub fn default_value(graph: &TargetGraph, setting: &Label) -> Option<Label> {
    let rule = graph.target(setting).and_then(Target::rule)?;
    match rule.attrs.get("default_constraint_value") {
        Some(AttrValue::String(d)) if !d.is_empty() => Label::parse(d, &setting.package_id()).ok(),
        _ => None,
    }
}

/// The platform of the machine forge runs on, from its OS and CPU, for when the graph has
/// not loaded `@local_config_platform//:host` (unit tests of analysis).
pub fn machine_platform() -> Platform {
    let (os, arch) = (std::env::consts::OS, std::env::consts::ARCH);
    let cpu = match arch {
        "x86" => "x86_32",
        "powerpc64" => "ppc",
        other => other,
    };
    let at = |package: &str, name: &str| Label {
        repo: "platforms".into(),
        package: package.into(),
        name: name.into(),
    };
    Platform {
        label: host_platform_label(),
        constraints: BTreeMap::from([
            (at("os", "os"), at("os", os)),
            (at("cpu", "cpu"), at("cpu", cpu)),
        ]),
        exec_properties: BTreeMap::new(),
    }
}

impl Platform {
    /// The value this platform has for `setting`: its own, else the setting's default.
    pub fn value_of(&self, graph: &TargetGraph, setting: &Label) -> Option<Label> {
        if let Some(v) = self.constraints.get(setting) {
            return Some(v.clone());
        }
        let default = default_value(graph, setting)?;
        unalias(graph, &default).ok().map(|(l, _)| l)
    }

    /// The first of `values` this platform does not have, if any.
    pub fn first_missing(
        &self,
        graph: &TargetGraph,
        values: &[Label],
    ) -> Result<Option<Label>, PlatformError> {
        for value in values {
            let (resolved, setting) = setting_of(graph, value)?;
            if self.value_of(graph, &setting).as_ref() != Some(&resolved) {
                return Ok(Some(resolved));
            }
        }
        Ok(None)
    }
}

/// The platforms and toolchains of a build: what `--platforms`, `--host_platform`,
/// `register_execution_platforms`, `register_toolchains` and `--extra_toolchains` gave,
/// read from the graph.
#[derive(Clone, Debug, Default)]
pub struct PlatformConfig {
    /// The target platform (`--platforms`, else the host platform); `None` in unit tests
    /// without a graph, meaning this machine.
    pub target: Option<Platform>,
    /// The execution platforms in the order resolution tries them (the registered ones,
    /// then the host platform).
    pub exec: Vec<Platform>,
    /// The `toolchain` targets, in priority order (`--extra_toolchains` first).
    pub toolchains: Vec<super::toolchains::Registered>,
}

impl PlatformConfig {
    /// The target platform: the one given, else this machine.
    pub fn target_platform(&self) -> Platform {
        self.target.clone().unwrap_or_else(machine_platform)
    }

    /// The platform a configuration builds for: the target platform, or for tools (the
    /// exec and host configurations) the host platform, which is the last execution
    /// platform resolution tries.
    pub fn platform_for(&self, kind: super::configuration::ConfigKind) -> Platform {
        match kind {
            super::configuration::ConfigKind::Target => self.target_platform(),
            _ => self.exec.last().cloned().unwrap_or_else(machine_platform),
        }
    }
}

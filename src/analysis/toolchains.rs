//! Toolchain resolution: the toolchain types a rule requests, the execution constraints of
//! the rule and target, the target platform, the execution platforms and the registered
//! `toolchain` targets in; the execution platform chosen and, per type, the target that
//! implements it out — or an error saying what each toolchain tried lacked.
//!
//! Bazel 4's algorithm: execution platforms are tried in order; the first on which every
//! mandatory type has a toolchain wins, and each type takes the first registered toolchain
//! whose `target_compatible_with` the target platform has and whose `exec_compatible_with`
//! that execution platform has. A pure function of its inputs, so that it can be asked once
//! per configured target.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use thiserror::Error;

use super::conditions::{is_builtin, unalias};
use super::platforms::{Platform, PlatformError};
use crate::core::Label;
use crate::graph::TargetGraph;
use crate::loading::{AttrValue, ToolchainRequest};

/// A registered `toolchain` target, read from the graph.
#[derive(Clone, Debug)]
pub struct Registered {
    /// The `toolchain` target itself.
    pub label: Label,
    /// Its `toolchain_type`, unaliased.
    pub toolchain_type: Label,
    /// The target that provides `platform_common.ToolchainInfo`.
    pub implementation: Label,
    pub exec_compatible_with: Vec<Label>,
    pub target_compatible_with: Vec<Label>,
}

/// Why a registered toolchain or the toolchains of a build cannot be read.
#[derive(Clone, Debug, Error)]
pub enum RegistrationError {
    #[error("invalid registered toolchain '{label}': it is a {kind}, not a toolchain")]
    NotAToolchain { label: Label, kind: String },
    #[error("toolchain '{label}': attribute '{attr}' {problem}")]
    Attribute {
        label: Label,
        attr: &'static str,
        problem: &'static str,
    },
    /// An alias chain to the toolchain that leads nowhere (its error's text).
    #[error("toolchain '{label}': {error}")]
    Alias { label: Label, error: String },
}

/// Reads the `toolchain` target `label` (aliases followed).
pub fn registered(graph: &TargetGraph, label: &Label) -> Result<Registered, RegistrationError> {
    let (resolved, target) = unalias(graph, label).map_err(|e| RegistrationError::Alias {
        label: label.clone(),
        error: e.to_string(),
    })?;
    let rule = match target.rule() {
        Some(r) if is_builtin(r, "toolchain") => r,
        _ => {
            return Err(RegistrationError::NotAToolchain {
                label: resolved,
                kind: target.kind_name(),
            });
        }
    };
    let attribute = |attr: &'static str, problem: &'static str| RegistrationError::Attribute {
        label: resolved.clone(),
        attr,
        problem,
    };
    let single = |attr: &'static str| match rule.attrs.get(attr) {
        Some(AttrValue::Label(l)) => Ok(l.clone()),
        Some(AttrValue::Select(_)) => Err(attribute(
            attr,
            "uses select(), which forge does not support in a toolchain yet",
        )),
        _ => Err(attribute(attr, "must name a target")),
    };
    let list = |attr: &'static str| match rule.attrs.get(attr) {
        Some(AttrValue::LabelList(l)) => Ok(l.clone()),
        None | Some(AttrValue::None) => Ok(Vec::new()),
        Some(_) => Err(attribute(
            attr,
            "uses select(), which forge does not support in a toolchain yet",
        )),
    };
    let toolchain_type = single("toolchain_type")?;
    let toolchain_type = unalias(graph, &toolchain_type)
        .map(|(l, _)| l)
        .unwrap_or(toolchain_type);
    Ok(Registered {
        toolchain_type,
        implementation: single("toolchain")?,
        exec_compatible_with: list("exec_compatible_with")?,
        target_compatible_with: list("target_compatible_with")?,
        label: resolved,
    })
}

/// What resolution chose for one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub exec_platform: Label,
    /// Requested type -> the implementation chosen (`None`: an optional type none matched).
    pub toolchains: BTreeMap<Label, Option<Label>>,
}

impl Resolved {
    /// The targets that must be analysed before the target that asked.
    pub fn implementations(&self) -> impl Iterator<Item = &Label> {
        self.toolchains.values().flatten()
    }
}

/// Why resolution found nothing; the text says what was tried, like Bazel's
/// `--toolchain_resolution_debug`.
#[derive(Clone, Debug, Error)]
pub enum ResolutionError {
    #[error("{0}")]
    Platform(#[from] PlatformError),
    #[error("{0}")]
    NoMatch(String),
}

/// Resolves `requests` for a target with the execution constraints `exec_constraints`
/// (the rule's and the target's), on `target` with `exec_platforms` tried in order.
pub fn resolve(
    graph: &TargetGraph,
    requests: &[ToolchainRequest],
    exec_constraints: &[Label],
    target: &Platform,
    exec_platforms: &[Platform],
    toolchains: &[Registered],
) -> Result<Resolved, ResolutionError> {
    let mut log = String::new();
    // The toolchains whose target constraints the target platform meets, per type.
    let mut for_target: BTreeMap<&Label, Vec<&Registered>> = BTreeMap::new();
    let requested: Vec<(Label, bool)> = requests
        .iter()
        .map(|r| {
            let t = unalias(graph, &r.toolchain_type)
                .map(|(l, _)| l)
                .unwrap_or_else(|_| r.toolchain_type.clone());
            (t, r.mandatory)
        })
        .collect();
    for (toolchain_type, _) in &requested {
        let candidates = for_target.entry(toolchain_type).or_default();
        for tc in toolchains
            .iter()
            .filter(|t| t.toolchain_type == *toolchain_type)
        {
            match target.first_missing(graph, &tc.target_compatible_with)? {
                None => candidates.push(tc),
                Some(missing) => {
                    let _ = writeln!(
                        log,
                        "  type {toolchain_type}: rejected toolchain {} (implementation {}): \
                         the target platform {} lacks {missing}",
                        tc.label, tc.implementation, target.label
                    );
                }
            }
        }
    }
    for exec in exec_platforms {
        if let Some(missing) = exec.first_missing(graph, exec_constraints)? {
            let _ = writeln!(
                log,
                "  execution platform {} skipped: the target needs {missing} of it",
                exec.label
            );
            continue;
        }
        let mut chosen = BTreeMap::new();
        let mut complete = true;
        for (toolchain_type, mandatory) in &requested {
            let mut found = None;
            for tc in &for_target[toolchain_type] {
                match exec.first_missing(graph, &tc.exec_compatible_with)? {
                    None => {
                        found = Some(tc.implementation.clone());
                        break;
                    }
                    Some(missing) => {
                        let _ = writeln!(
                            log,
                            "  type {toolchain_type}: rejected toolchain {} on execution \
                             platform {}: the platform lacks {missing}",
                            tc.label, exec.label
                        );
                    }
                }
            }
            if found.is_none() && *mandatory {
                complete = false;
                let _ = writeln!(
                    log,
                    "  execution platform {} skipped: no toolchain of type {toolchain_type} \
                     for it",
                    exec.label
                );
                break;
            }
            chosen.insert(toolchain_type.clone(), found);
        }
        if complete {
            return Ok(Resolved {
                exec_platform: exec.label.clone(),
                toolchains: chosen,
            });
        }
    }
    let types: Vec<String> = requested
        .iter()
        .filter(|(_, mandatory)| *mandatory)
        .map(|(t, _)| t.to_string())
        .collect();
    let registered: Vec<String> = toolchains
        .iter()
        .filter(|t| requested.iter().any(|(r, _)| *r == t.toolchain_type))
        .map(|t| t.label.to_string())
        .collect();
    let what = if types.is_empty() {
        format!(
            "no execution platform matches the constraints {}",
            exec_constraints
                .iter()
                .map(Label::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        format!(
            "no matching toolchains found for types {}",
            types.join(", ")
        )
    };
    Err(ResolutionError::NoMatch(format!(
        "{what} (target platform {}, execution platforms tried: {}; toolchains of these types \
         registered: {}):\n{}register a matching toolchain with register_toolchains() in \
         WORKSPACE or --extra_toolchains",
        target.label,
        exec_platforms
            .iter()
            .map(|p| p.label.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        if registered.is_empty() {
            "none".to_owned()
        } else {
            registered.join(", ")
        },
        log
    )))
}

/// Resolves the toolchains a rule target asks for (`decl`: its rule's `toolchains` and
/// `exec_compatible_with`; `rule`: its configured attributes, for the target's own
/// `exec_compatible_with`) when building for `target`; `None` when it asks nothing.
pub(super) fn resolve_for_target(
    graph: &TargetGraph,
    decl: &crate::loading::RuleDecl,
    rule: &crate::loading::RuleTarget,
    target: &Platform,
    platforms: &super::platforms::PlatformConfig,
) -> Option<Result<Resolved, ResolutionError>> {
    let mut exec_constraints = decl.exec_compatible_with.clone();
    if let Some(AttrValue::LabelList(own)) = rule.attrs.get("exec_compatible_with") {
        exec_constraints.extend(own.iter().cloned());
    }
    if decl.toolchains.is_empty() && exec_constraints.is_empty() {
        return None;
    }
    Some(resolve(
        graph,
        &decl.toolchains,
        &exec_constraints,
        target,
        &platforms.exec,
        &platforms.toolchains,
    ))
}

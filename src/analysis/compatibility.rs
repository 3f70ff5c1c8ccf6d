//! Target compatibility: the rule targets of an analysis (in dependency order), their
//! configured `target_compatible_with` and the target platform in; the targets that cannot
//! be built for that platform out, each with the dependency chain down to the constraint
//! the platform lacks. As in Bazel, a target is incompatible when the platform lacks one of
//! its own constraints or when a dependency is incompatible.

use std::collections::BTreeMap;

use super::conditions::is_builtin;
use super::configured::Settings;
use super::platforms::Platform;
use crate::core::Label;
use crate::graph::TargetGraph;
use crate::loading::{AttrValue, TargetKind};

/// Why a target cannot be built for the target platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incompatibility {
    /// From the target down to the one whose own constraint failed.
    pub chain: Vec<Label>,
    /// The constraint value the platform lacks.
    pub constraint: Label,
    pub platform: Label,
}

impl Incompatibility {
    /// Bazel's message for a target named on the command line.
    pub fn requested_message(&self) -> String {
        let mut lines = vec![format!(
            "Target {} is incompatible and cannot be built, but was explicitly requested.\n\
             Dependency chain:",
            self.chain[0]
        )];
        for (i, label) in self.chain.iter().enumerate() {
            if i + 1 == self.chain.len() {
                lines.push(format!(
                    "    {label}   <-- target platform ({}) didn't satisfy constraint {}",
                    self.platform, self.constraint
                ));
            } else {
                lines.push(format!("    {label}"));
            }
        }
        lines.join("\n")
    }
}

/// The incompatible targets among `levels` (each level after the ones it depends on).
pub(super) fn incompatible_targets(
    graph: &TargetGraph,
    settings: &Settings,
    platform: &Platform,
    levels: &[Vec<Label>],
) -> BTreeMap<Label, Incompatibility> {
    let mut found: BTreeMap<Label, Incompatibility> = BTreeMap::new();
    for label in levels.iter().flatten() {
        let Some(target) = graph.target(label) else {
            continue;
        };
        let Some(rule) = target.rule() else {
            continue;
        };
        // A toolchain's own target_compatible_with says where it may be used, not whether
        // it can be built (toolchain resolution reads it).
        if !is_builtin(rule, "toolchain") {
            // A select() that cannot be resolved is reported when the target is analysed.
            let own = match rule.attrs.get("target_compatible_with") {
                Some(AttrValue::LabelList(l)) => l.clone(),
                // Only a select() needs the target's attributes configured.
                Some(AttrValue::Select(_)) => match settings.resolve(graph, target, rule) {
                    Ok(configured) => match configured.attrs.get("target_compatible_with") {
                        Some(AttrValue::LabelList(l)) => l.clone(),
                        _ => Vec::new(),
                    },
                    Err(_) => Vec::new(),
                },
                _ => Vec::new(),
            };
            // An unreadable constraint is reported by analysis as well; it does not make the
            // target incompatible.
            if let Ok(Some(missing)) = platform.first_missing(graph, &own) {
                found.insert(
                    label.clone(),
                    Incompatibility {
                        chain: vec![label.clone()],
                        constraint: missing,
                        platform: platform.label.clone(),
                    },
                );
                continue;
            }
        }
        let dep_incompatibility = graph.deps(label).into_iter().find_map(|(_, dep)| {
            let owner = match graph.target(dep).map(|t| &t.kind) {
                Some(TargetKind::GeneratedFile { generating_rule }) => generating_rule,
                _ => dep,
            };
            found.get(owner).cloned()
        });
        if let Some(mut inherited) = dep_incompatibility {
            inherited.chain.insert(0, label.clone());
            found.insert(label.clone(), inherited);
        }
    }
    found
}

//! Target compatibility: the configured rule targets of an analysis (in dependency order),
//! their configured `target_compatible_with` and the platforms in; the targets that cannot
//! be built for that platform out, each with the dependency chain down to the constraint
//! the platform lacks. As in Bazel, a target is incompatible when the platform lacks one of
//! its own constraints or when a dependency is incompatible.

use std::collections::HashMap;

use super::conditions::is_builtin;
use super::configuration::ConfiguredLabel;
use super::configured_graph::ConfiguredGraph;
use super::platforms::PlatformConfig;
use crate::core::Label;
use crate::graph::TargetGraph;
use crate::loading::AttrValue;

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

/// The incompatible configured targets among `levels` (each level after the ones it
/// depends on), each judged against the platform its configuration builds for.
pub(super) fn incompatible_targets(
    graph: &TargetGraph,
    configured: &ConfiguredGraph,
    platforms: &PlatformConfig,
    levels: &[Vec<ConfiguredLabel>],
) -> HashMap<ConfiguredLabel, Incompatibility> {
    let mut found: HashMap<ConfiguredLabel, Incompatibility> = HashMap::new();
    for key in levels.iter().flatten() {
        let Some(loaded) = graph.target(&key.label).and_then(|t| t.rule()) else {
            continue;
        };
        let node = &configured.nodes[key];
        // A select() that cannot be resolved is reported when the target is analysed.
        let Ok(rule) = node.configured(loaded) else {
            continue;
        };
        // A toolchain's own target_compatible_with says where it may be used, not whether
        // it can be built (toolchain resolution reads it).
        if !is_builtin(rule, "toolchain")
            && let Some(AttrValue::LabelList(own)) = rule.attrs.get("target_compatible_with")
        {
            let platform = platforms.platform_for(key.config.options().kind);
            // An unreadable constraint is reported by analysis as well; it does not make
            // the target incompatible.
            if let Ok(Some(missing)) = platform.first_missing(graph, own) {
                found.insert(
                    key.clone(),
                    Incompatibility {
                        chain: vec![key.label.clone()],
                        constraint: missing,
                        platform: platform.label.clone(),
                    },
                );
                continue;
            }
        }
        let inherited = node
            .deps
            .iter()
            .find_map(|d| found.get(d.rule.as_ref()?).cloned());
        if let Some(mut inherited) = inherited {
            inherited.chain.insert(0, key.label.clone());
            found.insert(key.clone(), inherited);
        }
    }
    found
}

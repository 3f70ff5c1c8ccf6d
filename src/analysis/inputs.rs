//! Missing source files: the requested labels and the configured attributes of a target in,
//! a `missing input file` diagnostic for each source file that does not exist out.

use std::collections::BTreeSet;

use crate::core::{Diagnostic, Label};
use crate::graph::TargetGraph;
use crate::loading::{RuleTarget, Target, TargetKind};

/// The source files `target` depends on (in this configuration) that do not exist: a label
/// that names no rule and no file, as Bazel reports it (`missing input file`), with a close
/// rule name as a hint for a typo. Each check notes the file's directory, so that a reused
/// plan notices when the file goes away.
pub(super) fn missing_inputs(
    graph: &TargetGraph,
    target: &Target,
    configured: &RuleTarget,
) -> Vec<Diagnostic> {
    let mut missing = Vec::new();
    let mut seen = BTreeSet::new();
    for (name, value) in &configured.attrs {
        if name == "visibility" {
            continue;
        }
        for dep in value.dep_labels() {
            if !seen.insert(dep) {
                continue;
            }
            let Some(package) = graph.package(&dep.package_id()) else {
                continue;
            };
            if !graph
                .target(dep)
                .is_some_and(|t| matches!(t.kind, TargetKind::SourceFile))
            {
                continue;
            }
            let path = package.dir.join(&dep.name);
            if let Some(parent) = path.parent() {
                crate::workspace::fs_deps::listed(parent);
            }
            if std::fs::metadata(&path).is_ok() {
                continue;
            }
            let rules: Vec<&str> = package
                .targets
                .values()
                .filter(|t| t.rule().is_some())
                .map(|t| t.label.name.as_str())
                .collect();
            let hint = crate::core::diag::did_you_mean(&dep.name, rules.iter().copied())
                .or_else(|| swapped_neighbours(&dep.name, &rules))
                .map(|close| format!(" (did you mean '{}'?)", dep.package_id().label(&close)))
                .unwrap_or_default();
            missing.push(Diagnostic::at(
                &target.location,
                format!("{}: missing input file '{dep}'{hint}", target.label),
            ));
        }
    }
    missing
}

/// Requested source files that do not exist (`forge build //pkg:typo.txt` where a rule
/// refers to `typo.txt`).
pub(super) fn missing_roots(graph: &TargetGraph, roots: &BTreeSet<Label>) -> Vec<Diagnostic> {
    roots
        .iter()
        .filter_map(|l| {
            let target = graph
                .target(l)
                .filter(|t| matches!(t.kind, TargetKind::SourceFile))?;
            let package = graph.package(&l.package_id())?;
            let path = package.dir.join(&l.name);
            if let Some(parent) = path.parent() {
                crate::workspace::fs_deps::listed(parent);
            }
            std::fs::metadata(&path)
                .is_err()
                // The location is the BUILD line that first refers to the file.
                .then(|| Diagnostic::at(&target.location, format!("missing input file '{l}'")))
        })
        .collect()
}

/// A candidate that is `wanted` with two neighbouring characters swapped (`alpah` for
/// `alpha`), the commonest typo, which a plain edit distance counts as two edits.
fn swapped_neighbours(wanted: &str, candidates: &[&str]) -> Option<String> {
    let w: Vec<char> = wanted.chars().collect();
    candidates
        .iter()
        .find(|c| {
            let c: Vec<char> = c.chars().collect();
            c.len() == w.len()
                && (1..w.len()).any(|i| {
                    w[i - 1] == c[i]
                        && w[i] == c[i - 1]
                        && w[i] != w[i - 1]
                        && (0..w.len()).all(|j| j == i || j == i - 1 || w[j] == c[j])
                })
        })
        .map(|c| (*c).to_owned())
}

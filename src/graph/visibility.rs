//! Visibility: loaded targets in, one diagnostic per forbidden edge out, naming both targets
//! and the fix. As in Bazel 4, the conditions of a `select()` (its keys) are not checked:
//! a target may select on any `config_setting`, visible or not.

use std::collections::BTreeSet;

use super::TargetGraph;
use crate::core::{Diagnostic, Label, PackageId};
use crate::loading::{AttrValue, PackageSpec, SelectPart, Target, TargetKind};

pub(super) fn check(graph: &TargetGraph, labels: &[Label]) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    for label in labels {
        let Some(from) = graph.target(label) else {
            continue;
        };
        let conditions = select_conditions(from);
        let from_package = from.label.package_id();
        for (_, dep) in graph.deps(label) {
            if conditions.contains(dep) && !depends_on_outside_conditions(from, dep) {
                continue;
            }
            let Some(to) = graph.target(dep) else {
                continue;
            };
            if !is_visible(graph, &to.visibility, &to.label, &from_package) {
                errors.push(Diagnostic::at(
                    &from.location,
                    format!(
                        "in {} {}: target '{}' is not visible from target '{}'. \
                         If the dependency is legitimate, add '{}' (or a package_group that \
                         contains it) to the visibility of '{}' in {}",
                        from.kind_name(),
                        from.label,
                        to.label,
                        from.label,
                        visibility_entry(&from_package),
                        to.label,
                        to.location
                    ),
                ));
            }
        }
    }
    errors
}

/// The condition labels of every `select()` in the target's attributes.
fn select_conditions(target: &Target) -> BTreeSet<&Label> {
    let Some(rule) = target.rule() else {
        return BTreeSet::new();
    };
    rule.attrs
        .values()
        .filter_map(|v| match v {
            AttrValue::Select(select) => Some(select),
            _ => None,
        })
        .flat_map(|select| &select.parts)
        .filter_map(|part| match part {
            SelectPart::Selector(selector) => Some(selector),
            SelectPart::Plain(_) => None,
        })
        .flat_map(|selector| selector.conditions.iter().map(|(condition, _)| condition))
        .collect()
}

/// Whether `dep`, a select() condition of `target`, is also one of its ordinary
/// dependencies (a plain attribute value, or a value of a select branch): that edge is
/// checked like any other.
fn depends_on_outside_conditions(target: &Target, dep: &Label) -> bool {
    let Some(rule) = target.rule() else {
        return false;
    };
    rule.attrs.iter().any(|(name, value)| {
        name != "visibility"
            && match value {
                AttrValue::Select(select) => select.parts.iter().any(|part| match part {
                    SelectPart::Plain(v) => v.dep_labels().contains(&dep),
                    SelectPart::Selector(s) => s
                        .conditions
                        .iter()
                        .any(|(_, v)| v.dep_labels().contains(&dep)),
                }),
                other => other.dep_labels().contains(&dep),
            }
    })
}

fn visibility_entry(pkg: &PackageId) -> String {
    format!("{pkg}:__pkg__")
}

/// Same-package edges are always allowed; otherwise one entry of `visibility` must admit
/// the depending package.
fn is_visible(graph: &TargetGraph, visibility: &[Label], target: &Label, from: &PackageId) -> bool {
    // Compared field by field: this runs for every edge of the graph.
    if target.repo == from.repo && target.package == from.package {
        return true;
    }
    visibility
        .iter()
        .any(|v| admits(graph, v, from, &mut BTreeSet::new()))
}

/// Whether the loaded `target` may be a dependency of targets in package `from`.
pub(super) fn visible_from(graph: &TargetGraph, target: &Label, from: &PackageId) -> bool {
    match graph.target(target) {
        Some(to) => is_visible(graph, &to.visibility, target, from),
        None => false,
    }
}

/// `//visibility:*`, `__pkg__` and `__subpackages__` entries name no target.
pub(super) fn is_special(entry: &Label) -> bool {
    (entry.repo.is_empty() && entry.package == "visibility")
        || matches!(entry.name.as_str(), "__pkg__" | "__subpackages__")
}

fn admits(
    graph: &TargetGraph,
    entry: &Label,
    from: &PackageId,
    seen: &mut BTreeSet<Label>,
) -> bool {
    if entry.repo.is_empty() && entry.package == "visibility" {
        return entry.name == "public";
    }
    match entry.name.as_str() {
        "__pkg__" => entry.package_id() == *from,
        "__subpackages__" => from.is_within(&entry.package_id()),
        _ => {
            if !seen.insert(entry.clone()) {
                return false;
            }
            let Some(group) = graph.target(entry) else {
                return false;
            };
            let TargetKind::PackageGroup(group) = &group.kind else {
                return false;
            };
            group.packages.iter().any(|spec| match spec {
                PackageSpec::All => true,
                PackageSpec::Exact(p) => p == from,
                PackageSpec::Recursive(p) => from.is_within(p),
            }) || group
                .includes
                .iter()
                .any(|inc| admits(graph, inc, from, seen))
        }
    }
}

//! The order a query result is printed in (`--order_output`) and the ranks of `minrank` and
//! `maxrank`: the result's labels and the edges among them in, a sequence out.

use std::collections::{BTreeMap, BTreeSet};

use super::{OutputFormat, QueryEnv};
use crate::core::{Diagnostic, Label};

/// `--order_output`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderOutput {
    /// No particular order: forge prints label order.
    No,
    /// A dependency order: each target before the targets it depends on.
    Deps,
    /// The default. As Bazel streams the line formats under `auto` (its
    /// `shouldStreamResults`) in the order evaluation met them, forge prints them in label
    /// order; graph, minrank and maxrank have their own order.
    Auto,
    /// Bazel's total order: see `full_order`.
    Full,
}

impl std::str::FromStr for OrderOutput {
    type Err = Diagnostic;

    fn from_str(text: &str) -> Result<Self, Diagnostic> {
        match text {
            "no" => Ok(OrderOutput::No),
            "deps" => Ok(OrderOutput::Deps),
            "auto" => Ok(OrderOutput::Auto),
            "full" => Ok(OrderOutput::Full),
            _ => Err(Diagnostic::new(format!(
                "While parsing option --order_output={text}: Not a valid order: '{text}' \
                 (should be no, deps, auto or full)"
            ))),
        }
    }
}

/// The edges among `labels`: each member's dependencies that are members, sorted.
fn edges(labels: &BTreeSet<Label>, env: &dyn QueryEnv) -> BTreeMap<Label, BTreeSet<Label>> {
    labels
        .iter()
        .map(|l| {
            let deps = env
                .deps(l)
                .into_iter()
                .map(|(_, d)| d)
                .filter(|d| labels.contains(d))
                .collect();
            (l.clone(), deps)
        })
        .collect()
}

/// `labels` in the order `order` asks for `format`.
pub fn order(
    labels: &BTreeSet<Label>,
    env: &dyn QueryEnv,
    order: OrderOutput,
    format: OutputFormat,
) -> Vec<Label> {
    match order {
        OrderOutput::No | OrderOutput::Auto => labels.iter().cloned().collect(),
        // For graph, minrank and maxrank the order given does not matter.
        _ if matches!(
            format,
            OutputFormat::Graph | OutputFormat::MinRank | OutputFormat::MaxRank
        ) =>
        {
            labels.iter().cloned().collect()
        }
        OrderOutput::Deps | OrderOutput::Full => full_order(labels, env),
    }
}

/// Bazel's full order: the labels sorted, each the start of a depth-first search that visits
/// unvisited dependencies in label order and records each node after its dependencies; the
/// reverse of that record. Every target comes before what it depends on (cycles aside), and
/// the order is the same on every run.
fn full_order(labels: &BTreeSet<Label>, env: &dyn QueryEnv) -> Vec<Label> {
    let edges = edges(labels, env);
    let mut visited: BTreeSet<&Label> = BTreeSet::new();
    let mut post = Vec::with_capacity(labels.len());
    for start in labels {
        if !visited.insert(start) {
            continue;
        }
        let mut stack: Vec<(&Label, std::collections::btree_set::Iter<Label>)> =
            vec![(start, edges[start].iter())];
        while let Some((node, next)) = stack.last_mut() {
            match next.find(|d| !visited.contains(d)) {
                Some(dep) => {
                    visited.insert(dep);
                    stack.push((dep, edges[dep].iter()));
                }
                None => {
                    post.push((*node).clone());
                    stack.pop();
                }
            }
        }
    }
    post.reverse();
    post
}

/// Each label's rank: with `longest`, the longest path to it from a root of the result (a
/// member nothing in the result depends on), else the shortest. A cycle's closing edge is
/// not followed (the longest path would be endless). Sorted by rank, then label.
pub fn ranks(labels: &BTreeSet<Label>, env: &dyn QueryEnv, longest: bool) -> Vec<(usize, Label)> {
    let edges = edges(labels, env);
    let mut has_parent: BTreeSet<&Label> = BTreeSet::new();
    for deps in edges.values() {
        has_parent.extend(deps.iter());
    }
    let mut roots: Vec<&Label> = labels.iter().filter(|l| !has_parent.contains(l)).collect();
    if roots.is_empty() {
        // Everything is on a cycle: start from the first label.
        roots.extend(labels.iter().next());
    }
    let mut rank: BTreeMap<Label, usize> = BTreeMap::new();
    if longest {
        // Longest paths in the order of `full_order` (parents first); the closing edge of a
        // cycle is ignored, as it would make the path endless.
        let order = full_order(labels, env);
        let position: BTreeMap<&Label, usize> =
            order.iter().enumerate().map(|(i, l)| (l, i)).collect();
        for l in &order {
            let r = *rank.entry(l.clone()).or_insert(0);
            for d in &edges[l] {
                if position[d] > position[l] {
                    let entry = rank.entry(d.clone()).or_insert(0);
                    *entry = (*entry).max(r + 1);
                }
            }
        }
    } else {
        let mut frontier: Vec<&Label> = roots.clone();
        for r in &roots {
            rank.insert((*r).clone(), 0);
        }
        let mut depth = 0;
        while !frontier.is_empty() {
            depth += 1;
            let mut next = Vec::new();
            for l in frontier {
                for d in &edges[l] {
                    if !rank.contains_key(d) {
                        rank.insert(d.clone(), depth);
                        next.push(d);
                    }
                }
            }
            frontier = next;
        }
        // Members reachable from no root (a cycle with no way in): rank 0.
        for l in labels {
            rank.entry(l.clone()).or_insert(0);
        }
    }
    let mut ranked: Vec<(usize, Label)> = rank.into_iter().map(|(l, r)| (r, l)).collect();
    ranked.sort();
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::fake::{FakeEnv, labels};

    fn names(order: &[Label]) -> Vec<String> {
        order.iter().map(Label::to_string).collect()
    }

    #[test]
    fn full_order_puts_dependents_first_and_is_total() {
        let env = FakeEnv::new();
        let set = labels(&["//b:util", "//a:lib", "//c:x", "//c:y"]);
        // c:x -> c:y -> b:util, a:lib -> b:util, c:y -> c:x (a cycle).
        let full = names(&order(&set, &env, OrderOutput::Full, OutputFormat::Label));
        assert_eq!(full, ["//c:x", "//c:y", "//a:lib", "//b:util"]);
        let auto = names(&order(&set, &env, OrderOutput::Auto, OutputFormat::Label));
        assert_eq!(auto, ["//a:lib", "//b:util", "//c:x", "//c:y"]);
    }

    #[test]
    fn ranks_count_from_the_roots() {
        let env = FakeEnv::new();
        let set = labels(&["//a:lib", "//b:util"]);
        let min: Vec<(usize, String)> = ranks(&set, &env, false)
            .into_iter()
            .map(|(r, l)| (r, l.to_string()))
            .collect();
        assert_eq!(min, [(0, "//a:lib".to_owned()), (1, "//b:util".to_owned())]);
    }
}

//! Dependency cycles: loaded targets in, each loop out once, as the whole ring of labels
//! with the BUILD line of every edge. Iterative, so a deep graph cannot overflow the stack.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use super::TargetGraph;
use crate::core::{Label, Location};

/// One loop: `edges[i]` goes from `labels[i]` to `labels[(i + 1) % len]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cycle {
    pub labels: Vec<Label>,
    /// Where each edge is declared: the depending target's BUILD line and the attribute.
    pub edges: Vec<(Location, String)>,
}

impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "cycle in dependency graph:")?;
        let width = self
            .labels
            .iter()
            .map(|l| l.to_string().len())
            .max()
            .unwrap_or(0);
        for (i, (label, (location, attr))) in self.labels.iter().zip(&self.edges).enumerate() {
            let lead = if i == 0 { ".-> " } else { "|   " };
            let label = label.to_string();
            writeln!(f, "{lead}{label:width$}  {location}: `{attr}`")?;
        }
        write!(f, "`-- {}", self.labels[0])
    }
}

fn dep_labels<'g>(graph: &'g TargetGraph, label: &Label) -> Vec<&'g Label> {
    graph.deps(label).into_iter().map(|(_, l)| l).collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    InProgress,
    Done,
}

pub(super) fn find_cycles(graph: &TargetGraph, labels: &[Label]) -> Vec<Cycle> {
    let mut marks: HashMap<&Label, Mark> = HashMap::new();
    let mut found: BTreeSet<Vec<Label>> = BTreeSet::new();
    let mut cycles = Vec::new();
    for root in labels {
        if marks.contains_key(root) {
            continue;
        }
        // Each stack frame: a label, its dependencies (computed once) and the next to visit.
        let mut stack: Vec<(&Label, Vec<&Label>, usize)> = vec![(root, dep_labels(graph, root), 0)];
        marks.insert(root, Mark::InProgress);
        while let Some((label, deps, next)) = stack.last_mut() {
            let Some(&dep) = deps.get(*next) else {
                marks.insert(*label, Mark::Done);
                stack.pop();
                continue;
            };
            *next += 1;
            match marks.get(dep) {
                None => {
                    marks.insert(dep, Mark::InProgress);
                    stack.push((dep, dep_labels(graph, dep), 0));
                }
                Some(Mark::InProgress) => {
                    let start = stack.iter().position(|(l, _, _)| *l == dep).unwrap();
                    let ring: Vec<Label> = stack[start..]
                        .iter()
                        .map(|(l, _, _)| (*l).clone())
                        .collect();
                    if let Some(cycle) = normalise(graph, ring, &mut found) {
                        cycles.push(cycle);
                    }
                }
                Some(Mark::Done) => {}
            }
        }
    }
    cycles
}

/// Rotates the ring to start at its smallest label, so one loop found from two entry points
/// is reported once, and attaches the location of each edge.
fn normalise(
    graph: &TargetGraph,
    mut ring: Vec<Label>,
    found: &mut BTreeSet<Vec<Label>>,
) -> Option<Cycle> {
    let min = ring
        .iter()
        .enumerate()
        .min_by_key(|(_, l)| *l)
        .map(|(i, _)| i)?;
    ring.rotate_left(min);
    if !found.insert(ring.clone()) {
        return None;
    }
    let edges = ring
        .iter()
        .enumerate()
        .map(|(i, from)| {
            let to = &ring[(i + 1) % ring.len()];
            let target = graph.target(from).expect("cycle members are loaded");
            let attr = target
                .deps()
                .into_iter()
                .find(|(_, l)| *l == to)
                .map(|(a, _)| a.to_owned())
                .unwrap_or_default();
            (target.location.clone(), attr)
        })
        .collect();
    Some(Cycle {
        labels: ring,
        edges,
    })
}

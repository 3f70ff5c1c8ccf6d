//! `--noimplicit_deps`: a `QueryEnv` in, the same env without the edges through implicit
//! attributes out — those whose names start with `_`, which a rule gives its targets
//! without the BUILD file naming them (a rule's tools, its runtime), as Bazel leaves out
//! implicit and late-bound attributes.

use std::collections::BTreeSet;

use super::QueryEnv;
use crate::core::{Diagnostic, Label};
use crate::loading::Target;

/// Whether an edge through attribute `attr` is implicit.
pub fn is_implicit(attr: &str) -> bool {
    attr.starts_with('_')
}

/// The wrapped env, seen without implicit dependencies.
pub struct NoImplicitDeps<'e>(pub &'e mut dyn QueryEnv);

impl QueryEnv for NoImplicitDeps<'_> {
    fn expand_pattern(&mut self, pattern: &str) -> Result<BTreeSet<Label>, Diagnostic> {
        self.0.expand_pattern(pattern)
    }

    /// Loads what the wrapped env loads, and answers what is reachable by explicit edges.
    fn load_closure(&mut self, roots: &BTreeSet<Label>) -> BTreeSet<Label> {
        self.0.load_closure(roots);
        let mut seen = roots.clone();
        let mut stack: Vec<Label> = roots.iter().cloned().collect();
        while let Some(label) = stack.pop() {
            for (_, dep) in self.deps(&label) {
                if seen.insert(dep.clone()) {
                    stack.push(dep);
                }
            }
        }
        seen
    }

    fn target(&self, label: &Label) -> Option<&Target> {
        self.0.target(label)
    }

    fn deps(&self, label: &Label) -> Vec<(String, Label)> {
        let mut deps = self.0.deps(label);
        deps.retain(|(attr, _)| !is_implicit(attr));
        deps
    }

    fn build_files(&self, label: &Label) -> Vec<Label> {
        self.0.build_files(label)
    }

    fn visible(&mut self, target: &Label, from: &Label) -> bool {
        self.0.visible(target, from)
    }

    fn package_dir(&self, label: &Label) -> Option<std::path::PathBuf> {
        self.0.package_dir(label)
    }
}

//! The load graph: a file's `load()` statements in, the frozen modules they name (evaluated
//! first) out — with the graph walked at parse level beforehand, so a cycle is reported as its
//! chain instead of deadlocking the evaluation of the files on it.

use std::collections::{HashMap, HashSet};

use starlark::environment::FrozenModule;
use starlark::syntax::AstModule;

use super::Loader;
use super::diagnostics::location_of;
use crate::core::{Diagnostic, Label, Location, PackageId};

/// The `load()`s of one .bzl file, with where each is written; or why it did not parse.
pub(super) type BzlLoads = Result<Vec<(Label, Location)>, Diagnostic>;

/// A file's loaded modules, keyed by the string its `load()` wrote, and every .bzl label
/// reached from it.
pub(super) type Dependencies = (HashMap<String, FrozenModule>, Vec<Label>);

impl Loader {
    /// Resolves and evaluates the `load()`s of a file. Returns the modules by the string the
    /// file wrote, and every .bzl label reached (for `buildfiles()`).
    pub(super) fn load_dependencies(
        &self,
        ast: &AstModule,
        base: &PackageId,
        chain: &[Label],
    ) -> Result<Dependencies, Vec<Diagnostic>> {
        let mut modules = HashMap::new();
        let mut all = Vec::new();
        for load in ast.loads() {
            let loc = location_of(&load.span);
            let label = Label::parse(load.module_id, base)
                .map_err(|e| vec![Diagnostic::at(&loc, format!("in load(): {e}"))])?;
            if !label.name.ends_with(".bzl") {
                return Err(vec![Diagnostic::at(
                    &loc,
                    format!(
                        "in load(): '{label}' is not a .bzl file; only .bzl files can be loaded"
                    ),
                )]);
            }
            if let Some(cycle) = self.find_load_cycle(&label, chain, &loc) {
                return Err(vec![cycle]);
            }
            let module = self.load_bzl(&label).map_err(|d| {
                vec![
                    d,
                    Diagnostic::at(
                        &loc,
                        format!("cannot load '{label}': it has errors (see above)"),
                    ),
                ]
            })?;
            all.push(label.clone());
            all.extend(self.transitive_bzl(&label));
            modules.insert(load.module_id.to_owned(), module);
        }
        all.sort();
        all.dedup();
        Ok((modules, all))
    }

    /// The .bzl files `label` loads, directly or not (from the parse-level memo).
    fn transitive_bzl(&self, label: &Label) -> Vec<Label> {
        let mut out = Vec::new();
        let mut stack = vec![label.clone()];
        while let Some(l) = stack.pop() {
            if let Some(Ok(loads)) = self.bzl_loads.lock().unwrap().get(&l) {
                for (dep, _) in loads {
                    if !out.contains(dep) {
                        out.push(dep.clone());
                        stack.push(dep.clone());
                    }
                }
            }
        }
        out
    }

    /// The labels a .bzl file loads, from its parse (memoized). Parse errors are returned.
    fn bzl_loads_of(&self, label: &Label) -> BzlLoads {
        if let Some(r) = self.bzl_loads.lock().unwrap().get(label) {
            return r.clone();
        }
        let result = self.parse_bzl(label).map(|(ast, _)| {
            ast.loads()
                .iter()
                .filter_map(|l| {
                    let loc = location_of(&l.span);
                    Label::parse(l.module_id, &label.package_id())
                        .ok()
                        .map(|d| (d, loc))
                })
                .collect::<Vec<_>>()
        });
        self.bzl_loads
            .lock()
            .unwrap()
            .insert(label.clone(), result.clone());
        result
    }

    /// Walks the load graph below `label` (parse only) and reports the first cycle as its
    /// chain. Checking before evaluating keeps parallel evaluation free of deadlocks.
    fn find_load_cycle(&self, label: &Label, chain: &[Label], at: &Location) -> Option<Diagnostic> {
        let mut path: Vec<Label> = chain.to_vec();
        let mut visited = HashSet::new();
        self.cycle_dfs(label, &mut path, &mut visited).map(|ring| {
            let text = ring.iter().map(Label::to_string).collect::<Vec<_>>().join("\n  -> ");
            Diagnostic::at(at, format!("cycle in load() statements:\n  {text}\nbreak the cycle by moving the shared definitions into a .bzl file that neither loads"))
        })
    }

    fn cycle_dfs(
        &self,
        label: &Label,
        path: &mut Vec<Label>,
        visited: &mut HashSet<Label>,
    ) -> Option<Vec<Label>> {
        if let Some(pos) = path.iter().position(|l| l == label) {
            let mut ring = path[pos..].to_vec();
            ring.push(label.clone());
            return Some(ring);
        }
        if !visited.insert(label.clone()) {
            return None;
        }
        let loads = self.bzl_loads_of(label).ok()?;
        path.push(label.clone());
        for (dep, _) in loads {
            if let Some(ring) = self.cycle_dfs(&dep, path, visited) {
                return Some(ring);
            }
        }
        path.pop();
        None
    }
}

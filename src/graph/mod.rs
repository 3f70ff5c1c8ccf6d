//! The target graph: target patterns and labels in, loaded targets with resolved edges out.
//!
//! `TargetGraph` loads packages on demand through the `loading::Loader` (in parallel, one
//! wave of newly referenced packages at a time), resolves every dependency label to a target,
//! and checks what must hold before analysis: every label names a target, visibility allows
//! each edge, and there is no cycle. Problems are collected as diagnostics rather than
//! returned early, so `--keep_going` and `forge query` can still answer with what loaded.

mod cycle;
mod visibility;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use rayon::prelude::*;

use crate::core::diag::did_you_mean;
use crate::core::{Diagnostic, Label, PackageId, TargetPattern};
use crate::loading::{Loader, Package, PackageError, Target};

pub use cycle::Cycle;

/// What became of a package the graph asked for.
enum Loaded {
    Ok(Arc<Package>),
    /// No BUILD file: whoever refers to it is told, with their location.
    Missing(Diagnostic),
    /// Errors, already recorded.
    Failed,
}

/// Packages by repository, then package name: looked up with borrowed strings, because
/// every edge of every graph walk goes through here.
#[derive(Default)]
struct PackageMap(HashMap<String, HashMap<String, Loaded>>);

impl PackageMap {
    fn get(&self, repo: &str, package: &str) -> Option<&Loaded> {
        self.0.get(repo)?.get(package)
    }

    fn contains(&self, id: &PackageId) -> bool {
        self.get(&id.repo, &id.package).is_some()
    }

    fn insert(&mut self, id: PackageId, loaded: Loaded) {
        self.0
            .entry(id.repo)
            .or_default()
            .insert(id.package, loaded);
    }

    fn values(&self) -> impl Iterator<Item = &Loaded> {
        self.0.values().flat_map(HashMap::values)
    }
}

/// Every package loaded so far, and the diagnostics met on the way.
pub struct TargetGraph<'l> {
    loader: &'l Loader,
    packages: PackageMap,
    errors: Vec<Diagnostic>,
    /// Labels already reported as unresolvable, so each is reported once per referrer.
    reported: BTreeSet<(Label, Label)>,
    /// False in a graph of names only (`names_only`): rule attributes are dropped as each
    /// package loads, so targets have no edges to follow.
    attributes: bool,
}

impl<'l> TargetGraph<'l> {
    pub fn new(loader: &'l Loader) -> Self {
        TargetGraph {
            loader,
            packages: PackageMap::default(),
            errors: Vec::new(),
            reported: BTreeSet::new(),
            attributes: true,
        }
    }

    /// A graph for questions about the target set alone (which targets exist, their labels,
    /// kinds and locations): each rule's attributes are dropped as its package loads, so
    /// memory holds names rather than every attribute of the workspace. Nothing may follow
    /// edges in it (`load_closure`, `deps`, the cycle and visibility checks). What the loader
    /// stores for later commands is the whole package, as always.
    pub fn names_only(loader: &'l Loader) -> Self {
        TargetGraph {
            attributes: false,
            ..TargetGraph::new(loader)
        }
    }

    pub fn loader(&self) -> &'l Loader {
        self.loader
    }

    /// Errors met so far, in the order they were found (deduplicated).
    pub fn errors(&self) -> &[Diagnostic] {
        &self.errors
    }

    fn error(&mut self, d: Diagnostic) {
        if !self.errors.contains(&d) {
            self.errors.push(d);
        }
    }

    /// Loads the given packages (those not loaded yet) in parallel.
    pub fn load_packages(&mut self, ids: impl IntoIterator<Item = PackageId>) {
        let wanted: Vec<PackageId> = ids
            .into_iter()
            .filter(|id| !self.packages.contains(id))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if wanted.is_empty() {
            return;
        }
        let loader = self.loader;
        let attributes = self.attributes;
        let results: Vec<_> = wanted
            .into_par_iter()
            .map(|id| {
                let mut result = loader.load_package(&id);
                if let (Ok(package), false) = (&mut result, attributes) {
                    // Dropped here, on the loading thread, so the whole workspace's
                    // attributes are never in memory at once.
                    drop_attributes(package);
                }
                (id, result)
            })
            .collect();
        for (id, result) in results {
            let loaded = match result {
                Ok(pkg) => Loaded::Ok(Arc::new(pkg)),
                Err(PackageError::NoSuchPackage(d)) => Loaded::Missing(d),
                Err(PackageError::Failed(errors)) => {
                    for e in errors {
                        self.error(e);
                    }
                    Loaded::Failed
                }
            };
            self.packages.insert(id, loaded);
        }
    }

    /// The loaded package, if it loaded without errors.
    pub fn package(&self, id: &PackageId) -> Option<&Arc<Package>> {
        match self.packages.get(&id.repo, &id.package) {
            Some(Loaded::Ok(p)) => Some(p),
            _ => None,
        }
    }

    /// All packages loaded successfully so far.
    pub fn packages(&self) -> impl Iterator<Item = &Arc<Package>> {
        self.packages.values().filter_map(|p| match p {
            Loaded::Ok(p) => Some(p),
            _ => None,
        })
    }

    /// True when the package had errors (already recorded in `errors()`).
    fn failed(&self, id: &PackageId) -> bool {
        matches!(
            self.packages.get(&id.repo, &id.package),
            Some(Loaded::Failed)
        )
    }

    /// The target named by `label`, if its package is loaded and declares it.
    pub fn target(&self, label: &Label) -> Option<&Target> {
        match self.packages.get(&label.repo, &label.package)? {
            Loaded::Ok(p) => p.targets.get(&label.name),
            _ => None,
        }
    }

    /// Every target currently loaded.
    pub fn targets(&self) -> impl Iterator<Item = &Target> {
        self.packages().flat_map(|p| p.targets.values())
    }

    /// Expands one pattern to the labels it names, loading the packages it covers. A pattern
    /// that names nothing is an `Err` (Bazel's "Skipping" message); packages that fail to load
    /// on the way are recorded in `errors()` and left out.
    pub fn expand(&mut self, pattern: &TargetPattern) -> Result<BTreeSet<Label>, Diagnostic> {
        let skipping = |d: Diagnostic| Diagnostic::new(format!("Skipping '{pattern}': {d}"));
        match pattern {
            // A package with errors has been reported already; it selects nothing.
            TargetPattern::Single(label) => {
                self.load_packages([label.package_id()]);
                if self.failed(&label.package_id()) {
                    return Ok(BTreeSet::new());
                }
                self.lookup(label, None).map_err(skipping)?;
                Ok(BTreeSet::from([label.clone()]))
            }
            TargetPattern::Package { package, files_too } => {
                self.load_packages([package.clone()]);
                match self.packages.get(&package.repo, &package.package) {
                    Some(Loaded::Ok(pkg)) => Ok(select_targets(pkg, *files_too)),
                    Some(Loaded::Missing(d)) => Err(skipping(d.clone())),
                    _ => Ok(BTreeSet::new()),
                }
            }
            TargetPattern::Recursive { prefix, files_too } => {
                let ids = self.loader.packages_under(prefix).map_err(skipping)?;
                if ids.is_empty() {
                    return Err(skipping(Diagnostic::new(format!(
                        "no targets found beneath '{}'",
                        prefix
                    ))));
                }
                self.load_packages(ids.iter().cloned());
                // One sorted run for the whole tree (a set per package, merged, cost a
                // noticeable share of `//...` at 50,000 targets).
                let mut labels: Vec<Label> = ids
                    .iter()
                    .filter_map(|id| self.package(id))
                    .flat_map(|pkg| selected(pkg, *files_too).map(|t| t.label.clone()))
                    .collect();
                labels.sort_unstable();
                labels.dedup();
                Ok(labels.into_iter().collect())
            }
        }
    }

    /// Expands `a -b c` style pattern lists (a `-` prefix subtracts), in order. Patterns that
    /// name nothing are returned as errors alongside what the others selected.
    pub fn expand_patterns(
        &mut self,
        patterns: &[TargetPatternArg],
    ) -> (BTreeSet<Label>, Vec<Diagnostic>) {
        let mut result = BTreeSet::new();
        let mut errors = Vec::new();
        for p in patterns {
            match self.expand(&p.pattern) {
                Ok(labels) if p.negative => result.retain(|l| !labels.contains(l)),
                Ok(labels) => result.extend(labels),
                Err(d) => errors.push(d),
            }
        }
        (result, errors)
    }

    /// Checks that `label` names a loaded target; the error says what is missing and,
    /// when `referrer` is given, who referred to it and where.
    fn lookup(&self, label: &Label, referrer: Option<&Target>) -> Result<(), Diagnostic> {
        let id = label.package_id();
        let referenced_by = match referrer {
            Some(t) => format!("; referenced by '{}'", t.label),
            None => String::new(),
        };
        let at = |msg: String| match referrer {
            Some(t) => Diagnostic::at(&t.location, msg),
            None => Diagnostic::new(msg),
        };
        match self.packages.get(&id.repo, &id.package) {
            Some(Loaded::Ok(pkg)) => {
                if pkg.targets.contains_key(&label.name) {
                    return Ok(());
                }
                let mut msg = format!(
                    "no such target '{label}': target '{}' not declared in package '{}' defined by {}{referenced_by}",
                    label.name,
                    id.package,
                    self.loader.display_path(&pkg.build_file),
                );
                if pkg.dir.join(&label.name).is_file() {
                    msg.push_str(&format!(
                        "; however, a source file of this name exists. (Perhaps add 'exports_files([\"{}\"])' to {}?)",
                        label.name,
                        self.loader.display_path(&pkg.build_file)
                    ));
                } else if let Some(close) =
                    did_you_mean(&label.name, pkg.targets.keys().map(String::as_str))
                {
                    msg.push_str(&format!(" (did you mean '{}'?)", id.label(&close)));
                }
                Err(at(msg))
            }
            // The package failed to load; its own error has been reported already.
            Some(Loaded::Failed) => Err(at(match referrer {
                Some(t) => format!(
                    "'{}' depends on '{label}' in package '{id}', which failed to load (see above)",
                    t.label
                ),
                None => format!("package '{id}' failed to load (see above)"),
            })),
            Some(Loaded::Missing(d)) => {
                let mut msg = format!("{d}{referenced_by}");
                if let Some(close) = self.loader.close_package(&id) {
                    msg.push_str(&format!(" (did you mean '{close}'?)"));
                }
                Err(at(msg))
            }
            None => Err(at(format!(
                "package '{id}' has not been loaded{referenced_by}"
            ))),
        }
    }

    /// Loads everything reachable from `roots` and returns the reachable labels (roots
    /// included). Unknown labels are recorded as errors naming the referring target.
    pub fn load_closure(&mut self, roots: &BTreeSet<Label>) -> BTreeSet<Label> {
        debug_assert!(
            self.attributes,
            "a graph of names only has no edges to follow"
        );
        let mut seen: HashSet<Label> = HashSet::new();
        let mut frontier: Vec<Label> = roots.iter().cloned().collect();
        while !frontier.is_empty() {
            self.load_packages(frontier.iter().map(Label::package_id));
            let mut next = Vec::new();
            for label in frontier {
                let Some(target) = self.target(&label) else {
                    continue;
                };
                for (_, dep) in target.deps() {
                    if !seen.contains(dep) {
                        next.push(dep.clone());
                    }
                }
                seen.insert(label);
            }
            next.sort_unstable();
            next.dedup();
            next.retain(|l| !seen.contains(l));
            frontier = next;
        }
        // Now that every package is loaded, report the edges that lead nowhere.
        let mut problems = Vec::new();
        for label in &seen {
            let target = self.target(label).expect("only existing targets are kept");
            for (_, dep) in target.deps() {
                if self.target(dep).is_some()
                    || self.reported.contains(&(label.clone(), dep.clone()))
                {
                    continue;
                }
                if let Err(d) = self.lookup(dep, Some(target)) {
                    problems.push((label.clone(), dep.clone(), d));
                }
            }
        }
        problems.sort();
        for (from, to, d) in problems {
            self.reported.insert((from, to));
            self.error(d);
        }
        seen.into_iter().collect()
    }

    /// The resolved dependencies of a loaded target: `(attribute, label)` pairs whose
    /// target exists.
    pub fn deps(&self, label: &Label) -> Vec<(&str, &Label)> {
        debug_assert!(
            self.attributes,
            "a graph of names only has no edges to follow"
        );
        match self.target(label) {
            Some(t) => t
                .deps()
                .into_iter()
                .filter(|(_, l)| self.target(l).is_some())
                .collect(),
            None => Vec::new(),
        }
    }

    /// Reverse edges among the given labels: label -> the labels in `universe` that depend on it.
    pub fn reverse_deps(&self, universe: &BTreeSet<Label>) -> BTreeMap<Label, BTreeSet<Label>> {
        let mut rdeps: BTreeMap<Label, BTreeSet<Label>> = BTreeMap::new();
        for label in universe {
            for (_, dep) in self.deps(label) {
                rdeps.entry(dep.clone()).or_default().insert(label.clone());
            }
        }
        rdeps
    }

    /// Every dependency cycle among `labels` (each reported once).
    pub fn cycles(&self, labels: &[Label]) -> Vec<Cycle> {
        cycle::find_cycles(self, labels)
    }

    /// Whether targets of package `from` may depend on the loaded `target`, as its
    /// visibility says (loading the package groups it names).
    pub fn is_visible_from(&mut self, target: &Label, from: &PackageId) -> bool {
        let groups: Vec<PackageId> = self
            .target(target)
            .into_iter()
            .flat_map(|t| t.visibility.iter())
            .filter(|v| !visibility::is_special(v))
            .map(Label::package_id)
            .collect();
        self.load_packages(groups);
        visibility::visible_from(self, target, from)
    }

    /// Every edge among `labels` that visibility forbids. Loads the packages of the
    /// package groups that visibility lists name.
    pub fn visibility_errors(&mut self, labels: &[Label]) -> Vec<Diagnostic> {
        let groups: Vec<PackageId> = labels
            .iter()
            .filter_map(|l| self.target(l))
            .flat_map(|t| t.visibility.iter())
            .filter(|v| !visibility::is_special(v))
            .map(Label::package_id)
            .collect();
        self.load_packages(groups);
        visibility::check(self, labels)
    }
}

/// A command-line pattern with its sign: `-//pkg/...` subtracts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetPatternArg {
    pub pattern: TargetPattern,
    pub negative: bool,
}

impl TargetPatternArg {
    pub fn parse(text: &str, cwd: &PackageId) -> Result<Self, Diagnostic> {
        let (negative, body) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        TargetPattern::parse(body, cwd)
            .map(|pattern| TargetPatternArg { pattern, negative })
            .map_err(|e| Diagnostic::new(format!("Skipping '{text}': {e}")))
    }
}

/// Empties every rule's attributes, keeping what names a target: label, kind, location,
/// visibility.
fn drop_attributes(package: &mut Package) {
    for target in package.targets.values_mut() {
        if let crate::loading::TargetKind::Rule(rule) = &mut target.kind {
            rule.attrs = Default::default();
            rule.explicit = BTreeSet::new();
        }
    }
}

/// `:all` selects rules (and package groups); `:*` adds files.
fn select_targets(pkg: &Package, files_too: bool) -> BTreeSet<Label> {
    selected(pkg, files_too).map(|t| t.label.clone()).collect()
}

fn selected(pkg: &Package, files_too: bool) -> impl Iterator<Item = &Target> {
    pkg.targets
        .values()
        .filter(move |t| files_too || matches!(t.kind, crate::loading::TargetKind::Rule(_)))
}

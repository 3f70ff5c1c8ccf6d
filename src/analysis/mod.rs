//! Analysis: loaded targets in, actions and runfiles trees out.
//!
//! Rule implementations (Starlark) run bottom-up over the graph, each target in its own
//! Starlark heap, independent targets in parallel. A target's providers are frozen into its
//! `Analyzed` module so that dependents can read them (`dep[MyInfo]`); the actions it
//! registered come out as plain `Action`s for `exec`. With a result store
//! (`analyze_with_store`), a target whose inputs are unchanged takes its earlier result
//! (`incremental.rs`).

mod action_value;
mod actions;
mod args;
pub mod aspects;
mod attrs;
pub mod build_settings;
pub mod compatibility;
mod conditions;
pub mod configuration;
mod configured;
pub mod configured_graph;
pub mod cpp_fragment;
mod cquery_starlark;
mod ctx;
mod failure;
mod incremental;
mod input_sets;
mod inputs;
mod make_vars;
pub mod plan;
mod plan_codec;
mod platform_providers;
pub mod platforms;
mod providers;
mod result_key;
pub mod result_store;
mod runfiles;
mod stored_value;
mod target;
mod toolchain_context;
pub mod toolchains;
mod transitions;
mod values;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use rayon::prelude::*;
use starlark::environment::{FrozenModule, Module};
use starlark::values::ValueLike;

pub use crate::core::layout::short_from_exec;
use inputs::{missing_inputs, missing_roots};
pub use providers::OutputGroups;
use target::analyze_target;
pub use transitions::settings_to_load as transition_settings;
use values::{FileValue, TargetInfo};

use crate::core::{Action, Diagnostic, Label, RunfilesTree, layout};
use crate::graph::TargetGraph;
use crate::loading::{Depset, TargetKind};
pub use configuration::{Config, ConfiguredLabel};
use configured_graph::ConfiguredGraph;
pub use cquery_starlark::format_target;

/// What analysing one rule target produced.
pub struct Analyzed {
    /// Holds the target's providers as its extra value (a frozen `TargetInfo`); None for a
    /// result taken from the store until something reads its providers
    /// (`incremental::materialize`).
    module: Option<FrozenModule>,
    pub actions: Vec<Action>,
    /// The executable's exec path, for executable rules.
    pub executable: Option<String>,
    /// The runfiles tree of an executable target.
    pub runfiles: Option<RunfilesTree>,
    pub is_test: bool,
    /// The rule's `args`, for `forge run` and tests.
    pub args: Vec<String>,
    /// How to run it, for test rules.
    pub test: Option<crate::core::TestSpec>,
    /// Its key, its result's digest and depsets, for the result store.
    incremental: incremental::Record,
}

impl Analyzed {
    /// The frozen `TargetInfo` (label and providers) dependents see.
    pub fn target_info(&self) -> Option<starlark::values::OwnedFrozenValue> {
        self.module.as_ref()?.owned_extra_value()
    }
}

/// Settings that change what analysis produces.
#[derive(Clone, Debug, Default)]
pub struct AnalysisConfig {
    /// `--define NAME=VALUE`.
    pub defines: BTreeMap<String, String>,
    /// `--stamp`: build information may be written into outputs (`config_setting(values =
    /// {"stamp": "1"})` matches).
    pub stamp: bool,
    /// Build settings the command line sets (`--//pkg:flag=value`), with typed values.
    pub build_settings: BTreeMap<Label, crate::loading::AttrValue>,
    /// `-c` and `--cpu`.
    pub output: layout::OutputConfiguration,
    /// The target and execution platforms and the registered toolchains.
    pub platforms: platforms::PlatformConfig,
    /// `--copt`, `--linkopt`, `--features`, ...: `ctx.fragments.cpp` and `ctx.features`.
    pub cpp: cpp_fragment::CppOptions,
    /// `--aspects`: the ids (`<bzl label>%<name>`) of aspects applied to the requested targets.
    pub aspects: Vec<String>,
}

impl AnalysisConfig {
    /// The configuration the requested targets are built in.
    pub fn top_level(&self) -> Config {
        Config::new(configuration::BuildOptions::top_level(
            &self.output,
            self.defines.clone(),
            self.stamp,
            self.build_settings.clone(),
            self.cpp.clone(),
        ))
    }
}

/// The analysed targets, by configured label, and what went wrong.
#[derive(Default)]
pub struct Analysis {
    pub targets: HashMap<ConfiguredLabel, Analyzed>,
    /// Each requested label and the configured target it is.
    pub roots: HashMap<Label, ConfiguredLabel>,
    /// The top-level configuration.
    pub top: Config,
    pub errors: Vec<Diagnostic>,
    /// The configured graph, for `cquery`.
    pub configured: Option<ConfiguredGraph>,
    /// The requested targets their configuration's target platform cannot build
    /// (`target_compatible_with`), which were not analysed: skipped when a wildcard named
    /// them, an error when named themselves.
    pub incompatible: BTreeMap<Label, compatibility::Incompatibility>,
    /// Every aspect application that produced something.
    pub aspects: HashMap<aspects::AspectKey, std::sync::Arc<aspects::AnalyzedAspect>>,
    /// The `--aspects` applied to requested targets: the target, and the application.
    pub top_level_aspects: Vec<(Label, aspects::AspectKey)>,
    /// How many configured targets were analysed by this command (those whose stored
    /// result was reused do not count): Bazel's "N targets configured".
    pub analysed: usize,
}

impl Analysis {
    /// The analysis of a requested label, in its configuration.
    pub fn target(&self, label: &Label) -> Option<&Analyzed> {
        self.targets.get(self.roots.get(label)?)
    }

    /// Every action of every analysed target and aspect application.
    pub fn actions(&self) -> impl Iterator<Item = &Action> {
        self.targets
            .values()
            .flat_map(|a| a.actions.iter())
            .chain(self.aspects.values().flat_map(|a| a.actions.iter()))
    }

    /// The actions, in the order of `actions`, moved out (the plan takes them instead of a
    /// copy: at 50,000 targets a second copy of every action was a seventh of the peak).
    pub fn take_actions(&mut self) -> impl Iterator<Item = Action> + '_ {
        self.targets
            .values_mut()
            .flat_map(|a| std::mem::take(&mut a.actions))
            .chain(
                self.aspects
                    .values_mut()
                    // An aspect's result may be shared (an Arc): copied then.
                    .flat_map(|a| match std::sync::Arc::get_mut(a) {
                        Some(a) => std::mem::take(&mut a.actions),
                        None => a.actions.clone(),
                    }),
            )
    }

    /// The default outputs of a target (its `DefaultInfo.files`), as exec paths. Flattening
    /// happens here, only for the targets a command asked for.
    pub fn default_outputs(&self, graph: &TargetGraph, label: &Label) -> Vec<String> {
        let Some(target) = graph.target(label) else {
            return Vec::new();
        };
        match &target.kind {
            TargetKind::SourceFile => vec![FileValue::source(label).path],
            TargetKind::GeneratedFile { generating_rule } => {
                let config = self.roots.get(label).map_or(&self.top, |k| &k.config);
                vec![FileValue::generated(generating_rule, &label.name, false, config).path]
            }
            TargetKind::PackageGroup(_) => Vec::new(),
            TargetKind::Rule(_) => self
                .read_providers(label, |info| {
                    let Some(t) = TargetInfo::from_value(info) else {
                        return Vec::new();
                    };
                    t.default_info("files")
                        .and_then(Depset::from_value)
                        .map(|d| {
                            d.to_list()
                                .iter()
                                .filter_map(|v| {
                                    v.downcast_ref::<FileValue>().map(|f| f.path.clone())
                                })
                                .collect()
                        })
                        .unwrap_or_default()
                })
                .unwrap_or_default(),
        }
    }
}

impl Analysis {
    /// The files of the output groups `groups` selects for a target, `default` being its
    /// default outputs; each once, the default outputs first.
    pub fn requested_outputs(
        &self,
        graph: &TargetGraph,
        label: &Label,
        groups: &OutputGroups,
    ) -> Vec<String> {
        let mut out = Vec::new();
        if groups.groups.contains("default") {
            out = self.default_outputs(graph, label);
        }
        let named: Vec<&String> = groups.groups.iter().filter(|g| *g != "default").collect();
        if named.is_empty() {
            return out;
        }
        self.read_providers(label, |info| group_outputs(info, &named, &mut out));
        out
    }

    /// Calls `read` with the providers (a `TargetInfo`) of the requested target `label`,
    /// made from their plain data in a temporary heap if the target's own Starlark values
    /// were let go of. None when it has none (or, an internal error, they cannot be made).
    fn read_providers<R>(
        &self,
        label: &Label,
        read: impl for<'v> FnOnce(starlark::values::Value<'v>) -> R,
    ) -> Option<R> {
        let key = self.roots.get(label)?;
        let configured = self.configured.as_ref()?;
        incremental::read_providers(&self.targets, configured, key, read)
            .ok()
            .flatten()
    }

    /// The files of the output groups `groups` names (an aspect has no default outputs)
    /// that an `--aspects` application returned.
    pub fn aspect_outputs(&self, key: &aspects::AspectKey, groups: &OutputGroups) -> Vec<String> {
        let mut out = Vec::new();
        let named: Vec<&String> = groups.groups.iter().filter(|g| *g != "default").collect();
        if let Some(info) = self.aspects.get(key).and_then(|a| a.providers()) {
            Module::with_temp_heap(|module| {
                let info = module.heap().access_owned_frozen_value(&info);
                group_outputs(info, &named, &mut out);
            });
        }
        out
    }
}

/// Adds to `out` the files of the output groups `named` of the `TargetInfo` `info`.
fn group_outputs(info: starlark::values::Value, named: &[&String], out: &mut Vec<String>) {
    if named.is_empty() {
        return;
    }
    let Some(groups_info) = TargetInfo::from_value(info)
        .and_then(|t| t.provider(providers::OUTPUT_GROUP_INFO_ID))
        .and_then(crate::loading::ProviderInstance::from_value)
    else {
        return;
    };
    for group in named {
        let files = groups_info.field(group).and_then(Depset::from_value);
        for f in files.map(|d| d.to_list()).unwrap_or_default() {
            if let Some(f) = f.downcast_ref::<FileValue>()
                && !out.contains(&f.path)
            {
                out.push(f.path.clone());
            }
        }
    }
}

/// Analyses `roots` and everything they depend on (already loaded in `graph`), each
/// configured target once; every target's providers stay Starlark values (`cquery` reads
/// any of them).
pub fn analyze(graph: &TargetGraph, roots: &BTreeSet<Label>, config: &AnalysisConfig) -> Analysis {
    analyze_graph(graph, roots, config, None, Keep::Everything)
}

/// What of a target's Starlark values analysis keeps once its dependents are analysed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    Everything,
    /// Only what a build reads afterwards: providers that can be plain data are kept so,
    /// and the Starlark heap they were made in is let go of as soon as no dependent still
    /// to be analysed reads it. The command reads the requested targets' providers from
    /// that plain data (`incremental::read_providers`).
    WhatTheBuildReads,
}

/// What to do with one configured target of a level.
enum Step {
    /// Decided without running its implementation: taken from the store (`true`), or
    /// failed (`false`).
    Done(Result<Box<Analyzed>, Vec<Diagnostic>>, bool),
    /// Run its implementation; its key, if it has one.
    Analyse(Option<crate::core::Digest>),
}

/// `analyze` for a build, reusing the results `store` kept of configured targets whose
/// inputs are unchanged, and keeping the new ones there. A target's Starlark values are let
/// go of once its dependents are analysed: its providers are then read as plain data.
pub fn analyze_with_store(
    graph: &TargetGraph,
    roots: &BTreeSet<Label>,
    config: &AnalysisConfig,
    store: Option<&result_store::ResultStore>,
) -> Analysis {
    analyze_graph(graph, roots, config, store, Keep::WhatTheBuildReads)
}

fn analyze_graph(
    graph: &TargetGraph,
    roots: &BTreeSet<Label>,
    config: &AnalysisConfig,
    store: Option<&result_store::ResultStore>,
    keep: Keep,
) -> Analysis {
    let top = config.top_level();
    let configured = ConfiguredGraph::build(graph, roots, &top, &config.platforms, &config.aspects);
    let levels = levels(&configured);
    let mut readers_left = ReadersLeft::new(&configured, config, keep);
    let incompatible =
        compatibility::incompatible_targets(graph, &configured, &config.platforms, &levels);
    let mut analysis = Analysis {
        top: top.clone(),
        roots: configured.roots.iter().cloned().collect(),
        incompatible: configured
            .roots
            .iter()
            .filter_map(|(label, key)| Some((label.clone(), incompatible.get(key)?.clone())))
            .collect(),
        ..Analysis::default()
    };
    analysis.errors.extend(missing_roots(graph, roots));
    analysis.errors.extend(configured.errors.iter().cloned());
    let mut failed: BTreeSet<ConfiguredLabel> = BTreeSet::new();
    let aspect_store = aspects::AspectStore::default();
    for level in levels {
        // First what needs no implementation run: failures, and results the store holds.
        let steps: Vec<(ConfiguredLabel, Step)> = level
            .par_iter()
            .filter(|key| {
                // A target whose dependency failed is not analysed; the dependency's error
                // has been reported. Nor is one its target platform cannot build.
                !incompatible.contains_key(*key) && !depends_on_failed(&configured, &failed, key)
            })
            .map(|key| {
                let target = graph
                    .target(&key.label)
                    .expect("levels hold loaded rule targets");
                let node = &configured.nodes[key];
                let loaded = target.rule().expect("levels hold rule targets");
                let step = match node.configured(loaded) {
                    // Under an analysis test, failures become providers: decided below,
                    // with the dependencies' providers at hand. Never stored.
                    _ if key.config.options().allow_analysis_failures => Step::Analyse(None),
                    Err(d) => Step::Done(Err(vec![d.clone()]), false),
                    Ok(rule) => {
                        let missing = missing_inputs(graph, target, rule);
                        if !missing.is_empty() {
                            Step::Done(Err(missing), false)
                        } else if let Some(store) = store {
                            let input = incremental::key_of(
                                store,
                                graph,
                                key,
                                node,
                                rule,
                                &analysis.targets,
                            );
                            match input.and_then(|input| incremental::reuse(store, key, input)) {
                                Some(reused) => Step::Done(Ok(Box::new(reused)), true),
                                None => Step::Analyse(input),
                            }
                        } else {
                            Step::Analyse(None)
                        }
                    }
                };
                (key.clone(), step)
            })
            .collect();
        // The targets analysed again read their dependencies' providers: those taken from
        // the store are made into Starlark values first.
        // An aspect reads whatever it propagates to: all a rule applying aspects reaches.
        let mut readers: Vec<ConfiguredLabel> = Vec::new();
        for (key, _) in steps.iter().filter(|(_, s)| matches!(s, Step::Analyse(_))) {
            let deps = configured.nodes[key]
                .deps
                .iter()
                .filter_map(|d| d.rule.clone());
            match configured.nodes[key].applies_aspects {
                true => readers.extend(transitive_closure(&configured, deps)),
                false => readers.extend(deps),
            }
        }
        let (restored, restore_errors) =
            incremental::materialize(&mut analysis.targets, &configured, readers);
        analysis.errors.extend(restore_errors);
        let aspect_env = aspects::AspectEnv {
            graph,
            configured: &configured,
            done: &analysis.targets,
            store: &aspect_store,
        };
        let results: Vec<(ConfiguredLabel, Result<Analyzed, Vec<Diagnostic>>, bool)> = steps
            .into_par_iter()
            .map(|(key, step)| {
                let (result, reused) = match step {
                    Step::Done(result, reused) => (result.map(|a| *a), reused),
                    Step::Analyse(input) => {
                        let target = graph.target(&key.label).expect("levels hold loaded rules");
                        let node = &configured.nodes[&key];
                        let mut result = analyze_one(graph, target, &key, node, &aspect_env);
                        if let Ok(analyzed) = &mut result {
                            incremental::record_fresh(
                                store,
                                &key,
                                input,
                                node,
                                analyzed,
                                &analysis.targets,
                                readers_left.to_be_let_go(&key),
                            );
                        }
                        (result, false)
                    }
                };
                let result = match result {
                    // An analysis test asked for the failure as a provider.
                    Err(ds) if key.config.options().allow_analysis_failures => {
                        Ok(failure::failed(&key.label, &ds))
                    }
                    other => other,
                };
                (key, result, reused)
            })
            .collect();
        for key in &level {
            if depends_on_failed(&configured, &failed, key) {
                failed.insert(key.clone());
            }
        }
        for (key, result, reused) in results {
            match result {
                Ok(a) => {
                    // Bazel's "N targets configured": those configured now, not failures.
                    analysis.analysed += usize::from(!reused);
                    analysis.targets.insert(key, a);
                }
                Err(ds) => {
                    failed.insert(key);
                    analysis.errors.extend(ds);
                }
            }
        }
        readers_left.level_done(&configured, &level, &restored, &mut analysis.targets);
    }
    // `--aspects` read everything they propagate to. (The command reads the requested
    // targets' outputs and output groups from their plain data, `Analysis::read_providers`.)
    if !config.aspects.is_empty() {
        let roots = configured.roots.iter().map(|(_, k)| k.clone());
        let wanted = transitive_closure(&configured, roots);
        let (_, restore_errors) =
            incremental::materialize(&mut analysis.targets, &configured, wanted);
        analysis.errors.extend(restore_errors);
    }
    top_level_aspects(graph, &configured, &aspect_store, config, &mut analysis);
    analysis.aspects = aspect_store.into_results();
    analysis.configured = Some(configured);
    analysis
}

/// Applies `--aspects` to the requested rule targets that were analysed, as Bazel does: each
/// aspect (after those it requires), propagating from there.
fn top_level_aspects(
    graph: &TargetGraph,
    configured: &ConfiguredGraph,
    store: &aspects::AspectStore,
    config: &AnalysisConfig,
    analysis: &mut Analysis,
) {
    if config.aspects.is_empty() {
        return;
    }
    let paths = match aspects::paths(graph, &config.aspects, None) {
        Ok(p) => p,
        Err(e) => {
            analysis
                .errors
                .push(Diagnostic::new(format!("--aspects: {e}")));
            return;
        }
    };
    let env = aspects::AspectEnv {
        graph,
        configured,
        done: &analysis.targets,
        store,
    };
    let mut roots: Vec<&(Label, ConfiguredLabel)> = configured.roots.iter().collect();
    roots.sort();
    let mut applied = Vec::new();
    let mut errors = Vec::new();
    for (label, key) in roots {
        if !env.done.contains_key(key) || graph.target(label).and_then(|t| t.rule()).is_none() {
            continue;
        }
        for path in &paths {
            let aspect_key = env.through_aliases(&aspects::AspectKey {
                target: key.clone(),
                path: path.clone(),
            });
            // Only the aspects the command line names are reported, not those they require.
            let named = config.aspects.contains(&aspect_key.aspect().id);
            match env.applied(&aspect_key) {
                Ok(Some(_)) if named => applied.push((label.clone(), aspect_key)),
                Ok(_) => {}
                Err(e) => {
                    let target = graph.target(label).expect("checked above");
                    errors.push(Diagnostic::at(&target.location, e));
                }
            }
        }
    }
    errors.dedup_by(|a, b| a.message == b.message);
    analysis.errors.extend(errors);
    analysis.top_level_aspects = applied;
}

/// How many dependents still to be analysed read each configured target's providers: a
/// target none reads any more has its Starlark values let go of (`incremental::release`).
struct ReadersLeft {
    left: HashMap<ConfiguredLabel, usize>,
    /// Targets whose Starlark values stay to the end: what an aspect may read (everything
    /// reachable from a rule applying aspects, or with `--aspects` everything), or all of
    /// them when the command reads any target's providers.
    pinned: HashSet<ConfiguredLabel>,
    keep: Keep,
}

impl ReadersLeft {
    fn new(configured: &ConfiguredGraph, config: &AnalysisConfig, keep: Keep) -> ReadersLeft {
        let mut left: HashMap<ConfiguredLabel, usize> = HashMap::new();
        let mut pinned = HashSet::new();
        if keep == Keep::WhatTheBuildReads && config.aspects.is_empty() {
            for node in configured.nodes.values() {
                for dep in incremental::rule_deps(node) {
                    *left.entry(dep.clone()).or_default() += 1;
                }
            }
            let applying = configured
                .nodes
                .values()
                .filter(|n| n.applies_aspects)
                .flat_map(|n| n.deps.iter().filter_map(|d| d.rule.clone()));
            pinned.extend(transitive_closure(configured, applying));
        }
        let keep = match config.aspects.is_empty() {
            true => keep,
            false => Keep::Everything,
        };
        ReadersLeft { left, pinned, keep }
    }

    /// Whether `key`'s Starlark values are let go of once the dependents that read them are
    /// analysed.
    fn to_be_let_go(&self, key: &ConfiguredLabel) -> bool {
        self.keep == Keep::WhatTheBuildReads
            && !self.pinned.contains(key)
            && self.left.get(key).is_some_and(|n| *n > 0)
    }

    /// After the targets of `level` are analysed (or skipped): those of their dependencies
    /// that no one reads any more, those of `level` that nothing reads, and those made into
    /// Starlark values for this level (`restored`) let go of their Starlark values.
    fn level_done(
        &mut self,
        configured: &ConfiguredGraph,
        level: &[ConfiguredLabel],
        restored: &[ConfiguredLabel],
        targets: &mut HashMap<ConfiguredLabel, Analyzed>,
    ) {
        if self.keep == Keep::Everything {
            return;
        }
        let mut unread: Vec<&ConfiguredLabel> = Vec::new();
        for key in level {
            for dep in incremental::rule_deps(&configured.nodes[key]) {
                let left = self.left.get_mut(dep).expect("counted in new");
                *left -= 1;
                if *left == 0 {
                    unread.push(dep);
                }
            }
        }
        let done = |key: &&ConfiguredLabel| self.left.get(*key).is_none_or(|n| *n == 0);
        unread.extend(level.iter().filter(done));
        unread.extend(restored.iter().filter(done));
        for key in unread {
            if !self.pinned.contains(key)
                && let Some(analyzed) = targets.get_mut(key)
            {
                incremental::release(analyzed);
            }
        }
    }
}

/// `keys` and every configured target they reach.
fn transitive_closure(
    configured: &ConfiguredGraph,
    keys: impl IntoIterator<Item = ConfiguredLabel>,
) -> Vec<ConfiguredLabel> {
    let mut seen: HashSet<ConfiguredLabel> = HashSet::new();
    let mut stack: Vec<ConfiguredLabel> = keys.into_iter().collect();
    while let Some(key) = stack.pop() {
        if let Some(node) = configured.nodes.get(&key)
            && seen.insert(key)
        {
            stack.extend(node.deps.iter().filter_map(|d| d.rule.clone()));
        }
    }
    seen.into_iter().collect()
}

/// Runs the analysis of one configured target whose dependencies are in `done`: under an
/// analysis test, a dependency's failure is the target's too.
fn analyze_one(
    graph: &TargetGraph,
    target: &crate::loading::Target,
    key: &ConfiguredLabel,
    node: &configured_graph::Node,
    aspect_env: &aspects::AspectEnv,
) -> Result<Analyzed, Vec<Diagnostic>> {
    let done = aspect_env.done;
    let failed_deps: Vec<(Label, String)> = match key.config.options().allow_analysis_failures {
        false => Vec::new(),
        true => node
            .deps
            .iter()
            .filter_map(|d| done.get(d.rule.as_ref()?))
            .flat_map(failure::causes_of)
            .collect(),
    };
    if !failed_deps.is_empty() {
        return Ok(failure::with_causes(&key.label, &failed_deps));
    }
    let loaded = target.rule().expect("levels hold rule targets");
    let rule = node.configured(loaded).map_err(|d| vec![d.clone()])?;
    let missing = missing_inputs(graph, target, rule);
    if !missing.is_empty() {
        return Err(missing);
    }
    analyze_target(graph, target, key, node, aspect_env).map_err(|d| vec![d])
}

/// Whether a dependency of `key` failed: its error has been reported, and `key` is not
/// analysed.
fn depends_on_failed(
    configured: &ConfiguredGraph,
    failed: &BTreeSet<ConfiguredLabel>,
    key: &ConfiguredLabel,
) -> bool {
    configured.nodes[key]
        .deps
        .iter()
        .any(|d| d.rule.as_ref().is_some_and(|r| failed.contains(r)))
}

/// Configured targets, grouped so that every one comes in a later group than all those it
/// depends on.
fn levels(configured: &ConfiguredGraph) -> Vec<Vec<ConfiguredLabel>> {
    let mut level_of: HashMap<&ConfiguredLabel, usize> = HashMap::new();
    let mut keys: Vec<&ConfiguredLabel> = configured.nodes.keys().collect();
    keys.sort();
    for root in keys {
        // Iterative post-order: (key, children pushed?).
        let mut stack = vec![(root, false)];
        while let Some((key, expanded)) = stack.pop() {
            if level_of.contains_key(key) {
                continue;
            }
            let deps = configured.nodes[key]
                .deps
                .iter()
                .filter_map(|d| d.rule.as_ref());
            if !expanded {
                stack.push((key, true));
                for d in deps {
                    if !level_of.contains_key(d) && !stack.iter().any(|(l, e)| *e && *l == d) {
                        stack.push((d, false));
                    }
                }
                continue;
            }
            let level = deps
                .filter_map(|d| level_of.get(d))
                .map(|l| l + 1)
                .max()
                .unwrap_or(0);
            level_of.insert(key, level);
        }
    }
    let mut levels: Vec<Vec<ConfiguredLabel>> = Vec::new();
    for (key, level) in level_of {
        if levels.len() <= level {
            levels.resize(level + 1, Vec::new());
        }
        levels[level].push(key.clone());
    }
    for l in &mut levels {
        l.sort();
    }
    levels
}

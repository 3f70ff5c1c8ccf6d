//! Analysis: loaded targets in, actions and runfiles trees out.
//!
//! Rule implementations (Starlark) run bottom-up over the graph, each target in its own
//! Starlark heap, independent targets in parallel. A target's providers are frozen into its
//! `Analyzed` module so that dependents can read them (`dep[MyInfo]`); the actions it
//! registered come out as plain `Action`s for `exec`.

mod actions;
mod args;
mod attrs;
pub mod build_settings;
mod conditions;
mod configured;
pub mod cpp_fragment;
mod ctx;
mod inputs;
mod make_vars;
pub mod plan;
mod providers;
mod runfiles;
mod target;
mod values;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rayon::prelude::*;
use starlark::environment::{FrozenModule, Module};
use starlark::values::ValueLike;

pub use crate::core::layout::short_from_exec;
use inputs::{missing_inputs, missing_roots};
pub use providers::OutputGroups;
use target::analyze_target;
use values::{FileValue, TargetInfo};

use crate::core::{Action, Diagnostic, Label, RunfilesTree};
use crate::graph::TargetGraph;
use crate::loading::{Depset, TargetKind};

/// What analysing one rule target produced.
pub struct Analyzed {
    /// Holds the target's providers as its extra value (a frozen `TargetInfo`).
    module: FrozenModule,
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
    /// `--copt`, `--linkopt`, `--features`, ...: `ctx.fragments.cpp` and `ctx.features`.
    pub cpp: cpp_fragment::CppOptions,
}

/// The analysed targets, by label, and what went wrong.
#[derive(Default)]
pub struct Analysis {
    pub targets: HashMap<Label, Analyzed>,
    pub errors: Vec<Diagnostic>,
}

impl Analysis {
    /// Every action of every analysed target.
    pub fn actions(&self) -> impl Iterator<Item = &Action> {
        self.targets.values().flat_map(|a| a.actions.iter())
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
                vec![FileValue::generated(generating_rule, &label.name, false).path]
            }
            TargetKind::PackageGroup(_) => Vec::new(),
            TargetKind::Rule(_) => {
                let Some(analyzed) = self.targets.get(label) else {
                    return Vec::new();
                };
                Module::with_temp_heap(|module| {
                    let heap = module.heap();
                    let Some(info) = analyzed.module.owned_extra_value() else {
                        return Vec::new();
                    };
                    let info = heap.access_owned_frozen_value(&info);
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
            }
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
        let Some(analyzed) = self.targets.get(label) else {
            return out;
        };
        let named: Vec<&String> = groups.groups.iter().filter(|g| *g != "default").collect();
        if named.is_empty() {
            return out;
        }
        Module::with_temp_heap(|module| {
            let heap = module.heap();
            let Some(info) = analyzed.module.owned_extra_value() else {
                return;
            };
            let info = heap.access_owned_frozen_value(&info);
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
        });
        out
    }
}

/// Analyses `roots` and everything they depend on (already loaded in `graph`).
pub fn analyze(graph: &TargetGraph, roots: &BTreeSet<Label>, config: &AnalysisConfig) -> Analysis {
    // Which select() conditions hold, decided once for the build.
    let settings = configured::Settings::new(graph, config);
    let levels = levels(graph, roots, &settings);
    let mut analysis = Analysis::default();
    analysis.errors.extend(missing_roots(graph, roots));
    let mut failed: BTreeSet<Label> = BTreeSet::new();
    for level in levels {
        let results: Vec<(Label, Result<Analyzed, Vec<Diagnostic>>)> = level
            .par_iter()
            .filter(|l| {
                // A target whose dependency failed is not analysed; the dependency's error
                // has been reported.
                !depends_on_failed(graph, &settings, &failed, l)
            })
            .map(|label| {
                let target = graph
                    .target(label)
                    .expect("levels hold loaded rule targets");
                let missing = missing_inputs(graph, target, &settings);
                let result = if missing.is_empty() {
                    analyze_target(graph, target, &analysis.targets, config, &settings)
                        .map_err(|d| vec![d])
                } else {
                    Err(missing)
                };
                (label.clone(), result)
            })
            .collect();
        for l in &level {
            if depends_on_failed(graph, &settings, &failed, l) {
                failed.insert(l.clone());
            }
        }
        for (label, result) in results {
            match result {
                Ok(a) => {
                    analysis.targets.insert(label, a);
                }
                Err(ds) => {
                    failed.insert(label);
                    analysis.errors.extend(ds);
                }
            }
        }
    }
    analysis
}

/// Whether a dependency of `label` (or the target a label_flag set on the command line
/// chose) failed: its error has been reported, and `label` is not analysed.
fn depends_on_failed(
    graph: &TargetGraph,
    settings: &configured::Settings,
    failed: &BTreeSet<Label>,
    label: &Label,
) -> bool {
    graph.deps(label).iter().any(|(_, d)| failed.contains(*d))
        || settings
            .chosen_target(label)
            .is_some_and(|c| failed.contains(c))
}

/// Rule targets reachable from `roots`, grouped so that every target comes in a later
/// group than all rule targets it depends on.
fn levels(
    graph: &TargetGraph,
    roots: &BTreeSet<Label>,
    settings: &configured::Settings,
) -> Vec<Vec<Label>> {
    let mut level_of: HashMap<Label, usize> = HashMap::new();
    for root in roots {
        // Iterative post-order: (label, children pushed?).
        let mut stack = vec![(root.clone(), false)];
        while let Some((label, expanded)) = stack.pop() {
            if level_of.contains_key(&label) {
                continue;
            }
            // A label_flag the command line set depends on the target it chose.
            let deps: Vec<Label> = graph
                .deps(&label)
                .into_iter()
                .map(|(_, d)| d.clone())
                .chain(settings.chosen_target(&label).cloned())
                .collect();
            if !expanded {
                stack.push((label.clone(), true));
                for d in deps {
                    if !level_of.contains_key(&d) && !stack.iter().any(|(l, e)| *e && *l == d) {
                        stack.push((d, false));
                    }
                }
                continue;
            }
            let level = deps
                .iter()
                .filter_map(|d| level_of.get(d))
                .map(|l| l + 1)
                .max()
                .unwrap_or(0);
            level_of.insert(label, level);
        }
    }
    let mut levels: Vec<Vec<Label>> = Vec::new();
    for (label, level) in level_of {
        if graph.target(&label).is_some_and(|t| t.rule().is_some()) {
            if levels.len() <= level {
                levels.resize(level + 1, Vec::new());
            }
            levels[level].push(label);
        }
    }
    for l in &mut levels {
        l.sort();
    }
    levels
}

//! Analysis: loaded targets in, actions and runfiles trees out.
//!
//! Rule implementations (Starlark) run bottom-up over the graph, each target in its own
//! Starlark heap, independent targets in parallel. A target's providers are frozen into its
//! `Analyzed` module so that dependents can read them (`dep[MyInfo]`); the actions it
//! registered come out as plain `Action`s for `exec`.

mod configured;
mod ctx;
pub mod plan;
mod values;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use rayon::prelude::*;
use starlark::collections::SmallMap;
use starlark::environment::{FrozenModule, Module};
use starlark::eval::Evaluator;
use starlark::values::dict::AllocDict;
use starlark::values::list::{AllocList, ListRef};
use starlark::values::structs::AllocStruct;
use starlark::values::{Heap, Value, ValueLike};

pub use crate::core::layout::short_from_exec;
use ctx::{ActionsState, ActionsValue, CtxValue};
use values::{DEFAULT_INFO_ID, FileValue, TargetInfo, TargetInfoGen, runfiles_files};

use crate::core::{Action, Diagnostic, ExecPath, Label, PackageId, RunfilesTree, layout};
use crate::graph::TargetGraph;
use crate::loading::{
    AllowFiles, AttrKind, AttrValue, Depset, EvalContext, FileKind, FrozenRuleCallable, LabelValue,
    ProviderInstance, RuleTarget, Target, TargetKind, make_depset,
};

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

/// Analyses `roots` and everything they depend on (already loaded in `graph`).
pub fn analyze(graph: &TargetGraph, roots: &BTreeSet<Label>, config: &AnalysisConfig) -> Analysis {
    let levels = levels(graph, roots);
    // Which select() conditions hold, decided once for the build.
    let settings = configured::Settings::new(graph, config);
    let mut analysis = Analysis::default();
    analysis.errors.extend(missing_roots(graph, roots));
    let mut failed: BTreeSet<Label> = BTreeSet::new();
    for level in levels {
        let results: Vec<(Label, Result<Analyzed, Vec<Diagnostic>>)> = level
            .par_iter()
            .filter(|l| {
                // A target whose dependency failed is not analysed; the dependency's error
                // has been reported.
                !graph.deps(l).iter().any(|(_, d)| failed.contains(*d))
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
            if graph.deps(l).iter().any(|(_, d)| failed.contains(*d)) {
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

/// The source files `target` depends on (in this configuration) that do not exist: a label
/// that names no rule and no file, as Bazel reports it (`missing input file`), with a close
/// rule name as a hint for a typo. Each check notes the file's directory, so that a reused
/// plan notices when the file goes away.
fn missing_inputs(
    graph: &TargetGraph,
    target: &Target,
    settings: &configured::Settings,
) -> Vec<Diagnostic> {
    let Some(rule) = target.rule() else {
        return Vec::new();
    };
    // An unresolvable select() is reported by the analysis itself.
    let Ok(configured) = settings.resolve(graph, target, rule) else {
        return Vec::new();
    };
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
fn missing_roots(graph: &TargetGraph, roots: &BTreeSet<Label>) -> Vec<Diagnostic> {
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

/// Rule targets reachable from `roots`, grouped so that every target comes in a later
/// group than all rule targets it depends on.
fn levels(graph: &TargetGraph, roots: &BTreeSet<Label>) -> Vec<Vec<Label>> {
    let mut level_of: HashMap<Label, usize> = HashMap::new();
    for root in roots {
        // Iterative post-order: (label, children pushed?).
        let mut stack = vec![(root.clone(), false)];
        while let Some((label, expanded)) = stack.pop() {
            if level_of.contains_key(&label) {
                continue;
            }
            let deps: Vec<Label> = graph
                .deps(&label)
                .into_iter()
                .map(|(_, d)| d.clone())
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

/// A `DefaultInfo` instance with the given fields.
fn default_info<'v>(heap: Heap<'v>, fields: Vec<(&str, Value<'v>)>) -> Value<'v> {
    let mut map = SmallMap::new();
    for (k, v) in fields {
        map.insert(k.to_owned(), v);
    }
    heap.alloc(crate::loading::ProviderInstanceGen {
        id: DEFAULT_INFO_ID.to_owned(),
        name: "DefaultInfo".to_owned(),
        fields: map,
    })
}

/// The dependency object for `label` in the current heap.
fn dep_value<'v>(
    heap: Heap<'v>,
    graph: &TargetGraph,
    done: &HashMap<Label, Analyzed>,
    label: &Label,
) -> Option<Value<'v>> {
    let target = graph.target(label)?;
    let file = match &target.kind {
        TargetKind::Rule(_) => {
            let analyzed = done.get(label)?;
            return Some(heap.access_owned_frozen_value(&analyzed.module.owned_extra_value()?));
        }
        TargetKind::SourceFile => FileValue::source(label),
        TargetKind::GeneratedFile { generating_rule } => {
            FileValue::generated(generating_rule, &label.name, false)
        }
        TargetKind::PackageGroup(_) => return None,
    };
    let files = make_depset(vec![heap.alloc(file)], Vec::new(), "default", heap).ok()?;
    let runfiles = values::new_runfiles(files, heap).ok()?;
    let info = default_info(
        heap,
        vec![
            ("files", files),
            ("default_runfiles", runfiles),
            ("runfiles", runfiles),
        ],
    );
    Some(heap.alloc(TargetInfoGen {
        label: label.to_string(),
        providers: vec![info],
    }))
}

fn files_of_dep<'v>(dep: Value<'v>) -> Vec<Value<'v>> {
    TargetInfo::from_value(dep)
        .and_then(|t| t.default_info("files"))
        .and_then(Depset::from_value)
        .map(|d| d.to_list())
        .unwrap_or_default()
}

fn plain_value<'v>(heap: Heap<'v>, value: &AttrValue) -> Value<'v> {
    match value {
        AttrValue::None => Value::new_none(),
        AttrValue::Bool(b) => Value::new_bool(*b),
        AttrValue::Int(i) => heap.alloc(*i),
        AttrValue::String(s) => heap.alloc(s.as_str()),
        AttrValue::StringList(v) => heap.alloc(AllocList(v.iter().map(|s| s.as_str()))),
        AttrValue::StringDict(kv) => {
            heap.alloc(AllocDict(kv.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
        }
        _ => Value::new_none(),
    }
}

struct AttrValues<'v> {
    attr: Vec<(String, Value<'v>)>,
    files: Vec<(String, Value<'v>)>,
    file: Vec<(String, Value<'v>)>,
    executable: Vec<(String, Value<'v>)>,
    outputs: Vec<(String, Value<'v>)>,
    direct_deps: Vec<Value<'v>>,
    data_deps: Vec<Value<'v>>,
}

fn analyze_target(
    graph: &TargetGraph,
    target: &Target,
    done: &HashMap<Label, Analyzed>,
    config: &AnalysisConfig,
    settings: &configured::Settings,
) -> Result<Analyzed, Diagnostic> {
    let rule = target.rule().expect("only rules are analysed");
    let label = &target.label;
    let loader = graph.loader();
    let workspace_name = loader.workspace().name.clone();
    let fail = |message: String| {
        Diagnostic::at(
            &target.location,
            format!("in {} {label}: {message}", target.kind_name()),
        )
    };
    // The attributes as this configuration sees them: each select() resolved.
    let configured = settings.resolve(graph, target, rule).map_err(fail)?;
    let rule: &RuleTarget = &configured;
    let callable = loader
        .rule_callable(&rule.defined_in, &rule.class)
        .map_err(|d| fail(d.to_string()))?;
    let package = graph.package(&label.package_id());
    let package_features = package.map(|p| p.features.clone()).unwrap_or_default();
    let build_file = package.map(|p| p.build_file.clone()).unwrap_or_default();

    Module::with_temp_heap(|module| -> Result<Analyzed, Diagnostic> {
        let heap = module.heap();
        let rule_value = heap.access_owned_frozen_value(&callable);
        let Some(frozen_rule) = rule_value.downcast_ref::<FrozenRuleCallable>() else {
            return Err(fail(format!("'{}' is not a rule", rule.class)));
        };
        let implementation = frozen_rule.implementation.to_value();
        let decl = frozen_rule.decl.clone();

        let executable_file =
            (rule.is_executable).then(|| FileValue::generated(label, &label.name, false));
        let mut state = ActionsState {
            owner: label.clone(),
            requirements: requirements_from_tags(rule),
            ..Default::default()
        };
        if let Some(exe) = &executable_file {
            state.declared.insert(exe.path.clone(), false);
            state.implicit_executable = Some(exe.path.clone());
        }
        let values =
            attr_values(heap, graph, done, target, rule, &decl, &mut state).map_err(fail)?;

        let actions = heap.alloc_complex_no_freeze(ActionsValue {
            state: RefCell::new(state),
        });
        let own_outputs: Vec<Value> = values
            .outputs
            .iter()
            .flat_map(|(_, v)| match ListRef::from_value(*v) {
                Some(list) => list.content().to_vec(),
                None => vec![*v],
            })
            .filter(|v| v.downcast_ref::<FileValue>().is_some())
            .collect();
        let mut outputs = values.outputs;
        if let Some(exe) = &executable_file {
            outputs.push(("executable".into(), heap.alloc(exe.clone())));
        }
        let features = features(&package_features, rule);
        let ctx_fields: Vec<(String, Value)> = vec![
            (
                "label".into(),
                heap.alloc(LabelValue {
                    label: label.clone(),
                }),
            ),
            ("attr".into(), heap.alloc(AllocStruct(values.attr))),
            ("files".into(), heap.alloc(AllocStruct(values.files))),
            ("file".into(), heap.alloc(AllocStruct(values.file))),
            (
                "executable".into(),
                heap.alloc(AllocStruct(values.executable)),
            ),
            ("outputs".into(), heap.alloc(AllocStruct(outputs))),
            ("actions".into(), actions),
            ("workspace_name".into(), heap.alloc(workspace_name.as_str())),
            (
                "bin_dir".into(),
                heap.alloc(AllocStruct([("path", layout::bin_dir())])),
            ),
            (
                "genfiles_dir".into(),
                heap.alloc(AllocStruct([("path", layout::bin_dir())])),
            ),
            (
                "build_file_path".into(),
                heap.alloc(layout::source_path(
                    &build_file.repo,
                    &build_file.package,
                    &build_file.name,
                )),
            ),
            (
                "features".into(),
                heap.alloc(AllocList(features.iter().map(String::as_str))),
            ),
            (
                "disabled_features".into(),
                heap.alloc(AllocList(Vec::<&str>::new())),
            ),
            ("var".into(), heap.alloc(AllocDict(make_vars(config)))),
        ];
        let ctx = heap.alloc_complex_no_freeze(CtxValue {
            fields: ctx_fields,
            direct_deps: values.direct_deps,
            label: label.clone(),
            workspace_name: workspace_name.clone(),
            data_deps: values.data_deps,
            own_outputs,
        });

        let eval_ctx = EvalContext {
            base: PackageId::new(&label.repo, &label.package),
            file: build_file.clone(),
            kind: FileKind::Bzl,
        };
        let returned = {
            let mut eval = Evaluator::new(&module);
            eval.extra = Some(&eval_ctx);
            eval.eval_function(implementation, &[ctx], &[])
                .map_err(|e| fail(format!("\n{}", render(&e))))?
        };

        let mut providers = providers_of(returned).map_err(fail)?;
        // `rule(provides = [...])` is a promise the implementation must keep.
        for id in &decl.provides {
            if !providers
                .iter()
                .any(|p| ProviderInstance::from_value(*p).is_some_and(|i| i.id == *id))
            {
                let name = id.rsplit('%').next().unwrap_or(id);
                return Err(fail(format!(
                    "the rule advertises the '{name}' provider (rule(provides = ...)), but the \
                     implementation did not return it"
                )));
            }
        }
        let actions_value = actions
            .downcast_ref::<ActionsValue>()
            .expect("allocated above");
        let mut state = actions_value.state.replace(ActionsState::default());

        // DefaultInfo: fill in what the implementation left out, as Bazel does.
        let given = providers.iter().position(|p| {
            ProviderInstance::from_value(*p).is_some_and(|i| i.id == DEFAULT_INFO_ID)
        });
        let field = |name: &str| {
            given
                .and_then(|i| ProviderInstance::from_value(providers[i]))
                .and_then(|p| p.field(name))
                .filter(|v| !v.is_none())
        };
        let implicit_used = executable_file
            .as_ref()
            .is_some_and(|f| state.declared.get(&f.path) == Some(&true));
        let executable = match field("executable") {
            Some(e) => Some(
                e.downcast_ref::<FileValue>()
                    .ok_or_else(|| fail("DefaultInfo.executable must be a File".into()))?
                    .clone(),
            ),
            None => executable_file.clone().filter(|_| implicit_used),
        };
        // An unused `ctx.outputs.executable` is no output at all.
        if let Some(f) = &executable_file
            && !implicit_used
            && state.implicit_executable.is_some()
        {
            state.declared.remove(&f.path);
        }
        if rule.is_executable && executable.is_none() {
            return Err(fail(
                "an executable rule must create an executable: return DefaultInfo(executable = ...) or write ctx.outputs.executable".into(),
            ));
        }
        let files = match field("files") {
            Some(f) => f,
            None => {
                let mut direct: Vec<Value> = Vec::new();
                for (path, _) in state.declared.iter() {
                    if predeclared_or_executable(path, rule, label, executable.as_ref()) {
                        direct.push(heap.alloc(FileValue {
                            path: path.clone(),
                            short_path: short_from_exec(path),
                            is_source: false,
                            is_directory: false,
                            owner: label.clone(),
                        }));
                    }
                }
                make_depset(direct, Vec::new(), "default", heap).map_err(|e| fail(e.to_string()))?
            }
        };
        let runfiles = match field("default_runfiles").or_else(|| field("runfiles")) {
            Some(r) => r,
            None => {
                let empty = make_depset(Vec::new(), Vec::new(), "default", heap)
                    .map_err(|e| fail(e.to_string()))?;
                values::new_runfiles(empty, heap).map_err(|e| fail(e.to_string()))?
            }
        };
        let mut info_fields = vec![
            ("files", files),
            ("default_runfiles", runfiles),
            ("runfiles", runfiles),
        ];
        if let Some(d) = field("data_runfiles") {
            info_fields.push(("data_runfiles", d));
        }
        if let Some(exe) = &executable {
            info_fields.push(("executable", heap.alloc(exe.clone())));
        }
        let info = default_info(heap, info_fields);
        match given {
            Some(i) => providers[i] = info,
            None => providers.push(info),
        }

        // Every declared output must come from an action, as in Bazel.
        if let Some((first, _)) = state.declared.iter().find(|(_, generated)| !**generated) {
            return Err(fail(format!(
                "the file '{}' is declared but no action creates it; \
                 create it with ctx.actions (write, run, run_shell, symlink, ...)",
                short_from_exec(first)
            )));
        }

        let runfiles_tree = executable.as_ref().map(|exe| {
            let mut entries: BTreeMap<String, String> = BTreeMap::new();
            entries.insert(exe.runfiles_path(&workspace_name), exe.path.clone());
            if let Some(files) = runfiles_files(runfiles).and_then(Depset::from_value) {
                for f in files.to_list() {
                    if let Some(f) = f.downcast_ref::<FileValue>() {
                        entries.insert(f.runfiles_path(&workspace_name), f.path.clone());
                        // External files also appear under `<ws>/external/<repo>/`, as with
                        // Bazel's --legacy_external_runfiles (on by default).
                        if let Some(external) = f.short_path.strip_prefix("../") {
                            entries.insert(
                                format!("{workspace_name}/external/{external}"),
                                f.path.clone(),
                            );
                        }
                    }
                }
            }
            // Then the extra links, which win over a file at the same path, as in Bazel.
            let (symlinks, root_symlinks) = values::runfiles_symlinks(runfiles);
            for (path, target) in symlinks {
                entries.insert(format!("{workspace_name}/{path}"), target);
            }
            for (path, target) in root_symlinks {
                entries.insert(path, target);
            }
            RunfilesTree {
                executable: ExecPath::new(exe.path.clone()),
                entries: entries
                    .into_iter()
                    .map(|(rf, path)| (rf, ExecPath::new(path)))
                    .collect(),
            }
        });

        module.set_extra_value(heap.alloc(TargetInfoGen {
            label: label.to_string(),
            providers,
        }));
        let actions = std::mem::take(&mut state.actions);
        let module = module
            .freeze()
            .map_err(|e| fail(format!("a provider holds a value that cannot outlive analysis (such as ctx or an Args object): {e:?}")))?;
        Ok(Analyzed {
            module,
            actions,
            executable: executable.map(|e| e.path),
            runfiles: runfiles_tree,
            is_test: rule.is_test,
            args: match rule.attrs.get("args") {
                Some(AttrValue::StringList(a)) => a.clone(),
                _ => Vec::new(),
            },
            test: rule.is_test.then(|| plan::test_spec(&rule.attrs)),
        })
    })
}

/// A Starlark error as text without a doubled `error: ` prefix.
fn render(e: &starlark::Error) -> String {
    // The implementation is called from Rust; its caller's frame says nothing useful.
    e.to_string()
        .lines()
        .filter(|l| l.trim() != "File <builtin>, in <module>")
        .collect::<Vec<_>>()
        .join("\n")
        .trim_end()
        .to_owned()
}

/// Whether a declared file is one of the rule's own outputs by declaration (an `attr.output`,
/// a predeclared output, or the executable): those are its default outputs.
fn predeclared_or_executable(
    path: &str,
    rule: &RuleTarget,
    label: &Label,
    executable: Option<&FileValue>,
) -> bool {
    if executable.is_some_and(|e| e.path == path) {
        return true;
    }
    rule.attrs.values().any(|v| match v {
        AttrValue::Output(l) => FileValue::generated(label, &l.name, false).path == path,
        AttrValue::OutputList(ls) => ls
            .iter()
            .any(|l| FileValue::generated(label, &l.name, false).path == path),
        _ => false,
    })
}

fn requirements_from_tags(rule: &RuleTarget) -> Vec<String> {
    match rule.attrs.get("tags") {
        Some(AttrValue::StringList(tags)) => tags
            .iter()
            .filter(|t| ctx::is_known_requirement(t))
            .cloned()
            .collect(),
        _ => Vec::new(),
    }
}

/// Package features, then the target's: `-x` removes `x`.
fn features(package: &[String], rule: &RuleTarget) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let own = match rule.attrs.get("features") {
        Some(AttrValue::StringList(v)) => v.clone(),
        _ => Vec::new(),
    };
    for f in package.iter().chain(own.iter()) {
        match f.strip_prefix('-') {
            Some(removed) => out.retain(|x| x != removed),
            None => {
                if !out.contains(f) {
                    out.push(f.clone());
                }
            }
        }
    }
    out
}

fn make_vars(config: &AnalysisConfig) -> Vec<(String, String)> {
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    vars.insert("BINDIR".into(), layout::bin_dir());
    vars.insert("GENDIR".into(), layout::bin_dir());
    vars.insert("COMPILATION_MODE".into(), "fastbuild".into());
    vars.insert(
        "TARGET_CPU".into(),
        layout::config_name()
            .split('-')
            .next()
            .unwrap_or("")
            .to_owned(),
    );
    for (k, v) in &config.defines {
        vars.insert(k.clone(), v.clone());
    }
    vars.into_iter().collect()
}

/// The providers an implementation returned: a list of provider instances, one instance,
/// or None.
fn providers_of(returned: Value) -> Result<Vec<Value>, String> {
    if returned.is_none() {
        return Ok(Vec::new());
    }
    let items: Vec<Value> = match ListRef::from_value(returned) {
        Some(list) => list.content().to_vec(),
        None => vec![returned],
    };
    let mut seen = BTreeSet::new();
    for item in &items {
        let Some(p) = ProviderInstance::from_value(*item) else {
            return Err(format!(
                "the implementation must return a list of providers, but returned {} ({})",
                item.to_repr(),
                item.get_type()
            ));
        };
        if !seen.insert(p.id.clone()) {
            return Err(format!("the implementation returned {} twice", p.name));
        }
    }
    Ok(items)
}

#[allow(clippy::too_many_arguments)]
fn attr_values<'v>(
    heap: Heap<'v>,
    graph: &TargetGraph,
    done: &HashMap<Label, Analyzed>,
    target: &Target,
    rule: &RuleTarget,
    decl: &crate::loading::RuleDecl,
    state: &mut ActionsState,
) -> Result<AttrValues<'v>, String> {
    let mut v = AttrValues {
        attr: Vec::new(),
        files: Vec::new(),
        file: Vec::new(),
        executable: Vec::new(),
        outputs: Vec::new(),
        direct_deps: Vec::new(),
        data_deps: Vec::new(),
    };
    let label = &target.label;
    let dep = |l: &Label| -> Result<Value<'v>, String> {
        dep_value(heap, graph, done, l)
            .ok_or_else(|| format!("dependency '{l}' has not been analysed"))
    };
    for (name, value) in &rule.attrs {
        if name == "visibility" {
            continue;
        }
        let spec = decl.attrs.iter().find(|(n, _)| n == name).map(|(_, s)| s);
        match value {
            AttrValue::Label(l) => {
                let d = dep(l)?;
                v.attr.push((name.clone(), d));
                v.direct_deps.push(d);
                if name == "data" {
                    v.data_deps.push(d);
                }
                let files = files_of_dep(d);
                if let Some(spec) = spec {
                    check_providers(name, &spec.providers, d, l, graph)?;
                    if spec.allow_single_file {
                        if files.len() != 1 {
                            return Err(format!(
                                "attribute '{name}' must be a single file, but '{l}' has {} files",
                                files.len()
                            ));
                        }
                        v.file.push((name.clone(), files[0]));
                    }
                    check_extensions(name, &spec.allow_files, &files, l)?;
                    if spec.executable {
                        let exe =
                            TargetInfo::from_value(d).and_then(|t| t.default_info("executable"));
                        let exe = match exe {
                            Some(e) => e,
                            // A single source file can be executable too (a script).
                            None if files.len() == 1 => files[0],
                            None => {
                                return Err(format!("attribute '{name}': '{l}' is not executable"));
                            }
                        };
                        register_tool(state, done, l, exe);
                        v.executable.push((name.clone(), exe));
                    }
                }
                v.files.push((name.clone(), heap.alloc(AllocList(files))));
            }
            AttrValue::LabelList(ls) => {
                let mut deps = Vec::with_capacity(ls.len());
                let mut files = Vec::new();
                for l in ls {
                    let d = dep(l)?;
                    let fs = files_of_dep(d);
                    if let Some(spec) = spec {
                        check_extensions(name, &spec.allow_files, &fs, l)?;
                        check_providers(name, &spec.providers, d, l, graph)?;
                    }
                    if let Some(exe) =
                        TargetInfo::from_value(d).and_then(|t| t.default_info("executable"))
                    {
                        register_tool(state, done, l, exe);
                    }
                    files.extend(fs);
                    deps.push(d);
                }
                v.direct_deps.extend(deps.iter().copied());
                if name == "data" || name == "deps" || name == "srcs" {
                    v.data_deps.extend(deps.iter().copied());
                }
                v.attr.push((name.clone(), heap.alloc(AllocList(deps))));
                v.files.push((name.clone(), heap.alloc(AllocList(files))));
            }
            AttrValue::LabelKeyedStringDict(kv) => {
                let mut entries = Vec::new();
                for (l, s) in kv {
                    let d = dep(l)?;
                    if let Some(spec) = spec {
                        check_providers(name, &spec.providers, d, l, graph)?;
                    }
                    v.direct_deps.push(d);
                    entries.push((d, heap.alloc(s.as_str())));
                }
                v.attr.push((name.clone(), heap.alloc(AllocDict(entries))));
            }
            AttrValue::Output(l) => {
                let f = state.declare_output(&l.name).map_err(|e| e.to_string())?;
                let f = heap.alloc(f);
                v.attr
                    .push((name.clone(), heap.alloc(LabelValue { label: l.clone() })));
                v.outputs.push((name.clone(), f));
            }
            AttrValue::OutputList(ls) => {
                let mut files = Vec::new();
                for l in ls {
                    files.push(
                        heap.alloc(state.declare_output(&l.name).map_err(|e| e.to_string())?),
                    );
                }
                v.attr.push((
                    name.clone(),
                    heap.alloc(AllocList(
                        ls.iter()
                            .map(|l| heap.alloc(LabelValue { label: l.clone() })),
                    )),
                ));
                v.outputs.push((name.clone(), heap.alloc(AllocList(files))));
            }
            AttrValue::None => {
                v.attr.push((name.clone(), Value::new_none()));
                if spec.is_some_and(|s| s.kind == AttrKind::Label) {
                    v.files
                        .push((name.clone(), heap.alloc(AllocList(Vec::<Value>::new()))));
                    if spec.is_some_and(|s| s.allow_single_file) {
                        v.file.push((name.clone(), Value::new_none()));
                    }
                    if spec.is_some_and(|s| s.executable) {
                        v.executable.push((name.clone(), Value::new_none()));
                    }
                } else if spec.is_some_and(|s| s.kind == AttrKind::Output) {
                    v.outputs.push((name.clone(), Value::new_none()));
                }
            }
            plain => v.attr.push((name.clone(), plain_value(heap, plain))),
        }
    }
    v.attr
        .push(("name".into(), heap.alloc(label.name.as_str())));
    let _ = target;
    Ok(v)
}

/// `providers = [...]` of a label attribute: a dependency that is a rule must return every
/// provider of at least one group (files are not checked, as in Bazel).
fn check_providers(
    attr: &str,
    groups: &[Vec<String>],
    dep: Value,
    label: &Label,
    graph: &TargetGraph,
) -> Result<(), String> {
    if groups.is_empty() || graph.target(label).is_none_or(|t| t.rule().is_none()) {
        return Ok(());
    }
    let Some(target) = TargetInfo::from_value(dep) else {
        return Ok(());
    };
    let has = |wanted: &String| {
        target.providers.iter().any(|p| {
            ProviderInstance::from_value(p.to_value())
                .is_some_and(|i| i.id == *wanted || i.name == *wanted)
        })
    };
    if groups.iter().any(|group| group.iter().all(has)) {
        return Ok(());
    }
    let name = |id: &String| id.rsplit('%').next().unwrap_or(id).to_owned();
    let missing: Vec<String> = groups
        .iter()
        .map(|g| {
            g.iter()
                .filter(|p| !has(p))
                .map(|p| format!("'{}'", name(p)))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    Err(format!(
        "in attribute '{attr}': '{label}' does not have mandatory providers: {}; the rule of \
         '{label}' must return {}",
        missing.join(" or "),
        if missing.len() == 1 {
            "it"
        } else {
            "one of these sets"
        }
    ))
}

/// Remembers a dependency's executable and runfiles, so that actions running it also get
/// its runfiles as inputs.
fn register_tool(
    state: &mut ActionsState,
    done: &HashMap<Label, Analyzed>,
    label: &Label,
    exe: Value,
) {
    let Some(exe) = exe.downcast_ref::<FileValue>() else {
        return;
    };
    let runfiles = done
        .get(label)
        .and_then(|a| a.runfiles.as_ref())
        .map(|r| r.entries.iter().map(|(_, p)| p.clone()).collect())
        .unwrap_or_default();
    state.tool_runfiles.insert(exe.path.clone(), runfiles);
}

fn check_extensions(
    attr: &str,
    allow: &AllowFiles,
    files: &[Value],
    label: &Label,
) -> Result<(), String> {
    let AllowFiles::Extensions(exts) = allow else {
        return Ok(());
    };
    for f in files {
        if let Some(f) = f.downcast_ref::<FileValue>() {
            let name = f.basename();
            if !exts
                .iter()
                .any(|e| e.is_empty() || name.ends_with(e.as_str()))
            {
                let mut msg = format!(
                    "in attribute '{attr}': '{label}' provides '{}', but only",
                    f.short_path
                );
                for e in exts {
                    let _ = write!(msg, " '{e}'");
                }
                msg.push_str(" files are allowed");
                return Err(msg);
            }
        }
    }
    Ok(())
}

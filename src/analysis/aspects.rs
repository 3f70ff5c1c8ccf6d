//! Aspects: the aspect ids an attribute lists (`attr.label(aspects = [...])`) or `--aspects`
//! names, and the analysed targets, in; each aspect's providers and actions on each target it
//! visits out, and the dependency as the requesting rule sees it (its providers with the
//! aspects' merged in).
//!
//! As in Bazel 4, an aspect visits a target, then propagates along the attributes its
//! `attr_aspects` names (`"*"`: every attribute), and is analysed once per (target,
//! configuration, aspect with its parameters): `AspectStore` keeps each application, made
//! the first time a target's analysis needs it. An aspect applies only to rule targets whose
//! rule advertises its `required_providers`; one that `requires` another, or whose
//! `required_aspect_providers` an earlier aspect's `provides` covers, sees that aspect's
//! providers on the target. The implementation gets the target (with `target.actions`) and
//! a `ctx` whose `rule` is the visited target's attributes (`ctx.rule.attr`, with the
//! propagated aspects' providers on its dependencies, `files`, `file`, `executable`, `kind`)
//! and whose `attr`, `file`, `files` and `executable` are the aspect's own attributes: public
//! ones taken from the requesting rule's attribute of the same name, private ones from their
//! default (a dependency in the visited target's configuration, or its exec or host one).

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use allocative::Allocative;
use starlark::environment::{FrozenModule, Module};
use starlark::eval::Evaluator;
use starlark::values::list::AllocList;
use starlark::values::structs::AllocStruct;
use starlark::values::{
    Heap, NoSerialize, OwnedFrozenValue, ProvidesStaticType, StarlarkValue, Trace, Value,
    ValueLike, starlark_value,
};

use super::action_value::ActionValue;
use super::actions::{ActionsState, ActionsValue};
use super::attrs::{ApplyAspects, attr_values};
use super::configured_graph::{ConfiguredGraph, DepEdge, Node};
use super::ctx::{CtxEnv, new_ctx};
use super::providers::OUTPUT_GROUP_INFO_ID;
use super::values::{TargetInfo, TargetInfoGen};
use super::{Analyzed, ConfiguredLabel};
use crate::core::{Action, Label, PackageId};
use crate::graph::TargetGraph;
use crate::loading::{
    AspectDecl, AttrValue, EvalContext, FileKind, FrozenAspect, FrozenRuleCallable,
    ProviderInstance, RuleDecl, RuleTarget,
};

/// An aspect as one application names it: its id (`<bzl label>%<name>`) and its
/// parameters (public attributes, from the requesting rule).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AspectDescriptor {
    pub id: String,
    pub params: Vec<(String, String)>,
}

/// One application: an aspect (the last of `path`) on a configured target, seeing the
/// aspects before it in `path` applied to the same target first.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AspectKey {
    pub target: ConfiguredLabel,
    pub path: Vec<AspectDescriptor>,
}

impl AspectKey {
    /// The aspect applied.
    pub fn aspect(&self) -> &AspectDescriptor {
        self.path.last().expect("an aspect path is never empty")
    }
}

/// What applying an aspect to a target produced.
pub struct AnalyzedAspect {
    /// Holds the aspect's own providers as its extra value (a frozen `TargetInfo`).
    module: FrozenModule,
    pub actions: Vec<Action>,
}

impl AnalyzedAspect {
    /// The frozen `TargetInfo` holding the providers the aspect returned.
    pub fn providers(&self) -> Option<OwnedFrozenValue> {
        self.module.owned_extra_value()
    }
}

/// An application's result: none when the aspect does not apply to the target (its
/// required providers are not advertised), or the error's text.
type Applied = Result<Option<Arc<AnalyzedAspect>>, String>;

/// Every aspect application of one analysis, each made once, by whichever target's
/// analysis (on any thread) needs it first.
#[derive(Default)]
pub(super) struct AspectStore {
    cells: Mutex<HashMap<AspectKey, Arc<OnceLock<Applied>>>>,
}

impl AspectStore {
    fn cell(&self, key: &AspectKey) -> Arc<OnceLock<Applied>> {
        let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
        cells.entry(key.clone()).or_default().clone()
    }

    /// The applications that produced something.
    pub(super) fn into_results(self) -> HashMap<AspectKey, Arc<AnalyzedAspect>> {
        let cells = self.cells.into_inner().unwrap_or_else(|e| e.into_inner());
        cells
            .into_iter()
            .filter_map(|(k, cell)| Some((k, cell.get()?.as_ref().ok()?.as_ref()?.clone())))
            .collect()
    }
}

/// What applying aspects reads: the graphs, the targets analysed so far, the store.
pub(super) struct AspectEnv<'a> {
    pub graph: &'a TargetGraph<'a>,
    pub configured: &'a ConfiguredGraph,
    pub done: &'a HashMap<ConfiguredLabel, Analyzed>,
    pub store: &'a AspectStore,
}

/// An aspect loaded from its .bzl file.
struct LoadedAspect {
    id: String,
    owned: OwnedFrozenValue,
}

impl LoadedAspect {
    fn load(graph: &TargetGraph, id: &str) -> Result<LoadedAspect, String> {
        let (defined_in, name) = id
            .rsplit_once('%')
            .ok_or_else(|| format!("'{id}' does not name an aspect (<bzl label>%<name>)"))?;
        let owned = graph
            .loader()
            .rule_callable(defined_in, name)
            .map_err(|d| {
                // The .bzl file loaded but does not define the name; else why it did not load.
                if d.message == format!("rule '{name}' not found in {defined_in}") {
                    format!("{defined_in} has no aspect '{name}'")
                } else {
                    d.message
                }
            })?;
        if owned.value().downcast_ref::<FrozenAspect>().is_none() {
            return Err(format!("'{name}' in {defined_in} is not an aspect"));
        }
        Ok(LoadedAspect {
            id: id.to_owned(),
            owned,
        })
    }

    fn get(&self) -> &FrozenAspect {
        self.owned
            .value()
            .downcast_ref::<FrozenAspect>()
            .expect("checked when loaded")
    }

    fn decl(&self) -> &AspectDecl {
        &self.get().decl
    }
}

/// The aspects `ids` name, each after the aspects it `requires`, in the order they apply.
fn in_order(graph: &TargetGraph, ids: &[String]) -> Result<Vec<LoadedAspect>, String> {
    fn visit(
        graph: &TargetGraph,
        id: &str,
        visiting: &mut Vec<String>,
        out: &mut Vec<LoadedAspect>,
    ) -> Result<(), String> {
        if out.iter().any(|a| a.id == id) {
            return Ok(());
        }
        if visiting.iter().any(|v| v == id) {
            return Err(format!(
                "aspect '{id}' requires itself (through {})",
                visiting.join(" -> ")
            ));
        }
        let aspect = LoadedAspect::load(graph, id)?;
        visiting.push(id.to_owned());
        for required in &aspect.decl().requires {
            visit(graph, required, visiting, out)?;
        }
        visiting.pop();
        if !aspect.decl().unsupported.is_empty() {
            return Err(format!(
                "forge does not support aspect '{id}' yet: it is declared with {}",
                aspect.decl().unsupported.join(", ")
            ));
        }
        out.push(aspect);
        Ok(())
    }
    let mut out = Vec::new();
    for id in ids {
        visit(graph, id, &mut Vec::new(), &mut out)?;
    }
    Ok(out)
}

/// Whether `later` sees `earlier`'s providers: it requires it, or `earlier` provides every
/// provider of one of `later`'s `required_aspect_providers` groups.
fn sees(later: &AspectDecl, earlier: &LoadedAspect) -> bool {
    later.requires.contains(&earlier.id)
        || later
            .required_aspect_providers
            .iter()
            .any(|group| group.iter().all(|p| earlier.decl().provides.contains(p)))
}

/// The aspects `ids` name (and those they require) as paths, one per aspect, the aspect
/// last after those it sees. Public attributes take their value from `requester`, the rule
/// whose attribute lists the aspects; on the command line (no requester) an aspect with
/// public attributes is refused, as in Bazel 4.
pub(super) fn paths(
    graph: &TargetGraph,
    ids: &[String],
    requester: Option<&RuleTarget>,
) -> Result<Vec<Vec<AspectDescriptor>>, String> {
    let ordered = in_order(graph, ids)?;
    let mut paths: Vec<Vec<AspectDescriptor>> = Vec::new();
    for (i, aspect) in ordered.iter().enumerate() {
        let mut params = Vec::new();
        for (name, spec) in aspect
            .decl()
            .attrs
            .iter()
            .filter(|(n, _)| !n.starts_with('_'))
        {
            let Some(rule) = requester else {
                return Err(format!(
                    "Cannot instantiate parameterized aspect {} at the top level.",
                    aspect.id
                ));
            };
            let Some(AttrValue::String(value)) = rule.attrs.get(name) else {
                return Err(format!(
                    "Aspect {} requires rule {} to specify attribute '{name}' with type string.",
                    aspect.id, rule.class
                ));
            };
            if !spec.values.contains(&AttrValue::String(value.clone())) {
                let allowed: Vec<String> = spec.values.iter().map(|v| v.display()).collect();
                return Err(format!(
                    "{}: invalid value in '{name}' attribute: has to be one of {} instead of \
                     '{value}'",
                    aspect.id,
                    allowed.join(", ")
                ));
            }
            params.push((name.clone(), value.clone()));
        }
        let mut path: Vec<AspectDescriptor> = Vec::new();
        for (j, earlier) in ordered[..i].iter().enumerate() {
            if sees(aspect.decl(), earlier) {
                for d in &paths[j] {
                    if !path.contains(d) {
                        path.push(d.clone());
                    }
                }
            }
        }
        path.push(AspectDescriptor {
            id: aspect.id.clone(),
            params,
        });
        paths.push(path);
    }
    Ok(paths)
}

/// Labels an aspect's private attributes name, each with its attribute's `cfg`.
pub(super) type ToolLabels = Vec<(Label, Option<String>)>;

/// The private label attributes of the aspects `ids` name (and those they require): the
/// label, and the attribute's `cfg`. The configured graph makes them dependencies of the
/// target applying the aspects, so they are analysed first.
pub(super) fn tool_labels(graph: &TargetGraph, ids: &[String]) -> ToolLabels {
    let Ok(ordered) = in_order(graph, ids) else {
        // The error is reported where the aspects are applied.
        return Vec::new();
    };
    let mut out = Vec::new();
    for aspect in &ordered {
        for (name, spec) in &aspect.decl().attrs {
            if !name.starts_with('_') {
                continue;
            }
            for label in spec.default_value().dep_labels() {
                out.push((label.clone(), spec.cfg.clone()));
            }
        }
    }
    out
}

/// The attributes the aspects `ids` name (and those they require) propagate along.
pub(super) fn propagation_attrs(graph: &TargetGraph, ids: &[String]) -> Vec<String> {
    let mut attrs: Vec<String> = Vec::new();
    for aspect in in_order(graph, ids).unwrap_or_default() {
        for a in &aspect.decl().attr_aspects {
            if !attrs.contains(a) {
                attrs.push(a.clone());
            }
        }
    }
    attrs
}

/// Every label an aspect's private attribute names, for the aspects the graph's rules list
/// and those `command_line` names: loading must load them before analysis. An aspect the
/// command line names that does not exist is an error.
pub fn labels_to_load(
    graph: &TargetGraph,
    command_line: &[String],
) -> Result<BTreeSet<Label>, String> {
    in_order(graph, command_line).map_err(|e| format!("--aspects: {e}"))?;
    let mut rules = BTreeSet::new();
    for target in graph.targets() {
        if let Some(r) = target.rule() {
            rules.insert((r.defined_in.as_str(), r.class.as_str()));
        }
    }
    let mut ids: BTreeSet<String> = command_line.iter().cloned().collect();
    for (defined_in, class) in rules {
        let Ok(callable) = graph.loader().rule_callable(defined_in, class) else {
            continue;
        };
        let Some(rule) = callable.value().downcast_ref::<FrozenRuleCallable>() else {
            continue;
        };
        for (_, spec) in &rule.decl.attrs {
            ids.extend(spec.aspects.iter().cloned());
        }
    }
    let ids: Vec<String> = ids.into_iter().collect();
    Ok(tool_labels(graph, &ids)
        .into_iter()
        .map(|(l, _)| l)
        .filter(|l| graph.target(l).is_none())
        .collect())
}

/// `--aspects` as given (`//pkg:file.bzl%name`, comma-separated or repeated; a relative
/// label is read in `cwd`) as aspect ids.
pub fn command_line_ids(given: &[String], cwd: &PackageId) -> Result<Vec<String>, String> {
    let mut ids = Vec::new();
    for item in given
        .iter()
        .flat_map(|g| g.split(','))
        .filter(|s| !s.is_empty())
    {
        let (bzl, name) = item.rsplit_once('%').ok_or_else(|| {
            format!("--aspects: '{item}' is not <bzl file label>%<aspect name>, such as //tools:defs.bzl%my_aspect")
        })?;
        let label = Label::parse(bzl, cwd).map_err(|e| format!("--aspects: '{item}': {e}"))?;
        let id = format!("{label}%{name}");
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// Loads what the aspects' private attributes name (`labels_to_load`), and what that
/// loads in turn, until nothing new is named; or the `--aspects` error.
pub fn load_aspect_labels(graph: &mut TargetGraph, command_line: &[String]) -> Result<(), String> {
    loop {
        let labels = labels_to_load(graph, command_line)?;
        if labels.is_empty() {
            return Ok(());
        }
        graph.load_closure(&labels);
        // A label that does not load is reported by the graph, not looked for again.
        if labels.iter().all(|l| graph.target(l).is_none()) {
            return Ok(());
        }
    }
}

/// The dependency an aspect's implementation sees as `target`: the analysed target (with
/// the providers of the aspects applied before), and the actions it registered.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative, Trace)]
struct AspectTarget<'v> {
    target: Value<'v>,
    actions: Value<'v>,
}

impl fmt::Display for AspectTarget<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.target, f)
    }
}

#[starlark_value(type = "Target")]
impl<'v> StarlarkValue<'v> for AspectTarget<'v> {
    fn at(&self, index: Value<'v>, heap: Heap<'v>) -> starlark::Result<Value<'v>> {
        self.target.at(index, heap)
    }

    fn is_in(&self, other: Value<'v>) -> starlark::Result<bool> {
        self.target.is_in(other)
    }

    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        match attribute {
            "actions" => Some(self.actions),
            _ => self.target.get_attr(attribute, heap).ok().flatten(),
        }
    }

    fn dir_attr(&self) -> Vec<String> {
        let mut names = self.target.dir_attr();
        names.push("actions".into());
        names
    }
}

impl AspectEnv<'_> {
    /// The application `key`, made now if no target needed it before.
    pub(super) fn applied(&self, key: &AspectKey) -> Applied {
        let key = self.through_aliases(key);
        let cell = self.store.cell(&key);
        cell.get_or_init(|| self.apply(&key)).clone()
    }

    /// `key`, or, when its target is an `alias`, the same application on the target the
    /// alias stands for: as in Bazel, an aspect goes through aliases.
    pub(super) fn through_aliases(&self, key: &AspectKey) -> AspectKey {
        let mut target = key.target.clone();
        // A chain of aliases ends; the bound guards against a graph forge got wrong.
        for _ in 0..64 {
            let is_alias = self
                .graph
                .target(&target.label)
                .and_then(|t| t.rule())
                .is_some_and(|r| r.class == "alias" && r.defined_in.starts_with("@prelude//"));
            let actual = self.configured.nodes.get(&target).and_then(|node| {
                node.deps
                    .iter()
                    .find(|e| e.attr == "actual")
                    .filter(|e| {
                        self.graph
                            .target(&e.label)
                            .is_some_and(|t| t.rule().is_some())
                    })
                    .and_then(|e| e.rule.clone())
            });
            match actual.filter(|_| is_alias) {
                Some(actual) => target = actual,
                None => break,
            }
        }
        AspectKey {
            target,
            path: key.path.clone(),
        }
    }

    /// `dep` (the analysed `dep_key`) as seen through the aspects of `paths`: its providers
    /// and those of each aspect that applies to it. Two of them giving one provider is an
    /// error, as in Bazel.
    pub(super) fn with_aspects<'v>(
        &self,
        heap: Heap<'v>,
        dep: Value<'v>,
        dep_key: &ConfiguredLabel,
        paths: &[&[AspectDescriptor]],
    ) -> Result<Value<'v>, String> {
        let Some(target) = TargetInfo::from_value(dep) else {
            return Ok(dep);
        };
        let label = target.label.clone();
        let mut providers: Vec<Value> = target.providers.iter().map(|p| p.to_value()).collect();
        let mut changed = false;
        for path in paths {
            let key = AspectKey {
                target: dep_key.clone(),
                path: path.to_vec(),
            };
            let Some(applied) = self.applied(&key)? else {
                continue;
            };
            let Some(own) = applied.providers() else {
                continue;
            };
            let own = heap.access_owned_frozen_value(&own);
            for p in TargetInfo::from_value(own)
                .map(|t| t.providers.iter().map(|p| p.to_value()).collect::<Vec<_>>())
                .unwrap_or_default()
            {
                let Some(instance) = ProviderInstance::from_value(p) else {
                    continue;
                };
                let given = providers.iter().position(|q| {
                    ProviderInstance::from_value(*q).is_some_and(|q| q.id == instance.id)
                });
                if let Some(at) = given {
                    // As in Bazel, output groups are merged: each group given once.
                    if instance.id == OUTPUT_GROUP_INFO_ID {
                        providers[at] = merge_output_groups(heap, providers[at], instance, &label)?;
                        changed = true;
                        continue;
                    }
                    return Err(format!(
                        "Provider {} provided twice: by '{label}' and by aspect {} applied to it",
                        instance.name,
                        key.aspect().id
                    ));
                }
                providers.push(p);
                changed = true;
            }
        }
        Ok(match changed {
            false => dep,
            true => heap.alloc(TargetInfoGen { label, providers }),
        })
    }

    /// Applies `key`'s aspect to its target.
    fn apply(&self, key: &AspectKey) -> Applied {
        let graph = self.graph;
        let label = &key.target.label;
        let Some(target) = graph.target(label) else {
            return Ok(None);
        };
        // Bazel applies aspects to rule targets.
        let Some(loaded) = target.rule() else {
            return Ok(None);
        };
        let (Some(node), Some(analyzed)) = (
            self.configured.nodes.get(&key.target),
            self.done.get(&key.target),
        ) else {
            return Ok(None);
        };
        let aspect = LoadedAspect::load(graph, &key.aspect().id)?;
        let rule = node.configured(loaded).map_err(|d| d.message.clone())?;
        let callable = graph
            .loader()
            .rule_callable(&rule.defined_in, &rule.class)
            .map_err(|d| d.message.clone())?;
        let rule_decl = callable
            .value()
            .downcast_ref::<FrozenRuleCallable>()
            .map(|r| r.decl.clone())
            .ok_or_else(|| format!("'{}' is not a rule", rule.class))?;
        let decl = aspect.decl();
        // As in Bazel 4, the providers a rule advertises (`rule(provides = ...)`) decide.
        let advertised = &rule_decl.provides;
        if !decl.required_providers.is_empty()
            && !decl
                .required_providers
                .iter()
                .any(|group| group.iter().all(|p| advertised.contains(p)))
        {
            return Ok(None);
        }
        let failed = |error: String| {
            // A Starlark error comes with its traceback on lines of its own.
            let separator = if error.starts_with('\n') { "" } else { " " };
            format!(
                "in aspect {} on {} rule {label}:{separator}{error}",
                key.aspect().id,
                rule.class
            )
        };
        Module::with_temp_heap(|module| -> Applied {
            let heap = module.heap();
            let own_info = analyzed
                .target_info()
                .ok_or_else(|| failed("the target has no providers".into()))?;
            let own_info = heap.access_owned_frozen_value(&own_info);
            // The target, with the providers of the aspects this one sees.
            let earlier: Vec<&[AspectDescriptor]> =
                (1..key.path.len()).map(|n| &key.path[..n]).collect();
            let target_value = self.with_aspects(heap, own_info, &key.target, &earlier)?;

            // `ctx.rule`: the target's attributes, its dependencies along the attributes
            // the aspect propagates along seen through it (and the aspects before it that
            // propagate there too).
            let propagate: &ApplyAspects = &|attr, _, dep_label, dep_key, dep| {
                let is_rule = graph.target(dep_label).is_some_and(|t| t.rule().is_some());
                let Some(dep_key) = dep_key.filter(|_| is_rule && decl.propagates_along(attr))
                else {
                    return Ok(dep);
                };
                let mut along: Vec<&[AspectDescriptor]> = Vec::new();
                for n in 1..=key.path.len() {
                    let propagates = n == key.path.len()
                        || LoadedAspect::load(graph, &key.path[n - 1].id)
                            .is_ok_and(|a| a.decl().propagates_along(attr));
                    if propagates {
                        along.push(&key.path[..n]);
                    }
                }
                self.with_aspects(heap, dep, dep_key, &along)
            };
            let mut scratch = ActionsState {
                owner: label.clone(),
                config: key.target.config.clone(),
                ..Default::default()
            };
            let rule_attrs = attr_values(
                heap,
                graph,
                self.done,
                label,
                rule,
                node,
                &rule_decl,
                &mut scratch,
                propagate,
            )
            .map_err(|e| e.to_string())?;

            // `ctx.attr`: the aspect's own attributes.
            let mut state = ActionsState {
                owner: label.clone(),
                config: key.target.config.clone(),
                ..Default::default()
            };
            let (own_rule, own_node, own_decl) =
                self.aspect_attributes(&aspect, key, label, node)?;
            let mut own = attr_values(
                heap,
                graph,
                self.done,
                label,
                &own_rule,
                &own_node,
                &own_decl,
                &mut state,
                &|_, _, _, _, dep| Ok(dep),
            )
            .map_err(|e| failed(e.to_string()))?;
            own.attr.retain(|(n, _)| n != "name");

            let actions = heap.alloc_complex_no_freeze(ActionsValue {
                state: std::cell::RefCell::new(state),
            });
            let toolchains = super::target::toolchain_context(heap, self.done, &key.target, None)
                .map_err(|e| failed(e.to_string()))?;
            let package = graph.package(&label.package_id());
            let env = CtxEnv {
                label,
                workspace_name: &graph.loader().workspace().name,
                build_file: package.map(|p| p.build_file.clone()).unwrap_or_default(),
                features: (key.target.config.options().features.clone(), Vec::new()),
                configuration: &key.target.config,
                build_setting_value: None,
                platform: &node.platform,
            };
            let mut ctx = new_ctx(heap, &env, own, actions, toolchains, None);
            // An aspect's ctx has `rule` and `aspect_ids`, and no outputs of its own.
            ctx.fields
                .retain(|(n, _)| !matches!(n.as_str(), "outputs" | "split_attr"));
            ctx.fields.push((
                "rule".into(),
                heap.alloc(AllocStruct([
                    ("attr", heap.alloc(AllocStruct(rule_attrs.attr))),
                    ("files", heap.alloc(AllocStruct(rule_attrs.files))),
                    ("file", heap.alloc(AllocStruct(rule_attrs.file))),
                    ("executable", heap.alloc(AllocStruct(rule_attrs.executable))),
                    ("kind", heap.alloc(rule.class.as_str())),
                ])),
            ));
            ctx.fields.push((
                "aspect_ids".into(),
                heap.alloc(AllocList(key.path.iter().map(|d| d.id.as_str()))),
            ));
            let ctx = heap.alloc_complex_no_freeze(ctx);
            let target_actions: Vec<Value> = analyzed
                .actions
                .iter()
                .map(|a| heap.alloc(ActionValue { action: a.clone() }))
                .collect();
            let target_arg = heap.alloc_complex_no_freeze(AspectTarget {
                target: target_value,
                actions: heap.alloc(AllocList(target_actions)),
            });

            let (defined_in, _) = key.aspect().id.rsplit_once('%').unwrap_or_default();
            let eval_ctx = EvalContext {
                base: PackageId::new(&label.repo, &label.package),
                file: Label::parse(defined_in, &PackageId::default())
                    .unwrap_or_else(|_| label.clone()),
                kind: FileKind::Bzl,
            };
            let returned = {
                let mut eval = Evaluator::new(&module);
                eval.extra = Some(&eval_ctx);
                eval.eval_function(
                    aspect.get().implementation.to_value(),
                    &[target_arg, ctx],
                    &[],
                )
                .map_err(|e| failed(format!("\n{}", super::target::render(&e))))?
            };
            let providers = returned_providers(heap, returned, decl).map_err(failed)?;
            let state = actions
                .downcast_ref::<ActionsValue>()
                .expect("allocated above")
                .state
                .replace(ActionsState::default());
            if let Some(path) = state.first_not_generated() {
                return Err(failed(format!(
                    "the file '{}' is declared but no action creates it",
                    super::short_from_exec(path)
                )));
            }
            module.set_extra_value(heap.alloc(TargetInfoGen {
                label: label.to_string(),
                providers,
            }));
            let module = module.freeze().map_err(|e| {
                failed(format!(
                    "a provider holds a value that cannot outlive analysis: {e:?}"
                ))
            })?;
            Ok(Some(Arc::new(AnalyzedAspect {
                module,
                actions: state.actions,
            })))
        })
    }

    /// The aspect's attributes as a rule's: the parameters of `key`, each private
    /// attribute's default, and an edge for each label in it, in the visited target's
    /// configuration or the one its `cfg` gives.
    fn aspect_attributes(
        &self,
        aspect: &LoadedAspect,
        key: &AspectKey,
        label: &Label,
        node: &Node,
    ) -> Result<(RuleTarget, Node, RuleDecl), String> {
        let decl = aspect.decl();
        let mut attrs = std::collections::BTreeMap::new();
        let mut deps = Vec::new();
        for (name, spec) in &decl.attrs {
            let value = match key.aspect().params.iter().find(|(n, _)| n == name) {
                Some((_, v)) => AttrValue::String(v.clone()),
                None => spec.default_value(),
            };
            let config = match spec.cfg.as_deref() {
                Some("exec") => key.target.config.exec(),
                Some("host") => key.target.config.host(),
                _ => key.target.config.clone(),
            };
            for dep in value.dep_labels() {
                let rule_label = match self.graph.target(dep).map(|t| &t.kind) {
                    Some(crate::loading::TargetKind::Rule(_)) => Some(dep.clone()),
                    Some(crate::loading::TargetKind::GeneratedFile { generating_rule }) => {
                        Some(generating_rule.clone())
                    }
                    _ => None,
                };
                let rule = rule_label.map(|r| ConfiguredLabel {
                    label: r,
                    config: config.clone(),
                });
                if let Some(r) = &rule
                    && !self.done.contains_key(r)
                {
                    return Err(format!(
                        "aspect {}: its attribute '{name}' names '{dep}', which was not \
                         analysed in configuration {} where the aspect reached {label}",
                        key.aspect().id,
                        config.dir_name()
                    ));
                }
                deps.push(DepEdge {
                    attr: name.clone(),
                    label: dep.clone(),
                    split_key: String::new(),
                    config: config.clone(),
                    transition: "NoTransition".to_owned(),
                    rule,
                });
            }
            attrs.insert(name.clone(), value);
        }
        let rule = RuleTarget {
            class: key.aspect().id.clone(),
            defined_in: key.aspect().id.clone(),
            attrs: attrs.into(),
            explicit: Default::default(),
            is_test: false,
            is_executable: false,
            macro_call: None,
            build_setting: None,
        };
        let node = Node {
            rule: Ok(None),
            deps,
            split_attrs: Default::default(),
            toolchains: None,
            platform: node.platform.clone(),
            applies_aspects: false,
        };
        let rule_decl = RuleDecl {
            defined_in: key.aspect().id.clone(),
            attrs: decl.attrs.clone(),
            executable: false,
            test: false,
            outputs: Vec::new(),
            doc: String::new(),
            provides: Vec::new(),
            unsupported: Vec::new(),
            build_setting: None,
            toolchains: Vec::new(),
            exec_compatible_with: Vec::new(),
            analysis_test: false,
        };
        Ok((rule, node, rule_decl))
    }
}

/// One `OutputGroupInfo` holding the groups of `target_groups` (the target's, or those
/// merged so far) and of `aspect_groups`; a group in both is an error, as in Bazel.
fn merge_output_groups<'v>(
    heap: Heap<'v>,
    target_groups: Value<'v>,
    aspect_groups: &ProviderInstance<'v>,
    label: &str,
) -> Result<Value<'v>, String> {
    let Some(existing) = ProviderInstance::from_value(target_groups) else {
        return Ok(target_groups);
    };
    let mut fields = existing.fields.clone();
    for (name, files) in aspect_groups.fields.iter() {
        if fields.contains_key(name) {
            return Err(format!(
                "Output group {name} provided twice: by '{label}' and by an aspect applied to it"
            ));
        }
        fields.insert(name.clone(), *files);
    }
    Ok(heap.alloc(crate::loading::ProviderInstanceGen {
        id: existing.id.clone(),
        name: existing.name.clone(),
        fields,
    }))
}

/// The providers an aspect's implementation returned (a list of them, one, or None), checked:
/// each once, and every one its `provides` declares.
fn returned_providers<'v>(
    heap: Heap<'v>,
    returned: Value<'v>,
    decl: &AspectDecl,
) -> Result<Vec<Value<'v>>, String> {
    let not_providers = || {
        format!(
            "an aspect implementation must return a list of providers, got {}",
            returned.get_type()
        )
    };
    let values: Vec<Value> = if returned.is_none() {
        Vec::new()
    } else if ProviderInstance::from_value(returned).is_some() {
        // One provider on its own, as a rule may return it.
        vec![returned]
    } else {
        returned
            .iterate(heap)
            .map_err(|_| not_providers())?
            .collect()
    };
    let mut ids: Vec<String> = Vec::new();
    for v in &values {
        let instance = ProviderInstance::from_value(*v).ok_or_else(not_providers)?;
        if ids.contains(&instance.id) {
            return Err(format!(
                "Provider {} provided twice by the aspect",
                instance.name
            ));
        }
        ids.push(instance.id.clone());
    }
    let missing: Vec<&str> = decl
        .provides
        .iter()
        .filter(|p| !ids.contains(p))
        .map(|p| p.rsplit('%').next().unwrap_or(p))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "The following declared providers have not been returned: {}",
            missing.join(", ")
        ));
    }
    Ok(values)
}

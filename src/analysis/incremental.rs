//! Incremental analysis: a configured target, its key and the result store in; the
//! target's stored result out when its key holds (taken as plain data, made into Starlark
//! values only when a dependent analysed again or the command needs its providers), or,
//! after a fresh analysis, its result kept in the store and digested for its dependents.

use std::collections::HashMap;
use std::sync::Arc;

use starlark::environment::{FrozenModule, Module};
use starlark::values::{OwnedFrozenValue, ValueIdentity};

use super::configured_graph::{ConfiguredGraph, Node};
use super::result_key::input_key;
use super::result_store::{ResultStore, StoredResult};
use super::stored_value::{
    PackedValues, StoredValues, Unstorable, restore_providers, restore_providers_indexed,
    store_providers,
};
use super::{Analyzed, ConfiguredLabel};
use crate::core::{Diagnostic, Digest};
use crate::graph::TargetGraph;
use crate::loading::RuleTarget;

/// What incremental analysis knows of one analysed target.
#[derive(Default)]
pub(crate) struct Record {
    /// The key its analysis was decided by; None: it is analysed on every command.
    pub key: Option<Digest>,
    /// The digest of its result; None when the result cannot be stored (its dependents
    /// then have no key either).
    pub result: Option<Digest>,
    /// The depset nodes its providers reach, by digest: what its dependents' stored results
    /// refer to. Empty while the providers are plain data only (no module).
    pub depsets: HashMap<Digest, OwnedFrozenValue>,
    /// Its providers as plain data, whenever they can be kept so: a stored result's until
    /// they are made into Starlark values and after; a fresh one's once it is analysed, so
    /// that its Starlark heap can be let go of when no dependent reads it any more
    /// (`release`).
    pub values: Option<Arc<PackedValues>>,
}

/// The rule dependencies of a configured target, each once, in edge order: stored results
/// refer to a dependency's depsets by its position here.
pub(super) fn rule_deps(node: &Node) -> Vec<&ConfiguredLabel> {
    let mut deps: Vec<&ConfiguredLabel> = Vec::new();
    for dep in node.deps.iter().filter_map(|e| e.rule.as_ref()) {
        if !deps.contains(&dep) {
            deps.push(dep);
        }
    }
    deps
}

/// Whether a target's analysis reads more of the graph than its key covers: the built-in
/// platform rules read other targets' attributes (a constraint setting's default).
fn reads_beyond_key(rule: &RuleTarget) -> bool {
    ["constraint_setting", "constraint_value", "platform"]
        .iter()
        .any(|class| super::conditions::is_builtin(rule, class))
}

/// The key of `key`'s analysis, if it can have one.
pub(super) fn key_of(
    store: &ResultStore,
    graph: &TargetGraph,
    key: &ConfiguredLabel,
    node: &Node,
    rule: &RuleTarget,
    done: &HashMap<ConfiguredLabel, Analyzed>,
) -> Option<Digest> {
    if key.config.options().allow_analysis_failures || reads_beyond_key(rule) {
        return None;
    }
    input_key(store.salt(), graph, key, node, rule, done)
}

/// The stored result of `key` analysed with `input`, if the store holds one that is intact
/// and was made from the same inputs.
pub(super) fn reuse(store: &ResultStore, key: &ConfiguredLabel, input: Digest) -> Option<Analyzed> {
    let entry = store.load(key, &input)?;
    let StoredResult {
        values,
        actions,
        executable,
        runfiles,
        is_test,
        args,
        test,
    } = entry.result;
    Some(Analyzed {
        module: None,
        actions,
        executable,
        runfiles,
        is_test,
        args,
        test,
        incremental: Record {
            key: Some(input),
            result: Some(entry.result_digest),
            depsets: HashMap::new(),
            values: PackedValues::pack(&values).map(Arc::new),
        },
    })
}

/// After a fresh analysis: the result's digest and depsets noted on `analyzed`, and the
/// result kept in the store when it has a key and can be stored. With `rebase` (dependents
/// will read it, and its Starlark values are to be let go of after them), its providers are
/// made again from their plain data into a heap of their own: the heap its rule
/// implementation ran in keeps alive every dependency's heap that implementation read (a
/// frozen heap holds all those its values came near), so the graph below would stay.
pub(super) fn record_fresh(
    store: Option<&ResultStore>,
    key: &ConfiguredLabel,
    input: Option<Digest>,
    node: &Node,
    analyzed: &mut Analyzed,
    done: &HashMap<ConfiguredLabel, Analyzed>,
    rebase: bool,
) {
    analyzed.incremental.key = input;
    let Some(module) = &analyzed.module else {
        return;
    };
    let deps: Vec<&Analyzed> = rule_deps(node)
        .iter()
        .filter_map(|d| done.get(*d))
        .collect();
    let Ok((values, depsets)) = convert(module, &deps) else {
        // A provider holds what forge cannot keep: no digest, so this target and those
        // above it are analysed on every command.
        return;
    };
    analyzed.incremental.depsets = depsets;
    analyzed.incremental.values = PackedValues::pack(&values).map(Arc::new);
    if rebase && let Ok((module, depsets)) = restore(&values, &deps) {
        analyzed.module = Some(module);
        analyzed.incremental.depsets = depsets;
    }
    let result = StoredResult {
        values,
        actions: analyzed.actions.clone(),
        executable: analyzed.executable.clone(),
        runfiles: analyzed.runfiles.clone(),
        is_test: analyzed.is_test,
        args: analyzed.args.clone(),
        test: analyzed.test.clone(),
    };
    let Some(digest) = result.digest() else {
        return;
    };
    analyzed.incremental.result = Some(digest);
    let (Some(store), Some(input)) = (store, input) else {
        return;
    };
    // An aspect reads the attributes and providers of everything it propagates to, which
    // no key here covers: a rule applying aspects is analysed on every command (its result
    // digest still keys its dependents, as it was computed now).
    if node.applies_aspects {
        return;
    }
    let _ = store.store(key, input, digest, result);
}

/// The plain data of a frozen result's providers and its depsets by digest; `deps` are the
/// target's rule dependencies, in `rule_deps` order.
fn convert(
    module: &FrozenModule,
    deps: &[&Analyzed],
) -> Result<(StoredValues, HashMap<Digest, OwnedFrozenValue>), Unstorable> {
    let info = module
        .owned_extra_value()
        .ok_or_else(|| Unstorable("no providers".into()))?;
    Module::with_temp_heap(|temp| {
        let heap = temp.heap();
        let mut by_identity: HashMap<ValueIdentity, (u32, Digest)> = HashMap::new();
        for (i, dep) in deps.iter().enumerate() {
            for (digest, node) in &dep.incremental.depsets {
                let value = heap.access_owned_frozen_value(node);
                by_identity.insert(value.identity(), (i as u32, *digest));
            }
        }
        let value = heap.access_owned_frozen_value(&info);
        let (values, index) = store_providers(value, &by_identity)?;
        let mut depsets = HashMap::with_capacity(index.len());
        for (digest, v) in index {
            let frozen = v
                .unpack_frozen()
                .ok_or_else(|| Unstorable("an unfrozen depset".into()))?;
            depsets.insert(digest, info.map(|_| frozen));
        }
        Ok((values, depsets))
    })
}

/// Providers held as plain data only, to be made into Starlark values again.
fn plain_only(analyzed: &Analyzed) -> Option<Arc<PackedValues>> {
    match analyzed.module {
        Some(_) => None,
        None => analyzed.incremental.values.clone(),
    }
}

/// Makes the plain-data providers of `wanted` (and of the dependencies they refer to) into
/// Starlark values, so that dependents analysed again, and the command, can read them.
/// Returns the targets made so, with the errors.
pub(super) fn materialize(
    targets: &mut HashMap<ConfiguredLabel, Analyzed>,
    configured: &ConfiguredGraph,
    wanted: impl IntoIterator<Item = ConfiguredLabel>,
) -> (Vec<ConfiguredLabel>, Vec<Diagnostic>) {
    let mut errors = Vec::new();
    let mut made = Vec::new();
    // Iterative post-order: a target after every dependency it refers to.
    let mut stack: Vec<(ConfiguredLabel, bool)> = wanted.into_iter().map(|k| (k, false)).collect();
    while let Some((key, expanded)) = stack.pop() {
        let Some(stored) = targets.get(&key).and_then(plain_only) else {
            continue;
        };
        let Some(node) = configured.nodes.get(&key) else {
            continue;
        };
        let deps: Vec<ConfiguredLabel> = rule_deps(node).into_iter().cloned().collect();
        if !expanded {
            stack.push((key, true));
            for dep in deps {
                if targets.get(&dep).and_then(plain_only).is_some() {
                    stack.push((dep, false));
                }
            }
            continue;
        }
        let dep_results: Vec<&Analyzed> = deps.iter().filter_map(|d| targets.get(d)).collect();
        if dep_results.len() != deps.len() {
            errors.push(restore_failed(&key, "a dependency has no result"));
            continue;
        }
        match stored
            .unpack()
            .and_then(|stored| restore(&stored, &dep_results))
        {
            Ok((module, depsets)) => {
                let analyzed = targets.get_mut(&key).expect("checked above");
                analyzed.module = Some(module);
                analyzed.incremental.depsets = depsets;
                made.push(key);
            }
            Err(why) => errors.push(restore_failed(&key, &why)),
        }
    }
    (made, errors)
}

/// Lets go of `analyzed`'s Starlark values (its frozen module, and with it the heap its
/// rule implementation ran in, unless a dependent's values still refer to it) when its
/// providers are also held as plain data: what is left is what later steps read.
pub(super) fn release(analyzed: &mut Analyzed) {
    if analyzed.incremental.values.is_some() {
        analyzed.module = None;
        analyzed.incremental.depsets = HashMap::new();
    }
}

/// Calls `read` with the providers (a `TargetInfo`) of `key` in a temporary heap: its
/// Starlark values when it has them, otherwise made from its plain data, with those of the
/// dependencies it refers to, for this read only. None when `key` has no providers.
pub(super) fn read_providers<R>(
    targets: &HashMap<ConfiguredLabel, Analyzed>,
    configured: &ConfiguredGraph,
    key: &ConfiguredLabel,
    read: impl for<'v> FnOnce(starlark::values::Value<'v>) -> R,
) -> Result<Option<R>, Diagnostic> {
    if !targets.contains_key(key) {
        return Ok(None);
    }
    Module::with_temp_heap(|module| {
        let heap = module.heap();
        let reader = Reader {
            heap,
            targets,
            configured,
            nodes: Default::default(),
        };
        match reader.providers(key) {
            Ok(Some(info)) => Ok(Some(read(info))),
            Ok(None) => Ok(None),
            Err(why) => Err(restore_failed(key, &why)),
        }
    })
}

/// Providers made from plain data into one temporary heap, each target once.
struct Reader<'v, 'a> {
    heap: starlark::values::Heap<'v>,
    targets: &'a HashMap<ConfiguredLabel, Analyzed>,
    configured: &'a ConfiguredGraph,
    /// The depset nodes of the targets made so far, by digest.
    nodes:
        std::cell::RefCell<HashMap<ConfiguredLabel, HashMap<Digest, starlark::values::Value<'v>>>>,
}

impl<'v> Reader<'v, '_> {
    /// The `TargetInfo` of `key`, if it has one.
    fn providers(
        &self,
        key: &ConfiguredLabel,
    ) -> Result<Option<starlark::values::Value<'v>>, String> {
        let Some(analyzed) = self.targets.get(key) else {
            return Ok(None);
        };
        if let Some(info) = analyzed.target_info() {
            return Ok(Some(self.heap.access_owned_frozen_value(&info)));
        }
        let Some(packed) = &analyzed.incremental.values else {
            return Ok(None);
        };
        let deps = self.rule_deps(key)?;
        // The dependencies' nodes it refers to are made first, so that no more than one
        // target's plain data is unpacked at a time however deep the graph.
        let mut refs: HashMap<(u32, Digest), starlark::values::Value<'v>> = HashMap::new();
        for (i, digest) in packed.unpack()?.dependency_nodes() {
            let dep = deps
                .get(i as usize)
                .ok_or_else(|| format!("it has no dependency {i}"))?;
            let value = self
                .depset(dep, &digest)?
                .ok_or_else(|| format!("dependency {i} has no depset {digest}"))?;
            refs.insert((i, digest), value);
        }
        let values = packed.unpack()?;
        let lookup = |i: u32, digest: &Digest| refs.get(&(i, *digest)).copied();
        let (info, own) = restore_providers_indexed(self.heap, &values, &lookup)?;
        self.nodes
            .borrow_mut()
            .insert(key.clone(), own.into_iter().collect());
        Ok(Some(info))
    }

    fn rule_deps(&self, key: &ConfiguredLabel) -> Result<Vec<&ConfiguredLabel>, String> {
        let node = self
            .configured
            .nodes
            .get(key)
            .ok_or_else(|| "it is not configured".to_owned())?;
        Ok(rule_deps(node))
    }

    /// The depset node `digest` that `key`'s providers reach: its own, or one it refers to
    /// in a dependency.
    fn depset(
        &self,
        key: &ConfiguredLabel,
        digest: &Digest,
    ) -> Result<Option<starlark::values::Value<'v>>, String> {
        let Some(analyzed) = self.targets.get(key) else {
            return Ok(None);
        };
        if analyzed.module.is_some() {
            return Ok(analyzed
                .incremental
                .depsets
                .get(digest)
                .map(|v| self.heap.access_owned_frozen_value(v)));
        }
        if !self.nodes.borrow().contains_key(key) {
            self.providers(key)?;
        }
        if let Some(v) = self.nodes.borrow().get(key).and_then(|n| n.get(digest)) {
            return Ok(Some(*v));
        }
        // A node `key` took from one of its own dependencies.
        let Some(packed) = &analyzed.incremental.values else {
            return Ok(None);
        };
        let found = packed
            .unpack()?
            .dependency_nodes()
            .into_iter()
            .find(|(_, d)| d == digest);
        let Some((i, _)) = found else {
            return Ok(None);
        };
        match self.rule_deps(key)?.get(i as usize) {
            Some(dep) => self.depset(dep, digest),
            None => Ok(None),
        }
    }
}

fn restore_failed(key: &ConfiguredLabel, why: &str) -> Diagnostic {
    Diagnostic::internal(format!(
        "the stored analysis of {} could not be restored ({why}); `forge clean` removes it",
        key.label
    ))
}

/// A frozen module holding stored providers, and its depsets by digest.
fn restore(
    stored: &StoredValues,
    deps: &[&Analyzed],
) -> Result<(FrozenModule, HashMap<Digest, OwnedFrozenValue>), String> {
    let module = Module::with_temp_heap(|module| -> Result<FrozenModule, String> {
        let heap = module.heap();
        let lookup = |i: u32, digest: &Digest| {
            let node = deps.get(i as usize)?.incremental.depsets.get(digest)?;
            Some(heap.access_owned_frozen_value(node))
        };
        let info = restore_providers(heap, stored, &lookup)?;
        module.set_extra_value(info);
        module.freeze().map_err(|e| format!("{e:?}"))
    })?;
    let (_, depsets) = convert(&module, deps).map_err(|e| e.0)?;
    Ok((module, depsets))
}

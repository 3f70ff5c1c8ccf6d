//! Provider values as plain data: an analysed target's frozen providers in, a `StoredValues`
//! (serialisable, digestible) out — and back into Starlark values in a fresh heap when a
//! dependent needs them.
//!
//! Depsets are kept as nodes (order, direct elements, children) identified by a digest of
//! their content. A node that came from a dependency's providers is not copied: it is a
//! reference to that dependency (by its position among the target's rule dependencies) and
//! the node's digest, so a transitive depset is stored once, by the target that made it.
//! A value forge cannot keep (a function, a provider symbol, an Args object, ...) makes the
//! whole result unstorable: the target is then analysed again on every command.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use starlark::values::dict::{AllocDict, DictRef};
use starlark::values::float::StarlarkFloat;
use starlark::values::list::{AllocList, ListRef};
use starlark::values::structs::{AllocStruct, StructRef};
use starlark::values::tuple::{AllocTuple, TupleRef};
use starlark::values::{Heap, Value, ValueIdentity, ValueLike};

use super::runfiles::{Runfiles, RunfilesGen, SymlinkEntry};
use super::values::{FileValue, TargetInfo, TargetInfoGen};
use crate::core::{Digest, Label};
use crate::loading::{Depset, LabelValue, ProviderInstance, ProviderInstanceGen, make_depset};

/// A provider value as plain data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) enum StoredValue {
    None,
    Bool(bool),
    Int(i32),
    /// The bits of an `f64`, so that equal values digest equally.
    Float(u64),
    Str(String),
    List(Vec<StoredValue>),
    Tuple(Vec<StoredValue>),
    Dict(Vec<(StoredValue, StoredValue)>),
    Struct(Vec<(String, StoredValue)>),
    Provider {
        id: String,
        name: String,
        fields: Vec<(String, StoredValue)>,
    },
    Depset(DepsetRef),
    File(Box<StoredFile>),
    Label(Label),
    /// `files`, `symlinks`, `root_symlinks`.
    Runfiles(Box<[StoredValue; 3]>),
    Symlink {
        path: String,
        target_file: Box<StoredFile>,
    },
    /// A dependency object a rule put in a provider (`ctx.attr.dep`).
    Target {
        label: String,
        providers: Vec<StoredValue>,
    },
}

/// A `File`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct StoredFile {
    path: String,
    short_path: String,
    is_source: bool,
    is_directory: bool,
    owner: Label,
}

/// Where a depset node is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) enum DepsetRef {
    /// The target's own node, by index into `StoredValues::depsets`.
    Own(u32),
    /// A node of the `dep`-th rule dependency's providers.
    Dep { dep: u32, digest: Digest },
}

/// One depset node the target made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct StoredDepset {
    /// Of the order, the direct elements and the children's digests.
    digest: Digest,
    order: String,
    direct: Vec<StoredValue>,
    transitive: Vec<DepsetRef>,
}

/// A target's providers as plain data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct StoredValues {
    pub label: String,
    pub providers: Vec<StoredValue>,
    /// The target's own depset nodes, children before parents.
    depsets: Vec<StoredDepset>,
}

/// A target's providers as plain data packed into bytes (postcard): what a build keeps of
/// them once their Starlark values are let go of — a fraction of their size as values.
#[derive(Debug)]
pub(super) struct PackedValues(Box<[u8]>);

impl PackedValues {
    pub fn pack(values: &StoredValues) -> Option<PackedValues> {
        postcard::to_allocvec(values)
            .ok()
            .map(|bytes| PackedValues(bytes.into_boxed_slice()))
    }

    pub fn unpack(&self) -> Result<StoredValues, String> {
        postcard::from_bytes(&self.0).map_err(|e| format!("unpacking providers: {e}"))
    }
}

/// Why a result cannot be stored: the type of the value forge cannot keep.
#[derive(Debug)]
pub(super) struct Unstorable(pub String);

/// The depsets a target's providers reach, with their digests: its own nodes and those of
/// its dependencies it refers to. Dependents refer to these by digest.
pub(super) type DepsetIndex<'v> = Vec<(Digest, Value<'v>)>;

/// Turns a frozen `TargetInfo` (`info`) into plain data. `deps` maps the depsets of the
/// target's rule dependencies (each dependency's index, accessed in this heap) to the
/// dependency's position and the node's digest.
pub(super) fn store_providers<'v>(
    info: Value<'v>,
    deps: &HashMap<ValueIdentity<'v>, (u32, Digest)>,
) -> Result<(StoredValues, DepsetIndex<'v>), Unstorable> {
    let target = TargetInfo::from_value(info).ok_or_else(|| Unstorable("no target".into()))?;
    let mut converter = Converter {
        deps,
        own: HashMap::new(),
        depsets: Vec::new(),
        index: Vec::new(),
        referenced: HashSet::new(),
    };
    let providers = target
        .providers
        .iter()
        .map(|p| converter.value(p.to_value()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((
        StoredValues {
            label: target.label.clone(),
            providers,
            depsets: converter.depsets,
        },
        converter.index,
    ))
}

struct Converter<'v, 'a> {
    deps: &'a HashMap<ValueIdentity<'v>, (u32, Digest)>,
    /// Own nodes already converted, by identity.
    own: HashMap<ValueIdentity<'v>, u32>,
    depsets: Vec<StoredDepset>,
    index: DepsetIndex<'v>,
    /// Dependency nodes already added to `index`.
    referenced: HashSet<ValueIdentity<'v>>,
}

impl<'v> Converter<'v, '_> {
    fn values(
        &mut self,
        items: impl Iterator<Item = Value<'v>>,
    ) -> Result<Vec<StoredValue>, Unstorable> {
        items.map(|v| self.value(v)).collect()
    }

    fn value(&mut self, v: Value<'v>) -> Result<StoredValue, Unstorable> {
        if v.is_none() {
            return Ok(StoredValue::None);
        }
        if let Some(b) = v.unpack_bool() {
            return Ok(StoredValue::Bool(b));
        }
        if let Some(i) = v.unpack_i32() {
            return Ok(StoredValue::Int(i));
        }
        if let Some(s) = v.unpack_str() {
            return Ok(StoredValue::Str(s.to_owned()));
        }
        if let Some(f) = v.downcast_ref::<StarlarkFloat>() {
            return Ok(StoredValue::Float(f.0.to_bits()));
        }
        if let Some(list) = ListRef::from_value(v) {
            return Ok(StoredValue::List(self.values(list.iter())?));
        }
        if let Some(tuple) = TupleRef::from_value(v) {
            return Ok(StoredValue::Tuple(self.values(tuple.iter())?));
        }
        if let Some(dict) = DictRef::from_value(v) {
            let mut entries = Vec::with_capacity(dict.len());
            for (k, x) in dict.iter() {
                entries.push((self.value(k)?, self.value(x)?));
            }
            return Ok(StoredValue::Dict(entries));
        }
        if let Some(s) = StructRef::from_value(v) {
            let mut fields = Vec::new();
            for (k, x) in s.iter() {
                fields.push((k.as_str().to_owned(), self.value(x)?));
            }
            return Ok(StoredValue::Struct(fields));
        }
        if let Some(p) = ProviderInstance::from_value(v) {
            let mut fields = Vec::with_capacity(p.fields.len());
            for (k, x) in p.fields.iter() {
                fields.push((k.clone(), self.value(x.to_value())?));
            }
            return Ok(StoredValue::Provider {
                id: p.id.clone(),
                name: p.name.clone(),
                fields,
            });
        }
        if Depset::from_value(v).is_some() {
            return Ok(StoredValue::Depset(self.depset(v)?));
        }
        if let Some(f) = v.downcast_ref::<FileValue>() {
            return Ok(StoredValue::File(stored_file(f)));
        }
        if let Some(l) = v.downcast_ref::<LabelValue>() {
            return Ok(StoredValue::Label(l.label.clone()));
        }
        if let Some(r) = Runfiles::from_value(v) {
            return Ok(StoredValue::Runfiles(Box::new([
                self.value(r.files.to_value())?,
                self.value(r.symlinks.to_value())?,
                self.value(r.root_symlinks.to_value())?,
            ])));
        }
        if let Some(e) = v.downcast_ref::<SymlinkEntry>() {
            return Ok(StoredValue::Symlink {
                path: e.path.clone(),
                target_file: stored_file(&e.target_file),
            });
        }
        if let Some(t) = TargetInfo::from_value(v) {
            return Ok(StoredValue::Target {
                label: t.label.clone(),
                providers: self.values(t.providers.iter().map(|p| p.to_value()))?,
            });
        }
        Err(Unstorable(v.get_type().to_owned()))
    }

    fn depset(&mut self, v: Value<'v>) -> Result<DepsetRef, Unstorable> {
        let id = v.identity();
        if let Some(i) = self.own.get(&id) {
            return Ok(DepsetRef::Own(*i));
        }
        if let Some((dep, digest)) = self.deps.get(&id) {
            if self.referenced.insert(id) {
                self.index.push((*digest, v));
            }
            return Ok(DepsetRef::Dep {
                dep: *dep,
                digest: *digest,
            });
        }
        let d = Depset::from_value(v).expect("checked by the caller");
        let (order, direct, transitive) = d.parts();
        let order = order.to_owned();
        let direct = self.values(direct.into_iter())?;
        let transitive = transitive
            .into_iter()
            .map(|t| self.depset(t))
            .collect::<Result<Vec<_>, _>>()?;
        let children: Vec<Digest> = transitive.iter().map(|t| self.digest_of(t)).collect();
        let body = postcard::to_allocvec(&(&order, &direct, &children))
            .map_err(|e| Unstorable(e.to_string()))?;
        let digest = Digest::of_bytes(&body);
        let i = self.depsets.len() as u32;
        self.depsets.push(StoredDepset {
            digest,
            order,
            direct,
            transitive,
        });
        self.own.insert(id, i);
        self.index.push((digest, v));
        Ok(DepsetRef::Own(i))
    }

    fn digest_of(&self, r: &DepsetRef) -> Digest {
        match r {
            DepsetRef::Own(i) => self.depsets[*i as usize].digest,
            DepsetRef::Dep { digest, .. } => *digest,
        }
    }
}

fn stored_file(f: &FileValue) -> Box<StoredFile> {
    Box::new(StoredFile {
        path: f.path.clone(),
        short_path: f.short_path.clone(),
        is_source: f.is_source,
        is_directory: f.is_directory,
        owner: f.owner.clone(),
    })
}

fn file_value(f: &StoredFile) -> FileValue {
    FileValue {
        path: f.path.clone(),
        short_path: f.short_path.clone(),
        is_source: f.is_source,
        is_directory: f.is_directory,
        owner: f.owner.clone(),
    }
}

/// The `TargetInfo` of stored providers, allocated in `heap`; `dep_depset` finds a
/// dependency's depset node (by the dependency's position and the node's digest).
pub(super) fn restore_providers<'v>(
    heap: Heap<'v>,
    stored: &StoredValues,
    dep_depset: &dyn Fn(u32, &Digest) -> Option<Value<'v>>,
) -> Result<Value<'v>, String> {
    restore_providers_indexed(heap, stored, dep_depset).map(|(info, _)| info)
}

/// `restore_providers`, with the target's own depset nodes made, by digest.
pub(super) fn restore_providers_indexed<'v>(
    heap: Heap<'v>,
    stored: &StoredValues,
    dep_depset: &dyn Fn(u32, &Digest) -> Option<Value<'v>>,
) -> Result<(Value<'v>, DepsetIndex<'v>), String> {
    let mut restorer = Restorer {
        heap,
        dep_depset,
        own: Vec::with_capacity(stored.depsets.len()),
    };
    for node in &stored.depsets {
        let direct = node
            .direct
            .iter()
            .map(|v| restorer.value(v))
            .collect::<Result<Vec<_>, _>>()?;
        let transitive = node
            .transitive
            .iter()
            .map(|t| restorer.depset(t))
            .collect::<Result<Vec<_>, _>>()?;
        let value =
            make_depset(direct, transitive, &node.order, heap).map_err(|e| e.to_string())?;
        restorer.own.push(value);
    }
    let providers = stored
        .providers
        .iter()
        .map(|p| restorer.value(p))
        .collect::<Result<Vec<_>, _>>()?;
    let info = heap.alloc(TargetInfoGen {
        label: stored.label.clone(),
        providers,
    });
    let own = stored
        .depsets
        .iter()
        .zip(restorer.own)
        .map(|(node, value)| (node.digest, value))
        .collect();
    Ok((info, own))
}

impl StoredValues {
    /// The depset nodes of rule dependencies these providers refer to: each dependency's
    /// position and the node's digest.
    pub(super) fn dependency_nodes(&self) -> Vec<(u32, Digest)> {
        fn in_ref(r: &DepsetRef, out: &mut Vec<(u32, Digest)>) {
            if let DepsetRef::Dep { dep, digest } = r
                && !out.contains(&(*dep, *digest))
            {
                out.push((*dep, *digest));
            }
        }
        fn in_value(v: &StoredValue, out: &mut Vec<(u32, Digest)>) {
            match v {
                StoredValue::Depset(r) => in_ref(r, out),
                StoredValue::List(items) | StoredValue::Tuple(items) => {
                    items.iter().for_each(|v| in_value(v, out))
                }
                StoredValue::Dict(entries) => entries.iter().for_each(|(k, v)| {
                    in_value(k, out);
                    in_value(v, out);
                }),
                StoredValue::Struct(fields) | StoredValue::Provider { fields, .. } => {
                    fields.iter().for_each(|(_, v)| in_value(v, out))
                }
                StoredValue::Runfiles(parts) => parts.iter().for_each(|v| in_value(v, out)),
                StoredValue::Target { providers, .. } => {
                    providers.iter().for_each(|v| in_value(v, out))
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        for node in &self.depsets {
            node.transitive.iter().for_each(|r| in_ref(r, &mut out));
            node.direct.iter().for_each(|v| in_value(v, &mut out));
        }
        self.providers.iter().for_each(|v| in_value(v, &mut out));
        out
    }
}

struct Restorer<'v, 'a> {
    heap: Heap<'v>,
    dep_depset: &'a dyn Fn(u32, &Digest) -> Option<Value<'v>>,
    own: Vec<Value<'v>>,
}

impl<'v> Restorer<'v, '_> {
    fn values(&self, items: &[StoredValue]) -> Result<Vec<Value<'v>>, String> {
        items.iter().map(|v| self.value(v)).collect()
    }

    fn depset(&self, r: &DepsetRef) -> Result<Value<'v>, String> {
        match r {
            DepsetRef::Own(i) => self
                .own
                .get(*i as usize)
                .copied()
                .ok_or_else(|| format!("depset node {i} is used before it is made")),
            DepsetRef::Dep { dep, digest } => (self.dep_depset)(*dep, digest)
                .ok_or_else(|| format!("dependency {dep} has no depset {digest}")),
        }
    }

    fn value(&self, v: &StoredValue) -> Result<Value<'v>, String> {
        let heap = self.heap;
        Ok(match v {
            StoredValue::None => Value::new_none(),
            StoredValue::Bool(b) => Value::new_bool(*b),
            StoredValue::Int(i) => heap.alloc(*i),
            StoredValue::Float(bits) => heap.alloc(f64::from_bits(*bits)),
            StoredValue::Str(s) => heap.alloc(s.as_str()),
            StoredValue::List(items) => heap.alloc(AllocList(self.values(items)?)),
            StoredValue::Tuple(items) => heap.alloc(AllocTuple(self.values(items)?)),
            StoredValue::Dict(entries) => {
                let mut pairs = Vec::with_capacity(entries.len());
                for (k, x) in entries {
                    pairs.push((self.value(k)?, self.value(x)?));
                }
                heap.alloc(AllocDict(pairs))
            }
            StoredValue::Struct(fields) => {
                let mut pairs = Vec::with_capacity(fields.len());
                for (k, x) in fields {
                    pairs.push((k.as_str(), self.value(x)?));
                }
                heap.alloc(AllocStruct(pairs))
            }
            StoredValue::Provider { id, name, fields } => {
                let mut map = starlark::collections::SmallMap::with_capacity(fields.len());
                for (k, x) in fields {
                    map.insert(k.clone(), self.value(x)?);
                }
                heap.alloc(ProviderInstanceGen {
                    id: id.clone(),
                    name: name.clone(),
                    fields: map,
                })
            }
            StoredValue::Depset(r) => self.depset(r)?,
            StoredValue::File(f) => heap.alloc(file_value(f)),
            StoredValue::Label(l) => heap.alloc(LabelValue { label: l.clone() }),
            StoredValue::Runfiles(parts) => {
                let [files, symlinks, root_symlinks] = &**parts;
                heap.alloc(RunfilesGen {
                    files: self.value(files)?,
                    symlinks: self.value(symlinks)?,
                    root_symlinks: self.value(root_symlinks)?,
                })
            }
            StoredValue::Symlink { path, target_file } => heap.alloc(SymlinkEntry {
                path: path.clone(),
                target_file: file_value(target_file),
            }),
            StoredValue::Target { label, providers } => heap.alloc(TargetInfoGen {
                label: label.clone(),
                providers: self.values(providers)?,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use starlark::environment::Module;

    use super::*;

    #[test]
    fn providers_round_trip_through_plain_data() {
        Module::with_temp_heap(|module| {
            let heap = module.heap();
            let file = heap.alloc(FileValue::source(
                &Label::parse("//p:a.txt", &Default::default()).unwrap(),
            ));
            let inner = make_depset(vec![file], Vec::new(), "default", heap).unwrap();
            let outer = make_depset(vec![], vec![inner], "postorder", heap).unwrap();
            let mut fields = starlark::collections::SmallMap::new();
            fields.insert("files".to_owned(), outer);
            fields.insert("n".to_owned(), heap.alloc(7));
            fields.insert(
                "d".to_owned(),
                heap.alloc(AllocDict([("k", heap.alloc(AllocList([1, 2])))])),
            );
            let provider = heap.alloc(ProviderInstanceGen {
                id: "//p:d.bzl%I".to_owned(),
                name: "I".to_owned(),
                fields,
            });
            let info = heap.alloc(TargetInfoGen {
                label: "//p:t".to_owned(),
                providers: vec![provider],
            });
            let (stored, index) = store_providers(info, &HashMap::new()).expect("storable");
            assert_eq!(index.len(), 2, "both depset nodes are indexed");
            let back = restore_providers(heap, &stored, &|_, _| None).expect("restores");
            let (again, _) = store_providers(back, &HashMap::new()).expect("storable");
            assert_eq!(again, stored);
        });
    }
}

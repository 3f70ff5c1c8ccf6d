//! `ctx.attr`, `ctx.files`, `ctx.file`, `ctx.executable` and `ctx.outputs`: a target's
//! configured attributes and its analysed dependencies in, their Starlark values out, each
//! dependency checked against its attribute's declaration (providers, file types, single
//! file, executable).

use std::collections::HashMap;

use starlark::values::dict::AllocDict;
use starlark::values::list::AllocList;
use starlark::values::{Heap, Value, ValueLike};
use thiserror::Error;

use super::actions::{ActionsState, DeclareError};
use super::configured_graph::{DepEdge, Node};
use super::providers::default_info;
use super::runfiles::new_runfiles;
use super::values::{FileValue, TargetInfo, TargetInfoGen};
use super::{Analyzed, ConfiguredLabel};
use crate::core::Label;
use crate::graph::TargetGraph;
use crate::loading::{
    AllowFiles, AttrKind, AttrSpec, AttrValue, Depset, LabelValue, ProviderInstance, RuleDecl,
    RuleTarget, TargetKind, make_depset,
};

/// A dependency that does not fit the attribute it is given in.
///
/// Boxed: it is rare, and a `Result` that may hold it stays small on the path that succeeds.
#[derive(Debug, Error)]
#[error(transparent)]
pub(super) struct AttrError(Box<AttrErrorKind>);

impl AttrError {
    /// The attribute, for errors Bazel prefixes with `in <attr> attribute of <kind> <label>`.
    pub(super) fn bazel_attribute(&self) -> Option<&str> {
        match &*self.0 {
            AttrErrorKind::MissingProviders { attr, .. }
            | AttrErrorKind::MisplacedRule { attr, .. }
            | AttrErrorKind::TestonlyDependency { attr, .. } => Some(attr),
            _ => None,
        }
    }
}

impl<K: Into<AttrErrorKind>> From<K> for AttrError {
    fn from(kind: K) -> Self {
        AttrError(Box::new(kind.into()))
    }
}

/// What went wrong, inside an `AttrError`.
#[derive(Debug, Error)]
pub(super) enum AttrErrorKind {
    /// The dependency has no analysis result: it is no rule and no file (a package_group).
    #[error("dependency '{0}' has not been analysed")]
    NotAnalysed(Label),
    #[error("attribute '{attr}' must be a single file, but '{label}' has {count} files")]
    NotSingleFile {
        attr: String,
        label: Label,
        count: usize,
    },
    #[error("attribute '{attr}': '{label}' is not executable")]
    NotExecutable { attr: String, label: Label },
    /// `missing` holds, for each group of `providers = [...]`, the ones the dependency lacks.
    /// Worded as Bazel words it, after `in <attr> attribute of <kind> <label>: `.
    #[error(
        "'{label}' does not have mandatory providers: {}",
        missing.join(" or ")
    )]
    MissingProviders {
        attr: String,
        label: Label,
        missing: Vec<String>,
    },
    /// `allow_rules = [...]`: the dependency is a rule of another kind. Worded as Bazel
    /// words it, after `in <attr> attribute of <kind> <label>: `.
    #[error(
        "rule '{label}' is misplaced here (expected {})",
        allowed.join(" or ")
    )]
    MisplacedRule {
        attr: String,
        label: Label,
        allowed: Vec<String>,
    },
    #[error(
        "in attribute '{attr}': '{label}' provides '{short_path}', but only{} files are allowed",
        allowed.iter().map(|e| format!(" '{e}'")).collect::<String>()
    )]
    FileTypeNotAllowed {
        attr: String,
        label: Label,
        short_path: String,
        allowed: Vec<String>,
    },
    /// An aspect the attribute asks for could not be applied (its error's text).
    #[error("in attribute '{attr}': {error}")]
    Aspect { attr: String, error: String },
    /// Worded as Bazel words it, after `in <attr> attribute of <kind> <label>: `.
    #[error(
        "non-test target '{label}' depends on testonly target '{dep}' and doesn't have \
         testonly attribute set"
    )]
    TestonlyDependency {
        attr: String,
        label: Label,
        dep: Label,
    },
    #[error(transparent)]
    Declare(#[from] DeclareError),
}

/// The dependency object for the edge `edge` in the current heap.
fn dep_value<'v>(
    heap: Heap<'v>,
    graph: &TargetGraph,
    done: &HashMap<ConfiguredLabel, Analyzed>,
    edge: &DepEdge,
) -> Option<Value<'v>> {
    let label = &edge.label;
    let target = graph.target(label)?;
    let file = match &target.kind {
        TargetKind::Rule(_) => {
            let analyzed = done.get(edge.rule.as_ref()?)?;
            return Some(heap.access_owned_frozen_value(&analyzed.target_info()?));
        }
        TargetKind::SourceFile => Some(FileValue::source(label)),
        TargetKind::GeneratedFile { generating_rule } => Some(FileValue::generated(
            generating_rule,
            &label.name,
            false,
            &edge.config,
        )),
        // A package group is a target without files (rules name one, such as Bazel's
        // function transition allowlist).
        TargetKind::PackageGroup(_) => None,
    };
    let files = make_depset(
        file.into_iter().map(|f| heap.alloc(f)).collect(),
        Vec::new(),
        "default",
        heap,
    )
    .ok()?;
    let runfiles = new_runfiles(files, heap).ok()?;
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

pub(super) fn plain_value<'v>(heap: Heap<'v>, value: &AttrValue) -> Value<'v> {
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

/// The Starlark values of a target's attributes, by the `ctx` field that shows them.
pub(super) struct AttrValues<'v> {
    pub attr: Vec<(String, Value<'v>)>,
    pub files: Vec<(String, Value<'v>)>,
    pub file: Vec<(String, Value<'v>)>,
    pub executable: Vec<(String, Value<'v>)>,
    pub outputs: Vec<(String, Value<'v>)>,
    pub direct_deps: Vec<Value<'v>>,
    pub data_deps: Vec<Value<'v>>,
    /// `ctx.split_attr`: attributes with a Starlark transition, by split key (`""` for a
    /// 1:1 transition).
    pub split_attr: Vec<(String, Value<'v>)>,
}

/// Applies aspects to one dependency of an attribute (the attribute's name, the aspect ids
/// its declaration lists, the dependency's label and its configured rule target if it is a
/// rule's): the dependency as the rule sees it, or the error's text. A rule applies the
/// aspects its attribute lists; an aspect's `ctx.rule.attr` those propagating along it.
pub(super) type ApplyAspects<'a, 'v> = dyn Fn(&str, &[String], &Label, Option<&ConfiguredLabel>, Value<'v>) -> Result<Value<'v>, String>
    + 'a;

/// The values of `rule`'s attributes. Declares the outputs in `state`, and notes there the
/// executables of dependencies, whose runfiles the actions running them need.
#[allow(clippy::too_many_arguments)]
pub(super) fn attr_values<'v>(
    heap: Heap<'v>,
    graph: &TargetGraph,
    done: &HashMap<ConfiguredLabel, Analyzed>,
    label: &Label,
    rule: &RuleTarget,
    node: &Node,
    decl: &RuleDecl,
    state: &mut ActionsState,
    apply_aspects: &ApplyAspects<'_, 'v>,
) -> Result<AttrValues<'v>, AttrError> {
    let mut v = AttrValues {
        attr: Vec::new(),
        files: Vec::new(),
        file: Vec::new(),
        executable: Vec::new(),
        outputs: Vec::new(),
        direct_deps: Vec::new(),
        data_deps: Vec::new(),
        split_attr: Vec::new(),
    };
    let testonly = is_testonly(rule);
    // The edges by attribute and label, each in every configuration it leads to.
    let mut edges: HashMap<(&str, &Label), Vec<&DepEdge>> = HashMap::new();
    for e in &node.deps {
        edges
            .entry((e.attr.as_str(), &e.label))
            .or_default()
            .push(e);
    }
    // Attributes with a Starlark transition: their `ctx.attr` list and `ctx.files`.
    let mut split_lists: Vec<(String, Value<'v>, Value<'v>)> = Vec::new();
    for (name, value) in &rule.attrs {
        if name == "visibility" {
            continue;
        }
        let spec = decl.attrs.iter().find(|(n, _)| n == name).map(|(_, s)| s);
        let aspects = spec.map(|s| s.aspects.as_slice()).unwrap_or_default();
        // Each dependency once per configuration its edge leads to (several for a split
        // transition), with the split key, and the attribute's aspects applied.
        let deps_of = |l: &Label| -> Result<Vec<(&str, Value<'v>)>, AttrError> {
            if !testonly && depends_on_testonly(graph, l) {
                return Err(AttrErrorKind::TestonlyDependency {
                    attr: name.to_owned(),
                    label: label.clone(),
                    dep: l.clone(),
                }
                .into());
            }
            edges
                .get(&(name, l))
                .into_iter()
                .flatten()
                .map(|e| {
                    let d = dep_value(heap, graph, done, e)
                        .ok_or_else(|| AttrError::from(AttrErrorKind::NotAnalysed(l.clone())))?;
                    let d =
                        apply_aspects(name, aspects, l, e.rule.as_ref(), d).map_err(|error| {
                            AttrError::from(AttrErrorKind::Aspect {
                                attr: name.to_owned(),
                                error,
                            })
                        })?;
                    Ok((e.split_key.as_str(), d))
                })
                .collect()
        };
        let dep = |l: &Label| -> Result<Value<'v>, AttrError> {
            deps_of(l)?
                .first()
                .map(|(_, v)| *v)
                .ok_or_else(|| AttrErrorKind::NotAnalysed(l.clone()).into())
        };
        let rule_of = |l: &Label| {
            edges
                .get(&(name, l))
                .and_then(|es| es.first())
                .and_then(|e| e.rule.as_ref())
        };
        // Through a Starlark transition, `ctx.attr` is a list of the dependency in every
        // configuration, as in Bazel (even for a 1:1 transition); `ctx.file` and
        // `ctx.executable` show the first, checked as usual below.
        if node.split_attrs.contains(name) {
            let (attr, files, split) = split_values(heap, value, &deps_of)?;
            v.split_attr.push((name.to_owned(), split));
            split_lists.push((name.to_owned(), attr, files));
        }
        match value {
            AttrValue::Label(l) => {
                let d = dep(l)?;
                v.attr.push((name.to_owned(), d));
                v.direct_deps.push(d);
                if name == "data" {
                    v.data_deps.push(d);
                }
                let files = files_of_dep(d);
                if let Some(spec) = spec {
                    check_dependency(name, spec, d, l, graph)?;
                    if spec.allow_single_file {
                        if files.len() != 1 {
                            return Err(AttrErrorKind::NotSingleFile {
                                attr: name.to_owned(),
                                label: l.clone(),
                                count: files.len(),
                            }
                            .into());
                        }
                        v.file.push((name.to_owned(), files[0]));
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
                                return Err(AttrErrorKind::NotExecutable {
                                    attr: name.to_owned(),
                                    label: l.clone(),
                                }
                                .into());
                            }
                        };
                        register_tool(state, done, rule_of(l), exe);
                        v.executable.push((name.to_owned(), exe));
                    }
                }
                v.files
                    .push((name.to_owned(), heap.alloc(AllocList(files))));
            }
            AttrValue::LabelList(ls) => {
                let mut deps = Vec::with_capacity(ls.len());
                let mut files = Vec::new();
                for l in ls {
                    let d = dep(l)?;
                    let fs = files_of_dep(d);
                    if let Some(spec) = spec {
                        check_extensions(name, &spec.allow_files, &fs, l)?;
                        check_dependency(name, spec, d, l, graph)?;
                    }
                    if let Some(exe) =
                        TargetInfo::from_value(d).and_then(|t| t.default_info("executable"))
                    {
                        register_tool(state, done, rule_of(l), exe);
                    }
                    files.extend(fs);
                    deps.push(d);
                }
                v.direct_deps.extend(deps.iter().copied());
                if name == "data" || name == "deps" || name == "srcs" {
                    v.data_deps.extend(deps.iter().copied());
                }
                v.attr.push((name.to_owned(), heap.alloc(AllocList(deps))));
                v.files
                    .push((name.to_owned(), heap.alloc(AllocList(files))));
            }
            AttrValue::LabelKeyedStringDict(kv) => {
                let mut entries = Vec::new();
                for (l, s) in kv {
                    let d = dep(l)?;
                    if let Some(spec) = spec {
                        check_dependency(name, spec, d, l, graph)?;
                    }
                    v.direct_deps.push(d);
                    entries.push((d, heap.alloc(s.as_str())));
                }
                v.attr
                    .push((name.to_owned(), heap.alloc(AllocDict(entries))));
            }
            AttrValue::Output(l) => {
                let f = state.declare_output(&l.name)?;
                let f = heap.alloc(f);
                v.attr
                    .push((name.to_owned(), heap.alloc(LabelValue { label: l.clone() })));
                v.outputs.push((name.to_owned(), f));
            }
            AttrValue::OutputList(ls) => {
                let mut files = Vec::new();
                for l in ls {
                    files.push(heap.alloc(state.declare_output(&l.name)?));
                }
                v.attr.push((
                    name.to_owned(),
                    heap.alloc(AllocList(
                        ls.iter()
                            .map(|l| heap.alloc(LabelValue { label: l.clone() })),
                    )),
                ));
                v.outputs
                    .push((name.to_owned(), heap.alloc(AllocList(files))));
            }
            AttrValue::None => {
                v.attr.push((name.to_owned(), Value::new_none()));
                if spec.is_some_and(|s| s.kind == AttrKind::Label) {
                    v.files
                        .push((name.to_owned(), heap.alloc(AllocList(Vec::<Value>::new()))));
                    if spec.is_some_and(|s| s.allow_single_file) {
                        v.file.push((name.to_owned(), Value::new_none()));
                    }
                    if spec.is_some_and(|s| s.executable) {
                        v.executable.push((name.to_owned(), Value::new_none()));
                    }
                } else if spec.is_some_and(|s| s.kind == AttrKind::Output) {
                    v.outputs.push((name.to_owned(), Value::new_none()));
                }
            }
            plain => v.attr.push((name.to_owned(), plain_value(heap, plain))),
        }
    }
    for (name, attr, files) in split_lists {
        v.attr.retain(|(n, _)| *n != name);
        v.attr.push((name.clone(), attr));
        v.files.retain(|(n, _)| *n != name);
        v.files.push((name, files));
    }
    v.attr
        .push(("name".into(), heap.alloc(label.name.as_str())));
    Ok(v)
}

/// The values of an attribute whose transition split the configuration: `ctx.attr` (every
/// dependency in every configuration, a list as in Bazel), `ctx.files` and `ctx.split_attr`
/// (split key -> the dependency, or the list of them for a label list).
#[allow(clippy::type_complexity)]
fn split_values<'v, 'a>(
    heap: Heap<'v>,
    value: &AttrValue,
    deps_of: &dyn Fn(&Label) -> Result<Vec<(&'a str, Value<'v>)>, AttrError>,
) -> Result<(Value<'v>, Value<'v>, Value<'v>), AttrError> {
    let labels = value.dep_labels();
    let mut by_key: Vec<(&str, Vec<Value<'v>>)> = Vec::new();
    for l in &labels {
        for (key, dep) in deps_of(l)? {
            match by_key.iter_mut().find(|(k, _)| *k == key) {
                Some((_, deps)) => deps.push(dep),
                None => by_key.push((key, vec![dep])),
            }
        }
    }
    by_key.sort_by(|a, b| a.0.cmp(b.0));
    let all: Vec<Value> = by_key.iter().flat_map(|(_, d)| d.iter().copied()).collect();
    let files: Vec<Value> = all.iter().flat_map(|d| files_of_dep(*d)).collect();
    let single = matches!(value, AttrValue::Label(_));
    let split = heap.alloc(AllocDict(by_key.iter().map(|(k, deps)| {
        let v = if single {
            deps[0]
        } else {
            heap.alloc(AllocList(deps.iter().copied()))
        };
        (*k, v)
    })));
    let attr = if labels.is_empty() && single {
        Value::new_none()
    } else {
        heap.alloc(AllocList(all))
    };
    Ok((attr, heap.alloc(AllocList(files)), split))
}

fn is_testonly(rule: &RuleTarget) -> bool {
    rule.is_test || matches!(rule.attrs.get("testonly"), Some(AttrValue::Bool(true)))
}

/// Whether `label` is a testonly rule, or a file such a rule generates.
fn depends_on_testonly(graph: &TargetGraph, label: &Label) -> bool {
    let Some(target) = graph.target(label) else {
        return false;
    };
    let rule = match &target.kind {
        TargetKind::GeneratedFile { generating_rule } => {
            graph.target(generating_rule).and_then(|t| t.rule())
        }
        _ => target.rule(),
    };
    rule.is_some_and(is_testonly)
}

/// Checks a dependency that is a rule against `allow_rules` and `providers`, as Bazel does:
/// a rule of an allowed kind is fine, else it must have the mandatory providers; a rule
/// neither allowed by kind nor by providers is "misplaced".
fn check_dependency(
    attr: &str,
    spec: &AttrSpec,
    dep: Value,
    label: &Label,
    graph: &TargetGraph,
) -> Result<(), AttrError> {
    let Some(rule) = graph.target(label).and_then(|t| t.rule()) else {
        return Ok(());
    };
    if spec.allow_rules.is_empty() {
        return check_providers(attr, &spec.providers, dep, label, graph);
    }
    if spec.allow_rules.contains(&rule.class) {
        return Ok(());
    }
    if !spec.providers.is_empty() {
        return check_providers(attr, &spec.providers, dep, label, graph);
    }
    Err(AttrErrorKind::MisplacedRule {
        attr: attr.to_owned(),
        label: label.clone(),
        allowed: spec.allow_rules.clone(),
    }
    .into())
}

/// `providers = [...]` of a label attribute: a dependency that is a rule must return every
/// provider of at least one group (files are not checked, as in Bazel).
fn check_providers(
    attr: &str,
    groups: &[Vec<String>],
    dep: Value,
    label: &Label,
    graph: &TargetGraph,
) -> Result<(), AttrError> {
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
    Err(AttrErrorKind::MissingProviders {
        attr: attr.to_owned(),
        label: label.clone(),
        missing,
    }
    .into())
}

/// Remembers a dependency's executable and runfiles, so that actions running it also get
/// its runfiles as inputs.
fn register_tool(
    state: &mut ActionsState,
    done: &HashMap<ConfiguredLabel, Analyzed>,
    rule: Option<&ConfiguredLabel>,
    exe: Value,
) {
    let Some(exe) = exe.downcast_ref::<FileValue>() else {
        return;
    };
    let runfiles = rule
        .and_then(|r| done.get(r))
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
) -> Result<(), AttrError> {
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
                return Err(AttrErrorKind::FileTypeNotAllowed {
                    attr: attr.to_owned(),
                    label: label.clone(),
                    short_path: f.short_path.clone(),
                    allowed: exts.clone(),
                }
                .into());
            }
        }
    }
    Ok(())
}

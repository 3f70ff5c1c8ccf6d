//! Aspects on an attribute edge: the aspect ids an attribute lists (`attr.label(aspects =
//! [...])`) and the analysed dependency in; the dependency as the depending rule sees it out,
//! with the providers each aspect's implementation returned added to its own.
//!
//! The aspect's implementation gets the dependency as `target` (with `target.actions`, the
//! actions it registered) and a `ctx` with `label`, `rule.kind`, `bin_dir`, `genfiles_dir` and
//! `workspace_name`. Forge applies an aspect to the direct dependency only: an aspect that
//! propagates (`attr_aspects`), has attributes, requires providers or toolchains is refused.

use std::collections::HashMap;
use std::fmt;

use allocative::Allocative;
use starlark::environment::Module;
use starlark::eval::Evaluator;
use starlark::values::list::AllocList;
use starlark::values::structs::AllocStruct;
use starlark::values::{
    Heap, NoSerialize, ProvidesStaticType, StarlarkValue, Trace, Value, ValueLike, starlark_value,
};
use thiserror::Error;

use super::Analyzed;
use super::ConfiguredLabel;
use super::action_value::ActionValue;
use super::values::{TargetInfo, TargetInfoGen};
use crate::core::{Label, PackageId};
use crate::graph::TargetGraph;
use crate::loading::{
    EvalContext, FileKind, FrozenAspect, LabelValue, ProviderInstance, Unsupported,
};

/// Why an aspect could not be applied.
#[derive(Debug, Error)]
pub(super) enum AspectError {
    #[error("aspect '{0}' is not a Starlark aspect forge could find")]
    NotFound(String),
    #[error(
        "forge does not support aspect '{aspect}' yet: it is declared with {}; forge applies \
         aspects to the direct dependency only, without attributes, required providers or \
         toolchains",
        params.join(", ")
    )]
    Unsupported { aspect: String, params: Vec<String> },
    #[error("aspect '{aspect}' on '{target}' failed:\n{error}")]
    Implementation {
        aspect: String,
        target: Label,
        error: String,
    },
    #[error("aspect '{aspect}' must return a list of providers, got {got}")]
    NotProviders { aspect: String, got: String },
    #[error(
        "provider {provider} is provided twice to '{target}' (by the target and aspect '{aspect}')"
    )]
    Duplicate {
        provider: String,
        target: Label,
        aspect: String,
    },
}

/// The dependency an aspect's implementation sees as `target`: the analysed target, and
/// the actions it registered.
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

/// `dep` (the analysed `dep_label`) with every aspect of `ids` applied, in order.
pub(super) fn apply<'v>(
    module: &Module<'v>,
    graph: &TargetGraph,
    done: &HashMap<ConfiguredLabel, Analyzed>,
    ids: &[String],
    dep_label: &Label,
    dep_key: Option<&ConfiguredLabel>,
    dep: Value<'v>,
) -> Result<Value<'v>, AspectError> {
    let heap = module.heap();
    // Bazel applies aspects to rule targets; a file passes through unchanged.
    let Some(rule) = graph.target(dep_label).and_then(|t| t.rule()) else {
        return Ok(dep);
    };
    let Some((dep_key, analyzed)) = dep_key.and_then(|k| Some((k, done.get(k)?))) else {
        return Ok(dep);
    };
    let mut current = dep;
    for id in ids {
        let (defined_in, name) = id
            .rsplit_once('%')
            .ok_or_else(|| AspectError::NotFound(id.clone()))?;
        let owned = graph
            .loader()
            .rule_callable(defined_in, name)
            .map_err(|_| AspectError::NotFound(id.clone()))?;
        let value = heap.access_owned_frozen_value(&owned);
        let aspect = value
            .downcast_ref::<FrozenAspect>()
            .ok_or_else(|| AspectError::NotFound(id.clone()))?;
        if !aspect.unsupported.is_empty() {
            return Err(AspectError::Unsupported {
                aspect: id.clone(),
                params: aspect.unsupported.clone(),
            });
        }
        let actions: Vec<Value> = analyzed
            .actions
            .iter()
            .map(|a| heap.alloc(ActionValue { action: a.clone() }))
            .collect();
        let target = heap.alloc_complex_no_freeze(AspectTarget {
            target: current,
            actions: heap.alloc(AllocList(actions)),
        });
        let ctx = heap.alloc(AllocStruct([
            (
                "label",
                heap.alloc(LabelValue {
                    label: dep_label.clone(),
                }),
            ),
            (
                "rule",
                heap.alloc(AllocStruct([("kind", heap.alloc(rule.class.as_str()))])),
            ),
            ("attr", heap.alloc(AllocStruct(Vec::<(&str, Value)>::new()))),
            (
                "bin_dir",
                heap.alloc(AllocStruct([("path", dep_key.config.bin_dir())])),
            ),
            (
                "genfiles_dir",
                heap.alloc(AllocStruct([("path", dep_key.config.bin_dir())])),
            ),
            (
                "workspace_name",
                heap.alloc(graph.loader().workspace().name.as_str()),
            ),
            (
                "actions",
                heap.alloc(Unsupported::new("ctx.actions in an aspect".to_owned())),
            ),
        ]));
        let eval_ctx = EvalContext {
            base: PackageId::new(&dep_label.repo, &dep_label.package),
            file: Label::parse(defined_in, &PackageId::default())
                .unwrap_or_else(|_| dep_label.clone()),
            kind: FileKind::Bzl,
        };
        let returned = {
            let mut eval = Evaluator::new(module);
            eval.extra = Some(&eval_ctx);
            eval.eval_function(aspect.implementation.to_value(), &[target, ctx], &[])
                .map_err(|e| AspectError::Implementation {
                    aspect: id.clone(),
                    target: dep_label.clone(),
                    error: e.to_string(),
                })?
        };
        let not_providers = || AspectError::NotProviders {
            aspect: id.clone(),
            got: returned.get_type().to_owned(),
        };
        let mut providers: Vec<Value> = TargetInfo::from_value(current)
            .map(|t| t.providers.iter().map(|p| p.to_value()).collect())
            .unwrap_or_default();
        let added: Vec<Value> = if returned.is_none() {
            Vec::new()
        } else {
            returned
                .iterate(heap)
                .map_err(|_| not_providers())?
                .collect()
        };
        for p in added {
            let instance = ProviderInstance::from_value(p).ok_or_else(not_providers)?;
            if providers
                .iter()
                .any(|q| ProviderInstance::from_value(*q).is_some_and(|q| q.id == instance.id))
            {
                return Err(AspectError::Duplicate {
                    provider: instance.name.clone(),
                    target: dep_label.clone(),
                    aspect: id.clone(),
                });
            }
            providers.push(p);
        }
        current = heap.alloc(TargetInfoGen {
            label: dep_label.to_string(),
            providers,
        });
    }
    Ok(current)
}

//! What a rule asks of toolchain resolution: `rule(toolchains = [...])` entries (label
//! strings, `Label`s, `config_common.toolchain_type(name, mandatory = ...)`) in, plain
//! `ToolchainRequest`s out; and the `config_common` module that makes the optional kind.

use std::fmt;

use allocative::Allocative;
use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::{
    Heap, NoSerialize, ProvidesStaticType, StarlarkValue, Value, ValueLike, starlark_value,
};

use super::context::EvalContext;
use super::label_value::LabelValue;
use super::unsupported::Unsupported;
use crate::core::{Label, PackageId};

/// One toolchain type a rule needs: a missing mandatory one is an analysis error, a missing
/// optional one is `None` in `ctx.toolchains`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ToolchainRequest {
    pub toolchain_type: Label,
    pub mandatory: bool,
}

/// `config_common.toolchain_type(name, mandatory = ...)`.
#[derive(Debug, Clone, ProvidesStaticType, NoSerialize, Allocative)]
pub struct ToolchainTypeRequirement {
    #[allocative(skip)]
    pub request: ToolchainRequest,
}

starlark::starlark_simple_value!(ToolchainTypeRequirement);

impl fmt::Display for ToolchainTypeRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "config_common.toolchain_type({}, mandatory = {})",
            self.request.toolchain_type,
            if self.request.mandatory {
                "True"
            } else {
                "False"
            }
        )
    }
}

#[starlark_value(type = "toolchain_type")]
impl<'v> StarlarkValue<'v> for ToolchainTypeRequirement {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        match attribute {
            "toolchain_type" => Some(heap.alloc(LabelValue {
                label: self.request.toolchain_type.clone(),
            })),
            "mandatory" => Some(Value::new_bool(self.request.mandatory)),
            _ => None,
        }
    }
}

/// A toolchain type given as a label string (read against `base`) or a `Label`.
fn type_label(value: Value, base: &PackageId, what: &str) -> anyhow::Result<Label> {
    if let Some(text) = value.unpack_str() {
        return Ok(Label::parse(text, base)?);
    }
    if let Some(label) = value.downcast_ref::<LabelValue>() {
        return Ok(label.label.clone());
    }
    anyhow::bail!(
        "{what} must be a label string, a Label or config_common.toolchain_type(...), got {}",
        value.get_type()
    )
}

/// `rule(toolchains = [...])` as requests, each type once (the first mention wins).
pub fn requests_of<'v>(
    value: Value<'v>,
    base: &PackageId,
    heap: Heap<'v>,
) -> anyhow::Result<Vec<ToolchainRequest>> {
    let items = value
        .iterate(heap)
        .map_err(|_| anyhow::anyhow!("rule(): 'toolchains' must be a list"))?;
    let mut requests: Vec<ToolchainRequest> = Vec::new();
    for item in items {
        let request = match item.downcast_ref::<ToolchainTypeRequirement>() {
            Some(r) => r.request.clone(),
            None => ToolchainRequest {
                toolchain_type: type_label(item, base, "rule(): each of 'toolchains'")?,
                mandatory: true,
            },
        };
        if !requests
            .iter()
            .any(|r| r.toolchain_type == request.toolchain_type)
        {
            requests.push(request);
        }
    }
    Ok(requests)
}

/// A list of labels given to `rule(exec_compatible_with = [...])`, read against `base`.
pub fn labels_of<'v>(
    value: Value<'v>,
    base: &PackageId,
    what: &str,
    heap: Heap<'v>,
) -> anyhow::Result<Vec<Label>> {
    let items = value
        .iterate(heap)
        .map_err(|_| anyhow::anyhow!("{what} must be a list of labels"))?;
    items
        .map(|item| {
            if let Some(text) = item.unpack_str() {
                return Ok(Label::parse(text, base)?);
            }
            match item.downcast_ref::<LabelValue>() {
                Some(l) => Ok(l.label.clone()),
                None => anyhow::bail!("{what} must be a list of labels, got {}", item.get_type()),
            }
        })
        .collect()
}

#[starlark_module]
fn config_common_members(builder: &mut GlobalsBuilder) {
    /// A toolchain type a rule may list in `toolchains`; with `mandatory = False` the rule
    /// is analysed without it when no toolchain matches.
    fn toolchain_type<'v>(
        #[starlark(require = pos)] name: Value<'v>,
        #[starlark(require = named, default = true)] mandatory: bool,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<ToolchainTypeRequirement> {
        let base = EvalContext::from_eval(eval)
            .map(|c| c.base.clone())
            .unwrap_or_default();
        Ok(ToolchainTypeRequirement {
            request: ToolchainRequest {
                toolchain_type: type_label(name, &base, "config_common.toolchain_type(name)")?,
                mandatory,
            },
        })
    }
}

/// `config_common`: `toolchain_type` is real; `FeatureFlagInfo` (Bazel's
/// config_feature_flag, which forge does not have) refuses at its first use.
pub fn config_common_globals(builder: &mut GlobalsBuilder) {
    builder.namespace("config_common", |b| {
        config_common_members(b);
        b.set(
            "FeatureFlagInfo",
            Unsupported::new("config_common.FeatureFlagInfo".to_owned()),
        );
    });
}

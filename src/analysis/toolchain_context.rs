//! `ctx.toolchains`: the toolchains resolution chose for a target (type -> the
//! implementation's `platform_common.ToolchainInfo`, or `None` for an optional type none
//! matched) in, the value a rule implementation indexes by toolchain type out.

use std::fmt;

use allocative::Allocative;
use starlark::values::{
    Heap, NoSerialize, ProvidesStaticType, StarlarkValue, Trace, Value, ValueLike, starlark_value,
};

use crate::core::{Label, PackageId};
use crate::loading::{LabelValue, ToolchainRequest};

/// The id of `platform_common.ToolchainInfo`.
pub(super) const TOOLCHAIN_INFO_ID: &str = "<builtin>%ToolchainInfo";

/// `ctx.toolchains` of one target.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative, Trace)]
pub(super) struct ToolchainContextValue<'v> {
    /// Requested type -> its ToolchainInfo (None when an optional type had no match).
    #[allocative(skip)]
    #[trace(static)]
    pub types: Vec<Label>,
    pub infos: Vec<Value<'v>>,
    /// String keys are read against the target's package, as Bazel reads them.
    #[allocative(skip)]
    #[trace(static)]
    pub base: PackageId,
}

impl fmt::Display for ToolchainContextValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<toolchain_context.resolved_labels: ")?;
        let names: Vec<String> = self.types.iter().map(Label::to_string).collect();
        write!(f, "{}>", names.join(", "))
    }
}

impl<'v> ToolchainContextValue<'v> {
    fn key(&self, index: Value<'v>) -> starlark::Result<Label> {
        if let Some(text) = index.unpack_str() {
            return Label::parse(text, &self.base)
                .map_err(|e| starlark::Error::new_native(anyhow::anyhow!("{e}")));
        }
        if let Some(l) = index.downcast_ref::<LabelValue>() {
            return Ok(l.label.clone());
        }
        if let Some(r) = index.downcast_ref::<crate::loading::ToolchainTypeRequirementValue>() {
            let ToolchainRequest { toolchain_type, .. } = &r.request;
            return Ok(toolchain_type.clone());
        }
        Err(starlark::Error::new_native(anyhow::anyhow!(
            "ctx.toolchains is indexed by a toolchain type's label, got {}",
            index.get_type()
        )))
    }
}

#[starlark_value(type = "ToolchainContext")]
impl<'v> StarlarkValue<'v> for ToolchainContextValue<'v> {
    fn at(&self, index: Value<'v>, _heap: Heap<'v>) -> starlark::Result<Value<'v>> {
        let key = self.key(index)?;
        match self.types.iter().position(|t| *t == key) {
            Some(i) => Ok(self.infos[i]),
            None => Err(starlark::Error::new_native(anyhow::anyhow!(
                "toolchain type {key} was not requested by this rule; add it to the rule's \
                 `toolchains` (requested: {})",
                if self.types.is_empty() {
                    "none".to_owned()
                } else {
                    self.types
                        .iter()
                        .map(Label::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ))),
        }
    }

    fn is_in(&self, other: Value<'v>) -> starlark::Result<bool> {
        let key = self.key(other)?;
        Ok(self.types.contains(&key))
    }
}

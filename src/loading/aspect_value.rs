//! `aspect(...)` in a .bzl file: its declaration in, an `Aspect` value out, named on
//! assignment like a rule, that `attr.label(aspects = [...])` records by name.
//!
//! Analysis applies an aspect to the direct dependency of such an attribute
//! (`analysis/aspects.rs`). What forge cannot do yet — propagating along `attr_aspects`,
//! aspect attributes, required providers, toolchains — is recorded on the aspect, and the
//! dependency edge that would apply it is refused, naming it.

// Starlark functions take Bazel's keyword parameters one Rust argument each.
#![allow(clippy::too_many_arguments)]

use std::fmt;
use std::sync::OnceLock;

use allocative::Allocative;
use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::{
    Freeze, FreezeResult, Freezer, FrozenValue, Heap, NoSerialize, ProvidesStaticType,
    StarlarkValue, Trace, Value, starlark_value,
};

use super::context::EvalContext;

/// An aspect declared with `aspect(implementation, ...)`, before its module is frozen.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative, Trace)]
pub struct Aspect<'v> {
    implementation: Value<'v>,
    #[allocative(skip)]
    #[trace(static)]
    name: OnceLock<String>,
    #[allocative(skip)]
    #[trace(static)]
    defined_in: String,
    /// Parameters given that forge cannot honour yet (`attr_aspects = ["deps"]`, ...), as
    /// `'<param> = <value>'`: applying the aspect is refused, naming them.
    #[allocative(skip)]
    #[trace(static)]
    unsupported: Vec<String>,
}

/// `<bzl label>%<name>`, as Bazel names aspects on the command line.
fn aspect_id(defined_in: &str, name: &OnceLock<String>) -> String {
    let name = name.get().map_or("<unexported aspect>", |n| n.as_str());
    format!("{defined_in}%{name}")
}

impl Aspect<'_> {
    pub fn id(&self) -> String {
        aspect_id(&self.defined_in, &self.name)
    }
}

impl fmt::Display for Aspect<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<aspect {}>", self.id())
    }
}

impl<'v> starlark::values::AllocValue<'v> for Aspect<'v> {
    fn alloc_value(self, heap: Heap<'v>) -> Value<'v> {
        heap.alloc_complex(self)
    }
}

#[starlark_value(type = "Aspect")]
impl<'v> StarlarkValue<'v> for Aspect<'v> {
    fn export_as(
        &self,
        variable_name: &str,
        _eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<()> {
        let _ = self.name.set(variable_name.to_owned());
        Ok(())
    }
}

impl<'v> Freeze for Aspect<'v> {
    type Frozen = FrozenAspect;

    fn freeze(self, freezer: &Freezer) -> FreezeResult<FrozenAspect> {
        Ok(FrozenAspect {
            implementation: self.implementation.freeze(freezer)?,
            name: self.name,
            defined_in: self.defined_in,
            unsupported: self.unsupported,
        })
    }
}

/// An aspect of a frozen .bzl module: what analysis applies.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct FrozenAspect {
    pub implementation: FrozenValue,
    #[allocative(skip)]
    name: OnceLock<String>,
    defined_in: String,
    pub unsupported: Vec<String>,
}

starlark::starlark_simple_value!(FrozenAspect);

impl FrozenAspect {
    pub fn id(&self) -> String {
        aspect_id(&self.defined_in, &self.name)
    }
}

impl fmt::Display for FrozenAspect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<aspect {}>", self.id())
    }
}

#[starlark_value(type = "Aspect")]
impl<'v> StarlarkValue<'v> for FrozenAspect {
    type Canonical = Aspect<'v>;
}

/// The id of an aspect value, frozen or not.
pub fn aspect_value_id(value: Value) -> Option<String> {
    use starlark::values::ValueLike;
    value
        .downcast_ref::<Aspect>()
        .map(Aspect::id)
        .or_else(|| value.downcast_ref::<FrozenAspect>().map(FrozenAspect::id))
}

#[starlark_module]
pub fn aspect_globals(builder: &mut GlobalsBuilder) {
    /// Declares an aspect, applied by analysis where an attribute asks for it.
    fn aspect<'v>(
        implementation: Value<'v>,
        #[starlark(require = named)] attr_aspects: Option<Value<'v>>,
        #[starlark(require = named)] attrs: Option<Value<'v>>,
        #[starlark(require = named)] required_providers: Option<Value<'v>>,
        #[starlark(require = named)] required_aspect_providers: Option<Value<'v>>,
        #[starlark(require = named)] provides: Option<Value<'v>>,
        #[starlark(require = named)] requires: Option<Value<'v>>,
        #[starlark(require = named)] fragments: Option<Value<'v>>,
        #[starlark(require = named)] host_fragments: Option<Value<'v>>,
        #[starlark(require = named)] toolchains: Option<Value<'v>>,
        #[starlark(require = named)] incompatible_use_toolchain_transition: Option<Value<'v>>,
        #[starlark(require = named)] doc: Option<Value<'v>>,
        #[starlark(require = named)] apply_to_generating_rules: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Aspect<'v>> {
        // Bazel's parameters that only document or permit leave nothing to do; the others,
        // given a value that means something, make the aspect one forge refuses to apply.
        let _ = (
            fragments,
            host_fragments,
            incompatible_use_toolchain_transition,
            doc,
        );
        let mut unsupported = Vec::new();
        for (param, value) in [
            ("attr_aspects", attr_aspects),
            ("attrs", attrs),
            ("required_providers", required_providers),
            ("required_aspect_providers", required_aspect_providers),
            ("provides", provides),
            ("requires", requires),
            ("toolchains", toolchains),
            ("apply_to_generating_rules", apply_to_generating_rules),
        ] {
            let Some(v) = value else { continue };
            let meaningless =
                v.is_none() || v.unpack_bool() == Some(false) || v.length().is_ok_and(|n| n == 0);
            if !meaningless {
                unsupported.push(format!("'{param} = {}'", v.to_repr()));
            }
        }
        if !implementation.get_type().contains("function") {
            anyhow::bail!(
                "aspect(): 'implementation' must be a function, got {}",
                implementation.get_type()
            );
        }
        Ok(Aspect {
            implementation,
            name: OnceLock::new(),
            defined_in: EvalContext::from_eval(eval)?.file.to_string(),
            unsupported,
        })
    }
}

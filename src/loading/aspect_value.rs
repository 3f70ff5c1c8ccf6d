//! `aspect(...)` in a .bzl file: its declaration in, an `Aspect` value out, named on
//! assignment like a rule, that `attr.label(aspects = [...])` and `--aspects` name by id
//! (`<bzl label>%<name>`).
//!
//! The declaration is checked here as Bazel 4 checks it (`attr_aspects`, the aspect's
//! attributes: public ones `attr.string(values = [...])`, private ones with a default,
//! `required_providers`, `required_aspect_providers`, `provides`, `requires`) and kept as
//! plain data, `AspectDecl`, for analysis (`analysis/aspects.rs`) to apply. What forge cannot
//! do (`toolchains`, `apply_to_generating_rules = True`) is recorded and refused, naming
//! it, where the aspect would be applied.

// Starlark functions take Bazel's keyword parameters one Rust argument each.
#![allow(clippy::too_many_arguments)]

use std::fmt;
use std::sync::{Arc, OnceLock};

use allocative::Allocative;
use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::{
    Freeze, FreezeResult, Freezer, FrozenValue, Heap, NoSerialize, ProvidesStaticType,
    StarlarkValue, Trace, Value, starlark_value,
};

use super::attr_module::{Attribute, providers};
use super::attrs::{AttrKind, AttrSpec, sequence, string, type_error};
use super::context::EvalContext;
use super::providers::provider_callable;

/// What `aspect()` declared, shared by the unfrozen and frozen aspect.
#[derive(Debug, Default)]
pub struct AspectDecl {
    /// `attr_aspects`: the attributes the aspect propagates along (`"*"`: all of them).
    pub attr_aspects: Vec<String>,
    /// `attrs`: public ones are parameters (`attr.string(values = [...])`, taken from the
    /// requesting rule's attribute of the same name); private ones have defaults.
    pub attrs: Vec<(String, AttrSpec)>,
    /// `required_providers`: groups of provider ids; the aspect applies only to targets
    /// whose rule advertises (`rule(provides = ...)`) every provider of one group.
    pub required_providers: Vec<Vec<String>>,
    /// `required_aspect_providers`: groups of provider ids; the aspect sees an earlier
    /// aspect on the same target when that aspect's `provides` covers one group.
    pub required_aspect_providers: Vec<Vec<String>>,
    /// `provides`: the provider ids the implementation must return.
    pub provides: Vec<String>,
    /// `requires`: ids of aspects applied first, whose providers this one sees.
    pub requires: Vec<String>,
    /// Parameters given that forge cannot honour yet (`toolchains = [...]`), as
    /// `'<param> = <value>'`: applying the aspect is refused, naming them.
    pub unsupported: Vec<String>,
}

impl AspectDecl {
    /// Whether the aspect propagates along the attribute `name`.
    pub fn propagates_along(&self, name: &str) -> bool {
        self.attr_aspects.iter().any(|a| a == "*" || a == name)
    }
}

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
    #[allocative(skip)]
    #[trace(static)]
    decl: Arc<AspectDecl>,
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
            decl: self.decl,
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
    #[allocative(skip)]
    pub decl: Arc<AspectDecl>,
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

/// A list of strings given to `aspect()`.
fn strings(param: &str, value: Option<Value>) -> anyhow::Result<Vec<String>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(Vec::new());
    };
    sequence(value)
        .ok_or_else(|| type_error(param, "a list of strings", value))?
        .into_iter()
        .map(|v| string(param, v).map(str::to_owned))
        .collect()
}

/// `attrs = {...}` of an aspect, checked as Bazel 4 checks them.
fn aspect_attrs(value: Option<Value>) -> anyhow::Result<Vec<(String, AttrSpec)>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(Vec::new());
    };
    let dict = starlark::values::dict::DictRef::from_value(value)
        .ok_or_else(|| anyhow::anyhow!("aspect(): 'attrs' must be a dict of name to attr.*()"))?;
    let mut out = Vec::new();
    for (k, v) in dict.iter() {
        let name = k
            .unpack_str()
            .ok_or_else(|| anyhow::anyhow!("aspect(): attribute names must be strings"))?;
        let attr = Attribute::from_value(v).ok_or_else(|| {
            anyhow::anyhow!(
                "aspect(): attribute '{name}' must be made with attr.*(), got {}",
                v.get_type()
            )
        })?;
        if attr.computed_default().is_some() || attr.transition().is_some() {
            anyhow::bail!(
                "forge does not support aspect attribute '{name}' with a computed default or \
                 a transition yet"
            );
        }
        let spec = (*attr.spec).clone();
        if name.starts_with('_') {
            if spec.default.is_none() && !spec.late_bound {
                anyhow::bail!("Aspect attribute '{name}' has no default value.");
            }
        } else if spec.kind != AttrKind::String || spec.values.is_empty() {
            anyhow::bail!(
                "Aspect parameter attribute '{name}' must have type 'string' and use the \
                 'values' restriction."
            );
        }
        out.push((name.to_owned(), spec));
    }
    Ok(out)
}

/// `provides = [...]` as provider ids.
fn provided(value: Option<Value>) -> anyhow::Result<Vec<String>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(Vec::new());
    };
    sequence(value)
        .ok_or_else(|| type_error("provides", "a list of providers", value))?
        .into_iter()
        .map(|p| {
            provider_callable(p)
                .map(|c| c.id())
                .ok_or_else(|| type_error("provides", "a list of providers", p))
        })
        .collect()
}

/// `requires = [...]` as aspect ids.
fn required_aspects(value: Option<Value>) -> anyhow::Result<Vec<String>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(Vec::new());
    };
    sequence(value)
        .ok_or_else(|| type_error("requires", "a list of aspects", value))?
        .into_iter()
        .map(|a| aspect_value_id(a).ok_or_else(|| type_error("requires", "a list of aspects", a)))
        .collect()
}

#[starlark_module]
pub fn aspect_globals(builder: &mut GlobalsBuilder) {
    /// Declares an aspect, applied by analysis where an attribute or `--aspects` asks for it.
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
        // Bazel's parameters that only document or permit leave nothing to do (every
        // configuration fragment is there for forge's rules).
        let _ = (
            fragments,
            host_fragments,
            incompatible_use_toolchain_transition,
            doc,
        );
        if !implementation.get_type().contains("function") {
            anyhow::bail!(
                "aspect(): 'implementation' must be a function, got {}",
                implementation.get_type()
            );
        }
        let attr_aspects = strings("attr_aspects", attr_aspects)?;
        if attr_aspects.len() > 1 && attr_aspects.iter().any(|a| a == "*") {
            anyhow::bail!("aspect(): '*' must be the only string in 'attr_aspects'");
        }
        let mut unsupported = Vec::new();
        for (param, value) in [
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
        let decl = AspectDecl {
            attr_aspects,
            attrs: aspect_attrs(attrs)?,
            required_providers: providers(required_providers)?,
            required_aspect_providers: providers(required_aspect_providers)?,
            provides: provided(provides)?,
            requires: required_aspects(requires)?,
            unsupported,
        };
        Ok(Aspect {
            implementation,
            name: OnceLock::new(),
            defined_in: EvalContext::from_eval(eval)?.file.to_string(),
            decl: Arc::new(decl),
        })
    }
}

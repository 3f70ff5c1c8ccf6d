//! `aspect(...)` in a .bzl file: its declaration in, an `Aspect` value out, named on
//! assignment like a rule, that `attr.label(aspects = [...])` records by name.
//!
//! Forge does not apply aspects yet: a .bzl that declares one loads, and an attribute that
//! asks for one is recorded, so every target that does not depend through it builds; the
//! dependency edge that would need the aspect is refused at analysis, naming it.

// Starlark functions take Bazel's keyword parameters one Rust argument each.
#![allow(clippy::too_many_arguments)]

use std::fmt;
use std::sync::OnceLock;

use allocative::Allocative;
use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::values::{NoSerialize, ProvidesStaticType, StarlarkValue, Value, starlark_value};
use starlark::{starlark_module, starlark_simple_value};

use super::context::EvalContext;

/// An aspect declared with `aspect(implementation, ...)`.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct Aspect {
    name: OnceLock<String>,
    defined_in: String,
}

starlark_simple_value!(Aspect);

impl Aspect {
    /// `<bzl label>%<name>`, as Bazel names aspects on the command line.
    pub fn id(&self) -> String {
        let name = self
            .name
            .get()
            .map_or("<unexported aspect>", |n| n.as_str());
        format!("{}%{name}", self.defined_in)
    }
}

impl fmt::Display for Aspect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<aspect {}>", self.id())
    }
}

#[starlark_value(type = "Aspect")]
impl<'v> StarlarkValue<'v> for Aspect {
    fn export_as(
        &self,
        variable_name: &str,
        _eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<()> {
        let _ = self.name.set(variable_name.to_owned());
        Ok(())
    }
}

#[starlark_module]
pub fn aspect_globals(builder: &mut GlobalsBuilder) {
    /// Declares an aspect. Forge records it; applying it is refused at analysis.
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
    ) -> anyhow::Result<Aspect> {
        // Every parameter is Bazel's; none changes anything until aspects are applied.
        let _ = (
            attr_aspects,
            attrs,
            required_providers,
            required_aspect_providers,
            provides,
            requires,
            fragments,
            host_fragments,
            toolchains,
            incompatible_use_toolchain_transition,
            doc,
            apply_to_generating_rules,
        );
        if !implementation.get_type().contains("function") {
            anyhow::bail!(
                "aspect(): 'implementation' must be a function, got {}",
                implementation.get_type()
            );
        }
        Ok(Aspect {
            name: OnceLock::new(),
            defined_in: EvalContext::from_eval(eval)?.file.to_string(),
        })
    }
}

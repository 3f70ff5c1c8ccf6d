//! `transition(...)` and `analysis_test_transition(...)` in a .bzl file: their arguments in,
//! a `Transition` value out, which `rule(cfg = ...)` and `attr.label(cfg = ...)` record.
//!
//! Forge builds in one configuration and cannot apply a transition yet: a .bzl file that
//! declares one loads (skylib's unittest.bzl does, for every test file that loads it), and a
//! target whose rule or attribute needs one is refused at analysis, naming it.

use std::fmt;

use allocative::Allocative;
use starlark::environment::GlobalsBuilder;
use starlark::values::{NoSerialize, ProvidesStaticType, StarlarkValue, Value, starlark_value};
use starlark::{starlark_module, starlark_simple_value};

/// A configuration transition, declared but not applied.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct Transition {
    /// `transition` or `analysis_test_transition`.
    made_by: &'static str,
}

starlark_simple_value!(Transition);

impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>", self.made_by)
    }
}

#[starlark_value(type = "transition")]
impl<'v> StarlarkValue<'v> for Transition {}

fn strings(what: &str, value: Value) -> anyhow::Result<()> {
    let items = super::attrs::sequence(value)
        .ok_or_else(|| super::attrs::type_error(what, "a list of strings", value))?;
    for item in items {
        super::attrs::string(what, item)?;
    }
    Ok(())
}

#[starlark_module]
pub fn transition_globals(builder: &mut GlobalsBuilder) {
    /// A Starlark transition: `implementation(settings, attr)` maps `inputs` to `outputs`.
    fn transition<'v>(
        #[starlark(require = named)] implementation: Value<'v>,
        #[starlark(require = named)] inputs: Value<'v>,
        #[starlark(require = named)] outputs: Value<'v>,
    ) -> anyhow::Result<Transition> {
        if !implementation.get_type().contains("function") {
            anyhow::bail!(
                "transition(): 'implementation' must be a function, got {}",
                implementation.get_type()
            );
        }
        strings("transition(): inputs", inputs)?;
        strings("transition(): outputs", outputs)?;
        Ok(Transition {
            made_by: "transition",
        })
    }

    /// The transition of an analysis test rule: `settings` applied to what it tests.
    fn analysis_test_transition<'v>(
        #[starlark(require = named)] settings: Value<'v>,
    ) -> anyhow::Result<Transition> {
        if starlark::values::dict::DictRef::from_value(settings).is_none() {
            anyhow::bail!(
                "analysis_test_transition(): 'settings' must be a dict, got {}",
                settings.get_type()
            );
        }
        Ok(Transition {
            made_by: "analysis_test_transition",
        })
    }
}

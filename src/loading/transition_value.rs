//! `transition(...)` and `analysis_test_transition(...)` in a .bzl file: their arguments in,
//! a `Transition` value out, which `rule(cfg = ...)` and `attr.label(cfg = ...)` keep (frozen
//! with the .bzl file) for analysis to apply (`analysis::transitions`).

use std::fmt;
use std::sync::Arc;

use allocative::Allocative;
use starlark::coerce::Coerce;
use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::values::{
    Freeze, NoSerialize, ProvidesStaticType, StarlarkValue, Trace, Value, ValueLike, starlark_value,
};
use starlark::{starlark_complex_value, starlark_module};

use super::context::EvalContext;
use crate::core::{Label, PackageId};

/// What a transition declared, in plain Rust.
#[derive(Debug, Clone)]
pub struct TransitionDecl {
    /// `transition` or `analysis_test_transition`.
    pub made_by: &'static str,
    /// The settings the implementation reads, as written (`//command_line_option:cpu`,
    /// `//pkg:flag`), and the label each names.
    pub inputs: Vec<(String, Label)>,
    /// The settings it sets, as written, and the label each names.
    pub outputs: Vec<(String, Label)>,
    /// The .bzl file that declared it, for messages and to resolve labels the
    /// implementation makes.
    pub file: Label,
    pub base: PackageId,
}

/// A configuration transition: its declaration and, for `transition`, the Starlark
/// implementation; for `analysis_test_transition`, the `settings` dict.
#[derive(Debug, Trace, Coerce, Freeze, ProvidesStaticType, NoSerialize, Allocative)]
#[repr(C)]
pub struct TransitionGen<V> {
    #[allocative(skip)]
    #[trace(static)]
    #[freeze(identity)]
    pub decl: Arc<TransitionDecl>,
    /// `implementation(settings, attr)`, or the fixed `settings` of an analysis test's
    /// transition.
    pub function_or_settings: V,
}

starlark_complex_value!(pub Transition);

impl<V> fmt::Display for TransitionGen<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>", self.decl.made_by)
    }
}

#[starlark_value(type = "transition")]
impl<'v, V: ValueLike<'v>> StarlarkValue<'v> for TransitionGen<V> where Self: ProvidesStaticType<'v> {}

impl<'v, V: ValueLike<'v>> TransitionGen<V> {
    /// The implementation function or the analysis test's settings, on the current heap.
    pub fn value(&self) -> Value<'v> {
        self.function_or_settings.to_value()
    }

    /// Whether this is a Starlark `transition()`, which Bazel 4 allows only in rules with an
    /// `_allowlist_function_transition` attribute.
    pub fn needs_allowlist(&self) -> bool {
        self.decl.made_by == "transition"
    }
}

/// The strings of `value` (a list), each with the label it names, read against `base`.
fn settings(what: &str, value: Value, base: &PackageId) -> anyhow::Result<Vec<(String, Label)>> {
    let items = super::attrs::sequence(value)
        .ok_or_else(|| super::attrs::type_error(what, "a list of strings", value))?;
    let mut out = Vec::new();
    for item in items {
        let text = super::attrs::string(what, item)?;
        let label = Label::parse(text, base).map_err(|e| {
            anyhow::anyhow!("{what}: '{text}' is not a label of a build setting: {e}")
        })?;
        if out.iter().any(|(t, _)| *t == text) {
            anyhow::bail!("{what}: '{text}' is given twice");
        }
        out.push((text.to_owned(), label));
    }
    Ok(out)
}

#[starlark_module]
pub fn transition_globals(builder: &mut GlobalsBuilder) {
    /// A Starlark transition: `implementation(settings, attr)` maps `inputs` to `outputs`.
    fn transition<'v>(
        #[starlark(require = named)] implementation: Value<'v>,
        #[starlark(require = named)] inputs: Value<'v>,
        #[starlark(require = named)] outputs: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Transition<'v>> {
        if !implementation.get_type().contains("function") {
            anyhow::bail!(
                "transition(): 'implementation' must be a function, got {}",
                implementation.get_type()
            );
        }
        let ctx = EvalContext::from_eval(eval)?;
        Ok(Transition {
            decl: Arc::new(TransitionDecl {
                made_by: "transition",
                inputs: settings("transition(): inputs", inputs, &ctx.base)?,
                outputs: settings("transition(): outputs", outputs, &ctx.base)?,
                file: ctx.file.clone(),
                base: ctx.base.clone(),
            }),
            function_or_settings: implementation,
        })
    }

    /// The transition of an analysis test rule: `settings` applied to what it tests.
    fn analysis_test_transition<'v>(
        #[starlark(require = named)] settings: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Transition<'v>> {
        let Some(dict) = starlark::values::dict::DictRef::from_value(settings) else {
            anyhow::bail!(
                "analysis_test_transition(): 'settings' must be a dict, got {}",
                settings.get_type()
            );
        };
        let ctx = EvalContext::from_eval(eval)?;
        let mut outputs = Vec::new();
        for key in dict.keys() {
            let Some(text) = key.unpack_str() else {
                anyhow::bail!(
                    "analysis_test_transition(): the keys of 'settings' must be strings, got {}",
                    key.get_type()
                );
            };
            let label = Label::parse(text, &ctx.base).map_err(|e| {
                anyhow::anyhow!("analysis_test_transition(): '{text}' is not a label: {e}")
            })?;
            outputs.push((text.to_owned(), label));
        }
        Ok(Transition {
            decl: Arc::new(TransitionDecl {
                made_by: "analysis_test_transition",
                inputs: Vec::new(),
                outputs,
                file: ctx.file.clone(),
                base: ctx.base.clone(),
            }),
            function_or_settings: settings,
        })
    }
}

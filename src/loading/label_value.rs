//! `Label()` in BUILD and .bzl files: a label string in, resolved against the calling
//! file's package, a `LabelValue` out (the value itself, shared with WORKSPACE evaluation,
//! is `workspace::label::LabelValue`).

use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;

use super::context::EvalContext;
pub use crate::workspace::label::LabelValue;

#[starlark_module]
pub fn label_globals(builder: &mut GlobalsBuilder) {
    /// A label, resolved against the package of the file that calls `Label()`.
    #[starlark(as_type = LabelValue)]
    fn Label<'v>(
        #[starlark(require = pos)] label: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<LabelValue> {
        let base = eval
            .extra
            .and_then(|e| e.downcast_ref::<EvalContext>())
            .map(|c| c.base.clone())
            .unwrap_or_default();
        Ok(LabelValue {
            label: crate::core::Label::parse(label, &base)?,
        })
    }
}

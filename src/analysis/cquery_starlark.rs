//! `cquery --output=starlark`: a configured target's analysis and a `--starlark:expr`
//! expression over `target` in, the text cquery prints for it out. As in Bazel, the
//! expression sees `target` (its `label`, `target[Provider]`) and `providers(target)`, a
//! dict of its providers by key.

use starlark::environment::{GlobalsBuilder, Module};
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::syntax::AstModule;
use starlark::values::Value;
use starlark::values::dict::AllocDict;

use super::values::TargetInfo;
use super::{Analysis, ConfiguredLabel};
use crate::loading::ProviderInstance;

#[starlark_module]
fn cquery_globals(builder: &mut GlobalsBuilder) {
    /// The providers of a configured target, by key: `DefaultInfo`, or
    /// `//pkg:defs.bzl%MyInfo` for a Starlark provider; None for a file.
    fn providers<'v>(
        target: Value<'v>,
        heap: starlark::values::Heap<'v>,
    ) -> anyhow::Result<Value<'v>> {
        let Some(info) = TargetInfo::from_value(target) else {
            return Ok(Value::new_none());
        };
        let entries: Vec<(String, Value<'v>)> = info
            .providers
            .iter()
            .map(|p| {
                let key = match ProviderInstance::from_value(*p) {
                    Some(i) => match i.id.strip_prefix("<builtin>%") {
                        Some(name) => name.to_owned(),
                        None => i.id.clone(),
                    },
                    None => p.get_type().to_owned(),
                };
                (key, *p)
            })
            .collect();
        Ok(heap.alloc(AllocDict(entries)))
    }
}

/// The text `expr` gives for the configured target `key` (None when it was not analysed).
pub fn format_target(
    analysis: &Analysis,
    key: &ConfiguredLabel,
    expr: &str,
) -> Result<String, String> {
    let code = format!("def cquery_format(target):\n    return ({expr})\n");
    let ast = AstModule::parse(
        "--starlark:expr",
        code,
        &starlark::syntax::Dialect::Extended,
    )
    .map_err(|e| format!("invalid --starlark:expr: {e}"))?;
    let globals = GlobalsBuilder::standard().with(cquery_globals).build();
    let info = analysis.targets.get(key).and_then(|a| a.target_info());
    Module::with_temp_heap(|module| {
        let mut eval = Evaluator::new(&module);
        eval.eval_module(ast, &globals)
            .map_err(|e| format!("invalid --starlark:expr: {e}"))?;
        let function = module
            .get("cquery_format")
            .ok_or_else(|| "invalid --starlark:expr".to_owned())?;
        let target = match &info {
            Some(info) => module.heap().access_owned_frozen_value(info),
            None => Value::new_none(),
        };
        let result = eval
            .eval_function(function, &[target], &[])
            .map_err(|e| format!("--starlark:expr failed for {key}: {e}"))?;
        Ok(match result.unpack_str() {
            Some(s) => s.to_owned(),
            None => result.to_str(),
        })
    })
}

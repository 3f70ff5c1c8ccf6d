//! Computed defaults: the function of `attr.label(default = _fn)` and a rule call's other
//! attribute values in, the Starlark value the function returns out — Bazel passes each
//! parameter the value of the attribute it is named after.

use std::collections::BTreeMap;

use starlark::docs::{DocItem, DocMember};
use starlark::eval::Evaluator;
use starlark::values::dict::AllocDict;
use starlark::values::list::AllocList;
use starlark::values::{Heap, Value};

use super::label_value::LabelValue;
use super::target::AttrValue;

/// Calls `function` with the attributes its parameters name, as Bazel does.
pub(super) fn evaluate<'v>(
    function: Value<'v>,
    attrs: &BTreeMap<String, AttrValue>,
    what: &str,
    eval: &mut Evaluator<'v, '_, '_>,
) -> anyhow::Result<Value<'v>> {
    let heap = eval.heap();
    let mut named: Vec<(String, Value<'v>)> = Vec::new();
    for param in parameter_names(function) {
        let value = attrs.get(&param).ok_or_else(|| {
            anyhow::anyhow!(
                "{what}: its parameter '{param}' names no attribute of the rule; a computed \
                 default's parameters must be attribute names"
            )
        })?;
        let value = attr_to_starlark(heap, value).ok_or_else(|| {
            anyhow::anyhow!(
                "{what}: attribute '{param}' is configurable (select()), and forge does not \
                 support computed defaults that depend on a configurable attribute yet"
            )
        })?;
        named.push((param, value));
    }
    let named: Vec<(&str, Value<'v>)> = named.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    eval.eval_function(function, &[], &named)
        .map_err(|e| anyhow::anyhow!("{what} failed: {}", e.without_diagnostic()))
}

/// The names of a Starlark function's parameters, in order.
fn parameter_names(function: Value) -> Vec<String> {
    match function.documentation() {
        DocItem::Member(DocMember::Function(f)) => f
            .params
            .pos_only
            .iter()
            .chain(&f.params.pos_or_named)
            .chain(&f.params.named_only)
            .map(|p| p.name.clone())
            .collect(),
        _ => Vec::new(),
    }
}

/// An attribute's value as Starlark shows it to macros and computed defaults (labels as
/// `Label` objects); `None` for a `select()`, whose value is not known while loading.
pub fn attr_to_starlark<'v>(heap: Heap<'v>, value: &AttrValue) -> Option<Value<'v>> {
    let label = |l: &crate::core::Label| heap.alloc(LabelValue { label: l.clone() });
    Some(match value {
        AttrValue::None => Value::new_none(),
        AttrValue::Bool(b) => Value::new_bool(*b),
        AttrValue::Int(i) => heap.alloc(*i),
        AttrValue::String(s) => heap.alloc(s.as_str()),
        AttrValue::StringList(v) => heap.alloc(AllocList(v.iter().map(|s| s.as_str()))),
        AttrValue::StringDict(kv) => {
            heap.alloc(AllocDict(kv.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
        }
        AttrValue::Label(l) | AttrValue::Output(l) => label(l),
        AttrValue::LabelList(ls) | AttrValue::OutputList(ls) => {
            heap.alloc(AllocList(ls.iter().map(label)))
        }
        AttrValue::LabelKeyedStringDict(kv) => {
            heap.alloc(AllocDict(kv.iter().map(|(k, v)| (label(k), v.as_str()))))
        }
        AttrValue::Select(_) => return None,
    })
}

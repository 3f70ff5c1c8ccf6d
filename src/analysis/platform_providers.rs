//! The `platform_common` providers of Bazel's platform rules: a built-in
//! `constraint_setting`, `constraint_value` or `platform` target in, the
//! `ConstraintSettingInfo`, `ConstraintValueInfo` or `PlatformInfo` it carries out — what
//! `ctx.attr._windows[platform_common.ConstraintValueInfo]` reads and
//! `ctx.target_platform_has_constraint` takes. As in Bazel, rules cannot create them.

use starlark::collections::SmallMap;
use starlark::values::{Heap, Value};

use super::conditions::{is_builtin, unalias};
use super::platforms::default_value;
use crate::core::Label;
use crate::graph::TargetGraph;
use crate::loading::{AttrValue, LabelValue, ProviderInstanceGen, RuleTarget};

fn instance<'v>(heap: Heap<'v>, name: &str, fields: Vec<(&str, Value<'v>)>) -> Value<'v> {
    let mut map = SmallMap::new();
    for (k, v) in fields {
        map.insert(k.to_owned(), v);
    }
    heap.alloc(ProviderInstanceGen {
        id: format!("<builtin>%{name}"),
        name: name.to_owned(),
        fields: map,
    })
}

fn label_value<'v>(heap: Heap<'v>, label: &Label) -> Value<'v> {
    heap.alloc(LabelValue {
        label: label.clone(),
    })
}

/// `ConstraintSettingInfo` of the setting `setting`.
fn setting_info<'v>(heap: Heap<'v>, graph: &TargetGraph, setting: &Label) -> Value<'v> {
    let default = default_value(graph, setting);
    instance(
        heap,
        "ConstraintSettingInfo",
        vec![
            ("label", label_value(heap, setting)),
            (
                "default_constraint_value",
                default
                    .as_ref()
                    .map_or(Value::new_none(), |d| label_value(heap, d)),
            ),
            (
                "has_default_constraint_value",
                Value::new_bool(default.is_some()),
            ),
        ],
    )
}

/// The provider a built-in platform rule's target carries, if `rule` is one.
pub(super) fn platform_provider<'v>(
    heap: Heap<'v>,
    graph: &TargetGraph,
    rule: &RuleTarget,
    label: &Label,
) -> Option<Value<'v>> {
    if is_builtin(rule, "constraint_setting") {
        return Some(setting_info(heap, graph, label));
    }
    if is_builtin(rule, "constraint_value") {
        let setting = match rule.attrs.get("constraint_setting") {
            Some(AttrValue::Label(s)) => unalias(graph, s).map(|(l, _)| l).unwrap_or(s.clone()),
            _ => return None,
        };
        return Some(instance(
            heap,
            "ConstraintValueInfo",
            vec![
                ("label", label_value(heap, label)),
                ("constraint", setting_info(heap, graph, &setting)),
            ],
        ));
    }
    if is_builtin(rule, "platform") {
        return Some(instance(
            heap,
            "PlatformInfo",
            vec![("label", label_value(heap, label))],
        ));
    }
    None
}

//! `select()` in, plain `AttrValue::Select` out: the Starlark `select` value (Bazel's
//! `SelectorList`, which `+` concatenates with lists, strings, dicts and other selects), and
//! its conversion at a rule call, where each branch is checked against the attribute's type
//! and its condition labels are resolved against the BUILD file's package.

use std::fmt;

use allocative::Allocative;
use starlark::environment::GlobalsBuilder;
use starlark::starlark_complex_value;
use starlark::starlark_module;
use starlark::values::dict::DictRef;
use starlark::values::list::ListRef;
use starlark::values::tuple::TupleRef;
use starlark::values::{
    Coerce, Freeze, Heap, NoSerialize, ProvidesStaticType, StarlarkValue, Trace, Value, ValueLike,
    starlark_value,
};

use super::attrs::{AttrKind, AttrSpec, label_value};
use super::target::{AttrValue, Select, SelectPart, Selector};
use crate::core::PackageId;

/// Attributes whose value must be known before configuration, as in Bazel.
pub const NONCONFIGURABLE: &[&str] = &["name", "visibility"];

/// A chain of `+` operands of which at least one is a `select()`. `parts[i]` is a selector
/// (a dict of condition to value) when `no_match[i]` is `Some`, else a plain value.
#[derive(Debug, Trace, Coerce, Freeze, ProvidesStaticType, NoSerialize, Allocative)]
#[repr(C)]
pub struct SelectorListGen<V> {
    parts: Vec<V>,
    /// For selectors: `Some(no_match_error)` (empty when not given); `None` for plain parts.
    no_match: Vec<Option<String>>,
}

starlark_complex_value!(pub SelectorList);

impl<V: fmt::Display> fmt::Display for SelectorListGen<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (part, no_match)) in self.parts.iter().zip(&self.no_match).enumerate() {
            if i > 0 {
                write!(f, " + ")?;
            }
            match no_match {
                Some(_) => write!(f, "select({part})")?,
                None => write!(f, "{part}")?,
            }
        }
        Ok(())
    }
}

/// Whether a value may be an operand of `+` next to a select.
fn concatenable(v: Value) -> bool {
    ListRef::from_value(v).is_some()
        || TupleRef::from_value(v).is_some()
        || DictRef::from_value(v).is_some()
        || v.unpack_str().is_some()
}

impl<'v> SelectorList<'v> {
    /// The parts of `v` as operands: a select's own parts, or `v` as one plain part.
    fn operands(v: Value<'v>) -> Option<(Vec<Value<'v>>, Vec<Option<String>>)> {
        if let Some(s) = SelectorList::from_value(v) {
            return Some((
                s.parts.iter().map(|p| p.to_value()).collect(),
                s.no_match.clone(),
            ));
        }
        concatenable(v).then(|| (vec![v], vec![None]))
    }

    fn concat(lhs: Value<'v>, rhs: Value<'v>, heap: Heap<'v>) -> Option<Value<'v>> {
        let (mut parts, mut no_match) = Self::operands(lhs)?;
        let (more, more_no_match) = Self::operands(rhs)?;
        parts.extend(more);
        no_match.extend(more_no_match);
        Some(heap.alloc_complex(SelectorListGen { parts, no_match }))
    }
}

#[starlark_value(type = "select")]
impl<'v, V: ValueLike<'v>> StarlarkValue<'v> for SelectorListGen<V>
where
    Self: ProvidesStaticType<'v>,
{
    fn add(&self, rhs: Value<'v>, heap: Heap<'v>) -> Option<starlark::Result<Value<'v>>> {
        let me = heap.alloc_complex(SelectorListGen {
            parts: self.parts.iter().map(|p| p.to_value()).collect(),
            no_match: self.no_match.clone(),
        });
        SelectorList::concat(me, rhs, heap).map(Ok)
    }

    fn radd(&self, lhs: Value<'v>, heap: Heap<'v>) -> Option<starlark::Result<Value<'v>>> {
        let me = heap.alloc_complex(SelectorListGen {
            parts: self.parts.iter().map(|p| p.to_value()).collect(),
            no_match: self.no_match.clone(),
        });
        SelectorList::concat(lhs, me, heap).map(Ok)
    }
}

/// A select value from its parts: `(dict, Some(no_match_error))` for a selector (an empty
/// message when none was given), `(value, None)` for a plain operand. For
/// `native.existing_rule()`, which gives a rule's configurable attributes back as selects.
pub fn alloc_select<'v>(heap: Heap<'v>, parts: Vec<(Value<'v>, Option<String>)>) -> Value<'v> {
    let (parts, no_match) = parts.into_iter().unzip();
    heap.alloc_complex(SelectorListGen { parts, no_match })
}

#[starlark_module]
pub fn select_globals(builder: &mut GlobalsBuilder) {
    /// A configurable attribute value: `{condition label: value}`, where a condition is a
    /// `config_setting` or `constraint_value` target, or `//conditions:default`. Concatenate
    /// with `+` to lists, strings, dicts and other selects.
    fn select<'v>(
        #[starlark(require = pos)] conditions: Value<'v>,
        #[starlark(require = named)] no_match_error: Option<String>,
        heap: Heap<'v>,
    ) -> anyhow::Result<Value<'v>> {
        let Some(dict) = DictRef::from_value(conditions) else {
            anyhow::bail!(
                "select() expects a dict of condition label to value, got {}",
                conditions.get_type()
            );
        };
        if dict.is_empty() {
            anyhow::bail!(
                "select({{}}) with an empty dictionary can never resolve because it includes \
                 no conditions to match"
            );
        }
        for key in dict.keys() {
            if key.unpack_str().is_none()
                && key
                    .downcast_ref::<super::label_value::LabelValue>()
                    .is_none()
            {
                anyhow::bail!(
                    "select(): the keys must be label strings, got {} of type '{}'",
                    key.to_repr(),
                    key.get_type()
                );
            }
        }
        Ok(heap.alloc_complex(SelectorListGen {
            parts: vec![conditions],
            no_match: vec![Some(no_match_error.unwrap_or_default())],
        }))
    }
}

/// Whether values of this kind can be joined with `+`.
fn joinable(kind: AttrKind) -> bool {
    matches!(
        kind,
        AttrKind::String
            | AttrKind::StringList
            | AttrKind::StringDict
            | AttrKind::LabelList
            | AttrKind::LabelKeyedStringDict
    )
}

/// Converts a select value given for attribute `attr` (described by `what` in messages),
/// checking every branch against `spec` and resolving labels against `base`. `None` in a
/// branch means the attribute's default. Returns `None` when `value` is not a select.
pub fn coerce_select(
    attr: &str,
    spec: &AttrSpec,
    what: &str,
    value: Value,
    base: &PackageId,
) -> anyhow::Result<Option<AttrValue>> {
    let Some(list) = SelectorList::from_value(value) else {
        return Ok(None);
    };
    if NONCONFIGURABLE.contains(&attr)
        || matches!(spec.kind, AttrKind::Output | AttrKind::OutputList)
    {
        anyhow::bail!("attribute '{attr}' is not configurable: it cannot be given with select()");
    }
    if list.parts.len() > 1 && !joinable(spec.kind) {
        anyhow::bail!(
            "in {what}: values of this type cannot be concatenated with select() using '+'"
        );
    }
    // Emptiness is a property of the resolved value, not of each part.
    let mut part_spec = spec.clone();
    part_spec.allow_empty = true;
    let branch = |v: Value| -> anyhow::Result<AttrValue> {
        if v.is_none() && !matches!(spec.kind, AttrKind::Label) {
            return Ok(spec.default_value());
        }
        part_spec.coerce(what, v, base)
    };
    let mut parts = Vec::with_capacity(list.parts.len());
    for (part, no_match) in list.parts.iter().zip(&list.no_match) {
        let part = part.to_value();
        match no_match {
            None => parts.push(SelectPart::Plain(branch(part)?)),
            Some(error) => {
                let dict = DictRef::from_value(part).expect("select() checked its argument");
                let mut conditions = Vec::with_capacity(dict.len());
                for (k, v) in dict.iter() {
                    let condition = label_value(&format!("a select() key of {what}"), k, base)?;
                    if conditions.iter().any(|(c, _)| *c == condition) {
                        anyhow::bail!("in {what}: select() has the condition '{condition}' twice");
                    }
                    let v = branch(v).map_err(|e| {
                        anyhow::anyhow!("{e} (in the select() branch for '{condition}')")
                    })?;
                    conditions.push((condition, v));
                }
                parts.push(SelectPart::Selector(Selector {
                    conditions,
                    no_match_error: (!error.is_empty()).then(|| error.clone()),
                }));
            }
        }
    }
    Ok(Some(AttrValue::Select(Box::new(Select { parts }))))
}

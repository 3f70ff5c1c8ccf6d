//! The `Label` value: a label string in (`Label("//pkg:name")`, resolved against the calling
//! file's package), a label with its parts as attributes out (`ctx.label`, `dep.label`).

use std::fmt;

use allocative::Allocative;
use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::values::{
    Heap, NoSerialize, ProvidesStaticType, StarlarkValue, Value, ValueLike, starlark_value,
};
use starlark::{starlark_module, starlark_simple_value};

use super::context::EvalContext;
use crate::core::Label;

/// A `Label` value: `Label("//pkg:name")`, `ctx.label`, `dep.label`.
#[derive(Debug, Clone, ProvidesStaticType, NoSerialize, Allocative, PartialEq, Eq, Hash)]
pub struct LabelValue {
    #[allocative(skip)]
    pub label: Label,
}

starlark_simple_value!(LabelValue);

impl fmt::Display for LabelValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // As Bazel 4 prints it: `//pkg:x` for the main repository, `@repo//pkg:x` otherwise.
        write!(f, "{}", self.label)
    }
}

#[starlark_value(type = "Label")]
impl<'v> StarlarkValue<'v> for LabelValue {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        let l = &self.label;
        Some(match attribute {
            "name" => heap.alloc(l.name.as_str()),
            "package" => heap.alloc(l.package.as_str()),
            "workspace_name" | "repo_name" => heap.alloc(l.repo.as_str()),
            "workspace_root" => heap.alloc(if l.repo.is_empty() {
                String::new()
            } else {
                format!("external/{}", l.repo)
            }),
            _ => return None,
        })
    }

    fn dir_attr(&self) -> Vec<String> {
        ["name", "package", "workspace_name", "workspace_root"]
            .map(str::to_owned)
            .to_vec()
    }

    fn equals(&self, other: Value<'v>) -> starlark::Result<bool> {
        Ok(other
            .downcast_ref::<LabelValue>()
            .is_some_and(|o| o.label == self.label))
    }

    fn write_hash(
        &self,
        hasher: &mut starlark::collections::StarlarkHasher,
    ) -> starlark::Result<()> {
        use std::hash::Hash;
        self.label.to_string().hash(hasher);
        Ok(())
    }

    fn compare(&self, other: Value<'v>) -> starlark::Result<std::cmp::Ordering> {
        match other.downcast_ref::<LabelValue>() {
            Some(o) => Ok(self.label.cmp(&o.label)),
            None => starlark::values::ValueError::unsupported_with(self, "compare", other),
        }
    }
}

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

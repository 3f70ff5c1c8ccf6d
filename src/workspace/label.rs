//! The Starlark `Label` value (`LabelValue`, shared by every phase that evaluates Starlark),
//! and `Label()` in WORKSPACE and the .bzl files it loads: a label string in, resolved
//! against the repository of the file that calls it (through its `repo_mapping`), a `Label`
//! value out — which repository rules take for `build_file` and `patches`.

use std::fmt;

use allocative::Allocative;
use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::values::{
    Heap, NoSerialize, ProvidesStaticType, StarlarkValue, Value, ValueLike, starlark_value,
};
use starlark::{starlark_module, starlark_simple_value};

use super::evaluate::WorkspaceContext;
use crate::core::Label;

/// A `Label` value: `Label("//pkg:name")` in WORKSPACE, .bzl and BUILD files, `ctx.label`,
/// `dep.label`. It lives here, in the first phase that evaluates Starlark; `loading` and
/// `analysis` use the same value.
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

/// A `build_file` or patch argument: a string as given, a `Label` as `@repo//pkg:file`
/// (`//pkg:file` in the main repository).
pub fn label_text(value: Value, what: &str) -> anyhow::Result<String> {
    if let Some(text) = value.unpack_str() {
        return Ok(text.to_owned());
    }
    if let Some(label) = value.downcast_ref::<LabelValue>() {
        return Ok(label.label.to_string());
    }
    anyhow::bail!(
        "{what} must be a label string or a Label, got {}",
        value.get_type()
    )
}

#[starlark_module]
pub fn label_function(builder: &mut GlobalsBuilder) {
    /// `Label("//pkg:name")`, read against the repository of the calling file.
    #[starlark(as_type = LabelValue)]
    fn Label<'v>(
        #[starlark(require = pos)] text: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<LabelValue> {
        let ctx = WorkspaceContext::from_eval(eval)?;
        let base = ctx.caller_package(eval);
        let label = ctx.resolve(text, &base).map_err(anyhow::Error::msg)?;
        Ok(LabelValue { label })
    }
}

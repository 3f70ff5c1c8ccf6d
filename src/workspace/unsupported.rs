//! A Bazel builtin forge does not implement yet, as a Starlark value that refuses to be used,
//! naming itself: calling it, indexing it or anything reached through it (`cc_common.compile`)
//! is an error. It lives in the first phase that evaluates Starlark (WORKSPACE's own refused
//! functions use it); `loading` gives .bzl and BUILD files the Bazel globals it stands for.

use std::fmt;

use allocative::Allocative;
use starlark::eval::{Arguments, Evaluator};
use starlark::starlark_simple_value;
use starlark::values::{
    Heap, NoSerialize, ProvidesStaticType, StarlarkValue, Value, starlark_value,
};

/// A Bazel module or function forge does not support yet, by its path.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct Unsupported {
    path: String,
    /// Why, when there is more to say than "not yet" (`forge has no Android rules`).
    why: Option<&'static str>,
}

starlark_simple_value!(Unsupported);

impl Unsupported {
    /// What refuses to be used as `path` (`ctx.fragments`).
    pub fn new(path: String) -> Self {
        Unsupported { path, why: None }
    }

    /// What refuses to be used as `path`, saying why.
    pub fn because(path: String, why: &'static str) -> Self {
        Unsupported {
            path,
            why: Some(why),
        }
    }

    fn refusal(&self) -> starlark::Error {
        let why = self.why.map(|w| format!(": {w}")).unwrap_or_default();
        starlark::Error::new_native(anyhow::anyhow!(
            "forge does not support `{}` yet{why}",
            self.path
        ))
    }
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} (not supported by forge)>", self.path)
    }
}

#[starlark_value(type = "unsupported")]
impl<'v> StarlarkValue<'v> for Unsupported {
    fn invoke(
        &self,
        _me: Value<'v>,
        _args: &Arguments<'v, '_>,
        _eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<Value<'v>> {
        Err(self.refusal())
    }

    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        Some(heap.alloc(Unsupported {
            path: format!("{}.{attribute}", self.path),
            why: self.why,
        }))
    }

    fn at(&self, _index: Value<'v>, _heap: Heap<'v>) -> starlark::Result<Value<'v>> {
        Err(self.refusal())
    }

    fn is_in(&self, _other: Value<'v>) -> starlark::Result<bool> {
        Err(self.refusal())
    }

    fn iterate_collect(&self, _heap: Heap<'v>) -> starlark::Result<Vec<Value<'v>>> {
        Err(self.refusal())
    }
}

//! The C++ options of the command line (`--copt`, `--cxxopt`, `--conlyopt`, `--linkopt`,
//! `--features`, `--minimum_os_version`) in; `ctx.fragments.cpp` out, which the C++
//! toolchain rule reads so that every compile and link of the build gets them, as Bazel's
//! cpp configuration fragment.

use std::fmt;

use allocative::Allocative;
use starlark::any::ProvidesStaticType;
use starlark::environment::{Methods, MethodsBuilder};
use starlark::values::list::AllocList;
use starlark::values::none::NoneOr;
use starlark::values::structs::AllocStruct;
use starlark::values::{Heap, NoSerialize, StarlarkValue, Value, starlark_value};
use starlark::{starlark_module, starlark_simple_value};

use crate::loading::Unsupported;

/// The options, each in the order given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CppOptions {
    pub copts: Vec<String>,
    pub cxxopts: Vec<String>,
    pub conlyopts: Vec<String>,
    pub linkopts: Vec<String>,
    /// `--features`: enabled for every target (`-x` disables `x`), before the package's
    /// and the target's own.
    pub features: Vec<String>,
    /// `--minimum_os_version`: unset unless given (or set by a transition).
    pub minimum_os_version: Option<String>,
}

impl CppOptions {
    /// The options as command-line words, for the plan cache's identity.
    pub fn identity(&self) -> Vec<String> {
        let flags = [
            ("copt", &self.copts),
            ("cxxopt", &self.cxxopts),
            ("conlyopt", &self.conlyopts),
            ("linkopt", &self.linkopts),
            ("features", &self.features),
        ];
        flags
            .iter()
            .flat_map(|(flag, values)| values.iter().map(move |v| format!("--{flag}={v}")))
            .chain(
                self.minimum_os_version
                    .iter()
                    .map(|v| format!("--minimum_os_version={v}")),
            )
            .collect()
    }
}

/// Bazel's other configuration fragments: reading one is refused by name.
const UNSUPPORTED_FRAGMENTS: &[&str] = &[
    "android",
    "apple",
    "bazel_android",
    "bazel_py",
    "coverage",
    "j2objc",
    "java",
    "objc",
    "platform",
    "proto",
    "py",
    "swift",
];

/// `ctx.fragments`: `cpp` with the options; Bazel's other fragments refuse to be used.
pub(super) fn alloc_fragments<'v>(heap: Heap<'v>, options: &CppOptions) -> Value<'v> {
    let cpp = heap.alloc(CppFragment {
        options: options.clone(),
    });
    let mut fields = vec![("cpp".to_owned(), cpp)];
    for name in UNSUPPORTED_FRAGMENTS {
        let path = format!("ctx.fragments.{name}");
        fields.push(((*name).to_owned(), heap.alloc(Unsupported::new(path))));
    }
    heap.alloc(AllocStruct(fields))
}

/// `ctx.fragments.cpp`: the options as fields, and Bazel's `minimum_os_version()` method.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
struct CppFragment {
    #[allocative(skip)]
    options: CppOptions,
}

starlark_simple_value!(CppFragment);

impl fmt::Display for CppFragment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<cpp fragment>")
    }
}

const FIELDS: [&str; 4] = ["copts", "cxxopts", "conlyopts", "linkopts"];

#[starlark_value(type = "CppConfiguration")]
impl<'v> StarlarkValue<'v> for CppFragment {
    fn get_methods() -> Option<&'static Methods> {
        Some(CPP_FRAGMENT_METHODS.methods())
    }

    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        let list = |v: &Vec<String>| heap.alloc(AllocList(v.iter().map(String::as_str)));
        match attribute {
            "copts" => Some(list(&self.options.copts)),
            "cxxopts" => Some(list(&self.options.cxxopts)),
            "conlyopts" => Some(list(&self.options.conlyopts)),
            "linkopts" => Some(list(&self.options.linkopts)),
            _ => None,
        }
    }

    fn dir_attr(&self) -> Vec<String> {
        FIELDS.iter().map(|f| (*f).to_owned()).collect()
    }
}

starlark::methods_static!(CPP_FRAGMENT_METHODS = cpp_fragment_methods);

#[starlark_module]
fn cpp_fragment_methods(builder: &mut MethodsBuilder) {
    /// `--minimum_os_version`, or None when it was not given.
    fn minimum_os_version(this: &CppFragment) -> anyhow::Result<NoneOr<String>> {
        Ok(NoneOr::from_option(this.options.minimum_os_version.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_names_every_flag_in_order() {
        let options = CppOptions {
            copts: vec!["-O1".into(), "-g".into()],
            linkopts: vec!["-lz".into()],
            features: vec!["-pic".into()],
            ..CppOptions::default()
        };
        assert_eq!(
            options.identity(),
            [
                "--copt=-O1",
                "--copt=-g",
                "--linkopt=-lz",
                "--features=-pic"
            ]
        );
    }
}

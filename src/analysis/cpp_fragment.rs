//! The C++ options of the command line (`--copt`, `--cxxopt`, `--conlyopt`, `--linkopt`,
//! `--features`) in; `ctx.fragments.cpp` out, which the C++ toolchain rule reads so that
//! every compile and link of the build gets them, as Bazel's cpp configuration fragment.

use starlark::values::list::AllocList;
use starlark::values::structs::AllocStruct;
use starlark::values::{Heap, Value};

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
    let list = |v: &Vec<String>| heap.alloc(AllocList(v.iter().map(String::as_str)));
    let cpp = heap.alloc(AllocStruct([
        ("copts", list(&options.copts)),
        ("cxxopts", list(&options.cxxopts)),
        ("conlyopts", list(&options.conlyopts)),
        ("linkopts", list(&options.linkopts)),
    ]));
    let mut fields = vec![("cpp".to_owned(), cpp)];
    for name in UNSUPPORTED_FRAGMENTS {
        let path = format!("ctx.fragments.{name}");
        fields.push(((*name).to_owned(), heap.alloc(Unsupported::new(path))));
    }
    heap.alloc(AllocStruct(fields))
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

//! The C++ options of the command line (`--copt`, `--cxxopt`, `--conlyopt`, `--linkopt`,
//! `--features`) in; `ctx.fragments.cpp` out, which the C++ toolchain rule reads so that
//! every compile and link of the build gets them, as Bazel's cpp configuration fragment.

use starlark::values::list::AllocList;
use starlark::values::structs::AllocStruct;
use starlark::values::{Heap, Value};

/// The options, each in the order given.
#[derive(Clone, Debug, Default, PartialEq)]
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

/// `ctx.fragments`: `cpp` with the options; the fragments forge has no options for are absent.
pub(super) fn alloc_fragments<'v>(heap: Heap<'v>, options: &CppOptions) -> Value<'v> {
    let list = |v: &Vec<String>| heap.alloc(AllocList(v.iter().map(String::as_str)));
    let cpp = heap.alloc(AllocStruct([
        ("copts", list(&options.copts)),
        ("cxxopts", list(&options.cxxopts)),
        ("conlyopts", list(&options.conlyopts)),
        ("linkopts", list(&options.linkopts)),
    ]));
    heap.alloc(AllocStruct([("cpp", cpp)]))
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

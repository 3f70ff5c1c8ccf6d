//! The built-in rules, written in Starlark (`prelude/*.bzl`) and compiled into the binary.
//! Evaluated once per command, in order, each file seeing the public symbols of the ones
//! before it; every module's public symbols are imported into each BUILD and .bzl module.

use starlark::environment::{FrozenModule, Globals, Module};
use starlark::eval::Evaluator;
use starlark::syntax::AstModule;

use super::context::{EvalContext, FileKind};
use super::dialect;
use crate::core::{Label, PackageId};

/// `(file name, source)` in evaluation order.
const FILES: &[(&str, &str)] = &[
    ("genrule.bzl", include_str!("../../prelude/genrule.bzl")),
    ("config.bzl", include_str!("../../prelude/config.bzl")),
    ("sh.bzl", include_str!("../../prelude/sh.bzl")),
    ("python.bzl", include_str!("../../prelude/python.bzl")),
    (
        "test_suite.bzl",
        include_str!("../../prelude/test_suite.bzl"),
    ),
    ("toolchain.bzl", include_str!("../../prelude/toolchain.bzl")),
    ("cc_common.bzl", include_str!("../../prelude/cc_common.bzl")),
    ("cc.bzl", include_str!("../../prelude/cc.bzl")),
    ("native.bzl", include_str!("../../prelude/native.bzl")),
];

/// The repository name rules defined in the prelude report as their origin.
pub const REPO: &str = "prelude";

/// Evaluates the prelude; an error here is a bug in forge, reported with its Starlark trace.
pub fn load(globals: &Globals) -> starlark::Result<Vec<FrozenModule>> {
    let mut previous: Vec<FrozenModule> = Vec::new();
    for (name, source) in FILES {
        let file = Label {
            repo: REPO.into(),
            package: String::new(),
            name: (*name).into(),
        };
        let ast = AstModule::parse(&file.to_string(), (*source).to_owned(), &dialect::bzl())?;
        let frozen = Module::with_temp_heap(|module| -> starlark::Result<FrozenModule> {
            for prev in &previous {
                module.import_public_symbols(prev);
            }
            let ctx = EvalContext {
                base: PackageId::new(REPO, ""),
                file,
                kind: FileKind::Bzl,
            };
            {
                let mut eval = Evaluator::new(&module);
                eval.extra = Some(&ctx);
                eval.eval_module(ast, globals)?;
            }
            Ok(module.freeze()?)
        })?;
        previous.push(frozen);
    }
    Ok(previous)
}

//! The built-in rules, written in Starlark (`prelude/*.bzl`) and compiled into the binary.
//! Evaluated once per command, in order, each file seeing the public symbols of the ones
//! before it; every module's public symbols are imported into each BUILD and .bzl module.
//! Also embedded: the BUILD files of the built-in `@platforms` repository.

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

/// `@platforms`, served from text compiled into forge: the constraint settings and values
/// that `select()` and `config_setting(constraint_values = ...)` name.
pub const PLATFORMS_REPO: &str = "platforms";

/// `(package, BUILD file source)` of each built-in repository package.
const PLATFORMS_PACKAGES: &[(&str, &str)] = &[
    ("cpu", include_str!("../../prelude/platforms/cpu.BUILD")),
    ("os", include_str!("../../prelude/platforms/os.BUILD")),
];

/// Whether `repo` is one forge provides itself.
pub fn is_builtin_repo(repo: &str) -> bool {
    repo == PLATFORMS_REPO
}

/// The BUILD file text of a package of a built-in repository.
pub fn builtin_build_file(id: &PackageId) -> Option<&'static str> {
    if !is_builtin_repo(&id.repo) {
        return None;
    }
    PLATFORMS_PACKAGES
        .iter()
        .find(|(p, _)| *p == id.package)
        .map(|(_, source)| *source)
}

/// The packages of a built-in repository, sorted.
pub fn builtin_packages(repo: &str) -> Vec<&'static str> {
    if !is_builtin_repo(repo) {
        return Vec::new();
    }
    PLATFORMS_PACKAGES.iter().map(|(p, _)| *p).collect()
}

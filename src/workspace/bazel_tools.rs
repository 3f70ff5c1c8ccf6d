//! `@bazel_tools//tools/build_defs/repo:*.bzl` for WORKSPACE: a label in, the module forge
//! serves for it out — `http.bzl` (`http_archive`, `http_file`, `http_jar`), `local.bzl`
//! (`local_repository`, `new_local_repository`), `git.bzl` (`git_repository`,
//! `new_git_repository`, declared but refused when fetched) and `utils.bzl` (`maybe`, in
//! Starlark: `prelude/workspace/utils.bzl`). BUILD files get their `@bazel_tools` from
//! `loading`; these are only the repository rules' files, which only WORKSPACE uses.

use starlark::environment::{FrozenModule, Globals, Module};
use starlark::eval::Evaluator;
use starlark::syntax::{AstModule, Dialect};

use super::evaluate::WorkspaceContext;
use crate::core::Label;

pub const REPO: &str = "bazel_tools";

const PACKAGE: &str = "tools/build_defs/repo";

const UTILS_BZL: &str = include_str!("../../prelude/workspace/utils.bzl");

/// The repository rules each file exports, taken from the WORKSPACE globals.
const RULE_FILES: &[(&str, &[&str])] = &[
    ("http.bzl", &["http_archive", "http_file", "http_jar"]),
    ("local.bzl", &["local_repository", "new_local_repository"]),
    ("git.bzl", &["git_repository", "new_git_repository"]),
];

/// The module for `label`, an `@bazel_tools` .bzl file WORKSPACE loads.
pub fn module(
    label: &Label,
    globals: &Globals,
    ctx: &WorkspaceContext,
) -> starlark::Result<FrozenModule> {
    let error = |m: String| starlark::Error::new_native(anyhow::anyhow!(m));
    if label.package != PACKAGE {
        return Err(error(unknown(label)));
    }
    if label.name == "utils.bzl" {
        ctx.files
            .borrow_mut()
            .insert(label.to_string(), label.package_id());
        let ast = AstModule::parse(
            "@bazel_tools//tools/build_defs/repo:utils.bzl",
            UTILS_BZL.to_owned(),
            &Dialect::Standard,
        )?;
        return Module::with_temp_heap(|module| -> starlark::Result<_> {
            {
                let mut eval = Evaluator::new(&module);
                eval.extra = Some(ctx);
                eval.eval_module(ast, globals)?;
            }
            Ok(module.freeze()?)
        });
    }
    let Some((_, names)) = RULE_FILES.iter().find(|(file, _)| *file == label.name) else {
        return Err(error(unknown(label)));
    };
    Module::with_temp_heap(|module| {
        for (name, value) in globals.iter() {
            if names.contains(&name) {
                module.set(name, value.to_value());
            }
        }
        Ok(module.freeze()?)
    })
}

fn unknown(label: &Label) -> String {
    format!(
        "forge serves WORKSPACE only @bazel_tools//tools/build_defs/repo:http.bzl, :utils.bzl, \
         :local.bzl and :git.bzl, not '{label}'"
    )
}

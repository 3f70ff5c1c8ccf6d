//! .bzl files: a label in, its frozen module out — parsed in the .bzl dialect, evaluated once
//! per command after its own loads, and shared by every package that loads it.

use std::collections::HashMap;

use starlark::environment::{FrozenModule, Module};
use starlark::eval::{Evaluator, FileLoader};
use starlark::syntax::AstModule;

use super::context::{EvalContext, FileKind};
use super::diagnostics::{starlark_error, unreadable};
use super::{Loader, dialect};
use crate::core::fs::IoContext;
use crate::core::{Diagnostic, Label};
use crate::workspace::fs_deps;

/// What evaluating one .bzl file produced, shared by every package that loads it.
pub(super) type BzlResult = Result<FrozenModule, Diagnostic>;

impl Loader {
    pub(super) fn parse_bzl(&self, label: &Label) -> Result<(AstModule, String), Diagnostic> {
        let display = self.display_path(label);
        let path = self
            .package_dir(&label.package_id())
            .map(|d| d.join(&label.name))
            .filter(|p| p.is_file())
            .ok_or_else(|| {
                Diagnostic::new(format!(
                    "cannot load '{label}': file '{display}' does not exist{}",
                    if self.build_file(&label.package_id()).is_none() {
                        format!(
                            " (and '{}' is not a package: add a BUILD file next to it)",
                            label.package_id()
                        )
                    } else {
                        String::new()
                    }
                ))
            })?;
        let mut reads = fs_deps::FsDeps::default();
        let source = fs_deps::read_to_string_into(&path, &mut reads)
            .at("read", &path)
            .map_err(unreadable)?;
        // The first read is the one evaluation and the load graph saw first.
        self.bzl_reads
            .lock()
            .unwrap()
            .entry(label.clone())
            .or_insert(reads);
        crate::core::nesting::check(&display, &source)?;
        let ast =
            AstModule::parse(&display, source, &dialect::bzl()).map_err(|e| starlark_error(&e))?;
        Ok((ast, display))
    }

    /// Evaluates a .bzl file once per command; later callers get the same frozen module.
    pub(super) fn load_bzl(&self, label: &Label) -> BzlResult {
        let cell = self
            .bzl
            .lock()
            .unwrap()
            .entry(label.clone())
            .or_default()
            .clone();
        cell.get_or_init(|| self.evaluate_bzl(label)).clone()
    }

    fn evaluate_bzl(&self, label: &Label) -> BzlResult {
        let (ast, _) = self.parse_bzl(label)?;
        let (modules, _) = self
            .load_dependencies(&ast, &label.package_id(), std::slice::from_ref(label))
            .map_err(|ds| {
                Diagnostic::new(
                    ds.into_iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join("\n"),
                )
            })?;
        Module::with_temp_heap(|module| -> starlark::Result<FrozenModule> {
            for p in &self.prelude {
                module.import_public_symbols(p);
            }
            let loader = MapLoader(&modules);
            let ctx = EvalContext {
                base: label.package_id(),
                file: label.clone(),
                kind: FileKind::Bzl,
            };
            {
                let mut eval = Evaluator::new(&module);
                eval.set_loader(&loader);
                eval.extra = Some(&ctx);
                eval.eval_module(ast, &self.globals)?;
            }
            Ok(module.freeze()?)
        })
        .map_err(|e| starlark_error(&e))
    }
}

/// Serves `load()` from modules evaluated beforehand.
pub(super) struct MapLoader<'a>(pub(super) &'a HashMap<String, FrozenModule>);

impl FileLoader for MapLoader<'_> {
    fn load(&self, path: &str) -> starlark::Result<FrozenModule> {
        self.0.get(path).cloned().ok_or_else(|| {
            starlark::Error::new_native(anyhow::anyhow!(
                "internal error: '{path}' was not preloaded"
            ))
        })
    }
}

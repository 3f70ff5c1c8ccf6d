//! The Rust state behind one Starlark evaluation: which file is being evaluated and, for a
//! BUILD file, the package being built up by rule calls. Rule and builtin functions find it
//! in `Evaluator::extra`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;

use starlark::any::ProvidesStaticType;
use starlark::eval::Evaluator;

use crate::core::{Label, Location, PackageId};
use crate::loading::target::{AttrValue, Target, Visibility};

/// What kind of file is being evaluated.
#[derive(Debug)]
pub enum FileKind {
    /// A BUILD file: rule calls add targets to the package.
    // Boxed: a package being built is large, and `Bzl` is empty.
    Build(Box<RefCell<PackageBuilder>>),
    /// A .bzl file (or the prelude): rules and macros may be defined, not called.
    Bzl,
}

/// Per-evaluation state, placed in `Evaluator::extra`.
#[derive(Debug, ProvidesStaticType)]
pub struct EvalContext {
    /// Labels resolve against this package (the BUILD file's, or the .bzl file's).
    pub base: PackageId,
    /// The file being evaluated, as a label (`//pkg:BUILD`, `//tools:defs.bzl`).
    pub file: Label,
    pub kind: FileKind,
}

impl EvalContext {
    pub fn from_eval<'a>(eval: &'a Evaluator<'_, '_, '_>) -> anyhow::Result<&'a EvalContext> {
        eval.extra
            .and_then(|e| e.downcast_ref::<EvalContext>())
            .ok_or_else(|| anyhow::anyhow!("internal error: no forge evaluation context"))
    }

    /// The package under construction, or an error naming `what` for use outside BUILD files.
    pub fn package(&self, what: &str) -> anyhow::Result<&RefCell<PackageBuilder>> {
        match &self.kind {
            FileKind::Build(p) => Ok(p),
            FileKind::Bzl => Err(anyhow::anyhow!(
                "{what} can only be used while evaluating a BUILD file (a macro called from a \
                 BUILD file may call it; the top level of a .bzl file may not)"
            )),
        }
    }
}

/// A package while its BUILD file runs.
#[derive(Debug)]
pub struct PackageBuilder {
    pub id: PackageId,
    pub dir: PathBuf,
    pub targets: BTreeMap<String, Target>,
    pub default_visibility: Option<Visibility>,
    pub features: Vec<String>,
    /// Whether `package()` has been called (it may be called once, before any rule).
    pub package_called: bool,
    /// Same-package labels referenced by rules, which become source-file targets if no
    /// rule declares them.
    pub referenced: Vec<(Label, Location)>,
    /// `package(default_testonly = ..., default_deprecation = ...)`: attribute values for
    /// the package's rules that do not set them.
    pub attr_defaults: Box<[(String, AttrValue)]>,
    /// What evaluating the BUILD file read (the file itself, the directories its globs
    /// listed), kept with the package in the package store.
    pub reads: crate::workspace::fs_deps::FsDeps,
}

impl PackageBuilder {
    /// Adds a target, refusing a second target with the same name.
    pub fn add(&mut self, target: Target) -> anyhow::Result<()> {
        if let Some(existing) = self.targets.get(&target.label.name) {
            anyhow::bail!(
                "{} '{}' in package '{}' conflicts with existing {}, defined at {}",
                target.kind_name(),
                target.label.name,
                self.id.package,
                existing.kind_name(),
                existing.location
            );
        }
        self.targets.insert(target.label.name.clone(), target);
        Ok(())
    }
}

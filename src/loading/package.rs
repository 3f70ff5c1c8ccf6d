//! One package: a BUILD file in, a plain `Package` of `Target`s out (or the complete
//! diagnostics of why it did not load).

use std::cell::RefCell;
use std::collections::BTreeMap;

use starlark::environment::Module;
use starlark::eval::Evaluator;
use starlark::syntax::AstModule;

use super::bzl::MapLoader;
use super::context::{EvalContext, FileKind, PackageBuilder};
use super::diagnostics::{fetch_failed, location_of, starlark_error, unreadable};
use super::package_store::drop_attributes;
use super::target::{Package, Target, TargetKind};
use super::{BUILD_FILE_NAMES, Loader, PackageError, dialect};
use crate::core::fs::IoContext;
use crate::core::{Diagnostic, Label, Location, PackageId};
use crate::workspace::fs_deps::{self, FsDeps};

impl Loader {
    /// Loads one package: from the package store when what it read last time is unchanged,
    /// otherwise by evaluating its BUILD file (and storing the result). The errors are
    /// complete messages, ready to print.
    pub fn load_package(&self, id: &PackageId) -> Result<Package, PackageError> {
        self.load_package_keeping(id, true)
    }

    /// As `load_package`, with every rule's attributes left out (its name, kind, location
    /// and visibility kept): for a question about the target set alone. A stored package is
    /// then read without decoding its attributes; an evaluated one is stored whole.
    pub fn load_package_without_attributes(&self, id: &PackageId) -> Result<Package, PackageError> {
        self.load_package_keeping(id, false)
    }

    fn load_package_keeping(
        &self,
        id: &PackageId,
        attributes: bool,
    ) -> Result<Package, PackageError> {
        if let Some(source) = self.bound_package_source(id) {
            // bind()'s //external package: made from WORKSPACE, no files of its own; cheap
            // to make, so never stored.
            let build_label = id.label(BUILD_FILE_NAMES[0]);
            let dir = self.workspace.root.join("external");
            // WORKSPACE alone decides it, and the store's salt covers WORKSPACE.
            self.note_package_inputs(id, crate::core::Digest::of_bytes(b"bind"));
            let (mut package, _) =
                self.evaluate_package(id, build_label, source, dir, FsDeps::default())?;
            if !attributes {
                drop_attributes(&mut package);
            }
            return Ok(package);
        }
        // Finding the BUILD file also fetches an external repository (or checks its marker),
        // so a stored package of one is only reused once its files are as WORKSPACE says.
        let Some((build_label, path)) = self.build_file(id) else {
            let hint = if self.is_builtin_repo(&id.repo) {
                ""
            } else {
                ". Add a BUILD file to a directory to mark it as a package"
            };
            let message = format!(
                "no such package '{id}': BUILD file not found in {}{hint}",
                self.display_dir(id)
            );
            return Err(PackageError::NoSuchPackage(
                match self.fetch_error(&id.repo) {
                    Some(fetch_error) => fetch_failed(&fetch_error, message),
                    None => Diagnostic::new(message),
                },
            ));
        };
        if let Some(store) = &self.package_store
            && let Some((mut package, reads)) = match attributes {
                true => store.load(id),
                false => store.load_without_attributes(id),
            }
            && package.build_file == build_label
        {
            package.share_attributes();
            fs_deps::note_all(&reads);
            self.note_package_inputs(id, reads.files_digest_except(&path));
            return Ok(package);
        }
        let dir = self
            .package_dir(id)
            .expect("a package with a BUILD file has a directory");
        let mut reads = FsDeps::default();
        // The BUILD file a package has depends on the preferred names being absent.
        for name in BUILD_FILE_NAMES
            .iter()
            .take_while(|name| **name != build_label.name)
        {
            fs_deps::missing_into(&dir.join(name), &mut reads);
        }
        let source = fs_deps::read_to_string_into(&path, &mut reads)
            .at("read", &path)
            .map_err(|e| failed(id, vec![unreadable(e)]))?;
        let (mut package, reads) = self.evaluate_package(id, build_label, source, dir, reads)?;
        if let Some(reads) = &reads {
            self.note_package_inputs(id, reads.files_digest_except(&path));
        }
        if let Some(store) = &self.package_store
            && let Some(reads) = reads
        {
            // A package that cannot be stored only costs the next command its evaluation.
            let _ = store.store(id, &reads, &mut package);
        }
        if !attributes {
            drop_attributes(&mut package);
        }
        Ok(package)
    }

    /// Evaluates a BUILD file's `source`: the package, and everything its loading read
    /// (`reads`, the BUILD file's own read, plus its globs' listings and its .bzl files) when
    /// that account is complete.
    fn evaluate_package(
        &self,
        id: &PackageId,
        build_label: Label,
        source: String,
        dir: std::path::PathBuf,
        reads: FsDeps,
    ) -> Result<(Package, Option<FsDeps>), PackageError> {
        self.packages_evaluated
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let failed = |errors| failed(id, errors);
        let display = self.display_path(&build_label);
        crate::core::nesting::check(&display, &source).map_err(|d| failed(vec![d]))?;
        let ast = AstModule::parse(&display, source, &dialect::build())
            .map_err(|e| failed(vec![starlark_error(&e)]))?;
        if let Some((span, kind)) = dialect::find_star_argument(&ast) {
            let loc = location_of(&span);
            return Err(failed(vec![Diagnostic::at(
                &loc,
                format!(
                    "{kind} is not allowed in BUILD files: list the arguments explicitly, or move this call into a macro in a .bzl file"
                ),
            )]));
        }
        let (modules, bzl_files) = self.load_dependencies(&ast, id, &[]).map_err(failed)?;

        let builder = Module::with_temp_heap(|module| -> Result<PackageBuilder, starlark::Error> {
            for p in &self.prelude {
                module.import_public_symbols(p);
            }
            let loader = MapLoader(&modules);
            let ctx = EvalContext {
                base: id.clone(),
                file: build_label.clone(),
                kind: FileKind::Build(Box::new(RefCell::new(PackageBuilder {
                    id: id.clone(),
                    dir: dir.clone(),
                    targets: BTreeMap::new(),
                    default_visibility: None,
                    features: Vec::new(),
                    package_called: false,
                    referenced: Vec::new(),
                    attr_defaults: Box::default(),
                    reads,
                }))),
            };
            {
                let mut eval = Evaluator::new(&module);
                eval.set_loader(&loader);
                eval.extra = Some(&ctx);
                eval.eval_module(ast, &self.globals)?;
            }
            match ctx.kind {
                FileKind::Build(b) => Ok(b.into_inner()),
                FileKind::Bzl => unreachable!("a BUILD file evaluates with a package"),
            }
        })
        .map_err(|e| failed(vec![starlark_error(&e)]))?;
        let mut builder = builder;
        let mut reads = std::mem::take(&mut builder.reads);
        let complete = {
            let bzl_reads = self.bzl_reads.lock().unwrap();
            bzl_files.iter().all(|bzl| match bzl_reads.get(bzl) {
                Some(bzl_read) => {
                    reads.merge(bzl_read);
                    true
                }
                None => false,
            })
        };
        let package = finish_package(builder, build_label, bzl_files);
        Ok((package, complete.then_some(reads)))
    }
}

/// The error of a package whose BUILD file (or a .bzl file it loads) has `errors`.
fn failed(id: &PackageId, mut errors: Vec<Diagnostic>) -> PackageError {
    errors.push(Diagnostic::new(format!(
        "error loading package '{id}': the BUILD file has errors (see above)"
    )));
    PackageError::Failed(errors)
}

/// Adds source-file targets for same-package labels no rule declared (Bazel does the same).
fn finish_package(mut b: PackageBuilder, build_file: Label, bzl_files: Vec<Label>) -> Package {
    b.referenced.push((
        build_file.clone(),
        Location {
            file: String::new(),
            line: 0,
            column: 0,
        },
    ));
    for (label, location) in std::mem::take(&mut b.referenced) {
        b.targets
            .entry(label.name.clone())
            .or_insert_with(|| Target {
                label: label.clone(),
                kind: TargetKind::SourceFile,
                location,
                // Files nobody exported keep Bazel 4's legacy default: visible to all.
                visibility: vec![Label {
                    repo: String::new(),
                    package: "visibility".into(),
                    name: "public".into(),
                }],
            });
    }
    Package {
        id: b.id,
        dir: b.dir,
        build_file,
        bzl_files,
        targets: b.targets,
        default_visibility: b.default_visibility.unwrap_or_default(),
        features: b.features,
    }
}

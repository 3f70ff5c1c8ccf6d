//! The real `QueryEnv`: a `TargetGraph` (and the loader behind it) in, the query language's
//! view of it out — patterns expanded relative to a package, closures loaded on demand.

use std::collections::BTreeSet;

use super::QueryEnv;
use crate::core::{Diagnostic, Label, PackageId};
use crate::graph::{TargetGraph, TargetPatternArg};
use crate::loading::Target;

/// The graph seen through the query language's small interface.
pub struct GraphEnv<'g, 'l> {
    pub graph: &'g mut TargetGraph<'l>,
    /// The package relative patterns (`:name`, `...`) are read against.
    pub cwd: PackageId,
}

impl QueryEnv for GraphEnv<'_, '_> {
    fn expand_pattern(&mut self, pattern: &str) -> Result<BTreeSet<Label>, Diagnostic> {
        let arg = TargetPatternArg::parse(pattern, &self.cwd)?;
        self.graph.expand(&arg.pattern)
    }

    fn load_closure(&mut self, roots: &BTreeSet<Label>) -> BTreeSet<Label> {
        self.graph.load_closure(roots)
    }

    fn target(&self, label: &Label) -> Option<&Target> {
        self.graph.target(label)
    }

    fn deps(&self, label: &Label) -> Vec<(String, Label)> {
        self.graph
            .deps(label)
            .into_iter()
            .map(|(a, l)| (a.to_owned(), l.clone()))
            .collect()
    }

    fn visible(&mut self, target: &Label, from: &Label) -> bool {
        self.graph.is_visible_from(target, &from.package_id())
    }

    fn package_dir(&self, label: &Label) -> Option<std::path::PathBuf> {
        self.graph
            .package(&label.package_id())
            .map(|p| p.dir.clone())
    }

    fn build_files(&self, label: &Label) -> Vec<Label> {
        match self.graph.package(&label.package_id()) {
            Some(pkg) => std::iter::once(pkg.build_file.clone())
                .chain(pkg.bzl_files.iter().cloned())
                .collect(),
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::loading::Loader;
    use crate::workspace::{OutputBaseOptions, Workspace};

    fn names(labels: &BTreeSet<Label>) -> Vec<String> {
        labels.iter().map(Label::to_string).collect()
    }

    #[test]
    fn evaluates_queries_over_a_loaded_graph() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("ws");
        std::fs::create_dir_all(root.join("app")).unwrap();
        std::fs::create_dir_all(root.join("lib")).unwrap();
        std::fs::write(root.join("WORKSPACE"), "workspace(name = \"w\")\n").unwrap();
        std::fs::write(
            root.join("app/BUILD"),
            "genrule(name = \"main\", srcs = [\"//lib:util\"], outs = [\"m\"], cmd = \"x\")\n",
        )
        .unwrap();
        std::fs::write(
            root.join("lib/BUILD"),
            "genrule(name = \"util\", outs = [\"u\"], cmd = \"x\", visibility = [\"//visibility:public\"])\n",
        )
        .unwrap();
        let options = OutputBaseOptions {
            output_base: Some(dir.path().join("out")),
            output_user_root: None,
        };
        let workspace = Arc::new(Workspace::discover(&root, &options).expect("workspace"));
        let loader = Loader::new(workspace).expect("loader");
        let mut graph = TargetGraph::new(&loader);
        let mut env = GraphEnv {
            graph: &mut graph,
            cwd: PackageId::default(),
        };
        let expr = crate::query::parse("deps(//app:main)").expect("parses");
        let evaluation = crate::query::evaluate(&expr, &mut env, false);
        assert!(evaluation.errors.is_empty(), "{:?}", evaluation.errors);
        assert_eq!(names(&evaluation.labels), ["//app:main", "//lib:util"]);

        let main = Label::parse("//app:main", &PackageId::default()).expect("label");
        assert_eq!(
            env.deps(&main)
                .into_iter()
                .map(|(_, l)| l.to_string())
                .collect::<Vec<_>>(),
            ["//lib:util"]
        );
        assert_eq!(
            env.build_files(&main)
                .iter()
                .map(Label::to_string)
                .collect::<Vec<_>>(),
            ["//app:BUILD"]
        );
        assert!(env.expand_pattern("//nowhere:x").is_err());
    }
}

//! Bazel's query language: query text in (`parse`), a set of labels out (`evaluate`), printed in
//! one of Bazel's `--output` formats (`print`).
//!
//! The evaluator reaches loaded packages only through the small `QueryEnv` trait, so it can be
//! tested against an in-memory graph and driven by the real loader (`GraphEnv`, over a
//! `TargetGraph`) in `forge query` and `forge test`.

use std::collections::BTreeSet;

use crate::core::{Diagnostic, Label};
use crate::loading::Target;

mod eval;
mod graph_env;
mod implicit;
mod lexer;
mod needs;
mod order;
mod output;
mod parser;
mod structured;

#[cfg(test)]
mod fake;

pub use eval::{Evaluation, evaluate, evaluate_in};
pub use graph_env::GraphEnv;
pub use implicit::NoImplicitDeps;
pub use needs::answered_by_target_set;
pub use order::{OrderOutput, order};
pub use output::{OutputFormat, print};
pub use parser::{Expr, SetOp, parse};

/// What the evaluator needs from the loading phase.
pub trait QueryEnv {
    /// Targets named by a target pattern word (loads packages as needed). `Err` means the
    /// pattern is malformed or names nothing; with `keep_going` the evaluator records the error
    /// and continues with the empty set.
    fn expand_pattern(&mut self, pattern: &str) -> Result<BTreeSet<Label>, Diagnostic>;

    /// Loads everything reachable from `roots` via dependency edges; returns the reachable
    /// labels (roots included). Errors met are recorded by the env itself.
    fn load_closure(&mut self, roots: &BTreeSet<Label>) -> BTreeSet<Label>;

    /// A loaded target.
    fn target(&self, label: &Label) -> Option<&Target>;

    /// Resolved dependency edges of a loaded target: (attribute name, dependency), only deps
    /// that exist.
    fn deps(&self, label: &Label) -> Vec<(String, Label)>;

    /// The BUILD file and every .bzl file loaded by the package of `label`, as labels
    /// (e.g. `//pkg:BUILD`, `//tools:defs.bzl`).
    fn build_files(&self, label: &Label) -> Vec<Label>;

    /// Whether targets in the package of `from` may depend on the loaded `target`. By
    /// default: the same package, or a `//visibility:public` target.
    fn visible(&mut self, target: &Label, from: &Label) -> bool {
        target.package_id() == from.package_id()
            || self.target(target).is_some_and(|t| {
                t.visibility
                    .iter()
                    .any(|v| v.package == "visibility" && v.name == "public")
            })
    }

    /// The absolute directory of the package of a loaded label, for locations on disk.
    fn package_dir(&self, _label: &Label) -> Option<std::path::PathBuf> {
        None
    }
}

/// Bazel's kind string for `label`. Labels the env knows only by name (BUILD and .bzl files
/// from `buildfiles()`) are files in the source tree, as Bazel reports them.
fn kind_of(env: &dyn QueryEnv, label: &Label) -> String {
    env.target(label)
        .map_or_else(|| "source file".to_owned(), Target::kind_name)
}

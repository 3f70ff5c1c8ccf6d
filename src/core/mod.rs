//! Vocabulary shared by every phase: labels and patterns, locations and diagnostics.
//! No I/O and no Starlark here.

pub mod diag;
pub mod label;

pub use diag::{Diagnostic, ExitCode, Failure, Location};
pub use label::{Label, LabelError, PackageId, TargetPattern};

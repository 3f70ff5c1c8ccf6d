//! Vocabulary shared by every phase: labels and patterns, locations and diagnostics.
//! No I/O and no Starlark here.

pub mod diag;
pub mod digest;
pub mod label;
pub mod layout;
pub mod nesting;

pub use diag::{Diagnostic, ExitCode, Failure, Location};
pub use digest::Digest;
pub use label::{Label, LabelError, PackageId, TargetPattern};

//! Vocabulary shared by every phase: labels and patterns, locations and diagnostics, and the
//! plain data that crosses phases (actions, runfiles trees, exec paths, test specs). No
//! Starlark here; the only I/O is `fs`, the filesystem helpers every phase uses, and the
//! stores built on it (`sealed` files, `pack`ed stores).

pub mod action;
pub mod command_line;
pub mod diag;
pub mod digest;
pub mod exec_path;
pub mod fs;
pub mod input_set;
pub mod label;
pub mod layout;
pub mod nesting;
pub mod pack;
pub mod paint;
pub mod sealed;
pub mod sorted_map;
pub mod test_spec;

pub use action::{Action, ActionKind, EXEC_PROPERTY_PREFIX, InputDiscovery, RunfilesTree};
pub use diag::{Diagnostic, DiagnosticKind, ExitCode, Failure, Location};
pub use digest::Digest;
pub use exec_path::ExecPath;
pub use input_set::{InputSet, Inputs};
pub use label::{Label, LabelError, PackageId, TargetPattern};
pub use test_spec::TestSpec;

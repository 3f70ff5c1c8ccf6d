//! Forge: a hermetic, content-addressed build tool with a Bazel-like command line.
//!
//! The modules follow the pipeline one command flows through; data only flows down:
//!
//! ```text
//! cli        flags and commands (clap)                      -> one command run
//! workspace  WORKSPACE root, name, repositories, output base -> Workspace
//! fetch      external repositories, on demand               -> directories under external/
//! loading    BUILD / .bzl evaluated with Starlark           -> Packages of plain Targets
//! graph      patterns, label resolution, visibility, cycles -> TargetGraph
//! query      the Bazel query language over the graph        -> sets of labels, printed
//! analysis   rule implementations run over the graph        -> Actions, providers, runfiles
//! exec       actions run in parallel, cached by content     -> outputs on disk
//! outputs    exec root, runfiles trees, convenience links   -> the tree users see
//! testing    tests run with Bazel's contract, results cached -> logs, XML, the summary
//! remote     the shared cache (Bazel HTTP cache, REAPI gRPC) -> results from other machines
//! ```
//!
//! `core` holds the vocabulary every phase shares (labels, patterns, diagnostics).

pub mod analysis;
pub mod cli;
pub mod core;
pub mod exec;
pub mod fetch;
pub mod graph;
pub mod loading;
pub mod outputs;
pub mod query;
pub mod remote;
pub mod testing;
pub mod workspace;

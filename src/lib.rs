//! Forge: a hermetic, content-addressed build tool with a Bazel-like command line.
//!
//! The modules follow the pipeline one command flows through. `cli` and `ops` are the front
//! end and sit on top: `cli` calls `ops`, and `ops` uses the phases below it. From `workspace`
//! down, a module uses only the modules above it in this list (never `cli` or `ops`), and
//! `core`:
//!
//! ```text
//! cli        flags and commands (clap), printing; calls ops -> one command run
//! ops        what a command does, for any front end          -> plans, results, summaries
//! workspace  WORKSPACE root, name, repositories, output base -> Workspace
//! fetch      external repositories, on demand               -> directories under external/
//! loading    BUILD / .bzl evaluated with Starlark           -> Packages of plain Targets
//! graph      patterns, label resolution, visibility, cycles -> TargetGraph
//! query      the Bazel query language over the graph        -> sets of labels, printed
//! analysis   rule implementations run over the graph        -> Actions, providers, runfiles
//! remote     the shared cache (Bazel HTTP cache, REAPI gRPC) -> results from other machines
//! exec       actions run in parallel, cached by content     -> outputs on disk, why each ran
//! outputs    exec root, runfiles trees, convenience links   -> the tree users see
//! testing    tests run with Bazel's contract, results cached -> logs, XML, the summary
//! ```
//!
//! `core` holds the vocabulary every phase shares (labels, patterns, diagnostics), the plain
//! data that crosses phases (`Action`, `RunfilesTree`, `ExecPath`, `TestSpec`) and the
//! filesystem helpers (`core::fs`).

pub mod analysis;
pub mod cli;
pub mod core;
pub mod exec;
pub mod fetch;
pub mod graph;
pub mod loading;
pub mod ops;
pub mod outputs;
pub mod query;
pub mod remote;
pub mod testing;
pub mod workspace;

//! The platforms and toolchains of a build: `--platforms`, `--host_platform`,
//! `--extra_toolchains`, `--extra_execution_platforms` and WORKSPACE's `register_toolchains` / `register_execution_platforms`
//! in; their targets loaded into the graph and read as an `analysis::PlatformConfig` out.

use crate::analysis::platforms::{self, Platform, PlatformConfig};
use crate::analysis::toolchains;
use crate::core::{Diagnostic, Label, PackageId, TargetPattern};
use crate::graph::TargetGraph;
use crate::workspace::Workspace;

/// The platform and toolchain flags as given on the command line.
#[derive(Clone, Debug, Default)]
pub struct PlatformFlags {
    /// `--platforms`: the last occurrence, split at commas.
    pub platforms: Vec<String>,
    /// `--host_platform`.
    pub host_platform: Option<String>,
    /// `--extra_toolchains`, every occurrence in order, split at commas.
    pub extra_toolchains: Vec<String>,
    /// `--extra_execution_platforms`, likewise.
    pub extra_execution_platforms: Vec<String>,
}

impl PlatformFlags {
    /// What the plan cache must tell apart.
    pub fn identity(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .platforms
            .iter()
            .map(|p| format!("--platforms={p}"))
            .collect();
        out.extend(
            self.host_platform
                .iter()
                .map(|h| format!("--host_platform={h}")),
        );
        out.extend(
            self.extra_toolchains
                .iter()
                .map(|t| format!("--extra_toolchains={t}")),
        );
        out.extend(
            self.extra_execution_platforms
                .iter()
                .map(|p| format!("--extra_execution_platforms={p}")),
        );
        out
    }
}

/// A platform named by a flag, read against the main repository's root.
fn flag_label(flag: &str, text: &str) -> Result<Label, Diagnostic> {
    Label::parse(text, &PackageId::default()).map_err(|e| {
        Diagnostic::new(format!(
            "While parsing option --{flag}={text}: invalid label: {e}"
        ))
    })
}

/// The targets of `patterns` that are rules of class `class` (`toolchain`, `platform`): a
/// wildcard keeps only those, a single label must be one, as in Bazel.
fn expand_registrations(
    graph: &mut TargetGraph,
    patterns: &[(String, &str)],
    class: &str,
) -> Result<Vec<Label>, Vec<Diagnostic>> {
    let mut out: Vec<Label> = Vec::new();
    let mut errors = Vec::new();
    for (text, origin) in patterns {
        let pattern = match TargetPattern::parse(text, &PackageId::default()) {
            Ok(p) => p,
            Err(e) => {
                errors.push(Diagnostic::new(format!(
                    "invalid {class} pattern '{text}' ({origin}): {e}"
                )));
                continue;
            }
        };
        let labels = match graph.expand(&pattern) {
            Ok(l) => l,
            Err(d) => {
                errors.push(Diagnostic::new(format!(
                    "invalid {class} pattern '{text}' ({origin}): {}",
                    d.message
                )));
                continue;
            }
        };
        let wildcard = !matches!(pattern, TargetPattern::Single(_));
        for label in labels {
            let is_class = graph
                .target(&label)
                .and_then(|t| t.rule())
                .is_some_and(|r| r.class == class && r.defined_in.starts_with("@prelude//"));
            if wildcard && !is_class {
                continue;
            }
            if !out.contains(&label) {
                out.push(label);
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The toolchains Bazel registers after the workspace's own: `(toolchain type, toolchain)`.
const DEFAULT_TOOLCHAINS: &[(&str, &str)] = &[
    (
        "@bazel_tools//tools/sh:toolchain_type",
        "@local_config_sh//:local_sh_toolchain",
    ),
    (
        "@bazel_tools//tools/cpp:toolchain_type",
        "@bazel_tools//tools/cpp:cc-toolchain-host",
    ),
];

/// The toolchain types the rules of the loaded targets request.
fn requested_types(graph: &TargetGraph) -> std::collections::BTreeSet<Label> {
    use starlark::values::ValueLike;
    let mut rules: std::collections::BTreeSet<(&str, &str)> = std::collections::BTreeSet::new();
    for target in graph.targets() {
        if let Some(rule) = target.rule() {
            rules.insert((&rule.defined_in, &rule.class));
        }
    }
    let mut types = std::collections::BTreeSet::new();
    for (defined_in, class) in rules {
        let Ok(callable) = graph.loader().rule_callable(defined_in, class) else {
            continue;
        };
        if let Some(rule) = callable
            .value()
            .downcast_ref::<crate::loading::FrozenRuleCallable>()
        {
            types.extend(
                rule.decl
                    .toolchains
                    .iter()
                    .map(|r| r.toolchain_type.clone()),
            );
        }
    }
    types
}

/// Loads and reads the build's platforms and toolchains.
pub fn platform_config(
    graph: &mut TargetGraph,
    workspace: &Workspace,
    flags: &PlatformFlags,
) -> Result<PlatformConfig, Vec<Diagnostic>> {
    // Without --host_platform the host is this machine, read without loading
    // @local_config_platform (what its BUILD file says, from the same facts), so that a
    // build that names no platform loads no platform package.
    let host = match &flags.host_platform {
        Some(h) => Some(flag_label("host_platform", h).map_err(|d| vec![d])?),
        None => None,
    };
    // Bazel 4 builds for the first of --platforms; by default, for the host.
    let target = match flags.platforms.first() {
        Some(p) => Some(flag_label("platforms", p).map_err(|d| vec![d])?),
        None => host.clone(),
    };
    let toolchain_patterns: Vec<(String, &str)> = flags
        .extra_toolchains
        .iter()
        .map(|t| (t.clone(), "--extra_toolchains"))
        .chain(
            workspace
                .toolchains
                .iter()
                .map(|t| (t.clone(), "register_toolchains in WORKSPACE")),
        )
        .collect();
    let mut toolchain_labels = expand_registrations(graph, &toolchain_patterns, "toolchain")?;
    // Bazel's default toolchains come after the workspace's; forge loads one only when a
    // loaded rule asks for its type, so a build that needs none loads no package for them.
    let requested = requested_types(graph);
    for (toolchain_type, default) in DEFAULT_TOOLCHAINS {
        let toolchain_type =
            Label::parse(toolchain_type, &PackageId::default()).expect("forge's own labels parse");
        let default =
            Label::parse(default, &PackageId::default()).expect("forge's own labels parse");
        if requested.contains(&toolchain_type) && !toolchain_labels.contains(&default) {
            toolchain_labels.push(default);
        }
    }
    let exec_patterns: Vec<(String, &str)> = flags
        .extra_execution_platforms
        .iter()
        .map(|p| (p.clone(), "--extra_execution_platforms"))
        .chain(
            workspace
                .execution_platforms
                .iter()
                .map(|p| (p.clone(), "register_execution_platforms in WORKSPACE")),
        )
        .collect();
    let mut exec_labels = expand_registrations(graph, &exec_patterns, "platform")?;
    // The host platform is the last execution platform tried, as in Bazel.
    if let Some(host) = &host
        && !exec_labels.contains(host)
    {
        exec_labels.push(host.clone());
    }
    let mut wanted: std::collections::BTreeSet<Label> = toolchain_labels.iter().cloned().collect();
    wanted.extend(exec_labels.iter().cloned());
    wanted.extend(target.iter().cloned());
    if !wanted.is_empty() {
        graph.load_closure(&wanted);
    }

    let mut errors = Vec::new();
    let mut read_platform = |label: &Label, what: &str| -> Option<Platform> {
        if graph.target(label).is_none() {
            errors.push(Diagnostic::new(format!(
                "no such target '{label}', named as {what}"
            )));
            return None;
        }
        platforms::platform(graph, label)
            .map_err(|e| errors.push(Diagnostic::new(format!("{what} '{label}': {e}"))))
            .ok()
    };
    let target_platform = target
        .as_ref()
        .and_then(|t| read_platform(t, "the target platform (--platforms)"));
    let mut exec: Vec<Platform> = exec_labels
        .iter()
        .filter_map(|l| read_platform(l, "an execution platform"))
        .collect();
    if host.is_none()
        && !exec
            .iter()
            .any(|p| p.label == platforms::host_platform_label())
    {
        exec.push(platforms::machine_platform());
    }
    let mut registered = Vec::new();
    for label in &toolchain_labels {
        match toolchains::registered(graph, label) {
            Ok(r) => registered.push(r),
            Err(e) => errors.push(Diagnostic::new(e.to_string())),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(PlatformConfig {
        target: target_platform,
        exec,
        toolchains: registered,
    })
}

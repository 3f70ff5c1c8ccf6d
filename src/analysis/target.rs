//! One rule target: its configured attributes and its analysed dependencies in, an
//! `Analyzed` (actions, providers, runfiles, executable) out.
//!
//! `analyze_target` is the sequence of steps; each step lives with its concept (`attrs`,
//! `ctx`, `providers`, `runfiles`, `actions`) and reports a `TargetError`, which becomes one
//! diagnostic at the target's BUILD line.

use std::cell::RefCell;
use std::collections::HashMap;

use starlark::environment::Module;
use starlark::eval::Evaluator;
use starlark::values::{FreezeError, Value, ValueLike};
use thiserror::Error;

use super::actions::{ActionsState, ActionsValue};
use super::aspects::AspectEnv;
use super::attrs::{AttrError, attr_values};
use super::configured::SelectError;
use super::configured_graph::Node;
use super::ctx::{CtxEnv, CtxValue, alloc_ctx};
use super::providers::{ProviderError, complete_default_info, providers_of};
use super::runfiles::runfiles_tree;
use super::toolchain_context::{TOOLCHAIN_INFO_ID, ToolchainContextValue};
use super::toolchains::Resolved;
use super::values::{FileValue, TargetInfo, TargetInfoGen};
use super::{Analyzed, ConfiguredLabel, plan, short_from_exec};
use crate::core::{Diagnostic, Label, PackageId};
use crate::graph::TargetGraph;
use crate::loading::{AttrValue, EvalContext, FileKind, FrozenRuleCallable, RuleTarget, Target};

/// Why a rule target could not be analysed. Printed after `in <kind> <label>: `, at the
/// target's BUILD line.
#[derive(Debug, Error)]
pub(super) enum TargetError {
    #[error(transparent)]
    Select(#[from] SelectError),
    /// The configured graph could not resolve the target's attributes or transitions: its
    /// own diagnostic, already worded for the target.
    #[error("{}", .0.message)]
    Configuration(Box<Diagnostic>),
    /// The loader could not find the rule's callable; its own message, location included.
    #[error("{0}")]
    RuleNotFound(Box<Diagnostic>),
    #[error("'{0}' is not a rule")]
    NotARule(String),
    /// `args` or `env` could not be expanded.
    #[error("{0}")]
    Args(anyhow::Error),
    #[error(
        "forge cannot analyse a target of rule '{rule}', declared with {}",
        options.join(", ")
    )]
    UnsupportedRule { rule: String, options: Vec<String> },
    #[error(transparent)]
    Attr(#[from] AttrError),
    /// The implementation failed: the Starlark error with its traceback, on its own lines.
    #[error("\n{}", render(.0))]
    Implementation(starlark::Error),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(
        "an analysis test (rule(analysis_test = True)) must return AnalysisTestResultInfo \
         from its implementation"
    )]
    NoAnalysisTestResult,
    #[error("AnalysisTestResultInfo: '{0}'")]
    AnalysisTestResult(String),
    #[error("while resolving toolchains: {0}")]
    Toolchains(#[from] super::toolchains::ResolutionError),
    /// `(implementation, toolchain type)`; boxed, as two labels make the error large.
    #[error(
        "toolchain '{}', chosen for type '{}', does not provide platform_common.ToolchainInfo",
        .0.0, .0.1
    )]
    NotAToolchain(Box<(Label, Label)>),
    #[error(
        "the file '{}' is declared but no action creates it; \
         create it with ctx.actions (write, run, run_shell, symlink, ...)",
        short_from_exec(.0)
    )]
    NotCreated(String),
    #[error(
        "a provider holds a value that cannot outlive analysis (such as ctx or an Args object): {0:?}"
    )]
    Unfreezable(FreezeError),
    /// A state analysis should never reach: a bug in forge, not in the rule.
    #[error("{0}")]
    Internal(String),
}

impl TargetError {
    fn into_diagnostic(self, target: &Target) -> Diagnostic {
        if let TargetError::Configuration(d) = self {
            return *d;
        }
        let message = match &self {
            TargetError::Attr(e) if e.bazel_attribute().is_some() => format!(
                "in {} attribute of {} {}: {self}",
                e.bazel_attribute().unwrap_or_default(),
                target.kind_name(),
                target.label
            ),
            _ => format!("in {} {}: {self}", target.kind_name(), target.label),
        };
        match self {
            TargetError::Internal(_) => Diagnostic {
                location: Some(target.location.clone()),
                ..Diagnostic::internal(message)
            },
            _ => Diagnostic::at(&target.location, message),
        }
    }
}

/// Analyses one configured rule target (`key`, its attributes and edges in `node`) whose
/// dependencies are all in `done`.
pub(super) fn analyze_target(
    graph: &TargetGraph,
    target: &Target,
    key: &ConfiguredLabel,
    node: &Node,
    aspects: &AspectEnv,
) -> Result<Analyzed, Diagnostic> {
    analyze_rule(graph, target, key, node, aspects).map_err(|e| e.into_diagnostic(target))
}

/// `analyze_target`'s steps, with the error of each step kept typed until it is reported.
fn analyze_rule(
    graph: &TargetGraph,
    target: &Target,
    key: &ConfiguredLabel,
    node: &Node,
    aspects: &AspectEnv,
) -> Result<Analyzed, TargetError> {
    let done = aspects.done;
    let toolchains = match node.toolchains.as_deref() {
        Some(Err(e)) => return Err(e.clone().into()),
        Some(Ok(r)) => Some(r),
        None => None,
    };
    let label = &target.label;
    let loader = graph.loader();
    // The attributes as this configuration sees them: each select() resolved.
    let loaded = target.rule().expect("only rules are analysed");
    let rule: &RuleTarget = node
        .configured(loaded)
        .map_err(|d| TargetError::Configuration(Box::new(d.clone())))?;
    let configuration = &key.config;
    let callable = loader
        .rule_callable(&rule.defined_in, &rule.class)
        .map_err(|d| TargetError::RuleNotFound(Box::new(d)))?;
    let package = graph.package(&label.package_id());
    let env = CtxEnv {
        label,
        workspace_name: &loader.workspace().name,
        build_file: package.map(|p| p.build_file.clone()).unwrap_or_default(),
        features: features(
            &key.config.options().features,
            package.map_or(&[], |p| &p.features),
            rule,
        ),
        configuration,
        build_setting_value: super::build_settings::value_of(
            &configuration.options().build_settings,
            label,
            rule,
        ),
        platform: &node.platform,
    };

    Module::with_temp_heap(|module| -> Result<Analyzed, TargetError> {
        let heap = module.heap();
        let rule_value = heap.access_owned_frozen_value(&callable);
        let Some(frozen_rule) = rule_value.downcast_ref::<FrozenRuleCallable>() else {
            return Err(TargetError::NotARule(rule.class.clone()));
        };
        let implementation = frozen_rule.implementation.to_value();
        let decl = frozen_rule.decl.clone();
        if !decl.unsupported.is_empty() {
            return Err(TargetError::UnsupportedRule {
                rule: rule.class.clone(),
                options: decl.unsupported.clone(),
            });
        }

        let executable_file = (rule.is_executable)
            .then(|| FileValue::generated(label, &label.name, false, configuration));
        let mut state = new_actions_state(label, configuration, rule, executable_file.as_ref());
        let attrs = attr_values(
            heap,
            graph,
            done,
            label,
            rule,
            node,
            &decl,
            &mut state,
            &aspect_applier(heap, aspects, rule),
        )?;
        let actions = heap.alloc_complex_no_freeze(ActionsValue {
            state: RefCell::new(state),
        });
        let toolchains = toolchain_context(heap, done, key, toolchains)?;
        let ctx = alloc_ctx(
            heap,
            &env,
            attrs,
            actions,
            toolchains,
            executable_file.as_ref(),
        );

        let returned = run_implementation(&module, implementation, ctx, label, &env.build_file)?;
        let mut providers = providers_of(returned, &decl)?;
        // Bazel's platform rules carry their platform_common provider.
        providers.extend(super::platform_providers::platform_provider(
            heap, graph, rule, label,
        ));

        let mut state = actions
            .downcast_ref::<ActionsValue>()
            .expect("allocated above")
            .state
            .replace(ActionsState::default());
        if decl.analysis_test {
            write_analysis_test_script(&providers, executable_file.as_ref(), &mut state)?;
        }
        let completed = complete_default_info(
            heap,
            providers,
            rule,
            label,
            executable_file.as_ref(),
            &mut state,
        )?;
        // Every declared output must come from an action, as in Bazel.
        if let Some(path) = state.first_not_generated() {
            return Err(TargetError::NotCreated(path.to_owned()));
        }
        let runfiles = completed
            .executable
            .as_ref()
            .map(|exe| runfiles_tree(exe, completed.runfiles, env.workspace_name));

        // An executable's `args` and a test's `env` are expanded as Bazel expands them. A
        // rule that is neither may have an `args` attribute of its own (skylib's
        // run_binary): its implementation reads it as written.
        let ctx_value = ctx.downcast_ref::<CtxValue>().expect("allocated above");
        let runs = rule.is_executable || rule.is_test;
        let args = match rule.attrs.get("args") {
            Some(AttrValue::StringList(a)) if runs => ctx_value
                .expand_runtime_args("args", a, true)
                .map_err(TargetError::Args)?,
            _ => Vec::new(),
        };
        let test = match rule.is_test {
            false => None,
            true => {
                // (`plan` reads a map; a test's attributes are few.)
                let attrs = rule.attrs.iter().map(|(n, v)| (n.to_owned(), v.clone()));
                let mut spec = plan::test_spec(&attrs.collect());
                spec.testlogs_dir = configuration.testlogs_dir();
                for value in spec.env.values_mut() {
                    let expanded = ctx_value
                        .expand_runtime_args("env", std::slice::from_ref(value), false)
                        .map_err(TargetError::Args)?;
                    *value = expanded.concat();
                }
                // The providers' values are taken as they are, after the attribute's
                // were expanded.
                apply_test_providers(&completed.providers, &mut spec)?;
                Some(spec)
            }
        };

        module.set_extra_value(heap.alloc(TargetInfoGen {
            label: label.to_string(),
            providers: completed.providers,
        }));
        let module = module.freeze().map_err(TargetError::Unfreezable)?;
        Ok(Analyzed {
            module: Some(module),
            actions: state.actions,
            executable: completed.executable.map(|e| e.path),
            runfiles,
            is_test: rule.is_test,
            args,
            test,
            incremental: Default::default(),
        })
    })
}

/// The empty action registry of `label`, with the tags' execution requirements and, for an
/// executable rule, `ctx.outputs.executable` declared up front.
fn new_actions_state(
    label: &Label,
    config: &super::Config,
    rule: &RuleTarget,
    executable_file: Option<&FileValue>,
) -> ActionsState {
    let mut state = ActionsState {
        owner: label.clone(),
        config: config.clone(),
        requirements: requirements_from_tags(rule),
        ..Default::default()
    };
    if let Some(exe) = executable_file {
        state.declared.insert(exe.path.clone(), false);
        state.implicit_executable = Some(exe.path.clone());
    }
    state
}

/// Calls the rule's implementation with `ctx`, as code of the target's BUILD file (so that
/// labels in it resolve against the target's package).
fn run_implementation<'v>(
    module: &Module<'v>,
    implementation: Value<'v>,
    ctx: Value<'v>,
    label: &Label,
    build_file: &Label,
) -> Result<Value<'v>, TargetError> {
    // Declared before the Evaluator, which borrows it until it is dropped.
    let eval_ctx = EvalContext {
        base: PackageId::new(&label.repo, &label.package),
        file: build_file.clone(),
        kind: FileKind::Bzl,
    };
    let mut eval = Evaluator::new(module);
    eval.extra = Some(&eval_ctx);
    eval.eval_function(implementation, &[ctx], &[])
        .map_err(TargetError::Implementation)
}

/// A Starlark error as text without a doubled `error: ` prefix; a `fail()` reads `Error in
/// fail: MESSAGE`, as Bazel words it (logs are grepped for that line).
pub(super) fn render(e: &starlark::Error) -> String {
    // The implementation is called from Rust; its caller's frame says nothing useful.
    e.to_string()
        .lines()
        .filter(|l| l.trim() != "File <builtin>, in <module>")
        .map(|l| match l.strip_prefix("error: fail: ") {
            Some(message) => format!("Error in fail: {message}"),
            None => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        .trim_end()
        .to_owned()
}

/// The execution requirements of the target's tags, then its `exec_properties` as
/// `exec-property:NAME=VALUE` items, which remote execution sends as the action's platform.
fn requirements_from_tags(rule: &RuleTarget) -> Vec<String> {
    let mut requirements: Vec<String> = match rule.attrs.get("tags") {
        Some(AttrValue::StringList(tags)) => tags
            .iter()
            .filter(|t| super::actions::is_known_requirement(t))
            .cloned()
            .collect(),
        _ => Vec::new(),
    };
    if let Some(AttrValue::StringDict(properties)) = rule.attrs.get("exec_properties") {
        for (name, value) in properties {
            requirements.push(format!(
                "{}{name}={value}",
                crate::core::EXEC_PROPERTY_PREFIX
            ));
        }
    }
    requirements
}

/// The configuration's features (`--features`, transitions), the package's, then the target's: `-x`
/// removes `x` and disables it until a later level enables it again. Enabled, disabled.
fn features(
    command_line: &[String],
    package: &[String],
    rule: &RuleTarget,
) -> (Vec<String>, Vec<String>) {
    let own: &[String] = match rule.attrs.get("features") {
        Some(AttrValue::StringList(v)) => v,
        _ => &[],
    };
    let mut out: Vec<String> = Vec::new();
    let mut disabled: Vec<String> = Vec::new();
    for f in command_line.iter().chain(package).chain(own) {
        match f.strip_prefix('-') {
            Some(removed) => {
                out.retain(|x| x != removed);
                if !disabled.iter().any(|d| d == removed) {
                    disabled.push(removed.to_owned());
                }
            }
            None => {
                disabled.retain(|d| d != f);
                if !out.contains(f) {
                    out.push(f.clone());
                }
            }
        }
    }
    (out, disabled)
}

/// What a test rule's `testing.TestEnvironment` and `testing.ExecutionInfo` change about
/// its test: variables set under the rule's `env` (the attribute is the
/// user's word); execution requirements joined to the tags, which is where forge's
/// test runner reads them (`local`, `no-sandbox`, `requires-network`, ...).
fn apply_test_providers(
    providers: &[Value],
    spec: &mut crate::core::TestSpec,
) -> Result<(), TargetError> {
    let find = |id: &str| {
        providers
            .iter()
            .filter_map(|p| crate::loading::ProviderInstance::from_value(*p))
            .find(|p| p.id == id)
    };
    let dict = |value: Option<Value>, what: &str| -> Result<Vec<(String, String)>, TargetError> {
        let Some(value) = value.filter(|v| !v.is_none()) else {
            return Ok(Vec::new());
        };
        let dict = starlark::values::dict::DictRef::from_value(value)
            .ok_or_else(|| TargetError::Args(anyhow::anyhow!("{what} must be a dict")))?;
        dict.iter()
            .map(|(k, v)| match (k.unpack_str(), v.unpack_str()) {
                (Some(k), Some(v)) => Ok((k.to_owned(), v.to_owned())),
                _ => Err(TargetError::Args(anyhow::anyhow!(
                    "{what} must map strings to strings"
                ))),
            })
            .collect()
    };
    if let Some(env) = find("<builtin>%TestEnvironment") {
        let inherited = env.field("inherited_environment");
        if inherited.is_some_and(|v| !v.is_none() && v.length().is_ok_and(|n| n > 0)) {
            return Err(TargetError::Args(anyhow::anyhow!(
                "forge does not support testing.TestEnvironment(inherited_environment) yet; \
                 pass the variables with --test_env"
            )));
        }
        for (k, v) in dict(
            env.field("environment"),
            "testing.TestEnvironment's environment",
        )? {
            spec.env.entry(k).or_insert(v);
        }
    }
    if let Some(info) = find("<builtin>%ExecutionInfo") {
        for (k, _) in dict(
            info.field("requirements"),
            "testing.ExecutionInfo's requirements",
        )? {
            if !spec.tags.contains(&k) {
                spec.tags.push(k);
            }
        }
    }
    Ok(())
}

/// The id of the built-in `AnalysisTestResultInfo`.
const ANALYSIS_TEST_RESULT_INFO_ID: &str = "<builtin>%AnalysisTestResultInfo";

/// An analysis test's verdict, decided in analysis, becomes its test: as in Bazel, a script
/// that prints the message and exits 0 when the test succeeded, 1 when it failed.
fn write_analysis_test_script(
    providers: &[Value],
    executable_file: Option<&FileValue>,
    state: &mut ActionsState,
) -> Result<(), TargetError> {
    let result = providers
        .iter()
        .filter_map(|p| crate::loading::ProviderInstance::from_value(*p))
        .find(|p| p.id == ANALYSIS_TEST_RESULT_INFO_ID)
        .ok_or(TargetError::NoAnalysisTestResult)?;
    let success = match result.field("success").map(|v| v.unpack_bool()) {
        Some(Some(b)) => b,
        _ => {
            return Err(TargetError::AnalysisTestResult(
                "success must be a bool".into(),
            ));
        }
    };
    let message = match result.field("message") {
        Some(v) if v.is_none() => String::new(),
        Some(v) => v
            .unpack_str()
            .ok_or_else(|| TargetError::AnalysisTestResult("message must be a string".into()))?
            .to_owned(),
        None => String::new(),
    };
    let exe = executable_file.ok_or_else(|| {
        TargetError::Internal("an analysis test has no executable declared".into())
    })?;
    let script = format!(
        "#!/bin/bash
echo {}
exit {}
",
        super::args::shell_quote(&message),
        if success { 0 } else { 1 }
    );
    state
        .write_declared(&exe.path, script, true)
        .map_err(|e| TargetError::Internal(e.to_string()))
}

/// `ctx.toolchains`: each requested type's ToolchainInfo, from the implementation
/// resolution chose (analysed before this target), or None for an unmatched optional type.
pub(super) fn toolchain_context<'v>(
    heap: starlark::values::Heap<'v>,
    done: &HashMap<ConfiguredLabel, Analyzed>,
    key: &ConfiguredLabel,
    resolved: Option<&Resolved>,
) -> Result<Value<'v>, TargetError> {
    let mut types = Vec::new();
    let mut infos = Vec::new();
    for (toolchain_type, implementation) in resolved.iter().flat_map(|r| &r.toolchains) {
        let info = match implementation {
            None => Value::new_none(),
            Some(implementation) => {
                let not_a_toolchain = || {
                    TargetError::NotAToolchain(Box::new((
                        implementation.clone(),
                        toolchain_type.clone(),
                    )))
                };
                // Bazel 4 analyses toolchains in the configuration of the target using them.
                let implementation_key = ConfiguredLabel {
                    label: implementation.clone(),
                    config: key.config.clone(),
                };
                let analyzed = done.get(&implementation_key).ok_or_else(not_a_toolchain)?;
                let info = analyzed
                    .target_info()
                    .map(|v| heap.access_owned_frozen_value(&v))
                    .and_then(TargetInfo::from_value)
                    .and_then(|t| t.provider(TOOLCHAIN_INFO_ID));
                info.ok_or_else(not_a_toolchain)?
            }
        };
        types.push(toolchain_type.clone());
        infos.push(info);
    }
    Ok(heap.alloc_complex_no_freeze(ToolchainContextValue {
        types,
        infos,
        base: key.label.package_id(),
    }))
}

/// Applies the aspects an attribute lists to one of its dependencies, in `heap`; `rule`,
/// whose attribute lists them, gives their parameters.
fn aspect_applier<'a, 'v: 'a>(
    heap: starlark::values::Heap<'v>,
    aspects: &'a AspectEnv<'a>,
    rule: &'a RuleTarget,
) -> impl Fn(&str, &[String], &Label, Option<&ConfiguredLabel>, Value<'v>) -> Result<Value<'v>, String>
+ 'a {
    move |_, ids, dep_label, dep_key, dep| {
        // Aspects apply to rule targets; a file (source or generated) passes unchanged.
        let is_rule = aspects
            .graph
            .target(dep_label)
            .is_some_and(|t| t.rule().is_some());
        let Some(dep_key) = dep_key.filter(|_| !ids.is_empty() && is_rule) else {
            return Ok(dep);
        };
        let paths = super::aspects::paths(aspects.graph, ids, Some(rule))?;
        let paths: Vec<&[super::aspects::AspectDescriptor]> =
            paths.iter().map(Vec::as_slice).collect();
        aspects.with_aspects(heap, dep, dep_key, &paths)
    }
}

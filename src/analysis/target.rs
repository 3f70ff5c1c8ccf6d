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
use super::attrs::{AttrError, attr_values};
use super::configured::{SelectError, Settings};
use super::ctx::{CtxEnv, CtxValue, alloc_ctx};
use super::providers::{ProviderError, complete_default_info, providers_of};
use super::runfiles::runfiles_tree;
use super::values::{FileValue, TargetInfoGen};
use super::{AnalysisConfig, Analyzed, plan, short_from_exec};
use crate::core::{Diagnostic, Label, PackageId};
use crate::graph::TargetGraph;
use crate::loading::{AttrValue, EvalContext, FileKind, FrozenRuleCallable, RuleTarget, Target};

/// Why a rule target could not be analysed. Printed after `in <kind> <label>: `, at the
/// target's BUILD line.
#[derive(Debug, Error)]
pub(super) enum TargetError {
    #[error(transparent)]
    Select(#[from] SelectError),
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

/// Analyses one rule target whose dependencies are all in `done`.
pub(super) fn analyze_target(
    graph: &TargetGraph,
    target: &Target,
    done: &HashMap<Label, Analyzed>,
    config: &AnalysisConfig,
    settings: &Settings,
) -> Result<Analyzed, Diagnostic> {
    analyze_rule(graph, target, done, config, settings).map_err(|e| e.into_diagnostic(target))
}

/// `analyze_target`'s steps, with the error of each step kept typed until it is reported.
fn analyze_rule(
    graph: &TargetGraph,
    target: &Target,
    done: &HashMap<Label, Analyzed>,
    config: &AnalysisConfig,
    settings: &Settings,
) -> Result<Analyzed, TargetError> {
    let rule = target.rule().expect("only rules are analysed");
    let label = &target.label;
    let loader = graph.loader();
    // The attributes as this configuration sees them: each select() resolved.
    let configured = settings.resolve(graph, target, rule)?;
    let rule: &RuleTarget = &configured;
    let callable = loader
        .rule_callable(&rule.defined_in, &rule.class)
        .map_err(|d| TargetError::RuleNotFound(Box::new(d)))?;
    let package = graph.package(&label.package_id());
    let env = CtxEnv {
        label,
        workspace_name: &loader.workspace().name,
        build_file: package.map(|p| p.build_file.clone()).unwrap_or_default(),
        features: features(
            &config.cpp.features,
            package.map_or(&[], |p| &p.features),
            rule,
        ),
        config,
        build_setting_value: super::build_settings::value_of(&config.build_settings, label, rule),
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

        let executable_file =
            (rule.is_executable).then(|| FileValue::generated(label, &label.name, false));
        let mut state = new_actions_state(label, rule, executable_file.as_ref());
        let attrs = attr_values(heap, graph, done, label, rule, &decl, &mut state)?;
        let actions = heap.alloc_complex_no_freeze(ActionsValue {
            state: RefCell::new(state),
        });
        let ctx = alloc_ctx(heap, &env, attrs, actions, executable_file.as_ref());

        let returned = run_implementation(&module, implementation, ctx, label, &env.build_file)?;
        let providers = providers_of(returned, &decl)?;

        let mut state = actions
            .downcast_ref::<ActionsValue>()
            .expect("allocated above")
            .state
            .replace(ActionsState::default());
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

        // An executable's `args` and a test's `env` are expanded as Bazel expands them.
        let ctx_value = ctx.downcast_ref::<CtxValue>().expect("allocated above");
        let args = match rule.attrs.get("args") {
            Some(AttrValue::StringList(a)) => ctx_value
                .expand_runtime_args("args", a, true)
                .map_err(TargetError::Args)?,
            _ => Vec::new(),
        };
        let test = match rule.is_test {
            false => None,
            true => {
                let mut spec = plan::test_spec(&rule.attrs);
                for value in spec.env.values_mut() {
                    let expanded = ctx_value
                        .expand_runtime_args("env", std::slice::from_ref(value), false)
                        .map_err(TargetError::Args)?;
                    *value = expanded.concat();
                }
                Some(spec)
            }
        };

        module.set_extra_value(heap.alloc(TargetInfoGen {
            label: label.to_string(),
            providers: completed.providers,
        }));
        let module = module.freeze().map_err(TargetError::Unfreezable)?;
        Ok(Analyzed {
            module,
            actions: state.actions,
            executable: completed.executable.map(|e| e.path),
            runfiles,
            is_test: rule.is_test,
            args,
            test,
        })
    })
}

/// The empty action registry of `label`, with the tags' execution requirements and, for an
/// executable rule, `ctx.outputs.executable` declared up front.
fn new_actions_state(
    label: &Label,
    rule: &RuleTarget,
    executable_file: Option<&FileValue>,
) -> ActionsState {
    let mut state = ActionsState {
        owner: label.clone(),
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

/// A Starlark error as text without a doubled `error: ` prefix.
fn render(e: &starlark::Error) -> String {
    // The implementation is called from Rust; its caller's frame says nothing useful.
    e.to_string()
        .lines()
        .filter(|l| l.trim() != "File <builtin>, in <module>")
        .collect::<Vec<_>>()
        .join("\n")
        .trim_end()
        .to_owned()
}

fn requirements_from_tags(rule: &RuleTarget) -> Vec<String> {
    match rule.attrs.get("tags") {
        Some(AttrValue::StringList(tags)) => tags
            .iter()
            .filter(|t| super::actions::is_known_requirement(t))
            .cloned()
            .collect(),
        _ => Vec::new(),
    }
}

/// The command line's features (`--features`), the package's, then the target's: `-x`
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

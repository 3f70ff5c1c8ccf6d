//! Transitions: a configuration, a `transition()` or `analysis_test_transition()` value (frozen
//! with its .bzl file) and the attributes of the target it applies to in, the
//! configuration(s) the dependency is built in out — one for a 1:1 transition, one per key
//! for a split transition (`ctx.split_attr`).
//!
//! The implementation reads its `inputs` (native options as `//command_line_option:<name>`,
//! build settings by label) and returns a dict of its `outputs`; forge checks what it
//! returned as Bazel does: every declared output set, nothing undeclared, each of the
//! option's or setting's type.

use starlark::environment::Module;
use starlark::eval::Evaluator;
use starlark::values::dict::{AllocDict, DictRef};
use starlark::values::list::{AllocList, ListRef};
use starlark::values::structs::AllocStruct;
use starlark::values::{FrozenValue, Heap, Value, ValueLike};
use thiserror::Error;

use super::configuration::Config;
use crate::core::{Label, layout};
use crate::graph::TargetGraph;
use crate::loading::{
    AttrValue, EvalContext, FileKind, LabelValue, RuleTarget, SettingKind, Transition,
    TransitionDecl,
};

/// The prefix of native options among a transition's inputs and outputs.
const NATIVE: &str = "//command_line_option:";

/// The native options a transition may read; the first seven it may also set.
const READABLE: &[&str] = &[
    "compilation_mode",
    "cpu",
    "define",
    "stamp",
    "features",
    "allow_analysis_failures",
    "minimum_os_version",
    "host_cpu",
    "host_compilation_mode",
];
const WRITABLE: usize = 7;

/// Why a transition could not be applied. Reported at the target whose rule or attribute
/// declares it.
#[derive(Debug, Error)]
pub enum TransitionError {
    #[error(
        "transition declared in {file}: forge does not support the option '{option}' in \
         transitions yet; it supports {}",
        support(*writable)
    )]
    UnsupportedOption {
        file: Label,
        option: String,
        writable: bool,
    },
    #[error("transition declared in {file}: '{setting}' is {what}, not a build setting")]
    NotASetting {
        file: Label,
        setting: String,
        what: String,
    },
    #[error("transition function returned undeclared output '{0}'")]
    Undeclared(String),
    #[error("transition outputs [{}] were not defined by transition function", .0.join(", "))]
    Missing(Vec<String>),
    #[error("invalid value for '{setting}' in transition: {why}")]
    WrongType { setting: String, why: String },
    #[error(
        "transition function must return a dict of setting to value, a dict of such dicts \
         (a split transition) or a list of them, got {0}"
    )]
    WrongResult(String),
    /// The implementation failed: the Starlark error with its traceback.
    #[error("{0}")]
    Implementation(String),
}

fn support(writable: bool) -> String {
    let n = if writable { WRITABLE } else { READABLE.len() };
    READABLE[..n]
        .iter()
        .map(|o| format!("{NATIVE}{o}"))
        .collect::<Vec<_>>()
        .join(", ")
        + " and build settings"
}

/// The configurations a transition leads to from `from`, each with its split key (`""`
/// for a 1:1 transition). `attrs` are the attributes the implementation sees as `attr`.
pub(super) fn apply(
    graph: &TargetGraph,
    transition: FrozenValue,
    from: &Config,
    attrs: &RuleTarget,
    label: &Label,
) -> Result<Vec<(String, Config)>, TransitionError> {
    let decl = Transition::from_value(transition.to_value())
        .expect("cfg values are transitions")
        .decl
        .clone();
    check_settings(graph, &decl)?;
    Module::with_temp_heap(|module| {
        let t = Transition::from_value(transition.to_value()).expect("checked above");
        let returned = if decl.made_by == "transition" {
            let settings = input_dict(module.heap(), graph, &decl, from);
            let attr = attr_struct(module.heap(), attrs, label);
            let eval_ctx = EvalContext {
                base: decl.base.clone(),
                file: decl.file.clone(),
                kind: FileKind::Bzl,
            };
            let mut eval = Evaluator::new(&module);
            eval.extra = Some(&eval_ctx);
            let result = eval
                .eval_function(t.value(), &[settings, attr], &[])
                .map_err(|e| TransitionError::Implementation(e.to_string()))?;
            results(result)?
        } else {
            results(t.value())?
        };
        let mut out = Vec::new();
        for (key, values) in returned {
            out.push((key, configure(graph, &decl, from, &values)?));
        }
        Ok(out)
    })
}

/// Each returned dict with its split key.
#[allow(clippy::type_complexity)]
fn results<'v>(
    result: Value<'v>,
) -> Result<Vec<(String, Vec<(String, Value<'v>)>)>, TransitionError> {
    let wrong = || TransitionError::WrongResult(result.get_type().to_owned());
    let entries = |dict: DictRef<'v>| -> Result<Vec<(String, Value<'v>)>, TransitionError> {
        dict.iter()
            .map(|(k, v)| Ok((k.unpack_str().ok_or_else(wrong)?.to_owned(), v)))
            .collect()
    };
    if let Some(list) = ListRef::from_value(result) {
        return list
            .content()
            .iter()
            .enumerate()
            .map(|(i, d)| {
                Ok((
                    i.to_string(),
                    entries(DictRef::from_value(*d).ok_or_else(wrong)?)?,
                ))
            })
            .collect();
    }
    let dict = DictRef::from_value(result).ok_or_else(wrong)?;
    let split = !dict.is_empty() && dict.values().all(|v| DictRef::from_value(v).is_some());
    if split {
        return dict
            .iter()
            .map(|(k, v)| {
                let key = k.unpack_str().ok_or_else(wrong)?.to_owned();
                Ok((key, entries(DictRef::from_value(v).ok_or_else(wrong)?)?))
            })
            .collect();
    }
    Ok(vec![(String::new(), entries(dict)?)])
}

/// Every label among the inputs and outputs that is not a native option must be a loaded
/// build setting; native options must be ones forge models.
fn check_settings(graph: &TargetGraph, decl: &TransitionDecl) -> Result<(), TransitionError> {
    for (list, writable) in [(&decl.inputs, false), (&decl.outputs, true)] {
        for (text, label) in list {
            match text.strip_prefix(NATIVE) {
                Some(option) => {
                    let allowed = if writable {
                        &READABLE[..WRITABLE]
                    } else {
                        READABLE
                    };
                    if !allowed.contains(&option) {
                        return Err(TransitionError::UnsupportedOption {
                            file: decl.file.clone(),
                            option: text.clone(),
                            writable,
                        });
                    }
                }
                None => {
                    let what = match graph.target(label) {
                        None => "no loaded target".to_owned(),
                        Some(t) => match t.rule() {
                            Some(r) if r.build_setting.is_some() || is_label_setting(r) => {
                                continue;
                            }
                            _ => format!("a {}", t.kind_name()),
                        },
                    };
                    return Err(TransitionError::NotASetting {
                        file: decl.file.clone(),
                        setting: text.clone(),
                        what,
                    });
                }
            }
        }
    }
    Ok(())
}

fn is_label_setting(rule: &RuleTarget) -> bool {
    super::conditions::is_builtin(rule, "label_flag")
        || super::conditions::is_builtin(rule, "label_setting")
}

/// The `settings` dict: each input's value in `from`.
fn input_dict<'v>(
    heap: Heap<'v>,
    graph: &TargetGraph,
    decl: &TransitionDecl,
    from: &Config,
) -> Value<'v> {
    let o = from.options();
    let entries: Vec<(&str, Value<'v>)> = decl
        .inputs
        .iter()
        .map(|(text, label)| {
            let value = match text.strip_prefix(NATIVE) {
                Some("compilation_mode") => heap.alloc(o.compilation_mode.as_str()),
                Some("cpu") => heap.alloc(o.cpu.as_str()),
                Some("host_cpu") => heap.alloc(layout::host_cpu()),
                Some("host_compilation_mode") => heap.alloc("opt"),
                Some("stamp") => Value::new_bool(o.stamp),
                Some("allow_analysis_failures") => Value::new_bool(o.allow_analysis_failures),
                Some("define") => {
                    heap.alloc(AllocList(o.defines.iter().map(|(k, v)| format!("{k}={v}"))))
                }
                Some("features") => heap.alloc(AllocList(o.features.iter().map(String::as_str))),
                Some("minimum_os_version") => match &o.cpp.minimum_os_version {
                    Some(v) => heap.alloc(v.as_str()),
                    None => Value::new_none(),
                },
                _ => setting_value(heap, graph, from, label),
            };
            (text.as_str(), value)
        })
        .collect();
    heap.alloc(AllocDict(entries))
}

/// A build setting's value in `from`, as Starlark.
fn setting_value<'v>(
    heap: Heap<'v>,
    graph: &TargetGraph,
    from: &Config,
    label: &Label,
) -> Value<'v> {
    let Some(rule) = graph.target(label).and_then(|t| t.rule()) else {
        return Value::new_none();
    };
    let value = match from.options().build_settings.get(label) {
        Some(v) => v.clone(),
        None if rule.build_setting.is_some() => {
            super::build_settings::value_of(&from.options().build_settings, label, rule)
                .unwrap_or(AttrValue::None)
        }
        None => rule
            .attrs
            .get("build_setting_default")
            .cloned()
            .unwrap_or(AttrValue::None),
    };
    match value {
        AttrValue::Label(l) => heap.alloc(LabelValue { label: l }),
        other => super::attrs::plain_value(heap, &other),
    }
}

/// The `attr` struct: the target's configured attributes.
fn attr_struct<'v>(heap: Heap<'v>, rule: &RuleTarget, label: &Label) -> Value<'v> {
    let label_value = |l: &Label| heap.alloc(LabelValue { label: l.clone() });
    let mut fields: Vec<(&str, Value<'v>)> = vec![("name", heap.alloc(label.name.as_str()))];
    for (name, value) in &rule.attrs {
        let v = match value {
            AttrValue::Label(l) | AttrValue::Output(l) => label_value(l),
            AttrValue::LabelList(ls) | AttrValue::OutputList(ls) => {
                heap.alloc(AllocList(ls.iter().map(label_value)))
            }
            AttrValue::LabelKeyedStringDict(kv) => heap.alloc(AllocDict(
                kv.iter()
                    .map(|(l, s)| (label_value(l), heap.alloc(s.as_str()))),
            )),
            plain => super::attrs::plain_value(heap, plain),
        };
        fields.push((name, v));
    }
    heap.alloc(AllocStruct(fields))
}

/// `from` with the outputs set to `values`, checked against the declaration.
fn configure(
    graph: &TargetGraph,
    decl: &TransitionDecl,
    from: &Config,
    values: &[(String, Value)],
) -> Result<Config, TransitionError> {
    for (key, _) in values {
        if !decl.outputs.iter().any(|(t, _)| t == key) {
            return Err(TransitionError::Undeclared(key.clone()));
        }
    }
    let missing: Vec<String> = decl
        .outputs
        .iter()
        .filter(|(t, _)| !values.iter().any(|(k, _)| k == t))
        .map(|(t, _)| t.clone())
        .collect();
    if !missing.is_empty() {
        return Err(TransitionError::Missing(missing));
    }
    let mut options = from.options().clone();
    for (text, label) in &decl.outputs {
        let value = values
            .iter()
            .find(|(k, _)| k == text)
            .map(|(_, v)| *v)
            .expect("checked above");
        let wrong = |why: String| TransitionError::WrongType {
            setting: text.clone(),
            why,
        };
        let changed = match text.strip_prefix(NATIVE) {
            Some(option) => {
                let before = options.clone();
                set_native(&mut options, option, value).map_err(wrong)?;
                (before != options).then(|| option.to_owned())
            }
            None => {
                let rule = graph
                    .target(label)
                    .and_then(|t| t.rule())
                    .expect("checked by check_settings");
                let new = setting_from_starlark(rule, value).map_err(wrong)?;
                let before = options.build_settings.get(label).cloned();
                let default = rule.attrs.get("build_setting_default").cloned();
                let old_value = before.clone().or_else(|| default.clone());
                // As Bazel: a setting at its default is not kept, so it forks no
                // configuration.
                if Some(&new) == default.as_ref() {
                    options.build_settings.remove(label);
                } else {
                    options.build_settings.insert(label.clone(), new.clone());
                }
                (old_value.as_ref() != Some(&new)).then(|| label.to_string())
            }
        };
        // An analysis test's transition is a Starlark transition in Bazel too: what it
        // changes names the directory, so its outputs never meet the build's.
        if let Some(option) = changed {
            options.transitioned.insert(option);
        }
    }
    Ok(from.with(|o| *o = options))
}

fn set_native(
    options: &mut super::configuration::BuildOptions,
    option: &str,
    value: Value,
) -> Result<(), String> {
    let string = || {
        value
            .unpack_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("expected a string, got {}", value.get_type()))
    };
    // As Bazel's option converters: a boolean may be given as text ("True", "1", ...).
    let boolean = || {
        value
            .unpack_bool()
            .or_else(|| {
                value
                    .unpack_str()
                    .and_then(super::conditions::parse_boolean)
            })
            .ok_or_else(|| format!("expected a bool, got {}", value.to_repr()))
    };
    // A list option takes a list of strings, or one string.
    let strings = || -> Result<Vec<String>, String> {
        if let Some(s) = value.unpack_str() {
            return Ok(vec![s.to_owned()]);
        }
        let items = ListRef::from_value(value)
            .ok_or_else(|| format!("expected a list of strings, got {}", value.get_type()))?;
        items
            .content()
            .iter()
            .map(|item| {
                item.unpack_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("expected a string, got {}", item.get_type()))
            })
            .collect()
    };
    match option {
        "compilation_mode" => {
            let mode = string()?;
            if !layout::COMPILATION_MODES.contains(&mode.as_str()) {
                return Err(format!(
                    "'{mode}' is not a compilation mode; use one of {}",
                    layout::COMPILATION_MODES.join(", ")
                ));
            }
            options.compilation_mode = mode;
        }
        "cpu" => options.cpu = string()?,
        "stamp" => options.stamp = boolean()?,
        "allow_analysis_failures" => options.allow_analysis_failures = boolean()?,
        "features" => options.features = strings()?,
        "minimum_os_version" => {
            options.cpp.minimum_os_version = match value.is_none() {
                true => None,
                false => Some(string()?),
            }
        }
        "define" => {
            let mut defines = std::collections::BTreeMap::new();
            for text in strings()? {
                let (k, v) = text
                    .split_once('=')
                    .ok_or_else(|| format!("'{text}' is not NAME=VALUE"))?;
                defines.insert(k.to_owned(), v.to_owned());
            }
            options.defines = defines;
        }
        _ => unreachable!("checked by check_settings"),
    }
    Ok(())
}

/// A build setting's new value, of its type.
fn setting_from_starlark(rule: &RuleTarget, value: Value) -> Result<AttrValue, String> {
    let wrong = |expected: &str| {
        format!(
            "expected a value of type {expected}, got {} of type '{}'",
            value.to_repr(),
            value.get_type()
        )
    };
    let Some(setting) = rule.build_setting else {
        // label_flag / label_setting: a Label or a label string.
        if let Some(l) = value.downcast_ref::<LabelValue>() {
            return Ok(AttrValue::Label(l.label.clone()));
        }
        let text = value.unpack_str().ok_or_else(|| wrong("Label"))?;
        return crate::core::Label::parse(text, &crate::core::PackageId::default())
            .map(AttrValue::Label)
            .map_err(|e| e.to_string());
    };
    let strings = |v: Value| -> Result<Vec<String>, String> {
        let list = ListRef::from_value(v).ok_or_else(|| wrong("list of strings"))?;
        list.content()
            .iter()
            .map(|s| {
                s.unpack_str()
                    .map(str::to_owned)
                    .ok_or_else(|| wrong("list of strings"))
            })
            .collect()
    };
    Ok(match setting.kind {
        SettingKind::Bool => AttrValue::Bool(value.unpack_bool().ok_or_else(|| wrong("bool"))?),
        SettingKind::Int => AttrValue::Int(
            value
                .unpack_i32()
                .map(i64::from)
                .ok_or_else(|| wrong("int"))?,
        ),
        SettingKind::String if setting.allow_multiple => match value.unpack_str() {
            Some(s) => AttrValue::StringList(vec![s.to_owned()]),
            None => AttrValue::StringList(strings(value)?),
        },
        SettingKind::String => AttrValue::String(
            value
                .unpack_str()
                .ok_or_else(|| wrong("string"))?
                .to_owned(),
        ),
        SettingKind::StringList => AttrValue::StringList(strings(value)?),
    })
}

/// The build settings the transitions of the loaded rules read or set: they must be loaded
/// before analysis, as Bazel loads them.
pub fn settings_to_load(graph: &TargetGraph) -> std::collections::BTreeSet<Label> {
    let mut rules = std::collections::BTreeSet::new();
    for target in graph.targets() {
        if let Some(r) = target.rule() {
            rules.insert((r.defined_in.as_str(), r.class.as_str()));
        }
    }
    let mut out = std::collections::BTreeSet::new();
    for (defined_in, class) in rules {
        let Ok(callable) = graph.loader().rule_callable(defined_in, class) else {
            continue;
        };
        let Some(frozen) = callable
            .value()
            .downcast_ref::<crate::loading::FrozenRuleCallable>()
        else {
            continue;
        };
        let transitions = frozen
            .attr_transitions
            .iter()
            .map(|(_, t)| *t)
            .chain(frozen.incoming);
        for t in transitions {
            let Some(t) = Transition::from_value(t.to_value()) else {
                continue;
            };
            for (text, label) in t.decl.inputs.iter().chain(&t.decl.outputs) {
                if !text.starts_with(NATIVE) && graph.target(label).is_none() {
                    out.insert(label.clone());
                }
            }
        }
    }
    out
}

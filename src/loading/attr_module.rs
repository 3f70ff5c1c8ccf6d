//! `attr.*()` in .bzl files: an attribute's keyword options (default, mandatory, allowed
//! files, providers, values …) in, an `Attribute` value wrapping the checked `AttrSpec` out.

// Starlark functions take Bazel's keyword parameters one Rust argument each.
#![allow(clippy::too_many_arguments)]

use std::fmt;
use std::sync::Arc;

use allocative::Allocative;
use starlark::coerce::Coerce;
use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::values::{
    Freeze, NoSerialize, ProvidesStaticType, StarlarkValue, Trace, Value, ValueLike, starlark_value,
};
use starlark::{starlark_complex_value, starlark_module};

use super::aspect_value::aspect_value_id;
use super::attrs::{AllowFiles, AttrKind, AttrSpec, coerce, sequence, string, type_error};
use super::context::EvalContext;
use super::late_bound::LateBoundDefault;
use super::target::AttrValue;
use super::transition_value::Transition;
use crate::core::PackageId;

/// An `attr.*()` result: a Starlark value wrapping an `AttrSpec`, and the function of a
/// computed default (`attr.label(default = _fn)`), which is Starlark and so kept as a value.
#[derive(Debug, Trace, Coerce, Freeze, ProvidesStaticType, NoSerialize, Allocative)]
#[repr(C)]
pub struct AttributeGen<V> {
    #[allocative(skip)]
    #[trace(static)]
    #[freeze(identity)]
    pub spec: Arc<AttrSpec>,
    /// Called at each rule call that leaves the attribute out, with the values of the
    /// attributes its parameters name; its result is the attribute's value. `None` when the
    /// default is a plain value (kept in `spec`).
    computed_default: V,
    /// `cfg = transition(...)`: the transition analysis applies to the dependencies; `None`
    /// otherwise (the `cfg` string is in `spec`).
    transition: V,
}

starlark_complex_value!(pub Attribute);

impl<V> fmt::Display for AttributeGen<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<attr.{}>", self.spec.kind.name())
    }
}

#[starlark_value(type = "Attribute")]
impl<'v, V: ValueLike<'v>> StarlarkValue<'v> for AttributeGen<V> where Self: ProvidesStaticType<'v> {}

impl<'v, V: ValueLike<'v>> AttributeGen<V> {
    /// The computed default's function, on the current heap.
    pub fn computed_default(&self) -> Option<Value<'v>> {
        let f = self.computed_default.to_value();
        (!f.is_none()).then_some(f)
    }

    /// The transition of `cfg = transition(...)`, on the current heap.
    pub fn transition(&self) -> Option<Value<'v>> {
        let t = self.transition.to_value();
        (!t.is_none()).then_some(t)
    }
}

/// Builds an `AttrSpec` from the options every `attr.*` function shares.
struct Options<'v> {
    kind: AttrKind,
    default: Option<Value<'v>>,
    mandatory: bool,
    allow_empty: bool,
    doc: String,
}

fn make<'v>(
    opts: Options<'v>,
    eval: &Evaluator<'v, '_, '_>,
    extra: impl FnOnce(&mut AttrSpec) -> anyhow::Result<Option<Value<'v>>>,
) -> anyhow::Result<Attribute<'v>> {
    let mut spec = AttrSpec::new(opts.kind);
    spec.mandatory = opts.mandatory;
    spec.allow_empty = opts.allow_empty;
    spec.doc = opts.doc;
    let transition = extra(&mut spec)?;
    let mut computed_default = None;
    match opts.default {
        Some(default) if is_function(default) => {
            if !matches!(opts.kind, AttrKind::Label | AttrKind::LabelList) {
                anyhow::bail!(
                    "a function as the default (a computed default) is only allowed for \
                     attr.label and attr.label_list, not attr.{}",
                    opts.kind.name()
                );
            }
            computed_default = Some(default);
        }
        Some(default) if default.downcast_ref::<LateBoundDefault>().is_some() => {
            if opts.kind != AttrKind::Label {
                anyhow::bail!(
                    "configuration_field() is a default only for attr.label, not attr.{}",
                    opts.kind.name()
                );
            }
            // No option forge models sets a field it accepts: no label, in every configuration.
            spec.late_bound = true;
        }
        Some(default) => {
            let base = &EvalContext::from_eval(eval)?.base;
            spec.default = Some(coerce(opts.kind, "the default value", default, base)?);
        }
        None => {}
    }
    Ok(Attribute {
        spec: Arc::new(spec),
        computed_default: computed_default.unwrap_or_else(Value::new_none),
        transition: transition.unwrap_or_else(Value::new_none),
    })
}

/// A `def` (or lambda) given as a default: Bazel's computed default.
fn is_function(value: Value) -> bool {
    value.get_type() == "function"
}

/// The `cfg` of an attribute whose dependencies go through a Starlark transition (kept as
/// the attribute's `transition`).
pub const TRANSITION_CFG: &str = "transition";

/// `aspects = [...]` on a label attribute: the aspects' ids (`<bzl>%<name>`), by which
/// analysis finds them again to apply them.
fn aspect_names(aspects: Option<Value>) -> anyhow::Result<Vec<String>> {
    let Some(aspects) = aspects.filter(|a| !a.is_none()) else {
        return Ok(Vec::new());
    };
    sequence(aspects)
        .ok_or_else(|| type_error("aspects", "a list of aspects", aspects))?
        .into_iter()
        .map(|a| aspect_value_id(a).ok_or_else(|| type_error("aspects", "a list of aspects", a)))
        .collect()
}

/// `allow_rules = [...]`: rule kind names.
fn rule_names(value: Option<Value>) -> anyhow::Result<Vec<String>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(Vec::new());
    };
    sequence(value)
        .ok_or_else(|| type_error("allow_rules", "a list of rule names", value))?
        .into_iter()
        .map(|v| string("allow_rules", v).map(str::to_owned))
        .collect()
}

fn allow_files(value: Option<Value>) -> anyhow::Result<AllowFiles> {
    let Some(value) = value else {
        return Ok(AllowFiles::No);
    };
    if value.is_none() {
        return Ok(AllowFiles::No);
    }
    if let Some(b) = value.unpack_bool() {
        return Ok(if b { AllowFiles::Any } else { AllowFiles::No });
    }
    let exts = sequence(value)
        .ok_or_else(|| type_error("allow_files", "a bool or a list of extensions", value))?
        .into_iter()
        .map(|v| string("allow_files", v).map(str::to_owned))
        .collect::<anyhow::Result<_>>()?;
    Ok(AllowFiles::Extensions(exts))
}

/// Provider requirements are recorded by name, as groups (a flat list is one group); analysis
/// checks them.
pub(super) fn providers(value: Option<Value>) -> anyhow::Result<Vec<Vec<String>>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(Vec::new());
    };
    let items = sequence(value).ok_or_else(|| type_error("providers", "a list", value))?;
    let name = |p: &Value| -> anyhow::Result<String> {
        match super::providers::provider_callable(*p) {
            Some(provider) => Ok(provider.id()),
            // Legacy providers are named by string.
            None => p
                .unpack_str()
                .map(str::to_owned)
                .ok_or_else(|| type_error("providers", "a list of providers", *p)),
        }
    };
    let mut flat = Vec::new();
    let mut groups = Vec::new();
    for item in items {
        match sequence(item) {
            Some(group) => groups.push(group.iter().map(name).collect::<anyhow::Result<_>>()?),
            None => flat.push(name(&item)?),
        }
    }
    if !flat.is_empty() {
        if !groups.is_empty() {
            anyhow::bail!("providers must be a list of providers or a list of lists, not both");
        }
        groups.push(flat);
    }
    Ok(groups)
}

/// `cfg`: `"exec"`, `"host"` or `"target"` as written; a transition is recorded as
/// `"transition"` and returned, for the attribute to keep; anything else is refused.
fn cfg(value: Option<Value>) -> anyhow::Result<(Option<String>, Option<Value>)> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok((None, None));
    };
    if Transition::from_value(value).is_some() {
        return Ok((Some(TRANSITION_CFG.to_owned()), Some(value)));
    }
    match value.unpack_str() {
        Some(c @ ("exec" | "host" | "target")) => Ok((Some(c.to_owned()), None)),
        _ => anyhow::bail!(
            "cfg = {} is not supported by forge; use cfg = \"exec\", \"host\", \"target\" or \
             a transition()",
            value.to_repr()
        ),
    }
}

fn label_options<'v>(
    spec: &mut AttrSpec,
    files: Option<Value>,
    single_file: Option<Value>,
    executable: bool,
    provider_list: Option<Value>,
    cfg_value: Option<Value<'v>>,
) -> anyhow::Result<Option<Value<'v>>> {
    spec.allow_files = allow_files(files)?;
    if let Some(single) = single_file.filter(|v| !v.is_none()) {
        if spec.allow_files != AllowFiles::No {
            anyhow::bail!("allow_files and allow_single_file cannot both be given");
        }
        spec.allow_files = allow_files(Some(single))?;
        spec.allow_single_file = spec.allow_files != AllowFiles::No;
    }
    spec.executable = executable;
    spec.providers = providers(provider_list)?;
    let (cfg, transition) = cfg(cfg_value)?;
    spec.cfg = cfg;
    if executable && spec.cfg.is_none() {
        anyhow::bail!(
            "cfg parameter is mandatory when executable=True is provided; use cfg = \"exec\" for tools"
        );
    }
    Ok(transition)
}

/// The `attr` namespace: attribute constructors for `rule(attrs = {...})`.
#[starlark_module]
pub fn attr_module(builder: &mut GlobalsBuilder) {
    fn string<'v>(
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = false)] mandatory: bool,
        #[starlark(require = named)] values: Option<Value<'v>>,
        #[starlark(require = named, default = String::new())] doc: String,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Attribute<'v>> {
        let opts = Options {
            kind: AttrKind::String,
            default,
            mandatory,
            allow_empty: true,
            doc,
        };
        make(opts, eval, |spec| {
            spec.values = allowed_values(AttrKind::String, values)?;
            Ok(None)
        })
    }

    fn int<'v>(
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = false)] mandatory: bool,
        #[starlark(require = named)] values: Option<Value<'v>>,
        #[starlark(require = named, default = String::new())] doc: String,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Attribute<'v>> {
        let opts = Options {
            kind: AttrKind::Int,
            default,
            mandatory,
            allow_empty: true,
            doc,
        };
        make(opts, eval, |spec| {
            spec.values = allowed_values(AttrKind::Int, values)?;
            Ok(None)
        })
    }

    fn bool<'v>(
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = false)] mandatory: bool,
        #[starlark(require = named, default = String::new())] doc: String,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Attribute<'v>> {
        let opts = Options {
            kind: AttrKind::Bool,
            default,
            mandatory,
            allow_empty: true,
            doc,
        };
        make(opts, eval, |_| Ok(None))
    }

    fn label<'v>(
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = false)] mandatory: bool,
        #[starlark(require = named, default = false)] executable: bool,
        #[starlark(require = named)] allow_files: Option<Value<'v>>,
        #[starlark(require = named)] allow_single_file: Option<Value<'v>>,
        #[starlark(require = named)] providers: Option<Value<'v>>,
        #[starlark(require = named)] cfg: Option<Value<'v>>,
        #[starlark(require = named)] aspects: Option<Value<'v>>,
        #[starlark(require = named)] allow_rules: Option<Value<'v>>,
        #[starlark(require = named, default = String::new())] doc: String,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Attribute<'v>> {
        let aspects = aspect_names(aspects)?;
        let allow_rules = rule_names(allow_rules)?;
        let opts = Options {
            kind: AttrKind::Label,
            default,
            mandatory,
            allow_empty: true,
            doc,
        };
        make(opts, eval, |spec| {
            spec.aspects = aspects;
            spec.allow_rules = allow_rules;
            label_options(
                spec,
                allow_files,
                allow_single_file,
                executable,
                providers,
                cfg,
            )
        })
    }

    fn label_list<'v>(
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = false)] mandatory: bool,
        #[starlark(require = named, default = true)] allow_empty: bool,
        #[starlark(require = named)] allow_files: Option<Value<'v>>,
        #[starlark(require = named)] providers: Option<Value<'v>>,
        #[starlark(require = named)] cfg: Option<Value<'v>>,
        #[starlark(require = named)] aspects: Option<Value<'v>>,
        #[starlark(require = named)] allow_rules: Option<Value<'v>>,
        #[starlark(require = named, default = String::new())] doc: String,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Attribute<'v>> {
        let aspects = aspect_names(aspects)?;
        let allow_rules = rule_names(allow_rules)?;
        let opts = Options {
            kind: AttrKind::LabelList,
            default,
            mandatory,
            allow_empty,
            doc,
        };
        make(opts, eval, |spec| {
            spec.aspects = aspects;
            spec.allow_rules = allow_rules;
            label_options(spec, allow_files, None, false, providers, cfg)
        })
    }

    fn label_keyed_string_dict<'v>(
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = false)] mandatory: bool,
        #[starlark(require = named, default = true)] allow_empty: bool,
        #[starlark(require = named)] allow_files: Option<Value<'v>>,
        #[starlark(require = named)] providers: Option<Value<'v>>,
        #[starlark(require = named)] cfg: Option<Value<'v>>,
        #[starlark(require = named)] aspects: Option<Value<'v>>,
        #[starlark(require = named)] allow_rules: Option<Value<'v>>,
        #[starlark(require = named, default = String::new())] doc: String,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Attribute<'v>> {
        let aspects = aspect_names(aspects)?;
        let allow_rules = rule_names(allow_rules)?;
        let opts = Options {
            kind: AttrKind::LabelKeyedStringDict,
            default,
            mandatory,
            allow_empty,
            doc,
        };
        make(opts, eval, |spec| {
            spec.aspects = aspects;
            spec.allow_rules = allow_rules;
            label_options(spec, allow_files, None, false, providers, cfg)
        })
    }

    fn string_list<'v>(
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = false)] mandatory: bool,
        #[starlark(require = named, default = true)] allow_empty: bool,
        #[starlark(require = named, default = String::new())] doc: String,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Attribute<'v>> {
        let opts = Options {
            kind: AttrKind::StringList,
            default,
            mandatory,
            allow_empty,
            doc,
        };
        make(opts, eval, |_| Ok(None))
    }

    fn string_dict<'v>(
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = false)] mandatory: bool,
        #[starlark(require = named, default = true)] allow_empty: bool,
        #[starlark(require = named, default = String::new())] doc: String,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Attribute<'v>> {
        let opts = Options {
            kind: AttrKind::StringDict,
            default,
            mandatory,
            allow_empty,
            doc,
        };
        make(opts, eval, |_| Ok(None))
    }

    fn output<'v>(
        #[starlark(require = named, default = false)] mandatory: bool,
        #[starlark(require = named, default = String::new())] doc: String,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Attribute<'v>> {
        let opts = Options {
            kind: AttrKind::Output,
            default: None,
            mandatory,
            allow_empty: true,
            doc,
        };
        make(opts, eval, |_| Ok(None))
    }

    fn output_list<'v>(
        #[starlark(require = named, default = false)] mandatory: bool,
        #[starlark(require = named, default = true)] allow_empty: bool,
        #[starlark(require = named, default = String::new())] doc: String,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Attribute<'v>> {
        let opts = Options {
            kind: AttrKind::OutputList,
            default: None,
            mandatory,
            allow_empty,
            doc,
        };
        make(opts, eval, |_| Ok(None))
    }
}

fn allowed_values(kind: AttrKind, values: Option<Value>) -> anyhow::Result<Vec<AttrValue>> {
    let Some(values) = values else {
        return Ok(Vec::new());
    };
    let base = PackageId::default();
    sequence(values)
        .ok_or_else(|| type_error("values", "a list", values))?
        .into_iter()
        .map(|v| coerce(kind, "values", v, &base))
        .collect()
}

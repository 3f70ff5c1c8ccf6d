//! The declaration side of attributes: `attr.*()` calls in .bzl files become `AttrSpec`s, and
//! a rule call's Starlark values are checked against them and turned into plain `AttrValue`s.

// Starlark functions take Bazel's keyword parameters one Rust argument each.
#![allow(clippy::too_many_arguments)]

use std::fmt;

use allocative::Allocative;
use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::starlark_simple_value;
use starlark::values::dict::DictRef;
use starlark::values::list::ListRef;
use starlark::values::tuple::TupleRef;
use starlark::values::{
    NoSerialize, ProvidesStaticType, StarlarkValue, Value, ValueLike, starlark_value,
};

use super::context::EvalContext;
use super::target::AttrValue;
use crate::core::{Label, PackageId};

/// The type of an attribute.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AttrKind {
    Bool,
    Int,
    String,
    StringList,
    StringDict,
    Label,
    LabelList,
    LabelKeyedStringDict,
    Output,
    OutputList,
}

impl AttrKind {
    fn name(self) -> &'static str {
        match self {
            AttrKind::Bool => "bool",
            AttrKind::Int => "int",
            AttrKind::String => "string",
            AttrKind::StringList => "string_list",
            AttrKind::StringDict => "string_dict",
            AttrKind::Label => "label",
            AttrKind::LabelList => "label_list",
            AttrKind::LabelKeyedStringDict => "label_keyed_string_dict",
            AttrKind::Output => "output",
            AttrKind::OutputList => "output_list",
        }
    }

    /// The value an unset attribute has when the declaration gave no default.
    pub fn empty(self) -> AttrValue {
        match self {
            AttrKind::Bool => AttrValue::Bool(false),
            AttrKind::Int => AttrValue::Int(0),
            AttrKind::String => AttrValue::String(String::new()),
            AttrKind::StringList => AttrValue::StringList(Vec::new()),
            AttrKind::StringDict => AttrValue::StringDict(Vec::new()),
            AttrKind::Label | AttrKind::Output => AttrValue::None,
            AttrKind::LabelList => AttrValue::LabelList(Vec::new()),
            AttrKind::LabelKeyedStringDict => AttrValue::LabelKeyedStringDict(Vec::new()),
            AttrKind::OutputList => AttrValue::OutputList(Vec::new()),
        }
    }
}

/// Which files a label attribute accepts.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum AllowFiles {
    No,
    Any,
    Extensions(Vec<String>),
}

/// One declared attribute, as `attr.label_list(allow_files = True, ...)` described it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AttrSpec {
    pub kind: AttrKind,
    /// Already checked and resolved against the declaring .bzl file's package.
    pub default: Option<AttrValue>,
    pub mandatory: bool,
    pub allow_empty: bool,
    pub allow_files: AllowFiles,
    pub allow_single_file: bool,
    pub executable: bool,
    pub cfg: Option<String>,
    /// `providers = [...]`: groups of provider ids (or legacy names); a dependency that is a rule must
    /// return every provider of at least one group.
    pub providers: Vec<Vec<String>>,
    /// Allowed values of a string or int attribute (rendered), empty = any.
    pub values: Vec<AttrValue>,
    pub doc: String,
}

impl AttrSpec {
    pub fn new(kind: AttrKind) -> Self {
        AttrSpec {
            kind,
            default: None,
            mandatory: false,
            allow_empty: true,
            allow_files: AllowFiles::No,
            allow_single_file: false,
            executable: false,
            cfg: None,
            providers: Vec::new(),
            values: Vec::new(),
            doc: String::new(),
        }
    }

    /// The value of the attribute when the rule call leaves it out.
    pub fn default_value(&self) -> AttrValue {
        self.default.clone().unwrap_or_else(|| self.kind.empty())
    }

    /// Checks a Starlark value against this attribute and converts it, resolving labels
    /// against `base`. `what` names the attribute for messages.
    pub fn coerce(&self, what: &str, value: Value, base: &PackageId) -> anyhow::Result<AttrValue> {
        let v = coerce(self.kind, what, value, base)?;
        if !self.values.is_empty() && !self.values.contains(&v) {
            anyhow::bail!(
                "{what} has value {}, but must be one of: {}",
                v.display(),
                self.values
                    .iter()
                    .map(AttrValue::display)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if !self.allow_empty {
            let empty = match &v {
                AttrValue::StringList(x) => x.is_empty(),
                AttrValue::LabelList(x) | AttrValue::OutputList(x) => x.is_empty(),
                AttrValue::StringDict(x) => x.is_empty(),
                AttrValue::LabelKeyedStringDict(x) => x.is_empty(),
                _ => false,
            };
            if empty {
                anyhow::bail!("{what} may not be empty");
            }
        }
        Ok(v)
    }
}

fn type_error(what: &str, expected: &str, value: Value) -> anyhow::Error {
    anyhow::anyhow!(
        "expected {expected} for {what}, but got {} of type '{}'",
        truncate(&value.to_repr()),
        value.get_type()
    )
}

fn truncate(s: &str) -> String {
    if s.chars().count() > 60 {
        format!("{}...", s.chars().take(57).collect::<String>())
    } else {
        s.to_owned()
    }
}

/// Items of a list or tuple.
fn sequence<'v>(value: Value<'v>) -> Option<Vec<Value<'v>>> {
    if let Some(list) = ListRef::from_value(value) {
        return Some(list.content().to_vec());
    }
    TupleRef::from_value(value).map(|t| t.content().to_vec())
}

fn string<'v>(what: &str, value: Value<'v>) -> anyhow::Result<&'v str> {
    value
        .unpack_str()
        .ok_or_else(|| type_error(what, "a string", value))
}

/// A label string (or `Label` object) resolved against `base`.
pub(super) fn label_value(what: &str, value: Value, base: &PackageId) -> anyhow::Result<Label> {
    label(what, value, base)
}

fn label(what: &str, value: Value, base: &PackageId) -> anyhow::Result<Label> {
    // `Label("//pkg:x")` objects go wherever label strings go.
    if let Some(l) = value.downcast_ref::<super::values::LabelValue>() {
        return Ok(l.label.clone());
    }
    let text = string(what, value)?;
    Label::parse(text, base).map_err(|e| anyhow::anyhow!("in {what}: {e}"))
}

/// An output name must stay inside the package: it is a file path, not a label elsewhere.
fn output(what: &str, value: Value, base: &PackageId) -> anyhow::Result<Label> {
    let l = label(what, value, base)?;
    if l.package_id() != *base {
        anyhow::bail!(
            "in {what}: output '{}' must be in the rule's own package '{}'",
            l,
            base.package
        );
    }
    Ok(l)
}

fn coerce(kind: AttrKind, what: &str, value: Value, base: &PackageId) -> anyhow::Result<AttrValue> {
    let list_of =
        |f: &dyn Fn(Value) -> anyhow::Result<AttrValue>| -> anyhow::Result<Vec<AttrValue>> {
            sequence(value)
                .ok_or_else(|| type_error(what, "a list", value))?
                .into_iter()
                .map(f)
                .collect()
        };
    let dict = || -> anyhow::Result<Vec<(Value, Value)>> {
        DictRef::from_value(value)
            .map(|d| d.iter().collect())
            .ok_or_else(|| type_error(what, "a dict", value))
    };
    Ok(match kind {
        AttrKind::Bool => match (value.unpack_bool(), value.unpack_i32()) {
            (Some(b), _) => AttrValue::Bool(b),
            (None, Some(i @ (0 | 1))) => AttrValue::Bool(i == 1),
            _ => return Err(type_error(what, "a bool", value)),
        },
        AttrKind::Int => AttrValue::Int(
            value
                .unpack_i32()
                .ok_or_else(|| type_error(what, "an int", value))?
                .into(),
        ),
        AttrKind::String => AttrValue::String(string(what, value)?.to_owned()),
        AttrKind::StringList => AttrValue::StringList(
            sequence(value)
                .ok_or_else(|| type_error(what, "a list of strings", value))?
                .into_iter()
                .map(|v| string(what, v).map(str::to_owned))
                .collect::<anyhow::Result<_>>()?,
        ),
        AttrKind::StringDict => AttrValue::StringDict(
            dict()?
                .into_iter()
                .map(|(k, v)| Ok((string(what, k)?.to_owned(), string(what, v)?.to_owned())))
                .collect::<anyhow::Result<_>>()?,
        ),
        AttrKind::Label if value.is_none() => AttrValue::None,
        AttrKind::Label => AttrValue::Label(label(what, value, base)?),
        AttrKind::LabelList => {
            let items = list_of(&|v| label(what, v, base).map(AttrValue::Label))?;
            AttrValue::LabelList(dedup_labels(what, items)?)
        }
        AttrKind::LabelKeyedStringDict => AttrValue::LabelKeyedStringDict(
            dict()?
                .into_iter()
                .map(|(k, v)| Ok((label(what, k, base)?, string(what, v)?.to_owned())))
                .collect::<anyhow::Result<_>>()?,
        ),
        AttrKind::Output if value.is_none() => AttrValue::None,
        AttrKind::Output => AttrValue::Output(output(what, value, base)?),
        AttrKind::OutputList => {
            let items = list_of(&|v| output(what, v, base).map(AttrValue::Label))?;
            AttrValue::OutputList(dedup_labels(what, items)?)
        }
    })
}

/// Bazel refuses a label listed twice in one attribute; so do we, naming it.
fn dedup_labels(what: &str, items: Vec<AttrValue>) -> anyhow::Result<Vec<Label>> {
    let mut labels: Vec<Label> = Vec::with_capacity(items.len());
    // A set, not `labels.contains`: a glob of 10,000 files would take seconds otherwise.
    let mut seen: std::collections::HashSet<Label> =
        std::collections::HashSet::with_capacity(items.len());
    for item in items {
        let AttrValue::Label(l) = item else {
            unreachable!()
        };
        if !seen.insert(l.clone()) {
            anyhow::bail!("label '{l}' is duplicated in {what}");
        }
        labels.push(l);
    }
    Ok(labels)
}

/// An `attr.*()` result: a Starlark value wrapping an `AttrSpec`.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct Attribute {
    #[allocative(skip)]
    pub spec: AttrSpec,
}

starlark_simple_value!(Attribute);

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<attr.{}>", self.spec.kind.name())
    }
}

#[starlark_value(type = "Attribute")]
impl<'v> StarlarkValue<'v> for Attribute {}

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
    extra: impl FnOnce(&mut AttrSpec) -> anyhow::Result<()>,
) -> anyhow::Result<Attribute> {
    let mut spec = AttrSpec::new(opts.kind);
    spec.mandatory = opts.mandatory;
    spec.allow_empty = opts.allow_empty;
    spec.doc = opts.doc;
    extra(&mut spec)?;
    if let Some(default) = opts.default {
        let base = &EvalContext::from_eval(eval)?.base;
        spec.default = Some(coerce(opts.kind, "the default value", default, base)?);
    }
    Ok(Attribute { spec })
}

/// `aspects = [...]` on a label attribute: forge has no aspects yet, so a non-empty list is
/// refused rather than ignored (an empty one means nothing either way).
fn refuse_aspects(aspects: Option<Value>) -> anyhow::Result<()> {
    match aspects {
        Some(a) if !a.is_none() && !a.length().is_ok_and(|n| n == 0) => anyhow::bail!(
            "attribute parameter 'aspects' is not supported by forge (aspects are not \
             implemented yet); remove 'aspects = {}' from the attribute",
            a.to_repr()
        ),
        _ => Ok(()),
    }
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
fn providers(value: Option<Value>) -> anyhow::Result<Vec<Vec<String>>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(Vec::new());
    };
    let items = sequence(value).ok_or_else(|| type_error("providers", "a list", value))?;
    let name = |p: &Value| -> anyhow::Result<String> {
        match super::values::provider_callable(*p) {
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

/// `cfg`: forge builds tools and targets in one configuration, for this machine, so the
/// strings Bazel knows all mean that; anything else (a transition) is refused.
fn cfg(value: Option<Value>) -> anyhow::Result<Option<String>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    match value.unpack_str() {
        Some(c @ ("exec" | "host" | "target")) => Ok(Some(c.to_owned())),
        _ => anyhow::bail!(
            "cfg = {} is not supported by forge, which builds everything in one configuration; \
             use cfg = \"exec\" or \"target\"",
            value.to_repr()
        ),
    }
}

fn label_options(
    spec: &mut AttrSpec,
    files: Option<Value>,
    single_file: Option<Value>,
    executable: bool,
    provider_list: Option<Value>,
    cfg_value: Option<Value>,
) -> anyhow::Result<()> {
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
    spec.cfg = cfg(cfg_value)?;
    if executable && spec.cfg.is_none() {
        anyhow::bail!(
            "cfg parameter is mandatory when executable=True is provided; use cfg = \"exec\" for tools"
        );
    }
    Ok(())
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
    ) -> anyhow::Result<Attribute> {
        let opts = Options {
            kind: AttrKind::String,
            default,
            mandatory,
            allow_empty: true,
            doc,
        };
        make(opts, eval, |spec| {
            spec.values = allowed_values(AttrKind::String, values)?;
            Ok(())
        })
    }

    fn int<'v>(
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = false)] mandatory: bool,
        #[starlark(require = named)] values: Option<Value<'v>>,
        #[starlark(require = named, default = String::new())] doc: String,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Attribute> {
        let opts = Options {
            kind: AttrKind::Int,
            default,
            mandatory,
            allow_empty: true,
            doc,
        };
        make(opts, eval, |spec| {
            spec.values = allowed_values(AttrKind::Int, values)?;
            Ok(())
        })
    }

    fn bool<'v>(
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = false)] mandatory: bool,
        #[starlark(require = named, default = String::new())] doc: String,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Attribute> {
        let opts = Options {
            kind: AttrKind::Bool,
            default,
            mandatory,
            allow_empty: true,
            doc,
        };
        make(opts, eval, |_| Ok(()))
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
        #[starlark(require = named, default = String::new())] doc: String,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Attribute> {
        refuse_aspects(aspects)?;
        let opts = Options {
            kind: AttrKind::Label,
            default,
            mandatory,
            allow_empty: true,
            doc,
        };
        make(opts, eval, |spec| {
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
        #[starlark(require = named, default = String::new())] doc: String,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Attribute> {
        refuse_aspects(aspects)?;
        let opts = Options {
            kind: AttrKind::LabelList,
            default,
            mandatory,
            allow_empty,
            doc,
        };
        make(opts, eval, |spec| {
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
        #[starlark(require = named, default = String::new())] doc: String,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Attribute> {
        refuse_aspects(aspects)?;
        let opts = Options {
            kind: AttrKind::LabelKeyedStringDict,
            default,
            mandatory,
            allow_empty,
            doc,
        };
        make(opts, eval, |spec| {
            label_options(spec, allow_files, None, false, providers, cfg)
        })
    }

    fn string_list<'v>(
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = false)] mandatory: bool,
        #[starlark(require = named, default = true)] allow_empty: bool,
        #[starlark(require = named, default = String::new())] doc: String,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Attribute> {
        let opts = Options {
            kind: AttrKind::StringList,
            default,
            mandatory,
            allow_empty,
            doc,
        };
        make(opts, eval, |_| Ok(()))
    }

    fn string_dict<'v>(
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = false)] mandatory: bool,
        #[starlark(require = named, default = true)] allow_empty: bool,
        #[starlark(require = named, default = String::new())] doc: String,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Attribute> {
        let opts = Options {
            kind: AttrKind::StringDict,
            default,
            mandatory,
            allow_empty,
            doc,
        };
        make(opts, eval, |_| Ok(()))
    }

    fn output<'v>(
        #[starlark(require = named, default = false)] mandatory: bool,
        #[starlark(require = named, default = String::new())] doc: String,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Attribute> {
        let opts = Options {
            kind: AttrKind::Output,
            default: None,
            mandatory,
            allow_empty: true,
            doc,
        };
        make(opts, eval, |_| Ok(()))
    }

    fn output_list<'v>(
        #[starlark(require = named, default = false)] mandatory: bool,
        #[starlark(require = named, default = true)] allow_empty: bool,
        #[starlark(require = named, default = String::new())] doc: String,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Attribute> {
        let opts = Options {
            kind: AttrKind::OutputList,
            default: None,
            mandatory,
            allow_empty,
            doc,
        };
        make(opts, eval, |_| Ok(()))
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

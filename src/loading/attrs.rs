//! Attributes: a declared `AttrSpec` (kind, default, allowed files and values) and a rule
//! call's Starlark value in, checked against it, a plain `AttrValue` out (labels resolved
//! against the package). The `attr.*()` constructors that make specs are in `attr_module`.

use starlark::values::dict::DictRef;
use starlark::values::list::ListRef;
use starlark::values::tuple::TupleRef;
use starlark::values::{Value, ValueLike};

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
    pub(super) fn name(self) -> &'static str {
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
    /// `allow_rules = [...]`: the rule kinds a dependency that is a rule may be (empty = any,
    /// subject to `providers`).
    pub allow_rules: Vec<String>,
    /// `aspects = [...]`: the aspects' ids (`<bzl>%<name>`), which analysis applies to the
    /// attribute's dependencies.
    pub aspects: Vec<String>,
    /// The default is `configuration_field(...)`: Bazel allows that on private attributes only.
    pub late_bound: bool,
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
            late_bound: false,
            allow_rules: Vec::new(),
            aspects: Vec::new(),
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

pub(super) fn type_error(what: &str, expected: &str, value: Value) -> anyhow::Error {
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
pub(super) fn sequence<'v>(value: Value<'v>) -> Option<Vec<Value<'v>>> {
    if let Some(list) = ListRef::from_value(value) {
        return Some(list.content().to_vec());
    }
    TupleRef::from_value(value).map(|t| t.content().to_vec())
}

pub(super) fn string<'v>(what: &str, value: Value<'v>) -> anyhow::Result<&'v str> {
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
    if let Some(l) = value.downcast_ref::<super::label_value::LabelValue>() {
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

pub(super) fn coerce(
    kind: AttrKind,
    what: &str,
    value: Value,
    base: &PackageId,
) -> anyhow::Result<AttrValue> {
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

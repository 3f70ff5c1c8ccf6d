//! The plain-Rust result of loading: packages of targets with typed attribute values.
//!
//! Nothing here refers to Starlark; these types are what `graph`, `query` and later `analysis`
//! consume.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::core::{Label, Location, PackageId};

/// An attribute value after type-checking and label resolution at the rule call.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum AttrValue {
    None,
    Bool(bool),
    Int(i64),
    String(String),
    StringList(Vec<String>),
    StringDict(Vec<(String, String)>),
    Label(Label),
    LabelList(Vec<Label>),
    LabelKeyedStringDict(Vec<(Label, String)>),
    /// A file the rule promises to create (`attr.output`), a generated-file target.
    Output(Label),
    OutputList(Vec<Label>),
    /// A configurable value: `select({...})`, possibly concatenated with plain values
    /// (`["a"] + select({...})`). Resolved against the configuration in analysis.
    Select(Box<Select>),
}

/// Bazel's `SelectorList`: parts concatenated in order, each plain or a selector.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Select {
    pub parts: Vec<SelectPart>,
}

/// One operand of a `+` chain that involves `select()`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum SelectPart {
    /// A value written directly (`["a"]` in `["a"] + select(...)`), already coerced.
    Plain(AttrValue),
    /// `select({condition: value}, no_match_error = ...)`, each value already coerced.
    Selector(Selector),
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Selector {
    /// Condition labels (config_setting or constraint_value targets, or
    /// `//conditions:default`) with their values, in the order written.
    pub conditions: Vec<(Label, AttrValue)>,
    /// `no_match_error`, shown instead of the list of conditions when none matches.
    pub no_match_error: Option<String>,
}

/// `//conditions:default`: the branch taken when no other condition matches. It names no
/// target.
pub fn is_default_condition(label: &Label) -> bool {
    label.package == "conditions" && label.name == "default"
}

impl Select {
    /// Every label any branch could depend on, plus the conditions themselves (as Bazel's
    /// query reports them).
    pub fn dep_labels(&self) -> Vec<&Label> {
        let mut out = Vec::new();
        for part in &self.parts {
            match part {
                SelectPart::Plain(v) => out.extend(v.dep_labels()),
                SelectPart::Selector(s) => {
                    for (condition, value) in &s.conditions {
                        if !is_default_condition(condition) {
                            out.push(condition);
                        }
                        out.extend(value.dep_labels());
                    }
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|l| seen.insert(*l));
        out
    }

    /// Bazel's rendering: `["a"] + select({"//c:x": ["b"], "//conditions:default": []})`.
    pub fn display(&self) -> String {
        self.parts
            .iter()
            .map(|part| match part {
                SelectPart::Plain(v) => v.display(),
                SelectPart::Selector(s) => {
                    let branches = s
                        .conditions
                        .iter()
                        .map(|(c, v)| {
                            let key = if is_default_condition(c) {
                                "//conditions:default".to_owned()
                            } else {
                                c.to_string()
                            };
                            format!(
                                "{}: {}",
                                serde_json::to_string(&key).unwrap_or_default(),
                                v.display()
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(", ");
                    match &s.no_match_error {
                        Some(e) => format!(
                            "select({{{branches}}}, no_match_error = {})",
                            serde_json::to_string(e).unwrap_or_default()
                        ),
                        None => format!("select({{{branches}}})"),
                    }
                }
            })
            .collect::<Vec<_>>()
            .join(" + ")
    }
}

impl AttrValue {
    /// The labels this value depends on (outputs are produced, not depended on).
    pub fn dep_labels(&self) -> Vec<&Label> {
        match self {
            AttrValue::Label(l) => vec![l],
            AttrValue::LabelList(ls) => ls.iter().collect(),
            AttrValue::LabelKeyedStringDict(kv) => kv.iter().map(|(l, _)| l).collect(),
            AttrValue::Select(s) => s.dep_labels(),
            _ => Vec::new(),
        }
    }

    /// The value as query's `attr()` and `--output=build` show it, Bazel style.
    pub fn display(&self) -> String {
        fn quote(s: &str) -> String {
            serde_json::to_string(s).unwrap_or_default()
        }
        fn list<T>(items: &[T], f: impl Fn(&T) -> String) -> String {
            format!("[{}]", items.iter().map(f).collect::<Vec<_>>().join(", "))
        }
        match self {
            AttrValue::None => "None".into(),
            AttrValue::Bool(b) => (if *b { "True" } else { "False" }).into(),
            AttrValue::Int(i) => i.to_string(),
            AttrValue::String(s) => quote(s),
            AttrValue::StringList(v) => list(v, |s| quote(s)),
            AttrValue::StringDict(kv) => format!(
                "{{{}}}",
                kv.iter()
                    .map(|(k, v)| format!("{}: {}", quote(k), quote(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            AttrValue::Label(l) | AttrValue::Output(l) => quote(&l.to_string()),
            AttrValue::LabelList(v) | AttrValue::OutputList(v) => {
                list(v, |l| quote(&l.to_string()))
            }
            AttrValue::LabelKeyedStringDict(kv) => format!(
                "{{{}}}",
                kv.iter()
                    .map(|(k, v)| format!("{}: {}", quote(&k.to_string()), quote(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            AttrValue::Select(s) => s.display(),
        }
    }
}

/// What kind of target a label names.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum TargetKind {
    /// An instance of a rule; `class` is the rule's name (`genrule`, `my_rule`).
    Rule(RuleTarget),
    /// A file in the source tree, declared by `exports_files` or referenced by a rule.
    SourceFile,
    /// A file a rule in the same package declares as an output.
    GeneratedFile { generating_rule: Label },
    /// `package_group(name, packages, includes)`.
    PackageGroup(PackageGroup),
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct RuleTarget {
    /// The rule's exported name, as users call it (`genrule`).
    pub class: String,
    /// Where the rule was defined: `@prelude//:genrule.bzl` or a user `.bzl` label.
    pub defined_in: String,
    /// Every attribute, with defaults filled in for those the call left out (kept once per
    /// rule class where targets share them, `rule_attrs`).
    pub attrs: super::rule_attrs::Attrs,
    /// The attributes the rule call gave explicitly (what `--output=build` prints).
    pub explicit: BTreeSet<String>,
    pub is_test: bool,
    pub is_executable: bool,
    /// When a macro made this target: the line inside the macro and the macro's name.
    pub macro_call: Option<MacroCall>,
    /// When the rule declared `build_setting = config.<type>(...)`: what the setting is.
    pub build_setting: Option<super::build_setting::BuildSetting>,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct MacroCall {
    /// The rule call inside the macro's `.bzl` file.
    pub location: Location,
    /// The outermost macro called from the BUILD file.
    pub function: String,
}

/// One entry of `package_group(packages = [...])`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum PackageSpec {
    /// `//pkg`
    Exact(PackageId),
    /// `//pkg/...`
    Recursive(PackageId),
    /// `public`
    All,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PackageGroup {
    pub packages: Vec<PackageSpec>,
    pub includes: Vec<Label>,
}

/// Who may depend on a target, as written after label resolution.
pub type Visibility = Vec<Label>;

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Target {
    pub label: Label,
    pub kind: TargetKind,
    /// The BUILD file line that created the target (for a macro, the macro's call site).
    pub location: Location,
    pub visibility: Visibility,
}

impl Target {
    /// Bazel's kind string: `genrule rule`, `source file`, `generated file`, `package group`.
    pub fn kind_name(&self) -> String {
        match &self.kind {
            TargetKind::Rule(r) => format!("{} rule", r.class),
            TargetKind::SourceFile => "source file".into(),
            TargetKind::GeneratedFile { .. } => "generated file".into(),
            TargetKind::PackageGroup(_) => "package group".into(),
        }
    }

    pub fn rule(&self) -> Option<&RuleTarget> {
        match &self.kind {
            TargetKind::Rule(r) => Some(r),
            _ => None,
        }
    }

    /// Outgoing dependency edges: `(attribute, label)`, in attribute order. A generated file
    /// depends on its rule; a package group on the groups it includes.
    pub fn deps(&self) -> Vec<(&str, &Label)> {
        match &self.kind {
            TargetKind::Rule(r) => r
                .attrs
                .iter()
                .filter(|(name, _)| *name != "visibility")
                .flat_map(|(name, v)| v.dep_labels().into_iter().map(move |l| (name, l)))
                .collect(),
            TargetKind::GeneratedFile { generating_rule } => vec![("", generating_rule)],
            TargetKind::PackageGroup(g) => g.includes.iter().map(|l| ("includes", l)).collect(),
            TargetKind::SourceFile => Vec::new(),
        }
    }
}

/// One loaded package: its targets and what its loading read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    pub id: PackageId,
    /// Absolute path of the package directory.
    pub dir: PathBuf,
    /// The BUILD file, as a label (`//pkg:BUILD` or `//pkg:BUILD.bazel`).
    pub build_file: Label,
    /// Every .bzl file loaded, directly or transitively, sorted.
    pub bzl_files: Vec<Label>,
    #[serde(deserialize_with = "sorted_map")]
    pub targets: BTreeMap<String, Target>,
    pub default_visibility: Visibility,
    pub features: Vec<String>,
}

impl Package {
    /// Keeps each rule's attributes once per rule class where its targets share them (a
    /// package read back from the store has every value of every target its own).
    pub fn share_attributes(&mut self) {
        for target in self.targets.values_mut() {
            if let TargetKind::Rule(rule) = &mut target.kind {
                rule.attrs
                    .share(&rule.class, &rule.defined_in, &rule.explicit);
            }
        }
    }
}

/// A map read back from the package store: its entries were written in key order, so they
/// are collected and built in one go (`BTreeMap::from_iter` builds sorted input in linear
/// time) instead of being inserted one by one, which compared keys for every entry and was
/// the largest cost of reading a stored package.
fn sorted_map<'de, D, K, V>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
where
    D: serde::Deserializer<'de>,
    K: Deserialize<'de> + Ord,
    V: Deserialize<'de>,
{
    struct Entries<K, V>(std::marker::PhantomData<(K, V)>);

    impl<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>> serde::de::Visitor<'de>
        for Entries<K, V>
    {
        type Value = BTreeMap<K, V>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a map")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
            while let Some(entry) = map.next_entry()? {
                entries.push(entry);
            }
            Ok(entries.into_iter().collect())
        }
    }

    deserializer.deserialize_map(Entries(std::marker::PhantomData))
}

//! A rule called in a BUILD file (or a macro one calls): its keyword arguments in, checked
//! against the declared and implicit attributes, and a plain-Rust `Target` (with its
//! predeclared output files) out, recorded in the package being loaded.

use std::collections::BTreeMap;

use starlark::eval::Evaluator;
use starlark::values::Value;

use super::attrs::{AttrKind, AttrSpec};
use super::context::EvalContext;
use super::diagnostics::location_of;
use super::rule_value::FrozenRuleCallable;
use super::target::{AttrValue, MacroCall, RuleTarget, Target, TargetKind};
use crate::core::diag::did_you_mean;
use crate::core::label::validate_name;
use crate::core::{Label, Location, PackageId};

/// Attributes every rule has without declaring them.
pub(super) fn implicit_attrs(executable: bool, test: bool) -> Vec<(&'static str, AttrSpec)> {
    let with_default = |kind, default: AttrValue| {
        let mut spec = AttrSpec::new(kind);
        spec.default = Some(default);
        spec
    };
    let mut attrs = vec![
        ("visibility", AttrSpec::new(AttrKind::LabelList)),
        ("tags", AttrSpec::new(AttrKind::StringList)),
        (
            "testonly",
            with_default(AttrKind::Bool, AttrValue::Bool(test)),
        ),
        ("deprecation", AttrSpec::new(AttrKind::String)),
        ("features", AttrSpec::new(AttrKind::StringList)),
        ("licenses", AttrSpec::new(AttrKind::StringList)),
        ("compatible_with", AttrSpec::new(AttrKind::LabelList)),
        ("restricted_to", AttrSpec::new(AttrKind::LabelList)),
        ("target_compatible_with", AttrSpec::new(AttrKind::LabelList)),
        ("exec_compatible_with", AttrSpec::new(AttrKind::LabelList)),
        ("exec_properties", AttrSpec::new(AttrKind::StringDict)),
    ];
    if executable || test {
        attrs.push(("args", AttrSpec::new(AttrKind::StringList)));
        attrs.push(("env", AttrSpec::new(AttrKind::StringDict)));
        attrs.push(("output_licenses", AttrSpec::new(AttrKind::StringList)));
    }
    if test {
        let strings = |v: &[&str]| v.iter().map(|s| AttrValue::String((*s).into())).collect();
        let mut size = with_default(AttrKind::String, AttrValue::String("medium".into()));
        size.values = strings(&["small", "medium", "large", "enormous"]);
        let mut timeout = AttrSpec::new(AttrKind::String);
        timeout.values = strings(&["short", "moderate", "long", "eternal"]);
        attrs.push(("size", size));
        attrs.push(("timeout", timeout));
        attrs.push(("flaky", AttrSpec::new(AttrKind::Bool)));
        attrs.push((
            "shard_count",
            with_default(AttrKind::Int, AttrValue::Int(-1)),
        ));
        attrs.push(("local", AttrSpec::new(AttrKind::Bool)));
    }
    attrs
}

/// A test's timeout when only its size is given, as Bazel derives it.
fn timeout_for_size(size: &str) -> &'static str {
    match size {
        "small" => "short",
        "large" => "long",
        "enormous" => "eternal",
        _ => "moderate",
    }
}

/// Where a rule call happened: the BUILD line, and the line inside a macro when one made it.
fn call_site(eval: &Evaluator) -> (Location, Option<MacroCall>) {
    let stack = eval.call_stack();
    // Each frame names the function called and where it was called from; the first is the
    // call in the BUILD file, the last the rule call itself.
    let located: Vec<_> = stack
        .frames
        .iter()
        .filter_map(|f| f.location.as_ref().map(|l| (f.name.as_str(), l)))
        .collect();
    let Some((outermost, build_span)) = located.first() else {
        return (Location::default(), None);
    };
    let build = location_of(build_span);
    let macro_call = if located.len() > 1 {
        let (_, inner) = located[located.len() - 1];
        Some(MacroCall {
            location: location_of(inner),
            function: (*outermost).to_owned(),
        })
    } else {
        None
    };
    (build, macro_call)
}

impl FrozenRuleCallable {
    /// Checks a rule call and adds its target (and its output files) to the package.
    pub(super) fn instantiate<'v>(
        &self,
        rule: &str,
        kwargs: &[(String, Value<'v>)],
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<()> {
        let ctx = EvalContext::from_eval(eval)?;
        ctx.package(&format!("the rule '{rule}'"))?;
        let base = ctx.base.clone();
        let (location, macro_call) = call_site(eval);

        let name_value = kwargs
            .iter()
            .find(|(k, _)| k == "name")
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                anyhow::anyhow!("{rule} rule: missing value for mandatory attribute 'name'")
            })?;
        if super::select::SelectorList::from_value(name_value).is_some() {
            anyhow::bail!(
                "{rule} rule: attribute 'name' is not configurable: it cannot be given with select()"
            );
        }
        let name = name_value.unpack_str().ok_or_else(|| {
            anyhow::anyhow!(
                "{rule} rule: 'name' must be a string, got {}",
                name_value.get_type()
            )
        })?;
        validate_name(name).map_err(|e| anyhow::anyhow!("{rule} rule: {}", e.reason))?;
        let label = base.label(name);

        let implicit = implicit_attrs(self.decl.executable, self.decl.test);
        let spec_of = |attr: &str| -> Option<&AttrSpec> {
            implicit
                .iter()
                .find(|(n, _)| *n == attr)
                .map(|(_, s)| s)
                .or_else(|| {
                    self.decl
                        .attrs
                        .iter()
                        .find(|(n, _)| n == attr)
                        .map(|(_, s)| s)
                })
        };

        let mut attrs: BTreeMap<String, AttrValue> = BTreeMap::new();
        let mut explicit = std::collections::BTreeSet::new();
        for (key, value) in kwargs {
            if key == "name" {
                continue;
            }
            let Some(spec) = spec_of(key).filter(|_| !key.starts_with('_')) else {
                let known = implicit
                    .iter()
                    .map(|(n, _)| *n)
                    .chain(self.decl.attrs.iter().map(|(n, _)| n.as_str()))
                    .filter(|n| !n.starts_with('_'));
                let hint = did_you_mean(key, known)
                    .map(|c| format!(" (did you mean '{c}'?)"))
                    .unwrap_or_default();
                anyhow::bail!("{rule} rule '{name}': no such attribute '{key}'{hint}");
            };
            if value.is_none() && !matches!(spec.kind, AttrKind::Label | AttrKind::Output) {
                // `attr = None` means "use the default", as in Bazel.
                continue;
            }
            let what = format!("attribute '{key}' of {rule} rule '{label}'");
            let coerced =
                if let Some(v) = super::select::coerce_select(key, spec, &what, *value, &base)? {
                    v
                } else if key == "visibility" {
                    visibility(value, &base, &what)?
                } else {
                    spec.coerce(&what, *value, &base)?
                };
            attrs.insert(key.clone(), coerced);
            explicit.insert(key.clone());
        }

        for (attr_name, spec) in implicit
            .iter()
            .map(|(n, s)| (*n, s))
            .chain(self.decl.attrs.iter().map(|(n, s)| (n.as_str(), s)))
        {
            if attrs.contains_key(attr_name) {
                continue;
            }
            if spec.mandatory {
                anyhow::bail!(
                    "{rule} rule '{label}': missing value for mandatory attribute '{attr_name}'"
                );
            }
            if self.computed_defaults.iter().any(|(a, _)| a == attr_name) {
                continue;
            }
            attrs.insert(attr_name.to_owned(), spec.default_value());
        }
        // Computed defaults see the other attributes' final values, so they come last.
        for (attr_name, function) in &self.computed_defaults {
            if attrs.contains_key(attr_name) {
                continue;
            }
            let spec =
                spec_of(attr_name).expect("a computed default belongs to a declared attribute");
            let what =
                format!("the computed default of attribute '{attr_name}' of {rule} rule '{label}'");
            let value =
                super::computed_default::evaluate(function.to_value(), &attrs, &what, eval)?;
            let coerced = if value.is_none() {
                spec.kind.empty()
            } else {
                spec.coerce(&what, value, &base)?
            };
            attrs.insert(attr_name.clone(), coerced);
        }
        if self.decl.test
            && matches!(attrs.get("timeout"), Some(AttrValue::String(t)) if t.is_empty())
        {
            let size = match attrs.get("size") {
                Some(AttrValue::String(s)) => s.clone(),
                _ => String::new(),
            };
            attrs.insert(
                "timeout".into(),
                AttrValue::String(timeout_for_size(&size).into()),
            );
        }
        for (key, template) in &self.decl.outputs {
            let file = expand_output_template(template, name, &attrs).map_err(|e| {
                anyhow::anyhow!("{rule} rule '{label}': predeclared output '{key}': {e}")
            })?;
            let out = Label::parse(&file, &base).map_err(|e| {
                anyhow::anyhow!("{rule} rule '{label}': predeclared output '{key}': {e}")
            })?;
            attrs.insert(key.clone(), AttrValue::Output(out));
        }

        let ctx = EvalContext::from_eval(eval)?;
        let mut package = ctx.package(&format!("the rule '{rule}'"))?.borrow_mut();
        // Bazel's native test_suite is testonly unless it says otherwise: it exists to
        // name tests, which are testonly.
        if rule == "test_suite"
            && self
                .decl
                .defined_in
                .starts_with(&format!("@{}//", super::prelude::REPO))
            && !explicit.contains("testonly")
        {
            attrs.insert("testonly".into(), AttrValue::Bool(true));
        }
        for (attr, value) in package.attr_defaults.iter() {
            // A test is always testonly.
            if !(explicit.contains(attr) || self.decl.test && attr == "testonly") {
                attrs.insert(attr.clone(), value.clone());
            }
        }
        let visibility = match attrs.get("visibility") {
            Some(AttrValue::LabelList(v)) if !v.is_empty() => v.clone(),
            _ => {
                let v = package
                    .default_visibility
                    .clone()
                    .unwrap_or_else(|| vec![private()]);
                attrs.insert("visibility".into(), AttrValue::LabelList(v.clone()));
                v
            }
        };
        let outputs: Vec<Label> = attrs
            .values()
            .flat_map(|v| match v {
                AttrValue::Output(l) => vec![l.clone()],
                AttrValue::OutputList(ls) => ls.clone(),
                _ => Vec::new(),
            })
            .collect();
        let referenced: Vec<Label> = attrs
            .iter()
            .filter(|(k, _)| k.as_str() != "visibility")
            .flat_map(|(_, v)| v.dep_labels())
            .filter(|l| l.package_id() == base)
            .cloned()
            .collect();
        package.add(Target {
            label: label.clone(),
            kind: TargetKind::Rule(RuleTarget {
                class: rule.to_owned(),
                defined_in: self.decl.defined_in.clone(),
                attrs: super::rule_attrs::Attrs::of_class(
                    rule,
                    &self.decl.defined_in,
                    attrs,
                    &explicit,
                ),
                explicit,
                is_test: self.decl.test,
                is_executable: self.decl.executable || self.decl.test,
                macro_call,
                build_setting: self.decl.build_setting,
            }),
            location: location.clone(),
            visibility: visibility.clone(),
        })?;
        for out in outputs {
            package.add(Target {
                label: out,
                kind: TargetKind::GeneratedFile {
                    generating_rule: label.clone(),
                },
                location: location.clone(),
                visibility: visibility.clone(),
            })?;
        }
        package
            .referenced
            .extend(referenced.into_iter().map(|l| (l, location.clone())));
        Ok(())
    }
}

/// `%{name}` and `%{attr}` (a string attribute) in a predeclared output template.
fn expand_output_template(
    template: &str,
    name: &str,
    attrs: &BTreeMap<String, AttrValue>,
) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("%{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| anyhow::anyhow!("unterminated '%{{' in '{template}'"))?;
        let key = &after[..end];
        match (key, attrs.get(key)) {
            ("name", _) => out.push_str(name),
            (_, Some(AttrValue::String(s))) => out.push_str(s),
            _ => anyhow::bail!("'%{{{key}}}' in '{template}' is not 'name' or a string attribute"),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Visibility labels: `//visibility:public`, `//visibility:private`, `//pkg:__pkg__`,
/// `//pkg:__subpackages__` and package groups.
pub fn visibility(value: &Value, base: &PackageId, what: &str) -> anyhow::Result<AttrValue> {
    let spec = AttrSpec::new(AttrKind::LabelList);
    let AttrValue::LabelList(mut labels) = spec.coerce(what, *value, base)? else {
        unreachable!("label_list coerces to a label list")
    };
    // `//visibility:public` and `//visibility:private` mean the same in every repository.
    for l in &mut labels {
        if l.package == "visibility" && matches!(l.name.as_str(), "public" | "private") {
            l.repo.clear();
        }
    }
    for l in &labels {
        if l.repo.is_empty()
            && l.package == "visibility"
            && !matches!(l.name.as_str(), "public" | "private")
        {
            anyhow::bail!(
                "in {what}: '{l}' is not a valid visibility; use '//visibility:public', \
                 '//visibility:private', '//pkg:__pkg__', '//pkg:__subpackages__' or a package_group"
            );
        }
    }
    if labels.len() > 1
        && labels
            .iter()
            .any(|l| l.package == "visibility" && l.repo.is_empty())
    {
        anyhow::bail!(
            "in {what}: '//visibility:public' and '//visibility:private' cannot be combined with other labels"
        );
    }
    Ok(AttrValue::LabelList(labels))
}

/// `//visibility:private`, what a target without any visibility declaration gets.
pub fn private() -> Label {
    Label {
        repo: String::new(),
        package: "visibility".into(),
        name: "private".into(),
    }
}

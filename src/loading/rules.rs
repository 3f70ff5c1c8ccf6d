//! `rule()` and `provider()`: in a .bzl file they declare a rule kind or a provider; calling a
//! rule in a BUILD file checks its arguments against the declared attributes and records a
//! plain-Rust `Target` in the package being loaded.

// Starlark functions take Bazel's keyword parameters one Rust argument each.
#![allow(clippy::too_many_arguments)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use allocative::Allocative;
use starlark::codemap::FileSpan;
use starlark::environment::GlobalsBuilder;
use starlark::eval::{Arguments, Evaluator};
use starlark::starlark_module;
use starlark::values::dict::DictRef;
use starlark::values::{
    Freeze, FreezeResult, Freezer, FrozenValue, Heap, NoSerialize, ProvidesStaticType,
    StarlarkValue, Trace, Value, ValueLike, starlark_value,
};

use super::attrs::{AttrKind, AttrSpec, Attribute};
use super::context::EvalContext;
use super::target::{AttrValue, MacroCall, RuleTarget, Target, TargetKind};
use super::values::ProviderCallable;
use crate::core::diag::did_you_mean;
use crate::core::label::validate_name;
use crate::core::{Label, Location, PackageId};

/// Everything `rule()` declared, shared by the unfrozen and frozen callables.
#[derive(Debug)]
pub struct RuleDecl {
    /// `<bzl label>` the rule was defined in.
    pub defined_in: String,
    pub attrs: Vec<(String, AttrSpec)>,
    pub executable: bool,
    pub test: bool,
    /// Predeclared outputs: attribute-like name -> template such as `%{name}.txt`.
    pub outputs: Vec<(String, String)>,
    pub doc: String,
    /// `provides = [...]`: the ids of providers the implementation must return.
    pub provides: Vec<String>,
}

/// `rule(...)` before its module is frozen: it learns its name from `x = rule(...)`.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative, Trace)]
pub struct RuleCallable<'v> {
    implementation: Value<'v>,
    #[allocative(skip)]
    #[trace(static)]
    decl: Arc<RuleDecl>,
    #[allocative(skip)]
    #[trace(static)]
    name: RefCell<Option<String>>,
}

impl fmt::Display for RuleCallable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.name.borrow() {
            Some(n) => write!(f, "<rule {n}>"),
            None => write!(f, "<rule>"),
        }
    }
}

impl<'v> starlark::values::AllocValue<'v> for RuleCallable<'v> {
    fn alloc_value(self, heap: Heap<'v>) -> Value<'v> {
        heap.alloc_complex(self)
    }
}

#[starlark_value(type = "rule")]
impl<'v> StarlarkValue<'v> for RuleCallable<'v> {
    fn export_as(
        &self,
        variable_name: &str,
        _eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<()> {
        let mut name = self.name.borrow_mut();
        if name.is_none() {
            check_rule_name(variable_name, self.decl.test).map_err(starlark::Error::new_native)?;
            *name = Some(variable_name.to_owned());
        }
        Ok(())
    }

    fn invoke(
        &self,
        _me: Value<'v>,
        _args: &Arguments<'v, '_>,
        _eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<Value<'v>> {
        Err(starlark::Error::new_native(anyhow::anyhow!(
            "a rule can only be called after the .bzl file that defines it has finished loading; \
             call it from a BUILD file or a macro"
        )))
    }
}

impl<'v> Freeze for RuleCallable<'v> {
    type Frozen = FrozenRuleCallable;

    fn freeze(self, freezer: &Freezer) -> FreezeResult<FrozenRuleCallable> {
        let name = self.name.into_inner().ok_or_else(|| {
            starlark::values::FreezeError::new(format!(
                "a rule defined in {} must be assigned to a global variable (`my_rule = rule(...)`)",
                self.decl.defined_in
            ))
        })?;
        Ok(FrozenRuleCallable {
            implementation: self.implementation.freeze(freezer)?,
            decl: self.decl,
            name,
        })
    }
}

/// A rule kind ready to be called from BUILD files.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct FrozenRuleCallable {
    pub implementation: FrozenValue,
    #[allocative(skip)]
    pub decl: Arc<RuleDecl>,
    pub name: String,
}

impl fmt::Display for FrozenRuleCallable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<rule {}>", self.name)
    }
}

starlark::starlark_simple_value!(FrozenRuleCallable);

#[starlark_value(type = "rule")]
impl<'v> StarlarkValue<'v> for FrozenRuleCallable {
    type Canonical = RuleCallable<'v>;

    fn invoke(
        &self,
        _me: Value<'v>,
        args: &Arguments<'v, '_>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<Value<'v>> {
        args.no_positional_args(eval.heap())?;
        let named = args.names_map()?;
        let kwargs: Vec<(String, Value<'v>)> = named
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), *v))
            .collect();
        self.instantiate(&kwargs, eval)
            .map_err(starlark::Error::new_native)?;
        Ok(Value::new_none())
    }
}

/// Bazel's naming rule: test rules end in `_test`, other rules do not.
fn check_rule_name(name: &str, test: bool) -> anyhow::Result<()> {
    match (test, name.ends_with("_test")) {
        (true, false) => anyhow::bail!(
            "invalid rule name '{name}': test rules (test = True) must have names ending in '_test'"
        ),
        (false, true) => anyhow::bail!(
            "invalid rule name '{name}': only test rules (test = True) may have names ending in '_test'"
        ),
        _ => Ok(()),
    }
}

/// Attributes every rule has without declaring them.
fn implicit_attrs(executable: bool, test: bool) -> Vec<(&'static str, AttrSpec)> {
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

pub fn location_of(span: &FileSpan) -> Location {
    let resolved = span.resolve();
    Location {
        file: resolved.file,
        line: resolved.span.begin.line as u32 + 1,
        column: resolved.span.begin.column as u32 + 1,
    }
}

impl FrozenRuleCallable {
    /// Checks a rule call and adds its target (and its output files) to the package.
    fn instantiate<'v>(
        &self,
        kwargs: &[(String, Value<'v>)],
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<()> {
        let ctx = EvalContext::from_eval(eval)?;
        let package = ctx.package(&format!("the rule '{}'", self.name))?;
        let base = ctx.base.clone();
        let (location, macro_call) = call_site(eval);
        let rule = &self.name;

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
        validate_name(name).map_err(|e| anyhow::anyhow!("{rule} rule: {e}"))?;
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
            attrs.insert(attr_name.to_owned(), spec.default_value());
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

        let mut package = package.borrow_mut();
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
                class: self.name.clone(),
                defined_in: self.decl.defined_in.clone(),
                attrs,
                explicit,
                is_test: self.decl.test,
                is_executable: self.decl.executable || self.decl.test,
                macro_call,
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

fn field_names<'v>(value: Value<'v>, heap: Heap<'v>) -> anyhow::Result<Vec<String>> {
    if let Some(dict) = DictRef::from_value(value) {
        return dict
            .keys()
            .map(|k| {
                k.unpack_str()
                    .map(str::to_owned)
                    .ok_or_else(|| anyhow::anyhow!("provider field names must be strings"))
            })
            .collect();
    }
    value
        .iterate(heap)
        .map_err(|_| {
            anyhow::anyhow!("provider fields must be a list of names or a dict of name to doc")
        })?
        .map(|k| {
            k.unpack_str()
                .map(str::to_owned)
                .ok_or_else(|| anyhow::anyhow!("provider field names must be strings"))
        })
        .collect()
}

/// `rule(provides = [...])` as provider ids.
fn provided<'v>(value: Value<'v>, heap: Heap<'v>) -> anyhow::Result<Vec<String>> {
    if value.is_none() {
        return Ok(Vec::new());
    }
    let items = value
        .iterate(heap)
        .map_err(|_| anyhow::anyhow!("rule(): 'provides' must be a list of providers"))?;
    items
        .map(|p| {
            super::values::provider_callable(p)
                .map(|c| c.id())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "rule(): 'provides' must be a list of providers, got {}",
                        p.get_type()
                    )
                })
        })
        .collect()
}

/// `rule()`, `provider()`: what .bzl files use to declare things.
#[starlark_module]
pub fn declaration_globals(builder: &mut GlobalsBuilder) {
    fn rule<'v>(
        #[starlark(require = named)] implementation: Value<'v>,
        #[starlark(require = named)] attrs: Option<Value<'v>>,
        #[starlark(require = named, default = false)] executable: bool,
        #[starlark(require = named, default = false)] test: bool,
        #[starlark(require = named)] outputs: Option<Value<'v>>,
        #[starlark(require = named, default = String::new())] doc: String,
        #[starlark(kwargs)] kwargs: starlark::values::dict::DictRef<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<RuleCallable<'v>> {
        let ctx = EvalContext::from_eval(eval)?;
        if matches!(ctx.kind, super::context::FileKind::Build(_)) {
            anyhow::bail!("rule() can only be called in a .bzl file, not in a BUILD file");
        }
        // Options Bazel accepts that change nothing in forge's single configuration: config
        // fragment permissions, the genfiles directory (forge's is the bin directory), the
        // toolchain-transition migration flag, a testing hook, and exec platform
        // constraints (the one exec platform is this machine).
        const NO_EFFECT: &[&str] = &[
            "fragments",
            "host_fragments",
            "output_to_genfiles",
            "incompatible_use_toolchain_transition",
            "_skylark_testable",
            "exec_compatible_with",
        ];
        // Options forge cannot honour: refused when given a value that means something.
        const REFUSED: &[(&str, &str)] = &[
            ("toolchains", "forge has no toolchain resolution"),
            ("exec_groups", "forge has no execution groups"),
            ("cfg", "forge has no configuration transitions"),
            ("build_setting", "forge has no user-defined build settings"),
            ("analysis_test", "forge has no analysis tests"),
            ("initializer", "forge does not run rule initializers"),
            ("subrules", "forge has no subrules"),
            ("parent", "forge does not extend rules"),
            (
                "dependency_resolution_rule",
                "forge has no dependency resolution rules",
            ),
        ];
        let mut provides = Vec::new();
        for (k, v) in kwargs.iter() {
            let k = k.unpack_str().unwrap_or_default();
            if k == "provides" {
                provides = provided(v, eval.heap())?;
                continue;
            }
            if NO_EFFECT.contains(&k) {
                continue;
            }
            let Some((_, why)) = REFUSED.iter().find(|(name, _)| *name == k) else {
                anyhow::bail!("rule() got an unexpected keyword argument '{k}'");
            };
            let meaningless =
                v.is_none() || v.unpack_bool() == Some(false) || v.length().is_ok_and(|n| n == 0);
            if !meaningless {
                anyhow::bail!(
                    "rule(): '{k} = {}' is not supported: {why}; remove it",
                    v.to_repr()
                );
            }
        }
        if !implementation.get_type().contains("function") {
            anyhow::bail!(
                "rule(): 'implementation' must be a function, got {}",
                implementation.get_type()
            );
        }
        let implicit: Vec<&str> = implicit_attrs(executable, test)
            .iter()
            .map(|(n, _)| *n)
            .collect();
        let mut declared = Vec::new();
        if let Some(attrs) = attrs.filter(|a| !a.is_none()) {
            let dict = DictRef::from_value(attrs).ok_or_else(|| {
                anyhow::anyhow!("rule(): 'attrs' must be a dict of name to attr.*()")
            })?;
            for (k, v) in dict.iter() {
                let name = k
                    .unpack_str()
                    .ok_or_else(|| anyhow::anyhow!("rule(): attribute names must be strings"))?;
                let attr = v.downcast_ref::<Attribute>().ok_or_else(|| {
                    anyhow::anyhow!(
                        "rule(): attribute '{name}' must be made with attr.*(), got {}",
                        v.get_type()
                    )
                })?;
                if name == "name" || implicit.contains(&name) {
                    anyhow::bail!(
                        "rule(): there is already a built-in attribute '{name}' which cannot be overridden"
                    );
                }
                declared.push((name.to_owned(), attr.spec.clone()));
            }
        }
        let mut predeclared = Vec::new();
        if let Some(outputs) = outputs.filter(|o| !o.is_none()) {
            let dict = DictRef::from_value(outputs).ok_or_else(|| {
                anyhow::anyhow!("rule(): 'outputs' must be a dict of name to file name template")
            })?;
            for (k, v) in dict.iter() {
                let (Some(k), Some(v)) = (k.unpack_str(), v.unpack_str()) else {
                    anyhow::bail!("rule(): 'outputs' must map strings to strings");
                };
                if declared.iter().any(|(n, _)| n == k) {
                    anyhow::bail!("rule(): output '{k}' has the same name as an attribute");
                }
                predeclared.push((k.to_owned(), v.to_owned()));
            }
        }
        Ok(RuleCallable {
            implementation,
            decl: Arc::new(RuleDecl {
                defined_in: ctx.file.to_string(),
                attrs: declared,
                executable,
                test,
                outputs: predeclared,
                doc,
                provides,
            }),
            name: RefCell::new(None),
        })
    }

    fn provider<'v>(
        #[starlark(require = pos)] doc_pos: Option<String>,
        #[starlark(require = named)] doc: Option<String>,
        #[starlark(require = named)] fields: Option<Value<'v>>,
        #[starlark(require = named)] init: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let ctx = EvalContext::from_eval(eval)?;
        let heap = eval.heap();
        let fields = match fields {
            Some(f) if !f.is_none() => field_names(f, heap)?,
            _ => Vec::new(),
        };
        let provider = heap.alloc(ProviderCallable::new(
            ctx.file.to_string(),
            fields,
            doc.or(doc_pos).unwrap_or_default(),
        ));
        match init.filter(|i| !i.is_none()) {
            None => Ok(provider),
            // As in Bazel: the provider, whose calls go through `init`, and the raw constructor.
            Some(init) => {
                if !init.get_type().contains("function") {
                    anyhow::bail!(
                        "provider(): 'init' must be a function, got {}",
                        init.get_type()
                    );
                }
                let with_init = heap.alloc(super::values::ProviderWithInitGen { provider, init });
                Ok(heap.alloc((with_init, provider)))
            }
        }
    }
}

/// `//visibility:private`, what a target without any visibility declaration gets.
pub fn private() -> Label {
    Label {
        repo: String::new(),
        package: "visibility".into(),
        name: "private".into(),
    }
}

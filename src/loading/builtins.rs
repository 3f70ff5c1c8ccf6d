//! Functions BUILD files call besides rules: `glob`, `package`, `exports_files`,
//! `package_group`, `package_name`, `repository_name`, `licenses`, `existing_rule(s)`,
//! `package_relative_label`. Each reads or extends the package under construction in the
//! evaluation context.

// Starlark functions take Bazel's keyword parameters one Rust argument each.
#![allow(clippy::too_many_arguments)]

use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::dict::AllocDict;
use starlark::values::list_or_tuple::UnpackListOrTuple;
use starlark::values::none::NoneType;
use starlark::values::tuple::AllocTuple;
use starlark::values::{Heap, Value, ValueLike};

use super::attrs::{AttrKind, AttrSpec};
use super::context::EvalContext;
use super::diagnostics::location_of;
use super::glob::{self, Pattern};
use super::label_value::LabelValue;
use super::rule_call::visibility;
use super::select::alloc_select;
use super::target::{
    AttrValue, PackageGroup, PackageSpec, SelectPart, Target, TargetKind, is_default_condition,
};
use crate::core::{Label, Location, PackageId};

fn patterns(list: &[String]) -> anyhow::Result<Vec<Pattern>> {
    list.iter()
        .map(|p| Pattern::new(p).map_err(anyhow::Error::from))
        .collect()
}

fn here(eval: &Evaluator) -> Location {
    eval.call_stack()
        .frames
        .iter()
        .find_map(|f| f.location.as_ref())
        .map(location_of)
        .unwrap_or_default()
}

fn string_list(what: &str, value: Value, base: &PackageId) -> anyhow::Result<Vec<String>> {
    match AttrSpec::new(AttrKind::StringList).coerce(what, value, base)? {
        AttrValue::StringList(v) => Ok(v),
        _ => unreachable!("string_list coerces to a string list"),
    }
}

#[starlark_module]
pub fn build_globals(builder: &mut GlobalsBuilder) {
    /// Files of this package matching `include` and none of `exclude`, sorted. Never descends
    /// into a subpackage.
    fn glob<'v>(
        #[starlark(require = pos)] include: Option<UnpackListOrTuple<String>>,
        #[starlark(require = pos)] exclude_pos: Option<UnpackListOrTuple<String>>,
        #[starlark(require = named)] exclude: Option<UnpackListOrTuple<String>>,
        #[starlark(require = named, default = 1)] exclude_directories: i32,
        #[starlark(require = named)] allow_empty: Option<bool>,
        #[starlark(require = named)] include_named: Option<UnpackListOrTuple<String>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Vec<String>> {
        let ctx = EvalContext::from_eval(eval)?;
        let mut package = ctx.package("glob()")?.borrow_mut();
        let package = &mut *package;
        let include = include
            .or(include_named)
            .map(|l| l.items)
            .unwrap_or_default();
        let exclude = exclude.or(exclude_pos).map(|l| l.items).unwrap_or_default();
        let found = glob::glob(
            &package.dir,
            &patterns(&include)?,
            &patterns(&exclude)?,
            exclude_directories != 0,
            &mut package.reads,
        );
        if found.is_empty() && allow_empty == Some(false) {
            anyhow::bail!(
                "glob({include:?}) matched no files and allow_empty = False; check the patterns \
                 or allow an empty result"
            );
        }
        Ok(found)
    }

    /// Package-wide defaults; must come before the first rule.
    fn package<'v>(
        #[starlark(require = named)] default_visibility: Option<Value<'v>>,
        #[starlark(require = named)] features: Option<Value<'v>>,
        #[starlark(require = named)] default_testonly: Option<Value<'v>>,
        #[starlark(require = named)] default_deprecation: Option<String>,
        #[starlark(require = named)] licenses: Option<Value<'v>>,
        #[starlark(require = named)] default_applicable_licenses: Option<Value<'v>>,
        #[starlark(require = named)] default_package_metadata: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        // License metadata has no effect on a build (in Bazel neither, unless licenses are
        // checked, which forge does not do); `licenses` is recorded as `licenses()` does,
        // the rest accepted so that BUILD files load.
        let _: [Option<Value>; 2] = [default_applicable_licenses, default_package_metadata];
        let ctx = EvalContext::from_eval(eval)?;
        let mut package = ctx.package("package()")?.borrow_mut();
        if package.package_called {
            anyhow::bail!("package() can only be called once per BUILD file");
        }
        if !package.targets.is_empty() {
            anyhow::bail!("package() must be called before any rule in the BUILD file");
        }
        package.package_called = true;
        if let Some(v) = default_visibility {
            let AttrValue::LabelList(labels) = visibility(&v, &ctx.base, "default_visibility")?
            else {
                unreachable!()
            };
            package.default_visibility = Some(labels);
        }
        if let Some(f) = features {
            package.features = string_list("features", f, &ctx.base)?;
        }
        // A `licenses()` call before package() stays recorded.
        let mut defaults: Vec<(String, AttrValue)> = package
            .attr_defaults
            .iter()
            .filter(|(name, _)| name == "licenses")
            .cloned()
            .collect();
        if let Some(l) = licenses {
            let list = string_list("licenses", l, &ctx.base)?;
            defaults.retain(|(name, _)| name != "licenses");
            defaults.push(("licenses".to_owned(), AttrValue::StringList(list)));
        }
        if let Some(t) = default_testonly {
            // Coerced as the attribute it sets: Bazel takes 0 and 1 for a bool there.
            let spec = super::attrs::AttrSpec::new(super::attrs::AttrKind::Bool);
            let what = "package(): default_testonly";
            defaults.push(("testonly".to_owned(), spec.coerce(what, t, &ctx.base)?));
        }
        if let Some(d) = default_deprecation {
            defaults.push(("deprecation".to_owned(), AttrValue::String(d)));
        }
        package.attr_defaults = defaults.into_boxed_slice();
        Ok(NoneType)
    }

    /// Declares source files other packages may use.
    fn exports_files<'v>(
        #[starlark(require = pos)] srcs: Value<'v>,
        #[starlark(require = pos)] visibility_pos: Option<Value<'v>>,
        #[starlark(require = named)] visibility: Option<Value<'v>>,
        #[starlark(require = named)] licenses: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        // License metadata, which no build reads (Bazel's neither unless it checks licenses).
        let _: Option<Value> = licenses;
        let location = here(eval);
        let ctx = EvalContext::from_eval(eval)?;
        let mut package = ctx.package("exports_files()")?.borrow_mut();
        let names = string_list("exports_files", srcs, &ctx.base)?;
        let vis = match visibility.or(visibility_pos) {
            Some(v) if !v.is_none() => {
                match super::rule_call::visibility(&v, &ctx.base, "exports_files visibility")? {
                    AttrValue::LabelList(l) => l,
                    _ => unreachable!(),
                }
            }
            _ => vec![public()],
        };
        for name in names {
            let label = Label::parse(&name, &ctx.base)?;
            if label.package_id() != ctx.base {
                anyhow::bail!(
                    "exports_files: '{name}' is not a file of package '{}'",
                    ctx.base.package
                );
            }
            if let Some(existing) = package.targets.get_mut(&label.name)
                && matches!(existing.kind, TargetKind::SourceFile)
            {
                existing.visibility = vis.clone();
                continue;
            }
            package.add(Target {
                label,
                kind: TargetKind::SourceFile,
                location: location.clone(),
                visibility: vis.clone(),
            })?;
        }
        Ok(NoneType)
    }

    /// A named set of packages, for use in visibility.
    fn package_group<'v>(
        #[starlark(require = named)] name: String,
        #[starlark(require = named)] packages: Option<UnpackListOrTuple<String>>,
        #[starlark(require = named)] includes: Option<UnpackListOrTuple<String>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let location = here(eval);
        let ctx = EvalContext::from_eval(eval)?;
        let mut package = ctx.package("package_group()")?.borrow_mut();
        let specs = packages
            .map(|p| p.items)
            .unwrap_or_default()
            .iter()
            .map(|p| package_spec(p, &ctx.base))
            .filter_map(Result::transpose)
            .collect::<anyhow::Result<Vec<_>>>()?;
        let includes = includes
            .map(|p| p.items)
            .unwrap_or_default()
            .iter()
            .map(|l| Label::parse(l, &ctx.base).map_err(anyhow::Error::from))
            .collect::<anyhow::Result<Vec<_>>>()?;
        crate::core::label::validate_name(&name).map_err(|e| anyhow::Error::msg(e.reason))?;
        package.add(Target {
            label: ctx.base.label(&name),
            kind: TargetKind::PackageGroup(PackageGroup {
                packages: specs,
                includes,
            }),
            location,
            visibility: vec![public()],
        })?;
        Ok(NoneType)
    }

    /// The package being evaluated, e.g. `foo/bar`.
    fn package_name<'v>(eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<String> {
        let ctx = EvalContext::from_eval(eval)?;
        ctx.package("package_name()")?;
        Ok(ctx.base.package.clone())
    }

    /// The repository of the package being evaluated: `@` for the main one, `@name` otherwise.
    fn repository_name<'v>(eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<String> {
        let ctx = EvalContext::from_eval(eval)?;
        ctx.package("repository_name()")?;
        Ok(format!("@{}", ctx.base.repo))
    }

    /// Prints a debugging message as `DEBUG: file:line:col: message`, as Bazel does.
    fn print<'v>(
        #[starlark(args)] args: starlark::values::tuple::UnpackTuple<Value<'v>>,
        #[starlark(require = named, default = " ")] sep: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let message = args
            .items
            .iter()
            .map(|v| match v.unpack_str() {
                Some(text) => text.to_owned(),
                None => bazel_repr(*v),
            })
            .collect::<Vec<_>>()
            .join(sep);
        match eval.call_stack_top_location() {
            Some(span) => eprintln!("DEBUG: {}: {message}", location_of(&span)),
            None => eprintln!("DEBUG: {message}"),
        }
        Ok(NoneType)
    }

    /// The attributes of the rule `name` declared so far in this package, as a dict (with
    /// its `name` and `kind`), or None when there is no such rule.
    fn existing_rule<'v>(
        #[starlark(require = pos)] name: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let ctx = EvalContext::from_eval(eval)?;
        let package = ctx.package("native.existing_rule()")?.borrow();
        let heap = eval.heap();
        Ok(match package.targets.get(name) {
            Some(target) if target.rule().is_some() => rule_dict(target, &ctx.base, heap),
            _ => Value::new_none(),
        })
    }

    /// Every rule declared so far in this package: name -> what `existing_rule(name)` gives,
    /// in the order they were declared.
    fn existing_rules<'v>(eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Value<'v>> {
        let ctx = EvalContext::from_eval(eval)?;
        let package = ctx.package("native.existing_rules()")?.borrow();
        let heap = eval.heap();
        let mut rules: Vec<&Target> = package
            .targets
            .values()
            .filter(|t| t.rule().is_some())
            .collect();
        // The package keeps its targets by name; declaration order is their BUILD location.
        rules.sort_by_key(|t| (t.location.line, t.location.column));
        Ok(heap.alloc(AllocDict(rules.into_iter().map(|t| {
            (
                heap.alloc_str(&t.label.name).to_value(),
                rule_dict(t, &ctx.base, heap),
            )
        }))))
    }

    /// `input` as a label of the package being evaluated (a Label is returned unchanged).
    fn package_relative_label<'v>(
        #[starlark(require = pos)] input: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        if input.downcast_ref::<LabelValue>().is_some() {
            return Ok(input);
        }
        let Some(text) = input.unpack_str() else {
            anyhow::bail!(
                "package_relative_label() expects a string or a Label, got {}",
                input.get_type()
            );
        };
        let ctx = EvalContext::from_eval(eval)?;
        ctx.package("native.package_relative_label()")?;
        let label = Label::parse(text, &ctx.base)?;
        Ok(eval.heap().alloc(LabelValue { label }))
    }

    /// The package's default license: the `licenses` of the rules declared after it, as
    /// in Bazel. Recorded, not checked (Bazel 4 checks only with `--check_licenses`).
    fn licenses<'v>(
        #[starlark(require = pos)] licenses: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let ctx = EvalContext::from_eval(eval)?;
        let list = string_list("licenses", licenses, &ctx.base)?;
        let mut package = ctx.package("licenses()")?.borrow_mut();
        let mut defaults: Vec<(String, AttrValue)> = package
            .attr_defaults
            .iter()
            .filter(|(name, _)| name != "licenses")
            .cloned()
            .collect();
        defaults.push(("licenses".to_owned(), AttrValue::StringList(list)));
        package.attr_defaults = defaults.into_boxed_slice();
        Ok(NoneType)
    }
}

/// A rule as `native.existing_rule` describes it: its public attributes (private ones start
/// with `_`), `name` and `kind`. Labels become strings (`:x` in the same package), lists
/// tuples, dicts new dicts and selects selects, as in Bazel.
fn rule_dict<'v>(target: &Target, base: &PackageId, heap: Heap<'v>) -> Value<'v> {
    let rule = target.rule().expect("only rules are described");
    let mut entries: Vec<(&str, Value<'v>)> = vec![
        ("name", heap.alloc_str(&target.label.name).to_value()),
        ("kind", heap.alloc_str(&rule.class).to_value()),
    ];
    for (name, value) in &rule.attrs {
        if name.starts_with(|c: char| c.is_ascii_alphabetic()) && name != "name" {
            entries.push((name, attr_to_value(value, base, heap)));
        }
    }
    heap.alloc(AllocDict(entries))
}

fn label_string(label: &Label, base: &PackageId) -> String {
    if label.package_id() == *base {
        format!(":{}", label.name)
    } else {
        label.to_string()
    }
}

fn attr_to_value<'v>(value: &AttrValue, base: &PackageId, heap: Heap<'v>) -> Value<'v> {
    let string = |s: &str| heap.alloc_str(s).to_value();
    let label = |l: &Label| string(&label_string(l, base));
    match value {
        AttrValue::None => Value::new_none(),
        AttrValue::Bool(b) => Value::new_bool(*b),
        AttrValue::Int(i) => heap.alloc(*i),
        AttrValue::String(s) => string(s),
        AttrValue::StringList(v) => heap.alloc(AllocTuple(v.iter().map(|s| string(s)))),
        AttrValue::StringDict(kv) => {
            heap.alloc(AllocDict(kv.iter().map(|(k, v)| (string(k), string(v)))))
        }
        AttrValue::Label(l) | AttrValue::Output(l) => label(l),
        AttrValue::LabelList(v) | AttrValue::OutputList(v) => {
            heap.alloc(AllocTuple(v.iter().map(label)))
        }
        AttrValue::LabelKeyedStringDict(kv) => {
            heap.alloc(AllocDict(kv.iter().map(|(k, v)| (label(k), string(v)))))
        }
        AttrValue::Select(select) => alloc_select(
            heap,
            select
                .parts
                .iter()
                .map(|part| match part {
                    SelectPart::Plain(v) => (attr_to_value(v, base, heap), None),
                    SelectPart::Selector(selector) => {
                        let branches = selector.conditions.iter().map(|(condition, v)| {
                            let key = if is_default_condition(condition) {
                                string("//conditions:default")
                            } else {
                                label(condition)
                            };
                            (key, attr_to_value(v, base, heap))
                        });
                        (
                            heap.alloc(AllocDict(branches)),
                            Some(selector.no_match_error.clone().unwrap_or_default()),
                        )
                    }
                })
                .collect(),
        ),
    }
}

fn public() -> Label {
    Label {
        repo: String::new(),
        package: "visibility".into(),
        name: "public".into(),
    }
}

/// `//pkg`, `//pkg/...`, `//...`, `public`, `private` as package_group entries.
/// `private` admits no package, so it contributes no entry.
fn package_spec(text: &str, base: &PackageId) -> anyhow::Result<Option<PackageSpec>> {
    match text {
        "public" | "//..." => return Ok(Some(PackageSpec::All)),
        "private" => return Ok(None),
        _ => {}
    }
    let Some(body) = text.strip_prefix("//") else {
        anyhow::bail!(
            "invalid package_group entry '{text}': expected '//pkg', '//pkg/...', 'public' or 'private'"
        );
    };
    let (recursive, pkg) = match body.strip_suffix("/...") {
        Some(p) => (true, p),
        None => (false, body),
    };
    crate::core::label::validate_package(pkg)
        .map_err(|e| anyhow::anyhow!("invalid package_group entry '{text}': {}", e.reason))?;
    let id = PackageId::new(&base.repo, pkg);
    Ok(Some(if recursive {
        PackageSpec::Recursive(id)
    } else {
        PackageSpec::Exact(id)
    }))
}

/// A value as Bazel's `print` shows it: a struct as `struct(a = 1, b = "x")`, its fields in
/// name order with spaces around `=` (logs are grepped for that form), within lists,
/// tuples and dicts too; anything else as its `repr`.
fn bazel_repr(value: Value) -> String {
    use starlark::values::dict::DictRef;
    use starlark::values::list::ListRef;
    use starlark::values::structs::StructRef;
    use starlark::values::tuple::TupleRef;
    let join = |items: Vec<String>| items.join(", ");
    if let Some(fields) = StructRef::from_value(value) {
        let mut fields: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), bazel_repr(v)))
            .collect();
        fields.sort();
        let fields = fields
            .into_iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        format!("struct({})", join(fields))
    } else if let Some(list) = ListRef::from_value(value) {
        format!("[{}]", join(list.iter().map(bazel_repr).collect()))
    } else if let Some(tuple) = TupleRef::from_value(value) {
        let items: Vec<String> = tuple.iter().map(bazel_repr).collect();
        match items.as_slice() {
            [one] => format!("({one},)"),
            _ => format!("({})", join(items)),
        }
    } else if let Some(dict) = DictRef::from_value(value) {
        let items = dict
            .iter()
            .map(|(k, v)| format!("{}: {}", bazel_repr(k), bazel_repr(v)))
            .collect();
        format!("{{{}}}", join(items))
    } else {
        value.to_repr()
    }
}

//! `rule()` and `provider()`: their keyword arguments in a .bzl file in, a `RuleCallable`
//! (a `RuleDecl` of checked attributes and outputs) or a `ProviderCallable` out.

// Starlark functions take Bazel's keyword parameters one Rust argument each.
#![allow(clippy::too_many_arguments)]

use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::dict::DictRef;
use starlark::values::{Heap, Value};

use super::attr_module::Attribute;
use super::build_setting::BuildSettingValue;
use super::context::EvalContext;
use super::providers::{ProviderCallable, ProviderWithInitGen, provider_callable};
use super::rule_call::implicit_attrs;
use super::rule_value::{RuleCallable, RuleDecl};

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
            provider_callable(p).map(|c| c.id()).ok_or_else(|| {
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
        implementation: Value<'v>,
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
        // toolchain-transition migration flag, and a testing hook.
        const NO_EFFECT: &[&str] = &[
            "fragments",
            "host_fragments",
            "output_to_genfiles",
            "incompatible_use_toolchain_transition",
            "_skylark_testable",
        ];
        // Options of Bazel 4 forge cannot honour yet: a rule given one with a value that
        // means something is recorded, and refused when a target of it is analysed, so the
        // .bzl file (and every other rule in it) loads as in Bazel.
        const DEFERRED: &[(&str, &str)] = &[("exec_groups", "forge has no execution groups yet")];
        // Options of later Bazels: refused at once when given a value that means something.
        const REFUSED: &[(&str, &str)] = &[
            ("initializer", "forge does not run rule initializers"),
            ("subrules", "forge has no subrules"),
            ("parent", "forge does not extend rules"),
            (
                "dependency_resolution_rule",
                "forge has no dependency resolution rules",
            ),
        ];
        let mut provides = Vec::new();
        let mut unsupported = Vec::new();
        let mut build_setting = None;
        let mut incoming = None;
        let mut toolchains = Vec::new();
        let mut exec_compatible_with = Vec::new();
        let mut analysis_test = false;
        for (k, v) in kwargs.iter() {
            let k = k.unpack_str().unwrap_or_default();
            // Labels in rule() read against the .bzl file's package, as Bazel reads them.
            match k {
                "toolchains" if !v.is_none() => {
                    toolchains = super::toolchain_type::requests_of(v, &ctx.base, eval.heap())?;
                    continue;
                }
                "exec_compatible_with" if !v.is_none() => {
                    exec_compatible_with = super::toolchain_type::labels_of(
                        v,
                        &ctx.base,
                        "rule(): 'exec_compatible_with'",
                        eval.heap(),
                    )?;
                    continue;
                }
                "analysis_test" if !v.is_none() => {
                    analysis_test = v
                        .unpack_bool()
                        .ok_or_else(|| anyhow::anyhow!("rule(): 'analysis_test' must be a bool"))?;
                    if analysis_test && !test {
                        anyhow::bail!(
                            "rule(): 'analysis_test = True' needs 'test = True': an analysis \
                             test is a test"
                        );
                    }
                    continue;
                }
                _ => {}
            }
            if k == "cfg" {
                if !v.is_none() {
                    if super::transition_value::Transition::from_value(v).is_none() {
                        anyhow::bail!(
                            "rule(): 'cfg' must be a transition made with transition(), got {}",
                            v.get_type()
                        );
                    }
                    incoming = Some(v);
                }
                continue;
            }
            if k == "provides" {
                provides = provided(v, eval.heap())?;
                continue;
            }
            if k == "build_setting" {
                if !v.is_none() {
                    build_setting = Some(BuildSettingValue::setting_of(v).ok_or_else(|| {
                        anyhow::anyhow!(
                            "rule(): 'build_setting' must be made with config.bool, config.int, \
                             config.string or config.string_list, got {}",
                            v.get_type()
                        )
                    })?);
                }
                continue;
            }
            if NO_EFFECT.contains(&k) {
                continue;
            }
            let meaningless =
                v.is_none() || v.unpack_bool() == Some(false) || v.length().is_ok_and(|n| n == 0);
            if let Some((_, why)) = DEFERRED.iter().find(|(name, _)| *name == k) {
                if !meaningless {
                    unsupported.push(format!("'{k} = {}': {why}", v.to_repr()));
                }
                continue;
            }
            let Some((_, why)) = REFUSED.iter().find(|(name, _)| *name == k) else {
                anyhow::bail!("rule() got an unexpected keyword argument '{k}'");
            };
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
        let mut computed_defaults = Vec::new();
        let mut attr_transitions = Vec::new();
        if let Some(attrs) = attrs.filter(|a| !a.is_none()) {
            let dict = DictRef::from_value(attrs).ok_or_else(|| {
                anyhow::anyhow!("rule(): 'attrs' must be a dict of name to attr.*()")
            })?;
            for (k, v) in dict.iter() {
                let name = k
                    .unpack_str()
                    .ok_or_else(|| anyhow::anyhow!("rule(): attribute names must be strings"))?;
                let attr = Attribute::from_value(v).ok_or_else(|| {
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
                if attr.spec.late_bound && !name.starts_with('_') {
                    anyhow::bail!(
                        "rule(): attribute '{name}' has a late-bound default \
                         (configuration_field), so it must be private: name it '_{name}'"
                    );
                }
                if let Some(t) = attr.transition() {
                    attr_transitions.push((name.to_owned(), t));
                }
                declared.push((name.to_owned(), (*attr.spec).clone()));
                if let Some(function) = attr.computed_default() {
                    computed_defaults.push((name.to_owned(), function));
                }
            }
        }
        if let Some(setting) = build_setting {
            if declared.iter().any(|(n, _)| n == "build_setting_default") {
                anyhow::bail!(
                    "rule(): there is already a built-in attribute 'build_setting_default' \
                     which cannot be overridden"
                );
            }
            // As in Bazel: a build setting's rule has its default as a mandatory attribute
            // of the setting's type.
            let mut default = super::attrs::AttrSpec::new(setting.kind.attr_kind());
            default.mandatory = true;
            default.doc = "The value of this setting when the command line sets none.".into();
            declared.push(("build_setting_default".to_owned(), default));
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
        // As in Bazel 4: a rule that uses a Starlark transition names the allowlist.
        let starlark_transition = attr_transitions
            .iter()
            .map(|(_, t)| *t)
            .chain(incoming)
            .any(|t| {
                super::transition_value::Transition::from_value(t)
                    .is_some_and(|t| t.needs_allowlist())
            });
        if starlark_transition
            && !declared
                .iter()
                .any(|(n, _)| n == "_allowlist_function_transition")
        {
            anyhow::bail!(
                "Use of Starlark transition without allowlist attribute \
                 '_allowlist_function_transition'. See Starlark transitions documentation for \
                 details and usage: add \"_allowlist_function_transition\": attr.label(default = \
                 \"@bazel_tools//tools/allowlists/function_transition_allowlist\") to the rule's attrs"
            );
        }
        Ok(RuleCallable::new(
            implementation,
            computed_defaults,
            attr_transitions,
            incoming,
            RuleDecl {
                defined_in: ctx.file.to_string(),
                attrs: declared,
                executable,
                test,
                outputs: predeclared,
                doc,
                provides,
                unsupported,
                build_setting,
                toolchains,
                exec_compatible_with,
                analysis_test,
            },
        ))
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
                let with_init = heap.alloc(ProviderWithInitGen { provider, init });
                Ok(heap.alloc((with_init, provider)))
            }
        }
    }
}

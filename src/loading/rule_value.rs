//! The rule value: what `my_rule = rule(...)` binds in a .bzl file — a `RuleCallable` that
//! learns its name on assignment, frozen into the `FrozenRuleCallable` BUILD files call (the
//! call itself is checked in `rule_call`).

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use allocative::Allocative;
use starlark::eval::{Arguments, Evaluator};
use starlark::values::{
    Freeze, FreezeResult, Freezer, FrozenValue, Heap, NoSerialize, ProvidesStaticType,
    StarlarkValue, Trace, Value, starlark_value,
};

use super::attrs::AttrSpec;

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
    /// Options forge cannot honour yet (`toolchains = [...]`, `cfg = ...`), as
    /// `'<option> = <value>': <why>`: a target of this rule is refused at analysis.
    pub unsupported: Vec<String>,
    /// `build_setting = config.<type>(...)`: targets of this rule are build settings.
    pub build_setting: Option<super::build_setting::BuildSetting>,
    /// `toolchains = [...]`: the toolchain types resolution must find for each target.
    pub toolchains: Vec<super::ToolchainRequest>,
    /// `exec_compatible_with = [...]`: constraints every target's execution platform has.
    pub exec_compatible_with: Vec<crate::core::Label>,
    /// `analysis_test = True`: the implementation returns `AnalysisTestResultInfo`, and
    /// forge writes the test's script from it.
    pub analysis_test: bool,
}

/// `rule(...)` before its module is frozen: it learns its name from `x = rule(...)`.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative, Trace)]
pub struct RuleCallable<'v> {
    implementation: Value<'v>,
    /// The functions of computed defaults (`attr.label(default = _fn)`), by attribute.
    computed_defaults: Vec<(String, Value<'v>)>,
    /// The transitions of attributes declared with `cfg = transition(...)`, by attribute.
    attr_transitions: Vec<(String, Value<'v>)>,
    /// `rule(cfg = transition(...))`: the incoming transition of the rule's targets.
    incoming: Option<Value<'v>>,
    #[allocative(skip)]
    #[trace(static)]
    decl: Arc<RuleDecl>,
    #[allocative(skip)]
    #[trace(static)]
    name: RefCell<Option<String>>,
}

impl<'v> RuleCallable<'v> {
    /// A rule without a name yet: `export_as` gives it the one it is assigned to.
    pub fn new(
        implementation: Value<'v>,
        computed_defaults: Vec<(String, Value<'v>)>,
        attr_transitions: Vec<(String, Value<'v>)>,
        incoming: Option<Value<'v>>,
        decl: RuleDecl,
    ) -> Self {
        RuleCallable {
            implementation,
            computed_defaults,
            attr_transitions,
            incoming,
            decl: Arc::new(decl),
            name: RefCell::new(None),
        }
    }
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
        Ok(FrozenRuleCallable {
            implementation: self.implementation.freeze(freezer)?,
            computed_defaults: self
                .computed_defaults
                .into_iter()
                .map(|(attr, f)| Ok((attr, f.freeze(freezer)?)))
                .collect::<FreezeResult<_>>()?,
            attr_transitions: self
                .attr_transitions
                .into_iter()
                .map(|(attr, t)| Ok((attr, t.freeze(freezer)?)))
                .collect::<FreezeResult<_>>()?,
            incoming: self.incoming.map(|t| t.freeze(freezer)).transpose()?,
            decl: self.decl,
            name: self.name.into_inner(),
        })
    }
}

/// A rule kind ready to be called from BUILD files.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct FrozenRuleCallable {
    pub implementation: FrozenValue,
    pub computed_defaults: Vec<(String, FrozenValue)>,
    /// The transitions of attributes declared with `cfg = transition(...)`, by attribute.
    pub attr_transitions: Vec<(String, FrozenValue)>,
    /// `rule(cfg = transition(...))`.
    pub incoming: Option<FrozenValue>,
    #[allocative(skip)]
    pub decl: Arc<RuleDecl>,
    /// The global it was first assigned to in its .bzl file, which is how analysis finds it
    /// again; `None` for a rule never assigned to one (Bazel refuses to call such a rule,
    /// but loading the file is fine).
    pub name: Option<String>,
}

impl fmt::Display for FrozenRuleCallable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "<rule {n}>"),
            None => write!(f, "<rule>"),
        }
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
        let Some(name) = &self.name else {
            return Err(starlark::Error::new_native(anyhow::anyhow!(
                "this rule, defined in {}, was never assigned to a global variable there, so \
                 it cannot be called (Bazel: 'Invalid rule class hasn't been exported by a bzl \
                 file'); assign it in that file: `my_rule = rule(...)`",
                self.decl.defined_in
            )));
        };
        let named = args.names_map()?;
        let kwargs: Vec<(String, Value<'v>)> = named
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), *v))
            .collect();
        self.instantiate(name, &kwargs, eval)
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

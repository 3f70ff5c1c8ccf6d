//! Providers: `provider()` declarations (and built-ins such as `DefaultInfo`) as callables,
//! their keyword arguments in, `ProviderInstance`s out — identified by `<bzl>%<Name>`, since
//! instances cross heaps.

use std::fmt;
use std::sync::OnceLock;

use allocative::Allocative;
use starlark::collections::SmallMap;
use starlark::eval::{Arguments, Evaluator};
use starlark::values::{
    Coerce, Freeze, Heap, NoSerialize, ProvidesStaticType, StarlarkValue, Trace, Value, ValueLike,
    starlark_value,
};
use starlark::{starlark_complex_value, starlark_simple_value};

/// A provider declared with `provider()`, or a built-in one such as `DefaultInfo`.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct ProviderCallable {
    /// Set by `export_as`: the first global name it is assigned to.
    #[allocative(skip)]
    name: OnceLock<String>,
    pub defined_in: String,
    pub fields: Vec<String>,
    pub doc: String,
    /// False for a built-in provider of Bazel's that forge cannot create yet (`CcInfo`).
    constructible: bool,
    /// The field a single positional argument sets, for built-ins Bazel calls that way
    /// (`platform_common.TemplateVariableInfo(vars)` sets `variables`).
    positional_field: Option<&'static str>,
}

starlark_simple_value!(ProviderCallable);

impl ProviderCallable {
    pub fn new(defined_in: String, fields: Vec<String>, doc: String) -> Self {
        ProviderCallable {
            name: OnceLock::new(),
            defined_in,
            fields,
            doc,
            constructible: true,
            positional_field: None,
        }
    }

    /// A built-in provider whose one positional argument sets `field`.
    pub fn builtin_with_positional(name: &str, fields: &[&str], field: &'static str) -> Self {
        ProviderCallable {
            positional_field: Some(field),
            ..ProviderCallable::builtin(name, fields)
        }
    }

    /// One of Bazel's built-in providers that no forge rule returns yet: it can be asked
    /// for (a target never has it), not created.
    pub fn builtin_unconstructible(name: &str) -> Self {
        ProviderCallable {
            constructible: false,
            ..ProviderCallable::builtin(name, &[])
        }
    }

    pub fn builtin(name: &str, fields: &[&str]) -> Self {
        let p = ProviderCallable::new(
            "<builtin>".into(),
            fields.iter().map(|f| (*f).to_owned()).collect(),
            String::new(),
        );
        let _ = p.name.set(name.to_owned());
        p
    }

    pub fn name(&self) -> &str {
        self.name
            .get()
            .map(String::as_str)
            .unwrap_or("<unnamed provider>")
    }

    /// What instances carry to be matched by `dep[P]`: the defining file and the name.
    pub fn id(&self) -> String {
        format!("{}%{}", self.defined_in, self.name())
    }
}

impl fmt::Display for ProviderCallable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[starlark_value(type = "provider")]
impl<'v> StarlarkValue<'v> for ProviderCallable {
    fn export_as(
        &self,
        variable_name: &str,
        _eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<()> {
        let _ = self.name.set(variable_name.to_owned());
        Ok(())
    }

    fn invoke(
        &self,
        _me: Value<'v>,
        args: &Arguments<'v, '_>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<Value<'v>> {
        if !self.constructible {
            return Err(starlark::Error::new_native(anyhow::anyhow!(
                "forge does not support creating `{}` yet",
                self.name()
            )));
        }
        let named = args.names_map()?;
        let named = named.iter().map(|(k, v)| (k.as_str(), *v));
        match self.positional_field {
            // The field may be given by position or, as Bazel's signatures allow, by name.
            Some(field) => {
                let positional: Vec<Value> = args.positions(eval.heap())?.collect();
                match positional.as_slice() {
                    [] => self.instance(named, eval.heap()),
                    [value] => {
                        self.instance(std::iter::once((field, *value)).chain(named), eval.heap())
                    }
                    _ => Err(starlark::Error::new_native(anyhow::anyhow!(
                        "{} takes at most one positional argument ('{field}')",
                        self.name()
                    ))),
                }
            }
            None => {
                args.no_positional_args(eval.heap())?;
                self.instance(named, eval.heap())
            }
        }
    }
}

impl ProviderCallable {
    /// An instance with these fields, checked against the declared ones.
    fn instance<'v, 'a>(
        &self,
        given: impl IntoIterator<Item = (&'a str, Value<'v>)>,
        heap: Heap<'v>,
    ) -> starlark::Result<Value<'v>> {
        let mut fields = SmallMap::new();
        for (k, v) in given {
            if !self.fields.is_empty() && !self.fields.iter().any(|f| f == k) {
                return Err(starlark::Error::new_native(anyhow::anyhow!(
                    "{} got an unexpected field '{k}'; its fields are: {}",
                    self.name(),
                    self.fields.join(", ")
                )));
            }
            fields.insert(k.to_owned(), v);
        }
        Ok(heap.alloc(ProviderInstanceGen {
            id: self.id(),
            name: self.name().to_owned(),
            fields,
        }))
    }
}

/// A provider declared with `provider(init = f)`: calling it calls `f` with the same
/// arguments, and the dict `f` returns becomes the instance's fields. `provider` is the plain
/// `ProviderCallable`, which is also the raw constructor `provider()` returns beside it.
#[derive(Debug, Trace, Coerce, Freeze, ProvidesStaticType, NoSerialize, Allocative)]
#[repr(C)]
pub struct ProviderWithInitGen<V> {
    pub provider: V,
    pub init: V,
}

starlark_complex_value!(pub ProviderWithInit);

impl<V> fmt::Display for ProviderWithInitGen<V>
where
    V: fmt::Display,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.provider.fmt(f)
    }
}

/// The provider a value stands for: a plain provider, or one declared with `init`.
pub fn provider_callable<'v>(value: Value<'v>) -> Option<&'v ProviderCallable> {
    value.downcast_ref::<ProviderCallable>().or_else(|| {
        ProviderWithInit::from_value(value)?
            .provider
            .to_value()
            .downcast_ref::<ProviderCallable>()
    })
}

#[starlark_value(type = "provider")]
impl<'v, V: ValueLike<'v>> StarlarkValue<'v> for ProviderWithInitGen<V>
where
    Self: ProvidesStaticType<'v>,
{
    fn export_as(
        &self,
        variable_name: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<()> {
        self.provider.to_value().export_as(variable_name, eval)
    }

    fn invoke(
        &self,
        _me: Value<'v>,
        args: &Arguments<'v, '_>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<Value<'v>> {
        let heap = eval.heap();
        let positional: Vec<Value> = args.positions(heap)?.collect();
        let named = args.names_map()?;
        let named: Vec<(&str, Value)> = named.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        let provider = self
            .provider
            .to_value()
            .downcast_ref::<ProviderCallable>()
            .expect("made by provider()");
        let returned = eval.eval_function(self.init.to_value(), &positional, &named)?;
        let dict = starlark::values::dict::DictRef::from_value(returned).ok_or_else(|| {
            starlark::Error::new_native(anyhow::anyhow!(
                "the init function of {} must return a dict of field values, but returned {} ({})",
                provider.name(),
                returned.to_repr(),
                returned.get_type()
            ))
        })?;
        let mut fields = Vec::new();
        for (k, v) in dict.iter() {
            let k = k.unpack_str().ok_or_else(|| {
                starlark::Error::new_native(anyhow::anyhow!(
                    "the init function of {} returned a dict with the non-string key {}",
                    provider.name(),
                    k.to_repr()
                ))
            })?;
            fields.push((k, v));
        }
        provider.instance(fields, eval.heap())
    }
}

/// An instance of a provider: `MyInfo(x = 1)`, `DefaultInfo(files = ...)`.
#[derive(Debug, Trace, Coerce, Freeze, ProvidesStaticType, NoSerialize, Allocative)]
#[repr(C)]
pub struct ProviderInstanceGen<V> {
    pub id: String,
    pub name: String,
    pub fields: SmallMap<String, V>,
}

starlark_complex_value!(pub ProviderInstance);

impl<V> fmt::Display for ProviderInstanceGen<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.name)?;
        for (i, k) in self.fields.keys().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{k} = ...")?;
        }
        write!(f, ")")
    }
}

impl<'v, V: ValueLike<'v>> ProviderInstanceGen<V> {
    pub fn field(&self, name: &str) -> Option<Value<'v>> {
        self.fields.get(name).map(|v| v.to_value())
    }
}

#[starlark_value(type = "struct")]
impl<'v, V: ValueLike<'v>> StarlarkValue<'v> for ProviderInstanceGen<V>
where
    Self: ProvidesStaticType<'v>,
{
    fn get_attr(&self, attribute: &str, _heap: Heap<'v>) -> Option<Value<'v>> {
        // A declared but unset field reads as None, as in Bazel.
        self.field(attribute)
            .or_else(|| (self.id.starts_with("<builtin>")).then(Value::new_none))
    }

    fn dir_attr(&self) -> Vec<String> {
        self.fields.keys().cloned().collect()
    }

    // `OutputGroupInfo` is also a mapping of group name to files in Bazel:
    // `info["name"]`, `"name" in info` and iterating over its names.
    fn at(&self, index: Value<'v>, _heap: Heap<'v>) -> starlark::Result<Value<'v>> {
        let group = self.output_group_name(index)?;
        self.field(group).ok_or_else(|| {
            starlark::Error::new_native(anyhow::anyhow!("Output group {group} not present"))
        })
    }

    fn is_in(&self, other: Value<'v>) -> starlark::Result<bool> {
        let group = self.output_group_name(other)?;
        Ok(self.fields.contains_key(group))
    }

    fn iterate_collect(&self, heap: Heap<'v>) -> starlark::Result<Vec<Value<'v>>> {
        self.require_output_group_info()?;
        Ok(self.fields.keys().map(|k| heap.alloc(k.as_str())).collect())
    }
}

impl<'v, V: ValueLike<'v>> ProviderInstanceGen<V> {
    /// Only `OutputGroupInfo` can be indexed or iterated.
    fn require_output_group_info(&self) -> starlark::Result<()> {
        if self.id == "<builtin>%OutputGroupInfo" {
            return Ok(());
        }
        Err(starlark::Error::new_native(anyhow::anyhow!(
            "a {} provider cannot be indexed or iterated; read its fields (`info.field`)",
            self.name
        )))
    }

    /// The group an `OutputGroupInfo` is indexed by.
    fn output_group_name(&self, index: Value<'v>) -> starlark::Result<&'v str> {
        self.require_output_group_info()?;
        index.unpack_str().ok_or_else(|| {
            starlark::Error::new_native(anyhow::anyhow!(
                "OutputGroupInfo is indexed by group name (a string), got {}",
                index.get_type()
            ))
        })
    }
}

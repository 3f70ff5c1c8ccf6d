//! Starlark values that .bzl files create while loading and rule implementations use during
//! analysis: `depset`, `Label`, providers and their instances.

use std::collections::HashSet;
use std::fmt;
use std::sync::OnceLock;

use allocative::Allocative;
use starlark::collections::{SmallMap, SmallSet};
use starlark::environment::{GlobalsBuilder, Methods, MethodsBuilder};
use starlark::eval::{Arguments, Evaluator};
use starlark::values::list::AllocList;
use starlark::values::{
    Coerce, Freeze, Heap, NoSerialize, ProvidesStaticType, StarlarkValue, Trace, Value,
    ValueIdentity, ValueLike, starlark_value,
};
use starlark::{starlark_complex_value, starlark_module, starlark_simple_value};

use super::context::EvalContext;
use crate::core::Label;

// ---------------------------------------------------------------------------------------------
// depset

/// Elements in first-seen order, each once (by Starlark equality).
#[derive(Default)]
struct Elements<'v> {
    seen: SmallSet<Value<'v>>,
    list: Vec<Value<'v>>,
}

impl<'v> Elements<'v> {
    fn push(&mut self, v: Value<'v>) {
        match v.get_hashed() {
            Ok(h) => {
                if self.seen.insert_hashed(h) {
                    self.list.push(v);
                }
            }
            // Unhashable values cannot be deduplicated; keep them as they come.
            Err(_) => self.list.push(v),
        }
    }
}

/// The four traversal orders Bazel offers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Order {
    Default,
    Postorder,
    Preorder,
    Topological,
}

impl Order {
    fn parse(s: &str) -> anyhow::Result<Order> {
        Ok(match s {
            "default" | "stable" => Order::Default,
            "postorder" | "compile" => Order::Postorder,
            "preorder" | "naive_link" => Order::Preorder,
            "topological" | "link" => Order::Topological,
            _ => anyhow::bail!(
                "invalid depset order '{s}': use 'default', 'postorder', 'preorder' or 'topological'"
            ),
        })
    }

    fn name(self) -> &'static str {
        match self {
            Order::Default => "default",
            Order::Postorder => "postorder",
            Order::Preorder => "preorder",
            Order::Topological => "topological",
        }
    }

    /// Orders mix only with themselves, except that `default` mixes with anything.
    fn compatible(self, other: Order) -> bool {
        self == other || self == Order::Default || other == Order::Default
    }
}

/// How deeply depsets may nest, as Bazel's default `--nested_set_depth_limit`. Freezing and
/// garbage collection walk a depset recursively, so an unbounded chain would overflow the
/// stack.
pub const MAX_DEPSET_DEPTH: u32 = 3500;

/// A depset: direct elements plus child depsets, shared rather than copied, so that large
/// transitive sets cost what they add, not what they contain.
#[derive(Debug, Trace, Coerce, Freeze, ProvidesStaticType, NoSerialize, Allocative)]
#[repr(C)]
pub struct DepsetGen<V> {
    order: String,
    direct: Vec<V>,
    transitive: Vec<V>,
    /// 1 for a depset without children, else one more than its deepest child.
    depth: u32,
}

starlark_complex_value!(pub Depset);

impl<V> fmt::Display for DepsetGen<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "depset(<{} direct, {} transitive>)",
            self.direct.len(),
            self.transitive.len()
        )
    }
}

/// A depset's direct elements and children, in the middle of a walk.
struct Frame<'a, 'v> {
    direct: &'a [Value<'v>],
    transitive: &'a [Value<'v>],
    next: usize,
}

/// Flattens a depset (given as its direct elements and children) into `out` without
/// recursion: children first, each depset once (by identity); `direct_first` puts a
/// depset's own elements before its children's, `reversed` walks everything right to left.
fn walk<'v>(
    direct: &[Value<'v>],
    transitive: &[Value<'v>],
    out: &mut Elements<'v>,
    direct_first: bool,
    reversed: bool,
) {
    let emit = |out: &mut Elements<'v>, direct: &[Value<'v>]| {
        if reversed {
            direct.iter().rev().for_each(|v| out.push(*v));
        } else {
            direct.iter().for_each(|v| out.push(*v));
        }
    };
    let mut visited: HashSet<ValueIdentity<'v>> = HashSet::new();
    if direct_first {
        emit(out, direct);
    }
    let mut stack = vec![Frame {
        direct,
        transitive,
        next: 0,
    }];
    while let Some(top) = stack.last_mut() {
        if top.next == top.transitive.len() {
            if !direct_first {
                emit(out, top.direct);
            }
            stack.pop();
            continue;
        }
        let index = if reversed {
            top.transitive.len() - 1 - top.next
        } else {
            top.next
        };
        let child = top.transitive[index];
        top.next += 1;
        if !visited.insert(child.identity()) {
            continue;
        }
        if let Some(d) = Depset::from_value(child) {
            if direct_first {
                emit(out, &d.direct);
            }
            stack.push(Frame {
                direct: &d.direct,
                transitive: &d.transitive,
                next: 0,
            });
        }
    }
}

impl<'v, V: ValueLike<'v>> DepsetGen<V> {
    fn order(&self) -> Order {
        Order::parse(&self.order).unwrap_or(Order::Default)
    }

    /// The elements in the depset's order, each once.
    pub fn to_list(&self) -> Vec<Value<'v>> {
        let direct: Vec<Value<'v>> = self.direct.iter().map(|v| v.to_value()).collect();
        let transitive: Vec<Value<'v>> = self.transitive.iter().map(|v| v.to_value()).collect();
        let mut out = Elements::default();
        match self.order() {
            Order::Preorder => walk(&direct, &transitive, &mut out, true, false),
            Order::Default | Order::Postorder => walk(&direct, &transitive, &mut out, false, false),
            Order::Topological => {
                // Reverse of a right-to-left postorder: every depset's elements come before
                // those of the depsets it contains.
                walk(&direct, &transitive, &mut out, false, true);
                out.list.reverse();
            }
        }
        out.list
    }

    /// Empty children are dropped when a depset is made, so only a depset without direct
    /// elements and without children is empty.
    pub fn is_empty(&self) -> bool {
        self.direct.is_empty() && self.transitive.is_empty()
    }
}

#[starlark_value(type = "depset")]
impl<'v, V: ValueLike<'v>> StarlarkValue<'v> for DepsetGen<V>
where
    Self: ProvidesStaticType<'v>,
{
    fn get_methods() -> Option<&'static Methods> {
        Some(DEPSET_METHODS.methods())
    }

    fn to_bool(&self) -> bool {
        !self.is_empty()
    }
}

starlark::methods_static!(DEPSET_METHODS = depset_methods);

#[starlark_module]
fn depset_methods(builder: &mut MethodsBuilder) {
    /// The elements, flattened in the depset's order.
    fn to_list<'v>(this: Value<'v>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        let d = Depset::from_value(this).ok_or_else(|| anyhow::anyhow!("not a depset"))?;
        Ok(heap.alloc(AllocList(d.to_list())))
    }
}

/// Items of a list or tuple, or the elements of a depset.
pub fn iterate_files<'v>(value: Value<'v>, heap: Heap<'v>) -> anyhow::Result<Vec<Value<'v>>> {
    if let Some(d) = Depset::from_value(value) {
        return Ok(d.to_list());
    }
    if value.is_none() {
        return Ok(Vec::new());
    }
    Ok(value
        .iterate(heap)
        .map_err(|_| anyhow::anyhow!("expected a list or depset, got {}", value.get_type()))?
        .collect())
}

/// Builds a depset value, checking orders.
pub fn make_depset<'v>(
    direct: Vec<Value<'v>>,
    transitive: Vec<Value<'v>>,
    order: &str,
    heap: Heap<'v>,
) -> anyhow::Result<Value<'v>> {
    let o = Order::parse(order)?;
    for t in &transitive {
        let d = Depset::from_value(*t).ok_or_else(|| {
            anyhow::anyhow!(
                "depset: 'transitive' must hold depsets, got {}",
                t.get_type()
            )
        })?;
        if !o.compatible(d.order()) {
            anyhow::bail!(
                "depset: order '{}' is incompatible with a transitive depset of order '{}'",
                o.name(),
                d.order().name()
            );
        }
    }
    // Drop empty children: they cost a visit and change nothing.
    let transitive: Vec<Value> = transitive
        .into_iter()
        .filter(|t| Depset::from_value(*t).is_some_and(|d| !d.is_empty()))
        .collect();
    let depth = 1 + transitive
        .iter()
        .filter_map(|t| Depset::from_value(*t).map(|d| d.depth))
        .max()
        .unwrap_or(0);
    if depth > MAX_DEPSET_DEPTH {
        anyhow::bail!(
            "depset nested too deeply: depth {depth} exceeds the limit of {MAX_DEPSET_DEPTH} \
             (as Bazel's --nested_set_depth_limit); merge several transitive depsets into one \
             level instead of wrapping each in the next"
        );
    }
    Ok(heap.alloc(DepsetGen {
        order: o.name().to_owned(),
        direct,
        transitive,
        depth,
    }))
}

// ---------------------------------------------------------------------------------------------
// Label

/// A `Label` value: `Label("//pkg:name")`, `ctx.label`, `dep.label`.
#[derive(Debug, Clone, ProvidesStaticType, NoSerialize, Allocative, PartialEq, Eq, Hash)]
pub struct LabelValue {
    #[allocative(skip)]
    pub label: Label,
}

starlark_simple_value!(LabelValue);

impl fmt::Display for LabelValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // As Bazel 4 prints it: `//pkg:x` for the main repository, `@repo//pkg:x` otherwise.
        write!(f, "{}", self.label)
    }
}

#[starlark_value(type = "Label")]
impl<'v> StarlarkValue<'v> for LabelValue {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        let l = &self.label;
        Some(match attribute {
            "name" => heap.alloc(l.name.as_str()),
            "package" => heap.alloc(l.package.as_str()),
            "workspace_name" | "repo_name" => heap.alloc(l.repo.as_str()),
            "workspace_root" => heap.alloc(if l.repo.is_empty() {
                String::new()
            } else {
                format!("external/{}", l.repo)
            }),
            _ => return None,
        })
    }

    fn dir_attr(&self) -> Vec<String> {
        ["name", "package", "workspace_name", "workspace_root"]
            .map(str::to_owned)
            .to_vec()
    }

    fn equals(&self, other: Value<'v>) -> starlark::Result<bool> {
        Ok(other
            .downcast_ref::<LabelValue>()
            .is_some_and(|o| o.label == self.label))
    }

    fn write_hash(
        &self,
        hasher: &mut starlark::collections::StarlarkHasher,
    ) -> starlark::Result<()> {
        use std::hash::Hash;
        self.label.to_string().hash(hasher);
        Ok(())
    }

    fn compare(&self, other: Value<'v>) -> starlark::Result<std::cmp::Ordering> {
        match other.downcast_ref::<LabelValue>() {
            Some(o) => Ok(self.label.cmp(&o.label)),
            None => starlark::values::ValueError::unsupported_with(self, "compare", other),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Providers

/// A provider declared with `provider()`, or a built-in one such as `DefaultInfo`.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct ProviderCallable {
    /// Set by `export_as`: the first global name it is assigned to.
    #[allocative(skip)]
    name: OnceLock<String>,
    pub defined_in: String,
    pub fields: Vec<String>,
    pub doc: String,
}

starlark_simple_value!(ProviderCallable);

impl ProviderCallable {
    pub fn new(defined_in: String, fields: Vec<String>, doc: String) -> Self {
        ProviderCallable {
            name: OnceLock::new(),
            defined_in,
            fields,
            doc,
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
        args.no_positional_args(eval.heap())?;
        let named = args.names_map()?;
        self.instance(named.iter().map(|(k, v)| (k.as_str(), *v)), eval.heap())
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
}

// ---------------------------------------------------------------------------------------------
// Globals

#[starlark_module]
pub fn value_globals(builder: &mut GlobalsBuilder) {
    /// A set of values built from direct elements and other depsets, without copying them.
    fn depset<'v>(
        #[starlark(require = pos)] direct_pos: Option<Value<'v>>,
        #[starlark(require = named)] direct: Option<Value<'v>>,
        #[starlark(require = named)] transitive: Option<Value<'v>>,
        #[starlark(require = named, default = "default")] order: &str,
        #[starlark(require = named)] items: Option<Value<'v>>,
        heap: Heap<'v>,
    ) -> anyhow::Result<Value<'v>> {
        let direct = match direct.or(direct_pos).or(items) {
            Some(v) if !v.is_none() => iterate_files(v, heap)?,
            _ => Vec::new(),
        };
        let transitive = match transitive {
            Some(v) if !v.is_none() => iterate_files(v, heap)?,
            _ => Vec::new(),
        };
        make_depset(direct, transitive, order, heap)
    }

    /// A label, resolved against the package of the file that calls `Label()`.
    #[starlark(as_type = LabelValue)]
    fn Label<'v>(
        #[starlark(require = pos)] label: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<LabelValue> {
        let base = eval
            .extra
            .and_then(|e| e.downcast_ref::<EvalContext>())
            .map(|c| c.base.clone())
            .unwrap_or_default();
        Ok(LabelValue {
            label: crate::core::Label::parse(label, &base)?,
        })
    }
}

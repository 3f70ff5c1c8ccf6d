//! `depset`: direct elements and child depsets in, shared rather than copied; flattened
//! (`to_list()`) only on request, in one of Bazel's four orders, without recursion.

use std::collections::HashSet;
use std::fmt;

use allocative::Allocative;
use starlark::collections::SmallSet;
use starlark::environment::{GlobalsBuilder, Methods, MethodsBuilder};
use starlark::values::list::AllocList;
use starlark::values::{
    Coerce, Freeze, Heap, NoSerialize, ProvidesStaticType, StarlarkValue, Trace, Value,
    ValueIdentity, ValueLike, starlark_value,
};
use starlark::{starlark_complex_value, starlark_module};

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

    /// The order's name (`default`, `postorder`, `preorder`, `topological`), the direct
    /// elements and the child depsets, as made: what the analysis result store keeps.
    pub fn parts(&self) -> (&str, Vec<Value<'v>>, Vec<Value<'v>>) {
        (
            &self.order,
            self.direct.iter().map(|v| v.to_value()).collect(),
            self.transitive.iter().map(|v| v.to_value()).collect(),
        )
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

#[starlark_module]
pub fn depset_globals(builder: &mut GlobalsBuilder) {
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
}

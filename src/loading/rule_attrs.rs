//! A rule target's attribute values (every attribute, defaults filled in) in, a compact map
//! out: the values the targets of one rule class have in common are kept once for the class,
//! each target keeping only the values that differ.
//!
//! Reading is unchanged: `get`, `iter` (in name order) and the serialised form (a map of
//! name to value, as a `BTreeMap<String, AttrValue>` was) see every attribute. At 50,000
//! genrules the filled-in defaults were most of the loaded packages' memory: ~25 attributes
//! a target, each a map node slot and a name of its own.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use serde::{Deserialize, Serialize};

use super::target::AttrValue;

/// An attribute name, interned: the names a process sees are those the rules declare.
type Name = &'static str;

fn intern(name: &str) -> Name {
    static NAMES: OnceLock<Mutex<HashSet<Name>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(known) = names.get(name) {
        return known;
    }
    let leaked: Name = Box::leak(name.to_owned().into_boxed_str());
    names.insert(leaked);
    leaked
}

/// Values every target of a rule class is likely to have: the first target's values of the
/// attributes its call did not give (the class's defaults, as its package set them).
#[derive(Debug, Default)]
struct Shared {
    entries: Vec<(Name, AttrValue)>,
}

/// The shared values of each rule class (by where it is defined and its name). Which values
/// are shared never changes what a target's attributes read, only what they cost.
fn shared_for(class: &str, defined_in: &str, make: impl FnOnce() -> Shared) -> Arc<Shared> {
    type Classes = HashMap<(String, String), Arc<Shared>>;
    static CLASSES: OnceLock<Mutex<Classes>> = OnceLock::new();
    let mut classes = CLASSES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let key = (defined_in.to_owned(), class.to_owned());
    classes
        .entry(key)
        .or_insert_with(|| Arc::new(make()))
        .clone()
}

/// Every attribute of one rule target, by name.
#[derive(Clone, Default)]
pub struct Attrs {
    /// The class's shared values; those of them this target has, and not in `own`, are its.
    shared: Option<Arc<Shared>>,
    /// This target's values that the shared ones do not give, sorted by name.
    own: Vec<(Name, AttrValue)>,
    /// Indices of shared entries whose attribute this target does not have.
    absent: Vec<u32>,
}

impl Attrs {
    /// `attrs` of a target of rule `class` (defined in `defined_in`), of which the call gave
    /// `explicit`: stored against the class's shared values.
    pub fn of_class(
        class: &str,
        defined_in: &str,
        attrs: impl IntoIterator<Item = (String, AttrValue)>,
        explicit: &BTreeSet<String>,
    ) -> Attrs {
        let attrs: Vec<(String, AttrValue)> = attrs.into_iter().collect();
        let shared = shared_for(class, defined_in, || Shared {
            entries: sorted(
                attrs
                    .iter()
                    .filter(|(name, _)| !explicit.contains(name))
                    .map(|(n, v)| (n.clone(), v.clone())),
            ),
        });
        // Names the class shares are interned already: take them from there.
        let name_of = |name: &str| match shared.entries.binary_search_by(|(n, _)| (*n).cmp(name)) {
            Ok(i) => shared.entries[i].0,
            Err(_) => intern(name),
        };
        let all = sorted_names(attrs.into_iter().map(|(n, v)| (name_of(&n), v)).collect());
        Attrs::against(shared, all)
    }

    /// `all` (sorted by name) stored against `shared`.
    fn against(shared: Arc<Shared>, all: Vec<(Name, AttrValue)>) -> Attrs {
        let mut own = Vec::new();
        let mut absent = Vec::new();
        let mut values = all.into_iter().peekable();
        for (index, (name, value)) in shared.entries.iter().enumerate() {
            while let Some((n, _)) = values.peek()
                && n < name
            {
                own.extend(values.next());
            }
            match values.peek() {
                Some((n, v)) if n == name => {
                    if v != value {
                        own.extend(values.next());
                    } else {
                        values.next();
                    }
                }
                _ => absent.push(index as u32),
            }
        }
        own.extend(values);
        own.shrink_to_fit();
        Attrs {
            shared: Some(shared),
            own,
            absent,
        }
    }

    /// Re-stores these attributes against the class's shared values (after reading them
    /// back from the package store, where each target has all of its own).
    pub fn share(&mut self, class: &str, defined_in: &str, explicit: &BTreeSet<String>) {
        let all = std::mem::take(self).into_entries();
        let shared = shared_for(class, defined_in, || Shared {
            entries: all
                .iter()
                .filter(|(name, _)| !explicit.contains(*name))
                .cloned()
                .collect(),
        });
        *self = Attrs::against(shared, all);
    }

    fn shared_entries(&self) -> &[(Name, AttrValue)] {
        self.shared.as_deref().map_or(&[], |s| &s.entries)
    }

    pub fn get(&self, name: &str) -> Option<&AttrValue> {
        if let Ok(i) = self.own.binary_search_by(|(n, _)| (*n).cmp(name)) {
            return Some(&self.own[i].1);
        }
        let shared = self.shared_entries();
        let i = shared.binary_search_by(|(n, _)| (*n).cmp(name)).ok()?;
        (!self.absent.contains(&(i as u32))).then(|| &shared[i].1)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets `name` to `value` for this target alone.
    pub fn insert(&mut self, name: &str, value: AttrValue) {
        match self.own.binary_search_by(|(n, _)| (*n).cmp(name)) {
            Ok(i) => self.own[i].1 = value,
            Err(i) => self.own.insert(i, (intern(name), value)),
        }
    }

    /// Every attribute, in name order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            own: &self.own,
            shared: self.shared_entries(),
            shared_index: 0,
            absent: &self.absent,
        }
    }

    pub fn keys(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.iter().map(|(n, _)| n)
    }

    pub fn values(&self) -> impl Iterator<Item = &AttrValue> {
        self.iter().map(|(_, v)| v)
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    fn into_entries(self) -> Vec<(Name, AttrValue)> {
        match self.shared {
            // Nothing shared: the values move out.
            None => self.own,
            Some(_) => self.iter().map(|(n, v)| (n, v.clone())).collect(),
        }
    }
}

fn sorted(attrs: impl IntoIterator<Item = (String, AttrValue)>) -> Vec<(Name, AttrValue)> {
    sorted_names(attrs.into_iter().map(|(n, v)| (intern(&n), v)).collect())
}

/// `all` sorted by name, a later value for a name winning as a map's insert does.
fn sorted_names(mut all: Vec<(Name, AttrValue)>) -> Vec<(Name, AttrValue)> {
    if all.is_sorted_by(|a, b| a.0 < b.0) {
        return all;
    }
    all.sort_by(|a, b| a.0.cmp(b.0));
    let mut deduped: Vec<(Name, AttrValue)> = Vec::with_capacity(all.len());
    for entry in all {
        match deduped.last_mut() {
            Some(last) if last.0 == entry.0 => *last = entry,
            _ => deduped.push(entry),
        }
    }
    deduped
}

/// Attributes with nothing shared: every value the target's own.
impl FromIterator<(String, AttrValue)> for Attrs {
    fn from_iter<I: IntoIterator<Item = (String, AttrValue)>>(iter: I) -> Self {
        let mut own = sorted(iter);
        own.shrink_to_fit();
        Attrs {
            shared: None,
            own,
            absent: Vec::new(),
        }
    }
}

impl From<BTreeMap<String, AttrValue>> for Attrs {
    fn from(map: BTreeMap<String, AttrValue>) -> Self {
        map.into_iter().collect()
    }
}

/// The attributes in name order, merging the target's own values with the shared ones.
pub struct Iter<'a> {
    own: &'a [(Name, AttrValue)],
    shared: &'a [(Name, AttrValue)],
    shared_index: usize,
    absent: &'a [u32],
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'static str, &'a AttrValue);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let shared = self.shared.get(self.shared_index);
            match (self.own.first(), shared) {
                (None, None) => return None,
                (Some((n, v)), None) => {
                    self.own = &self.own[1..];
                    return Some((*n, v));
                }
                (Some((own_name, v)), Some((shared_name, _))) if own_name <= shared_name => {
                    if own_name == shared_name {
                        // The target's own value replaces the shared one.
                        self.shared_index += 1;
                    }
                    self.own = &self.own[1..];
                    return Some((*own_name, v));
                }
                (_, Some((n, v))) => {
                    let index = self.shared_index as u32;
                    self.shared_index += 1;
                    if !self.absent.contains(&index) {
                        return Some((*n, v));
                    }
                }
            }
        }
    }
}

impl<'a> IntoIterator for &'a Attrs {
    type Item = (&'static str, &'a AttrValue);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// `attrs["name"]`, as on a map: panics when there is no such attribute.
impl std::ops::Index<&str> for Attrs {
    type Output = AttrValue;

    fn index(&self, name: &str) -> &AttrValue {
        self.get(name)
            .unwrap_or_else(|| panic!("no attribute '{name}'"))
    }
}

impl PartialEq for Attrs {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Attrs {}

impl std::fmt::Debug for Attrs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Stored as a map of name to value, exactly as a `BTreeMap<String, AttrValue>` was.
impl Serialize for Attrs {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (name, value) in self.iter() {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Attrs {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Attrs, D::Error> {
        struct Entries;

        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = Attrs;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of attributes")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Attrs, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
                while let Some((name, value)) =
                    map.next_entry::<std::borrow::Cow<'de, str>, AttrValue>()?
                {
                    entries.push((name.into_owned(), value));
                }
                Ok(entries.into_iter().collect())
            }
        }

        deserializer.deserialize_map(Entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, AttrValue)]) -> BTreeMap<String, AttrValue> {
        entries
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.clone()))
            .collect()
    }

    fn s(text: &str) -> AttrValue {
        AttrValue::String(text.into())
    }

    #[test]
    fn targets_of_a_class_read_their_own_values_whatever_is_shared() {
        let class = "rule_attrs_test_rule";
        let explicit: BTreeSet<String> = ["srcs".to_owned()].into();
        let first = map(&[
            ("cmd", s("default")),
            ("srcs", s("a")),
            ("tags", AttrValue::StringList(vec![])),
            ("testonly", AttrValue::Bool(false)),
        ]);
        // Differs in a shared value, lacks one, has one the first has not.
        let second = map(&[
            ("cmd", s("other")),
            ("extra", AttrValue::Int(3)),
            ("srcs", s("b")),
            ("testonly", AttrValue::Bool(false)),
        ]);
        let a = Attrs::of_class(class, "//:defs.bzl", first.clone(), &explicit);
        let b = Attrs::of_class(class, "//:defs.bzl", second.clone(), &explicit);
        for (attrs, expected) in [(&a, &first), (&b, &second)] {
            let read: Vec<(&str, &AttrValue)> = attrs.iter().collect();
            let want: Vec<(&str, &AttrValue)> =
                expected.iter().map(|(n, v)| (n.as_str(), v)).collect();
            assert_eq!(read, want);
            assert_eq!(attrs.len(), expected.len());
            for (name, value) in expected {
                assert_eq!(attrs.get(name), Some(value), "{name}");
            }
        }
        assert_eq!(b.get("tags"), None);
        // Only what differs from the shared values is the second target's own.
        assert_eq!(b.own.len(), 3, "{:?}", b.own);
        assert_eq!(b.absent.len(), 1);
        let mut c = b.clone();
        c.insert("tags", AttrValue::StringList(vec!["t".into()]));
        assert_eq!(
            c.get("tags"),
            Some(&AttrValue::StringList(vec!["t".into()]))
        );
        assert_ne!(c, b);
    }

    #[test]
    fn stored_exactly_as_a_map_of_names_to_values() {
        let values = map(&[
            ("b", AttrValue::LabelList(vec![])),
            ("a", s("x")),
            ("c", AttrValue::Int(-1)),
        ]);
        let explicit: BTreeSet<String> = ["a".to_owned()].into();
        Attrs::of_class("rule_attrs_stored", "//:x.bzl", values.clone(), &explicit);
        let mut other = values.clone();
        other.insert("a".into(), s("y"));
        let shared = Attrs::of_class("rule_attrs_stored", "//:x.bzl", other.clone(), &explicit);
        let bytes = postcard::to_allocvec(&shared).unwrap();
        assert_eq!(bytes, postcard::to_allocvec(&other).unwrap());
        let mut back: Attrs = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, shared);
        back.share("rule_attrs_stored", "//:x.bzl", &explicit);
        assert_eq!(back, shared);
        assert_eq!(back.own.len(), 1);
    }
}

//! A stored map's entries in (a `BTreeMap` writes them in key order); the same `BTreeMap` out,
//! built in one pass over the sorted entries instead of searched and inserted into entry by
//! entry, as serde's own `BTreeMap` reader does. For the large maps of stored plans: one
//! search per entry (a dozen comparisons, each following pointers to key strings scattered
//! in memory) made reading the 5,000 targets of a stored plan a fifth of a no-op build. The
//! entries are held twice for a moment (the list and the tree).

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

/// `#[serde(deserialize_with = "crate::core::sorted_map::deserialize")]` on a `BTreeMap`
/// field. Entries out of order are sorted (so any map reads correctly, only slower), and of
/// two equal keys the later one is kept, as with one insertion after another.
pub fn deserialize<'de, D, K, V>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Ord,
    V: Deserialize<'de>,
{
    struct Entries<K, V>(PhantomData<(K, V)>);

    impl<'de, K, V> Visitor<'de> for Entries<K, V>
    where
        K: Deserialize<'de>,
        V: Deserialize<'de>,
    {
        type Value = Vec<(K, V)>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<(K, V)>, A::Error> {
            // The hint comes from the stored bytes: bounded, so a damaged length cannot ask
            // for more memory than the entries that are really there.
            let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(1 << 16));
            while let Some(entry) = map.next_entry()? {
                entries.push(entry);
            }
            Ok(entries)
        }
    }

    let entries = deserializer.deserialize_map(Entries(PhantomData))?;
    // `FromIterator` sorts stably (one comparison per entry when already sorted), keeps the
    // last of equal keys, and builds the tree bottom-up.
    Ok(entries.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    #[derive(Deserialize, Debug, PartialEq)]
    struct Holder {
        #[serde(deserialize_with = "super::deserialize")]
        map: BTreeMap<String, u32>,
    }

    #[test]
    fn reads_sorted_unsorted_and_repeated_keys_as_insertion_would() {
        let sorted: Holder = serde_json::from_str(r#"{"map": {"a": 1, "b": 2, "c": 3}}"#).unwrap();
        let expected: BTreeMap<String, u32> = [("a", 1), ("b", 2), ("c", 3)]
            .map(|(k, v)| (k.to_owned(), v))
            .into();
        assert_eq!(sorted.map, expected);
        let unsorted: Holder =
            serde_json::from_str(r#"{"map": {"c": 3, "a": 1, "b": 2}}"#).unwrap();
        assert_eq!(unsorted.map, expected);
        let repeated: Holder =
            serde_json::from_str(r#"{"map": {"a": 9, "b": 2, "a": 1, "c": 3}}"#).unwrap();
        assert_eq!(repeated.map, expected);
        let empty: Holder = serde_json::from_str(r#"{"map": {}}"#).unwrap();
        assert!(empty.map.is_empty());
        assert!(serde_json::from_str::<Holder>(r#"{"map": [1]}"#).is_err());
    }
}

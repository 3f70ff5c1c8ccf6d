//! Shared input sets: the files of a depset passed as an action's inputs (its own files and
//! its child sets, as the depset nests) in, kept once however many actions read them; an
//! action's `Inputs` (its own files plus the sets it refers to) out, flattened on request.
//!
//! A C++ compile declares every header of its library's transitive dependencies: stored
//! flat, each header is repeated in every compile that may include it (two million paths for
//! 200 libraries of 10 files). As sets, the plan stores each library's header set once, and
//! execution digests each set once per build, so a compile's key costs what it refers to, not
//! what its sets contain.
//!
//! In JSON an `Inputs` without sets is the plain list of paths it always was. With sets it is
//! `{"files": [...], "sets": [ids], "nodes": [...]}`, the nodes numbered in the order given
//! (children before parents); inside a build plan, which lists every set once
//! (`SetTable`), `nodes` is left out and the ids refer to the plan's table.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Digest, ExecPath};

/// A set of input files: its own files and its child sets, shared between the actions and
/// the sets that contain it.
pub struct InputSet {
    /// Sorted and unique.
    files: Vec<ExecPath>,
    children: Vec<Arc<InputSet>>,
    /// What it contains, by path (not content): equal sets have equal digests.
    paths: Digest,
    /// Every file, sorted and unique, made the first time it is asked for.
    flat: OnceLock<Vec<ExecPath>>,
}

impl InputSet {
    /// A set of `files` (any order, repeats allowed) and `children`. A set with no files of
    /// its own and one child is that child, and an empty child adds nothing.
    pub fn new(mut files: Vec<ExecPath>, children: Vec<Arc<InputSet>>) -> Arc<InputSet> {
        files.sort_unstable();
        files.dedup();
        let mut kept: Vec<Arc<InputSet>> = Vec::with_capacity(children.len());
        for child in children {
            if child.is_empty() || kept.iter().any(|k| Arc::ptr_eq(k, &child)) {
                continue;
            }
            kept.push(child);
        }
        if files.is_empty() && kept.len() == 1 {
            return kept.pop().expect("one child");
        }
        let mut h = blake3::Hasher::new();
        h.update(b"input-set");
        h.update(&(files.len() as u64).to_le_bytes());
        for f in &files {
            h.update(&(f.len() as u64).to_le_bytes());
            h.update(f.as_bytes());
        }
        h.update(&(kept.len() as u64).to_le_bytes());
        for c in &kept {
            h.update(&c.paths.0);
        }
        Arc::new(InputSet {
            files,
            children: kept,
            paths: Digest(*h.finalize().as_bytes()),
            flat: OnceLock::new(),
        })
    }

    /// The set already made with the same paths and structure, if any (from another target's
    /// analysis, or a stored result): sets equal by content are one set in memory and in the
    /// plan.
    pub fn interned(set: Arc<InputSet>) -> Arc<InputSet> {
        static INTERNED: std::sync::LazyLock<std::sync::Mutex<HashMap<Digest, Arc<InputSet>>>> =
            std::sync::LazyLock::new(Default::default);
        let mut interned = INTERNED.lock().unwrap_or_else(|e| e.into_inner());
        interned.entry(set.paths).or_insert(set).clone()
    }

    /// Its own files, sorted.
    pub fn files(&self) -> &[ExecPath] {
        &self.files
    }

    pub fn children(&self) -> &[Arc<InputSet>] {
        &self.children
    }

    /// The digest of its paths and structure (not of the files' contents).
    pub fn paths_digest(&self) -> Digest {
        self.paths
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.children.is_empty()
    }

    /// Every file of the set and its children, sorted and unique; made once per set.
    pub fn flat(&self) -> &[ExecPath] {
        self.flat.get_or_init(|| {
            if self.children.is_empty() {
                return self.files.clone();
            }
            let mut all: Vec<ExecPath> = self.files.clone();
            for c in &self.children {
                all.extend_from_slice(c.flat());
            }
            all.sort_unstable();
            all.dedup();
            all
        })
    }

    pub fn contains(&self, path: &str) -> bool {
        self.flat()
            .binary_search_by(|p| p.as_str().cmp(path))
            .is_ok()
    }

    /// The sets and every set below them, each once, children before parents.
    pub fn postorder(sets: &[Arc<InputSet>]) -> Vec<&Arc<InputSet>> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for set in sets {
            // Iterative: a chain of nested depsets may be thousands deep.
            if !seen.insert(Arc::as_ptr(set)) {
                continue;
            }
            let mut stack: Vec<(&Arc<InputSet>, usize)> = vec![(set, 0)];
            while let Some((node, next)) = stack.pop() {
                if let Some(child) = node.children.get(next) {
                    stack.push((node, next + 1));
                    if seen.insert(Arc::as_ptr(child)) {
                        stack.push((child, 0));
                    }
                } else {
                    out.push(node);
                }
            }
        }
        out
    }
}

impl fmt::Debug for InputSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "InputSet({} files, {} children, {})",
            self.files.len(),
            self.children.len(),
            &self.paths.to_hex()[..12]
        )
    }
}

/// What an action reads: files of its own and shared sets.
#[derive(Clone, Default)]
pub struct Inputs {
    /// Sorted and unique.
    files: Vec<ExecPath>,
    /// Unique (by identity).
    sets: Vec<Arc<InputSet>>,
}

impl Inputs {
    pub fn new(files: Vec<ExecPath>, sets: Vec<Arc<InputSet>>) -> Inputs {
        let mut inputs = Inputs {
            files,
            sets: Vec::new(),
        };
        inputs.files.sort_unstable();
        inputs.files.dedup();
        for s in sets {
            inputs.add_set(s);
        }
        inputs
    }

    pub fn add_file(&mut self, path: ExecPath) {
        if let Err(at) = self.files.binary_search(&path) {
            self.files.insert(at, path);
        }
    }

    pub fn add_files(&mut self, paths: impl IntoIterator<Item = ExecPath>) {
        self.files.extend(paths);
        self.files.sort_unstable();
        self.files.dedup();
    }

    pub fn add_set(&mut self, set: Arc<InputSet>) {
        if !set.is_empty() && !self.sets.iter().any(|s| Arc::ptr_eq(s, &set)) {
            self.sets.push(set);
        }
    }

    /// Its own files (not those of its sets), sorted.
    pub fn files(&self) -> &[ExecPath] {
        &self.files
    }

    pub fn sets(&self) -> &[Arc<InputSet>] {
        &self.sets
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.sets.is_empty()
    }

    /// Every input file, sorted and unique: what the action may read.
    pub fn flatten(&self) -> Vec<ExecPath> {
        match self.sets.as_slice() {
            [] => self.files.clone(),
            [one] if self.files.is_empty() => one.flat().to_vec(),
            sets => {
                let mut all = self.files.clone();
                for s in sets {
                    all.extend_from_slice(s.flat());
                }
                all.sort_unstable();
                all.dedup();
                all
            }
        }
    }

    /// Every input file, each once, in no particular order, without copying.
    pub fn for_each(&self, mut f: impl FnMut(&ExecPath)) {
        if self.sets.is_empty() {
            self.files.iter().for_each(f);
            return;
        }
        let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for p in self
            .files
            .iter()
            .chain(self.sets.iter().flat_map(|s| s.flat()))
        {
            if seen.insert(p.as_str()) {
                f(p);
            }
        }
    }

    pub fn contains(&self, path: &str) -> bool {
        self.files
            .binary_search_by(|p| p.as_str().cmp(path))
            .is_ok()
            || self.sets.iter().any(|s| s.contains(path))
    }

    /// The files of `self` that `other` does not hold, sorted. Sets `other` holds (by
    /// content) are skipped whole, so a compile's inputs less its headers cost what the
    /// compile adds to its header set, not the headers.
    pub fn minus(&self, other: &Inputs) -> Vec<ExecPath> {
        let held: std::collections::HashSet<Digest> = InputSet::postorder(&other.sets)
            .iter()
            .map(|s| s.paths)
            .collect();
        let mut left: Vec<ExecPath> = self.files.clone();
        let mut seen = std::collections::HashSet::new();
        let mut stack: Vec<&Arc<InputSet>> = self.sets.iter().collect();
        while let Some(set) = stack.pop() {
            if held.contains(&set.paths) || !seen.insert(set.paths) {
                continue;
            }
            left.extend_from_slice(&set.files);
            stack.extend(set.children.iter());
        }
        left.retain(|p| !other.contains(p));
        left.sort_unstable();
        left.dedup();
        left
    }

    /// The digest of every path it holds and how they are grouped (not their contents).
    pub fn paths_digest(&self) -> Digest {
        let mut h = blake3::Hasher::new();
        h.update(b"inputs");
        h.update(&(self.files.len() as u64).to_le_bytes());
        for f in &self.files {
            h.update(&(f.len() as u64).to_le_bytes());
            h.update(f.as_bytes());
        }
        h.update(&(self.sets.len() as u64).to_le_bytes());
        for s in &self.sets {
            h.update(&s.paths.0);
        }
        Digest(*h.finalize().as_bytes())
    }
}

impl From<Vec<ExecPath>> for Inputs {
    fn from(files: Vec<ExecPath>) -> Inputs {
        Inputs::new(files, Vec::new())
    }
}

impl PartialEq for Inputs {
    fn eq(&self, other: &Inputs) -> bool {
        self.files == other.files
            && self.sets.len() == other.sets.len()
            && self
                .sets
                .iter()
                .zip(&other.sets)
                .all(|(a, b)| a.paths == b.paths)
    }
}

impl Eq for Inputs {}

impl Hash for Inputs {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.files.hash(state);
        for s in &self.sets {
            s.paths.0.hash(state);
        }
    }
}

impl fmt::Debug for Inputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inputs")
            .field("files", &self.files)
            .field("sets", &self.sets)
            .finish()
    }
}

/// Every set the given inputs refer to, each once, children first: what a build plan
/// stores in its table.
pub struct SetTable {
    sets: Vec<Arc<InputSet>>,
    ids: HashMap<*const InputSet, u32>,
}

thread_local! {
    /// While a plan is written: the ids of its table's sets. While one is read: its sets.
    static WRITING: RefCell<Option<HashMap<*const InputSet, u32>>> = const { RefCell::new(None) };
    static READING: RefCell<Option<Vec<Arc<InputSet>>>> = const { RefCell::new(None) };
}

impl SetTable {
    pub fn of<'a>(inputs: impl IntoIterator<Item = &'a Inputs>) -> SetTable {
        let roots: Vec<Arc<InputSet>> = inputs
            .into_iter()
            .flat_map(|i| i.sets.iter().cloned())
            .collect();
        let sets: Vec<Arc<InputSet>> = InputSet::postorder(&roots).into_iter().cloned().collect();
        let ids = sets
            .iter()
            .enumerate()
            .map(|(i, s)| (Arc::as_ptr(s), i as u32))
            .collect();
        SetTable { sets, ids }
    }

    pub fn len(&self) -> usize {
        self.sets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// Runs `write` (which serializes `Inputs` found in this table by id) with the table
    /// in force on this thread.
    pub fn writing<T>(&self, write: impl FnOnce() -> T) -> T {
        let previous = WRITING.with(|w| w.replace(Some(self.ids.clone())));
        let out = write();
        WRITING.with(|w| *w.borrow_mut() = previous);
        out
    }
}

/// The sets of a plan being read, in force for the `Inputs` read after them on this thread
/// until dropped.
pub struct ReadingTable(Option<Vec<Arc<InputSet>>>);

impl Drop for ReadingTable {
    fn drop(&mut self) {
        let previous = self.0.take();
        READING.with(|r| *r.borrow_mut() = previous);
    }
}

/// Starts reading a plan: sets read by a `SetTable`'s `Deserialize` are in force until the
/// guard is dropped.
pub fn reading_table() -> ReadingTable {
    ReadingTable(READING.with(|r| r.replace(Some(Vec::new()))))
}

#[derive(Serialize, Deserialize)]
struct Node {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    files: Vec<ExecPath>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    children: Vec<u32>,
}

fn nodes_of(sets: &[&Arc<InputSet>], ids: &HashMap<*const InputSet, u32>) -> Vec<Node> {
    sets.iter()
        .map(|s| Node {
            files: s.files.clone(),
            children: s.children.iter().map(|c| ids[&Arc::as_ptr(c)]).collect(),
        })
        .collect()
}

fn sets_of<E: de::Error>(nodes: Vec<Node>) -> Result<Vec<Arc<InputSet>>, E> {
    let mut sets: Vec<Arc<InputSet>> = Vec::with_capacity(nodes.len());
    for node in nodes {
        let children = node
            .children
            .iter()
            .map(|&c| {
                sets.get(c as usize)
                    .cloned()
                    .ok_or_else(|| E::custom(format!("input set {c} comes after its parent")))
            })
            .collect::<Result<Vec<_>, E>>()?;
        sets.push(InputSet::interned(InputSet::new(node.files, children)));
    }
    Ok(sets)
}

impl Serialize for SetTable {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let sets: Vec<&Arc<InputSet>> = self.sets.iter().collect();
        nodes_of(&sets, &self.ids).serialize(s)
    }
}

/// Reading a plan's table installs its sets for the `ReadingTable` in force.
impl<'de> Deserialize<'de> for SetTable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SetTable, D::Error> {
        let sets = sets_of::<D::Error>(Vec::<Node>::deserialize(d)?)?;
        READING.with(|r| {
            if let Some(table) = r.borrow_mut().as_mut() {
                *table = sets.clone();
            }
        });
        Ok(SetTable {
            sets,
            ids: HashMap::new(),
        })
    }
}

impl Serialize for Inputs {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.sets.is_empty() {
            return self.files.serialize(s);
        }
        let in_table = WRITING.with(|w| {
            w.borrow().as_ref().and_then(|ids| {
                self.sets
                    .iter()
                    .map(|set| ids.get(&Arc::as_ptr(set)).copied())
                    .collect::<Option<Vec<u32>>>()
            })
        });
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("files", &self.files)?;
        match in_table {
            Some(ids) => map.serialize_entry("sets", &ids)?,
            None => {
                let all = InputSet::postorder(&self.sets);
                let ids: HashMap<*const InputSet, u32> = all
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (Arc::as_ptr(s), i as u32))
                    .collect();
                let roots: Vec<u32> = self.sets.iter().map(|s| ids[&Arc::as_ptr(s)]).collect();
                map.serialize_entry("sets", &roots)?;
                map.serialize_entry("nodes", &nodes_of(&all, &ids))?;
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Inputs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Inputs, D::Error> {
        d.deserialize_any(InputsVisitor)
    }
}

struct InputsVisitor;

impl<'de> Visitor<'de> for InputsVisitor {
    type Value = Inputs;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of exec paths, or an object of files and sets")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Inputs, A::Error> {
        let mut files = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(f) = seq.next_element::<ExecPath>()? {
            files.push(f);
        }
        Ok(Inputs::from(files))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Inputs, A::Error> {
        let mut files = Vec::new();
        let mut ids: Vec<u32> = Vec::new();
        let mut nodes: Option<Vec<Node>> = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "files" => files = map.next_value()?,
                "sets" => ids = map.next_value()?,
                "nodes" => nodes = Some(map.next_value()?),
                other => return Err(de::Error::unknown_field(other, &["files", "sets", "nodes"])),
            }
        }
        let sets = match nodes {
            Some(nodes) => {
                let local = sets_of::<A::Error>(nodes)?;
                pick(&local, &ids)?
            }
            None => READING.with(|r| match r.borrow().as_ref() {
                Some(table) => pick(table, &ids),
                None => Err(de::Error::custom(
                    "input sets refer to a plan's table, and none is being read",
                )),
            })?,
        };
        Ok(Inputs::new(files, sets))
    }
}

fn pick<E: de::Error>(table: &[Arc<InputSet>], ids: &[u32]) -> Result<Vec<Arc<InputSet>>, E> {
    ids.iter()
        .map(|&i| {
            table
                .get(i as usize)
                .cloned()
                .ok_or_else(|| E::custom(format!("no input set {i}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(p: &[&str]) -> Vec<ExecPath> {
        p.iter().map(|s| ExecPath::new(*s)).collect()
    }

    #[test]
    fn sets_flatten_share_and_round_trip() {
        let low = InputSet::new(paths(&["l/b.h", "l/a.h"]), vec![]);
        let mid = InputSet::new(paths(&["m/m.h"]), vec![low.clone()]);
        let top = InputSet::new(paths(&["t/t.h", "l/a.h"]), vec![mid.clone(), low.clone()]);
        // One child and nothing of its own: the child itself.
        assert!(Arc::ptr_eq(&InputSet::new(vec![], vec![mid.clone()]), &mid));
        let inputs = Inputs::new(paths(&["t/t.cc"]), vec![top.clone()]);
        let flat: Vec<String> = inputs.flatten().iter().map(|p| p.to_string()).collect();
        assert_eq!(flat, ["l/a.h", "l/b.h", "m/m.h", "t/t.cc", "t/t.h"]);
        assert!(inputs.contains("m/m.h") && inputs.contains("t/t.cc"));
        assert!(!inputs.contains("m/x.h"));

        // Standalone JSON carries its nodes; a set shared by two parents is written once.
        let json = serde_json::to_string(&inputs).unwrap();
        assert_eq!(json.matches("l/b.h").count(), 1, "{json}");
        let back: Inputs = serde_json::from_str(&json).unwrap();
        assert_eq!(back, inputs);
        assert_eq!(back.flatten(), inputs.flatten());
        // Without sets: the plain list it always was.
        let plain = Inputs::from(paths(&["b", "a"]));
        assert_eq!(serde_json::to_string(&plain).unwrap(), r#"["a","b"]"#);

        // In a table: ids only, and what is read refers to the table's sets.
        let other = Inputs::new(vec![], vec![mid.clone()]);
        let table = SetTable::of([&inputs, &other]);
        assert_eq!(table.len(), 3);
        let text = table.writing(|| serde_json::to_string(&(&table, &inputs, &other)).unwrap());
        assert!(!text.contains("nodes"), "{text}");
        let _reading = reading_table();
        let (_, a, b): (SetTable, Inputs, Inputs) = serde_json::from_str(&text).unwrap();
        assert_eq!(a, inputs);
        assert_eq!(b, other);
        assert!(Arc::ptr_eq(&a.sets()[0].children()[0], &b.sets()[0]));

        // A different file anywhere below is a different set.
        let low2 = InputSet::new(paths(&["l/a.h", "l/c.h"]), vec![]);
        let mid2 = InputSet::new(paths(&["m/m.h"]), vec![low2]);
        assert_ne!(mid.paths_digest(), mid2.paths_digest());
    }
}

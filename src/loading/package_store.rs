//! The package store: a package's loading result (its `Package`, plain data) and what its
//! loading read (the BUILD file, the .bzl files it loads transitively, the directories its
//! globs listed) in; on a later command, the same `Package` out while everything it read is
//! unchanged — so after an edit only the packages that read the edited file are evaluated.
//! A query about the target set alone gets the package without its rules' attributes, and
//! pays only for decoding that.
//!
//! One entry per package in a packed store (`core::pack`) under
//! `<output_base>/cache/packages/`, keyed by the package's name; it holds a `salt` (what
//! besides files decides every package: the forge binary, WORKSPACE's declarations and
//! repository mappings — given by the caller), the reads and the package, in postcard. The
//! pack verifies each entry against its digest: a damaged one is absent, so the package is
//! evaluated again and stored anew, never trusted.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Package, RuleTarget, TargetKind};
use crate::core::pack::PackStore;
use crate::core::{Digest, PackageId};
use crate::workspace::fs_deps::FsDeps;

/// An entry: what decides whether it may be used, then the package with its rules'
/// attributes left out (every target's name, kind, location and visibility: all a query of
/// names reads), then the rules whole, encoded apart so that a reader of names steps over
/// them by their length. At 50,000 genrules the attributes were most of a query's time.
#[derive(Deserialize)]
struct Stored<'a> {
    salt: &'a str,
    id: PackageId,
    reads: FsDeps,
    outline: Package,
    #[serde(borrow)]
    rules: Bytes<'a>,
}

#[derive(Serialize)]
struct StoredRef<'a> {
    salt: &'a str,
    id: &'a PackageId,
    reads: &'a FsDeps,
    outline: &'a Package,
    rules: Bytes<'a>,
}

/// Bytes encoded as one length and the bytes (serde writes a `&[u8]` as a sequence), and
/// read back borrowed from the entry.
struct Bytes<'a>(&'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Bytes<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <&'de [u8]>::deserialize(deserializer).map(Bytes)
    }
}

/// Calls `f` with `package` as a query of names sees it, every rule's attributes (and the
/// names of those given explicitly) taken out, then puts them back.
fn with_attributes_left_out<R>(package: &mut Package, f: impl FnOnce(&Package) -> R) -> R {
    let taken: Vec<_> = rules_mut(package)
        .map(|rule| {
            (
                std::mem::take(&mut rule.attrs),
                std::mem::take(&mut rule.explicit),
            )
        })
        .collect();
    let result = f(package);
    for (rule, (attrs, explicit)) in rules_mut(package).zip(taken) {
        rule.attrs = attrs;
        rule.explicit = explicit;
    }
    result
}

fn rules_mut(package: &mut Package) -> impl Iterator<Item = &mut RuleTarget> {
    package
        .targets
        .values_mut()
        .filter_map(|target| match &mut target.kind {
            TargetKind::Rule(rule) => Some(rule),
            _ => None,
        })
}

/// Leaves out every rule's attributes: what a query of names keeps of a package, so the
/// whole workspace's attributes are never in memory at once.
pub fn drop_attributes(package: &mut Package) {
    for rule in rules_mut(package) {
        rule.attrs = Default::default();
        rule.explicit = Default::default();
    }
}

/// Where loading results are kept between commands.
pub struct PackageStore {
    pack: PackStore,
    /// Hex digest of everything besides the files read that decides a package.
    salt: String,
}

impl PackageStore {
    /// A store in `dir` whose entries are valid only with the same `salt`.
    pub fn new(dir: PathBuf, salt: Digest) -> PackageStore {
        PackageStore {
            pack: PackStore::new(dir),
            salt: salt.to_hex(),
        }
    }

    fn key(id: &PackageId) -> Digest {
        Digest::of_bytes(format!("@{}//{}", id.repo, id.package).as_bytes())
    }

    /// The stored package `id` and what it read, if the entry is intact, was made with this
    /// salt, and everything it read is unchanged.
    pub fn load(&self, id: &PackageId) -> Option<(Package, FsDeps)> {
        self.read(id, true)
    }

    /// As `load`, with every rule's attributes left out (`drop_attributes`), which are then
    /// not decoded at all: for a query about the target set alone.
    pub fn load_without_attributes(&self, id: &PackageId) -> Option<(Package, FsDeps)> {
        self.read(id, false)
    }

    fn read(&self, id: &PackageId, attributes: bool) -> Option<(Package, FsDeps)> {
        let body = self.pack.get(&Self::key(id))?;
        let stored: Stored = postcard::from_bytes(&body).ok()?;
        if stored.salt != self.salt || stored.id != *id || !stored.reads.unchanged() {
            return None;
        }
        let mut package = stored.outline;
        if attributes {
            let rules: Vec<RuleTarget> = postcard::from_bytes(stored.rules.0).ok()?;
            let mut rules = rules.into_iter();
            for rule in rules_mut(&mut package) {
                *rule = rules.next()?;
            }
            if rules.next().is_some() {
                return None;
            }
        }
        Some((package, stored.reads))
    }

    /// Keeps `package`, loaded from `reads`, for later commands (once `flush`ed). The
    /// package is only borrowed mutably to write it without its attributes, as it is read
    /// back by a query of names; it is returned as it came.
    pub fn store(
        &self,
        id: &PackageId,
        reads: &FsDeps,
        package: &mut Package,
    ) -> Result<(), String> {
        let rules: Vec<&RuleTarget> = package.targets.values().filter_map(|t| t.rule()).collect();
        let rules = postcard::to_allocvec(&rules).map_err(|e| e.to_string())?;
        let body = with_attributes_left_out(package, |outline| {
            postcard::to_allocvec(&StoredRef {
                salt: &self.salt,
                id,
                reads,
                outline,
                rules: Bytes(&rules),
            })
        })
        .map_err(|e| e.to_string())?;
        self.pack
            .put(Self::key(id), &body)
            .map_err(|e| e.to_string())
    }

    /// Makes what was stored visible to later commands (dropping the store does too).
    pub fn flush(&self) -> Result<(), String> {
        self.pack.flush().map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::sync::Arc;

    use super::*;
    use crate::loading::Loader;
    use crate::workspace::{OutputBaseOptions, Workspace};

    fn loader(
        root: &std::path::Path,
        out: &std::path::Path,
        store_dir: &std::path::Path,
    ) -> Loader {
        let options = OutputBaseOptions {
            output_base: Some(out.to_owned()),
            output_user_root: None,
        };
        let workspace = Arc::new(Workspace::discover(root, &options).expect("workspace"));
        Loader::new(workspace)
            .expect("loader")
            .with_package_store(PackageStore::new(
                store_dir.to_owned(),
                Digest::of_bytes(b"salt"),
            ))
    }

    #[test]
    fn stored_package_round_trips_and_a_damaged_entry_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("ws");
        fs::create_dir_all(root.join("pkg")).unwrap();
        fs::write(root.join("WORKSPACE"), "").unwrap();
        fs::write(
            root.join("pkg/defs.bzl"),
            "def twice(name):\n    native.genrule(name = name, outs = [name + \".o\"], cmd = \"x\", srcs = select({\"//conditions:default\": []}))\n",
        )
        .unwrap();
        fs::write(
            root.join("pkg/BUILD"),
            "load(\":defs.bzl\", \"twice\")\ntwice(\"a\")\nfilegroup(name = \"g\", srcs = glob([\"*.txt\"]))\n",
        )
        .unwrap();
        let store_dir = dir.path().join("store");
        let id = PackageId::new("", "pkg");
        let first = loader(&root, &dir.path().join("out"), &store_dir);
        let package = first.load_package(&id).expect("package loads");
        assert_eq!(first.packages_evaluated(), 1);
        drop(first);

        let store = PackageStore::new(store_dir.clone(), Digest::of_bytes(b"salt"));
        let (stored, reads) = store.load(&id).expect("stored");
        assert_eq!(stored, package);
        assert!(
            reads.len() >= 3,
            "BUILD, defs.bzl and the glob's listing: {reads:?}"
        );

        // Another salt (another forge, another WORKSPACE): not reused.
        let other = PackageStore::new(store_dir.clone(), Digest::of_bytes(b"other"));
        assert!(other.load(&id).is_none());

        // A damaged entry fails its digest.
        let (path, offset, len) = store.pack.location(&PackageStore::key(&id)).unwrap();
        let mut bytes = fs::read(&path).unwrap();
        bytes[(offset + u64::from(len) - 1) as usize] ^= 0x55;
        fs::write(&path, &bytes).unwrap();
        let store = PackageStore::new(store_dir.clone(), Digest::of_bytes(b"salt"));
        assert!(store.load(&id).is_none());

        // A new file the glob matches: the package is evaluated again.
        let second = loader(&root, &dir.path().join("out"), &store_dir);
        second.load_package(&id).expect("package loads");
        assert_eq!(second.packages_evaluated(), 1, "damaged entry re-evaluated");
        drop(second);
        let third = loader(&root, &dir.path().join("out"), &store_dir);
        third.load_package(&id).expect("package loads");
        assert_eq!(third.packages_evaluated(), 0, "unchanged package reused");
        fs::write(root.join("pkg/new.txt"), "").unwrap();
        let fourth = loader(&root, &dir.path().join("out"), &store_dir);
        let grown = fourth.load_package(&id).expect("package loads");
        assert_eq!(fourth.packages_evaluated(), 1);
        assert!(grown.targets.contains_key("new.txt"));
    }

    #[test]
    fn a_query_of_names_reads_the_package_without_decoding_its_attributes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("ws");
        fs::create_dir_all(root.join("pkg")).unwrap();
        fs::write(root.join("WORKSPACE"), "").unwrap();
        fs::write(
            root.join("pkg/BUILD"),
            "genrule(name = \"a\", srcs = [\"a.txt\"], outs = [\"a.o\"], cmd = \"x\")\n\
             filegroup(name = \"g\", srcs = [\":a\"], visibility = [\"//visibility:public\"])\n",
        )
        .unwrap();
        let store_dir = dir.path().join("store");
        let id = PackageId::new("", "pkg");
        let first = loader(&root, &dir.path().join("out"), &store_dir);
        let package = first.load_package(&id).expect("package loads");
        drop(first);
        let mut outline = package.clone();
        drop_attributes(&mut outline);
        assert_ne!(outline, package, "the rules had attributes to leave out");

        let store = PackageStore::new(store_dir.clone(), Digest::of_bytes(b"salt"));
        let (whole, reads) = store.load(&id).expect("stored");
        assert_eq!(whole, package, "the attributes are put back in their rules");
        let (names, _) = store.load_without_attributes(&id).expect("stored");
        assert_eq!(names, outline);
        assert_eq!(names.targets["a.o"].kind_name(), "generated file");
        assert_eq!(names.targets["g"].kind_name(), "filegroup rule");

        // An intact entry (its digest matches) whose attributes do not decode: a query of
        // names never reads them; a whole load refuses the entry.
        let mut stored = outline.clone();
        let body = with_attributes_left_out(&mut stored, |outline| {
            postcard::to_allocvec(&StoredRef {
                salt: &store.salt,
                id: &id,
                reads: &reads,
                outline,
                rules: Bytes(&[0xff; 3]),
            })
        })
        .unwrap();
        store.pack.put(PackageStore::key(&id), &body).unwrap();
        store.flush().unwrap();
        let store = PackageStore::new(store_dir.clone(), Digest::of_bytes(b"salt"));
        assert_eq!(
            store.load_without_attributes(&id).expect("names").0,
            outline
        );
        assert!(store.load(&id).is_none());
        let again = loader(&root, &dir.path().join("out"), &store_dir);
        assert_eq!(again.load_package(&id).expect("package loads"), package);
        assert_eq!(
            again.packages_evaluated(),
            1,
            "evaluated again, not trusted"
        );
    }
}

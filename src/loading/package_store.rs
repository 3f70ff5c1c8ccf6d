//! The package store: a package's loading result (its `Package`, plain data) and what its
//! loading read (the BUILD file, the .bzl files it loads transitively, the directories its
//! globs listed) in; on a later command, the same `Package` out while everything it read is
//! unchanged — so after an edit only the packages that read the edited file are evaluated.
//!
//! One entry per package in a packed store (`core::pack`) under
//! `<output_base>/cache/packages/`, keyed by the package's name; it holds a `salt` (what
//! besides files decides every package: the forge binary, WORKSPACE's declarations and
//! repository mappings — given by the caller), the reads and the package, in postcard. The
//! pack verifies each entry against its digest: a damaged one is absent, so the package is
//! evaluated again and stored anew, never trusted.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Package;
use crate::core::pack::PackStore;
use crate::core::{Digest, PackageId};
use crate::workspace::fs_deps::FsDeps;

#[derive(Deserialize)]
struct Stored {
    salt: String,
    id: PackageId,
    reads: FsDeps,
    package: Package,
}

#[derive(Serialize)]
struct StoredRef<'a> {
    salt: &'a str,
    id: &'a PackageId,
    reads: &'a FsDeps,
    package: &'a Package,
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
        let body = self.pack.get(&Self::key(id))?;
        let stored: Stored = postcard::from_bytes(&body).ok()?;
        if stored.salt != self.salt || stored.id != *id || !stored.reads.unchanged() {
            return None;
        }
        Some((stored.package, stored.reads))
    }

    /// Keeps `package`, loaded from `reads`, for later commands (once `flush`ed).
    pub fn store(&self, id: &PackageId, reads: &FsDeps, package: &Package) -> Result<(), String> {
        let body = postcard::to_allocvec(&StoredRef {
            salt: &self.salt,
            id,
            reads,
            package,
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
}

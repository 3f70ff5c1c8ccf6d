//! Input roots as REAPI `Directory` trees: files (path, digest, executable) and empty
//! directories in, the root digest and every `Directory` message (encoded, with its digest)
//! out; and back, a root digest and the `Directory` messages in, the files and directories
//! of the tree out (checked: names are plain, nothing is listed twice, no cycle).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use prost::Message;

use super::{HashFn, proto};

/// One directory being assembled.
#[derive(Default)]
struct Entries {
    files: BTreeMap<String, (proto::Digest, bool)>,
    dirs: BTreeSet<String>,
}

/// An input root being assembled; directories are made for every parent.
#[derive(Default)]
pub struct InputTree {
    /// By relative path; "" is the root.
    dirs: BTreeMap<String, Entries>,
}

/// A path that cannot be in an input root, or that is both a file and a directory.
#[derive(Debug, PartialEq, Eq)]
pub struct TreeError(pub String);

impl std::fmt::Display for TreeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_path(path: &str) -> Result<(), TreeError> {
    if path.is_empty()
        || path.starts_with('/')
        || path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(TreeError(format!(
            "'{path}' is not a relative path without '.' or '..'"
        )));
    }
    Ok(())
}

impl InputTree {
    pub fn new() -> InputTree {
        let mut dirs = BTreeMap::new();
        dirs.insert(String::new(), Entries::default());
        InputTree { dirs }
    }

    /// Makes `path` and its parents directories.
    pub fn add_dir(&mut self, path: &str) -> Result<(), TreeError> {
        if path.is_empty() {
            return Ok(());
        }
        check_path(path)?;
        if self.dirs.contains_key(path) {
            return Ok(());
        }
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        self.add_dir(parent)?;
        let entries = self.dirs.get_mut(parent).expect("parent just made");
        if entries.files.contains_key(name) {
            return Err(TreeError(format!(
                "'{path}' is both a file and a directory"
            )));
        }
        entries.dirs.insert(name.to_owned());
        self.dirs.insert(path.to_owned(), Entries::default());
        Ok(())
    }

    pub fn add_file(
        &mut self,
        path: &str,
        digest: proto::Digest,
        executable: bool,
    ) -> Result<(), TreeError> {
        check_path(path)?;
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        self.add_dir(parent)?;
        let entries = self.dirs.get_mut(parent).expect("parent just made");
        if entries.dirs.contains(name) {
            return Err(TreeError(format!(
                "'{path}' is both a file and a directory"
            )));
        }
        if let Some(old) = entries.files.get(name)
            && *old != (digest.clone(), executable)
        {
            return Err(TreeError(format!(
                "'{path}' is listed twice, with two contents"
            )));
        }
        entries.files.insert(name.to_owned(), (digest, executable));
        Ok(())
    }

    /// The root's digest and every directory message with its digest (children first).
    pub fn encode(&self, hash: HashFn) -> (proto::Digest, Vec<(proto::Digest, Vec<u8>)>) {
        let mut digests: HashMap<&str, proto::Digest> = HashMap::new();
        let mut blobs = Vec::with_capacity(self.dirs.len());
        // Deepest first, so every child is encoded before its parent.
        let mut paths: Vec<&String> = self.dirs.keys().collect();
        paths.sort_by_key(|p| {
            std::cmp::Reverse(if p.is_empty() {
                0
            } else {
                p.matches('/').count() + 1
            })
        });
        for path in paths {
            let entries = &self.dirs[path];
            let child = |name: &str| match path.is_empty() {
                true => name.to_owned(),
                false => format!("{path}/{name}"),
            };
            let directory = proto::Directory {
                files: entries
                    .files
                    .iter()
                    .map(|(name, (digest, executable))| proto::FileNode {
                        name: name.clone(),
                        digest: Some(digest.clone()),
                        is_executable: *executable,
                        ..Default::default()
                    })
                    .collect(),
                directories: entries
                    .dirs
                    .iter()
                    .map(|name| proto::DirectoryNode {
                        name: name.clone(),
                        digest: Some(digests[child(name).as_str()].clone()),
                    })
                    .collect(),
                ..Default::default()
            };
            let bytes = directory.encode_to_vec();
            let digest = hash.digest(&bytes);
            digests.insert(path.as_str(), digest.clone());
            blobs.push((digest, bytes));
        }
        (digests[""].clone(), blobs)
    }
}

/// One file of a flattened tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeFile {
    pub path: String,
    pub digest: proto::Digest,
    pub executable: bool,
}

/// The files and directories (every one, parents before children) of the tree rooted at
/// `root`, whose `Directory` messages `directories` holds by hash, under `prefix`.
pub fn flatten(
    root: &proto::Digest,
    directories: &HashMap<String, proto::Directory>,
    prefix: &str,
) -> Result<(Vec<TreeFile>, Vec<String>), TreeError> {
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    let mut stack = vec![(prefix.to_owned(), root.clone(), 0usize)];
    while let Some((path, digest, depth)) = stack.pop() {
        if depth > 256 {
            return Err(TreeError(format!("the tree under '{prefix}' is too deep")));
        }
        let directory = directories.get(&digest.hash).ok_or_else(|| {
            TreeError(format!(
                "the directory {}/{} of '{path}' is missing",
                digest.hash, digest.size_bytes
            ))
        })?;
        if !path.is_empty() {
            dirs.push(path.clone());
        }
        let join = |name: &str| -> Result<String, TreeError> {
            if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                return Err(TreeError(format!(
                    "'{name}' in '{path}' is not a file name"
                )));
            }
            Ok(match path.is_empty() {
                true => name.to_owned(),
                false => format!("{path}/{name}"),
            })
        };
        for f in &directory.files {
            let digest = f
                .digest
                .clone()
                .ok_or_else(|| TreeError(format!("'{}' has no digest", f.name)))?;
            files.push(TreeFile {
                path: join(&f.name)?,
                digest,
                executable: f.is_executable,
            });
        }
        if !directory.symlinks.is_empty() {
            return Err(TreeError(format!(
                "'{path}' holds symbolic links, which forge does not materialise"
            )));
        }
        for d in &directory.directories {
            let digest = d
                .digest
                .clone()
                .ok_or_else(|| TreeError(format!("'{}' has no digest", d.name)))?;
            stack.push((join(&d.name)?, digest, depth + 1));
        }
    }
    dirs.sort();
    Ok((files, dirs))
}

/// The directory messages of a `Tree` by hash, and its root's digest.
pub fn tree_directories(
    tree: &proto::Tree,
    hash: HashFn,
) -> (proto::Digest, HashMap<String, proto::Directory>) {
    let mut map = HashMap::new();
    for child in &tree.children {
        map.insert(hash.digest(&child.encode_to_vec()).hash, child.clone());
    }
    let root = tree.root.clone().unwrap_or_default();
    let digest = hash.digest(&root.encode_to_vec());
    map.insert(digest.hash.clone(), root);
    (digest, map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trees_round_trip_and_refuse_conflicts() {
        let h = HashFn::Sha256;
        let mut tree = InputTree::new();
        tree.add_file("a/b/c.txt", h.digest(b"c"), false).unwrap();
        tree.add_file("a/x.sh", h.digest(b"x"), true).unwrap();
        tree.add_dir("empty/dir").unwrap();
        assert!(tree.add_dir("a/x.sh").is_err());
        assert!(tree.add_file("a/b", h.digest(b"b"), false).is_err());
        assert!(tree.add_file("../up", h.digest(b"u"), false).is_err());
        assert!(tree.add_file("a/x.sh", h.digest(b"other"), true).is_err());
        let (root, blobs) = tree.encode(h);
        let directories: HashMap<String, proto::Directory> = blobs
            .iter()
            .map(|(d, bytes)| {
                (
                    d.hash.clone(),
                    proto::Directory::decode(bytes.as_slice()).unwrap(),
                )
            })
            .collect();
        let (files, dirs) = flatten(&root, &directories, "").unwrap();
        let mut paths: Vec<_> = files
            .iter()
            .map(|f| (f.path.as_str(), f.executable))
            .collect();
        paths.sort();
        assert_eq!(paths, [("a/b/c.txt", false), ("a/x.sh", true)]);
        assert_eq!(dirs, ["a", "a/b", "empty", "empty/dir"]);
        // The same content gives the same root, whatever the order it was added in.
        let mut again = InputTree::new();
        again.add_dir("empty/dir").unwrap();
        again.add_file("a/x.sh", h.digest(b"x"), true).unwrap();
        again.add_file("a/b/c.txt", h.digest(b"c"), false).unwrap();
        assert_eq!(again.encode(h).0, root);
    }
}

//! `ExecPath`: a file's path relative to the exec root (`pkg/a.txt`, `external/repo/x`,
//! `forge-out/k8-fastbuild/bin/pkg/gen.txt`), the one name every phase after loading uses for
//! a file. A type of its own so it is never confused with a workspace path, an absolute path
//! or a runfiles path; stored as its string, so plans and keys keep their format.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ExecPath(String);

impl ExecPath {
    pub fn new(path: impl Into<String>) -> ExecPath {
        ExecPath(path.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl Deref for ExecPath {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for ExecPath {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for ExecPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl AsRef<Path> for ExecPath {
    fn as_ref(&self) -> &Path {
        Path::new(&self.0)
    }
}

impl fmt::Display for ExecPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for ExecPath {
    fn from(path: String) -> ExecPath {
        ExecPath(path)
    }
}

impl From<&str> for ExecPath {
    fn from(path: &str) -> ExecPath {
        ExecPath(path.to_owned())
    }
}

impl From<ExecPath> for String {
    fn from(path: ExecPath) -> String {
        path.0
    }
}

impl PartialEq<str> for ExecPath {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for ExecPath {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for ExecPath {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn stored_as_its_string_and_looked_up_by_str() {
        let p = ExecPath::new("pkg/a.txt");
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"pkg/a.txt\"");
        let back: ExecPath = serde_json::from_str("\"pkg/a.txt\"").unwrap();
        assert_eq!(back, p);
        let set: BTreeSet<ExecPath> = [p.clone()].into();
        assert!(set.contains("pkg/a.txt"));
        assert_eq!(p, "pkg/a.txt");
        assert!(p.ends_with(".txt"));
    }
}

//! Labels and target patterns: text in, validated `Label` / `TargetPattern` out.
//!
//! Printing is canonical (`//pkg:name`, `@repo//pkg:name`), so the same target always prints
//! the same way whatever spelling the user wrote. No I/O happens here. A label written in
//! an external repository goes through that repository's `repo_mapping` (`repo_mappings`).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

/// Repository -> its `repo_mapping` (`x` -> `y`: in that repository's files `@x//...` means
/// `@y//...`), without the `@`s.
pub type RepoMappings = HashMap<String, HashMap<String, String>>;

/// The `repo_mapping`s WORKSPACE declared. One process-wide table, as forge runs one command
/// per process and labels are parsed everywhere (loading, analysis); `ops` sets it once the
/// WORKSPACE file is evaluated.
static REPO_MAPPINGS: RwLock<Option<Arc<RepoMappings>>> = RwLock::new(None);

/// Sets the `repo_mapping`s labels written in external repositories go through.
pub fn set_repo_mappings(mappings: RepoMappings) {
    let mappings = (!mappings.is_empty()).then(|| Arc::new(mappings));
    *REPO_MAPPINGS.write().unwrap_or_else(|e| e.into_inner()) = mappings;
}

/// `repo` as a file of repository `from` means it.
fn mapped(from: &str, repo: &str) -> Option<String> {
    if from.is_empty() {
        return None;
    }
    let mappings = REPO_MAPPINGS.read().unwrap_or_else(|e| e.into_inner());
    mappings.as_ref()?.get(from)?.get(repo).cloned()
}

/// A name for one target: `@repo//package:name`. `repo` is empty for the main repository.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Label {
    pub repo: String,
    pub package: String,
    pub name: String,
}

/// Stored as its canonical text, so labels can be keys of maps in JSON.
impl serde::Serialize for Label {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Label {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Label, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Label::parse(&text, &PackageId::default()).map_err(serde::de::Error::custom)
    }
}

/// The package and repository a relative label is read against.
#[derive(
    Clone,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Debug,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct PackageId {
    pub repo: String,
    pub package: String,
}

impl PackageId {
    pub fn new(repo: &str, package: &str) -> Self {
        PackageId {
            repo: repo.to_owned(),
            package: package.to_owned(),
        }
    }

    /// The label of `name` inside this package.
    pub fn label(&self, name: &str) -> Label {
        Label {
            repo: self.repo.clone(),
            package: self.package.clone(),
            name: name.to_owned(),
        }
    }

    /// True when `self` is `other` or lies below it.
    pub fn is_within(&self, other: &PackageId) -> bool {
        self.repo == other.repo && package_is_within(&self.package, &other.package)
    }
}

/// True when package `inner` is `outer` or one of its subpackages.
pub fn package_is_within(inner: &str, outer: &str) -> bool {
    outer.is_empty()
        || inner == outer
        || (inner.starts_with(outer) && inner.as_bytes().get(outer.len()) == Some(&b'/'))
}

impl fmt::Display for PackageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.repo.is_empty() {
            write!(f, "@{}", self.repo)?;
        }
        write!(f, "//{}", self.package)
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.repo.is_empty() {
            write!(f, "@{}", self.repo)?;
        }
        write!(f, "//{}:{}", self.package, self.name)
    }
}

/// Why a label or pattern (`text`) could not be read; the message says what to change. The
/// checks of one part of a label (`validate_repo`, `_package`, `_name`) give that part as
/// `text`, and a `reason` that reads on its own, for messages that say where the part came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid label '{text}': {reason}")]
pub struct LabelError {
    pub text: String,
    pub reason: String,
}

impl LabelError {
    /// The same reason, about the whole label `text` a bad part of which was checked.
    fn within(self, text: &str) -> LabelError {
        bad(text, self.reason)
    }
}

fn bad(text: &str, reason: impl Into<String>) -> LabelError {
    LabelError {
        text: text.to_owned(),
        reason: reason.into(),
    }
}

impl Label {
    pub fn package_id(&self) -> PackageId {
        PackageId {
            repo: self.repo.clone(),
            package: self.package.clone(),
        }
    }

    /// Parses `text` as Bazel does, reading `:name`, `name` and `pkg:name` forms against
    /// `base` (the package of the BUILD file, or of the current directory on the command line).
    pub fn parse(text: &str, base: &PackageId) -> Result<Label, LabelError> {
        let (repo, rest) = split_repo(text, base)?;
        if repo_given(text) && rest.is_empty() {
            // `@repo` alone is `@repo//:repo`, as in Bazel.
            return Ok(Label {
                name: repo.clone(),
                repo,
                package: String::new(),
            });
        }
        let (package, name) = if let Some(abs) = rest.strip_prefix("//") {
            match abs.split_once(':') {
                Some((pkg, name)) => (pkg.to_owned(), name.to_owned()),
                None => {
                    // `//pkg` means `//pkg:pkg`; `//` alone has no name to borrow.
                    let last = abs.rsplit('/').next().unwrap_or("");
                    if last.is_empty() {
                        if abs.is_empty() {
                            return Err(bad(
                                text,
                                "the root package has no default target; write '//:name'",
                            ));
                        }
                        return Err(bad(text, "package names may not end with '/'"));
                    }
                    (abs.to_owned(), last.to_owned())
                }
            }
        } else if repo_given(text) {
            return Err(bad(
                text,
                "a repository name must be followed by '//', as in '@repo//pkg:name'",
            ));
        } else if let Some(name) = rest.strip_prefix(':') {
            (base.package.clone(), name.to_owned())
        } else if let Some((pkg, name)) = rest.split_once(':') {
            // `sub:name` inside package `pkg` is `//pkg/sub:name`.
            (join_package(&base.package, pkg), name.to_owned())
        } else {
            (base.package.clone(), rest.to_owned())
        };
        validate_package(&package).map_err(|e| e.within(text))?;
        validate_name(&name).map_err(|e| e.within(text))?;
        Ok(Label {
            repo,
            package,
            name,
        })
    }
}

fn repo_given(text: &str) -> bool {
    text.starts_with('@')
}

/// Splits off `@repo`; `@` followed by `//` or `@@` is the main repository.
fn split_repo<'a>(text: &'a str, base: &PackageId) -> Result<(String, &'a str), LabelError> {
    let Some(after_at) = text.strip_prefix('@') else {
        return Ok((base.repo.clone(), text));
    };
    let after_at = after_at.strip_prefix('@').unwrap_or(after_at);
    let end = after_at.find("//").unwrap_or(after_at.len());
    let repo = &after_at[..end];
    if repo.contains(':') {
        return Err(bad(
            text,
            "a repository name must be followed by '//', as in '@repo//pkg:name'",
        ));
    }
    validate_repo(repo).map_err(|e| e.within(text))?;
    let repo = mapped(&base.repo, repo).unwrap_or_else(|| repo.to_owned());
    let repo = repo.as_str();
    let rest = &after_at[end..];
    if rest.is_empty() {
        // `@repo` alone is `@repo//:repo`, as in Bazel.
        if repo.is_empty() {
            return Err(bad(text, "empty repository name"));
        }
        return Ok((repo.to_owned(), ""));
    }
    Ok((repo.to_owned(), rest))
}

pub fn validate_repo(repo: &str) -> Result<(), LabelError> {
    if repo.is_empty() {
        return Ok(());
    }
    if !repo.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(bad(
            repo,
            format!("invalid repository name '@{repo}': it must start with a letter"),
        ));
    }
    if let Some(c) = repo
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '~' | '+')))
    {
        return Err(bad(
            repo,
            format!(
                "invalid repository name '@{repo}': '{c}' is not allowed (use letters, digits, '_', '-', '.')"
            ),
        ));
    }
    Ok(())
}

pub fn validate_package(package: &str) -> Result<(), LabelError> {
    if package.is_empty() {
        return Ok(());
    }
    if package.starts_with('/') {
        return Err(bad(package, "package names may not start with '/'"));
    }
    if package.ends_with('/') {
        return Err(bad(package, "package names may not end with '/'"));
    }
    if package.contains("//") {
        return Err(bad(package, "package names may not contain '//'"));
    }
    for segment in package.split('/') {
        // Bazel refuses any component of only dots: `...` is a pattern, never a package.
        if !segment.is_empty() && segment.chars().all(|c| c == '.') {
            return Err(bad(
                package,
                format!("package names may not contain '{segment}' as a path segment"),
            ));
        }
    }
    if let Some(c) = package
        .chars()
        .find(|c| c.is_control() || matches!(c, ':' | '\\' | '"' | '\''))
    {
        return Err(bad(
            package,
            format!("package names may not contain '{}'", c.escape_debug()),
        ));
    }
    Ok(())
}

pub fn validate_name(name: &str) -> Result<(), LabelError> {
    if name.is_empty() {
        return Err(bad(name, "empty target name"));
    }
    if name.contains(':') {
        return Err(bad(
            name,
            format!("invalid target name '{name}': target names may not contain ':'"),
        ));
    }
    if name.starts_with('/') {
        return Err(bad(
            name,
            format!("invalid target name '{name}': target names may not start with '/'"),
        ));
    }
    if name.ends_with('/') {
        return Err(bad(
            name,
            format!("invalid target name '{name}': target names may not end with '/'"),
        ));
    }
    if name.contains("//") {
        return Err(bad(
            name,
            format!("invalid target name '{name}': target names may not contain '//'"),
        ));
    }
    for segment in name.split('/') {
        if segment == "." || segment == ".." {
            return Err(bad(
                name,
                format!(
                    "invalid target name '{name}': target names may not contain '{segment}' as a path segment"
                ),
            ));
        }
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(bad(
            name,
            format!(
                "invalid target name '{name}': target names may not contain '{}'",
                c.escape_debug()
            ),
        ));
    }
    Ok(())
}

fn join_package(base: &str, sub: &str) -> String {
    match (base.is_empty(), sub.is_empty()) {
        (true, _) => sub.to_owned(),
        (false, true) => base.to_owned(),
        (false, false) => format!("{base}/{sub}"),
    }
}

/// What a single command-line pattern selects.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum TargetPattern {
    /// One target, `//pkg:name`.
    Single(Label),
    /// Every target of one package: `//pkg:all` (rules only) or `//pkg:*` (files too).
    Package { package: PackageId, files_too: bool },
    /// Every package at or below a directory: `//pkg/...`, `//pkg/...:*`.
    Recursive { prefix: PackageId, files_too: bool },
}

impl fmt::Display for TargetPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let suffix = |files_too: bool| if files_too { "*" } else { "all" };
        match self {
            TargetPattern::Single(label) => write!(f, "{label}"),
            TargetPattern::Package { package, files_too } => {
                write!(f, "{package}:{}", suffix(*files_too))
            }
            TargetPattern::Recursive { prefix, files_too } => {
                let sep = if prefix.package.is_empty() { "" } else { "/" };
                write!(f, "{prefix}{sep}...")?;
                if *files_too {
                    write!(f, ":*")?;
                }
                Ok(())
            }
        }
    }
}

impl TargetPattern {
    /// Parses one pattern relative to `cwd` (the package of the user's current directory).
    pub fn parse(text: &str, cwd: &PackageId) -> Result<TargetPattern, LabelError> {
        let (repo, rest) = split_repo(text, cwd)?;
        let (absolute, body) = match rest.strip_prefix("//") {
            Some(body) => (true, body),
            None if repo_given(text) => {
                return Label::parse(text, cwd).map(TargetPattern::Single);
            }
            None => (false, rest),
        };
        let (path, target) = match body.split_once(':') {
            Some((p, t)) => (p, Some(t)),
            None => (body, None),
        };
        let resolve = |pkg: &str| -> Result<PackageId, LabelError> {
            let package = if absolute {
                pkg.to_owned()
            } else {
                join_package(&cwd.package, pkg)
            };
            validate_package(&package).map_err(|e| e.within(text))?;
            Ok(PackageId {
                repo: repo.clone(),
                package,
            })
        };
        let recursive = path == "..." || path.ends_with("/...");
        if recursive {
            let prefix = resolve(path.strip_suffix("...").unwrap().trim_end_matches('/'))?;
            let files_too = match target {
                None | Some("all") => false,
                Some("*") | Some("all-targets") => true,
                Some(other) => {
                    return Err(bad(
                        text,
                        format!(
                            "'{other}' cannot follow '...'; use ':all' (rules) or ':*' (all targets)"
                        ),
                    ));
                }
            };
            return Ok(TargetPattern::Recursive { prefix, files_too });
        }
        match target {
            Some("all") | Some("*") | Some("all-targets") => Ok(TargetPattern::Package {
                package: resolve(path)?,
                files_too: target != Some("all"),
            }),
            _ if absolute => Label::parse(&format!("{}{rest}", repo_prefix(&repo)), cwd)
                .map(TargetPattern::Single)
                .map_err(|e| bad(text, e.reason)),
            _ => Label::parse(rest, cwd)
                .map(|mut l| {
                    l.repo = repo.clone();
                    TargetPattern::Single(l)
                })
                .map_err(|e| bad(text, e.reason)),
        }
    }
}

fn repo_prefix(repo: &str) -> String {
    if repo.is_empty() {
        String::new()
    } else {
        format!("@{repo}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_in_a_repository_with_a_repo_mapping_go_through_it() {
        // Names no other test uses: the table is process-wide.
        let mut mapping = HashMap::new();
        mapping.insert("mapped_from_test".to_owned(), "mapped_to_test".to_owned());
        set_repo_mappings(HashMap::from([("mapping_user_test".to_owned(), mapping)]));
        let inside = PackageId::new("mapping_user_test", "pkg");
        let l = Label::parse("@mapped_from_test//a:b", &inside).unwrap();
        assert_eq!(l.to_string(), "@mapped_to_test//a:b");
        // Elsewhere, and for other names, labels are as written.
        let elsewhere = PackageId::new("other_repo_test", "pkg");
        let l = Label::parse("@mapped_from_test//a:b", &elsewhere).unwrap();
        assert_eq!(l.to_string(), "@mapped_from_test//a:b");
        let l = Label::parse("//a:b", &inside).unwrap();
        assert_eq!(l.to_string(), "@mapping_user_test//a:b");
    }

    fn root() -> PackageId {
        PackageId::default()
    }

    fn parse(text: &str, base: &str) -> Result<String, String> {
        Label::parse(text, &PackageId::new("", base))
            .map(|l| l.to_string())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn labels_print_canonically() {
        assert_eq!(parse("//pkg:name", "").unwrap(), "//pkg:name");
        assert_eq!(parse("//pkg/sub", "").unwrap(), "//pkg/sub:sub");
        assert_eq!(parse(":x", "a/b").unwrap(), "//a/b:x");
        assert_eq!(parse("x.txt", "a").unwrap(), "//a:x.txt");
        assert_eq!(parse("sub/x.txt", "a").unwrap(), "//a:sub/x.txt");
        assert_eq!(parse("sub:x", "a").unwrap(), "//a/sub:x");
        assert_eq!(parse("@repo//p:q", "a").unwrap(), "@repo//p:q");
        assert_eq!(parse("@repo", "a").unwrap(), "@repo//:repo");
        assert_eq!(parse("@//p:q", "a").unwrap(), "//p:q");
        assert_eq!(parse("//:root", "a").unwrap(), "//:root");
    }

    #[test]
    fn relative_labels_keep_the_base_repository() {
        let base = PackageId::new("ext", "lib");
        assert_eq!(
            Label::parse(":a", &base).unwrap().to_string(),
            "@ext//lib:a"
        );
        assert_eq!(
            Label::parse("//x:y", &base).unwrap().to_string(),
            "@ext//x:y"
        );
    }

    #[test]
    fn malformed_labels_say_what_is_wrong() {
        assert_eq!(
            parse("//sandbox:a:b", "").unwrap_err(),
            "invalid label '//sandbox:a:b': invalid target name 'a:b': target names may not contain ':'"
        );
        assert!(
            parse("//a//b:c", "")
                .unwrap_err()
                .contains("may not contain '//'")
        );
        assert!(parse("//a/../b:c", "").unwrap_err().contains("'..'"));
        assert!(parse("//a:", "").unwrap_err().contains("empty target name"));
        assert!(parse("//", "").unwrap_err().contains("no default target"));
        assert!(
            parse("@1x//a:b", "")
                .unwrap_err()
                .contains("must start with a letter")
        );
        assert!(
            parse("@repo:x", "")
                .unwrap_err()
                .contains("followed by '//'")
        );
    }

    fn pattern(text: &str, cwd: &str) -> String {
        TargetPattern::parse(text, &PackageId::new("", cwd))
            .unwrap()
            .to_string()
    }

    #[test]
    fn patterns() {
        assert_eq!(pattern("//...", ""), "//...");
        assert_eq!(pattern("//a/...", ""), "//a/...");
        assert_eq!(pattern("//a/...:*", ""), "//a/...:*");
        assert_eq!(pattern("//a:all", ""), "//a:all");
        assert_eq!(pattern("//a:*", ""), "//a:*");
        assert_eq!(pattern("//a:all-targets", ""), "//a:*");
        assert_eq!(pattern("...", "x"), "//x/...");
        assert_eq!(pattern("sub/...", "x"), "//x/sub/...");
        assert_eq!(pattern(":all", "x"), "//x:all");
        assert_eq!(pattern(":t", "x"), "//x:t");
        assert_eq!(pattern("t", "x"), "//x:t");
        assert_eq!(pattern("//a", ""), "//a:a");
        assert_eq!(pattern("@r//a:b", ""), "@r//a:b");
        assert_eq!(pattern("@r//...", ""), "@r//...");
        assert!(TargetPattern::parse("//a/...:foo", &root()).is_err());
    }

    #[test]
    fn within() {
        assert!(package_is_within("a/b", "a"));
        assert!(package_is_within("a", "a"));
        assert!(package_is_within("a", ""));
        assert!(!package_is_within("ab", "a"));
    }
}

/// Properties over generated text: parsing never panics, and what parses prints canonically
/// and parses back to the same value.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    /// Text made of the pieces labels and patterns are built from, and some that break them.
    fn label_like() -> impl Strategy<Value = String> {
        let piece = prop::sample::select(vec![
            "@", "@@", "//", ":", "/", "...", "a", "b_c", "x.y", "-", "+", " ", "..", ".", "*",
            "all", "é", "$", "~", "\\", "\n", "pkg", "A1", "=",
        ]);
        prop::collection::vec(piece, 0..10).prop_map(|pieces| pieces.concat())
    }

    fn base() -> impl Strategy<Value = PackageId> {
        prop::sample::select(vec![
            PackageId::default(),
            PackageId::new("", "pkg/sub"),
            PackageId::new("ext", "a"),
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed), ..ProptestConfig::default() })]

        #[test]
        fn labels_round_trip(text in prop_oneof![label_like(), any::<String>()], base in base()) {
            if let Ok(label) = Label::parse(&text, &base) {
                let printed = label.to_string();
                prop_assert_eq!(Label::parse(&printed, &PackageId::default()), Ok(label.clone()));
                // A label prints as the main repository sees it (`//a:b` for its own
                // labels), so only there does the printed form read the same everywhere.
                if base.repo.is_empty() {
                    prop_assert_eq!(Label::parse(&printed, &base).map(|l| l.to_string()), Ok(printed));
                }
            }
        }

        #[test]
        fn patterns_round_trip(text in prop_oneof![label_like(), any::<String>()], cwd in base()) {
            if let Ok(pattern) = TargetPattern::parse(&text, &cwd) {
                // A single target whose name is a wildcard word prints as that wildcard
                // (`//p:all`), as Bazel gives the wildcard precedence.
                let wildcard_name = matches!(&pattern, TargetPattern::Single(l)
                    if ["all", "*", "all-targets"].contains(&l.name.as_str()));
                prop_assume!(!wildcard_name);
                let printed = pattern.to_string();
                prop_assert_eq!(TargetPattern::parse(&printed, &cwd), Ok(pattern));
            }
        }
    }
}

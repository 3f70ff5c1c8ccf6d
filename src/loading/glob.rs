//! `glob()`: include/exclude patterns and a package directory in, sorted package-relative
//! file paths out. `*` and `?` stay inside one path segment, `**` spans any number of
//! segments, and the walk never enters a subpackage (a directory with its own BUILD file).

use std::path::Path;

use walkdir::WalkDir;

use crate::workspace::fs_deps::{self, FsDeps};

use super::is_build_file_name;

/// Why a glob pattern is refused, as Bazel refuses it.
#[derive(Debug, thiserror::Error)]
pub enum GlobError {
    #[error("glob pattern cannot be empty")]
    Empty,
    #[error("glob pattern '{0}' is absolute; patterns are relative to the package")]
    Absolute(String),
    #[error("glob pattern '{0}' has an empty path segment")]
    EmptySegment(String),
    #[error("glob pattern '{pattern}' may not contain '{segment}' segments")]
    DotSegment { pattern: String, segment: String },
    #[error("glob pattern '{0}': '**' must be a whole path segment, as in 'a/**/b'")]
    PartialRecursion(String),
}

/// A glob pattern split into path segments.
#[derive(Debug)]
pub struct Pattern {
    segments: Vec<String>,
}

impl Pattern {
    /// Checks the pattern as Bazel does and splits it into segments.
    pub fn new(text: &str) -> Result<Pattern, GlobError> {
        if text.is_empty() {
            return Err(GlobError::Empty);
        }
        if text.starts_with('/') {
            return Err(GlobError::Absolute(text.to_owned()));
        }
        if text.contains("//") || text.ends_with('/') {
            return Err(GlobError::EmptySegment(text.to_owned()));
        }
        let segments: Vec<String> = text.split('/').map(str::to_owned).collect();
        for s in &segments {
            if s == "." || s == ".." {
                return Err(GlobError::DotSegment {
                    pattern: text.to_owned(),
                    segment: s.clone(),
                });
            }
            if s.contains("**") && s != "**" {
                return Err(GlobError::PartialRecursion(text.to_owned()));
            }
        }
        Ok(Pattern { segments })
    }

    /// True when the `/`-separated relative `path` matches.
    pub fn matches(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').collect();
        match_segments(&self.segments, &parts)
    }

    /// The literal directory prefix before the first wildcard, so the walk can start there.
    fn literal_prefix(&self) -> Vec<&str> {
        let last = self.segments.len().saturating_sub(1);
        self.segments[..last]
            .iter()
            .take_while(|s| !s.contains(['*', '?']))
            .map(String::as_str)
            .collect()
    }
}

fn match_segments(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| match_segments(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((p, path_rest)) => {
                wildcard(first.as_bytes(), p.as_bytes()) && match_segments(rest, path_rest)
            }
            None => false,
        },
    }
}

/// `*` and `?` within one segment (iterative, linear backtracking).
fn wildcard(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Runs a glob over `package_dir`. Returns sorted, package-relative paths with `/`. Every
/// directory listed is noted in `reads`, the package's account of what it read.
pub fn glob(
    package_dir: &Path,
    include: &[Pattern],
    exclude: &[Pattern],
    exclude_directories: bool,
    reads: &mut FsDeps,
) -> Vec<String> {
    let mut results = Vec::new();
    // Walk once from the deepest directory every pattern shares, not once per pattern.
    let roots: Vec<Vec<&str>> = include.iter().map(Pattern::literal_prefix).collect();
    let common = common_prefix(&roots);
    let start = common
        .iter()
        .fold(package_dir.to_path_buf(), |p, s| p.join(s));
    // The directories from the package down to `start` decide whether it exists.
    let mut dir = package_dir.to_path_buf();
    fs_deps::listed_into(&dir, reads);
    for s in &common {
        dir.push(s);
        fs_deps::listed_into(&dir, reads);
    }
    if !start.is_dir() {
        return results;
    }
    let reads = std::cell::RefCell::new(reads);
    let walker = WalkDir::new(&start)
        .follow_links(true)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| {
            // Do not descend into subpackages: their files belong to them.
            !(e.file_type().is_dir()
                && e.depth() > 0
                && is_package_dir(e.path(), &mut reads.borrow_mut()))
        });
    for entry in walker.flatten() {
        let is_dir = entry.file_type().is_dir();
        if is_dir {
            fs_deps::listed_into(entry.path(), &mut reads.borrow_mut());
        }
        if is_dir && exclude_directories {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(package_dir) else {
            continue;
        };
        let Some(rel) = rel.to_str() else {
            continue;
        };
        let rel = rel.replace(std::path::MAIN_SEPARATOR, "/");
        if include.iter().any(|p| p.matches(&rel)) && !exclude.iter().any(|p| p.matches(&rel)) {
            results.push(rel);
        }
    }
    results.sort();
    results.dedup();
    results
}

fn common_prefix<'a>(prefixes: &[Vec<&'a str>]) -> Vec<&'a str> {
    let Some(first) = prefixes.first() else {
        return Vec::new();
    };
    let mut len = first.len();
    for p in &prefixes[1..] {
        len = len.min(first.iter().zip(p).take_while(|(a, b)| a == b).count());
    }
    first[..len].to_vec()
}

fn is_package_dir(dir: &Path, reads: &mut FsDeps) -> bool {
    fs_deps::listed_into(dir, reads);
    std::fs::read_dir(dir)
        .map(|entries| {
            entries.flatten().any(|e| {
                e.file_name().to_str().is_some_and(is_build_file_name)
                    && e.file_type().map(|t| !t.is_dir()).unwrap_or(false)
            })
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pattern {
        Pattern::new(s).unwrap()
    }

    #[test]
    fn wildcards_stay_in_a_segment() {
        assert!(p("*.txt").matches("a.txt"));
        assert!(!p("*.txt").matches("d/a.txt"));
        assert!(p("?.txt").matches("a.txt"));
        assert!(!p("?.txt").matches("ab.txt"));
        assert!(p("**/*.txt").matches("a.txt"));
        assert!(p("**/*.txt").matches("d/e/a.txt"));
        assert!(p("d/**").matches("d/e/f"));
        assert!(p("d/**").matches("d"));
        assert!(p("a*b*c").matches("aXbYc"));
        assert!(!p("a*b*c").matches("aXbY"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert!(Pattern::new("/abs").is_err());
        assert!(Pattern::new("a/../b").is_err());
        assert!(Pattern::new("a**").is_err());
        assert!(Pattern::new("").is_err());
    }

    #[test]
    fn walk_skips_subpackages_and_sorts() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in [
            "b.txt",
            "a.txt",
            "sub/c.txt",
            "subpkg/BUILD",
            "subpkg/d.txt",
            ".hidden.txt",
        ] {
            let path = root.join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        let got = glob(
            root,
            &[p("**/*.txt")],
            &[p("b.txt")],
            true,
            &mut FsDeps::default(),
        );
        assert_eq!(got, vec![".hidden.txt", "a.txt", "sub/c.txt"]);
        let dirs = glob(root, &[p("*")], &[], false, &mut FsDeps::default());
        assert!(dirs.contains(&"sub".to_owned()));
        assert!(!dirs.contains(&"subpkg".to_owned()));
    }
}

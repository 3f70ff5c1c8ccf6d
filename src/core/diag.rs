//! Diagnostics: where something happened (`Location`) and what to tell the user (`Diagnostic`).
//!
//! Every phase reports problems as `Diagnostic`s; `main` prints them as `ERROR:` / `WARNING:`
//! lines and maps the worst one to an exit code. Nothing here prints or panics.

use std::fmt;

/// A point in a BUILD or .bzl file: a workspace-relative path (or `external/<repo>/...`),
/// 1-based line and column.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Location {
    pub file: String,
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// How a command ended; the numbers are Bazel's.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum ExitCode {
    Success = 0,
    /// Loading or analysis failed.
    BuildFailed = 1,
    /// The command line could not be understood.
    BadCommandLine = 2,
    /// `--keep_going` delivered a partial result.
    PartialSuccess = 3,
    /// `forge test` found no test to run.
    NoTestsFound = 4,
    /// Ctrl-C stopped the command.
    Interrupted = 8,
}

/// One message for the user. `message` may span several lines (a Starlark snippet, a cycle).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Diagnostic {
    pub message: String,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
        }
    }

    /// A message about the code at `location`, Bazel's `file:line:col: message` form.
    pub fn at(location: &Location, message: impl fmt::Display) -> Self {
        Diagnostic::new(format!("{location}: {message}"))
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A failure that ends a command: what to print and which exit code to use.
#[derive(Debug)]
pub struct Failure {
    pub code: ExitCode,
    pub errors: Vec<Diagnostic>,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: ExitCode::BadCommandLine,
            errors: vec![Diagnostic::new(message)],
        }
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Failure {
            code: ExitCode::BuildFailed,
            errors: vec![Diagnostic::new(message)],
        }
    }

    pub fn from_diagnostics(errors: Vec<Diagnostic>) -> Self {
        Failure {
            code: ExitCode::BuildFailed,
            errors,
        }
    }
}

impl From<Diagnostic> for Failure {
    fn from(d: Diagnostic) -> Self {
        Failure::from_diagnostics(vec![d])
    }
}

/// The close names among `candidates` for a "did you mean" hint, best first.
pub fn did_you_mean<'a>(
    wanted: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let limit = (wanted.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(wanted, c), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c.to_owned())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_close_names_only() {
        assert_eq!(
            did_you_mean("libary", ["library", "binary"]).as_deref(),
            Some("library")
        );
        assert_eq!(did_you_mean("zzz", ["library", "binary"]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}

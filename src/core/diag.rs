//! Diagnostics: where something happened (`Location`) and what to tell the user (`Diagnostic`).
//!
//! Every phase reports problems as `Diagnostic`s; `main` prints them as `ERROR:` / `WARNING:`
//! lines and maps the worst one to an exit code. Nothing here prints or panics.

use std::fmt;

/// A point in a BUILD or .bzl file: a workspace-relative path (or `external/<repo>/...`),
/// 1-based line and column.
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

/// Whose problem a diagnostic describes, so a front end can tell the user what to fix.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub enum DiagnosticKind {
    /// The user's input is wrong: a BUILD file, a flag, a label, a pinned sha256.
    #[default]
    UserInput,
    /// The machine or the network let forge down: a full disk, a refused connection, a
    /// missing tool.
    Environment,
    /// Forge itself is wrong: a state it should never reach.
    Internal,
}

/// One message for the user: what went wrong (`message`, which may span several lines: a
/// Starlark snippet, a cycle), where (`location`, when there is one), and what else helps
/// (`notes`, one line each).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Diagnostic {
    pub kind: DiagnosticKind,
    pub location: Option<Location>,
    pub message: String,
    pub notes: Vec<String>,
}

impl Diagnostic {
    /// A problem with the user's input, with no single place to point at.
    pub fn new(message: impl Into<String>) -> Self {
        Diagnostic {
            kind: DiagnosticKind::UserInput,
            location: None,
            message: message.into(),
            notes: Vec::new(),
        }
    }

    /// A message about the code at `location`, printed in Bazel's `file:line:col: message` form.
    pub fn at(location: &Location, message: impl fmt::Display) -> Self {
        Diagnostic {
            location: Some(location.clone()),
            ..Diagnostic::new(message.to_string())
        }
    }

    /// A problem of the machine or the network rather than of the input.
    pub fn environment(message: impl Into<String>) -> Self {
        Diagnostic {
            kind: DiagnosticKind::Environment,
            ..Diagnostic::new(message)
        }
    }

    /// A bug in forge.
    pub fn internal(message: impl Into<String>) -> Self {
        Diagnostic {
            kind: DiagnosticKind::Internal,
            ..Diagnostic::new(message)
        }
    }

    /// The same diagnostic with one more note.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(location) = &self.location {
            write!(f, "{location}: ")?;
        }
        f.write_str(&self.message)?;
        for note in &self.notes {
            write!(f, "\n  note: {note}")?;
        }
        if self.kind == DiagnosticKind::Internal {
            f.write_str("\n  note: this is a bug in forge; please report it with the command that showed it")?;
        }
        Ok(())
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
    fn a_diagnostic_prints_its_location_message_and_notes() {
        let location = Location {
            file: "pkg/BUILD".into(),
            line: 3,
            column: 7,
        };
        let d =
            Diagnostic::at(&location, "no such attribute 'srcz'").with_note("did you mean 'srcs'?");
        assert_eq!(d.kind, DiagnosticKind::UserInput);
        assert_eq!(d.message, "no such attribute 'srcz'");
        assert_eq!(
            d.to_string(),
            "pkg/BUILD:3:7: no such attribute 'srcz'\n  note: did you mean 'srcs'?"
        );
        assert_eq!(
            Diagnostic::environment("disk full").to_string(),
            "disk full"
        );
        let bug = Diagnostic::internal("an action without outputs");
        assert_eq!(bug.kind, DiagnosticKind::Internal);
        assert!(bug.to_string().contains("this is a bug in forge"));
    }

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

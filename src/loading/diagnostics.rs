//! Starlark errors and spans, failed fetches and unreadable files in, forge `Diagnostic`s and
//! `Location`s out.

use starlark::codemap::FileSpan;

use crate::core::fs::PathError;
use crate::core::{Diagnostic, Location};
use crate::fetch::RepoFetchError;

/// `message`, about a repository that could not be fetched: the network's or the disk's
/// fault is the environment's, a wrong sha256 or path in WORKSPACE the user's.
pub(super) fn fetch_failed(error: &RepoFetchError, message: String) -> Diagnostic {
    if error.is_environment() {
        Diagnostic::environment(message)
    } else {
        Diagnostic::new(message)
    }
}

/// A BUILD or .bzl file that exists but cannot be read: the disk's problem, not the file's.
pub(super) fn unreadable(error: PathError) -> Diagnostic {
    Diagnostic::environment(error.to_string())
}

/// A Starlark error as a diagnostic. The crate renders it with its snippet; the leading
/// `error: ` is dropped because forge prefixes every error with `ERROR: ` already.
pub(super) fn starlark_error(e: &starlark::Error) -> Diagnostic {
    let text = e.to_string();
    Diagnostic::new(
        text.strip_prefix("error: ")
            .unwrap_or(&text)
            .trim_end()
            .to_owned(),
    )
}

pub fn location_of(span: &FileSpan) -> Location {
    let resolved = span.resolve();
    Location {
        file: resolved.file,
        line: resolved.span.begin.line as u32 + 1,
        column: resolved.span.begin.column as u32 + 1,
    }
}

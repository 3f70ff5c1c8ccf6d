//! Starlark errors and spans in, forge `Diagnostic`s and `Location`s out.

use starlark::codemap::FileSpan;

use crate::core::{Diagnostic, Location};

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

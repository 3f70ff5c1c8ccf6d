//! What forge prints, in Bazel's colors: a `--color` choice in, `INFO:`, `WARNING:`,
//! `ERROR:` and `FAILED:` lines on stderr and colored test statuses out. Colors are decided
//! once per command (`choose`), before anything is printed, for each stream on its own:
//! `auto` colors only a stream that is a terminal.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

pub use crate::core::paint::{Style, line, paint};

/// `--color` and `--curses`: yes, no, or decided by whether the stream is a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Choice {
    Yes,
    No,
    #[default]
    Auto,
}

impl Choice {
    /// Bazel's spellings: `yes|no|auto`, and the booleans.
    pub fn parse(text: &str) -> Result<Choice, String> {
        match text {
            "yes" | "true" | "1" => Ok(Choice::Yes),
            "no" | "false" | "0" => Ok(Choice::No),
            "auto" | "tty" => Ok(Choice::Auto),
            other => Err(format!("'{other}' is not yes, no or auto")),
        }
    }

    /// Whether the choice is on for a stream that is (or is not) a terminal. A terminal
    /// named `dumb` understands no escape sequences.
    pub fn on(self, terminal: bool) -> bool {
        match self {
            Choice::Yes => true,
            Choice::No => false,
            Choice::Auto => terminal && std::env::var("TERM").map_or(true, |t| t != "dumb"),
        }
    }
}

static COLOR_STDERR: AtomicBool = AtomicBool::new(false);
static COLOR_STDOUT: AtomicBool = AtomicBool::new(false);

/// Sets the colors of this command's output from `--color`.
pub fn choose(color: Choice) {
    COLOR_STDERR.store(color.on(std::io::stderr().is_terminal()), Ordering::Relaxed);
    COLOR_STDOUT.store(color.on(std::io::stdout().is_terminal()), Ordering::Relaxed);
}

/// Whether stderr is colored.
pub fn stderr_colored() -> bool {
    COLOR_STDERR.load(Ordering::Relaxed)
}

pub fn info(message: impl std::fmt::Display) {
    eprintln!(
        "{}",
        line("INFO", Style::Info, &message.to_string(), stderr_colored())
    );
}

pub fn warning(message: impl std::fmt::Display) {
    eprintln!(
        "{}",
        line(
            "WARNING",
            Style::Warning,
            &message.to_string(),
            stderr_colored()
        )
    );
}

pub fn error(message: impl std::fmt::Display) {
    eprintln!(
        "{}",
        line(
            "ERROR",
            Style::Error,
            &message.to_string(),
            stderr_colored()
        )
    );
}

/// The build's verdict when it failed: `FAILED: Build did NOT complete successfully`.
pub fn failed(message: impl std::fmt::Display) {
    eprintln!(
        "{}",
        line(
            "FAILED",
            Style::Error,
            &message.to_string(),
            stderr_colored()
        )
    );
}

/// A test status (`PASSED`, `(cached) PASSED`, `FAILED`, ...) painted for stdout.
pub fn status_for_stdout(status: &str) -> String {
    let style = if status.ends_with("PASSED") {
        Style::Info
    } else if status == "FLAKY" {
        Style::Warning
    } else {
        Style::Error
    };
    paint(status, style, COLOR_STDOUT.load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_take_bazels_spellings() {
        assert_eq!(Choice::parse("yes"), Ok(Choice::Yes));
        assert_eq!(Choice::parse("0"), Ok(Choice::No));
        assert_eq!(Choice::parse("auto"), Ok(Choice::Auto));
        assert!(Choice::parse("sometimes").is_err());
        assert!(Choice::Yes.on(false));
        assert!(!Choice::No.on(true));
        assert!(!Choice::Auto.on(false));
    }
}

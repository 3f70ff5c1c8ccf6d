//! Bazel's terminal colors (its `AnsiTerminal` styles): a kind of line in, the escape
//! sequences that paint it out. Whether to paint is the caller's decision (`--color`).

/// Bazel's terminal styles (its `AnsiTerminal`): what each kind of line is painted with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Green: `INFO:`, `PASSED`.
    Info,
    /// Magenta, as Bazel paints `WARNING:` and `FLAKY`.
    Warning,
    /// Bold red: `ERROR:`, `FAILED:`, `FAILED`, `TIMEOUT`.
    Error,
}

const RESET: &str = "\x1b[0m";

impl Style {
    fn escape(self) -> &'static str {
        match self {
            Style::Info => "\x1b[32m",
            Style::Warning => "\x1b[35m",
            Style::Error => "\x1b[31m\x1b[1m",
        }
    }
}

/// `text` in `style` when `colored`.
pub fn paint(text: &str, style: Style, colored: bool) -> String {
    match colored {
        true => format!("{}{text}{RESET}", style.escape()),
        false => text.to_owned(),
    }
}

/// A message line as Bazel prints it: the colored `PREFIX: ` and the plain message.
pub fn line(prefix: &str, style: Style, message: &str, colored: bool) -> String {
    format!("{}{message}", paint(&format!("{prefix}: "), style, colored))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_paint_only_their_prefix() {
        assert_eq!(
            line("ERROR", Style::Error, "boom", true),
            "\x1b[31m\x1b[1mERROR: \x1b[0mboom"
        );
        assert_eq!(
            line("INFO", Style::Info, "ok", true),
            "\x1b[32mINFO: \x1b[0mok"
        );
        assert_eq!(line("WARNING", Style::Warning, "hm", false), "WARNING: hm");
    }
}

//! Command lines whose arguments depend on what an action produced: Bazel's format
//! templates, and the directories `Args.add_all(expand_directories = True)` replaces by their
//! files. Analysis writes a directory as a marker argument (`DirectoryExpansion::marker`);
//! exec turns markers into the files found in the directory when the action runs
//! (`expand_argv`), since only then are they known.

use serde::{Deserialize, Serialize};

/// Bazel's format templates: exactly one `%s`, replaced by `value`; `%%` is a literal `%`.
pub fn format_with(template: &str, value: &str) -> Result<String, FormatError> {
    let mut out = String::new();
    let mut substituted = false;
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('s') if !substituted => {
                out.push_str(value);
                substituted = true;
            }
            _ => return Err(FormatError(template.to_owned())),
        }
    }
    if !substituted {
        return Err(FormatError(template.to_owned()));
    }
    Ok(out)
}

/// A format template without exactly one `%s`.
#[derive(Debug, thiserror::Error)]
#[error("invalid format string '{0}': it must contain exactly one '%s' (write %% for a literal %)")]
pub struct FormatError(pub String);

/// A directory (an exec path) whose files, each formatted, stand on the command line in
/// place of its marker: as separate arguments each preceded by `before_each` (`add_all`),
/// or joined with `join_with` inside the argument that holds the marker (`add_joined`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryExpansion {
    pub directory: String,
    pub format_each: Option<String>,
    pub before_each: Option<String>,
    pub join_with: Option<String>,
}

/// Brackets a marker. NUL cannot be part of a real argument (the kernel takes C strings),
/// and JSON escapes it, so a marker is never confused with anything else.
const OPEN: &str = "\0forge-expand-directory\0";
const CLOSE: char = '\0';

impl DirectoryExpansion {
    /// The argument (or part of one) that stands for the directory's files.
    pub fn marker(&self) -> String {
        let json = serde_json::to_string(self).expect("plain strings serialize");
        format!("{OPEN}{json}{CLOSE}")
    }

    fn formatted(&self, file: &str) -> Result<String, FormatError> {
        match &self.format_each {
            Some(t) => format_with(t, file),
            None => Ok(file.to_owned()),
        }
    }
}

/// Whether a command line holds a directory to expand.
pub fn has_expansions(argv: &[String]) -> bool {
    argv.iter().any(|a| holds_expansion(a))
}

/// Whether one argument holds a directory to expand.
pub fn holds_expansion(arg: &str) -> bool {
    arg.contains(OPEN)
}

/// Why a command line could not be expanded.
#[derive(Debug, thiserror::Error)]
pub enum ExpandError {
    #[error("cannot list the files of directory '{directory}': {error}")]
    List {
        directory: String,
        error: std::io::Error,
    },
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error("a damaged directory marker on the command line: {0}")]
    Damaged(String),
}

/// `argv` with every directory marker replaced by the directory's files, which
/// `files_of(directory)` lists (exec paths, sorted).
pub fn expand_argv(
    argv: &[String],
    files_of: &dyn Fn(&str) -> std::io::Result<Vec<String>>,
) -> Result<Vec<String>, ExpandError> {
    let mut out = Vec::with_capacity(argv.len());
    for arg in argv {
        if !arg.contains(OPEN) {
            out.push(arg.clone());
            continue;
        }
        let mut rest = arg.as_str();
        let mut text = String::new();
        let mut whole: Option<Vec<String>> = None;
        while let Some(start) = rest.find(OPEN) {
            text.push_str(&rest[..start]);
            let after = &rest[start + OPEN.len()..];
            let end = after
                .find(CLOSE)
                .ok_or_else(|| ExpandError::Damaged(printable(arg)))?;
            let expansion: DirectoryExpansion = serde_json::from_str(&after[..end])
                .map_err(|_| ExpandError::Damaged(printable(arg)))?;
            let files = files_of(&expansion.directory).map_err(|error| ExpandError::List {
                directory: expansion.directory.clone(),
                error,
            })?;
            let formatted = files
                .iter()
                .map(|f| expansion.formatted(f))
                .collect::<Result<Vec<_>, _>>()?;
            rest = &after[end + CLOSE.len_utf8()..];
            match &expansion.join_with {
                // `add_all`: the marker is the whole argument; it becomes one per file.
                None if text.is_empty() && rest.is_empty() => {
                    let mut args = Vec::with_capacity(formatted.len() * 2);
                    for f in formatted {
                        args.extend(expansion.before_each.clone());
                        args.push(f);
                    }
                    whole = Some(args);
                }
                join => text.push_str(&formatted.join(join.as_deref().unwrap_or(" "))),
            }
        }
        match whole {
            Some(args) => out.extend(args),
            None => {
                text.push_str(rest);
                out.push(text);
            }
        }
    }
    Ok(out)
}

/// A command line for people: each marker as `<files of DIR>`.
pub fn printable(arg: &str) -> String {
    let mut out = String::new();
    let mut rest = arg;
    while let Some(start) = rest.find(OPEN) {
        out.push_str(&rest[..start]);
        let after = &rest[start + OPEN.len()..];
        let Some(end) = after.find(CLOSE) else {
            rest = after;
            break;
        };
        let directory = serde_json::from_str::<DirectoryExpansion>(&after[..end])
            .map(|e| e.directory)
            .unwrap_or_default();
        out.push_str(&format!("<files of {directory}>"));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &str) -> std::io::Result<Vec<String>> {
        Ok(match dir {
            "out/d" => vec!["out/d/a.txt".into(), "out/d/sub/b.txt".into()],
            _ => Vec::new(),
        })
    }

    fn expansion(
        format_each: Option<&str>,
        before_each: Option<&str>,
        join_with: Option<&str>,
    ) -> String {
        DirectoryExpansion {
            directory: "out/d".into(),
            format_each: format_each.map(str::to_owned),
            before_each: before_each.map(str::to_owned),
            join_with: join_with.map(str::to_owned),
        }
        .marker()
    }

    #[test]
    fn format_templates_take_one_placeholder_and_escape_percent() {
        assert_eq!(format_with("--x=%s", "a").unwrap(), "--x=a");
        assert_eq!(format_with("100%% %s", "b").unwrap(), "100% b");
        assert!(format_with("none", "a").is_err());
        assert!(format_with("%s %s", "a").is_err());
        assert!(format_with("%d", "a").is_err());
    }

    #[test]
    fn a_directory_becomes_one_argument_per_file() {
        let argv = vec![
            "tool".into(),
            expansion(Some("--in=%s"), Some("-i"), None),
            "end".into(),
        ];
        assert_eq!(
            expand_argv(&argv, &files).unwrap(),
            [
                "tool",
                "-i",
                "--in=out/d/a.txt",
                "-i",
                "--in=out/d/sub/b.txt",
                "end"
            ]
        );
    }

    #[test]
    fn a_joined_directory_is_joined_inside_its_argument() {
        let arg = format!("--srcs=x.txt,{}", expansion(None, None, Some(",")));
        let argv = vec![arg];
        assert_eq!(
            expand_argv(&argv, &files).unwrap(),
            ["--srcs=x.txt,out/d/a.txt,out/d/sub/b.txt"]
        );
        assert_eq!(printable(&argv[0]), "--srcs=x.txt,<files of out/d>");
    }

    #[test]
    fn an_empty_directory_adds_no_argument() {
        let marker = DirectoryExpansion {
            directory: "out/empty".into(),
            format_each: None,
            before_each: Some("-i".into()),
            join_with: None,
        }
        .marker();
        assert_eq!(expand_argv(&["a".into(), marker], &files).unwrap(), ["a"]);
    }
}

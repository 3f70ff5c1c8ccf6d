//! rc files as Bazel reads them: the raw arguments (startup options, command, its options)
//! and the workspace root in; the argument list clap parses out, with the rc files' options
//! for the command (`common`, then the sections it inherits, then its own) placed before the
//! command line's, every `--config=NAME` expanded in place, and `--announce_rc` reported.
//!
//! Files, in order: `/etc/bazel.bazelrc`, `%workspace%/.bazelrc`, `~/.bazelrc`, then each
//! `--bazelrc=FILE`; Forge's `.forgerc` beside each of the first three is read right after it
//! (`/etc/forge.forgerc`, `%workspace%/.forgerc`, `~/.forgerc`). `FORGE_SYSTEM_RC_DIR`
//! replaces `/etc` (for tests, which must not read the machine's own file).

use std::path::{Path, PathBuf};

use super::flag_forms::{Flags, Kind, Options, parse_bool, takes_next};

/// One line of an rc file: `command[:config] options...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcLine {
    pub command: String,
    pub config: Option<String>,
    pub args: Vec<String>,
    pub file: PathBuf,
    pub line: usize,
}

/// What went wrong reading the rc files or expanding `--config`; printed as one ERROR line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RcError {
    #[error("{file}:{line}: {message}")]
    Syntax {
        file: String,
        line: usize,
        message: String,
    },
    #[error("cannot read rc file {file}: {message}")]
    Unreadable { file: String, message: String },
    #[error("{file}:{line}: import loop: {chain}")]
    ImportLoop {
        file: String,
        line: usize,
        chain: String,
    },
    #[error(
        "{file}:{line}: forge does not know the {section} option '{option}' (remove it, or move it to a section of a command that takes it)"
    )]
    UnknownOption {
        file: String,
        line: usize,
        section: String,
        option: String,
    },
    #[error("Config value '{0}' is not defined in any .rc file")]
    UndefinedConfig(String),
    #[error(
        "Config expansion has a cycle: config value {name} expands to itself, see inheritance chain {chain}"
    )]
    ConfigCycle { name: String, chain: String },
    #[error("{0}")]
    Usage(String),
}

/// The words of an rc file's lines, with each line's number: `\` at a line's end continues
/// it, words split as a shell splits them (quotes, backslash escapes), `#` starts a comment.
pub fn parse_words(path: &Path, text: &str) -> Result<Vec<(usize, Vec<String>)>, RcError> {
    let mut lines = Vec::new();
    let mut pending = String::new();
    let mut first = 0;
    for (index, raw) in text.lines().enumerate() {
        if pending.is_empty() {
            first = index + 1;
        }
        match raw.strip_suffix('\\') {
            Some(head) if !head.ends_with('\\') => {
                // Bazel removes the backslash and the line break and nothing else.
                pending.push_str(head);
                continue;
            }
            _ => pending.push_str(raw),
        }
        let words = split_words(&pending).map_err(|message| RcError::Syntax {
            file: path.display().to_string(),
            line: first,
            message,
        })?;
        if !words.is_empty() {
            lines.push((first, words));
        }
        pending.clear();
    }
    if !pending.is_empty() {
        let words = split_words(&pending).map_err(|message| RcError::Syntax {
            file: path.display().to_string(),
            line: first,
            message,
        })?;
        if !words.is_empty() {
            lines.push((first, words));
        }
    }
    Ok(lines)
}

/// One line split into words as a POSIX shell splits them, without expansions.
fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '#' if !in_word => break,
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    word.push(c);
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Reads one rc file and what it imports, in order. `stack` holds the files being read, to
/// name an import loop.
fn read_rc(
    path: &Path,
    workspace: Option<&Path>,
    stack: &mut Vec<PathBuf>,
    out: &mut Vec<RcLine>,
) -> Result<(), RcError> {
    let text = std::fs::read_to_string(path).map_err(|e| RcError::Unreadable {
        file: path.display().to_string(),
        message: e.to_string(),
    })?;
    stack.push(path.to_path_buf());
    for (line, mut words) in parse_words(path, &text)? {
        let at = |message: String| RcError::Syntax {
            file: path.display().to_string(),
            line,
            message,
        };
        let head = words.remove(0);
        if head == "import" || head == "try-import" {
            let optional = head == "try-import";
            let [target] = words.as_slice() else {
                return Err(at(format!("'{head}' takes exactly one path")));
            };
            let target = match (target.contains("%workspace%"), workspace) {
                (false, _) => PathBuf::from(target),
                (true, Some(ws)) => {
                    PathBuf::from(target.replace("%workspace%", &ws.to_string_lossy()))
                }
                (true, None) if optional => continue,
                (true, None) => {
                    return Err(at(format!(
                        "cannot import '{target}': not inside a workspace"
                    )));
                }
            };
            if stack.contains(&target) {
                let chain: Vec<String> = stack
                    .iter()
                    .chain(std::iter::once(&target))
                    .map(|p| p.display().to_string())
                    .collect();
                return Err(RcError::ImportLoop {
                    file: path.display().to_string(),
                    line,
                    chain: chain.join(" -> "),
                });
            }
            if optional && !target.is_file() {
                continue;
            }
            if !target.is_file() {
                return Err(at(format!(
                    "imported rc file '{}' does not exist (use try-import for an optional file)",
                    target.display()
                )));
            }
            read_rc(&target, workspace, stack, out)?;
            continue;
        }
        let (command, config) = match head.split_once(':') {
            Some((command, config)) if !config.is_empty() => {
                (command.to_owned(), Some(config.to_owned()))
            }
            Some(_) => return Err(at(format!("'{head}' names no config after ':'"))),
            None => (head, None),
        };
        if command.starts_with('-') {
            return Err(at(format!(
                "a line starts with the command its options are for (e.g. `build {command}`), not an option"
            )));
        }
        out.push(RcLine {
            command,
            config,
            args: words,
            file: path.to_path_buf(),
            line,
        });
    }
    stack.pop();
    Ok(())
}

/// Which rc files to read: the startup options that choose them.
#[derive(Debug, Clone)]
struct RcChoice {
    system: bool,
    workspace: bool,
    home: bool,
    explicit: Vec<PathBuf>,
    /// `--ignore_all_rc_files`: none at all, whatever else says.
    ignore_all: bool,
}

/// The rc files to read, in Bazel's order, each `.bazelrc` followed by its `.forgerc`.
fn rc_files(choice: &RcChoice, workspace: Option<&Path>) -> Vec<(PathBuf, bool)> {
    let mut files = Vec::new();
    if choice.ignore_all {
        return files;
    }
    if choice.system {
        let dir = std::env::var_os("FORGE_SYSTEM_RC_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/etc"));
        files.push((dir.join("bazel.bazelrc"), true));
        files.push((dir.join("forge.forgerc"), true));
    }
    if let (true, Some(ws)) = (choice.workspace, workspace) {
        files.push((ws.join(".bazelrc"), true));
        files.push((ws.join(".forgerc"), true));
    }
    if let (true, Some(home)) = (choice.home, dirs::home_dir()) {
        files.push((home.join(".bazelrc"), true));
        files.push((home.join(".forgerc"), true));
    }
    for file in &choice.explicit {
        // Bazel: `--bazelrc=/dev/null` ends the list.
        if file == Path::new("/dev/null") {
            break;
        }
        files.push((file.clone(), false));
    }
    files
}

/// Bazel's command inheritance: the sections whose options a command takes, in order.
fn sections(command: &str) -> Vec<&str> {
    match command {
        "test" | "run" | "info" | "cquery" | "aquery" => vec!["common", "build", command],
        // `why` says whether a test would run, so it takes the test options too.
        "coverage" | "why" => vec!["common", "build", "test", command],
        _ => vec!["common", command],
    }
}

/// Reads the rc files for the raw command line `args` (`forge [startup] command [options]`)
/// and returns the argument list for clap, with the command's `--noflag` forms normalized.
/// Lines for `--announce_rc` go to `announce`.
pub fn expand(
    args: Vec<String>,
    cwd: &Path,
    flags: &Flags,
    announce: &mut dyn FnMut(&str),
) -> Result<Vec<String>, RcError> {
    let Some(program) = args.first().cloned() else {
        return Ok(args);
    };
    // The startup options, up to the first word that is not an option: the command.
    let mut startup = Vec::new();
    let mut choice = RcChoice {
        system: true,
        workspace: true,
        home: true,
        explicit: Vec::new(),
        ignore_all: false,
    };
    let mut rest = args.into_iter().skip(1).peekable();
    while let Some(arg) = rest.next_if(|a| a.starts_with('-')) {
        let (name, value) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let switch = |positive: &str| -> Result<Option<bool>, RcError> {
            if name == format!("--{positive}") {
                return match &value {
                    None => Ok(Some(true)),
                    Some(v) => parse_bool(v).map(Some).map_err(|e| {
                        RcError::Usage(format!("invalid value for --{positive}: {e}"))
                    }),
                };
            }
            Ok((name == format!("--no{positive}") && value.is_none()).then_some(false))
        };
        if let Some(on) = switch("system_rc")? {
            choice.system = on;
        } else if let Some(on) = switch("workspace_rc")? {
            choice.workspace = on;
        } else if let Some(on) = switch("home_rc")? {
            choice.home = on;
        } else if let Some(on) = switch("ignore_all_rc_files")? {
            choice.ignore_all = on;
        } else if name == "--bazelrc" {
            let file = match value {
                Some(v) => v,
                None => rest
                    .next()
                    .ok_or_else(|| RcError::Usage("--bazelrc needs a file".into()))?,
            };
            let file = PathBuf::from(file);
            choice.explicit.push(if file.is_absolute() {
                file
            } else {
                cwd.join(file)
            });
        } else {
            let takes_next = flags.startup.takes_next(&arg);
            startup.push(arg);
            if takes_next && let Some(v) = rest.next() {
                startup.push(v);
            }
        }
    }
    let Some(command) = rest.next() else {
        return Ok(std::iter::once(program).chain(startup).collect());
    };
    let command_line: Vec<String> = rest.collect();
    let Some(options) = flags.command(&command).filter(|_| command != "help") else {
        // `help`, or a command forge does not have (clap says so): no rc files.
        return Ok(std::iter::once(program)
            .chain(startup)
            .chain(std::iter::once(command))
            .chain(command_line)
            .collect());
    };

    let workspace = crate::workspace::find_root(cwd).map(|(root, _)| root);
    let mut lines = Vec::new();
    for (file, optional) in rc_files(&choice, workspace.as_deref()) {
        if optional && !file.is_file() {
            continue;
        }
        read_rc(&file, workspace.as_deref(), &mut Vec::new(), &mut lines)?;
    }

    let mut expander = Expander {
        lines: &lines,
        command: &command,
        options,
        flags,
        notes: Vec::new(),
    };
    // Startup options from the rc files come before the command line's.
    let mut rc_startup = Vec::new();
    for line in lines.iter().filter(|l| l.command == "startup") {
        if line.config.is_some() {
            return Err(RcError::Syntax {
                file: line.file.display().to_string(),
                line: line.line,
                message: "startup options cannot be part of a config".into(),
            });
        }
        let checked = expander.check(line, &flags.startup)?;
        expander.notes.push(format!(
            "INFO: Reading 'startup' options from {}: {}",
            line.file.display(),
            checked.join(" ")
        ));
        rc_startup.extend(checked);
    }
    let mut command_args = Vec::new();
    for section in sections(&command) {
        for line in lines
            .iter()
            .filter(|l| l.command == section && l.config.is_none())
        {
            let checked = expander.check(line, options)?;
            let inherited = if section == command { "" } else { "Inherited " };
            let heading = format!(
                "INFO: Reading rc options for '{command}' from {}:\n  {inherited}'{section}' options:",
                line.file.display(),
            );
            // Consecutive lines of one file and section are announced together, as Bazel does.
            match expander.notes.last_mut() {
                Some(last) if last.starts_with(&heading) => {
                    last.extend(checked.iter().map(|w| format!(" {w}")))
                }
                _ => expander
                    .notes
                    .push(format!("{heading} {}", checked.join(" "))),
            }
            expander.expand_configs(checked, &mut Vec::new(), &mut command_args)?;
        }
    }
    // The command line last, so it wins; after `--` nothing is an option.
    let split = command_line
        .iter()
        .position(|a| a == "--")
        .unwrap_or(command_line.len());
    let (own, residue) = command_line.split_at(split);
    expander.expand_configs(own.to_vec(), &mut Vec::new(), &mut command_args)?;

    // `--announce_rc` may come from an rc file or the command line; the last one wins.
    let mut announce_rc = false;
    let mut kept = Vec::with_capacity(command_args.len());
    let mut words = command_args.into_iter();
    while let Some(word) = words.next() {
        match word.as_str() {
            "--announce_rc" => announce_rc = true,
            "--noannounce_rc" => announce_rc = false,
            w if w.starts_with("--announce_rc=") => {
                announce_rc = parse_bool(&w["--announce_rc=".len()..])
                    .map_err(|e| RcError::Usage(format!("invalid value for --announce_rc: {e}")))?
            }
            _ => {
                let takes_next = options.takes_next(&word);
                kept.push(word);
                if takes_next && let Some(value) = words.next() {
                    kept.push(value);
                }
            }
        }
    }
    if announce_rc {
        for note in &expander.notes {
            announce(note);
        }
    }
    kept.extend(residue.iter().cloned());
    let kept = super::flag_forms::normalize(kept, options);
    Ok(std::iter::once(program)
        .chain(rc_startup)
        .chain(startup)
        .chain(std::iter::once(command))
        .chain(kept)
        .collect())
}

/// `flags` of `command` with each `--config=NAME` replaced by what the rc files of the
/// workspace at `cwd` (with the default rc files) define for it, as `command` would see them:
/// `canonicalize-flags` prints the expansion, as Bazel's does.
pub fn expand_config_flags(
    command: &str,
    flags: Vec<String>,
    cwd: &Path,
    all: &Flags,
) -> Result<Vec<String>, RcError> {
    let Some(options) = all.command(command) else {
        return Ok(flags);
    };
    let choice = RcChoice {
        system: true,
        workspace: true,
        home: true,
        explicit: Vec::new(),
        ignore_all: false,
    };
    let workspace = crate::workspace::find_root(cwd).map(|(root, _)| root);
    let mut lines = Vec::new();
    for (file, optional) in rc_files(&choice, workspace.as_deref()) {
        if optional && !file.is_file() {
            continue;
        }
        read_rc(&file, workspace.as_deref(), &mut Vec::new(), &mut lines)?;
    }
    let mut expander = Expander {
        lines: &lines,
        command,
        options,
        flags: all,
        notes: Vec::new(),
    };
    let mut out = Vec::new();
    expander.expand_configs(flags, &mut Vec::new(), &mut out)?;
    Ok(out)
}

/// Checks the rc lines' options against what the command takes and expands `--config`.
struct Expander<'a> {
    lines: &'a [RcLine],
    command: &'a str,
    options: &'a Options,
    flags: &'a Flags,
    notes: Vec<String>,
}

impl Expander<'_> {
    /// The options of `line` that the command takes. An option forge does not know is an
    /// error naming the line; one that only other commands take is left out under `common`
    /// (as Bazel does) and under a section the command inherits (Bazel's `info` takes every
    /// build option and ignores them; forge's takes none).
    fn check(&self, line: &RcLine, options: &Options) -> Result<Vec<String>, RcError> {
        let mut kept = Vec::new();
        let mut words = line.args.iter();
        let lenient = line.command == "common" || line.command != self.command;
        while let Some(word) = words.next() {
            let is_config = word == "--config" || word.starts_with("--config=");
            let own = is_config
                || is_announce(word)
                // Starlark build settings are read by their own step.
                || ["--//", "--@", "--no//", "--no@"]
                    .iter()
                    .any(|p| word.starts_with(p))
                || !word.starts_with('-');
            let kind = if is_config && !word.contains('=') {
                Some(Kind::Value)
            } else if own {
                Some(Kind::Plain)
            } else {
                options.kind(word)
            };
            match kind {
                Some(kind) => {
                    kept.push(word.clone());
                    if takes_next(word, Some(kind))
                        && let Some(value) = words.next()
                    {
                        kept.push(value.clone());
                    }
                }
                None => {
                    let elsewhere = if line.command == "startup" {
                        None
                    } else {
                        self.flags.kind_in_any(word)
                    };
                    match elsewhere {
                        Some(kind) if lenient => {
                            if takes_next(word, Some(kind)) {
                                words.next();
                            }
                        }
                        _ => {
                            let option = word.split_once('=').map_or(word.as_str(), |(n, _)| n);
                            return Err(RcError::UnknownOption {
                                file: line.file.display().to_string(),
                                line: line.line,
                                section: if line.command == "startup" {
                                    "startup".to_owned()
                                } else {
                                    format!("'{}'", line.command)
                                },
                                option: option.to_owned(),
                            });
                        }
                    }
                }
            }
        }
        Ok(kept)
    }

    /// Appends `words` to `out` with each `--config=NAME` replaced by the options of
    /// `SECTION:NAME` for the command's sections, recursively. `active` holds the configs
    /// being expanded, to name a cycle.
    fn expand_configs(
        &mut self,
        words: Vec<String>,
        active: &mut Vec<String>,
        out: &mut Vec<String>,
    ) -> Result<(), RcError> {
        let mut words = words.into_iter();
        while let Some(word) = words.next() {
            let name = if word == "--config" {
                words
                    .next()
                    .ok_or_else(|| RcError::Usage("--config needs a config name".into()))?
            } else if let Some(name) = word.strip_prefix("--config=") {
                name.to_owned()
            } else {
                let takes_next = self.options.takes_next(&word);
                out.push(word);
                if takes_next && let Some(value) = words.next() {
                    out.push(value);
                }
                continue;
            };
            if active.contains(&name) {
                let mut chain = active.clone();
                chain.push(name.clone());
                return Err(RcError::ConfigCycle {
                    name,
                    chain: format!("[{}]", chain.join(", ")),
                });
            }
            if !self
                .lines
                .iter()
                .any(|l| l.config.as_deref() == Some(name.as_str()))
            {
                return Err(RcError::UndefinedConfig(name));
            }
            active.push(name.clone());
            for section in sections(self.command) {
                for line in self
                    .lines
                    .iter()
                    .filter(|l| l.command == section && l.config.as_deref() == Some(name.as_str()))
                {
                    let checked = self.check(line, self.options)?;
                    self.notes.push(format!(
                        "INFO: Found applicable config definition {section}:{name} in file {}: {}",
                        line.file.display(),
                        checked.join(" ")
                    ));
                    self.expand_configs(checked, active, out)?;
                }
            }
            active.pop();
        }
        Ok(())
    }
}

fn is_announce(word: &str) -> bool {
    word == "--announce_rc" || word == "--noannounce_rc" || word.starts_with("--announce_rc=")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<(usize, Vec<String>)> {
        parse_words(Path::new("rc"), text).unwrap()
    }

    #[test]
    fn lines_split_as_a_shell_splits_them() {
        let parsed = words(
            "# a comment\n\
             build --jobs=4 --action_env='A B' \"--define=x=y z\" # trailing\n\
             \n\
             test:ci --test_arg=a\\ b\n",
        );
        assert_eq!(
            parsed,
            vec![
                (
                    2,
                    vec![
                        "build".into(),
                        "--jobs=4".into(),
                        "--action_env=A B".into(),
                        "--define=x=y z".into()
                    ]
                ),
                (4, vec!["test:ci".into(), "--test_arg=a b".into()]),
            ]
        );
    }

    #[test]
    fn a_backslash_at_the_end_continues_the_line() {
        let parsed =
            words("build --jobs=4 \\\n  --keep_going --define=a\\\nb\nquery --output=label\n");
        assert_eq!(
            parsed,
            vec![
                (
                    1,
                    vec![
                        "build".into(),
                        "--jobs=4".into(),
                        "--keep_going".into(),
                        "--define=ab".into()
                    ]
                ),
                (4, vec!["query".into(), "--output=label".into()]),
            ]
        );
    }

    #[test]
    fn a_word_with_hash_inside_is_no_comment() {
        assert_eq!(words("build --define=a=b#c")[0].1[1], "--define=a=b#c");
    }

    #[test]
    fn an_unterminated_quote_names_the_line() {
        let err = parse_words(Path::new("/x/.bazelrc"), "\nbuild 'oops\n").unwrap_err();
        assert_eq!(err.to_string(), "/x/.bazelrc:2: unterminated single quote");
    }

    #[test]
    fn test_inherits_build_and_query_does_not() {
        assert_eq!(sections("test"), ["common", "build", "test"]);
        assert_eq!(sections("query"), ["common", "query"]);
        assert_eq!(sections("cquery"), ["common", "build", "cquery"]);
    }

    fn run_expand(dir: &Path, args: &[&str]) -> Result<Vec<String>, RcError> {
        let command = super::super::flag_forms::uniform(
            <super::super::Cli as clap::CommandFactory>::command(),
        );
        let flags = Flags::of(&command);
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        args.insert(1, "--nosystem_rc".into());
        args.insert(2, "--nohome_rc".into());
        expand(args, dir, &flags, &mut |_| {})
    }

    #[test]
    fn configs_expand_in_place_and_the_command_line_comes_last() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("WORKSPACE"), "").unwrap();
        std::fs::write(
            dir.path().join(".bazelrc"),
            "build --jobs=1 --config=a\nbuild:a --jobs=2 --config=b\nbuild:b --jobs=3\ncommon --test_output=all\n",
        )
        .unwrap();
        let got = run_expand(dir.path(), &["forge", "build", "--jobs=9", "//x"]).unwrap();
        assert_eq!(
            got,
            [
                "forge", "build", "--jobs=1", "--jobs=2", "--jobs=3", "--jobs=9", "//x"
            ]
        );
        let got = run_expand(dir.path(), &["forge", "test", "//x"]).unwrap();
        assert_eq!(
            got,
            [
                "forge",
                "test",
                "--test_output=all",
                "--jobs=1",
                "--jobs=2",
                "--jobs=3",
                "//x"
            ]
        );
    }

    #[test]
    fn imports_read_in_place_with_the_workspace_path_and_a_loop_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        std::fs::write(
            ws.join("a.rc"),
            "build --jobs=1\nimport %workspace%/b.rc\nbuild --jobs=3\n",
        )
        .unwrap();
        std::fs::write(
            ws.join("b.rc"),
            "try-import %workspace%/none.rc\nbuild --jobs=2\n",
        )
        .unwrap();
        let mut lines = Vec::new();
        read_rc(&ws.join("a.rc"), Some(ws), &mut Vec::new(), &mut lines).unwrap();
        let jobs: Vec<(&str, usize)> = lines.iter().map(|l| (l.args[0].as_str(), l.line)).collect();
        assert_eq!(jobs, [("--jobs=1", 1), ("--jobs=2", 2), ("--jobs=3", 3)]);
        assert_eq!(lines[1].file, ws.join("b.rc"));

        std::fs::write(ws.join("b.rc"), "import %workspace%/a.rc\n").unwrap();
        let err =
            read_rc(&ws.join("a.rc"), Some(ws), &mut Vec::new(), &mut Vec::new()).unwrap_err();
        let a = ws.join("a.rc").display().to_string();
        let b = ws.join("b.rc").display().to_string();
        assert_eq!(
            err,
            RcError::ImportLoop {
                file: b.clone(),
                line: 1,
                chain: format!("{a} -> {b} -> {a}"),
            }
        );
    }

    #[test]
    fn a_config_cycle_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("WORKSPACE"), "").unwrap();
        std::fs::write(
            dir.path().join(".bazelrc"),
            "build:a --config=b\nbuild:b --config=a\n",
        )
        .unwrap();
        let err = run_expand(dir.path(), &["forge", "build", "--config=a"]).unwrap_err();
        assert_eq!(
            err,
            RcError::ConfigCycle {
                name: "a".into(),
                chain: "[a, b, a]".into()
            }
        );
    }
}

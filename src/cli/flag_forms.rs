//! Bazel's flag forms over clap's command: the derived `Cli` command in, the same command out
//! with every boolean taking `--flag`, `--flag=true|false|yes|no|1|0` and (through
//! `normalize`) `--noflag`, and a single-valued flag given twice keeping its last value;
//! plus `Flags`, what each command's options are, for the rc files' checks.

use std::collections::HashMap;

use clap::builder::ValueParser;
use clap::{Arg, ArgAction, Command};

use super::ValueError;

/// Bazel's boolean values.
pub fn parse_bool(text: &str) -> Result<bool, ValueError> {
    match text {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(ValueError::NotBool(text.to_owned())),
    }
}

/// `command` and all its subcommands with Bazel's flag forms: every switch takes an optional
/// `=BOOL` (never a separate word, which would be a target pattern), and a repeated flag
/// replaces its earlier value (list flags still accumulate), so an rc file's `--jobs=4` and
/// the command line's `--jobs=8` make 8.
pub fn uniform(command: Command) -> Command {
    let mut command = command.args_override_self(true);
    let ids: Vec<clap::Id> = command
        .get_arguments()
        .filter(|a| is_switch(a))
        .map(|a| a.get_id().clone())
        .collect();
    for id in ids {
        command = command.mut_arg(id, |arg| {
            let was_flag = matches!(arg.get_action(), ArgAction::SetTrue);
            let arg = arg
                .action(ArgAction::Set)
                .num_args(0..=1)
                .require_equals(true)
                .default_missing_value("true")
                .value_parser(ValueParser::from(parse_bool));
            if was_flag {
                arg.default_value("false")
                    .hide_default_value(true)
                    .value_name("BOOL")
            } else {
                arg
            }
        });
    }
    let subcommands: Vec<String> = command
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    for name in subcommands {
        command = command.mut_subcommand(name, uniform);
    }
    command
}

/// A boolean option: a clap switch, or an optional value parsed as a bool.
pub fn is_switch(arg: &Arg) -> bool {
    if arg.is_positional() {
        return false;
    }
    match arg.get_action() {
        ArgAction::SetTrue => true,
        ArgAction::Set => arg.get_value_parser().type_id() == ValueParser::bool().type_id(),
        _ => false,
    }
}

/// How an option reads its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A boolean: `--flag`, `--flag=BOOL`, and `--noflag` where it is not declared itself.
    Switch,
    /// Takes a value: `--flag=value` or `--flag value`.
    Value,
    /// Takes no value and is no boolean (`--help`, `--version`).
    Plain,
}

/// The options of one command: `--long` names (with aliases) and `-s` shorts.
#[derive(Debug, Default, Clone)]
pub struct Options {
    names: HashMap<String, Kind>,
}

impl Options {
    fn of(command: &Command) -> Options {
        let mut names = HashMap::new();
        for arg in command.get_arguments() {
            if arg.is_positional() {
                continue;
            }
            let kind = if is_switch(arg) {
                Kind::Switch
            } else if arg.get_num_args().is_some_and(|n| n.takes_values())
                || matches!(arg.get_action(), ArgAction::Set | ArgAction::Append)
            {
                Kind::Value
            } else {
                Kind::Plain
            };
            for long in arg.get_long_and_visible_aliases().into_iter().flatten() {
                names.insert(format!("--{long}"), kind);
            }
            for alias in arg.get_all_aliases().into_iter().flatten() {
                names.insert(format!("--{alias}"), kind);
            }
            for short in arg.get_short_and_visible_aliases().into_iter().flatten() {
                names.insert(format!("-{short}"), kind);
            }
        }
        Options { names }
    }

    /// How option `word` (`--name`, `--name=value`, `--noname`, `-s`) reads, if the command
    /// takes it. `--noname` is a `Switch` when `--name` is one.
    pub fn kind(&self, word: &str) -> Option<Kind> {
        let name = word.split_once('=').map_or(word, |(n, _)| n);
        if let Some(kind) = self.names.get(name) {
            return Some(*kind);
        }
        // `-j4`: a short option with its value attached.
        if let Some(short) = attached_short(word) {
            return self.names.get(short).copied().filter(|k| *k == Kind::Value);
        }
        let positive = format!("--{}", name.strip_prefix("--no")?);
        match self.names.get(&positive) {
            Some(Kind::Switch) if !word.contains('=') => Some(Kind::Switch),
            _ => None,
        }
    }

    /// Whether `word` separates its value into the next word (`--jobs 4`, `-j 4`).
    pub fn takes_next(&self, word: &str) -> bool {
        takes_next(word, self.kind(word))
    }
}

/// Whether `word`, an option read as `kind`, has its value in the next word.
pub fn takes_next(word: &str, kind: Option<Kind>) -> bool {
    kind == Some(Kind::Value) && !word.contains('=') && attached_short(word).is_none()
}

/// `-j` of `-j4`.
fn attached_short(word: &str) -> Option<&str> {
    if word.starts_with("--") || !word.starts_with('-') {
        return None;
    }
    word.get(..2).filter(|_| word.len() > 2)
}

/// Every command's options, and the startup options before the command.
#[derive(Debug, Default)]
pub struct Flags {
    pub startup: Options,
    commands: HashMap<String, Options>,
}

impl Flags {
    pub fn of(command: &Command) -> Flags {
        let mut command = command.clone();
        command.build();
        Flags {
            startup: Options::of(&command),
            commands: command
                .get_subcommands()
                .map(|s| (s.get_name().to_owned(), Options::of(s)))
                .collect(),
        }
    }

    /// The options of `command`, if forge has it.
    pub fn command(&self, command: &str) -> Option<&Options> {
        self.commands.get(command)
    }

    /// How some command other than the startup options reads `word`.
    pub fn kind_in_any(&self, word: &str) -> Option<Kind> {
        self.commands.values().find_map(|o| o.kind(word))
    }
}

/// The command's arguments with `--noflag` (where the command declares no such flag itself)
/// turned into `--flag=false`, which clap reads. Values and what follows `--` stay as they are.
pub fn normalize(args: Vec<String>, options: &Options) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut iter = args.into_iter();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            out.push(arg);
            out.extend(iter.by_ref());
            break;
        }
        let takes_next = options.takes_next(&arg);
        let name = arg.split_once('=').map_or(arg.as_str(), |(n, _)| n);
        let declared = options.names.contains_key(name);
        match arg.strip_prefix("--no") {
            Some(name) if !declared && options.kind(&arg) == Some(Kind::Switch) => {
                out.push(format!("--{name}=false"))
            }
            _ => out.push(arg),
        }
        if takes_next && let Some(value) = iter.next() {
            out.push(value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Command {
        Command::new("t")
            .arg(
                Arg::new("keep_going")
                    .long("keep_going")
                    .short('k')
                    .action(ArgAction::SetTrue),
            )
            .arg(Arg::new("jobs").long("jobs").short('j'))
            .arg(Arg::new("env").long("env").action(ArgAction::Append))
            .arg(
                Arg::new("nostamp")
                    .long("nostamp")
                    .action(ArgAction::SetTrue),
            )
            .arg(Arg::new("patterns").num_args(0..))
    }

    #[test]
    fn booleans_take_every_bazel_form() {
        for (args, want) in [
            (vec!["t"], false),
            (vec!["t", "--keep_going"], true),
            (vec!["t", "-k"], true),
            (vec!["t", "--keep_going=yes"], true),
            (vec!["t", "--keep_going=1"], true),
            (vec!["t", "--keep_going=true"], true),
            (vec!["t", "--keep_going=no"], false),
            (vec!["t", "--keep_going=0"], false),
            (vec!["t", "--keep_going", "--keep_going=false"], false),
        ] {
            let m = uniform(sample())
                .try_get_matches_from(&args)
                .unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert_eq!(m.get_one::<bool>("keep_going"), Some(&want), "{args:?}");
        }
        let bad = uniform(sample()).try_get_matches_from(["t", "--keep_going=maybe"]);
        assert!(bad.is_err());
    }

    #[test]
    fn a_switch_never_takes_the_next_word() {
        let m = uniform(sample())
            .try_get_matches_from(["t", "--keep_going", "//pkg:x"])
            .unwrap();
        assert_eq!(m.get_one::<bool>("keep_going"), Some(&true));
        let patterns: Vec<&String> = m.get_many("patterns").unwrap().collect();
        assert_eq!(patterns, ["//pkg:x"]);
    }

    #[test]
    fn noflag_becomes_false_and_values_are_left_alone() {
        let command = uniform(sample());
        let flags = Flags::of(&Command::new("top").subcommand(command.clone()));
        let options = flags.command("t").unwrap();
        let args: Vec<String> = [
            "--nokeep_going",
            "--nostamp=1",
            "-j4",
            "--nokeep_going",
            "--jobs",
            "--nokeep_going",
            "--",
            "--nokeep_going",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            normalize(args, options),
            [
                "--keep_going=false",
                "--nostamp=1",
                "-j4",
                "--keep_going=false",
                "--jobs",
                "--nokeep_going",
                "--",
                "--nokeep_going"
            ]
        );
    }

    #[test]
    fn single_values_are_replaced_and_lists_accumulate() {
        let m = uniform(sample())
            .try_get_matches_from(["t", "--jobs=4", "--jobs", "8", "--env=A", "--env", "B"])
            .unwrap();
        assert_eq!(m.get_one::<String>("jobs").unwrap(), "8");
        let env: Vec<&String> = m.get_many("env").unwrap().collect();
        assert_eq!(env, ["A", "B"]);
    }
}

//! `forge canonicalize-flags [--for_command=CMD] -- FLAGS`: one command's flags in, as the
//! user wrote them (abbreviations, aliases, `--noflag`, repeats), and their canonical forms
//! out, one a line, as Bazel prints them: `--name=value` under the flag's own name, booleans
//! as `=1`/`=0`, a single-valued flag given twice only once with its last value, list flags
//! once per value, sorted by name; `--config=NAME` expanded from the rc files first.

use clap::Args;
use clap::parser::ValueSource;

use super::flag_forms;
use crate::core::{ExitCode, Failure};

#[derive(Args, Debug)]
pub struct CanonicalizeArgs {
    /// The command whose flags these are.
    #[arg(long = "for_command", value_name = "COMMAND", default_value = "build")]
    for_command: String,

    /// The flags to canonicalize, after `--`.
    #[arg(last = true, value_name = "FLAGS")]
    flags: Vec<String>,
}

pub fn run(args: CanonicalizeArgs) -> Result<ExitCode, Failure> {
    let root = flag_forms::uniform(<super::Cli as clap::CommandFactory>::command());
    let all = flag_forms::Flags::of(&root);
    // `--config=NAME` becomes the options the rc files define for it, as Bazel prints them.
    let flags = match args
        .flags
        .iter()
        .any(|f| f == "--config" || f.starts_with("--config="))
    {
        true => super::rc::expand_config_flags(
            &args.for_command,
            args.flags,
            &super::current_dir()?,
            &all,
        )
        .map_err(|e| Failure::usage(e.to_string()))?,
        false => args.flags,
    };
    for flag in &flags {
        refuse_unsupported(flag)?;
    }
    let (Some(command), Some(options)) = (
        root.find_subcommand(&args.for_command),
        all.command(&args.for_command),
    ) else {
        let names: Vec<&str> = root.get_subcommands().map(|c| c.get_name()).collect();
        return Err(Failure::usage(format!(
            "Not a valid command: '{}' (should be one of {})",
            args.for_command,
            names.join(", ")
        )));
    };
    let normalized = flag_forms::normalize(flags, options);
    // Only flags are canonicalized: a command's required expression or target (query,
    // aquery, why) is not asked for.
    let mut command = command.clone();
    let positionals: Vec<clap::Id> = command
        .get_arguments()
        .filter(|a| a.is_positional())
        .map(|a| a.get_id().clone())
        .collect();
    for id in positionals {
        command = command.mut_arg(id, |a| a.required(false));
    }
    let matches = command
        .clone()
        .no_binary_name(true)
        .try_get_matches_from(&normalized)
        .map_err(|e| Failure::usage(first_line(&e)))?;
    let mut canonical: Vec<(String, String)> = Vec::new();
    for arg in command.get_arguments() {
        let id = arg.get_id();
        if matches.value_source(id.as_str()) != Some(ValueSource::CommandLine) {
            continue;
        }
        if arg.is_positional() {
            return Err(Failure::usage(format!(
                "canonicalize-flags takes flags only, not '{}'",
                matches
                    .get_raw(id.as_str())
                    .into_iter()
                    .flatten()
                    .next()
                    .map(|v| v.to_string_lossy().into_owned())
                    .unwrap_or_default()
            )));
        }
        let Some(long) = arg.get_long() else { continue };
        if flag_forms::is_switch(arg) {
            let on = matches
                .get_one::<bool>(id.as_str())
                .copied()
                .unwrap_or(true);
            // A declared `--noflag` (e.g. `--nokeep_going`) is `--flag=0`.
            let positive = long
                .strip_prefix("no")
                .filter(|p| command.get_arguments().any(|a| a.get_long() == Some(p)));
            match positive {
                Some(p) => canonical.push((p.to_owned(), if on { "0" } else { "1" }.into())),
                None => canonical.push((long.to_owned(), if on { "1" } else { "0" }.into())),
            }
            continue;
        }
        for value in matches.get_raw(id.as_str()).into_iter().flatten() {
            canonical.push((long.to_owned(), value.to_string_lossy().into_owned()));
        }
    }
    // Sorted by name; a list flag's values keep their order (the sort is stable).
    canonical.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, value) in canonical {
        println!("--{name}={value}");
    }
    Ok(ExitCode::Success)
}

/// Flags forge reads before clap does, which this command does not canonicalize yet.
fn refuse_unsupported(flag: &str) -> Result<(), Failure> {
    let name = flag.split_once('=').map_or(flag, |(n, _)| n);
    if super::starlark_flags::is_setting(flag) {
        return Err(Failure::usage(format!(
            "forge canonicalize-flags does not support build settings (`{name}`) yet"
        )));
    }
    Ok(())
}

fn first_line(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    rendered
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid flags")
        .trim_start_matches("error: ")
        .to_owned()
}

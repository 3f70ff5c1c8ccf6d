//! `forge help [COMMAND | TOPIC]`: a topic name in, its text out — the command list, one
//! command's flags, or Bazel's topic `target-syntax` in our own words; `--man`: the whole
//! manual as a man page (`man.rs`).

use clap::Args;

use crate::core::{ExitCode, Failure};

#[derive(Args, Debug)]
pub struct HelpArgs {
    /// A command (`build`, `info`, ...) or a topic: `target-syntax`.
    topic: Option<String>,

    /// Print the whole manual as a roff man page: `forge help --man > forge.1`.
    #[arg(long = "man", conflicts_with = "topic")]
    man: bool,
}

/// `forge help target-syntax`: the target patterns every command that takes targets accepts.
pub(super) const TARGET_SYNTAX: &str = "\
Target pattern syntax
=====================

Commands that take targets (build, test, run, fetch, query) name them with labels and target
patterns. A pattern selects one target, every target of a package, or every package below a
directory:

  //foo/bar:wiz       The single target `wiz` of package foo/bar.
  //foo/bar           The same as //foo/bar:bar: the target named after the package's
                      last directory.
  //foo/bar:all       Every rule of package foo/bar (rules, not their source files).
  //foo/bar:*         Every target of package foo/bar: rules and files. `:all-targets`
                      is the same.
  //foo/...           Every rule of every package at or below the directory foo.
  //foo/...:all       The same as //foo/...
  //foo/...:*         Every target (rules and files) of every package at or below foo.
  //...               Every rule of every package of the workspace.
  @repo//pkg:target   A target of the external repository `repo`; patterns such as
                      @repo//pkg/... work too.

A pattern not starting with `//` or `@` is relative to the package of the current directory:
run from foo/, `bar:wiz` means //foo/bar:wiz, `:wiz` means //foo:wiz and `...` means
//foo/...; `bar/...` means //foo/bar/....

A pattern starting with `-` subtracts what it selects from the targets named before it:

  forge build -- //foo/... -//foo/bar/...

builds every rule below foo except those below foo/bar. Put `--` before the patterns so
that the leading `-` is not read as a flag.

Recursive patterns (`...`) skip directories listed in the workspace's .bazelignore file,
directories that are not packages (no BUILD or BUILD.bazel file) contribute nothing. As in
Bazel, symlinked directories are followed (their packages are named by the link's path),
except links into an output tree (forge's forge-* and Bazel's bazel-* links), links in a
directory holding a file named
DONT_FOLLOW_SYMLINKS_WHEN_TRAVERSING_THIS_DIRECTORY_VIA_A_RECURSIVE_TARGET_PATTERN, and links
back up the tree.
";

pub fn run(args: HelpArgs) -> Result<ExitCode, Failure> {
    let mut command = super::flag_forms::uniform(<super::Cli as clap::CommandFactory>::command());
    let text = match args.topic.as_deref() {
        None if args.man => super::man::page(&command)
            .map_err(|e| Failure::failed(format!("cannot render the man page: {e}")))?,
        None => command.render_long_help().to_string(),
        Some("target-syntax") => TARGET_SYNTAX.to_owned(),
        Some(topic) => match command.find_subcommand_mut(topic) {
            Some(sub) => {
                let mut sub = sub.clone().bin_name(format!("forge {topic}"));
                sub.render_long_help().to_string()
            }
            None => {
                // Bazel's words for a name that is neither.
                return Err(Failure::usage(format!(
                    "'{topic}' is neither a command nor a help topic"
                )));
            }
        },
    };
    super::print_out(text.as_bytes())?;
    Ok(ExitCode::Success)
}

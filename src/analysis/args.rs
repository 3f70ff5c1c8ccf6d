//! `ctx.actions.args()`: `add`, `add_all`, `add_joined`, `use_param_file` and
//! `set_param_file_format` calls in; the strings of a command line out, and how they go
//! into a parameter file when the action spills them there (read by `ctx.actions.run`,
//! `run_shell` and `write`).

// The Starlark signatures mirror Bazel's, with all their keyword arguments.
#![allow(clippy::too_many_arguments)]

use std::cell::RefCell;
use std::fmt;

use allocative::Allocative;
use starlark::any::ProvidesStaticType;
use starlark::environment::{Methods, MethodsBuilder};
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::none::NoneType;
use starlark::values::{
    NoSerialize, StarlarkValue, Trace, Value, ValueLike, ValueTyped, starlark_value,
};

use super::values::FileValue;
use crate::core::command_line::{self, DirectoryExpansion};
use crate::loading::{Depset, LabelValue, iterate_files};

/// How a value appears on a command line: a File as its path, anything else as `str()`.
pub(super) fn arg_string(value: Value) -> String {
    if let Some(f) = value.downcast_ref::<FileValue>() {
        return f.path.clone();
    }
    if let Some(l) = value.downcast_ref::<LabelValue>() {
        return l.label.to_string();
    }
    value.to_str()
}

/// How a parameter file holds its arguments (`set_param_file_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParamFileFormat {
    /// One argument a line, quoted for the shell where needed (Bazel's default).
    #[default]
    Shell,
    /// One argument a line, verbatim.
    Multiline,
    /// One argument a line, verbatim, except that a `--flag` followed by a value that is
    /// not itself a `--flag` is written as `--flag=value` (Abseil's flag files).
    FlagPerLine,
}

impl ParamFileFormat {
    fn parse(name: &str) -> anyhow::Result<ParamFileFormat> {
        match name {
            "shell" => Ok(ParamFileFormat::Shell),
            "multiline" => Ok(ParamFileFormat::Multiline),
            "flag_per_line" => Ok(ParamFileFormat::FlagPerLine),
            other => anyhow::bail!(
                "set_param_file_format: invalid format '{other}'; expected 'shell', \
                 'multiline' or 'flag_per_line'"
            ),
        }
    }

    /// The bytes of a parameter file holding `args`: each line ends with a newline.
    pub fn content(self, args: &[String]) -> String {
        let lines: Vec<String> = match self {
            ParamFileFormat::Shell => args.iter().map(|a| shell_quote(a)).collect(),
            ParamFileFormat::Multiline => args.to_vec(),
            ParamFileFormat::FlagPerLine => {
                let mut lines = Vec::new();
                let mut iter = args.iter().peekable();
                while let Some(arg) = iter.next() {
                    match iter.peek() {
                        Some(value) if arg.starts_with("--") && !value.starts_with("--") => {
                            lines.push(format!("{arg}={value}"));
                            iter.next();
                        }
                        _ => lines.push(arg.clone()),
                    }
                }
                lines
            }
        };
        lines.iter().map(|l| format!("{l}\n")).collect()
    }
}

/// Bazel's `ShellEscaper`: a word of only safe characters stays as it is; anything else is
/// single-quoted, a quote inside written `'\''`.
pub fn shell_quote(arg: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "@%-_+:,./".contains(c);
    if !arg.is_empty() && arg.chars().all(safe) {
        return arg.to_owned();
    }
    format!("'{}'", arg.replace('\'', "'\\''"))
}

/// `use_param_file(param_file_arg, use_always)`: the argument that names the file
/// (`@%s`), and whether the file is used even when the command line is short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamFileUse {
    pub arg_format: String,
    pub use_always: bool,
}

/// One `Args` object's part of a command line, as the action that receives it needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgsLine {
    pub args: Vec<String>,
    pub param_file: Option<ParamFileUse>,
    pub format: ParamFileFormat,
}

impl ArgsLine {
    /// The argument naming the parameter file at `path`.
    pub fn param_file_arg(&self, path: &str) -> Option<String> {
        self.param_file
            .as_ref()
            .map(|p| format_with(&p.arg_format, path).expect("checked by use_param_file"))
    }
}

/// `ctx.actions.args()`: a command line built up with `add`, `add_all`, `add_joined`.
#[derive(Debug, Default, ProvidesStaticType, NoSerialize, Allocative, Trace)]
pub struct ArgsValue {
    #[allocative(skip)]
    #[trace(static)]
    args: RefCell<Vec<String>>,
    #[allocative(skip)]
    #[trace(static)]
    param_file: RefCell<Option<ParamFileUse>>,
    #[allocative(skip)]
    #[trace(static)]
    format: RefCell<ParamFileFormat>,
}

impl fmt::Display for ArgsValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Args({:?})", self.args.borrow())
    }
}

#[starlark_value(type = "Args")]
impl<'v> StarlarkValue<'v> for ArgsValue {
    fn get_methods() -> Option<&'static Methods> {
        Some(ARGS_METHODS.methods())
    }
}

starlark::methods_static!(ARGS_METHODS = args_methods);

impl ArgsValue {
    /// The command line built so far, with its parameter file settings.
    pub(super) fn line(&self) -> ArgsLine {
        ArgsLine {
            args: self.args.borrow().clone(),
            param_file: self.param_file.borrow().clone(),
            format: *self.format.borrow(),
        }
    }
}

/// Bazel's format templates: exactly one `%s`, replaced by `value`; `%%` is a literal `%`.
pub fn format_with(template: &str, value: &str) -> anyhow::Result<String> {
    Ok(command_line::format_with(template, value)?)
}

fn format_opt(template: &Option<String>, value: String) -> anyhow::Result<String> {
    match template {
        None => Ok(value),
        Some(t) => format_with(t, &value),
    }
}

/// How `add_all` or `add_joined` treats each item.
struct EachItem<'a, 'v> {
    map_each: Option<Value<'v>>,
    format_each: &'a Option<String>,
    uniquify: bool,
    expand_directories: bool,
    /// `add_all`'s `before_each`, which a directory's files each get too.
    before_each: Option<&'a String>,
    /// `add_joined`'s `join_with`, between a directory's files too.
    join_with: Option<&'a str>,
}

/// The items of `values` as strings, after `map_each`, deduplicated when asked, then
/// formatted with `format_each` (Bazel's order). A directory to expand is a marker that
/// exec replaces by its files, formatted the same way, when the action runs.
fn expand_values<'v>(
    values: Value<'v>,
    each: EachItem<'_, 'v>,
    eval: &mut Evaluator<'v, '_, '_>,
) -> anyhow::Result<Vec<String>> {
    let EachItem {
        map_each,
        format_each,
        uniquify,
        expand_directories,
        before_each,
        join_with,
    } = each;
    if values.unpack_str().is_some() {
        anyhow::bail!(
            "expected a list or depset of values, got a string; wrap it in a list or use add()"
        );
    }
    let mut strings: Vec<String> = Vec::new();
    for item in iterate_files(values, eval.heap())? {
        // Bazel replaces a directory by the files in it when the action runs: so does exec,
        // from a marker, since they are not known during analysis.
        if expand_directories
            && let Some(dir) = item.downcast_ref::<FileValue>().filter(|f| f.is_directory)
        {
            if map_each.is_some() {
                anyhow::bail!(
                    "expand_directories: forge cannot call map_each on the files of directory \
                     '{}', which are known only when the action runs; pass \
                     expand_directories = False to map the directory itself",
                    dir.short_path
                );
            }
            let marker = DirectoryExpansion {
                directory: dir.path.clone(),
                format_each: format_each.clone(),
                before_each: before_each.cloned(),
                join_with: join_with.map(str::to_owned),
            }
            .marker();
            strings.push(marker);
            continue;
        }
        let Some(f) = map_each else {
            strings.push(arg_string(item));
            continue;
        };
        let r = eval
            .eval_function(f, &[item], &[])
            .map_err(|e| anyhow::anyhow!("map_each: {e}"))?;
        let bad = |found: Value| {
            anyhow::anyhow!(
                "map_each must return a string, a list of strings or None, but returned {} ({})",
                found.to_repr(),
                found.get_type()
            )
        };
        if r.is_none() {
            continue;
        }
        if let Some(s) = r.unpack_str() {
            strings.push(s.to_owned());
            continue;
        }
        let items: Vec<Value> = r.iterate(eval.heap()).map_err(|_| bad(r))?.collect();
        for m in items {
            strings.push(m.unpack_str().ok_or_else(|| bad(m))?.to_owned());
        }
    }
    if uniquify {
        let mut seen = std::collections::HashSet::new();
        strings.retain(|s| seen.insert(s.clone()));
    }
    strings
        .into_iter()
        .map(|s| {
            if command_line::holds_expansion(&s) {
                Ok(s) // formatted file by file when expanded
            } else {
                format_opt(format_each, s)
            }
        })
        .collect()
}

/// `add_all(values)` or `add_all(flag, values)`: the flag, if any, and the values.
fn flag_and_values<'v>(first: Value<'v>, second: Option<Value<'v>>) -> (Option<String>, Value<'v>) {
    match second {
        Some(v) => (Some(arg_string(first)), v),
        None => (None, first),
    }
}

/// `add` takes one value; a list or depset belongs in `add_all` or `add_joined`.
fn single_value(value: Value) -> anyhow::Result<String> {
    if Depset::from_value(value).is_some() || value.get_type() == "list" {
        anyhow::bail!(
            "Args.add() does not accept a list or depset; use Args.add_all() or \
             Args.add_joined() instead"
        );
    }
    Ok(arg_string(value))
}

#[starlark_module]
fn args_methods(builder: &mut MethodsBuilder) {
    /// `add(value)` or `add(flag, value)`; `format` applies to the value.
    fn add<'v>(
        this: ValueTyped<'v, ArgsValue>,
        #[starlark(require = pos)] arg_name_or_value: Value<'v>,
        #[starlark(require = pos)] value: Option<Value<'v>>,
        #[starlark(require = named)] format: Option<String>,
    ) -> anyhow::Result<NoneType> {
        let (flag, value) = flag_and_values(arg_name_or_value, value);
        let formatted = format_opt(&format, single_value(value)?)?;
        let mut args = this.as_ref().args.borrow_mut();
        args.extend(flag);
        args.push(formatted);
        Ok(NoneType)
    }

    /// Adds every item of a list or depset.
    fn add_all<'v>(
        this: ValueTyped<'v, ArgsValue>,
        #[starlark(require = pos)] arg_name_or_values: Value<'v>,
        #[starlark(require = pos)] values: Option<Value<'v>>,
        #[starlark(require = named)] map_each: Option<Value<'v>>,
        #[starlark(require = named)] format_each: Option<String>,
        #[starlark(require = named)] before_each: Option<String>,
        #[starlark(require = named, default = true)] omit_if_empty: bool,
        #[starlark(require = named, default = false)] uniquify: bool,
        #[starlark(require = named, default = true)] expand_directories: bool,
        #[starlark(require = named)] terminate_with: Option<String>,
        #[starlark(require = named, default = false)] allow_closure: bool,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        // Bazel refuses closures unless allowed, to keep analysis memory small; forge builds
        // the strings at once, so a closure costs nothing and both values are accepted.
        let _: bool = allow_closure;
        let (flag, values) = flag_and_values(arg_name_or_values, values);
        let each = EachItem {
            map_each: map_each.filter(|v| !v.is_none()),
            format_each: &format_each,
            uniquify,
            expand_directories,
            before_each: before_each.as_ref(),
            join_with: None,
        };
        let items = expand_values(values, each, eval)?;
        if items.is_empty() && omit_if_empty {
            return Ok(NoneType);
        }
        let mut args = this.as_ref().args.borrow_mut();
        args.extend(flag);
        for item in items {
            // A directory's marker carries before_each for each of its files.
            if !command_line::holds_expansion(&item) {
                args.extend(before_each.clone());
            }
            args.push(item);
        }
        args.extend(terminate_with);
        Ok(NoneType)
    }

    /// Adds the items of a list or depset joined into one argument.
    fn add_joined<'v>(
        this: ValueTyped<'v, ArgsValue>,
        #[starlark(require = pos)] arg_name_or_values: Value<'v>,
        #[starlark(require = pos)] values: Option<Value<'v>>,
        #[starlark(require = named)] join_with: String,
        #[starlark(require = named)] map_each: Option<Value<'v>>,
        #[starlark(require = named)] format_each: Option<String>,
        #[starlark(require = named)] format_joined: Option<String>,
        #[starlark(require = named, default = true)] omit_if_empty: bool,
        #[starlark(require = named, default = false)] uniquify: bool,
        #[starlark(require = named, default = true)] expand_directories: bool,
        #[starlark(require = named, default = false)] allow_closure: bool,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let _: bool = allow_closure;
        let (flag, values) = flag_and_values(arg_name_or_values, values);
        let each = EachItem {
            map_each: map_each.filter(|v| !v.is_none()),
            format_each: &format_each,
            uniquify,
            expand_directories,
            before_each: None,
            join_with: Some(&join_with),
        };
        let items = expand_values(values, each, eval)?;
        if items.is_empty() && omit_if_empty {
            return Ok(NoneType);
        }
        let joined = format_opt(&format_joined, items.join(&join_with))?;
        let mut args = this.as_ref().args.borrow_mut();
        args.extend(flag);
        args.push(joined);
        Ok(NoneType)
    }

    /// Spills these arguments into a parameter file named by `param_file_arg` (`"@%s"`):
    /// always, or only when the command line would be too long.
    fn use_param_file<'v>(
        this: ValueTyped<'v, ArgsValue>,
        #[starlark(require = pos)] param_file_arg: &str,
        #[starlark(require = named, default = false)] use_always: bool,
    ) -> anyhow::Result<NoneType> {
        format_with(param_file_arg, "")
            .map_err(|e| anyhow::anyhow!("use_param_file: param_file_arg: {e}"))?;
        *this.as_ref().param_file.borrow_mut() = Some(ParamFileUse {
            arg_format: param_file_arg.to_owned(),
            use_always,
        });
        Ok(NoneType)
    }

    /// How the parameter file holds the arguments: "shell", "multiline" or "flag_per_line".
    fn set_param_file_format<'v>(
        this: ValueTyped<'v, ArgsValue>,
        #[starlark(require = pos)] format: &str,
    ) -> anyhow::Result<NoneType> {
        *this.as_ref().format.borrow_mut() = ParamFileFormat::parse(format)?;
        Ok(NoneType)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parameter_files_in_each_format() {
        let args = strings(&["--out", "a b", "--v", "--k", "it's", ""]);
        assert_eq!(
            ParamFileFormat::Shell.content(&args),
            "--out\n'a b'\n--v\n--k\n'it'\\''s'\n''\n"
        );
        assert_eq!(
            ParamFileFormat::Multiline.content(&args),
            "--out\na b\n--v\n--k\nit's\n\n"
        );
        assert_eq!(
            ParamFileFormat::FlagPerLine.content(&args),
            "--out=a b\n--v\n--k=it's\n\n"
        );
        assert_eq!(
            shell_quote("bazel-out/x_y.txt@1,2:3+%"),
            "bazel-out/x_y.txt@1,2:3+%"
        );
        assert_eq!(shell_quote("a=b"), "'a=b'");
    }
}

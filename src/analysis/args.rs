//! `ctx.actions.args()`: `add`, `add_all` and `add_joined` calls in, the strings of a
//! command line out (read by `ctx.actions.run`, `run_shell` and `write`).

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
use crate::loading::{LabelValue, iterate_files};

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

/// `ctx.actions.args()`: a command line built up with `add`, `add_all`, `add_joined`.
#[derive(Debug, Default, ProvidesStaticType, NoSerialize, Allocative, Trace)]
pub struct ArgsValue {
    #[allocative(skip)]
    #[trace(static)]
    args: RefCell<Vec<String>>,
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
    /// The command line built so far.
    pub(super) fn items(&self) -> std::cell::Ref<'_, Vec<String>> {
        self.args.borrow()
    }
}

fn format_with(format: &Option<String>, s: String) -> anyhow::Result<String> {
    match format {
        None => Ok(s),
        Some(f) if f.contains("%s") => Ok(f.replacen("%s", &s, 1)),
        Some(f) => anyhow::bail!("format string '{f}' must contain '%s'"),
    }
}

/// The items of `values` as strings, after `map_each` and `format_each`, deduplicated when
/// asked.
fn expand_values<'v>(
    values: Value<'v>,
    map_each: Option<Value<'v>>,
    format_each: &Option<String>,
    uniquify: bool,
    expand_directories: bool,
    eval: &mut Evaluator<'v, '_, '_>,
) -> anyhow::Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for item in iterate_files(values, eval.heap())? {
        // Bazel replaces a directory by the files in it when the action runs; forge builds
        // command lines during analysis, when those files are not known.
        if expand_directories
            && let Some(dir) = item.downcast_ref::<FileValue>().filter(|f| f.is_directory)
        {
            anyhow::bail!(
                "expand_directories: forge cannot expand the directory '{}' into its files on \
                 a command line; pass expand_directories = False to get the directory's path \
                 (and list it in the action), or pass the files themselves",
                dir.short_path
            );
        }
        let mapped: Vec<Value> = match map_each {
            Some(f) => {
                let r = eval
                    .eval_function(f, &[item], &[])
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                if r.is_none() {
                    Vec::new()
                } else if let Some(s) = r.unpack_str() {
                    vec![eval.heap().alloc(s)]
                } else {
                    r.iterate(eval.heap())
                        .map_err(|_| {
                            anyhow::anyhow!("map_each must return a string, a list or None")
                        })?
                        .collect()
                }
            }
            None => vec![item],
        };
        for m in mapped {
            out.push(format_with(format_each, arg_string(m))?);
        }
    }
    if uniquify {
        let mut seen = std::collections::HashSet::new();
        out.retain(|s| seen.insert(s.clone()));
    }
    Ok(out)
}

#[starlark_module]
fn args_methods(builder: &mut MethodsBuilder) {
    /// `add(value)` or `add(flag, value)`.
    fn add<'v>(
        this: ValueTyped<'v, ArgsValue>,
        #[starlark(require = pos)] arg_name_or_value: Value<'v>,
        #[starlark(require = pos)] value: Option<Value<'v>>,
        #[starlark(require = named)] format: Option<String>,
    ) -> anyhow::Result<NoneType> {
        let mut args = this.as_ref().args.borrow_mut();
        match value {
            Some(v) => {
                args.push(arg_string(arg_name_or_value));
                args.push(format_with(&format, arg_string(v))?);
            }
            None => args.push(format_with(&format, arg_string(arg_name_or_value))?),
        }
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
        #[starlark(require = named)] terminate_with: Option<String>,
        #[starlark(require = named, default = true)] expand_directories: bool,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let (flag, values) = match values {
            Some(v) => (Some(arg_string(arg_name_or_values)), v),
            None => (None, arg_name_or_values),
        };
        let items = expand_values(
            values,
            map_each,
            &format_each,
            uniquify,
            expand_directories,
            eval,
        )?;
        if items.is_empty() && omit_if_empty {
            return Ok(NoneType);
        }
        let mut args = this.as_ref().args.borrow_mut();
        args.extend(flag);
        for item in items {
            if let Some(b) = &before_each {
                args.push(b.clone());
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
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let (flag, values) = match values {
            Some(v) => (Some(arg_string(arg_name_or_values)), v),
            None => (None, arg_name_or_values),
        };
        let items = expand_values(
            values,
            map_each,
            &format_each,
            uniquify,
            expand_directories,
            eval,
        )?;
        if items.is_empty() && omit_if_empty {
            return Ok(NoneType);
        }
        let mut args = this.as_ref().args.borrow_mut();
        args.extend(flag);
        args.push(format_with(&format_joined, items.join(&join_with))?);
        Ok(NoneType)
    }
}

//! Make variables: a command or attribute text and what the target may name in it, the
//! expanded text out. `$(location L)` and friends name dependencies' files
//! (`ctx.expand_location`); `$(NAME)` and `$X` name variables (`ctx.expand_make_variables`,
//! `ctx.var`).

use std::collections::{BTreeMap, HashMap};

use starlark::values::{Value, ValueLike};

use super::ctx::CtxValue;
use super::values::{FileValue, TargetInfo};
use crate::core::{Label, LabelError, PackageId, layout};
use crate::loading::Depset;

/// The files of a dependency for `$(location)`: its executable if it has one, else its
/// default outputs.
fn location_files<'v>(dep: Value<'v>, prefer_executable: bool) -> Vec<&'v FileValue> {
    let Some(t) = TargetInfo::from_value(dep) else {
        return Vec::new();
    };
    if prefer_executable
        && let Some(exe) = t
            .default_info("executable")
            .and_then(|e| e.downcast_ref::<FileValue>())
    {
        return vec![exe];
    }
    t.default_info("files")
        .and_then(Depset::from_value)
        .map(|d| {
            d.to_list()
                .into_iter()
                .filter_map(|v| v.downcast_ref::<FileValue>())
                .collect()
        })
        .unwrap_or_default()
}

impl<'v> CtxValue<'v> {
    /// Replaces `$(location L)`, `$(locations L)`, `$(execpath(s) L)`, `$(rootpath(s) L)`.
    /// `extra` are more targets that may be named (`expand_location`'s `targets`,
    /// `resolve_command`'s `tools`); `labelled` maps more labels to their files
    /// (`resolve_command`'s `label_dict`).
    pub(super) fn expand_location(
        &self,
        input: &str,
        extra: &[Value<'v>],
        labelled: &[(Label, Vec<&'v FileValue>)],
    ) -> anyhow::Result<String> {
        self.expand_location_as(input, extra, labelled, false)
    }

    /// An executable's `args` (and a test's `env`) as the program sees them: `$(location)`
    /// names runfiles paths, as Bazel's "data locations" do, then make variables, then
    /// Bourne-shell tokenization (one element may be several arguments).
    pub(super) fn expand_runtime_args(
        &self,
        attribute: &str,
        values: &[String],
        tokenize: bool,
    ) -> anyhow::Result<Vec<String>> {
        let vars: HashMap<String, String> = self.vars.iter().cloned().collect();
        let mut out = Vec::with_capacity(values.len());
        for value in values {
            let located = self
                .expand_location_as(value, &[], &[], true)
                .map_err(|e| anyhow::anyhow!("in {attribute} attribute: {e}"))?;
            let expanded = expand_make_variables(attribute, &located, &vars)?;
            if !tokenize {
                out.push(expanded);
                continue;
            }
            let words = shlex::split(&expanded).ok_or_else(|| {
                anyhow::anyhow!("in {attribute} attribute: unterminated quote in '{value}'")
            })?;
            out.extend(words);
        }
        Ok(out)
    }

    fn expand_location_as(
        &self,
        input: &str,
        extra: &[Value<'v>],
        labelled: &[(Label, Vec<&'v FileValue>)],
        runfiles_paths: bool,
    ) -> anyhow::Result<String> {
        const FUNCTIONS: [&str; 6] = [
            "locations",
            "location",
            "execpaths",
            "execpath",
            "rootpaths",
            "rootpath",
        ];
        let base = PackageId::new(&self.label.repo, &self.label.package);
        let mut out = String::new();
        let mut rest = input;
        while let Some(start) = rest.find('$') {
            out.push_str(&rest[..start]);
            // In attributes that get make variables too (`args`, `env`), `$$` is an escaped
            // `$`: kept for the make-variable pass, which makes it one `$`, so
            // `$$(location x)` stays literal text, as Bazel's one-pass expansion leaves it.
            if runfiles_paths && rest[start + 1..].starts_with('$') {
                out.push_str("$$");
                rest = &rest[start + 2..];
                continue;
            }
            if !rest[start + 1..].starts_with('(') {
                out.push('$');
                rest = &rest[start + 1..];
                continue;
            }
            let after = &rest[start + 2..];
            let Some(function) = FUNCTIONS
                .iter()
                .find(|f| after.starts_with(&format!("{f} ")))
            else {
                out.push_str("$(");
                rest = after;
                continue;
            };
            let end = after
                .find(')')
                .ok_or_else(|| anyhow::anyhow!("unterminated $({function} ...) in '{input}'"))?;
            let label_text = after[function.len()..end].trim();
            let label = Label::parse(label_text, &base)
                .map_err(|e: LabelError| anyhow::anyhow!("in $({function} {label_text}): {e}"))?;
            let dep = self.direct_deps.iter().chain(extra).find(|d| {
                TargetInfo::from_value(**d).is_some_and(|t| t.label == label.to_string())
            });
            let own_output = || {
                let short_path = layout::short_path(&label.repo, &label.package, &label.name);
                self.own_outputs.iter().find_map(|v| {
                    v.downcast_ref::<FileValue>()
                        .filter(|f| f.short_path == short_path)
                })
            };
            let in_dict = || labelled.iter().find(|(l, _)| *l == label).map(|(_, f)| f);
            let files = match (dep, in_dict(), own_output()) {
                (Some(dep), _, _) => location_files(*dep, true),
                (None, Some(files), _) => files.clone(),
                (None, None, Some(file)) => vec![file],
                (None, None, None) => anyhow::bail!(
                    "$({function} {label_text}): '{label}' is not a dependency of {}; add it to srcs, deps, data or tools",
                    self.label
                ),
            };
            let plural = function.ends_with('s');
            if !plural && files.len() != 1 {
                anyhow::bail!(
                    "$({function} {label_text}) expects exactly one file, but '{label}' has {}; use $({function}s ...)",
                    files.len()
                );
            }
            let rendered: Vec<String> = files
                .iter()
                .map(|f| {
                    if function.starts_with("root")
                        || runfiles_paths && function.starts_with("location")
                    {
                        f.short_path.clone()
                    } else {
                        f.path.clone()
                    }
                })
                .collect();
            out.push_str(&rendered.join(" "));
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// Bazel's make-variable expansion: `$$` is `$`, `$(NAME)` and `$X` (one character) look up
/// `NAME` / `X` in `vars`.
pub fn expand_make_variables(
    attribute: &str,
    command: &str,
    vars: &HashMap<String, String>,
) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut chars = command.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some((_, '$')) => out.push('$'),
            Some((j, '(')) => {
                let rest = &command[j + 1..];
                let end = rest.find(')').ok_or_else(|| {
                    anyhow::anyhow!("in {attribute}: unterminated $( at character {i}")
                })?;
                let name = &rest[..end];
                let value = vars.get(name).ok_or_else(|| {
                    anyhow::anyhow!(
                        "in {attribute}: $({name}) is not defined (write $$ for a literal $)"
                    )
                })?;
                out.push_str(value);
                for _ in 0..=end {
                    chars.next();
                }
            }
            Some((_, v)) => {
                let value = vars.get(&v.to_string()).ok_or_else(|| {
                    anyhow::anyhow!(
                        "in {attribute}: ${v} is not defined (write $$ for a literal $)"
                    )
                })?;
                out.push_str(value);
            }
            None => {
                anyhow::bail!("in {attribute}: a lone '$' at the end; write $$ for a literal $")
            }
        }
    }
    Ok(out)
}

/// `ctx.var`: Bazel's predefined make variables, then `--define NAME=VALUE`, which wins.
pub(super) fn ctx_var(config: &super::Config) -> Vec<(String, String)> {
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    vars.insert("BINDIR".into(), config.bin_dir());
    vars.insert("GENDIR".into(), config.bin_dir());
    let options = config.options();
    vars.insert("COMPILATION_MODE".into(), options.compilation_mode.clone());
    vars.insert("TARGET_CPU".into(), options.cpu.clone());
    for (k, v) in &options.defines {
        vars.insert(k.clone(), v.clone());
    }
    vars.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn make_variables() {
        let vars: HashMap<String, String> = [("@", "out"), ("SRCS", "a b"), ("<", "a")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(
            expand_make_variables("cmd", "cat $(SRCS) > $@ && echo $$HOME $<", &vars).unwrap(),
            "cat a b > out && echo $HOME a"
        );
        assert!(
            expand_make_variables("cmd", "$(NOPE)", &vars)
                .unwrap_err()
                .to_string()
                .contains("$(NOPE) is not defined")
        );
        assert!(expand_make_variables("cmd", "x$", &vars).is_err());
    }
}

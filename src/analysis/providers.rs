//! Providers: what a rule implementation returned in, the checked list of provider
//! instances out, with `DefaultInfo` completed as Bazel does (default outputs, runfiles and
//! the executable where the implementation left them out).

use std::collections::BTreeSet;

use starlark::collections::SmallMap;
use starlark::values::list::ListRef;
use starlark::values::structs::AllocStruct;
use starlark::values::{Heap, Value, ValueLike};
use thiserror::Error;

use super::actions::ActionsState;
use super::runfiles::{merge_runfiles, new_runfiles};
use super::short_from_exec;
use super::target::TargetError;
use super::values::{DEFAULT_INFO_ID, FileValue, TargetInfo};
use crate::core::Label;
use crate::loading::{
    AttrValue, ProviderInstance, ProviderInstanceGen, RuleDecl, RuleTarget, make_depset,
};

/// What is wrong with the providers an implementation returned.
#[derive(Debug, Error)]
pub(super) enum ProviderError {
    #[error(
        "the implementation must return a list of providers, but returned {repr} ({type_name})"
    )]
    NotAProvider {
        repr: String,
        type_name: &'static str,
    },
    #[error("the implementation returned {0} twice")]
    Twice(String),
    /// `rule(provides = [...])` is a promise the implementation must keep.
    #[error(
        "the rule advertises the '{0}' provider (rule(provides = ...)), but the \
         implementation did not return it"
    )]
    NotProvided(String),
    #[error("DefaultInfo.executable must be a File")]
    ExecutableNotAFile,
    #[error(
        "an executable rule must create an executable: return DefaultInfo(executable = ...) or write ctx.outputs.executable"
    )]
    NoExecutable,
}

/// A `DefaultInfo` instance with the given fields.
pub(super) fn default_info<'v>(heap: Heap<'v>, fields: Vec<(&str, Value<'v>)>) -> Value<'v> {
    let mut map = SmallMap::new();
    for (k, v) in fields {
        map.insert(k.to_owned(), v);
    }
    heap.alloc(ProviderInstanceGen {
        id: DEFAULT_INFO_ID.to_owned(),
        name: "DefaultInfo".to_owned(),
        fields: map,
    })
}

/// The providers an implementation returned (a list of provider instances, one instance,
/// or None), each at most once and every one the rule promises among them.
pub(super) fn providers_of<'v>(
    returned: Value<'v>,
    decl: &RuleDecl,
) -> Result<Vec<Value<'v>>, ProviderError> {
    let mut items: Vec<Value> = if returned.is_none() {
        Vec::new()
    } else {
        match ListRef::from_value(returned) {
            Some(list) => list.content().to_vec(),
            None => vec![returned],
        }
    };
    // The built-in `alias` returns its actual target: it forwards every provider of it, as
    // Bazel's alias does. No user rule may return a target.
    if decl.defined_in.starts_with("@prelude//")
        && let [single] = items.as_slice()
        && let Some(actual) = TargetInfo::from_value(*single)
    {
        items = actual.providers.iter().map(|p| p.to_value()).collect();
    }
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for item in &items {
        let Some(p) = ProviderInstance::from_value(*item) else {
            return Err(ProviderError::NotAProvider {
                repr: item.to_repr(),
                type_name: item.get_type(),
            });
        };
        if !seen.insert(&p.id) {
            return Err(ProviderError::Twice(p.name.clone()));
        }
    }
    for id in &decl.provides {
        if !seen.contains(id.as_str()) {
            let name = id.rsplit('%').next().unwrap_or(id);
            return Err(ProviderError::NotProvided(name.to_owned()));
        }
    }
    Ok(items)
}

/// The providers with `DefaultInfo` complete, and what of it the rest of analysis needs.
pub(super) struct CompletedProviders<'v> {
    pub providers: Vec<Value<'v>>,
    /// The target's executable, for executable rules and any rule that returned one.
    pub executable: Option<FileValue>,
    /// `DefaultInfo.default_runfiles`.
    pub runfiles: Value<'v>,
}

/// Fills in what the implementation left out of `DefaultInfo`, as Bazel does: the files
/// are the predeclared outputs (and the executable), the runfiles are empty, and the
/// executable is `ctx.outputs.executable` if an action wrote it. An unused
/// `ctx.outputs.executable` is dropped from `state`, so that it is no output at all.
pub(super) fn complete_default_info<'v>(
    heap: Heap<'v>,
    mut providers: Vec<Value<'v>>,
    rule: &RuleTarget,
    label: &Label,
    executable_file: Option<&FileValue>,
    state: &mut ActionsState,
) -> Result<CompletedProviders<'v>, TargetError> {
    let given = providers
        .iter()
        .position(|p| ProviderInstance::from_value(*p).is_some_and(|i| i.id == DEFAULT_INFO_ID));
    let field = |name: &str| {
        given
            .and_then(|i| ProviderInstance::from_value(providers[i]))
            .and_then(|p| p.field(name))
            .filter(|v| !v.is_none())
    };
    let implicit_used = executable_file.is_some_and(|f| state.declared.get(&f.path) == Some(&true));
    let executable = match field("executable") {
        Some(e) => Some(
            e.downcast_ref::<FileValue>()
                .ok_or(ProviderError::ExecutableNotAFile)?
                .clone(),
        ),
        None => executable_file.filter(|_| implicit_used).cloned(),
    };
    if let Some(f) = executable_file
        && !implicit_used
        && state.implicit_executable.is_some()
    {
        state.declared.remove(&f.path);
    }
    if rule.is_executable && executable.is_none() {
        return Err(ProviderError::NoExecutable.into());
    }
    // Building depsets of Files in the default order cannot fail; if it does, forge is wrong.
    let internal = |e: anyhow::Error| TargetError::Internal(e.to_string());
    let files = match field("files") {
        Some(f) => f,
        None => {
            let mut direct: Vec<Value> = Vec::new();
            for path in state.declared.keys() {
                if predeclared_or_executable(path, rule, label, executable.as_ref(), &state.config)
                {
                    direct.push(heap.alloc(FileValue {
                        path: path.clone(),
                        short_path: short_from_exec(path),
                        is_source: false,
                        is_directory: false,
                        owner: label.clone(),
                    }));
                }
            }
            make_depset(direct, Vec::new(), "default", heap).map_err(internal)?
        }
    };
    let given_runfiles = match field("default_runfiles").or_else(|| field("runfiles")) {
        Some(r) => r,
        None => {
            let empty = make_depset(Vec::new(), Vec::new(), "default", heap).map_err(internal)?;
            new_runfiles(empty, heap).map_err(internal)?
        }
    };
    // As in Bazel, an executable is one of its own runfiles, also for the targets that
    // merge these runfiles into theirs (a tool that runs another tool through runfiles).
    let runfiles = match &executable {
        Some(exe) => {
            let own = make_depset(vec![heap.alloc(exe.clone())], Vec::new(), "default", heap)
                .map_err(internal)?;
            let own = new_runfiles(own, heap).map_err(internal)?;
            merge_runfiles(vec![own, given_runfiles], heap).map_err(internal)?
        }
        None => given_runfiles,
    };
    let mut info_fields = vec![
        ("files", files),
        ("default_runfiles", runfiles),
        ("runfiles", runfiles),
    ];
    if let Some(d) = field("data_runfiles") {
        info_fields.push(("data_runfiles", d));
    }
    let executable_value = match &executable {
        Some(exe) => heap.alloc(exe.clone()),
        None => Value::new_none(),
    };
    if executable.is_some() {
        info_fields.push(("executable", executable_value));
    }
    // Bazel's FilesToRunProvider. Forge writes `<exe>.runfiles_manifest` when it lays out
    // the runfiles tree, after every action, so no action may read it: it is None here.
    info_fields.push((
        "files_to_run",
        heap.alloc(AllocStruct([
            ("executable", executable_value),
            ("runfiles_manifest", Value::new_none()),
        ])),
    ));
    let info = default_info(heap, info_fields);
    match given {
        Some(i) => providers[i] = info,
        None => providers.push(info),
    }
    Ok(CompletedProviders {
        providers,
        executable,
        runfiles,
    })
}

/// Whether a declared file is one of the rule's own outputs by declaration (an `attr.output`,
/// a predeclared output, or the executable): those are its default outputs.
fn predeclared_or_executable(
    path: &str,
    rule: &RuleTarget,
    label: &Label,
    executable: Option<&FileValue>,
    config: &super::Config,
) -> bool {
    if executable.is_some_and(|e| e.path == path) {
        return true;
    }
    rule.attrs.values().any(|v| match v {
        AttrValue::Output(l) => FileValue::generated(label, &l.name, false, config).path == path,
        AttrValue::OutputList(ls) => ls
            .iter()
            .any(|l| FileValue::generated(label, &l.name, false, config).path == path),
        _ => false,
    })
}

/// `OutputGroupInfo`'s id, as `DefaultInfo`'s.
pub(super) const OUTPUT_GROUP_INFO_ID: &str = "<builtin>%OutputGroupInfo";

/// The output groups a build asks for (`--output_groups`), decided as Bazel does: when
/// every value starts with `+` or `-`, they add to or take from the default groups
/// (`default`, and the hidden one that builds executables' runfiles trees); any other value
/// makes the list replace the defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputGroups {
    /// The named groups; `default` is `DefaultInfo.files`.
    pub groups: BTreeSet<String>,
    /// Whether the hidden default group is kept: the runfiles trees of executables.
    pub runfiles: bool,
}

impl OutputGroups {
    /// The groups the flag's values select (empty: the defaults).
    pub fn from_flags(values: &[String]) -> OutputGroups {
        let keep_defaults = values
            .iter()
            .all(|v| v.starts_with('+') || v.starts_with('-'));
        let mut groups = BTreeSet::new();
        if keep_defaults {
            groups.insert("default".to_owned());
        }
        for v in values {
            if let Some(removed) = v.strip_prefix('-') {
                groups.remove(removed);
            } else {
                groups.insert(v.strip_prefix('+').unwrap_or(v).to_owned());
            }
        }
        OutputGroups {
            groups,
            runfiles: keep_defaults,
        }
    }
}

impl Default for OutputGroups {
    fn default() -> OutputGroups {
        OutputGroups::from_flags(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(flags: &[&str]) -> (Vec<String>, bool) {
        let flags: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
        let g = OutputGroups::from_flags(&flags);
        (g.groups.into_iter().collect(), g.runfiles)
    }

    #[test]
    fn output_groups_add_remove_or_replace_the_defaults() {
        assert_eq!(groups(&[]), (vec!["default".into()], true));
        assert_eq!(
            groups(&["+extra"]),
            (vec!["default".into(), "extra".into()], true)
        );
        assert_eq!(groups(&["-default", "+x"]), (vec!["x".into()], true));
        assert_eq!(groups(&["x", "+y"]), (vec!["x".into(), "y".into()], false));
        assert_eq!(groups(&["x", "-x"]), (Vec::<String>::new(), false));
    }
}

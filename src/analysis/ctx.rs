//! The `ctx` a rule implementation receives, with `ctx.actions` and `ctx.actions.args()`.
//! Calls on them record plain-Rust `Action`s in the target's `ActionsState`; nothing runs here.

// The Starlark signatures mirror Bazel's, with all their keyword arguments.
#![allow(clippy::too_many_arguments)]

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

use allocative::Allocative;
use starlark::any::ProvidesStaticType;
use starlark::environment::{Methods, MethodsBuilder};
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::dict::DictRef;
use starlark::values::none::NoneType;
use starlark::values::{
    Heap, NoSerialize, StarlarkValue, Trace, Value, ValueLike, ValueTyped, starlark_value,
};

use super::values::{FileValue, Runfiles, RunfilesGen, TargetInfo, symlink_entries};
use crate::core::{Action, ActionKind, ExecPath};
use crate::core::{Label, LabelError, PackageId, layout};
use crate::loading::{Depset, LabelValue, iterate_files, make_depset};

/// What one target's analysis accumulates.
#[derive(Debug, Default)]
pub struct ActionsState {
    pub owner: Label,
    pub actions: Vec<Action>,
    /// Files declared by this target: exec path -> whether an action generates it yet.
    pub declared: BTreeMap<String, bool>,
    /// Executables of dependencies -> the exec paths of their runfiles, so that an action
    /// using a tool also depends on what the tool needs at run time.
    pub tool_runfiles: HashMap<String, Vec<ExecPath>>,
    /// Execution requirements from the target's tags.
    pub requirements: Vec<String>,
    /// `ctx.outputs.executable` of an executable rule: declared up front, but needed only if
    /// the implementation uses it; declaring it again by name returns the same file.
    pub implicit_executable: Option<String>,
}

/// `ctx.actions`.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative, Trace)]
pub struct ActionsValue {
    #[allocative(skip)]
    #[trace(static)]
    pub state: RefCell<ActionsState>,
}

impl fmt::Display for ActionsValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "actions for {}", self.state.borrow().owner)
    }
}

#[starlark_value(type = "actions")]
impl<'v> StarlarkValue<'v> for ActionsValue {
    fn get_methods() -> Option<&'static Methods> {
        Some(ACTIONS_METHODS.methods())
    }
}

starlark::methods_static!(ACTIONS_METHODS = actions_methods);

fn file_of<'v>(value: Value<'v>, what: &str) -> anyhow::Result<&'v FileValue> {
    value
        .downcast_ref::<FileValue>()
        .ok_or_else(|| anyhow::anyhow!("{what} must be a File, got {}", value.get_type()))
}

fn files_of<'v>(
    value: Option<Value<'v>>,
    what: &str,
    heap: Heap<'v>,
) -> anyhow::Result<Vec<&'v FileValue>> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    iterate_files(value, heap)?
        .into_iter()
        .map(|v| file_of(v, what))
        .collect()
}

/// How a value appears on a command line: a File as its path, anything else as `str()`.
fn arg_string(value: Value) -> String {
    if let Some(f) = value.downcast_ref::<FileValue>() {
        return f.path.clone();
    }
    if let Some(l) = value.downcast_ref::<LabelValue>() {
        return l.label.to_string();
    }
    value.to_str()
}

impl ActionsState {
    fn declare(
        &mut self,
        name: &str,
        sibling: Option<&FileValue>,
        is_directory: bool,
    ) -> anyhow::Result<FileValue> {
        if name.is_empty()
            || name.starts_with('/')
            || name.split('/').any(|s| s == ".." || s == ".")
        {
            anyhow::bail!(
                "cannot declare '{name}': file names must be relative paths inside the package"
            );
        }
        let relative = match sibling {
            Some(s) => {
                let prefix = format!("{}/", s.dirname());
                let package_dir = FileValue::generated(&self.owner, "x", false);
                let pkg_prefix = format!("{}/", package_dir.dirname());
                format!("{}{name}", prefix.strip_prefix(&pkg_prefix).unwrap_or(""))
            }
            None => name.to_owned(),
        };
        let file = FileValue::generated(&self.owner, &relative, is_directory);
        if self.implicit_executable.as_deref() == Some(file.path.as_str()) {
            self.implicit_executable = None;
            return Ok(file);
        }
        if self.declared.contains_key(&file.path) {
            anyhow::bail!("'{}' is declared twice in {}", file.short_path, self.owner);
        }
        self.declared.insert(file.path.clone(), false);
        Ok(file)
    }

    /// Declares an output named by an `attr.output` or a predeclared output template.
    pub fn declare_output(&mut self, name: &str) -> anyhow::Result<FileValue> {
        self.declare(name, None, false)
    }

    /// Registers an action after checking that it creates only this target's declared,
    /// not-yet-generated files.
    fn register(&mut self, mut action: Action) -> anyhow::Result<()> {
        if action.outputs.is_empty() {
            anyhow::bail!("an action must have at least one output");
        }
        for out in &action.outputs {
            match self.declared.get_mut(out.as_str()) {
                None => anyhow::bail!(
                    "'{out}' is not a file declared by {} (declare it with ctx.actions.declare_file)",
                    self.owner
                ),
                Some(true) => anyhow::bail!(
                    "'{out}' is already generated by another action of {}",
                    self.owner
                ),
                Some(generated) => *generated = true,
            }
        }
        // A tool's runfiles are inputs of every action that runs it.
        let mut extra = Vec::new();
        for input in action
            .inputs
            .iter()
            .map(ExecPath::as_str)
            .chain(action_program(&action))
        {
            if let Some(rf) = self.tool_runfiles.get(input) {
                extra.extend(rf.iter().cloned());
            }
        }
        action.inputs.extend(extra);
        action.inputs.sort();
        action.inputs.dedup();
        action.outputs.sort();
        action.directory_outputs.sort();
        // The target's tags, then the action's own execution_requirements.
        let own = std::mem::take(&mut action.requirements);
        action.requirements = self.requirements.clone();
        for r in own {
            if !action.requirements.contains(&r) {
                action.requirements.push(r);
            }
        }
        self.actions.push(action);
        Ok(())
    }
}

fn action_program(action: &Action) -> Option<&str> {
    match &action.kind {
        ActionKind::Run { argv } => argv.first().map(String::as_str),
        _ => None,
    }
}

fn string_dict(value: Option<Value>, what: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(BTreeMap::new());
    };
    let dict =
        DictRef::from_value(value).ok_or_else(|| anyhow::anyhow!("{what} must be a dict"))?;
    dict.iter()
        .map(|(k, v)| {
            let k = k
                .unpack_str()
                .ok_or_else(|| anyhow::anyhow!("{what} keys must be strings"))?;
            let v = v
                .unpack_str()
                .ok_or_else(|| anyhow::anyhow!("{what} values must be strings"))?;
            Ok((k.to_owned(), v.to_owned()))
        })
        .collect()
}

/// Command-line arguments: strings, Files, or `Args` objects, flattened to strings.
fn command_line<'v>(value: Option<Value<'v>>, heap: Heap<'v>) -> anyhow::Result<Vec<String>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in value
        .iterate(heap)
        .map_err(|_| anyhow::anyhow!("arguments must be a list"))?
    {
        match item.downcast_ref::<ArgsValue>() {
            Some(args) => out.extend(args.args.borrow().iter().cloned()),
            None => out.push(arg_string(item)),
        }
    }
    Ok(out)
}

fn paths(files: &[&FileValue]) -> Vec<ExecPath> {
    files
        .iter()
        .map(|f| ExecPath::new(f.path.clone()))
        .collect()
}

struct RunOptions<'v> {
    outputs: Value<'v>,
    inputs: Option<Value<'v>>,
    tools: Option<Value<'v>>,
    mnemonic: Option<String>,
    progress_message: Option<String>,
    env: Option<Value<'v>>,
    /// `execution_requirements`, on top of the target's tags.
    requirements: Vec<String>,
    /// The program, when it is a file: an input too.
    program: Option<String>,
}

fn register_run<'v>(
    this: &ActionsValue,
    argv: Vec<String>,
    o: RunOptions<'v>,
    default_mnemonic: &str,
    heap: Heap<'v>,
) -> anyhow::Result<NoneType> {
    let outputs = files_of(Some(o.outputs), "outputs", heap)?;
    let mut inputs = paths(&files_of(o.inputs, "inputs", heap)?);
    inputs.extend(paths(&files_of_or_targets(o.tools, heap)?));
    inputs.extend(o.program.map(ExecPath::new));
    let mut state = this.state.borrow_mut();
    let owner = state.owner.clone();
    let mnemonic = o.mnemonic.unwrap_or_else(|| default_mnemonic.to_owned());
    let progress_message = o
        .progress_message
        .map(|m| m.replace("%{label}", &owner.to_string()))
        .unwrap_or_else(|| format!("{mnemonic} {owner}"));
    state.register(Action {
        owner,
        mnemonic,
        progress_message,
        kind: ActionKind::Run { argv },
        inputs,
        outputs: paths(&outputs),
        env: string_dict(o.env, "env")?,
        requirements: o.requirements,
        directory_outputs: outputs
            .iter()
            .filter(|f| f.is_directory)
            .map(|f| ExecPath::new(f.path.clone()))
            .collect(),
        scratch_dirs: vec![],
    })?;
    Ok(NoneType)
}

/// The execution requirements forge understands, as tags or `execution_requirements` keys.
pub const KNOWN_REQUIREMENTS: [&str; 6] = [
    "no-sandbox",
    "no-cache",
    "no-remote",
    "local",
    "requires-network",
    "external",
];

/// Whether `r` is an execution requirement forge acts on (`timeout:SECONDS` included).
pub fn is_known_requirement(r: &str) -> bool {
    KNOWN_REQUIREMENTS.contains(&r) || r.starts_with("timeout:")
}

/// `execution_requirements = {"no-sandbox": "1", ...}` as requirement names, merged like tags.
/// A key forge does not act on is refused rather than dropped.
fn execution_requirements_of(value: Option<Value>) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for (key, _) in string_dict(value, "execution_requirements")? {
        if !is_known_requirement(&key) {
            anyhow::bail!(
                "execution_requirements: forge does not support '{key}'; the supported keys are {} \
                 and 'timeout:SECONDS'",
                KNOWN_REQUIREMENTS
                    .iter()
                    .map(|k| format!("'{k}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        out.push(key);
    }
    Ok(out)
}

/// `input_manifests` and `toolchain` of `run`/`run_shell`, which forge has no use for: a
/// tool's runfiles are inputs already, and there is no toolchain resolution.
fn refuse_unsupported(
    input_manifests: Option<Value>,
    toolchain: Option<Value>,
) -> anyhow::Result<()> {
    if input_manifests.is_some_and(|v| !v.is_none() && v.length().is_ok_and(|n| n > 0)) {
        anyhow::bail!(
            "input_manifests is not supported by forge: a tool's runfiles are inputs of every \
             action that runs it; pass the tool in 'tools' (or as the executable) instead"
        );
    }
    if let Some(t) = toolchain.filter(|t| !t.is_none()) {
        anyhow::bail!(
            "toolchain = {} is not supported by forge, which has no toolchain resolution; \
             leave it out or pass None",
            t.to_repr()
        );
    }
    Ok(())
}

/// `tools` may hold Files, depsets of Files, or targets (their executable or files).
fn files_of_or_targets<'v>(
    value: Option<Value<'v>>,
    heap: Heap<'v>,
) -> anyhow::Result<Vec<&'v FileValue>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in iterate_files(value, heap)? {
        if let Some(t) = TargetInfo::from_value(item) {
            if let Some(exe) = t.default_info("executable") {
                out.push(file_of(exe, "tools")?);
            } else if let Some(files) = t.default_info("files") {
                out.extend(files_of(Some(files), "tools", heap)?);
            }
        } else {
            out.push(file_of(item, "tools")?);
        }
    }
    Ok(out)
}

/// `declare_file` and `declare_directory`.
fn declare<'v>(
    this: &ValueTyped<'v, ActionsValue>,
    filename: &str,
    sibling: Option<Value<'v>>,
    is_directory: bool,
) -> anyhow::Result<FileValue> {
    let sibling = match sibling.filter(|s| !s.is_none()) {
        Some(s) => Some(file_of(s, "sibling")?),
        None => None,
    };
    this.as_ref()
        .state
        .borrow_mut()
        .declare(filename, sibling, is_directory)
}

#[starlark_module]
fn actions_methods(builder: &mut MethodsBuilder) {
    /// Declares a file this rule will create, in the rule's package.
    fn declare_file<'v>(
        this: ValueTyped<'v, ActionsValue>,
        filename: &str,
        #[starlark(require = named)] sibling: Option<Value<'v>>,
    ) -> anyhow::Result<FileValue> {
        declare(&this, filename, sibling, false)
    }

    /// Declares a directory this rule will create.
    fn declare_directory<'v>(
        this: ValueTyped<'v, ActionsValue>,
        filename: &str,
        #[starlark(require = named)] sibling: Option<Value<'v>>,
    ) -> anyhow::Result<FileValue> {
        declare(&this, filename, sibling, true)
    }

    /// Writes `content` (a string or an Args object) to `output`.
    fn write<'v>(
        this: ValueTyped<'v, ActionsValue>,
        output: Value<'v>,
        content: Value<'v>,
        #[starlark(require = named, default = false)] is_executable: bool,
    ) -> anyhow::Result<NoneType> {
        let output = file_of(output, "output")?;
        let content = match content.downcast_ref::<ArgsValue>() {
            Some(args) => {
                let mut s = args.args.borrow().join("\n");
                s.push('\n');
                s
            }
            None => content
                .unpack_str()
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "content must be a string or Args, got {}",
                        content.get_type()
                    )
                })?
                .to_owned(),
        };
        let mut state = this.as_ref().state.borrow_mut();
        let owner = state.owner.clone();
        // The rule's own executable runs whatever `is_executable` said, as in Bazel (whose
        // outputs are all executable).
        let is_executable =
            is_executable || state.implicit_executable.as_deref() == Some(output.path.as_str());
        state.register(Action {
            progress_message: format!("Writing file {}", output.short_path),
            owner,
            mnemonic: "FileWrite".into(),
            kind: ActionKind::Write {
                content: content.into_bytes(),
                executable: is_executable,
            },
            inputs: Vec::new(),
            outputs: vec![ExecPath::new(output.path.clone())],
            env: BTreeMap::new(),
            requirements: Vec::new(),
            directory_outputs: vec![],
            scratch_dirs: vec![],
        })?;
        Ok(NoneType)
    }

    /// Runs `executable` (a File or a program name) with `arguments`.
    fn run<'v>(
        this: ValueTyped<'v, ActionsValue>,
        #[starlark(require = named)] outputs: Value<'v>,
        #[starlark(require = named)] inputs: Option<Value<'v>>,
        #[starlark(require = named)] executable: Value<'v>,
        #[starlark(require = named)] tools: Option<Value<'v>>,
        #[starlark(require = named)] arguments: Option<Value<'v>>,
        #[starlark(require = named)] mnemonic: Option<String>,
        #[starlark(require = named)] progress_message: Option<String>,
        #[starlark(require = named)] env: Option<Value<'v>>,
        #[starlark(require = named)] use_default_shell_env: Option<bool>,
        #[starlark(require = named)] execution_requirements: Option<Value<'v>>,
        #[starlark(require = named)] input_manifests: Option<Value<'v>>,
        #[starlark(require = named)] toolchain: Option<Value<'v>>,
        heap: Heap<'v>,
    ) -> anyhow::Result<NoneType> {
        // Every forge action has the default shell environment (the fixed PATH, LANG, TZ and
        // --action_env), and `env` is merged into it: both values of this flag mean that.
        let _: Option<bool> = use_default_shell_env;
        let requirements = execution_requirements_of(execution_requirements)?;
        refuse_unsupported(input_manifests, toolchain)?;
        let (program, program_file) = if let Some(t) = TargetInfo::from_value(executable) {
            let exe = t
                .default_info("executable")
                .ok_or_else(|| anyhow::anyhow!("executable: {} is not executable", t.label))?;
            let f = file_of(exe, "executable")?;
            (f.path.clone(), Some(f.path.clone()))
        } else if let Some(f) = executable.downcast_ref::<FileValue>() {
            (f.path.clone(), Some(f.path.clone()))
        } else {
            let s = executable
                .unpack_str()
                .ok_or_else(|| anyhow::anyhow!("executable must be a File or a string"))?;
            (s.to_owned(), None)
        };
        let mut argv = vec![program];
        argv.extend(command_line(arguments, heap)?);
        let o = RunOptions {
            outputs,
            inputs,
            tools,
            mnemonic,
            progress_message,
            env,
            requirements,
            program: program_file,
        };
        register_run(this.as_ref(), argv, o, "Action", heap)
    }

    /// Runs a bash command: `/bin/bash -c command "" arguments...`.
    fn run_shell<'v>(
        this: ValueTyped<'v, ActionsValue>,
        #[starlark(require = named)] outputs: Value<'v>,
        #[starlark(require = named)] command: Value<'v>,
        #[starlark(require = named)] inputs: Option<Value<'v>>,
        #[starlark(require = named)] tools: Option<Value<'v>>,
        #[starlark(require = named)] arguments: Option<Value<'v>>,
        #[starlark(require = named)] mnemonic: Option<String>,
        #[starlark(require = named)] progress_message: Option<String>,
        #[starlark(require = named)] env: Option<Value<'v>>,
        #[starlark(require = named)] use_default_shell_env: Option<bool>,
        #[starlark(require = named)] execution_requirements: Option<Value<'v>>,
        #[starlark(require = named)] input_manifests: Option<Value<'v>>,
        #[starlark(require = named)] toolchain: Option<Value<'v>>,
        heap: Heap<'v>,
    ) -> anyhow::Result<NoneType> {
        // Every forge action has the default shell environment (the fixed PATH, LANG, TZ and
        // --action_env), and `env` is merged into it: both values of this flag mean that.
        let _: Option<bool> = use_default_shell_env;
        let requirements = execution_requirements_of(execution_requirements)?;
        refuse_unsupported(input_manifests, toolchain)?;
        let command = match command.unpack_str() {
            Some(s) => s.to_owned(),
            None => command_line(Some(command), heap)?.join(" "),
        };
        let mut argv = vec![
            "/bin/bash".to_owned(),
            "-c".to_owned(),
            command,
            String::new(),
        ];
        argv.extend(command_line(arguments, heap)?);
        let o = RunOptions {
            outputs,
            inputs,
            tools,
            mnemonic,
            progress_message,
            env,
            requirements,
            program: None,
        };
        register_run(this.as_ref(), argv, o, "Action", heap)
    }

    /// Makes `output` a copy of `target_file` (forge stores outputs by content).
    fn symlink<'v>(
        this: ValueTyped<'v, ActionsValue>,
        #[starlark(require = named)] output: Value<'v>,
        #[starlark(require = named)] target_file: Option<Value<'v>>,
        #[starlark(require = named)] target_path: Option<String>,
        #[starlark(require = named, default = false)] is_executable: bool,
        #[starlark(require = named)] progress_message: Option<String>,
    ) -> anyhow::Result<NoneType> {
        let output = file_of(output, "output")?;
        let target = match (target_file.filter(|v| !v.is_none()), target_path) {
            (Some(t), None) => file_of(t, "target_file")?.path.clone(),
            (None, Some(p)) => p,
            _ => anyhow::bail!("symlink: give exactly one of target_file and target_path"),
        };
        let mut state = this.as_ref().state.borrow_mut();
        let owner = state.owner.clone();
        state.register(Action {
            progress_message: progress_message
                .unwrap_or_else(|| format!("Symlinking {}", output.short_path)),
            owner,
            mnemonic: "Symlink".into(),
            kind: ActionKind::Symlink {
                target: target.clone(),
                executable: is_executable,
            },
            inputs: vec![ExecPath::new(target)],
            outputs: vec![ExecPath::new(output.path.clone())],
            env: BTreeMap::new(),
            requirements: Vec::new(),
            directory_outputs: vec![],
            scratch_dirs: vec![],
        })?;
        Ok(NoneType)
    }

    /// Writes `template` to `output` with each substitution key replaced by its value.
    fn expand_template<'v>(
        this: ValueTyped<'v, ActionsValue>,
        #[starlark(require = named)] template: Value<'v>,
        #[starlark(require = named)] output: Value<'v>,
        #[starlark(require = named)] substitutions: Option<Value<'v>>,
        #[starlark(require = named, default = false)] is_executable: bool,
        #[starlark(require = named)] computed_substitutions: Option<Value<'v>>,
    ) -> anyhow::Result<NoneType> {
        if computed_substitutions.is_some_and(|c| !c.is_none()) {
            anyhow::bail!(
                "expand_template: 'computed_substitutions' is not supported by forge; compute \
                 the values in the implementation and pass them in 'substitutions'"
            );
        }
        let template = file_of(template, "template")?;
        let output = file_of(output, "output")?;
        let mut subs = Vec::new();
        if let Some(d) = substitutions.filter(|v| !v.is_none()) {
            let dict = DictRef::from_value(d)
                .ok_or_else(|| anyhow::anyhow!("substitutions must be a dict"))?;
            for (k, v) in dict.iter() {
                subs.push((arg_string(k), arg_string(v)));
            }
        }
        let mut state = this.as_ref().state.borrow_mut();
        let owner = state.owner.clone();
        state.register(Action {
            progress_message: format!("Expanding template {}", output.short_path),
            owner,
            mnemonic: "TemplateExpand".into(),
            kind: ActionKind::ExpandTemplate {
                template: template.path.clone(),
                substitutions: subs,
                executable: is_executable,
            },
            inputs: vec![ExecPath::new(template.path.clone())],
            outputs: vec![ExecPath::new(output.path.clone())],
            env: BTreeMap::new(),
            requirements: Vec::new(),
            directory_outputs: vec![],
            scratch_dirs: vec![],
        })?;
        Ok(NoneType)
    }

    /// A new, empty command line builder.
    fn args<'v>(this: ValueTyped<'v, ActionsValue>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        let _ = this;
        Ok(heap.alloc_complex_no_freeze(ArgsValue::default()))
    }
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

/// `ctx`: everything a rule implementation may read, plus `ctx.actions`.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative, Trace)]
pub struct CtxValue<'v> {
    pub fields: Vec<(String, Value<'v>)>,
    /// Every direct dependency (TargetInfo values), for `expand_location`.
    pub direct_deps: Vec<Value<'v>>,
    #[allocative(skip)]
    #[trace(static)]
    pub label: Label,
    #[allocative(skip)]
    #[trace(static)]
    pub workspace_name: String,
    /// Attributes in which a label may be given to the `data`/default runfiles collection.
    pub data_deps: Vec<Value<'v>>,
    /// The rule's predeclared outputs (`outs`, `attr.output`), which `$(location)` may name.
    pub own_outputs: Vec<Value<'v>>,
}

impl fmt::Display for CtxValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<rule context for {}>", self.label)
    }
}

#[starlark_value(type = "ctx")]
impl<'v> StarlarkValue<'v> for CtxValue<'v> {
    fn get_methods() -> Option<&'static Methods> {
        Some(CTX_METHODS.methods())
    }

    fn get_attr(&self, attribute: &str, _heap: Heap<'v>) -> Option<Value<'v>> {
        self.fields
            .iter()
            .find(|(k, _)| *k == attribute)
            .map(|(_, v)| *v)
    }

    fn dir_attr(&self) -> Vec<String> {
        self.fields.iter().map(|(k, _)| k.clone()).collect()
    }
}

starlark::methods_static!(CTX_METHODS = ctx_methods);

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
    fn expand_location(&self, input: &str, extra: &[Value<'v>]) -> anyhow::Result<String> {
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
        while let Some(start) = rest.find("$(") {
            out.push_str(&rest[..start]);
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
            let files = match (dep, own_output()) {
                (Some(dep), _) => location_files(*dep, true),
                (None, Some(file)) => vec![file],
                (None, None) => anyhow::bail!(
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
                    if function.starts_with("root") {
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

#[starlark_module]
fn ctx_methods(builder: &mut MethodsBuilder) {
    /// Runfiles from files, depsets and, optionally, the dependencies' runfiles.
    fn runfiles<'v>(
        this: ValueTyped<'v, CtxValue<'v>>,
        #[starlark(require = named)] files: Option<Value<'v>>,
        #[starlark(require = named)] transitive_files: Option<Value<'v>>,
        #[starlark(require = named, default = false)] collect_data: bool,
        #[starlark(require = named, default = false)] collect_default: bool,
        #[starlark(require = named)] symlinks: Option<Value<'v>>,
        #[starlark(require = named)] root_symlinks: Option<Value<'v>>,
        heap: Heap<'v>,
    ) -> anyhow::Result<Value<'v>> {
        let direct = match files.filter(|v| !v.is_none()) {
            Some(f) => iterate_files(f, heap)?,
            None => Vec::new(),
        };
        let mut transitive: Vec<Value> = transitive_files
            .filter(|v| !v.is_none())
            .into_iter()
            .collect();
        let mut symlinks = vec![symlink_entries("symlinks", symlinks, heap)?];
        let mut root_symlinks = vec![symlink_entries("root_symlinks", root_symlinks, heap)?];
        if collect_data || collect_default {
            let ctx = this.as_ref();
            let deps = if collect_default {
                &ctx.direct_deps
            } else {
                &ctx.data_deps
            };
            for dep in deps {
                // collect_data prefers what a dependency offers for data use.
                let data = collect_data.then_some("data_runfiles");
                if let Some(t) = TargetInfo::from_value(*dep)
                    && let Some(rf) = data
                        .and_then(|d| t.default_info(d))
                        .or_else(|| t.default_info("default_runfiles"))
                        .or_else(|| t.default_info("runfiles"))
                    && let Some(r) = Runfiles::from_value(rf)
                {
                    transitive.push(r.files);
                    symlinks.push(r.symlinks);
                    root_symlinks.push(r.root_symlinks);
                }
            }
        }
        Ok(heap.alloc(RunfilesGen {
            files: make_depset(direct, transitive, "default", heap)?,
            symlinks: make_depset(Vec::new(), symlinks, "default", heap)?,
            root_symlinks: make_depset(Vec::new(), root_symlinks, "default", heap)?,
        }))
    }

    /// Expands `$(location ...)` and friends for direct dependencies and `targets`.
    fn expand_location<'v>(
        this: ValueTyped<'v, CtxValue<'v>>,
        input: &str,
        #[starlark(require = named)] targets: Option<Value<'v>>,
        heap: Heap<'v>,
    ) -> anyhow::Result<String> {
        let extra = match targets {
            Some(t) => iterate_files(t, heap)?,
            None => Vec::new(),
        };
        this.as_ref().expand_location(input, &extra)
    }

    /// Replaces `$(NAME)` and `$X` with values from `additional_substitutions`; `$$` is `$`.
    fn expand_make_variables<'v>(
        this: ValueTyped<'v, CtxValue<'v>>,
        #[starlark(require = pos)] attribute_name: &str,
        #[starlark(require = pos)] command: &str,
        #[starlark(require = pos)] additional_substitutions: Value<'v>,
    ) -> anyhow::Result<String> {
        let _ = this;
        let vars: HashMap<String, String> =
            string_dict(Some(additional_substitutions), "additional_substitutions")?
                .into_iter()
                .collect();
        expand_make_variables(attribute_name, command, &vars)
    }
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

//! `ctx.actions`: the calls of a rule implementation in, plain `Action`s out. Each call is
//! checked against what the target declared (`ActionsState`) and recorded; nothing runs here.

// The Starlark signatures mirror Bazel's, with all their keyword arguments.
#![allow(clippy::too_many_arguments)]

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

use allocative::Allocative;
use starlark::any::ProvidesStaticType;
use starlark::environment::{Methods, MethodsBuilder};
use starlark::starlark_module;
use starlark::values::dict::DictRef;
use starlark::values::none::NoneType;
use starlark::values::{
    Heap, NoSerialize, StarlarkValue, Trace, Value, ValueLike, ValueTyped, starlark_value,
};

use super::args::{ArgsLine, ArgsValue, ParamFileFormat, arg_string};
use super::input_sets::SetMaker;
use super::values::{FileValue, TargetInfo};
use crate::core::command_line;
use crate::core::{Action, ActionKind, ExecPath, Label, layout::short_from_exec};
use crate::loading::iterate_files;

/// What one target's analysis accumulates.
#[derive(Debug, Default)]
pub struct ActionsState {
    pub owner: Label,
    /// The configuration the owner is analysed in: its files go to its bin directory.
    pub config: super::Config,
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

impl ActionsValue {
    /// Declares `name` in the target's package and writes `content` to it: the script
    /// `ctx.resolve_command` makes of a command too long for `bash -c`.
    pub(super) fn write_generated(
        &self,
        name: &str,
        content: String,
        executable: bool,
    ) -> anyhow::Result<FileValue> {
        let mut state = self.state.borrow_mut();
        let file = state.declare(name, None, false)?;
        let action = state.file_write(&file.path, content, executable);
        state.register(action)?;
        Ok(file)
    }
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

/// Why a file cannot be declared.
#[derive(Debug, thiserror::Error)]
pub enum DeclareError {
    #[error("cannot declare '{0}': file names must be relative paths inside the package")]
    OutsidePackage(String),
    #[error("'{short_path}' is declared twice in {owner}")]
    Twice { short_path: String, owner: Label },
}

impl ActionsState {
    fn declare(
        &mut self,
        name: &str,
        sibling: Option<&FileValue>,
        is_directory: bool,
    ) -> Result<FileValue, DeclareError> {
        if name.is_empty()
            || name.starts_with('/')
            || name.split('/').any(|s| s == ".." || s == ".")
        {
            return Err(DeclareError::OutsidePackage(name.to_owned()));
        }
        let relative = match sibling {
            Some(s) => {
                let prefix = format!("{}/", s.dirname());
                let package_dir = FileValue::generated(&self.owner, "x", false, &self.config);
                let pkg_prefix = format!("{}/", package_dir.dirname());
                format!("{}{name}", prefix.strip_prefix(&pkg_prefix).unwrap_or(""))
            }
            None => name.to_owned(),
        };
        let file = FileValue::generated(&self.owner, &relative, is_directory, &self.config);
        if self.implicit_executable.as_deref() == Some(file.path.as_str()) {
            self.implicit_executable = None;
            return Ok(file);
        }
        if self.declared.contains_key(&file.path) {
            return Err(DeclareError::Twice {
                short_path: file.short_path,
                owner: self.owner.clone(),
            });
        }
        self.declared.insert(file.path.clone(), false);
        Ok(file)
    }

    /// Declares an output named by an `attr.output` or a predeclared output template.
    pub fn declare_output(&mut self, name: &str) -> Result<FileValue, DeclareError> {
        self.declare(name, None, false)
    }

    /// The first declared file no action generates, if any.
    pub fn first_not_generated(&self) -> Option<&str> {
        self.declared
            .iter()
            .find(|(_, generated)| !**generated)
            .map(|(path, _)| path.as_str())
    }

    /// Declares and writes a parameter file of one of this target's actions.
    fn register_param_file(&mut self, path: &str, content: String) -> anyhow::Result<()> {
        if self.declared.contains_key(path) {
            anyhow::bail!(
                "the parameter file '{path}' clashes with a file {} declared; Bazel names \
                 parameter files after the action's first output",
                self.owner
            );
        }
        self.declared.insert(path.to_owned(), false);
        let action = self.file_write(path, content, true);
        self.register(action)
    }

    /// A `FileWrite` action of this target putting `content` at exec path `path`.
    fn file_write(&self, path: &str, content: String, executable: bool) -> Action {
        Action {
            owner: self.owner.clone(),
            mnemonic: "FileWrite".into(),
            progress_message: format!("Writing file {}", short_from_exec(path)),
            kind: ActionKind::Write {
                content: content.into_bytes(),
                executable,
            },
            inputs: Default::default(),
            outputs: vec![ExecPath::new(path)],
            env: BTreeMap::new(),
            requirements: Vec::new(),
            directory_outputs: vec![],
            scratch_dirs: vec![],
            discovery: None,
        }
    }

    /// Registers an action after checking that it creates only this target's declared,
    /// not-yet-generated files.
    /// Registers the action writing `content` to the already declared `path` (forge's own
    /// actions, such as an analysis test's script).
    pub(super) fn write_declared(
        &mut self,
        path: &str,
        content: String,
        executable: bool,
    ) -> anyhow::Result<()> {
        let action = self.file_write(path, content, executable);
        self.register(action)
    }

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
        if !self.tool_runfiles.is_empty() {
            let mut extra = Vec::new();
            let mut note = |input: &str| {
                if let Some(rf) = self.tool_runfiles.get(input) {
                    extra.extend(rf.iter().cloned());
                }
            };
            action.inputs.for_each(|p| note(p.as_str()));
            if let Some(program) = action_program(&action) {
                note(program);
            }
            action.inputs.add_files(extra);
        }
        if let Some(discovery) = &mut action.discovery {
            discovery.always_read = action.inputs.minus(&discovery.discoverable);
        }
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

pub(super) fn string_dict(
    value: Option<Value>,
    what: &str,
) -> anyhow::Result<BTreeMap<String, String>> {
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

/// Command-line arguments: strings, Files, or `Args` objects, each `Args` kept apart with
/// its parameter file settings (a plain string is a part without any).
fn command_parts<'v>(value: Option<Value<'v>>, heap: Heap<'v>) -> anyhow::Result<Vec<ArgsLine>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in value
        .iterate(heap)
        .map_err(|_| anyhow::anyhow!("arguments must be a list"))?
    {
        match item.downcast_ref::<ArgsValue>() {
            Some(args) => out.push(args.line()),
            None => out.push(ArgsLine {
                args: vec![arg_string(item)],
                param_file: None,
                format: ParamFileFormat::default(),
            }),
        }
    }
    Ok(out)
}

/// Command-line arguments flattened to strings, parameter files ignored (for `run_shell`'s
/// `command` given as a list).
fn command_line<'v>(value: Option<Value<'v>>, heap: Heap<'v>) -> anyhow::Result<Vec<String>> {
    Ok(command_parts(value, heap)?
        .into_iter()
        .flat_map(|p| p.args)
        .collect())
}

/// When an `Args` with `use_param_file(use_always = False)` goes to a parameter file: when
/// the command line would otherwise be longer than Bazel's `--min_param_file_size` default.
const MAX_COMMAND_LINE: usize = 32768;

/// A command line with the parameter files it refers to: `(exec path, content)`.
struct SpilledCommandLine {
    argv: Vec<String>,
    param_files: Vec<(String, String)>,
}

/// Bazel's `CommandLines.expand`: the parts in order; an `Args` with a parameter file is
/// written to `<primary output>-<N>.params` (N counting from 0) and replaced by its
/// `param_file_arg` when it must always be, or when keeping it would make the command line
/// (each argument plus a separator) longer than `MAX_COMMAND_LINE`.
fn spill_param_files(
    prefix: Vec<String>,
    parts: Vec<ArgsLine>,
    primary_output: &str,
) -> anyhow::Result<SpilledCommandLine> {
    let length = |args: &[String]| args.iter().map(|a| a.len() + 1).sum::<usize>();
    let mut length_so_far = length(&prefix);
    let mut argv = prefix;
    let mut param_files = Vec::new();
    for part in parts {
        let spill = match &part.param_file {
            None => false,
            Some(p) => p.use_always || length_so_far + length(&part.args) > MAX_COMMAND_LINE,
        };
        if !spill {
            length_so_far += length(&part.args);
            argv.extend(part.args);
            continue;
        }
        refuse_directories_in_param_file(&part.args)?;
        let path = format!("{primary_output}-{}.params", param_files.len());
        let arg = part
            .param_file_arg(&path)
            .expect("spilled parts have a param file");
        length_so_far += arg.len() + 1;
        argv.push(arg);
        param_files.push((path, part.format.content(&part.args)));
    }
    Ok(SpilledCommandLine { argv, param_files })
}

/// A parameter file is written during analysis, before a directory's files are known.
fn refuse_directories_in_param_file(args: &[String]) -> anyhow::Result<()> {
    if let Some(arg) = args.iter().find(|a| command_line::holds_expansion(a)) {
        anyhow::bail!(
            "forge does not support expanding a directory into its files inside a parameter \
             file (or a file written from Args) yet: {}; pass expand_directories = False, or \
             leave this Args on the command line",
            command_line::printable(arg)
        );
    }
    Ok(())
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
    /// `dependency_file` and `discoverable_inputs`.
    discovery: Option<crate::core::InputDiscovery>,
}

/// Registers a `run` or `run_shell` action: `prefix` (the program, or bash and its
/// command) then `parts`, with the parameter files they spill into written by actions of
/// their own and read by this one.
fn register_run<'v>(
    this: &ActionsValue,
    prefix: Vec<String>,
    parts: Vec<ArgsLine>,
    o: RunOptions<'v>,
    default_mnemonic: &str,
    heap: Heap<'v>,
) -> anyhow::Result<NoneType> {
    let outputs = files_of(Some(o.outputs), "outputs", heap)?;
    // A depset of inputs keeps its child depsets as shared sets (a compile's headers).
    let mut inputs = SetMaker::default().inputs(o.inputs, "inputs", heap)?;
    inputs.add_files(paths(&files_of_or_targets(o.tools, heap)?));
    inputs.add_files(o.program.map(ExecPath::new));
    let primary = outputs
        .first()
        .ok_or_else(|| anyhow::anyhow!("an action must have at least one output"))?;
    let SpilledCommandLine { argv, param_files } = spill_param_files(prefix, parts, &primary.path)?;
    let mut state = this.state.borrow_mut();
    let owner = state.owner.clone();
    for (path, content) in param_files {
        state.register_param_file(&path, content)?;
        inputs.add_file(ExecPath::new(path));
    }
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
        discovery: o.discovery,
    })?;
    Ok(NoneType)
}

/// `dependency_file` / `discoverable_inputs` of `run`: both or neither; the file must be an
/// output and the inputs must be inputs.
fn discovery_of<'v>(
    dependency_file: Option<Value<'v>>,
    discoverable_inputs: Option<Value<'v>>,
    outputs: Value<'v>,
    inputs: Option<Value<'v>>,
    heap: Heap<'v>,
) -> anyhow::Result<Option<crate::core::InputDiscovery>> {
    let dependency_file = dependency_file.filter(|v| !v.is_none());
    let discoverable_inputs = discoverable_inputs.filter(|v| !v.is_none());
    let (Some(file), Some(discoverable)) = (dependency_file, discoverable_inputs) else {
        if dependency_file.is_some() || discoverable_inputs.is_some() {
            anyhow::bail!(
                "dependency_file and discoverable_inputs go together: give both or neither"
            );
        }
        return Ok(None);
    };
    let file = file_of(file, "dependency_file")?;
    if !files_of(Some(outputs), "outputs", heap)?
        .iter()
        .any(|o| o.path == file.path)
    {
        anyhow::bail!(
            "dependency_file '{}' must be one of the action's outputs",
            file.short_path
        );
    }
    // The same depsets as the inputs' make the same (interned) sets.
    let mut sets = SetMaker::default();
    let declared = sets.inputs(inputs, "inputs", heap)?;
    let discoverable = sets.whole(discoverable, "discoverable_inputs", heap)?;
    if let Some(stray) = discoverable.minus(&declared).first() {
        anyhow::bail!("discoverable input '{stray}' is not among the action's inputs");
    }
    Ok(Some(crate::core::InputDiscovery {
        dependency_file: ExecPath::new(file.path.clone()),
        discoverable,
        // Found once the action's inputs are complete (`register`).
        always_read: Vec::new(),
    }))
}

/// The execution requirements forge understands, as tags or `execution_requirements` keys.
pub const KNOWN_REQUIREMENTS: [&str; 7] = [
    "no-sandbox",
    "no-cache",
    "no-remote",
    "no-remote-exec",
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

/// Parameters of Bazel's that forge does not implement: refused when given a value.
fn refuse_given(params: &[(&str, Option<Value>)]) -> anyhow::Result<()> {
    for (name, value) in params {
        if value.is_some_and(|v| !v.is_none()) {
            anyhow::bail!("forge does not support the '{name}' parameter yet; leave it out");
        }
    }
    Ok(())
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
    Ok(this
        .as_ref()
        .state
        .borrow_mut()
        .declare(filename, sibling, is_directory)?)
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
            // Bazel writes an Args object as its parameter file would hold it.
            Some(args) => {
                let line = args.line();
                refuse_directories_in_param_file(&line.args)?;
                line.format.content(&line.args)
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
        // Bazel leaves every output r-xr-xr-x whatever `is_executable` says, so a script
        // written without it (and returned as an executable, or run by another action)
        // runs; forge does the same.
        let _: bool = is_executable;
        let is_executable = true;
        state.register(Action {
            progress_message: format!("Writing file {}", output.short_path),
            owner,
            mnemonic: "FileWrite".into(),
            kind: ActionKind::Write {
                content: content.into_bytes(),
                executable: is_executable,
            },
            inputs: Default::default(),
            outputs: vec![ExecPath::new(output.path.clone())],
            env: BTreeMap::new(),
            requirements: Vec::new(),
            directory_outputs: vec![],
            scratch_dirs: vec![],
            discovery: None,
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
        #[starlark(require = named)] unused_inputs_list: Option<Value<'v>>,
        #[starlark(require = named)] exec_group: Option<Value<'v>>,
        #[starlark(require = named)] shadowed_action: Option<Value<'v>>,
        // Forge's own: what a C++ compile's `.d` file says it read (see core::InputDiscovery).
        #[starlark(require = named)] dependency_file: Option<Value<'v>>,
        #[starlark(require = named)] discoverable_inputs: Option<Value<'v>>,
        heap: Heap<'v>,
    ) -> anyhow::Result<NoneType> {
        refuse_given(&[
            ("unused_inputs_list", unused_inputs_list),
            ("exec_group", exec_group),
            ("shadowed_action", shadowed_action),
        ])?;
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
        let prefix = vec![program];
        let parts = command_parts(arguments, heap)?;
        let discovery = discovery_of(dependency_file, discoverable_inputs, outputs, inputs, heap)?;
        let o = RunOptions {
            outputs,
            inputs,
            tools,
            mnemonic,
            progress_message,
            env,
            requirements,
            program: program_file,
            discovery,
        };
        register_run(this.as_ref(), prefix, parts, o, "Action", heap)
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
        #[starlark(require = named)] exec_group: Option<Value<'v>>,
        #[starlark(require = named)] shadowed_action: Option<Value<'v>>,
        heap: Heap<'v>,
    ) -> anyhow::Result<NoneType> {
        refuse_given(&[
            ("exec_group", exec_group),
            ("shadowed_action", shadowed_action),
        ])?;
        // Every forge action has the default shell environment (the fixed PATH, LANG, TZ and
        // --action_env), and `env` is merged into it: both values of this flag mean that.
        let _: Option<bool> = use_default_shell_env;
        let requirements = execution_requirements_of(execution_requirements)?;
        refuse_unsupported(input_manifests, toolchain)?;
        let command = match command.unpack_str() {
            Some(s) => s.to_owned(),
            None => command_line(Some(command), heap)?.join(" "),
        };
        let prefix = vec![
            "/bin/bash".to_owned(),
            "-c".to_owned(),
            command,
            String::new(),
        ];
        let parts = command_parts(arguments, heap)?;
        let o = RunOptions {
            outputs,
            inputs,
            tools,
            mnemonic,
            progress_message,
            env,
            requirements,
            program: None,
            discovery: None,
        };
        register_run(this.as_ref(), prefix, parts, o, "Action", heap)
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
            inputs: vec![ExecPath::new(target)].into(),
            outputs: vec![ExecPath::new(output.path.clone())],
            env: BTreeMap::new(),
            requirements: Vec::new(),
            directory_outputs: vec![],
            scratch_dirs: vec![],
            discovery: None,
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
        // Every output is r-xr-xr-x in Bazel, as for `write`.
        let _: bool = is_executable;
        let mut state = this.as_ref().state.borrow_mut();
        let owner = state.owner.clone();
        state.register(Action {
            progress_message: format!("Expanding template {}", output.short_path),
            owner,
            mnemonic: "TemplateExpand".into(),
            kind: ActionKind::ExpandTemplate {
                template: template.path.clone(),
                substitutions: subs,
                executable: true,
            },
            inputs: vec![ExecPath::new(template.path.clone())].into(),
            outputs: vec![ExecPath::new(output.path.clone())],
            env: BTreeMap::new(),
            requirements: Vec::new(),
            directory_outputs: vec![],
            scratch_dirs: vec![],
            discovery: None,
        })?;
        Ok(NoneType)
    }

    /// Bazel's placeholder action, which runs nothing and creates nothing: recorded as
    /// nothing, its arguments checked.
    fn do_nothing<'v>(
        this: ValueTyped<'v, ActionsValue>,
        #[starlark(require = named)] mnemonic: &str,
        #[starlark(require = named)] inputs: Option<Value<'v>>,
        heap: Heap<'v>,
    ) -> anyhow::Result<NoneType> {
        let _ = (this, mnemonic);
        files_of(inputs, "inputs", heap)?;
        Ok(NoneType)
    }

    /// A new, empty command line builder.
    fn args<'v>(this: ValueTyped<'v, ActionsValue>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        let _ = this;
        Ok(heap.alloc_complex_no_freeze(ArgsValue::default()))
    }
}

//! `ctx`: the values built for one target in (attributes, files, outputs, `ctx.actions`),
//! the object a rule implementation reads out, with its methods `ctx.runfiles`,
//! `ctx.expand_location`, `ctx.expand_make_variables`, `ctx.resolve_tools`,
//! `ctx.resolve_command` and `ctx.coverage_instrumented`; `ctx.info_file` and
//! `ctx.version_file` name the workspace status files.

// The Starlark signatures mirror Bazel's, with all their keyword arguments.
#![allow(clippy::too_many_arguments)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use allocative::Allocative;
use starlark::any::ProvidesStaticType;
use starlark::environment::{Methods, MethodsBuilder};
use starlark::starlark_module;
use starlark::values::dict::{AllocDict, DictRef};
use starlark::values::list::{AllocList, ListRef};
use starlark::values::none::NoneType;
use starlark::values::structs::AllocStruct;
use starlark::values::{
    Heap, NoSerialize, StarlarkValue, Trace, Value, ValueLike, ValueTyped, starlark_value,
};

use super::actions::{ActionsValue, string_dict};
use super::attrs::AttrValues;
use super::make_vars::{ctx_var, expand_make_variables};
use super::runfiles::{Runfiles, RunfilesGen, runfiles_files, symlink_entries};
use super::values::{FileValue, TargetInfo};
use crate::core::{Label, layout};
use crate::loading::{Depset, LabelValue, Unsupported, iterate_files, make_depset};

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
    /// `ctx.var`, which `expand_make_variables` and `resolve_command` expand too.
    #[allocative(skip)]
    #[trace(static)]
    pub vars: Vec<(String, String)>,
    /// `ctx.actions`, where `resolve_command` writes a long command's script.
    pub actions: Value<'v>,
    /// The target platform's constraint values, `(setting, value)`, for
    /// `target_platform_has_constraint`.
    #[allocative(skip)]
    #[trace(static)]
    pub target_constraints: Vec<(Label, Label)>,
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

    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        let field = self
            .fields
            .iter()
            .find(|(k, _)| *k == attribute)
            .map(|(_, v)| *v);
        // Bazel's fields forge lacks refuse at their first use, naming themselves, rather
        // than look like a typo ("ctx has no attribute fragments").
        field.or_else(|| {
            UNSUPPORTED_FIELDS
                .contains(&attribute)
                .then(|| heap.alloc(Unsupported::new(format!("ctx.{attribute}"))))
        })
    }

    fn dir_attr(&self) -> Vec<String> {
        self.fields.iter().map(|(k, _)| k.clone()).collect()
    }
}

/// Fields of Bazel 4's `ctx` that forge does not have yet.
const UNSUPPORTED_FIELDS: &[&str] = &[
    "aspect_ids",
    "created_actions",
    "exec_groups",
    "host_configuration",
    "host_fragments",
    "split_attr",
];

starlark::methods_static!(CTX_METHODS = ctx_methods);

/// What `ctx` shows of the target itself, beyond its attributes.
pub(super) struct CtxEnv<'a> {
    pub label: &'a Label,
    pub workspace_name: &'a str,
    /// The target's BUILD file (`ctx.build_file_path`).
    pub build_file: Label,
    /// The configuration's, the package's, then the target's features (`ctx.features`), and
    /// those disabled by `-x` (`ctx.disabled_features`).
    pub features: (Vec<String>, Vec<String>),
    /// The configuration the target is analysed in.
    pub configuration: &'a super::Config,
    /// For a build setting's target: its value in this build (`ctx.build_setting_value`).
    pub build_setting_value: Option<crate::loading::AttrValue>,
    /// The platform the configuration builds for.
    pub platform: &'a super::platforms::Platform,
}

/// Allocates the `ctx` of one target: its attribute values, `ctx.actions`, and what it shows
/// of the target and the configuration.
pub(super) fn alloc_ctx<'v>(
    heap: Heap<'v>,
    env: &CtxEnv,
    attrs: AttrValues<'v>,
    actions: Value<'v>,
    toolchains: Value<'v>,
    executable_file: Option<&FileValue>,
) -> Value<'v> {
    heap.alloc_complex_no_freeze(new_ctx(
        heap,
        env,
        attrs,
        actions,
        toolchains,
        executable_file,
    ))
}

/// The `ctx` of one target before it is allocated (an aspect's `ctx` changes its fields).
pub(super) fn new_ctx<'v>(
    heap: Heap<'v>,
    env: &CtxEnv,
    attrs: AttrValues<'v>,
    actions: Value<'v>,
    toolchains: Value<'v>,
    executable_file: Option<&FileValue>,
) -> CtxValue<'v> {
    let label = env.label;
    // The Files among the outputs, for `$(location)` of the rule's own outputs.
    let own_outputs: Vec<Value> = attrs
        .outputs
        .iter()
        .flat_map(|(_, v)| match ListRef::from_value(*v) {
            Some(list) => list.content().to_vec(),
            None => vec![*v],
        })
        .filter(|v| v.downcast_ref::<FileValue>().is_some())
        .collect();
    let mut outputs = attrs.outputs;
    if let Some(exe) = executable_file {
        outputs.push(("executable".into(), heap.alloc(exe.clone())));
    }
    let build_file = &env.build_file;
    let vars = ctx_var(env.configuration);
    let mut fields: Vec<(String, Value)> = vec![
        (
            "label".into(),
            heap.alloc(LabelValue {
                label: label.clone(),
            }),
        ),
        ("attr".into(), heap.alloc(AllocStruct(attrs.attr))),
        ("files".into(), heap.alloc(AllocStruct(attrs.files))),
        ("file".into(), heap.alloc(AllocStruct(attrs.file))),
        (
            "executable".into(),
            heap.alloc(AllocStruct(attrs.executable)),
        ),
        ("outputs".into(), heap.alloc(AllocStruct(outputs))),
        (
            "split_attr".into(),
            heap.alloc(AllocStruct(attrs.split_attr)),
        ),
        ("actions".into(), actions),
        ("toolchains".into(), toolchains),
        ("workspace_name".into(), heap.alloc(env.workspace_name)),
        (
            "bin_dir".into(),
            heap.alloc(AllocStruct([("path", env.configuration.bin_dir())])),
        ),
        (
            "genfiles_dir".into(),
            heap.alloc(AllocStruct([("path", env.configuration.bin_dir())])),
        ),
        (
            "build_file_path".into(),
            heap.alloc(layout::source_path(
                &build_file.repo,
                &build_file.package,
                &build_file.name,
            )),
        ),
        (
            "features".into(),
            heap.alloc(AllocList(env.features.0.iter().map(String::as_str))),
        ),
        (
            "disabled_features".into(),
            heap.alloc(AllocList(env.features.1.iter().map(String::as_str))),
        ),
        ("var".into(), heap.alloc(AllocDict(vars.clone()))),
        (
            "fragments".into(),
            super::cpp_fragment::alloc_fragments(heap, &env.configuration.options().cpp),
        ),
        (
            "configuration".into(),
            heap.alloc(AllocStruct([
                // Forge gives every action its default environment (PATH, LANG, TZ and
                // --action_env) and merges `env` on top, so there is nothing to add here.
                (
                    "default_shell_env",
                    heap.alloc(AllocDict(Vec::<(&str, &str)>::new())),
                ),
                // Forge does not collect coverage.
                ("coverage_enabled", Value::new_bool(false)),
                ("host_path_separator", heap.alloc(":")),
            ])),
        ),
        (
            "info_file".into(),
            heap.alloc(status_file(layout::STABLE_STATUS, label)),
        ),
        (
            "version_file".into(),
            heap.alloc(status_file(layout::VOLATILE_STATUS, label)),
        ),
    ];
    // Only a build setting's ctx has the field, as in Bazel.
    if let Some(value) = &env.build_setting_value {
        fields.push((
            "build_setting_value".into(),
            super::attrs::plain_value(heap, value),
        ));
    }
    CtxValue {
        fields,
        direct_deps: attrs.direct_deps,
        label: label.clone(),
        workspace_name: env.workspace_name.to_owned(),
        data_deps: attrs.data_deps,
        own_outputs,
        vars,
        actions,
        target_constraints: env
            .platform
            .constraints
            .iter()
            .map(|(s, v)| (s.clone(), v.clone()))
            .collect(),
    }
}

/// `ctx.info_file` / `ctx.version_file`: a workspace status file, which no action
/// generates (forge writes both before the actions run), so it reads as an input.
fn status_file(path: &str, label: &Label) -> FileValue {
    FileValue {
        path: path.to_owned(),
        short_path: path
            .strip_prefix(&format!("{}/", layout::OUT_DIR))
            .unwrap_or(path)
            .to_owned(),
        is_source: false,
        is_directory: false,
        owner: label.clone(),
    }
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
        targets: Option<Value<'v>>,
        heap: Heap<'v>,
    ) -> anyhow::Result<String> {
        let extra = match targets {
            Some(t) => iterate_files(t, heap)?,
            None => Vec::new(),
        };
        this.as_ref().expand_location(input, &extra, &[])
    }

    /// Replaces `$(NAME)` and `$X` with values from `additional_substitutions`, then from
    /// `ctx.var`; `$$` is `$`.
    fn expand_make_variables<'v>(
        this: ValueTyped<'v, CtxValue<'v>>,
        #[starlark(require = pos)] attribute_name: &str,
        #[starlark(require = pos)] command: &str,
        #[starlark(require = pos)] additional_substitutions: Value<'v>,
    ) -> anyhow::Result<String> {
        let additional = string_dict(Some(additional_substitutions), "additional_substitutions")?;
        expand_make_variables(
            attribute_name,
            command,
            &this.as_ref().make_vars(additional),
        )
    }

    /// Whether this rule's (or `target`'s) sources are instrumented for coverage: never, as
    /// forge does not collect coverage (Bazel answers False too when coverage is off).
    fn coverage_instrumented<'v>(
        this: ValueTyped<'v, CtxValue<'v>>,
        #[starlark(default = NoneType)] target: Value<'v>,
    ) -> anyhow::Result<bool> {
        let _ = (this, target);
        Ok(false)
    }

    /// Whether the target platform has the constraint value whose
    /// `platform_common.ConstraintValueInfo` is given (its setting's default counts when the
    /// platform names no value for the setting).
    fn target_platform_has_constraint<'v>(
        this: ValueTyped<'v, CtxValue<'v>>,
        #[starlark(require = pos)] constraint_value: Value<'v>,
    ) -> anyhow::Result<bool> {
        let wrong = || {
            anyhow::anyhow!(
                "target_platform_has_constraint takes a platform_common.ConstraintValueInfo \
                 (`ctx.attr._x[platform_common.ConstraintValueInfo]`), got {}",
                constraint_value.get_type()
            )
        };
        let info = crate::loading::ProviderInstance::from_value(constraint_value)
            .filter(|i| i.id == "<builtin>%ConstraintValueInfo")
            .ok_or_else(wrong)?;
        let label_of = |v: Option<Value<'v>>| {
            v.and_then(|v| v.downcast_ref::<LabelValue>())
                .map(|l| l.label.clone())
        };
        let value = label_of(info.field("label")).ok_or_else(wrong)?;
        let setting = info
            .field("constraint")
            .and_then(crate::loading::ProviderInstance::from_value)
            .ok_or_else(wrong)?;
        let setting_label = label_of(setting.field("label")).ok_or_else(wrong)?;
        let has = match this
            .as_ref()
            .target_constraints
            .iter()
            .find(|(s, _)| *s == setting_label)
        {
            Some((_, v)) => *v == value,
            None => label_of(setting.field("default_constraint_value")) == Some(value),
        };
        Ok(has)
    }

    /// `(inputs, input_manifests)` of running `tools`: each tool's executable and runfiles
    /// (or its files, for a tool that is not executable). The manifests are always empty:
    /// forge gives an action a tool's runfiles as inputs.
    fn resolve_tools<'v>(
        this: ValueTyped<'v, CtxValue<'v>>,
        #[starlark(require = named)] tools: Option<Value<'v>>,
        heap: Heap<'v>,
    ) -> anyhow::Result<Value<'v>> {
        let _ = this;
        let inputs = tools_files(tools, heap)?;
        let inputs = make_depset(inputs, Vec::new(), "default", heap)?;
        Ok(heap.alloc((inputs, AllocList(Vec::<Value>::new()))))
    }

    /// Bazel's `resolve_command`: `command` with `$(location)` (for `expand_locations`) and
    /// make variables (for `make_variables`) expanded, as `(inputs, argv, input_manifests)`,
    /// argv being `/bin/bash -c <command>`, or `/bin/bash <script>` for a command longer
    /// than 64000 characters, written to `<name>.script.sh`.
    fn resolve_command<'v>(
        this: ValueTyped<'v, CtxValue<'v>>,
        #[starlark(require = named, default = "")] command: &str,
        #[starlark(require = named)] attribute: Option<Value<'v>>,
        #[starlark(require = named, default = false)] expand_locations: bool,
        #[starlark(require = named)] make_variables: Option<Value<'v>>,
        #[starlark(require = named)] tools: Option<Value<'v>>,
        #[starlark(require = named)] label_dict: Option<Value<'v>>,
        #[starlark(require = named)] execution_requirements: Option<Value<'v>>,
        heap: Heap<'v>,
    ) -> anyhow::Result<Value<'v>> {
        let ctx = this.as_ref();
        let attribute = match attribute.filter(|a| !a.is_none()) {
            Some(a) => Some(
                a.unpack_str()
                    .ok_or_else(|| anyhow::anyhow!("resolve_command: attribute must be a string"))?
                    .to_owned(),
            ),
            None => None,
        };
        let in_attribute = |e: anyhow::Error| match &attribute {
            Some(a) => anyhow::anyhow!("in attribute '{a}': {e}"),
            None => e,
        };
        // Only checked: the keys change nothing about a Linux command line.
        string_dict(execution_requirements, "execution_requirements")?;
        let tool_targets = match tools.filter(|t| !t.is_none()) {
            Some(t) => iterate_files(t, heap)?,
            None => Vec::new(),
        };
        let mut command = command.to_owned();
        if expand_locations {
            let labelled = label_files(label_dict, heap)?;
            command = ctx
                .expand_location(&command, &tool_targets, &labelled)
                .map_err(in_attribute)?;
        }
        if let Some(vars) = make_variables.filter(|v| !v.is_none()) {
            let vars = ctx.make_vars(string_dict(Some(vars), "make_variables")?);
            let name = attribute.as_deref().unwrap_or("command");
            command = expand_make_variables(name, &command, &vars)?;
        }
        let mut inputs = tools_files(tools, heap)?;
        let argv: Vec<String> = if command.len() <= MAX_BASH_C_COMMAND {
            vec!["/bin/bash".into(), "-c".into(), command]
        } else {
            let actions = ctx
                .actions
                .downcast_ref::<ActionsValue>()
                .expect("ctx.actions is an ActionsValue");
            let script =
                actions.write_generated(&format!("{}.script.sh", ctx.label.name), command, true)?;
            let argv = vec!["/bin/bash".into(), script.path.clone()];
            inputs.push(heap.alloc(script));
            argv
        };
        Ok(heap.alloc((
            AllocList(inputs),
            AllocList(argv),
            AllocList(Vec::<Value>::new()),
        )))
    }
}

/// Bazel's limit on a command given to `bash -c` by `resolve_command`; a longer one is
/// written to a script.
const MAX_BASH_C_COMMAND: usize = 64000;

impl CtxValue<'_> {
    /// `ctx.var` with `additional` on top: the variables a command may name.
    fn make_vars(&self, additional: BTreeMap<String, String>) -> HashMap<String, String> {
        let mut vars: HashMap<String, String> = self.vars.iter().cloned().collect();
        vars.extend(additional);
        vars
    }
}

/// The files that running each tool takes: its executable and runfiles, or, for a target
/// that is not executable, its files; each once, in order.
fn tools_files<'v>(tools: Option<Value<'v>>, heap: Heap<'v>) -> anyhow::Result<Vec<Value<'v>>> {
    let Some(tools) = tools.filter(|t| !t.is_none()) else {
        return Ok(Vec::new());
    };
    let mut out: Vec<Value> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for tool in iterate_files(tools, heap)? {
        let t = TargetInfo::from_value(tool).ok_or_else(|| {
            anyhow::anyhow!(
                "tools must hold targets, got {} ({})",
                tool.to_repr(),
                tool.get_type()
            )
        })?;
        let depset_files = |v: Option<Value<'v>>| {
            v.and_then(Depset::from_value)
                .map(|d| d.to_list())
                .unwrap_or_default()
        };
        let files = match t.default_info("executable").filter(|e| !e.is_none()) {
            Some(exe) => {
                let runfiles = t.default_info("default_runfiles").and_then(runfiles_files);
                std::iter::once(exe).chain(depset_files(runfiles)).collect()
            }
            None => depset_files(t.default_info("files")),
        };
        for f in files {
            if let Some(file) = f.downcast_ref::<FileValue>()
                && seen.insert(file.path.clone())
            {
                out.push(f);
            }
        }
    }
    Ok(out)
}

/// `label_dict = {Label: [File]}` of `resolve_command`.
fn label_files<'v>(
    label_dict: Option<Value<'v>>,
    heap: Heap<'v>,
) -> anyhow::Result<Vec<(Label, Vec<&'v FileValue>)>> {
    let Some(value) = label_dict.filter(|v| !v.is_none()) else {
        return Ok(Vec::new());
    };
    let dict = DictRef::from_value(value)
        .ok_or_else(|| anyhow::anyhow!("label_dict must be a dict of Label to list of Files"))?;
    let mut out = Vec::new();
    for (k, v) in dict.iter() {
        let label = k
            .downcast_ref::<LabelValue>()
            .ok_or_else(|| anyhow::anyhow!("label_dict keys must be Labels, got {}", k.get_type()))?
            .label
            .clone();
        let files = iterate_files(v, heap)?
            .into_iter()
            .map(|f| {
                f.downcast_ref::<FileValue>().ok_or_else(|| {
                    anyhow::anyhow!(
                        "label_dict values must be lists of Files, got {}",
                        f.get_type()
                    )
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        out.push((label, files));
    }
    Ok(out)
}

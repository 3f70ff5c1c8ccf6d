//! `ctx`: the values built for one target in (attributes, files, outputs, `ctx.actions`),
//! the object a rule implementation reads out, with its methods `ctx.runfiles`,
//! `ctx.expand_location` and `ctx.expand_make_variables`.

// The Starlark signatures mirror Bazel's, with all their keyword arguments.
#![allow(clippy::too_many_arguments)]

use std::collections::HashMap;
use std::fmt;

use allocative::Allocative;
use starlark::any::ProvidesStaticType;
use starlark::environment::{Methods, MethodsBuilder};
use starlark::starlark_module;
use starlark::values::dict::AllocDict;
use starlark::values::list::{AllocList, ListRef};
use starlark::values::structs::AllocStruct;
use starlark::values::{
    Heap, NoSerialize, StarlarkValue, Trace, Value, ValueLike, ValueTyped, starlark_value,
};

use super::AnalysisConfig;
use super::actions::string_dict;
use super::attrs::AttrValues;
use super::make_vars::{ctx_var, expand_make_variables};
use super::runfiles::{Runfiles, RunfilesGen, symlink_entries};
use super::values::{FileValue, TargetInfo};
use crate::core::{Label, layout};
use crate::loading::{LabelValue, iterate_files, make_depset};

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

/// What `ctx` shows of the target itself, beyond its attributes.
pub(super) struct CtxEnv<'a> {
    pub label: &'a Label,
    pub workspace_name: &'a str,
    /// The target's BUILD file (`ctx.build_file_path`).
    pub build_file: Label,
    /// The package's features, then the target's (`ctx.features`).
    pub features: Vec<String>,
    pub config: &'a AnalysisConfig,
}

/// Allocates the `ctx` of one target: its attribute values, `ctx.actions`, and what it shows
/// of the target and the configuration.
pub(super) fn alloc_ctx<'v>(
    heap: Heap<'v>,
    env: &CtxEnv,
    attrs: AttrValues<'v>,
    actions: Value<'v>,
    executable_file: Option<&FileValue>,
) -> Value<'v> {
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
    let fields: Vec<(String, Value)> = vec![
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
        ("actions".into(), actions),
        ("workspace_name".into(), heap.alloc(env.workspace_name)),
        (
            "bin_dir".into(),
            heap.alloc(AllocStruct([("path", layout::bin_dir())])),
        ),
        (
            "genfiles_dir".into(),
            heap.alloc(AllocStruct([("path", layout::bin_dir())])),
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
            heap.alloc(AllocList(env.features.iter().map(String::as_str))),
        ),
        (
            "disabled_features".into(),
            heap.alloc(AllocList(Vec::<&str>::new())),
        ),
        ("var".into(), heap.alloc(AllocDict(ctx_var(env.config)))),
    ];
    heap.alloc_complex_no_freeze(CtxValue {
        fields,
        direct_deps: attrs.direct_deps,
        label: label.clone(),
        workspace_name: env.workspace_name.to_owned(),
        data_deps: attrs.data_deps,
        own_outputs,
    })
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

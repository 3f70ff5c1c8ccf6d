//! An analysed target's actions as Starlark sees them: a plain `core::Action` in, the
//! `Action` object of Bazel's `target.actions` out (`mnemonic`, `argv`, `inputs`,
//! `outputs`, `content`, `substitutions`, `env`), which analysis tests inspect.

use std::fmt;

use allocative::Allocative;
use starlark::values::dict::AllocDict;
use starlark::values::list::AllocList;
use starlark::values::{
    Heap, NoSerialize, ProvidesStaticType, StarlarkValue, Value, starlark_value,
};

use super::values::FileValue;
use crate::core::{Action, ActionKind, ExecPath, layout};
use crate::loading::make_depset;

/// One action of a target.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub(super) struct ActionValue {
    #[allocative(skip)]
    pub action: Action,
}

starlark::starlark_simple_value!(ActionValue);

impl fmt::Display for ActionValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<action {}>", self.action.mnemonic)
    }
}

impl ActionValue {
    /// A File for an exec path of this action: generated under the output directory,
    /// a source file otherwise.
    fn file(&self, path: &ExecPath) -> FileValue {
        let path = path.as_str();
        FileValue {
            path: path.to_owned(),
            short_path: layout::short_from_exec(path),
            is_source: !path.starts_with(&format!("{}/", layout::OUT_DIR)),
            is_directory: self
                .action
                .directory_outputs
                .iter()
                .any(|d| d.as_str() == path),
            owner: self.action.owner.clone(),
        }
    }

    fn files<'v>(&self, paths: &[ExecPath], heap: Heap<'v>) -> Option<Value<'v>> {
        let files = paths.iter().map(|p| heap.alloc(self.file(p))).collect();
        make_depset(files, Vec::new(), "default", heap).ok()
    }
}

#[starlark_value(type = "Action")]
impl<'v> StarlarkValue<'v> for ActionValue {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        let action = &self.action;
        Some(match attribute {
            "mnemonic" => heap.alloc(action.mnemonic.as_str()),
            "inputs" => self.files(&action.inputs.flatten(), heap)?,
            "outputs" => self.files(&action.outputs, heap)?,
            "env" => heap.alloc(AllocDict(
                action.env.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            )),
            // As in Bazel: the command line of a spawn, None for the other kinds.
            "argv" => match &action.kind {
                ActionKind::Run { argv } => heap.alloc(AllocList(argv.iter().map(String::as_str))),
                _ => Value::new_none(),
            },
            "content" => match &action.kind {
                ActionKind::Write { content, .. } => {
                    heap.alloc(String::from_utf8_lossy(content).as_ref())
                }
                _ => Value::new_none(),
            },
            "substitutions" => match &action.kind {
                ActionKind::ExpandTemplate { substitutions, .. } => heap.alloc(AllocDict(
                    substitutions.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                )),
                _ => Value::new_none(),
            },
            _ => return None,
        })
    }

    fn dir_attr(&self) -> Vec<String> {
        [
            "argv",
            "content",
            "env",
            "inputs",
            "mnemonic",
            "outputs",
            "substitutions",
        ]
        .map(str::to_owned)
        .to_vec()
    }
}

//! Depsets passed as an action's inputs in, `Inputs` out: the depset's own files stay the
//! action's, its child depsets become shared `InputSet`s (interned, so the header set of a
//! library is one set for all its compiles and for every library above it) instead of being
//! flattened into each action.

use std::collections::HashMap;
use std::sync::Arc;

use starlark::values::{Heap, Value, ValueIdentity, ValueLike};

use super::values::FileValue;
use crate::core::{ExecPath, InputSet, Inputs};
use crate::loading::{Depset, iterate_files};

/// Converts depsets to sets, each depset once (by identity) however often it is reached.
#[derive(Default)]
pub(super) struct SetMaker<'v> {
    made: HashMap<ValueIdentity<'v>, Arc<InputSet>>,
}

fn file_path(value: Value<'_>, what: &str) -> anyhow::Result<ExecPath> {
    value
        .downcast_ref::<FileValue>()
        .map(|f| ExecPath::new(f.path.clone()))
        .ok_or_else(|| anyhow::anyhow!("{what} must be a File, got {}", value.get_type()))
}

impl<'v> SetMaker<'v> {
    /// `value` (a depset, a list of files or None) as inputs: a depset's direct files and
    /// child sets, a list's files.
    pub(super) fn inputs(
        &mut self,
        value: Option<Value<'v>>,
        what: &str,
        heap: Heap<'v>,
    ) -> anyhow::Result<Inputs> {
        let Some(value) = value.filter(|v| !v.is_none()) else {
            return Ok(Inputs::default());
        };
        let Some(depset) = Depset::from_value(value) else {
            let files = iterate_files(value, heap)?
                .into_iter()
                .map(|v| file_path(v, what))
                .collect::<anyhow::Result<Vec<_>>>()?;
            return Ok(Inputs::from(files));
        };
        let (_, direct, transitive) = depset.parts();
        let files = direct
            .into_iter()
            .map(|v| file_path(v, what))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let sets = transitive
            .into_iter()
            .map(|child| self.set(child, what))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Inputs::new(files, sets))
    }

    /// `value` (a depset or a list of files) as one shared set: for a depset that is not
    /// made for one action (a compile's `discoverable_inputs`, its library's header set),
    /// so that it is the very set the action's inputs refer to.
    pub(super) fn whole(
        &mut self,
        value: Value<'v>,
        what: &str,
        heap: Heap<'v>,
    ) -> anyhow::Result<Inputs> {
        match Depset::from_value(value) {
            Some(_) => Ok(Inputs::new(Vec::new(), vec![self.set(value, what)?])),
            None => self.inputs(Some(value), what, heap),
        }
    }

    /// The set of the depset `root`, children made first, without recursion (depsets nest
    /// thousands deep).
    fn set(&mut self, root: Value<'v>, what: &str) -> anyhow::Result<Arc<InputSet>> {
        let mut stack: Vec<(Value<'v>, bool)> = vec![(root, false)];
        while let Some((value, children_made)) = stack.pop() {
            if self.made.contains_key(&value.identity()) {
                continue;
            }
            let Some(depset) = Depset::from_value(value) else {
                anyhow::bail!(
                    "depset: 'transitive' must hold depsets, got {}",
                    value.get_type()
                );
            };
            let (_, direct, transitive) = depset.parts();
            if !children_made {
                stack.push((value, true));
                stack.extend(
                    transitive
                        .iter()
                        .filter(|c| !self.made.contains_key(&c.identity()))
                        .map(|c| (*c, false)),
                );
                continue;
            }
            let files = direct
                .into_iter()
                .map(|v| file_path(v, what))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let children = transitive
                .iter()
                .map(|c| self.made[&c.identity()].clone())
                .collect();
            let set = InputSet::interned(InputSet::new(files, children));
            self.made.insert(value.identity(), set);
        }
        Ok(self.made[&root.identity()].clone())
    }
}

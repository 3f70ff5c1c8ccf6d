//! Runfiles: the files and links an executable needs at run time. In: `ctx.runfiles(...)`,
//! `merge`, and the `DefaultInfo` of an executable target; out: the `runfiles` Starlark
//! value and, for the executable, the plain `RunfilesTree` that `exec` lays out.

use std::collections::BTreeMap;
use std::fmt;

use allocative::Allocative;
use starlark::environment::{Methods, MethodsBuilder};
use starlark::values::list::ListRef;
use starlark::values::{
    Coerce, Freeze, Heap, NoSerialize, ProvidesStaticType, StarlarkValue, Trace, Value, ValueLike,
    starlark_value,
};
use starlark::{starlark_complex_value, starlark_module, starlark_simple_value};

use super::values::FileValue;
use crate::core::{ExecPath, RunfilesTree};
use crate::loading::{Depset, make_depset};

/// `runfiles`: the files an executable needs at run time, as a depset, and the extra links
/// `symlinks` (under the workspace directory) and `root_symlinks` (under the runfiles root),
/// depsets of `SymlinkEntry`.
#[derive(Debug, Trace, Coerce, Freeze, ProvidesStaticType, NoSerialize, Allocative)]
#[repr(C)]
pub struct RunfilesGen<V> {
    pub files: V,
    pub symlinks: V,
    pub root_symlinks: V,
}

starlark_complex_value!(pub Runfiles);

impl<V> fmt::Display for RunfilesGen<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "runfiles(...)")
    }
}

/// Runfiles holding the depset `files` and no symlinks.
pub fn new_runfiles<'v>(files: Value<'v>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
    let empty = || make_depset(Vec::new(), Vec::new(), "default", heap);
    Ok(heap.alloc(RunfilesGen {
        files,
        symlinks: empty()?,
        root_symlinks: empty()?,
    }))
}

/// The runfiles depset inside a `runfiles` value.
pub fn runfiles_files(value: Value) -> Option<Value> {
    Runfiles::from_value(value).map(|r| r.files)
}

/// Links of a runfiles tree: `(path in the tree, exec path)`.
pub type Links = Vec<(String, String)>;

/// `(symlinks, root_symlinks)` of a `runfiles` value, flattened.
pub fn runfiles_symlinks(value: Value) -> (Links, Links) {
    let flatten = |set: Value| -> Links {
        Depset::from_value(set)
            .map(|d| {
                d.to_list()
                    .iter()
                    .filter_map(|e| e.downcast_ref::<SymlinkEntry>())
                    .map(|e| (e.path.clone(), e.target_file.path.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    match Runfiles::from_value(value) {
        Some(r) => (flatten(r.symlinks), flatten(r.root_symlinks)),
        None => (Vec::new(), Vec::new()),
    }
}

/// One entry of `runfiles.symlinks` / `root_symlinks`: a path in the tree and the file there.
#[derive(Debug, Clone, ProvidesStaticType, NoSerialize, Allocative, PartialEq, Eq)]
pub struct SymlinkEntry {
    pub path: String,
    pub target_file: FileValue,
}

starlark_simple_value!(SymlinkEntry);

impl fmt::Display for SymlinkEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SymlinkEntry(path = {:?}, target_file = {})",
            self.path, self.target_file
        )
    }
}

#[starlark_value(type = "SymlinkEntry")]
impl<'v> StarlarkValue<'v> for SymlinkEntry {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        match attribute {
            "path" => Some(heap.alloc(self.path.as_str())),
            "target_file" => Some(heap.alloc(self.target_file.clone())),
            _ => None,
        }
    }

    fn dir_attr(&self) -> Vec<String> {
        vec!["path".into(), "target_file".into()]
    }

    fn equals(&self, other: Value<'v>) -> starlark::Result<bool> {
        Ok(other.downcast_ref::<SymlinkEntry>() == Some(self))
    }

    fn write_hash(
        &self,
        hasher: &mut starlark::collections::StarlarkHasher,
    ) -> starlark::Result<()> {
        use std::hash::Hash;
        self.path.hash(hasher);
        self.target_file.path.hash(hasher);
        Ok(())
    }
}

/// `symlinks` / `root_symlinks` of `ctx.runfiles()`: a dict of path to File, or a depset of
/// `SymlinkEntry` (another runfiles' `.symlinks`), as a depset of `SymlinkEntry`.
pub fn symlink_entries<'v>(
    what: &str,
    value: Option<Value<'v>>,
    heap: Heap<'v>,
) -> anyhow::Result<Value<'v>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return make_depset(Vec::new(), Vec::new(), "default", heap);
    };
    if let Some(d) = Depset::from_value(value) {
        if let Some(bad) = d
            .to_list()
            .iter()
            .find(|e| e.downcast_ref::<SymlinkEntry>().is_none())
        {
            anyhow::bail!(
                "{what}: a depset must hold SymlinkEntry values, got {}",
                bad.get_type()
            );
        }
        return make_depset(Vec::new(), vec![value], "default", heap);
    }
    let dict = starlark::values::dict::DictRef::from_value(value).ok_or_else(|| {
        anyhow::anyhow!(
            "{what} must be a dict of path to File or a depset of SymlinkEntry, got {}",
            value.get_type()
        )
    })?;
    let mut direct = Vec::new();
    for (k, v) in dict.iter() {
        let path = k.unpack_str().ok_or_else(|| {
            anyhow::anyhow!("{what}: keys must be strings (paths), got {}", k.get_type())
        })?;
        if path.is_empty()
            || path.starts_with('/')
            || path
                .split('/')
                .any(|s| s == ".." || s == "." || s.is_empty())
        {
            anyhow::bail!("{what}: '{path}' must be a relative path inside the runfiles tree");
        }
        let file = v.downcast_ref::<FileValue>().ok_or_else(|| {
            anyhow::anyhow!(
                "{what}: the value for '{path}' must be a File, got {}",
                v.get_type()
            )
        })?;
        direct.push(heap.alloc(SymlinkEntry {
            path: path.to_owned(),
            target_file: file.clone(),
        }));
    }
    make_depset(direct, Vec::new(), "default", heap)
}

#[starlark_value(type = "runfiles")]
impl<'v, V: ValueLike<'v>> StarlarkValue<'v> for RunfilesGen<V>
where
    Self: ProvidesStaticType<'v>,
{
    fn get_methods() -> Option<&'static Methods> {
        Some(RUNFILES_METHODS.methods())
    }

    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        match attribute {
            "files" => Some(self.files.to_value()),
            "symlinks" => Some(self.symlinks.to_value()),
            "root_symlinks" => Some(self.root_symlinks.to_value()),
            // Bazel's empty files (Python's `__init__.py`) come only from its native Python
            // rules; runfiles made with ctx.runfiles() never have any.
            "empty_filenames" => make_depset(Vec::new(), Vec::new(), "default", heap).ok(),
            _ => None,
        }
    }

    fn dir_attr(&self) -> Vec<String> {
        vec![
            "empty_filenames".into(),
            "files".into(),
            "root_symlinks".into(),
            "symlinks".into(),
        ]
    }
}

starlark::methods_static!(RUNFILES_METHODS = runfiles_methods);

/// A new runfiles value whose files and symlinks are the union of the given runfiles.
pub fn merge_runfiles<'v>(parts: Vec<Value<'v>>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
    let (mut files, mut symlinks, mut root_symlinks) = (Vec::new(), Vec::new(), Vec::new());
    for p in parts {
        if p.is_none() {
            continue;
        }
        let r = Runfiles::from_value(p)
            .ok_or_else(|| anyhow::anyhow!("expected runfiles, got {}", p.get_type()))?;
        for (set, into) in [
            (r.files, &mut files),
            (r.symlinks, &mut symlinks),
            (r.root_symlinks, &mut root_symlinks),
        ] {
            if Depset::from_value(set).is_some() {
                into.push(set);
            }
        }
    }
    Ok(heap.alloc(RunfilesGen {
        files: make_depset(Vec::new(), files, "default", heap)?,
        symlinks: make_depset(Vec::new(), symlinks, "default", heap)?,
        root_symlinks: make_depset(Vec::new(), root_symlinks, "default", heap)?,
    }))
}

#[starlark_module]
fn runfiles_methods(builder: &mut MethodsBuilder) {
    /// The union of these runfiles and `other`.
    fn merge<'v>(
        this: Value<'v>,
        #[starlark(require = pos)] other: Value<'v>,
        heap: Heap<'v>,
    ) -> anyhow::Result<Value<'v>> {
        merge_runfiles(vec![this, other], heap)
    }

    /// The union of these runfiles and every one of `other`.
    fn merge_all<'v>(
        this: Value<'v>,
        #[starlark(require = pos)] other: Value<'v>,
        heap: Heap<'v>,
    ) -> anyhow::Result<Value<'v>> {
        let list = ListRef::from_value(other)
            .ok_or_else(|| anyhow::anyhow!("merge_all expects a list of runfiles"))?;
        let mut parts = vec![this];
        parts.extend(list.content().iter().copied());
        merge_runfiles(parts, heap)
    }
}

/// The runfiles tree of the executable `exe`: the executable and the files of `runfiles`
/// under the workspace directory, then the links of `runfiles`.
pub(super) fn runfiles_tree(
    exe: &FileValue,
    runfiles: Value,
    workspace_name: &str,
) -> RunfilesTree {
    let mut entries: BTreeMap<String, String> = BTreeMap::new();
    entries.insert(exe.runfiles_path(workspace_name), exe.path.clone());
    if let Some(files) = runfiles_files(runfiles).and_then(Depset::from_value) {
        for f in files.to_list() {
            if let Some(f) = f.downcast_ref::<FileValue>() {
                entries.insert(f.runfiles_path(workspace_name), f.path.clone());
                // External files also appear under `<ws>/external/<repo>/`, as with
                // Bazel's --legacy_external_runfiles (on by default).
                if let Some(external) = f.short_path.strip_prefix("../") {
                    entries.insert(
                        format!("{workspace_name}/external/{external}"),
                        f.path.clone(),
                    );
                }
            }
        }
    }
    // Then the extra links, which win over a file at the same path, as in Bazel.
    let (symlinks, root_symlinks) = runfiles_symlinks(runfiles);
    for (path, target) in symlinks {
        entries.insert(format!("{workspace_name}/{path}"), target);
    }
    for (path, target) in root_symlinks {
        entries.insert(path, target);
    }
    RunfilesTree {
        executable: ExecPath::new(exe.path.clone()),
        entries: entries
            .into_iter()
            .map(|(rf, path)| (rf, ExecPath::new(path)))
            .collect(),
    }
}

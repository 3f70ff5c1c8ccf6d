//! Starlark values of the analysis phase: `File`, the dependency objects rule
//! implementations see in `ctx.attr` (`TargetInfo`: `dep[MyInfo]`, `MyInfo in dep`), and
//! `runfiles`.

use std::fmt;

use allocative::Allocative;
use starlark::environment::{Methods, MethodsBuilder};
use starlark::values::list::ListRef;
use starlark::values::structs::AllocStruct;
use starlark::values::{
    Coerce, Freeze, Heap, NoSerialize, ProvidesStaticType, StarlarkValue, Trace, Value, ValueLike,
    starlark_value,
};
use starlark::{starlark_complex_value, starlark_module, starlark_simple_value};

use crate::core::{Label, layout};
use crate::loading::{Depset, LabelValue, ProviderCallable, ProviderInstance, make_depset};

/// A file as rule implementations see it.
#[derive(Debug, Clone, ProvidesStaticType, NoSerialize, Allocative, PartialEq, Eq)]
pub struct FileValue {
    /// The exec path: `pkg/a.txt`, `forge-out/k8-fastbuild/bin/pkg/gen.txt`.
    pub path: String,
    /// Relative to the repository's runfiles directory: `pkg/gen.txt`, `../repo/x`.
    pub short_path: String,
    pub is_source: bool,
    pub is_directory: bool,
    /// The target that owns the file: the source file's own label, or the generating rule.
    #[allocative(skip)]
    pub owner: Label,
}

starlark_simple_value!(FileValue);

impl FileValue {
    pub fn source(label: &Label) -> FileValue {
        FileValue {
            path: layout::source_path(&label.repo, &label.package, &label.name),
            short_path: layout::short_path(&label.repo, &label.package, &label.name),
            is_source: true,
            is_directory: false,
            owner: label.clone(),
        }
    }

    /// A file `name` (package-relative) that the rule `owner` generates.
    pub fn generated(owner: &Label, name: &str, is_directory: bool) -> FileValue {
        let within = layout::source_path(&owner.repo, &owner.package, name);
        FileValue {
            path: format!("{}/{within}", layout::bin_dir()),
            short_path: layout::short_path(&owner.repo, &owner.package, name),
            is_source: false,
            is_directory,
            owner: owner.clone(),
        }
    }

    pub fn basename(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    pub fn dirname(&self) -> &str {
        self.path.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
    }

    /// The root the exec path lies under: empty for sources, the bin directory otherwise.
    pub fn root(&self) -> String {
        if self.is_source {
            String::new()
        } else {
            layout::bin_dir()
        }
    }

    /// The path inside a runfiles tree: `<workspace>/pkg/x`, or `<repo>/pkg/x`.
    pub fn runfiles_path(&self, workspace_name: &str) -> String {
        match self.short_path.strip_prefix("../") {
            Some(external) => external.to_owned(),
            None => format!("{workspace_name}/{}", self.short_path),
        }
    }
}

impl fmt::Display for FileValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.is_source {
            "source file"
        } else {
            "generated file"
        };
        write!(f, "<{what} {}>", self.short_path)
    }
}

#[starlark_value(type = "File")]
impl<'v> StarlarkValue<'v> for FileValue {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        Some(match attribute {
            "path" => heap.alloc(self.path.as_str()),
            "short_path" => heap.alloc(self.short_path.as_str()),
            "basename" => heap.alloc(self.basename()),
            "dirname" => heap.alloc(self.dirname()),
            "extension" => {
                let base = self.basename();
                heap.alloc(base.rsplit_once('.').map(|(_, e)| e).unwrap_or(""))
            }
            "is_source" => Value::new_bool(self.is_source),
            "is_directory" => Value::new_bool(self.is_directory),
            "owner" => heap.alloc(LabelValue {
                label: self.owner.clone(),
            }),
            "root" => heap.alloc(AllocStruct([("path", self.root())])),
            _ => return None,
        })
    }

    fn dir_attr(&self) -> Vec<String> {
        [
            "basename",
            "dirname",
            "extension",
            "is_directory",
            "is_source",
            "owner",
            "path",
            "root",
            "short_path",
        ]
        .map(str::to_owned)
        .to_vec()
    }

    fn equals(&self, other: Value<'v>) -> starlark::Result<bool> {
        Ok(other
            .downcast_ref::<FileValue>()
            .is_some_and(|o| o.path == self.path))
    }

    fn write_hash(
        &self,
        hasher: &mut starlark::collections::StarlarkHasher,
    ) -> starlark::Result<()> {
        use std::hash::Hash;
        self.path.hash(hasher);
        Ok(())
    }

    fn compare(&self, other: Value<'v>) -> starlark::Result<std::cmp::Ordering> {
        match other.downcast_ref::<FileValue>() {
            Some(o) => Ok(self.path.cmp(&o.path)),
            None => starlark::values::ValueError::unsupported_with(self, "compare", other),
        }
    }
}

/// A dependency as a rule implementation sees it: its label and the providers it returned.
#[derive(Debug, Trace, Coerce, Freeze, ProvidesStaticType, NoSerialize, Allocative)]
#[repr(C)]
pub struct TargetInfoGen<V> {
    pub label: String,
    pub providers: Vec<V>,
}

starlark_complex_value!(pub TargetInfo);

impl<V> fmt::Display for TargetInfoGen<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<target {}>", self.label)
    }
}

impl<'v, V: ValueLike<'v>> TargetInfoGen<V> {
    /// The instance of the provider with this id (`<bzl>%<Name>`), if the target returned one.
    pub fn provider(&self, id: &str) -> Option<Value<'v>> {
        self.providers
            .iter()
            .map(|p| p.to_value())
            .find(|p| ProviderInstance::from_value(*p).is_some_and(|i| i.id == id))
    }

    /// A field of the target's DefaultInfo.
    pub fn default_info(&self, field: &str) -> Option<Value<'v>> {
        let info = self.provider(DEFAULT_INFO_ID)?;
        ProviderInstance::from_value(info)?
            .field(field)
            .filter(|v| !v.is_none())
    }
}

/// The id of the built-in `DefaultInfo`.
pub const DEFAULT_INFO_ID: &str = "<builtin>%DefaultInfo";

fn provider_of<'v>(index: Value<'v>) -> starlark::Result<&'v ProviderCallable> {
    crate::loading::provider_callable(index).ok_or_else(|| {
        starlark::Error::new_native(anyhow::anyhow!(
            "a target can only be indexed by a provider, got {}",
            index.get_type()
        ))
    })
}

#[starlark_value(type = "Target")]
impl<'v, V: ValueLike<'v>> StarlarkValue<'v> for TargetInfoGen<V>
where
    Self: ProvidesStaticType<'v>,
{
    fn at(&self, index: Value<'v>, _heap: Heap<'v>) -> starlark::Result<Value<'v>> {
        let p = provider_of(index)?;
        self.provider(&p.id()).ok_or_else(|| {
            starlark::Error::new_native(anyhow::anyhow!(
                "{} does not provide {}; check the rule's providers or use `{} in dep` first",
                self.label,
                p.name(),
                p.name()
            ))
        })
    }

    fn is_in(&self, other: Value<'v>) -> starlark::Result<bool> {
        let p = provider_of(other)?;
        Ok(self.provider(&p.id()).is_some())
    }

    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        match attribute {
            "label" => Label::parse(&self.label, &Default::default())
                .ok()
                .map(|label| heap.alloc(LabelValue { label })),
            // The legacy `dep.files` still used by many rules.
            "files" => self.default_info("files"),
            _ => None,
        }
    }

    fn dir_attr(&self) -> Vec<String> {
        vec!["files".into(), "label".into()]
    }
}

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

    fn get_attr(&self, attribute: &str, _heap: Heap<'v>) -> Option<Value<'v>> {
        match attribute {
            "files" => Some(self.files.to_value()),
            "symlinks" => Some(self.symlinks.to_value()),
            "root_symlinks" => Some(self.root_symlinks.to_value()),
            _ => None,
        }
    }

    fn dir_attr(&self) -> Vec<String> {
        vec!["files".into(), "root_symlinks".into(), "symlinks".into()]
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

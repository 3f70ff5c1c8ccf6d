//! Starlark values of the analysis phase: a label or a declared path in, the `File` rule
//! implementations see out; an analysed target's label and providers in, the dependency
//! object they see in `ctx.attr` out (`TargetInfo`: `dep[MyInfo]`, `MyInfo in dep`).
//! `runfiles` values are in `runfiles.rs`.

use std::fmt;

use allocative::Allocative;
use starlark::values::structs::AllocStruct;
use starlark::values::{
    Coerce, Freeze, Heap, NoSerialize, ProvidesStaticType, StarlarkValue, Trace, Value, ValueLike,
    starlark_value,
};
use starlark::{starlark_complex_value, starlark_simple_value};

use crate::core::{Label, layout};
use crate::loading::{LabelValue, ProviderCallable, ProviderInstance};

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

    /// A file `name` (package-relative) that the rule `owner`, analysed in `config`,
    /// generates.
    pub fn generated(
        owner: &Label,
        name: &str,
        is_directory: bool,
        config: &super::Config,
    ) -> FileValue {
        let within = layout::source_path(&owner.repo, &owner.package, name);
        FileValue {
            path: format!("{}/{within}", config.bin_dir()),
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

    /// The root the exec path lies under: empty for sources, the bin directory of the
    /// file's configuration (`forge-out/<config>/bin`) otherwise.
    pub fn root(&self) -> String {
        if self.is_source {
            return String::new();
        }
        match layout::bin_root_of(&self.path) {
            Some(root) => root.to_owned(),
            None => layout::OUT_DIR.to_owned(),
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

    // A target is hashable (by its label), as in Bazel: a label_keyed_string_dict attribute
    // is a dict with targets as keys.
    fn equals(&self, other: Value<'v>) -> starlark::Result<bool> {
        Ok(TargetInfo::from_value(other).is_some_and(|o| o.label == self.label))
    }

    fn write_hash(
        &self,
        hasher: &mut starlark::collections::StarlarkHasher,
    ) -> starlark::Result<()> {
        use std::hash::Hash;
        self.label.hash(hasher);
        Ok(())
    }
}

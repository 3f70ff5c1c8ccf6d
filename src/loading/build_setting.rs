//! Build settings: `config.bool|int|string|string_list(flag, allow_multiple)` in a .bzl file,
//! a plain `BuildSetting` out, which `rule(build_setting = ...)` records on the rule and
//! every target of it; the value a setting has in a build is decided in analysis.
//!
//! Bazel's other `config` members (`config.exec`, `config.target`, `config.none`) are
//! transitions forge does not support yet: they refuse by name.

use std::fmt;

use allocative::Allocative;
use starlark::environment::GlobalsBuilder;
use starlark::values::{NoSerialize, ProvidesStaticType, StarlarkValue, Value, starlark_value};
use starlark::{starlark_module, starlark_simple_value};

use super::attrs::AttrKind;
use super::target::AttrValue;
use super::unsupported::Unsupported;

/// The type of a build setting's value.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Allocative, serde::Serialize, serde::Deserialize)]
pub enum SettingKind {
    Bool,
    Int,
    String,
    StringList,
}

impl SettingKind {
    /// Bazel's name of the type (`config.<name>`).
    pub fn name(self) -> &'static str {
        match self {
            SettingKind::Bool => "bool",
            SettingKind::Int => "int",
            SettingKind::String => "string",
            SettingKind::StringList => "string_list",
        }
    }

    /// The attribute type of `build_setting_default`.
    pub fn attr_kind(self) -> AttrKind {
        match self {
            SettingKind::Bool => AttrKind::Bool,
            SettingKind::Int => AttrKind::Int,
            SettingKind::String => AttrKind::String,
            SettingKind::StringList => AttrKind::StringList,
        }
    }

    /// `text` (a command-line value, or a `config_setting(flag_values)` value) as a value of
    /// this type, read as Bazel reads it: booleans as `true`/`false`/`1`/`0` (and yes/no),
    /// integers in decimal, a string list comma-separated.
    pub fn parse(self, text: &str) -> Result<AttrValue, String> {
        match self {
            SettingKind::Bool => match text.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "t" | "y" => Ok(AttrValue::Bool(true)),
                "0" | "false" | "no" | "f" | "n" => Ok(AttrValue::Bool(false)),
                _ => Err(format!("'{text}' is not a boolean")),
            },
            SettingKind::Int => text
                .trim()
                .parse::<i64>()
                .ok()
                .and_then(|n| i32::try_from(n).ok())
                .map(|n| AttrValue::Int(n.into()))
                .ok_or_else(|| format!("'{text}' is not an int")),
            SettingKind::String => Ok(AttrValue::String(text.to_owned())),
            SettingKind::StringList => Ok(AttrValue::StringList(if text.is_empty() {
                Vec::new()
            } else {
                text.split(',').map(str::to_owned).collect()
            })),
        }
    }
}

/// What `config.<type>(flag, allow_multiple)` declared.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Allocative, serde::Serialize, serde::Deserialize)]
pub struct BuildSetting {
    pub kind: SettingKind,
    /// Settable on the command line (`--//pkg:name=value`); otherwise only transitions could
    /// set it, and its value is its default.
    pub flag: bool,
    /// A string setting given several times on the command line collects every value.
    pub allow_multiple: bool,
}

/// The value `config.string(flag = True)` returns, for `rule(build_setting = ...)`.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct BuildSettingValue(pub BuildSetting);

starlark_simple_value!(BuildSettingValue);

impl fmt::Display for BuildSettingValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<build setting config.{}(flag = {})>",
            self.0.kind.name(),
            if self.0.flag { "True" } else { "False" }
        )
    }
}

#[starlark_value(type = "BuildSetting")]
impl<'v> StarlarkValue<'v> for BuildSettingValue {}

impl BuildSettingValue {
    /// The setting `value` declares (`rule(build_setting = value)`), if it is one.
    pub fn setting_of(value: Value) -> Option<BuildSetting> {
        BuildSettingValue::from_value(value).map(|v| v.0)
    }
}

fn setting(kind: SettingKind, flag: bool, allow_multiple: bool) -> BuildSettingValue {
    BuildSettingValue(BuildSetting {
        kind,
        flag,
        allow_multiple,
    })
}

/// The `config` namespace of .bzl files.
#[starlark_module]
pub fn config_module(builder: &mut GlobalsBuilder) {
    /// A boolean build setting.
    fn bool(
        #[starlark(require = named, default = false)] flag: bool,
    ) -> anyhow::Result<BuildSettingValue> {
        Ok(setting(SettingKind::Bool, flag, false))
    }

    /// An integer build setting.
    fn int(
        #[starlark(require = named, default = false)] flag: bool,
    ) -> anyhow::Result<BuildSettingValue> {
        Ok(setting(SettingKind::Int, flag, false))
    }

    /// A string build setting; with `allow_multiple`, each use on the command line adds one.
    fn string(
        #[starlark(require = named, default = false)] flag: bool,
        #[starlark(require = named, default = false)] allow_multiple: bool,
    ) -> anyhow::Result<BuildSettingValue> {
        Ok(setting(SettingKind::String, flag, allow_multiple))
    }

    /// A list-of-strings build setting, written comma-separated on the command line.
    fn string_list(
        #[starlark(require = named, default = false)] flag: bool,
    ) -> anyhow::Result<BuildSettingValue> {
        Ok(setting(SettingKind::StringList, flag, false))
    }
}

/// `config`'s members that are transitions: refused by name.
pub fn config_unsupported(builder: &mut GlobalsBuilder) {
    for name in ["exec", "target", "none"] {
        builder.set(name, Unsupported::new(format!("config.{name}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_read_as_bazel_reads_the_command_line() {
        assert_eq!(SettingKind::Bool.parse("TRUE"), Ok(AttrValue::Bool(true)));
        assert_eq!(SettingKind::Bool.parse("0"), Ok(AttrValue::Bool(false)));
        assert!(SettingKind::Bool.parse("2").is_err());
        assert_eq!(SettingKind::Int.parse("-12"), Ok(AttrValue::Int(-12)));
        // Starlark ints of build settings are 32-bit in Bazel.
        assert!(SettingKind::Int.parse("4294967296").is_err());
        assert_eq!(
            SettingKind::StringList.parse("a,b"),
            Ok(AttrValue::StringList(vec!["a".into(), "b".into()]))
        );
        assert_eq!(
            SettingKind::StringList.parse(""),
            Ok(AttrValue::StringList(Vec::new()))
        );
        assert_eq!(
            SettingKind::String.parse("a,b"),
            Ok(AttrValue::String("a,b".into()))
        );
    }
}

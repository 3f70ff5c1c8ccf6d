//! Late-bound defaults: `configuration_field(fragment, name)` in a .bzl file in, a value
//! that `attr.label(default = ...)` turns into the attribute's default for the build's
//! configuration out.
//!
//! No command-line option of forge sets one of
//! these fields, so each known field has the value Bazel gives it without flags: no label.
//! A field forge does not know is refused by name, never guessed.

use std::fmt;

use allocative::Allocative;
use starlark::environment::GlobalsBuilder;
use starlark::values::{NoSerialize, ProvidesStaticType, StarlarkValue, starlark_value};
use starlark::{starlark_module, starlark_simple_value};

/// `configuration_field(fragment, name)`: a label the configuration decides.
#[derive(Debug, Clone, ProvidesStaticType, NoSerialize, Allocative)]
pub struct LateBoundDefault {
    pub fragment: String,
    pub name: String,
}

starlark_simple_value!(LateBoundDefault);

impl fmt::Display for LateBoundDefault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<late-bound default {}.{}>", self.fragment, self.name)
    }
}

#[starlark_value(type = "LateBoundDefault")]
impl<'v> StarlarkValue<'v> for LateBoundDefault {}

/// The fields Bazel 4 exposes that are unset unless a flag forge does not have sets them
/// (`--collect_code_coverage`, FDO and profile options, `--grte_top`).
const UNSET_WITHOUT_FLAGS: &[(&str, &str)] = &[
    ("coverage", "output_generator"),
    ("cpp", "fdo_optimize"),
    ("cpp", "fdo_prefetch_hints"),
    ("cpp", "fdo_profile"),
    ("cpp", "csfdo_profile"),
    ("cpp", "libc_top"),
    ("cpp", "target_libc_top_DO_NOT_USE_ONLY_FOR_CC_TOOLCHAIN"),
    ("cpp", "propeller_optimize"),
    ("cpp", "xbinary_fdo"),
    ("cpp", "memprof_profile"),
    ("cpp", "proto_profile_path"),
];

impl LateBoundDefault {
    /// Refuses a field forge cannot give a value: every field it accepts has no label in
    /// its configuration, as in Bazel without the flag that sets it.
    pub fn check_known(&self) -> anyhow::Result<()> {
        if UNSET_WITHOUT_FLAGS
            .iter()
            .any(|(f, n)| *f == self.fragment && *n == self.name)
        {
            return Ok(());
        }
        anyhow::bail!(
            "forge does not support configuration_field(fragment = \"{}\", name = \"{}\") yet; \
             it knows {}",
            self.fragment,
            self.name,
            UNSET_WITHOUT_FLAGS
                .iter()
                .map(|(f, n)| format!("{f}.{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

#[starlark_module]
pub fn late_bound_globals(builder: &mut GlobalsBuilder) {
    /// A late-bound default for a private label attribute: the configuration's value of
    /// `name` in fragment `fragment`.
    fn configuration_field(
        #[starlark(require = named)] fragment: String,
        #[starlark(require = named)] name: String,
    ) -> anyhow::Result<LateBoundDefault> {
        let field = LateBoundDefault { fragment, name };
        field.check_known()?;
        Ok(field)
    }
}

//! Bazel's .bzl globals that forge does not implement yet, as values that refuse to be used
//! by name: a .bzl file that mentions `java_common` or `JavaInfo` loads as it does in Bazel, and
//! the first call that needs one fails saying so — never a silent no-op, and never
//! ``Variable `java_common` not found`` for a whole file of which one function needed it.

use starlark::environment::GlobalsBuilder;

use super::providers::ProviderCallable;
pub use crate::workspace::unsupported::Unsupported;

/// Modules and functions: using any of them (calling it, or anything reached through it)
/// is refused, naming the whole path (`java_common.compile`).
const MODULES: &[&str] = &[
    "android_common",
    "apple_common",
    "config_common",
    "coverage_common",
    "java_common",
    "java_proto_common",
    "proto",
    "proto_common",
    "repository_rule",
    "testing",
];

/// Bazel 4's native rules forge has no rule for yet, in BUILD files and as `native.<name>`:
/// a call fails naming the rule instead of ``Variable `cc_library` not found``.
pub const NATIVE_RULES: &[&str] = &[
    "aar_import",
    "action_listener",
    "android_binary",
    "android_device",
    "android_instrumentation_test",
    "android_library",
    "android_local_test",
    "android_sdk",
    "available_xcodes",
    "cc_proto_library",
    "cc_shared_library",
    "cc_toolchain_suite",
    "config_feature_flag",
    "environment",
    "extra_action",
    "fdo_prefetch_hints",
    "fdo_profile",
    "genquery",
    "j2objc_library",
    "java_binary",
    "java_import",
    "java_library",
    "java_lite_proto_library",
    "java_package_configuration",
    "java_plugin",
    "java_proto_library",
    "java_runtime",
    "java_test",
    "java_toolchain",
    "objc_import",
    "objc_library",
    "platform",
    "propeller_optimize",
    "proto_lang_toolchain",
    "proto_library",
    "toolchain",
    "xcode_config",
    "xcode_version",
];

/// Providers no forge rule returns yet. They are real providers — `P in dep` is false,
/// `dep[P]` and `providers = [P]` fail as for any provider a target lacks, which is the
/// truth — but creating one is refused.
const PROVIDERS: &[&str] = &[
    "AnalysisFailureInfo",
    "AnalysisTestResultInfo",
    "DebugPackageInfo",
    "InstrumentedFilesInfo",
    "JavaInfo",
    "ProtoInfo",
];

/// `platform_common`'s members forge does not have yet: platforms and constraints as
/// providers (issue of configurations).
const PLATFORM_COMMON_UNSUPPORTED: &[&str] = &[
    "ConstraintSettingInfo",
    "ConstraintValueInfo",
    "PlatformInfo",
];

/// Adds every name above to the globals of .bzl files and BUILD files, and
/// `platform_common` with the two providers rules use to hand values to others
/// (`ToolchainInfo`, `TemplateVariableInfo`), which are plain providers in forge too.
pub fn unsupported_globals(builder: &mut GlobalsBuilder) {
    builder.namespace("platform_common", |b| {
        b.set(
            "ToolchainInfo",
            ProviderCallable::builtin("ToolchainInfo", &[]),
        );
        b.set(
            "TemplateVariableInfo",
            ProviderCallable::builtin_with_positional(
                "TemplateVariableInfo",
                &["variables"],
                "variables",
            ),
        );
        for name in PLATFORM_COMMON_UNSUPPORTED {
            b.set(name, Unsupported::new(format!("platform_common.{name}")));
        }
    });
    for path in MODULES {
        builder.set(path, Unsupported::new((*path).to_owned()));
    }
    for name in NATIVE_RULES {
        builder.set(name, Unsupported::new((*name).to_owned()));
    }
    for name in PROVIDERS {
        builder.set(name, ProviderCallable::builtin_unconstructible(name));
    }
}

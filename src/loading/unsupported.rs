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
    "coverage_common",
    "java_common",
    "java_proto_common",
    "proto",
    "proto_common",
    "repository_rule",
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
    "propeller_optimize",
    "proto_lang_toolchain",
    "proto_library",
    "xcode_config",
    "xcode_version",
];

/// Providers no forge rule returns yet. They are real providers — `P in dep` is false,
/// `dep[P]` and `providers = [P]` fail as for any provider a target lacks, which is the
/// truth — but creating one is refused.
const PROVIDERS: &[&str] = &[
    "AnalysisFailureInfo",
    "DebugPackageInfo",
    "InstrumentedFilesInfo",
    "JavaInfo",
    "ProtoInfo",
];

/// `platform_common`'s providers of platforms and constraints: real providers (targets of
/// the built-in platform rules carry them), which, as in Bazel, rules cannot create.
const PLATFORM_COMMON_PROVIDERS: &[&str] = &[
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
        for name in PLATFORM_COMMON_PROVIDERS {
            b.set(name, ProviderCallable::builtin_unconstructible(name));
        }
    });
    // What an analysis test returns (its verdict), and what a test rule returns to change
    // how its test runs.
    builder.set(
        "AnalysisTestResultInfo",
        ProviderCallable::builtin("AnalysisTestResultInfo", &["success", "message"]),
    );
    builder.namespace("testing", |b| {
        b.set(
            "ExecutionInfo",
            ProviderCallable::builtin_with_positional(
                "ExecutionInfo",
                &["requirements", "exec_group"],
                "requirements",
            ),
        );
        b.set(
            "TestEnvironment",
            ProviderCallable::builtin_with_positional(
                "TestEnvironment",
                &["environment", "inherited_environment"],
                "environment",
            ),
        );
    });
    super::toolchain_type::config_common_globals(builder);
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

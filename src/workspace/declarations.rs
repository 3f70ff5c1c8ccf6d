//! Build declarations in .bzl files that WORKSPACE loads: `rule()`, `provider()`, `attr.*`,
//! `aspect()`, ... called at a .bzl file's top level in, a `BuildDeclaration` that WORKSPACE
//! cannot use out.
//!
//! A .bzl file loaded by WORKSPACE (a `deps.bzl`, skylib's `unittest.bzl`) often declares
//! rules and providers next to its repository macros. WORKSPACE can only declare
//! repositories, so, as in Bazel, nothing it does can use those declarations: they only have
//! to evaluate. The same file is evaluated again, with the real `rule()` and its checks, when
//! a BUILD file loads it (`loading`), which keeps this phase free of the loading phase's API.
//! Calling a declared rule or provider in WORKSPACE is an error, as it is in Bazel.

use std::fmt;

use allocative::Allocative;
use starlark::environment::GlobalsBuilder;
use starlark::eval::{Arguments, Evaluator};
use starlark::starlark_simple_value;
use starlark::values::{
    Heap, NoSerialize, ProvidesStaticType, StarlarkValue, Value, starlark_value,
};

/// The builtins of Bazel's .bzl environment that declare things for the build (or hold
/// such builtins, like `attr`), which a .bzl file loaded by WORKSPACE may call.
const DECLARING_BUILTINS: &[&str] = &[
    "rule",
    "provider",
    "aspect",
    "repository_rule",
    "transition",
    "analysis_test_transition",
    "configuration_field",
    "exec_group",
    "select",
    "depset",
    "attr",
    "config",
    "config_common",
    "platform_common",
    "testing",
    "coverage_common",
    "cc_common",
    "java_common",
    "apple_common",
    "android_common",
    "proto_common",
    "java_proto_common",
    "DefaultInfo",
    "OutputGroupInfo",
    "AnalysisFailureInfo",
    "AnalysisTestResultInfo",
    "CcInfo",
    "CcToolchainConfigInfo",
    "JavaInfo",
    "JavaPluginInfo",
    "PyInfo",
    "PyRuntimeInfo",
    "ProtoInfo",
    "InstrumentedFilesInfo",
    "RunEnvironmentInfo",
    "PackageSpecificationInfo",
    "ObjcProvider",
    "AppleDynamicFrameworkInfo",
    "ProguardSpecProvider",
    "cc_proto_aspect",
];

/// A builtin (or a member of one, `attr.string`) as a .bzl file loaded by WORKSPACE sees it.
#[derive(Debug, Clone, ProvidesStaticType, NoSerialize, Allocative)]
pub struct DeclaringBuiltin {
    name: String,
}

starlark_simple_value!(DeclaringBuiltin);

impl fmt::Display for DeclaringBuiltin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<built-in {}>", self.name)
    }
}

#[starlark_value(type = "builtin_function_or_method")]
impl<'v> StarlarkValue<'v> for DeclaringBuiltin {
    fn invoke(
        &self,
        _me: Value<'v>,
        _args: &Arguments<'v, '_>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<Value<'v>> {
        Ok(eval.heap().alloc(BuildDeclaration {
            made_by: self.name.clone(),
        }))
    }

    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        Some(heap.alloc(DeclaringBuiltin {
            name: format!("{}.{attribute}", self.name),
        }))
    }
}

/// What a declaring builtin returns in WORKSPACE: a rule, a provider, an attribute, ...
#[derive(Debug, Clone, ProvidesStaticType, NoSerialize, Allocative)]
pub struct BuildDeclaration {
    made_by: String,
}

starlark_simple_value!(BuildDeclaration);

impl fmt::Display for BuildDeclaration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<declared by {}()>", self.made_by)
    }
}

#[starlark_value(type = "build_declaration")]
impl<'v> StarlarkValue<'v> for BuildDeclaration {
    fn invoke(
        &self,
        _me: Value<'v>,
        _args: &Arguments<'v, '_>,
        _eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<Value<'v>> {
        if self.made_by == "repository_rule" {
            return Err(starlark::Error::new_native(anyhow::anyhow!(
                "forge does not support `repository_rule` yet: a repository rule written in \
                 Starlark cannot be run; declare the repository with http_archive, http_file, \
                 http_jar, local_repository or new_local_repository instead"
            )));
        }
        Err(starlark::Error::new_native(anyhow::anyhow!(
            "WORKSPACE cannot call what {}() declared: WORKSPACE (and the macros it calls) \
             declares repositories, with repository rules such as http_archive; rules are \
             called from BUILD files",
            self.made_by
        )))
    }
}

/// `rule`, `provider`, `attr`, ... for the .bzl files WORKSPACE loads.
pub fn declaring_builtins(builder: &mut GlobalsBuilder) {
    for name in DECLARING_BUILTINS {
        builder.set(
            name,
            DeclaringBuiltin {
                name: (*name).to_owned(),
            },
        );
    }
}

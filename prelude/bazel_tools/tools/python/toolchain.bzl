"""@bazel_tools//tools/python:toolchain.bzl, written by forge: `py_runtime_pair`.

In Bazel a `py_runtime_pair` target is a Python toolchain: it pairs a Python 2 and a Python 3
`py_runtime` and is handed to `toolchain(toolchain_type = "@bazel_tools//tools/python:toolchain_type")`.
rules_python's `defs.bzl` loads and re-exports it, so declaring such targets works in forge.
forge has no toolchain resolution and no `py_runtime` yet, so building one is refused.
"""

def _py_runtime_pair_impl(ctx):
    fail("forge does not support `py_runtime_pair` yet: it has no Python toolchains " +
         "(toolchain resolution and py_runtime are not implemented); %s cannot be built" % ctx.label)

py_runtime_pair = rule(
    implementation = _py_runtime_pair_impl,
    doc = "A Python 2 and a Python 3 runtime, as one toolchain (refused when built in forge).",
    attrs = {
        "py2_runtime": attr.label(doc = "The Python 2 py_runtime."),
        "py3_runtime": attr.label(doc = "The Python 3 py_runtime."),
    },
)

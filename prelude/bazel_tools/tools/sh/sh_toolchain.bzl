"""sh_toolchain: a shell interpreter as a toolchain of @bazel_tools//tools/sh:toolchain_type.

Written by forge with Bazel's interface: `ToolchainInfo(path = ...)`.
"""

def _sh_toolchain_impl(ctx):
    return [platform_common.ToolchainInfo(path = ctx.attr.path)]

sh_toolchain = rule(
    implementation = _sh_toolchain_impl,
    doc = "A runtime toolchain for shell targets.",
    attrs = {
        "path": attr.string(doc = "Absolute path to the shell interpreter."),
    },
)

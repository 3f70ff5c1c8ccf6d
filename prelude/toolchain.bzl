"""toolchain_type and toolchain: the kinds of toolchains and the registrations resolution chooses from.

Rules list toolchain_type targets in `toolchains = [...]`; a `toolchain` target says which target
implements a type, and on which execution and target platforms it may be used. Toolchain
resolution (src/analysis/toolchains.rs) reads these attributes; neither rule has actions.
"""

def _no_actions_impl(ctx):
    return []

toolchain_type = rule(
    implementation = _no_actions_impl,
    doc = "A kind of toolchain, such as @bazel_tools//tools/sh:toolchain_type.",
    attrs = {},
)

# `exec_compatible_with` and `target_compatible_with` are the attributes every target has;
# on a toolchain they say where the toolchain may be used, and analysis reads them so.
toolchain = rule(
    implementation = _no_actions_impl,
    doc = "Registers `toolchain` as an implementation of `toolchain_type` for the platforms its constraints allow.",
    attrs = {
        "toolchain_type": attr.label(mandatory = True, doc = "The toolchain_type this toolchain implements."),
        "toolchain": attr.label(mandatory = True, doc = "The target providing platform_common.ToolchainInfo."),
    },
)

"""toolchain_type: the name a kind of toolchain goes by.

Bazel's toolchain_type targets are what rules list in `toolchains = [...]` and what
`toolchain(toolchain_type = ...)` registers against. forge has no toolchain resolution yet;
the targets exist so that packages declaring and referring to them load, and so that other
targets can depend on them.
"""

def _toolchain_type_impl(ctx):
    return []

toolchain_type = rule(
    implementation = _toolchain_type_impl,
    doc = "A kind of toolchain, such as @bazel_tools//tools/sh:toolchain_type.",
    attrs = {},
)

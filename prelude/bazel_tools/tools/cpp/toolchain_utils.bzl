"""find_cpp_toolchain: the C++ toolchain of a rule with a `_cc_toolchain` attribute."""

def find_cpp_toolchain(ctx):
    """The CcToolchainInfo of the build, read from the rule's `_cc_toolchain` attribute
    (`@bazel_tools//tools/cpp:current_cc_toolchain`), as Bazel 4 does by default."""
    if hasattr(ctx.attr, "_cc_toolchain"):
        return ctx.attr._cc_toolchain[cc_common.CcToolchainInfo]
    fail("In order to use find_cpp_toolchain, your rule has to depend on C++ toolchain. Add `\"_cc_toolchain\": attr.label(default = Label(\"@bazel_tools//tools/cpp:current_cc_toolchain\"))` to its attributes.")

def find_cc_toolchain(ctx):
    return find_cpp_toolchain(ctx)

def use_cpp_toolchain(mandatory = False):
    """The toolchains a rule using the C++ toolchain declares: none in forge, which finds it
    through `_cc_toolchain`."""
    return []

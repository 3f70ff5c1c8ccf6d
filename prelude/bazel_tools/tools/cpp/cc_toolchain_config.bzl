"""cc_toolchain_config: the tools and flags of a C++ toolchain, for cc_toolchain.

The defaults are the flags of Bazel's auto-configured Unix toolchain for GCC
(unix_cc_toolchain_config.bzl); forge's host toolchain is one of these, with the tools
found on the host (host_cc.bzl).
"""

# GCC's options clang lacks, and what Bazel's auto-configuration gives clang instead.
_GCC_ONLY = ["-Wunused-but-set-parameter", "-Wno-free-nonheap-object", "-fno-canonical-system-headers", "-pass-exit-codes"]

def _for_compiler(flags, compiler):
    if compiler != "clang":
        return list(flags)
    out = [f for f in flags if f not in _GCC_ONLY]
    if "-fno-canonical-system-headers" in flags:
        out.insert(0, "-no-canonical-prefixes")
    return out

def _cc_toolchain_config_impl(ctx):
    compiler = ctx.attr.compiler
    link_flags = _for_compiler(ctx.attr.link_flags, compiler)
    if ctx.attr.use_gold:
        link_flags = ["-fuse-ld=gold"] + link_flags
    return [CcToolchainConfigInfo(
        toolchain_identifier = ctx.attr.toolchain_identifier,
        cc = ctx.attr.cc,
        cxx = ctx.attr.cxx or ctx.attr.cc,
        ar = ctx.attr.ar,
        ld = ctx.attr.ld,
        nm = ctx.attr.nm,
        objcopy = ctx.attr.objcopy,
        strip = ctx.attr.strip,
        compiler = ctx.attr.compiler,
        cpu = ctx.attr.cpu,
        target_libc = ctx.attr.target_libc,
        target_system_name = ctx.attr.target_system_name,
        builtin_include_directories = ctx.attr.builtin_include_directories,
        compile_flags = _for_compiler(ctx.attr.compile_flags, compiler),
        dbg_compile_flags = ctx.attr.dbg_compile_flags,
        opt_compile_flags = ctx.attr.opt_compile_flags,
        cxx_flags = ctx.attr.cxx_flags,
        link_flags = link_flags,
        opt_link_flags = ctx.attr.opt_link_flags,
        link_libs = ctx.attr.link_libs,
        unfiltered_compile_flags = _for_compiler(ctx.attr.unfiltered_compile_flags, compiler),
        detection_error = ctx.attr.detection_error,
    )]

cc_toolchain_config = rule(
    implementation = _cc_toolchain_config_impl,
    doc = "The tools and flags of a C++ toolchain (Bazel's Unix toolchain by default).",
    attrs = {
        "toolchain_identifier": attr.string(default = "local"),
        "cc": attr.string(mandatory = True, doc = "The C compiler, which also links."),
        "cxx": attr.string(doc = "The C++ compiler (default: cc)."),
        "ar": attr.string(default = "/usr/bin/ar"),
        "ld": attr.string(default = "/usr/bin/ld"),
        "nm": attr.string(default = "/usr/bin/nm"),
        "objcopy": attr.string(default = "/usr/bin/objcopy"),
        "strip": attr.string(default = "/usr/bin/strip"),
        "compiler": attr.string(default = "gcc"),
        "cpu": attr.string(default = "k8"),
        "target_libc": attr.string(default = "local"),
        "target_system_name": attr.string(default = "local"),
        "builtin_include_directories": attr.string_list(),
        "use_gold": attr.bool(default = False),
        "compile_flags": attr.string_list(default = [
            "-U_FORTIFY_SOURCE",
            "-fstack-protector",
            "-Wall",
            "-Wunused-but-set-parameter",
            "-Wno-free-nonheap-object",
            "-fno-omit-frame-pointer",
        ]),
        "dbg_compile_flags": attr.string_list(default = ["-g"]),
        "opt_compile_flags": attr.string_list(default = [
            "-g0",
            "-O2",
            "-D_FORTIFY_SOURCE=1",
            "-DNDEBUG",
            "-ffunction-sections",
            "-fdata-sections",
        ]),
        "cxx_flags": attr.string_list(default = ["-std=c++0x"]),
        "link_flags": attr.string_list(default = [
            "-Wl,-no-as-needed",
            "-Wl,-z,relro,-z,now",
            "-B/usr/bin",
            "-pass-exit-codes",
        ]),
        "opt_link_flags": attr.string_list(default = ["-Wl,--gc-sections"]),
        "link_libs": attr.string_list(default = ["-lstdc++", "-lm"]),
        "unfiltered_compile_flags": attr.string_list(default = [
            "-fno-canonical-system-headers",
            "-Wno-builtin-macro-redefined",
            "-D__DATE__=\"redacted\"",
            "-D__TIMESTAMP__=\"redacted\"",
            "-D__TIME__=\"redacted\"",
        ]),
        "detection_error": attr.string(doc = "Why no compiler could be used, if none could."),
    },
)

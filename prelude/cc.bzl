"""cc_library, cc_binary, cc_test, cc_import and the toolchain rules, on cc_common (cc_common.bzl).

Outputs are laid out as Bazel lays them out: objects in `_objs/<target>/<source>.pic.o`
(`.o` too in opt), archives `lib<name>.a` (`.lo` for alwayslink; `.pic.a` in opt),
shared libraries `lib<name>.so`, the binary at `<name>`.
"""

_CURRENT_CC_TOOLCHAIN = "@bazel_tools//tools/cpp:current_cc_toolchain"

# ---- Toolchain ---------------------------------------------------------------------------

def _files_of(target):
    return target[DefaultInfo].files if target else depset()

def _no_runtime_lib(feature_configuration = None):
    return None

def _needs_pic_for_dynamic_libraries(feature_configuration = None):
    return True

def _cc_toolchain_impl(ctx):
    config = ctx.attr.toolchain_config[CcToolchainConfigInfo]
    cpp = ctx.fragments.cpp
    all_files = depset(transitive = [_files_of(ctx.attr.all_files)])
    info = CcToolchainInfo(
        compiler_executable = config.cc,
        ar_executable = config.ar,
        ld_executable = config.ld,
        nm_executable = config.nm,
        objcopy_executable = config.objcopy,
        objdump_executable = config.objcopy.replace("objcopy", "objdump"),
        strip_executable = config.strip,
        gcov_executable = config.cc.replace("gcc", "gcov") if config.cc.endswith("gcc") else "/usr/bin/gcov",
        preprocessor_executable = config.cc,
        compiler = config.compiler,
        cpu = config.cpu,
        libc = config.target_libc,
        target_gnu_system_name = config.target_system_name,
        toolchain_id = config.toolchain_identifier or ctx.attr.toolchain_identifier,
        sysroot = None,
        all_files = all_files,
        built_in_include_directories = config.builtin_include_directories,
        dynamic_runtime_lib = _no_runtime_lib,
        static_runtime_lib = _no_runtime_lib,
        needs_pic_for_dynamic_libraries = _needs_pic_for_dynamic_libraries,
        _config = config,
        _cxx_executable = config.cxx or config.cc,
        _compilation_mode = ctx.var["COMPILATION_MODE"],
        _copts = cpp.copts,
        _cxxopts = cpp.cxxopts,
        _conlyopts = cpp.conlyopts,
        _linkopts = cpp.linkopts,
        _bin_dir = ctx.bin_dir.path,
    )
    return [
        DefaultInfo(files = all_files),
        info,
        platform_common.ToolchainInfo(cc = info),
        platform_common.TemplateVariableInfo({
            "CC": config.cc,
            "AR": config.ar,
            "NM": config.nm,
            "OBJCOPY": config.objcopy,
            "STRIP": config.strip,
            "CC_FLAGS": "",
            "ABI": "local",
            "C_COMPILER": config.compiler,
        }),
    ]

_TOOLCHAIN_FILES = ["all_files", "ar_files", "as_files", "compiler_files", "dwp_files", "linker_files", "objcopy_files", "strip_files", "coverage_files"]

_cc_toolchain_attrs = {
    "toolchain_config": attr.label(mandatory = True, providers = [CcToolchainConfigInfo]),
    "toolchain_identifier": attr.string(),
    "supports_param_files": attr.bool(default = True),
    "supports_header_parsing": attr.bool(),
    "dynamic_runtime_lib": attr.label(allow_files = True),
    "static_runtime_lib": attr.label(allow_files = True),
    "libc_top": attr.label(allow_files = True),
    "module_map": attr.label(allow_files = True),
    "exec_transition_for_inputs": attr.bool(default = True),
}
_cc_toolchain_attrs.update({name: attr.label(allow_files = True) for name in _TOOLCHAIN_FILES})

cc_toolchain = rule(
    implementation = _cc_toolchain_impl,
    doc = "A C++ toolchain: the tools and flags of a cc_toolchain_config, for C++ rules.",
    attrs = _cc_toolchain_attrs,
)

def _toolchain_alias_impl(ctx):
    toolchain = ctx.attr._cc_toolchain
    return [
        toolchain[DefaultInfo],
        toolchain[CcToolchainInfo],
        toolchain[platform_common.ToolchainInfo],
        toolchain[platform_common.TemplateVariableInfo],
    ]

cc_toolchain_alias = rule(
    implementation = _toolchain_alias_impl,
    doc = "The C++ toolchain of the build (find_cpp_toolchain reads it through _cc_toolchain).",
    attrs = {"_cc_toolchain": attr.label(default = "@bazel_tools//tools/cpp:cc_toolchain")},
)

# Forge has one configuration: the host toolchain is the target's.
cc_host_toolchain_alias = rule(
    implementation = _toolchain_alias_impl,
    doc = "The C++ toolchain of the host.",
    attrs = {"_cc_toolchain": attr.label(default = "@bazel_tools//tools/cpp:host_cc_toolchain")},
)

def _libc_top_alias_impl(ctx):
    return [DefaultInfo()]

cc_libc_top_alias = rule(
    implementation = _libc_top_alias_impl,
    doc = "The libc of the C++ toolchain: forge's host toolchain has no libc_top.",
    attrs = {},
)

# ---- Libraries and binaries --------------------------------------------------------------

_SOURCE = [".c", ".cc", ".cpp", ".cxx", ".c++", ".C", ".S", ".s", ".asm"]
_HEADERS = [".h", ".hh", ".hpp", ".hxx", ".inc", ".inl", ".ipp", ".tcc", ".H"]
_LIBS = [".a", ".lo", ".so", ".pic.a", ".pic.lo"]
_OBJECTS = [".o", ".pic.o"]

def _ends(f, exts):
    for e in exts:
        if f.basename.endswith(e):
            return True
    return False

def _is_shared(f):
    return f.basename.endswith(".so") or ".so." in f.basename

def _expand(ctx, attr_name, values, targets):
    """copts and linkopts: make variables and $(location) expanded, then split as a shell
    would split them."""
    out = []
    for v in values:
        if "$" in v:
            v = ctx.expand_location(v, targets)
            v = ctx.expand_make_variables(attr_name, v, {})
        out += _tokenize(v)
    return out

def _tokenize(s):
    tokens = []
    current = ""
    quote = None
    has_token = False
    for c in s.elems():
        if quote:
            if c == quote:
                quote = None
            else:
                current += c
        elif c == "'" or c == '"':
            quote = c
            has_token = True
        elif c == " " or c == "\t" or c == "\n":
            if current or has_token:
                tokens.append(current)
            current = ""
            has_token = False
        else:
            current += c
    if current or has_token:
        tokens.append(current)
    return tokens

def _system_includes(ctx, includes):
    """`includes = ["inc"]`: -isystem <package>/inc, in the source tree and the output tree."""
    root = "external/" + ctx.label.workspace_name if ctx.label.workspace_name else ""
    out = []
    for i in includes:
        if i.startswith("/") or ".." in i.split("/") and not i.startswith("../"):
            fail("%s: includes must be relative paths inside the repository, got '%s'" % (ctx.label, i))
        path = "/".join([p for p in [root, ctx.label.package, i] if p and p != "."])
        path = path or "."
        out += [path, ctx.bin_dir.path + "/" + path if path != "." else ctx.bin_dir.path]
    return out

def _cc_deps(ctx):
    return [dep[CcInfo] for dep in ctx.attr.deps]

def _common(ctx):
    """What every cc rule starts with: the toolchain, its features, the sources sorted out."""
    toolchain = ctx.attr._cc_toolchain[CcToolchainInfo]
    features = cc_common.configure_features(ctx = ctx, cc_toolchain = toolchain)
    srcs = []
    private_hdrs = []
    prebuilt = []
    objects = []
    for f in ctx.files.srcs:
        if _ends(f, _HEADERS):
            private_hdrs.append(f)
        elif _ends(f, _SOURCE):
            srcs.append(f)
        elif _ends(f, _OBJECTS):
            objects.append(f)
        elif _ends(f, _LIBS) or _is_shared(f):
            prebuilt.append(f)
        else:
            fail("%s: '%s' in srcs is not a C/C++ source, header, object or library" % (ctx.label, f.short_path))
    return struct(toolchain = toolchain, features = features, srcs = srcs, private_hdrs = private_hdrs, prebuilt = prebuilt, objects = objects)

def _compile(ctx, common, public_hdrs, include_prefix = "", strip_include_prefix = "", defines = [], disallow_pic_outputs = False, disallow_nopic_outputs = False):
    copts = _expand(ctx, "copts", ctx.attr.copts, ctx.attr.data + ctx.attr.deps)
    return cc_common.compile(
        actions = ctx.actions,
        feature_configuration = common.features,
        cc_toolchain = common.toolchain,
        srcs = common.srcs,
        public_hdrs = public_hdrs,
        private_hdrs = common.private_hdrs,
        textual_hdrs = getattr(ctx.files, "textual_hdrs", []),
        system_includes = _system_includes(ctx, getattr(ctx.attr, "includes", [])),
        defines = defines,
        local_defines = ctx.attr.local_defines,
        include_prefix = include_prefix,
        strip_include_prefix = strip_include_prefix,
        user_compile_flags = copts,
        compilation_contexts = [i.compilation_context for i in _cc_deps(ctx)],
        name = ctx.label.name,
        disallow_pic_outputs = disallow_pic_outputs,
        disallow_nopic_outputs = disallow_nopic_outputs,
        _label = ctx.label,
    )

def _prebuilt_libraries(common):
    """Libraries and objects given in srcs, as a library to link of their own."""
    libs = []
    for f in common.prebuilt:
        if _is_shared(f):
            libs.append(cc_common.create_library_to_link(dynamic_library = f))
        else:
            libs.append(cc_common.create_library_to_link(
                static_library = f,
                alwayslink = f.basename.endswith(".lo"),
            ))
    return libs

def _with_objects(outputs, objects):
    if not objects:
        return outputs
    return cc_common.merge_compilation_outputs(compilation_outputs = [
        outputs,
        cc_common.create_compilation_outputs(objects = depset(objects), pic_objects = depset(objects)),
    ])

def _runfiles(ctx, files):
    runfiles = ctx.runfiles(files = files + ctx.files.data)
    for dep in ctx.attr.deps + ctx.attr.data:
        runfiles = runfiles.merge(dep[DefaultInfo].default_runfiles)
    return runfiles

def _compdb_group(ctx, outputs):
    """The compile commands of this target and of its dependencies, for
    `--output_groups=compdb`: one fragment per target."""
    entries = []
    for c in cc_common.do_not_use_compilation_commands(outputs):
        entries.append({"directory": "__FORGE_EXEC_ROOT__", "file": c.file, "arguments": c.arguments, "output": c.output})
    out = ctx.actions.declare_file(ctx.label.name + ".compile_commands.json")
    ctx.actions.write(output = out, content = json.encode(entries))
    below = [dep[OutputGroupInfo].compdb for dep in ctx.attr.deps if OutputGroupInfo in dep and "compdb" in dep[OutputGroupInfo]]
    return depset([out], transitive = below)

def _cc_library_impl(ctx):
    common = _common(ctx)
    compilation_context, outputs = _compile(
        ctx,
        common,
        ctx.files.hdrs,
        include_prefix = ctx.attr.include_prefix,
        strip_include_prefix = ctx.attr.strip_include_prefix,
        defines = ctx.attr.defines,
    )
    outputs = _with_objects(outputs, common.objects)
    linkopts = _expand(ctx, "linkopts", ctx.attr.linkopts, ctx.attr.data + ctx.attr.deps + ctx.attr.additional_linker_inputs)
    linking_context, linking_outputs = cc_common.create_linking_context_from_compilation_outputs(
        actions = ctx.actions,
        feature_configuration = common.features,
        cc_toolchain = common.toolchain,
        compilation_outputs = outputs,
        user_link_flags = linkopts,
        linking_contexts = [i.linking_context for i in _cc_deps(ctx)],
        name = ctx.label.name,
        alwayslink = ctx.attr.alwayslink,
        additional_inputs = ctx.files.additional_linker_inputs,
        disallow_dynamic_library = ctx.attr.linkstatic,
        _label = ctx.label,
    )
    prebuilt = _prebuilt_libraries(common)
    if prebuilt:
        linking_context = cc_common.create_linking_context(linker_inputs = depset(
            [cc_common.create_linker_input(owner = ctx.label, libraries = depset(prebuilt))],
            transitive = [linking_context.linker_inputs],
            order = "topological",
        ))
    files = []
    lib = linking_outputs.library_to_link
    if lib:
        files = [f for f in [lib.static_library or lib.pic_static_library, lib.dynamic_library] if f]
    # A library's own shared library is in the runfiles of what links it dynamically (the
    # binary adds it), not in its own: a static link needs none.
    return [
        DefaultInfo(files = depset(files), runfiles = _runfiles(ctx, [])),
        CcInfo(compilation_context = compilation_context, linking_context = linking_context),
        OutputGroupInfo(
            compdb = _compdb_group(ctx, outputs),
            archive = depset([f for f in files if not _is_shared(f)]),
            dynamic_library = depset([f for f in files if _is_shared(f)]),
        ),
    ]

def _cc_executable_impl(ctx):
    common = _common(ctx)
    # A program needs one kind of object: PIC for a shared library, and in opt, where
    # libraries get both kinds, the other for an executable.
    compilation_context, outputs = _compile(
        ctx,
        common,
        [],
        defines = ctx.attr.defines,
        disallow_pic_outputs = ctx.var["COMPILATION_MODE"] == "opt" and not ctx.attr.linkshared,
        disallow_nopic_outputs = ctx.attr.linkshared,
    )
    outputs = _with_objects(outputs, common.objects)
    deps = _cc_deps(ctx)
    prebuilt = _prebuilt_libraries(common)
    linking_contexts = [i.linking_context for i in deps]
    if prebuilt:
        linking_contexts.append(cc_common.create_linking_context(linker_inputs = depset(
            [cc_common.create_linker_input(owner = ctx.label, libraries = depset(prebuilt))],
        )))
    linkopts = _expand(ctx, "linkopts", ctx.attr.linkopts, ctx.attr.data + ctx.attr.deps + ctx.attr.additional_linker_inputs)
    shared = ctx.attr.linkshared
    output = ctx.actions.declare_file(ctx.label.name)
    linked = cc_common.link(
        actions = ctx.actions,
        feature_configuration = common.features,
        cc_toolchain = common.toolchain,
        compilation_outputs = outputs,
        user_link_flags = linkopts,
        linking_contexts = linking_contexts,
        name = ctx.label.name,
        output_type = "dynamic_library" if shared else "executable",
        link_deps_statically = ctx.attr.linkstatic,
        additional_inputs = ctx.files.additional_linker_inputs,
        _output = output,
    )
    runfiles = _runfiles(ctx, [output] + linked._runtime_libraries)
    return [
        DefaultInfo(executable = output, files = depset([output]), runfiles = runfiles),
        CcInfo(compilation_context = compilation_context),
        OutputGroupInfo(compdb = _compdb_group(ctx, outputs)),
    ]

_COMMON_ATTRS = {
    "srcs": attr.label_list(allow_files = True),
    "deps": attr.label_list(providers = [CcInfo]),
    "data": attr.label_list(allow_files = True),
    "copts": attr.string_list(),
    "defines": attr.string_list(),
    "local_defines": attr.string_list(),
    "includes": attr.string_list(),
    "linkopts": attr.string_list(),
    "nocopts": attr.string(),
    "linkstamp": attr.label(allow_single_file = True),
    "win_def_file": attr.label(allow_single_file = True),
    "additional_linker_inputs": attr.label_list(allow_files = True),
    "_cc_toolchain": attr.label(default = _CURRENT_CC_TOOLCHAIN),
}

def _checked(impl):
    def checked(ctx):
        # win_def_file is Windows' alone: Bazel ignores it elsewhere, and so does forge.
        for name in ["nocopts", "linkstamp", "malloc"]:
            if getattr(ctx.attr, name, None):
                fail("%s: forge does not support the `%s` attribute of C++ rules yet; leave it out" % (ctx.label, name))
        return impl(ctx)
    return checked

_LIBRARY_ATTRS = dict(_COMMON_ATTRS)
_LIBRARY_ATTRS.update({
    "hdrs": attr.label_list(allow_files = True),
    "textual_hdrs": attr.label_list(allow_files = True),
    "include_prefix": attr.string(),
    "strip_include_prefix": attr.string(),
    "linkstatic": attr.bool(default = False),
    "alwayslink": attr.bool(default = False),
})

cc_library = rule(
    implementation = _checked(_cc_library_impl),
    doc = "A C/C++ library: its headers for dependents, an archive and a shared library.",
    attrs = _LIBRARY_ATTRS,
    # As Bazel's cc_library, it advertises CcInfo: aspects with required_providers see it.
    provides = [CcInfo],
)

_BINARY_ATTRS = dict(_COMMON_ATTRS)
_BINARY_ATTRS.update({
    "linkshared": attr.bool(default = False),
    "linkstatic": attr.bool(default = True),
    "malloc": attr.label(),
    "stamp": attr.int(default = -1),
})

cc_binary = rule(
    implementation = _checked(_cc_executable_impl),
    doc = "A C/C++ program (or, with linkshared, a shared library).",
    attrs = _BINARY_ATTRS,
    executable = True,
)

_TEST_ATTRS = dict(_BINARY_ATTRS)
_TEST_ATTRS.update({
    # As in Bazel, a test links its libraries dynamically unless told otherwise.
    "linkstatic": attr.bool(default = False),
})

cc_test = rule(
    implementation = _checked(_cc_executable_impl),
    doc = "A C/C++ test program run by `forge test`.",
    attrs = _TEST_ATTRS,
    test = True,
)

def _cc_import_impl(ctx):
    toolchain = ctx.attr._cc_toolchain[CcToolchainInfo]
    features = cc_common.configure_features(ctx = ctx, cc_toolchain = toolchain)
    static = ctx.file.static_library
    pic_static = ctx.file.pic_static_library
    shared = ctx.file.shared_library
    interface = ctx.file.interface_library
    if not (static or pic_static or shared or interface) and not ctx.attr.system_provided:
        fail("%s: cc_import needs one of static_library, pic_static_library, shared_library or interface_library" % ctx.label)
    if ctx.attr.system_provided and shared:
        fail("%s: 'shared_library' must not be given when 'system_provided' is True" % ctx.label)
    compilation_context, _ = cc_common.compile(
        actions = ctx.actions,
        feature_configuration = features,
        cc_toolchain = toolchain,
        public_hdrs = ctx.files.hdrs,
        system_includes = _system_includes(ctx, ctx.attr.includes),
        name = ctx.label.name,
        _label = ctx.label,
    )
    libraries = []
    if static or pic_static or shared or interface:
        libraries.append(cc_common.create_library_to_link(
            static_library = static,
            pic_static_library = pic_static,
            dynamic_library = shared,
            interface_library = interface,
            alwayslink = ctx.attr.alwayslink,
        ))
    linking_context = cc_common.create_linking_context(linker_inputs = depset([
        cc_common.create_linker_input(owner = ctx.label, libraries = depset(libraries)),
    ]))
    runtime = [shared] if shared else []
    return [
        DefaultInfo(files = depset([f for f in [static, pic_static, shared, interface] if f]), runfiles = ctx.runfiles(files = runtime)),
        CcInfo(compilation_context = compilation_context, linking_context = linking_context),
    ]

cc_import = rule(
    implementation = _cc_import_impl,
    doc = "A prebuilt C/C++ library: its headers and its archive and/or shared library.",
    attrs = {
        "hdrs": attr.label_list(allow_files = True),
        "includes": attr.string_list(),
        "static_library": attr.label(allow_single_file = [".a", ".lo", ".pic.a"]),
        "pic_static_library": attr.label(allow_single_file = [".pic.a", ".pic.lo"]),
        "shared_library": attr.label(allow_single_file = True),
        "interface_library": attr.label(allow_single_file = [".ifso", ".tbd", ".lib", ".so", ".dylib"]),
        "system_provided": attr.bool(default = False),
        "alwayslink": attr.bool(default = False),
        "data": attr.label_list(allow_files = True),
        "_cc_toolchain": attr.label(default = _CURRENT_CC_TOOLCHAIN),
    },
)

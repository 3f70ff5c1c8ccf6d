"""CcInfo, CcToolchainInfo and cc_common: the C/C++ API Starlark rules use, as Bazel 4's.

The prelude's cc_* rules (cc.bzl) are written on this same API. Command lines are those of
Bazel's auto-configured Unix toolchain (unix_cc_toolchain_config.bzl), in Bazel's order:
toolchain flags, compilation-mode flags, the language standard, dependency file, PIC,
defines, include directories, --copt and the target's copts, the source, the output, then
the unfiltered flags that make outputs reproducible.
"""

# What a cc_toolchain_config target tells its cc_toolchain: the tools and the flags.
CcToolchainConfigInfo = provider(
    doc = "The configuration of a C++ toolchain: its tools, flags and built-in include directories.",
    fields = [
        "toolchain_identifier",
        "cc",
        "cxx",
        "ar",
        "ld",
        "nm",
        "objcopy",
        "strip",
        "compiler",
        "cpu",
        "target_libc",
        "target_system_name",
        "builtin_include_directories",
        "compile_flags",
        "dbg_compile_flags",
        "opt_compile_flags",
        "cxx_flags",
        "link_flags",
        "opt_link_flags",
        "link_libs",
        "unfiltered_compile_flags",
        "detection_error",
    ],
)

CcToolchainInfo = provider(
    doc = "A C++ toolchain, as cc_toolchain returns it and find_cpp_toolchain finds it.",
    fields = [
        "compiler_executable",
        "ar_executable",
        "ld_executable",
        "nm_executable",
        "objcopy_executable",
        "objdump_executable",
        "strip_executable",
        "gcov_executable",
        "preprocessor_executable",
        "compiler",
        "cpu",
        "libc",
        "target_gnu_system_name",
        "toolchain_id",
        "sysroot",
        "all_files",
        "built_in_include_directories",
        "dynamic_runtime_lib",
        "static_runtime_lib",
        "needs_pic_for_dynamic_libraries",
        "_config",
        "_cxx_executable",
        "_compilation_mode",
        "_copts",
        "_cxxopts",
        "_conlyopts",
        "_linkopts",
        "_bin_dir",
    ],
)

# ---- Compilation and linking contexts ------------------------------------------------------

def _depset_of(value):
    if value == None:
        return depset()
    if type(value) == "depset":
        return value
    return depset(value)

def _create_compilation_context(
        headers = None,
        system_includes = None,
        includes = None,
        quote_includes = None,
        framework_includes = None,
        defines = None,
        local_defines = None,
        direct_public_headers = [],
        direct_private_headers = [],
        direct_textual_headers = []):
    return struct(
        headers = _depset_of(headers),
        system_includes = _depset_of(system_includes),
        includes = _depset_of(includes),
        quote_includes = _depset_of(quote_includes),
        framework_includes = _depset_of(framework_includes),
        defines = _depset_of(defines),
        local_defines = _depset_of(local_defines),
        direct_headers = direct_public_headers + direct_private_headers,
        direct_public_headers = direct_public_headers,
        direct_private_headers = direct_private_headers,
        direct_textual_headers = direct_textual_headers,
    )

def _merge_compilation_contexts(compilation_contexts = [], own = None):
    contexts = ([own] if own else []) + compilation_contexts
    own = own or _create_compilation_context()
    return struct(
        headers = depset(transitive = [c.headers for c in contexts]),
        system_includes = depset(transitive = [c.system_includes for c in contexts]),
        includes = depset(transitive = [c.includes for c in contexts]),
        quote_includes = depset(transitive = [c.quote_includes for c in contexts]),
        framework_includes = depset(transitive = [c.framework_includes for c in contexts]),
        defines = depset(transitive = [c.defines for c in contexts]),
        # Local defines are the target's own: never passed on.
        local_defines = own.local_defines,
        direct_headers = own.direct_headers,
        direct_public_headers = own.direct_public_headers,
        direct_private_headers = own.direct_private_headers,
        direct_textual_headers = own.direct_textual_headers,
    )

def _create_library_to_link(
        actions = None,
        feature_configuration = None,
        cc_toolchain = None,
        static_library = None,
        pic_static_library = None,
        dynamic_library = None,
        interface_library = None,
        pic_objects = None,
        objects = None,
        alwayslink = False,
        dynamic_library_symlink_path = "",
        interface_library_symlink_path = ""):
    return struct(
        static_library = static_library,
        pic_static_library = pic_static_library,
        dynamic_library = dynamic_library,
        resolved_symlink_dynamic_library = dynamic_library,
        interface_library = interface_library,
        resolved_symlink_interface_library = interface_library,
        objects = objects or [],
        pic_objects = pic_objects or [],
        alwayslink = alwayslink,
        lto_bitcode_files = [],
        pic_lto_bitcode_files = [],
    )

def _create_linker_input(owner, libraries = None, user_link_flags = None, additional_inputs = None):
    flags = []
    for f in (user_link_flags.to_list() if type(user_link_flags) == "depset" else (user_link_flags or [])):
        flags.append(f)
    return struct(
        owner = owner,
        libraries = _depset_of(libraries).to_list(),
        user_link_flags = flags,
        additional_inputs = _depset_of(additional_inputs).to_list(),
    )

def _linking_context(linker_inputs, own_inputs, below):
    """A linking context: its linker inputs, and Bazel 4's older flat views of them
    (`libraries_to_link`, `user_link_flags`, `additional_inputs`)."""
    user_link_flags = []
    for c in below:
        for f in c.user_link_flags:
            if f not in user_link_flags:
                user_link_flags.append(f)
    for i in own_inputs:
        user_link_flags += [f for f in i.user_link_flags if f not in user_link_flags]
    return struct(
        linker_inputs = linker_inputs,
        libraries_to_link = depset(
            [lib for i in own_inputs for lib in i.libraries],
            transitive = [c.libraries_to_link for c in below],
            order = "topological",
        ),
        user_link_flags = user_link_flags,
        additional_inputs = depset(
            [f for i in own_inputs for f in i.additional_inputs],
            transitive = [c.additional_inputs for c in below],
        ),
    )

def _create_linking_context(linker_inputs = None, libraries_to_link = None, user_link_flags = None, additional_inputs = None, owner = None):
    if libraries_to_link != None or user_link_flags != None or additional_inputs != None:
        if linker_inputs != None:
            fail("create_linking_context: pass either linker_inputs or the legacy libraries_to_link, user_link_flags and additional_inputs, not both")
        linker_inputs = depset([_create_linker_input(
            owner = owner,
            libraries = libraries_to_link,
            user_link_flags = user_link_flags,
            additional_inputs = additional_inputs,
        )])
    inputs = linker_inputs if type(linker_inputs) == "depset" else depset(linker_inputs or [], order = "topological")
    return _linking_context(inputs, inputs.to_list(), [])

def _merge_linking_contexts(linking_contexts = [], own_inputs = []):
    inputs = depset(
        own_inputs,
        transitive = [c.linker_inputs for c in linking_contexts],
        order = "topological",
    )
    return _linking_context(inputs, own_inputs, linking_contexts)

def _cc_info_init(compilation_context = None, linking_context = None, debug_context = None):
    return {
        "compilation_context": compilation_context or _create_compilation_context(),
        "linking_context": linking_context or _create_linking_context(),
        "debug_context": debug_context,
    }

CcInfo, _new_cc_info = provider(
    doc = "What C/C++ targets give their dependents: headers and include paths to compile with, libraries to link.",
    fields = ["compilation_context", "linking_context", "debug_context"],
    init = _cc_info_init,
)

def _merge_cc_infos(direct_cc_infos = [], cc_infos = []):
    infos = direct_cc_infos + cc_infos
    return CcInfo(
        compilation_context = struct(
            headers = depset(transitive = [i.compilation_context.headers for i in infos]),
            system_includes = depset(transitive = [i.compilation_context.system_includes for i in infos]),
            includes = depset(transitive = [i.compilation_context.includes for i in infos]),
            quote_includes = depset(transitive = [i.compilation_context.quote_includes for i in infos]),
            framework_includes = depset(transitive = [i.compilation_context.framework_includes for i in infos]),
            defines = depset(transitive = [i.compilation_context.defines for i in infos]),
            local_defines = depset(),
            direct_headers = [h for i in direct_cc_infos for h in i.compilation_context.direct_headers],
            direct_public_headers = [h for i in direct_cc_infos for h in i.compilation_context.direct_public_headers],
            direct_private_headers = [h for i in direct_cc_infos for h in i.compilation_context.direct_private_headers],
            direct_textual_headers = [h for i in direct_cc_infos for h in i.compilation_context.direct_textual_headers],
        ),
        linking_context = _merge_linking_contexts([i.linking_context for i in infos]),
    )

# ---- Features and actions ------------------------------------------------------------------

# The features of Bazel's Unix toolchain forge knows; a requested feature outside them is not
# enabled, as in Bazel for a feature the toolchain does not define.
_KNOWN_FEATURES = [
    "dbg",
    "fastbuild",
    "opt",
    "pic",
    "supports_pic",
    "supports_dynamic_linker",
    "static_linking_mode",
    "dynamic_linking_mode",
    "user_compile_flags",
    "sysroot",
    "unfiltered_compile_flags",
    "default_compile_flags",
    "default_link_flags",
    "dependency_file",
    "random_seed",
    "includes",
    "include_paths",
    "preprocessor_defines",
    "user_link_flags",
    "output_execpath_flags",
    "archiver_flags",
    "strip_debug_symbols",
    "linkstamps",
    "no_legacy_features",
]

_ENABLED_BY_DEFAULT = [
    "strip_debug_symbols",
    "supports_pic",
    "supports_dynamic_linker",
    "user_compile_flags",
    "sysroot",
    "unfiltered_compile_flags",
    "default_compile_flags",
    "default_link_flags",
    "dependency_file",
    "random_seed",
    "includes",
    "include_paths",
    "preprocessor_defines",
    "user_link_flags",
    "output_execpath_flags",
    "archiver_flags",
    "linkstamps",
]

_C_COMPILE = "c-compile"
_CPP_COMPILE = "c++-compile"
_COMPILE_ACTIONS = [
    "c-compile",
    "c++-compile",
    "c++-header-parsing",
    "c++-module-compile",
    "c++-module-codegen",
    "assemble",
    "preprocess-assemble",
    "clif-match",
    "lto-backend",
]
_LINK_ACTIONS = [
    "c++-link-executable",
    "c++-link-dynamic-library",
    "c++-link-nodeps-dynamic-library",
]
_ARCHIVE_ACTION = "c++-link-static-library"
_STRIP_ACTION = "strip"

def _configure_features(ctx = None, cc_toolchain = None, language = None, requested_features = [], unsupported_features = []):
    if cc_toolchain == None:
        fail("configure_features: cc_toolchain is required")
    mode = cc_toolchain._compilation_mode
    wanted = list(_ENABLED_BY_DEFAULT) + [mode] + list(requested_features)
    if ctx != None:
        wanted += ctx.features
        unsupported_features = list(unsupported_features) + ctx.disabled_features
    enabled = {}
    for f in wanted:
        if f in _KNOWN_FEATURES and f not in unsupported_features:
            enabled[f] = True
    return struct(
        _label = ctx.label if ctx != None else None,
        _enabled = sorted(enabled.keys()),
        _requested = list(requested_features),
        _toolchain = cc_toolchain,
    )

def _is_enabled(feature_configuration, feature_name):
    return feature_name in feature_configuration._enabled

def _action_is_enabled(feature_configuration, action_name):
    return action_name in _COMPILE_ACTIONS or action_name in _LINK_ACTIONS or action_name in [_ARCHIVE_ACTION, _STRIP_ACTION]

def _get_tool_for_action(feature_configuration, action_name):
    toolchain = feature_configuration._toolchain
    if action_name == _ARCHIVE_ACTION:
        return toolchain.ar_executable
    if action_name == _STRIP_ACTION:
        return toolchain.strip_executable
    if action_name == _CPP_COMPILE or action_name == "c++-header-parsing" or action_name == "c++-module-compile":
        return toolchain._cxx_executable
    if action_name in _COMPILE_ACTIONS or action_name in _LINK_ACTIONS:
        return toolchain.compiler_executable
    fail("get_tool_for_action: forge's C++ toolchain has no action '%s'" % action_name)

def _list_of(value):
    if value == None:
        return []
    if type(value) == "depset":
        return value.to_list()
    return list(value)

def _create_compile_variables(
        cc_toolchain,
        feature_configuration,
        source_file = None,
        output_file = None,
        user_compile_flags = None,
        include_directories = None,
        quote_include_directories = None,
        system_include_directories = None,
        framework_include_directories = None,
        preprocessor_defines = None,
        thinlto_index = None,
        thinlto_input_bitcode_file = None,
        thinlto_output_object_file = None,
        use_pic = False,
        add_legacy_cxx_options = False,
        variables_extension = None):
    return struct(
        _kind = "compile",
        source_file = source_file,
        output_file = output_file,
        dependency_file = None,
        user_compile_flags = _list_of(user_compile_flags),
        include_directories = _list_of(include_directories),
        quote_include_directories = _list_of(quote_include_directories),
        system_include_directories = _list_of(system_include_directories),
        framework_include_directories = _list_of(framework_include_directories),
        preprocessor_defines = _list_of(preprocessor_defines),
        use_pic = use_pic,
        add_legacy_cxx_options = add_legacy_cxx_options,
    )

def _create_link_variables(
        cc_toolchain,
        feature_configuration,
        library_search_directories = None,
        runtime_library_search_directories = None,
        user_link_flags = None,
        output_file = None,
        param_file = None,
        def_file = None,
        is_using_linker = True,
        is_linking_dynamic_library = False,
        must_keep_debug = True,
        use_test_only_flags = False,
        is_static_linking_mode = True):
    return struct(
        _kind = "link",
        library_search_directories = _list_of(library_search_directories),
        runtime_library_search_directories = _list_of(runtime_library_search_directories),
        user_link_flags = _list_of(user_link_flags),
        output_file = output_file,
        is_using_linker = is_using_linker,
        is_linking_dynamic_library = is_linking_dynamic_library,
    )

def _path_of(f):
    if f == None:
        return None
    if type(f) == "string":
        return f
    return f.path

def _compile_flags(feature_configuration, action_name, variables, dependency_file = None):
    """The compile command line, without the compiler."""
    toolchain = feature_configuration._toolchain
    config = toolchain._config
    mode = toolchain._compilation_mode
    enabled = feature_configuration._enabled
    is_cxx = action_name != _C_COMPILE and action_name != "assemble" and action_name != "preprocess-assemble"
    flags = []
    if "default_compile_flags" in enabled:
        flags += config.compile_flags
        if mode == "dbg":
            flags += config.dbg_compile_flags
        elif mode == "opt":
            flags += config.opt_compile_flags
        if is_cxx:
            flags += config.cxx_flags
    if dependency_file != None and "dependency_file" in enabled:
        flags += ["-MD", "-MF", _path_of(dependency_file)]
    output = _path_of(variables.output_file)
    if output != None and "random_seed" in enabled:
        flags.append("-frandom-seed=" + output)
    if variables.use_pic:
        flags.append("-fPIC")
    for d in variables.preprocessor_defines:
        flags.append("-D" + d)
    for d in variables.quote_include_directories:
        flags += ["-iquote", d]
    for d in variables.include_directories:
        flags += ["-I" + d]
    for d in variables.system_include_directories:
        flags += ["-isystem", d]
    for d in variables.framework_include_directories:
        flags += ["-F" + d]
    if "user_compile_flags" in enabled:
        flags += variables.user_compile_flags
    if variables.source_file != None:
        flags += ["-c", _path_of(variables.source_file)]
    if output != None:
        flags += ["-o", output]
    if "unfiltered_compile_flags" in enabled:
        flags += config.unfiltered_compile_flags
    return flags

def _link_flags(feature_configuration, action_name, variables):
    """The link command line, without the linker, the objects and the libraries."""
    toolchain = feature_configuration._toolchain
    config = toolchain._config
    flags = []
    if action_name != "c++-link-executable":
        flags.append("-shared")
    if variables.output_file != None:
        flags += ["-o", _path_of(variables.output_file)]

    # Bazel's --strip=sometimes (its default): fastbuild links drop debug symbols.
    if toolchain._compilation_mode == "fastbuild" and "strip_debug_symbols" in feature_configuration._enabled:
        flags.append("-Wl,-S")
    for d in variables.library_search_directories:
        flags.append("-L" + d)
    for d in variables.runtime_library_search_directories:
        flags.append("-Wl,-rpath," + d)
    flags += variables.user_link_flags
    if "default_link_flags" in feature_configuration._enabled:
        flags += config.link_flags
        if toolchain._compilation_mode == "opt":
            flags += config.opt_link_flags
        flags += config.link_libs
    return flags

def _get_memory_inefficient_command_line(feature_configuration, action_name, variables):
    if action_name in _COMPILE_ACTIONS:
        if variables._kind != "compile":
            fail("get_memory_inefficient_command_line: '%s' needs variables from create_compile_variables" % action_name)
        return _compile_flags(feature_configuration, action_name, variables)
    if action_name in _LINK_ACTIONS:
        if variables._kind != "link":
            fail("get_memory_inefficient_command_line: '%s' needs variables from create_link_variables" % action_name)
        return _link_flags(feature_configuration, action_name, variables)
    if action_name == _ARCHIVE_ACTION:
        return ["rcsD", _path_of(variables.output_file)] if variables.output_file != None else ["rcsD"]
    if action_name == _STRIP_ACTION:
        return ["-S", "-p"]
    fail("get_memory_inefficient_command_line: forge's C++ toolchain has no action '%s'" % action_name)

def _get_environment_variables(feature_configuration, action_name, variables):
    return {}

# ---- Compiling ---------------------------------------------------------------------------

_C_SOURCE = [".c"]
_CXX_SOURCE = [".cc", ".cpp", ".cxx", ".c++", ".C", ".cu", ".cl"]
_ASM_SOURCE = [".S", ".s", ".asm"]
_OBJECT = [".o", ".obj"]

def _ext(f):
    i = f.basename.rfind(".")
    return f.basename[i:] if i >= 0 else ""

def _is_source(f):
    e = _ext(f)
    return e in _C_SOURCE or e in _CXX_SOURCE or e in _ASM_SOURCE

def _repo_root(label):
    """The exec path of a label's repository: '' for the main one."""
    return "external/" + label.workspace_name if label.workspace_name else ""

def _join(*parts):
    return "/".join([p for p in parts if p])

def _package_relative(f, label):
    """The path of a file of `label`'s package relative to the package (its short path otherwise)."""
    root = _join(_repo_root(label), label.package)
    path = f.short_path
    if path.startswith("../"):
        path = "external/" + path[3:]
    if root and path.startswith(root + "/"):
        return path[len(root) + 1:]
    return None

def _object_stem(src, label, basenames):
    """`_objs/<target>/<stem>`: the source's name without extension, or its package-relative path
    when two sources share a name (as Bazel does)."""
    base = src.basename[:src.basename.rfind(".")] if "." in src.basename else src.basename
    if basenames[base] > 1:
        rel = _package_relative(src, label) or src.short_path
        return rel[:rel.rfind(".")] if "." in rel else rel
    return base

def _virtual_headers(actions, label, name, hdrs, include_prefix, strip_include_prefix, bin_dir):
    """Headers under `include_prefix`, without `strip_include_prefix`: symlinks in
    `_virtual_includes/<name>`, and that directory as an include directory."""
    if not include_prefix and not strip_include_prefix:
        return hdrs, []
    if include_prefix.startswith("/") or ".." in include_prefix.split("/"):
        fail("%s: include_prefix must be a relative path, got '%s'" % (label, include_prefix))
    strip = strip_include_prefix
    if strip.startswith("/"):
        strip = strip[1:]
    elif strip:
        strip = _join(label.package, strip)
    else:
        strip = label.package
    include_prefix = include_prefix.strip("/")
    out = []
    for h in hdrs:
        path = h.short_path
        if path.startswith("../"):
            path = path[3:].split("/", 1)[1] if "/" in path[3:] else ""
        if strip and not (path == strip or path.startswith(strip + "/")):
            fail("%s: header '%s' is not under the directory '%s' given by strip_include_prefix" % (label, h.short_path, strip))
        rel = path[len(strip) + 1:] if strip else path
        link = actions.declare_file(_join("_virtual_includes", name, include_prefix, rel))
        actions.symlink(output = link, target_file = h)
        out.append(link)
    directory = _join(bin_dir, _repo_root(label), label.package, "_virtual_includes", name)
    return out, [directory]

def _compile(
        actions,
        feature_configuration,
        cc_toolchain,
        srcs = [],
        public_hdrs = [],
        private_hdrs = [],
        includes = [],
        quote_includes = [],
        system_includes = [],
        framework_includes = [],
        defines = [],
        local_defines = [],
        include_prefix = "",
        strip_include_prefix = "",
        user_compile_flags = [],
        compilation_contexts = [],
        name = None,
        disallow_pic_outputs = False,
        disallow_nopic_outputs = False,
        additional_inputs = [],
        textual_hdrs = [],
        additional_include_scanning_roots = [],
        grep_includes = None,
        conly_flags = [],
        cxx_flags = [],
        purpose = None,
        _label = None):
    if name == None:
        fail("cc_common.compile: name is required")
    if cc_toolchain._config.detection_error:
        fail("cannot compile C/C++: " + cc_toolchain._config.detection_error)

    # The owner of the actions, for paths: configure_features(ctx = ...) recorded it; a file
    # declared here knows it otherwise.
    label = _label or feature_configuration._label
    if label == None:
        marker = actions.declare_file("_objs/%s/.forge-owner" % name)
        label = marker.owner
        actions.write(output = marker, content = "")
    bin_dir = cc_toolchain._bin_dir
    repo = _repo_root(label)

    original_public = list(public_hdrs)
    public_hdrs, virtual_dirs = _virtual_headers(
        actions,
        label,
        name,
        list(public_hdrs),
        include_prefix,
        strip_include_prefix,
        bin_dir,
    )
    own_hdrs = public_hdrs + list(private_hdrs) + list(textual_hdrs)
    own = _create_compilation_context(
        # Virtual headers are links: what they point to goes along.
        headers = depset(own_hdrs + (original_public if virtual_dirs else [])),
        includes = depset(virtual_dirs + list(includes)),
        quote_includes = depset([repo or ".", _join(bin_dir, repo)] + list(quote_includes)),
        system_includes = depset(list(system_includes)),
        framework_includes = depset(list(framework_includes)),
        defines = depset(list(defines)),
        local_defines = depset(list(local_defines)),
        direct_public_headers = public_hdrs,
        direct_private_headers = list(private_hdrs),
        direct_textual_headers = list(textual_hdrs),
    )
    merged = _merge_compilation_contexts(compilation_contexts, own)

    # The headers a compile may see: its own (the originals too, for virtual includes) and its
    # dependencies'; nothing else is in its sandbox.
    headers = depset(own_hdrs, transitive = [merged.headers])
    header_inputs = depset(list(additional_inputs), transitive = [headers])

    mode = cc_toolchain._compilation_mode
    pic = not disallow_pic_outputs and _is_enabled(feature_configuration, "supports_pic")

    # Bazel's Unix toolchain compiles PIC objects only, except in opt, where binaries get
    # objects of their own; a rule may forbid either kind.
    want_pic = pic and (mode != "opt" or not disallow_nopic_outputs)
    want_nopic = not disallow_nopic_outputs and (mode == "opt" or not pic)
    if disallow_nopic_outputs:
        want_pic = True

    basenames = {}
    for src in srcs:
        base = src.basename[:src.basename.rfind(".")] if "." in src.basename else src.basename
        basenames[base] = basenames.get(base, 0) + 1

    objects = []
    pic_objects = []
    commands = []
    preprocessor_defines = merged.defines.to_list() + merged.local_defines.to_list()
    quote_dirs = merged.quote_includes.to_list()
    include_dirs = merged.includes.to_list()
    system_dirs = merged.system_includes.to_list()
    framework_dirs = merged.framework_includes.to_list()
    for src in srcs:
        if not _is_source(src):
            if _ext(src) in _OBJECT:
                continue
            fail("%s: '%s' is not a C, C++ or assembler source file" % (label, src.short_path))
        action_name = _CPP_COMPILE
        if _ext(src) in _C_SOURCE:
            action_name = _C_COMPILE
        elif _ext(src) == ".S":
            action_name = "preprocess-assemble"
        elif _ext(src) in _ASM_SOURCE:
            action_name = "assemble"
        stem = _object_stem(src, label, basenames)
        for use_pic in ([True] if want_pic else []) + ([False] if want_nopic else []):
            suffix = ".pic" if use_pic else ""
            obj = actions.declare_file("_objs/%s/%s%s.o" % (name, stem, suffix))
            dep_file = actions.declare_file("_objs/%s/%s%s.d" % (name, stem, suffix))
            variables = _create_compile_variables(
                cc_toolchain,
                feature_configuration,
                source_file = src,
                output_file = obj,
                # --copt, then --cxxopt or --conlyopt, then the rule's: Bazel's order.
                user_compile_flags = (
                    cc_toolchain._copts +
                    (cc_toolchain._conlyopts if action_name == _C_COMPILE else cc_toolchain._cxxopts) +
                    list(user_compile_flags) +
                    (list(conly_flags) if action_name == _C_COMPILE else list(cxx_flags))
                ),
                include_directories = include_dirs,
                quote_include_directories = quote_dirs,
                system_include_directories = system_dirs,
                framework_include_directories = framework_dirs,
                preprocessor_defines = preprocessor_defines,
                use_pic = use_pic,
            )
            tool = _get_tool_for_action(feature_configuration, action_name)
            arguments = _compile_flags(feature_configuration, action_name, variables, dependency_file = dep_file)
            actions.run(
                executable = tool,
                arguments = arguments,
                inputs = depset([src], transitive = [header_inputs]),
                outputs = [obj, dep_file],
                # The headers the .d file does not list are left out of the action's key, as
                # Bazel does: a header change recompiles only what includes it.
                dependency_file = dep_file,
                discoverable_inputs = headers,
                mnemonic = "CppCompile",
                progress_message = "Compiling %s" % src.short_path,
            )
            commands.append(struct(file = src.path, arguments = [tool] + arguments, output = obj.path))
            if use_pic:
                pic_objects.append(obj)
            else:
                objects.append(obj)
    for src in srcs:
        if _ext(src) in _OBJECT:
            objects.append(src)
            pic_objects.append(src)

    compilation_outputs = struct(
        objects = objects,
        pic_objects = pic_objects,
        _commands = commands,
    )
    return merged, compilation_outputs

def _create_compilation_outputs(objects = None, pic_objects = None):
    return struct(objects = _list_of(objects), pic_objects = _list_of(pic_objects), _commands = [])

def _merge_compilation_outputs(compilation_outputs = []):
    return struct(
        objects = [o for c in compilation_outputs for o in c.objects],
        pic_objects = [o for c in compilation_outputs for o in c.pic_objects],
        _commands = [x for c in compilation_outputs for x in getattr(c, "_commands", [])],
    )

# ---- Linking -----------------------------------------------------------------------------

def _archive(actions, feature_configuration, cc_toolchain, output, objects):
    tool = _get_tool_for_action(feature_configuration, _ARCHIVE_ACTION)
    args = actions.args()
    args.add("rcsD")
    args.add(output)
    args.add_all(objects)
    actions.run(
        executable = tool,
        arguments = [args],
        inputs = objects,
        outputs = [output],
        mnemonic = "CppArchive",
        progress_message = "Linking %s" % output.short_path,
    )

def _create_linking_context_from_compilation_outputs(
        actions,
        feature_configuration,
        cc_toolchain,
        compilation_outputs,
        user_link_flags = [],
        linking_contexts = [],
        name = None,
        language = "c++",
        alwayslink = False,
        additional_inputs = [],
        disallow_static_libraries = False,
        disallow_dynamic_library = False,
        grep_includes = None,
        _label = None,
        _test_only = False):
    """A library's archives (lib<name>.a, lib<name>.pic.a in opt) and shared library
    (lib<name>.so) with the linking context that passes them on."""
    if name == None:
        fail("create_linking_context_from_compilation_outputs: name is required")
    objects = compilation_outputs.objects
    pic_objects = compilation_outputs.pic_objects
    static_library = None
    pic_static_library = None
    dynamic_library = None
    ext = ".lo" if alwayslink else ".a"
    if not disallow_static_libraries and (objects or pic_objects):
        if objects:
            static_library = actions.declare_file("lib%s%s" % (name, ext))
            _archive(actions, feature_configuration, cc_toolchain, static_library, objects)
            if pic_objects and pic_objects != objects:
                pic_static_library = actions.declare_file("lib%s.pic%s" % (name, ext))
                _archive(actions, feature_configuration, cc_toolchain, pic_static_library, pic_objects)
        else:
            # PIC objects only (every mode but opt): one archive, usable by shared links too.
            static_library = actions.declare_file("lib%s%s" % (name, ext))
            _archive(actions, feature_configuration, cc_toolchain, static_library, pic_objects)
            pic_static_library = static_library
    if not disallow_dynamic_library and pic_objects:
        dynamic_library = actions.declare_file("lib%s.so" % name)
        _link_action(
            actions,
            feature_configuration,
            cc_toolchain,
            output = dynamic_library,
            action_name = "c++-link-nodeps-dynamic-library",
            objects = pic_objects,
            linker_inputs = [],
            user_link_flags = list(user_link_flags),
            link_deps_statically = True,
            extra_inputs = list(additional_inputs),
        )
    owner = _label
    if owner == None and (static_library or dynamic_library):
        owner = (static_library or dynamic_library).owner
    libraries = []
    if static_library or dynamic_library:
        libraries.append(_create_library_to_link(
            static_library = static_library if objects else None,
            pic_static_library = pic_static_library,
            dynamic_library = dynamic_library,
            objects = objects,
            pic_objects = pic_objects,
            alwayslink = alwayslink,
        ))
    own = _create_linker_input(
        owner = owner,
        libraries = libraries,
        user_link_flags = user_link_flags,
        additional_inputs = additional_inputs,
    )
    linking_context = _merge_linking_contexts(linking_contexts, [own])
    linking_outputs = struct(
        library_to_link = libraries[0] if libraries else None,
        executable = None,
    )
    return linking_context, linking_outputs

def _library_for(lib, link_statically, for_shared):
    """The file to link of a library: (file, is_static)."""
    static = (lib.pic_static_library or lib.static_library) if for_shared else (lib.static_library or lib.pic_static_library)
    dynamic = lib.dynamic_library or lib.interface_library
    if link_statically and static:
        return static, True
    if dynamic:
        return dynamic, False
    return static, True

def _link_action(
        actions,
        feature_configuration,
        cc_toolchain,
        output,
        action_name,
        objects,
        linker_inputs,
        user_link_flags,
        link_deps_statically,
        extra_inputs = []):
    """Registers one link of `objects` and the libraries of `linker_inputs`; the dynamic
    libraries the output needs at run time."""
    for_shared = action_name != "c++-link-executable"
    libraries = []
    flags = []
    inputs = list(objects) + list(extra_inputs)
    dynamic = []
    for linker_input in linker_inputs:
        for lib in linker_input.libraries:
            f, is_static = _library_for(lib, link_deps_statically, for_shared)
            if f == None:
                continue
            inputs.append(f)
            if is_static and lib.alwayslink:
                libraries += ["-Wl,-whole-archive", f.path, "-Wl,-no-whole-archive"]
            elif is_static:
                libraries.append(f.path)
            else:
                # By name, so that the output needs the library by its file name (found
                # through the rpath below) rather than by the path it was linked from.
                libraries += ["-L" + f.dirname, "-l:" + f.basename]
            if not is_static:
                dynamic.append(f)
        flags += linker_input.user_link_flags
        inputs += linker_input.additional_inputs

    # A dynamic library is found at run time next to where it was built, from the output's
    # directory: the same relative path holds in the output tree and in runfiles trees.
    rpaths = []
    out_dir = output.dirname
    depth = len(out_dir.split("/"))
    for lib in dynamic:
        rel = "/".join([".."] * depth) + "/" + lib.dirname
        rpath = "$ORIGIN/" + rel
        if rpath not in rpaths:
            rpaths.append(rpath)
    variables = _create_link_variables(
        cc_toolchain,
        feature_configuration,
        runtime_library_search_directories = rpaths,
        user_link_flags = cc_toolchain._linkopts + flags + list(user_link_flags),
        output_file = output,
        is_linking_dynamic_library = for_shared,
    )
    tool = _get_tool_for_action(feature_configuration, action_name)
    link_flags = _link_flags(feature_configuration, action_name, variables)

    # Bazel's order: output and options, then objects and libraries, then the default flags
    # and system libraries (which _link_flags puts last).
    head = link_flags[:link_flags.index("-o") + 2] if "-o" in link_flags else []
    tail = link_flags[len(head):]
    args = actions.args()
    args.add_all(head)
    args.add_all([o.path for o in objects])
    args.add_all(libraries)
    args.add_all(tail)
    args.use_param_file("@%s", use_always = False)
    actions.run(
        executable = tool,
        arguments = [args],
        inputs = depset(inputs),
        outputs = [output],
        mnemonic = "CppLink",
        progress_message = "Linking %s" % output.short_path,
    )
    return dynamic

def _link(
        actions,
        feature_configuration,
        cc_toolchain,
        compilation_outputs = None,
        user_link_flags = [],
        linking_contexts = [],
        name = None,
        language = "c++",
        output_type = "executable",
        link_deps_statically = True,
        stamp = 0,
        additional_inputs = [],
        grep_includes = None,
        additional_outputs = [],
        _output = None):
    if name == None:
        fail("cc_common.link: name is required")
    if additional_outputs:
        fail("forge does not support `additional_outputs` of cc_common.link yet; leave it out")
    if output_type not in ["executable", "dynamic_library"]:
        fail("cc_common.link: output_type must be 'executable' or 'dynamic_library', got '%s'" % output_type)
    compilation_outputs = compilation_outputs or _create_compilation_outputs()
    shared = output_type == "dynamic_library"
    objects = compilation_outputs.pic_objects if (shared or not compilation_outputs.objects) else compilation_outputs.objects
    if shared and not objects:
        objects = compilation_outputs.objects
    output = _output or actions.declare_file(name if not shared or name.endswith(".so") else "lib%s.so" % name)
    linker_inputs = []
    for c in linking_contexts:
        linker_inputs += c.linker_inputs.to_list()
    dynamic = _link_action(
        actions,
        feature_configuration,
        cc_toolchain,
        output = output,
        action_name = "c++-link-dynamic-library" if shared else "c++-link-executable",
        objects = objects,
        linker_inputs = linker_inputs,
        user_link_flags = user_link_flags,
        link_deps_statically = link_deps_statically,
        extra_inputs = _list_of(additional_inputs),
    )
    return struct(
        executable = None if shared else output,
        library_to_link = _create_library_to_link(dynamic_library = output) if shared else None,
        _runtime_libraries = dynamic,
    )

def _get_compilation_commands(compilation_outputs):
    return compilation_outputs._commands

cc_common = struct(
    CcToolchainInfo = CcToolchainInfo,
    action_is_enabled = _action_is_enabled,
    compile = _compile,
    configure_features = _configure_features,
    create_cc_toolchain_config_info = lambda **kwargs: fail("forge does not support `cc_common.create_cc_toolchain_config_info` yet: declare a toolchain with @bazel_tools//tools/cpp:cc_toolchain_config.bzl's cc_toolchain_config"),
    create_compilation_context = _create_compilation_context,
    create_compilation_outputs = _create_compilation_outputs,
    create_compile_variables = _create_compile_variables,
    create_library_to_link = _create_library_to_link,
    create_link_variables = _create_link_variables,
    create_linker_input = _create_linker_input,
    create_linking_context = _create_linking_context,
    create_linking_context_from_compilation_outputs = _create_linking_context_from_compilation_outputs,
    get_environment_variables = _get_environment_variables,
    get_execution_requirements = lambda feature_configuration, action_name: [],
    get_memory_inefficient_command_line = _get_memory_inefficient_command_line,
    get_tool_for_action = _get_tool_for_action,
    is_enabled = _is_enabled,
    link = _link,
    merge_cc_infos = _merge_cc_infos,
    merge_compilation_contexts = lambda compilation_contexts = []: _merge_compilation_contexts(compilation_contexts),
    merge_compilation_outputs = _merge_compilation_outputs,
    merge_linking_contexts = lambda linking_contexts = []: _merge_linking_contexts(linking_contexts),
    do_not_use_compilation_commands = _get_compilation_commands,
)

"""The names of C++ actions, for cc_common.get_tool_for_action and friends."""

C_COMPILE_ACTION_NAME = "c-compile"
CPP_COMPILE_ACTION_NAME = "c++-compile"
LINKSTAMP_COMPILE_ACTION_NAME = "linkstamp-compile"
CC_FLAGS_MAKE_VARIABLE_ACTION_NAME = "cc-flags-make-variable"
CPP_MODULE_CODEGEN_ACTION_NAME = "c++-module-codegen"
CPP_HEADER_PARSING_ACTION_NAME = "c++-header-parsing"
CPP_MODULE_COMPILE_ACTION_NAME = "c++-module-compile"
ASSEMBLE_ACTION_NAME = "assemble"
PREPROCESS_ASSEMBLE_ACTION_NAME = "preprocess-assemble"
LTO_INDEXING_ACTION_NAME = "lto-indexing"
LTO_BACKEND_ACTION_NAME = "lto-backend"
CPP_LINK_EXECUTABLE_ACTION_NAME = "c++-link-executable"
CPP_LINK_DYNAMIC_LIBRARY_ACTION_NAME = "c++-link-dynamic-library"
CPP_LINK_NODEPS_DYNAMIC_LIBRARY_ACTION_NAME = "c++-link-nodeps-dynamic-library"
CPP_LINK_STATIC_LIBRARY_ACTION_NAME = "c++-link-static-library"
STRIP_ACTION_NAME = "strip"
OBJ_COPY_ACTION_NAME = "objcopy_embed_data"
LD_EMBED_DATA_ACTION_NAME = "ld_embed_data"
CLIF_MATCH_ACTION_NAME = "clif-match"

ACTION_NAMES = struct(
    c_compile = C_COMPILE_ACTION_NAME,
    cpp_compile = CPP_COMPILE_ACTION_NAME,
    linkstamp_compile = LINKSTAMP_COMPILE_ACTION_NAME,
    cc_flags_make_variable = CC_FLAGS_MAKE_VARIABLE_ACTION_NAME,
    cpp_module_codegen = CPP_MODULE_CODEGEN_ACTION_NAME,
    cpp_header_parsing = CPP_HEADER_PARSING_ACTION_NAME,
    cpp_module_compile = CPP_MODULE_COMPILE_ACTION_NAME,
    assemble = ASSEMBLE_ACTION_NAME,
    preprocess_assemble = PREPROCESS_ASSEMBLE_ACTION_NAME,
    lto_indexing = LTO_INDEXING_ACTION_NAME,
    lto_backend = LTO_BACKEND_ACTION_NAME,
    cpp_link_executable = CPP_LINK_EXECUTABLE_ACTION_NAME,
    cpp_link_dynamic_library = CPP_LINK_DYNAMIC_LIBRARY_ACTION_NAME,
    cpp_link_nodeps_dynamic_library = CPP_LINK_NODEPS_DYNAMIC_LIBRARY_ACTION_NAME,
    cpp_link_static_library = CPP_LINK_STATIC_LIBRARY_ACTION_NAME,
    strip = STRIP_ACTION_NAME,
    objcopy_embed_data = OBJ_COPY_ACTION_NAME,
    ld_embed_data = LD_EMBED_DATA_ACTION_NAME,
    clif_match = CLIF_MATCH_ACTION_NAME,
)

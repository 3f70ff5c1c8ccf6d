"""The `native` struct: Bazel macros call built-in rules and functions as `native.<name>`."""

native = struct(
    alias = alias,
    config_setting = config_setting,
    constraint_setting = constraint_setting,
    constraint_value = constraint_value,
    exports_files = exports_files,
    filegroup = filegroup,
    genrule = genrule,
    glob = glob,
    licenses = licenses,
    package_group = package_group,
    package_name = package_name,
    py_binary = py_binary,
    py_library = py_library,
    py_test = py_test,
    repository_name = repository_name,
    sh_binary = sh_binary,
    sh_library = sh_library,
    sh_test = sh_test,
    test_suite = test_suite,
    toolchain_type = toolchain_type,
)

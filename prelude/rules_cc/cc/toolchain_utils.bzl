"""find_cpp_toolchain, as @rules_cc//cc:toolchain_utils.bzl names it."""

load("@bazel_tools//tools/cpp:toolchain_utils.bzl", _find_cpp_toolchain = "find_cpp_toolchain")

find_cpp_toolchain = _find_cpp_toolchain

"""Hands forge's built-in `py_runtime_pair` (prelude/python.bzl) to toolchain.bzl, which
re-exports it under the same name, as Bazel's toolchain.bzl defines it."""

PRELUDE_PY_RUNTIME_PAIR = py_runtime_pair

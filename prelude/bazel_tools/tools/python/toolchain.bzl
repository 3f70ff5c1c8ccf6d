"""@bazel_tools//tools/python:toolchain.bzl, written by forge: `py_runtime_pair`.

In Bazel a `py_runtime_pair` target is a Python toolchain: it pairs a Python 2 and a Python 3
`py_runtime` and is handed to `toolchain(toolchain_type = "@bazel_tools//tools/python:toolchain_type")`.
rules_python's `defs.bzl` loads and re-exports it. This is forge's built-in rule (see
prelude/python.bzl); forge's `py_binary` runs `python3` from PATH and does not resolve it.
"""

load(":private_prelude.bzl", "PRELUDE_PY_RUNTIME_PAIR")

py_runtime_pair = PRELUDE_PY_RUNTIME_PAIR

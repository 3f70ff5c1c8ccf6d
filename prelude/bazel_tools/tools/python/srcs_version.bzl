"""@bazel_tools//tools/python:srcs_version.bzl, written by forge.

Bazel defines `find_requirements` here: an aspect reporting which transitive dependencies of
a Python target make it Python 2 or Python 3 only. rules_python's `defs.bzl` loads and
re-exports it, so it must exist for those rules to load.

forge has no aspects yet: `attr.label(aspects = [...])` is refused, and there is no
`--aspects` flag. `find_requirements` is therefore a plain value naming what it stands for;
loading and re-exporting it works as in Bazel, and applying it is refused by forge's refusal
of aspects, with that message.
"""

find_requirements = struct(
    aspect = "find_requirements",
    defined_in = "@bazel_tools//tools/python:srcs_version.bzl",
)

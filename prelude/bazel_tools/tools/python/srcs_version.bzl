"""@bazel_tools//tools/python:srcs_version.bzl, written by forge.

Bazel defines `find_requirements` here: an aspect reporting which transitive dependencies of
a Python target make it Python 2 or Python 3 only. rules_python's `defs.bzl` loads and
re-exports it, so it must exist for those rules to load.

forge declares it as the aspect it is, propagating along `deps`; it returns nothing, as
forge has no Python 2 to tell apart.
"""

def _find_requirements_impl(target, ctx):
    return []

find_requirements = aspect(
    implementation = _find_requirements_impl,
    attr_aspects = ["deps"],
)

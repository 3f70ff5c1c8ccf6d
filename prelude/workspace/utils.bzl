"""@bazel_tools//tools/build_defs/repo:utils.bzl as forge serves it to WORKSPACE."""

def maybe(repo_rule, name, **kwargs):
    """Declares repository `name` with `repo_rule`, unless one of that name is declared already.

    Args:
      repo_rule: the repository rule (http_archive, local_repository, ...).
      name: the repository's name.
      **kwargs: the rule's other arguments.
    """
    if not native.existing_rule(name):
        repo_rule(name = name, **kwargs)

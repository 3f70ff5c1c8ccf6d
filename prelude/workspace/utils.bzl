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

# The rest of Bazel's utils.bzl helps repository rules written in Starlark (they take a
# repository_ctx), which forge cannot run. They are here so that a .bzl file defining such a
# rule can be loaded; the rule itself is refused when WORKSPACE calls it.

def _unsupported(name):
    fail("forge does not support `%s` from @bazel_tools//tools/build_defs/repo:utils.bzl: " % name +
         "it serves repository rules written in Starlark (repository_rule), which forge cannot run")

def workspace_and_buildfile(ctx):
    _unsupported("workspace_and_buildfile")

def patch(ctx, patches = None, patch_cmds = None, patch_cmds_win = None, patch_tool = None, patch_args = None, auth = None):
    _unsupported("patch")

def update_attrs(orig, keys, override):
    _unsupported("update_attrs")

def read_netrc(ctx, filename):
    _unsupported("read_netrc")

def use_netrc(netrc, urls, patterns):
    _unsupported("use_netrc")

def read_user_netrc(ctx):
    _unsupported("read_user_netrc")

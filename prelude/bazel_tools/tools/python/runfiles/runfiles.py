"""Finds the runfiles of a Bazel-built (here: forge-built) program, written by forge.

The interface is Bazel's (@bazel_tools//tools/python/runfiles):

    from bazel_tools.tools.python.runfiles import runfiles

    r = runfiles.Create()
    with open(r.Rlocation("my_workspace/path/to/data.txt")) as f:
        ...
    env = dict(os.environ)
    env.update(r.EnvVars())  # for a subprocess that needs runfiles too

`Create` reads RUNFILES_MANIFEST_FILE (a manifest: one "runfiles-path real-path" line per
file) or, failing that, RUNFILES_DIR (a runfiles tree), from `env` or os.environ; it returns
None when neither is set. Paths given to `Rlocation` are runfiles paths: "<repository>/<path>".
"""

import os


def Create(env=None):
    """A Runfiles for this process, or None when no runfiles are known."""
    env_map = os.environ if env is None else env
    manifest = env_map.get("RUNFILES_MANIFEST_FILE")
    if manifest:
        return CreateManifestBased(manifest)
    directory = env_map.get("RUNFILES_DIR")
    if directory:
        return CreateDirectoryBased(directory)
    return None


def CreateManifestBased(manifest_path):
    return _Runfiles(_ManifestBased(manifest_path))


def CreateDirectoryBased(runfiles_dir_path):
    return _Runfiles(_DirectoryBased(runfiles_dir_path))


class _Runfiles(object):
    """Looks runfiles up by their runfiles path."""

    def __init__(self, strategy):
        self._strategy = strategy

    def Rlocation(self, path):
        """The real path of runfile `path`, or None when a manifest does not list it.

        An absolute `path` is returned as it is. A path that is empty, starts with "../",
        holds "/.." or "./" segments, or "//", is refused with ValueError, as Bazel's does.
        """
        if not path:
            raise ValueError("path must not be empty")
        if not isinstance(path, str):
            raise TypeError("path must be a str, got %s" % type(path).__name__)
        if (path.startswith("../") or "/.." in path or path.startswith("./")
                or "/./" in path or path.endswith("/.") or "//" in path):
            raise ValueError('path is not normalized: "%s"' % path)
        if path.startswith("\\"):
            raise ValueError('path is absolute without a drive letter: "%s"' % path)
        if os.path.isabs(path):
            return path
        return self._strategy.RlocationChecked(path)

    def EnvVars(self):
        """The environment variables a subprocess needs to find the same runfiles."""
        return self._strategy.EnvVars()


class _ManifestBased(object):
    """Runfiles listed in a manifest file."""

    def __init__(self, path):
        if not path:
            raise ValueError("the manifest path must not be empty")
        self._path = path
        self._runfiles = _ReadManifest(path)

    def RlocationChecked(self, path):
        found = self._runfiles.get(path)
        if found is not None:
            return found
        # A file inside a directory the manifest lists.
        prefix = path
        while "/" in prefix:
            prefix = prefix.rsplit("/", 1)[0]
            base = self._runfiles.get(prefix)
            if base:
                return base + path[len(prefix):]
        return None

    def _RunfilesDir(self):
        # "<dir>/MANIFEST" and "<binary>.runfiles_manifest" both sit beside a tree.
        if self._path.endswith("/MANIFEST") or self._path.endswith("\\MANIFEST"):
            return self._path[: -len("/MANIFEST")]
        if self._path.endswith(".runfiles_manifest"):
            return self._path[: -len("_manifest")]
        return ""

    def EnvVars(self):
        directory = self._RunfilesDir()
        return {
            "RUNFILES_MANIFEST_FILE": self._path,
            "RUNFILES_DIR": directory,
            "JAVA_RUNFILES": directory,
        }


def _ReadManifest(path):
    result = {}
    with open(path, "r") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            key, sep, value = line.partition(" ")
            result[key] = value if sep else ""
    return result


class _DirectoryBased(object):
    """Runfiles in a runfiles tree."""

    def __init__(self, path):
        if not path:
            raise ValueError("the runfiles directory must not be empty")
        self._dir = path

    def RlocationChecked(self, path):
        return os.path.join(self._dir, path)

    def EnvVars(self):
        return {"RUNFILES_DIR": self._dir, "JAVA_RUNFILES": self._dir}

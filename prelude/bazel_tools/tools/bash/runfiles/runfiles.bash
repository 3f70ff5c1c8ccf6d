# runfiles.bash: forge's implementation of the Bash runfiles library that Bazel ships as
# @bazel_tools//tools/bash/runfiles, with the same interface.
#
# A script that depends on "@bazel_tools//tools/bash/runfiles" sources this file with the
# usual initialisation snippet (it finds this file through RUNFILES_DIR, RUNFILES_MANIFEST_FILE
# or the script's own "<script>.runfiles" tree or manifest), for example:
#
#   # --- begin runfiles.bash initialization v3 ---
#   set -uo pipefail; set +e; f=bazel_tools/tools/bash/runfiles/runfiles.bash
#   source "${RUNFILES_DIR:-/dev/null}/$f" 2>/dev/null || \
#     source "$(grep -sm1 "^$f " "${RUNFILES_MANIFEST_FILE:-/dev/null}" | cut -f2- -d' ')" 2>/dev/null || \
#     source "$0.runfiles/$f" 2>/dev/null || \
#     source "$(grep -sm1 "^$f " "$0.runfiles_manifest" | cut -f2- -d' ')" 2>/dev/null || \
#     { echo>&2 "ERROR: cannot find $f"; exit 1; }; f=; set -e
#   # --- end runfiles.bash initialization v3 ---
#
# and then calls:
#
#   rlocation RUNFILES_PATH   prints the path of a runfile, given as "<repository>/<path>"
#                             (e.g. "my_ws/pkg/data.txt"); an absolute path is printed as
#                             it is. When there is no such runfile it prints nothing, and
#                             fails unless the lookup went through a manifest (Bazel's
#                             library behaves so, and scripts written for it may rely on it).
#   runfiles_export_envvars   exports RUNFILES_DIR and RUNFILES_MANIFEST_FILE (and
#                             JAVA_RUNFILES when it found the directory from the manifest)
#                             so that a program this script starts finds the same runfiles.
#
# Where the runfiles are: RUNFILES_DIR (a directory tree of the runfiles) or
# RUNFILES_MANIFEST_FILE (a file of "<runfiles path> <absolute path>" lines), as the build
# tool sets them for `run` and `test`; TEST_SRCDIR, which tests also get, stands for
# RUNFILES_DIR. When none is set, "$0.runfiles_manifest", "$0.runfiles/MANIFEST" or the tree
# "$0.runfiles" is used, and the result is exported so that child processes agree.
#
# RUNFILES_LIB_DEBUG=1 makes every lookup explain itself on stderr.

if [[ ! -d "${RUNFILES_DIR:-/dev/null}" && ! -f "${RUNFILES_MANIFEST_FILE:-/dev/null}" ]]; then
  if [[ -d "${TEST_SRCDIR:-/dev/null}" ]]; then
    export RUNFILES_DIR="$TEST_SRCDIR"
  else
    # Both when both exist: the tree's relative links also work where the manifest's
    # absolute paths are not visible (a sandbox), the manifest where there is no tree.
    if [[ -d "$0.runfiles" ]]; then
      export RUNFILES_DIR="$0.runfiles"
    fi
    if [[ -f "$0.runfiles_manifest" ]]; then
      export RUNFILES_MANIFEST_FILE="$0.runfiles_manifest"
    elif [[ -f "$0.runfiles/MANIFEST" ]]; then
      export RUNFILES_MANIFEST_FILE="$0.runfiles/MANIFEST"
    fi
  fi
fi

# Prints its arguments on stderr, prefixed, when RUNFILES_LIB_DEBUG is 1.
function __runfiles_debug() {
  if [[ "${RUNFILES_LIB_DEBUG:-}" == 1 ]]; then
    echo >&2 "INFO[runfiles.bash]: $*"
  fi
}

# Prints the target the manifest gives for runfiles path $1 (a line "$1 <target>"), or
# nothing. The comparison is on the exact text: no character of $1 is a pattern.
function __runfiles_manifest_entry() {
  __RUNFILES_KEY="$1 " awk '
    index($0, ENVIRON["__RUNFILES_KEY"]) == 1 {
      print substr($0, length(ENVIRON["__RUNFILES_KEY"]) + 1)
      exit
    }' "$RUNFILES_MANIFEST_FILE"
}

# Looks $1 up in the manifest: its own line, or else the line of the nearest directory
# above it that is itself a runfile (a tree artifact is listed as one entry).
function __runfiles_from_manifest() {
  local path="$1"
  local target
  target="$(__runfiles_manifest_entry "$path")"
  if [[ -n "$target" ]]; then
    echo "$target"
    return 0
  fi
  local prefix="$path"
  while [[ "$prefix" == */* ]]; do
    prefix="${prefix%/*}"
    target="$(__runfiles_manifest_entry "$prefix")"
    if [[ -n "$target" ]]; then
      echo "$target/${path#"$prefix"/}"
      return 0
    fi
  done
  return 1
}

function rlocation() {
  if [[ $# -ne 1 ]]; then
    echo >&2 "ERROR[runfiles.bash]: rlocation takes one argument, a runfiles path; got $#"
    return 1
  fi
  local path="$1"
  __runfiles_debug "rlocation($path): start"
  if [[ "$path" == /* || "$path" =~ ^[a-zA-Z]:[/\\] ]]; then
    # Already absolute: nothing to look up.
    echo "$path"
    return 0
  fi
  # Mistakes and misses are reported on stderr only with RUNFILES_LIB_DEBUG=1, as by
  # Bazel's library: scripts probe for optional runfiles and expect silence.
  if [[ -z "$path" || "$path" == ../* || "$path" == */.. || "$path" == ./* ||
        "$path" == */./* || "$path" == */. || "$path" == *//* || "$path" == */ ]]; then
    __runfiles_debug "rlocation($path): path is not normalized"
    return 1
  fi
  if [[ "$path" == \\* ]]; then
    __runfiles_debug "rlocation($path): absolute path without drive name"
    return 1
  fi
  if [[ -d "${RUNFILES_DIR:-/dev/null}" && -e "$RUNFILES_DIR/$path" ]]; then
    __runfiles_debug "rlocation($path): found under RUNFILES_DIR ($RUNFILES_DIR)"
    echo "$RUNFILES_DIR/$path"
    return 0
  fi
  if [[ -f "${RUNFILES_MANIFEST_FILE:-/dev/null}" ]]; then
    local target
    if target="$(__runfiles_from_manifest "$path")" && [[ -e "$target" ]]; then
      __runfiles_debug "rlocation($path): found in the manifest ($RUNFILES_MANIFEST_FILE)"
      echo "$target"
    else
      # Bazel's library answers a miss in a manifest with an empty line and success
      # (and a miss in a directory with failure); scripts written for it may rely on that.
      __runfiles_debug "rlocation($path): not found in the manifest ($RUNFILES_MANIFEST_FILE)"
      echo ""
    fi
    return 0
  fi
  __runfiles_debug "rlocation($path): not found (RUNFILES_DIR=\"${RUNFILES_DIR:-}\", RUNFILES_MANIFEST_FILE=\"${RUNFILES_MANIFEST_FILE:-}\")"
  return 1
}
export -f __runfiles_debug __runfiles_manifest_entry __runfiles_from_manifest rlocation

function runfiles_export_envvars() {
  if [[ ! -f "${RUNFILES_MANIFEST_FILE:-/dev/null}" && ! -d "${RUNFILES_DIR:-/dev/null}" ]]; then
    # Neither is known: there is nothing to pass on.
    return 1
  fi
  if [[ ! -f "${RUNFILES_MANIFEST_FILE:-/dev/null}" ]]; then
    # A tree: its manifest is inside it or next to it.
    if [[ -f "$RUNFILES_DIR/MANIFEST" ]]; then
      export RUNFILES_MANIFEST_FILE="$RUNFILES_DIR/MANIFEST"
    elif [[ -f "${RUNFILES_DIR}_manifest" ]]; then
      export RUNFILES_MANIFEST_FILE="${RUNFILES_DIR}_manifest"
    else
      export RUNFILES_MANIFEST_FILE=
    fi
  elif [[ ! -d "${RUNFILES_DIR:-/dev/null}" ]]; then
    # A manifest: the tree is the directory it is in, or the one its name is made from.
    if [[ "$RUNFILES_MANIFEST_FILE" == */MANIFEST && -d "${RUNFILES_MANIFEST_FILE%/MANIFEST}" ]]; then
      export RUNFILES_DIR="${RUNFILES_MANIFEST_FILE%/MANIFEST}"
      export JAVA_RUNFILES="$RUNFILES_DIR"
    elif [[ "$RUNFILES_MANIFEST_FILE" == *_manifest && -d "${RUNFILES_MANIFEST_FILE%_manifest}" ]]; then
      export RUNFILES_DIR="${RUNFILES_MANIFEST_FILE%_manifest}"
      export JAVA_RUNFILES="$RUNFILES_DIR"
    else
      export RUNFILES_DIR=
    fi
  fi
}
export -f runfiles_export_envvars

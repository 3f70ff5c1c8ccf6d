"""py_library, py_binary and py_test."""

def _py_runfiles(ctx, extra = []):
    runfiles = ctx.runfiles(files = ctx.files.srcs + ctx.files.data + extra)
    for dep in ctx.attr.deps + ctx.attr.data:
        runfiles = runfiles.merge(dep[DefaultInfo].default_runfiles)
    return runfiles

def _py_library_impl(ctx):
    return [DefaultInfo(files = depset(ctx.files.srcs), runfiles = _py_runfiles(ctx))]

# The launcher finds its runfiles tree next to itself (or through RUNFILES_DIR), puts the
# workspace root, every external repository root and `imports` on PYTHONPATH, and runs main.
_LAUNCHER = """#!/usr/bin/env python3
import os, sys
here = os.path.abspath(sys.argv[0])
runfiles = os.environ.get("RUNFILES_DIR") or here + ".runfiles"
while not os.path.isdir(runfiles) and ".runfiles" in here:
    runfiles = here[:here.rindex(".runfiles") + len(".runfiles")]
    break
os.environ["RUNFILES_DIR"] = runfiles
roots = [os.path.join(runfiles, d) for d in sorted(os.listdir(runfiles)) if os.path.isdir(os.path.join(runfiles, d))]
imports = [os.path.join(runfiles, "{workspace}", i) for i in "{imports}".split(":") if i]
path = [os.path.join(runfiles, "{workspace}")] + roots + imports
old = os.environ.get("PYTHONPATH")
os.environ["PYTHONPATH"] = os.pathsep.join(path + ([old] if old else []))
main = os.path.join(runfiles, "{workspace}", "{main}")
os.execv(sys.executable, [sys.executable, main] + sys.argv[1:])
"""

def _main_file(ctx):
    if ctx.file.main:
        return ctx.file.main
    wanted = ctx.label.name + ".py"
    for src in ctx.files.srcs:
        if src.basename == wanted:
            return src
    fail("%s: no 'main' given and no '%s' in srcs" % (ctx.label, wanted))

def _py_executable_impl(ctx):
    main = _main_file(ctx)
    launcher = ctx.actions.declare_file(ctx.label.name)
    ctx.actions.write(
        output = launcher,
        content = _LAUNCHER.format(
            main = main.short_path,
            workspace = ctx.workspace_name,
            imports = ":".join(ctx.attr.imports),
        ),
        is_executable = True,
    )
    return [DefaultInfo(
        executable = launcher,
        files = depset([launcher]),
        runfiles = _py_runfiles(ctx, [launcher]),
    )]

_PY_ATTRS = {
    "srcs": attr.label_list(allow_files = [".py"]),
    "deps": attr.label_list(),
    "data": attr.label_list(allow_files = True),
    "imports": attr.string_list(),
    "srcs_version": attr.string(),
}

_PY_EXEC_ATTRS = dict(_PY_ATTRS)
_PY_EXEC_ATTRS.update({
    "main": attr.label(allow_single_file = [".py"]),
    "python_version": attr.string(values = ["PY2", "PY3"], default = "PY3"),
})

py_library = rule(implementation = _py_library_impl, attrs = _PY_ATTRS, doc = "Python sources for other py rules.")

py_binary = rule(implementation = _py_executable_impl, attrs = _PY_EXEC_ATTRS, executable = True, doc = "A runnable Python program.")

py_test = rule(implementation = _py_executable_impl, attrs = _PY_EXEC_ATTRS, test = True, doc = "A Python program run by `forge test`.")

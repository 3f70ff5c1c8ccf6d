"""sh_library, sh_binary and sh_test."""

def _sh_runfiles(ctx, extra = []):
    runfiles = ctx.runfiles(files = ctx.files.srcs + ctx.files.data + extra)
    for dep in ctx.attr.deps + ctx.attr.data:
        runfiles = runfiles.merge(dep[DefaultInfo].default_runfiles)
    return runfiles

def _sh_library_impl(ctx):
    return [DefaultInfo(files = depset(ctx.files.srcs), runfiles = _sh_runfiles(ctx))]

def _sh_executable_impl(ctx):
    if len(ctx.files.srcs) != 1:
        fail("%s must have exactly one file in srcs" % ctx.label)
    src = ctx.files.srcs[0]
    exe = ctx.actions.declare_file(ctx.label.name)
    ctx.actions.symlink(output = exe, target_file = src, is_executable = True)
    return [DefaultInfo(
        executable = exe,
        files = depset([exe]),
        runfiles = _sh_runfiles(ctx, [exe]),
    )]

_SH_ATTRS = {
    "srcs": attr.label_list(allow_files = True),
    "deps": attr.label_list(),
    "data": attr.label_list(allow_files = True),
}

sh_library = rule(implementation = _sh_library_impl, attrs = _SH_ATTRS, doc = "Shell files for other sh rules.")

sh_binary = rule(implementation = _sh_executable_impl, attrs = _SH_ATTRS, executable = True, doc = "A runnable shell script.")

sh_test = rule(implementation = _sh_executable_impl, attrs = _SH_ATTRS, test = True, doc = "A shell script run by `forge test`.")

"""genrule, filegroup and alias: the general-purpose built-in rules."""

def _genrule_impl(ctx):
    outs = ctx.outputs.outs
    tools = ctx.files.tools + ctx.files.exec_tools
    command = ctx.expand_location(ctx.attr.cmd, targets = ctx.attr.srcs + ctx.attr.tools)
    ctx.actions.run_shell(
        inputs = ctx.files.srcs,
        tools = tools,
        outputs = outs,
        command = command,
        mnemonic = "Genrule",
        progress_message = "Executing genrule %s" % ctx.label,
    )
    return [DefaultInfo(files = depset(outs), runfiles = ctx.runfiles(files = outs))]

genrule = rule(
    implementation = _genrule_impl,
    doc = "Runs a shell command over `srcs` to produce `outs`.",
    attrs = {
        "srcs": attr.label_list(allow_files = True, doc = "Inputs of the command."),
        "outs": attr.output_list(mandatory = True, allow_empty = False, doc = "Files the command creates."),
        "cmd": attr.string(doc = "The bash command; `$(SRCS)`, `$(OUTS)`, `$@`, `$<`, `$(location x)` are expanded."),
        "cmd_bash": attr.string(),
        "tools": attr.label_list(allow_files = True, cfg = "exec", doc = "Tools the command runs."),
        "exec_tools": attr.label_list(allow_files = True, cfg = "exec"),
        "toolchains": attr.label_list(),
        "output_to_bindir": attr.bool(),
        "local": attr.bool(),
        "message": attr.string(),
        "executable": attr.bool(),
        "stamp": attr.int(),
    },
)

def _filegroup_impl(ctx):
    files = depset(ctx.files.srcs)
    return [DefaultInfo(
        files = files,
        runfiles = ctx.runfiles(files = ctx.files.srcs + ctx.files.data),
    )]

filegroup = rule(
    implementation = _filegroup_impl,
    doc = "Names a group of files.",
    attrs = {
        "srcs": attr.label_list(allow_files = True),
        "data": attr.label_list(allow_files = True),
        "output_group": attr.string(),
    },
)

def _alias_impl(ctx):
    return [ctx.attr.actual[DefaultInfo]]

alias = rule(
    implementation = _alias_impl,
    doc = "Another name for `actual`.",
    attrs = {
        "actual": attr.label(mandatory = True, allow_files = True),
    },
)

"""genrule, filegroup and alias: the general-purpose built-in rules."""

def _genrule_impl(ctx):
    outs = ctx.outputs.outs
    srcs = ctx.files.srcs
    tools = ctx.attr.tools + ctx.attr.exec_tools
    cmd = ctx.attr.cmd_bash or ctx.attr.cmd
    if not cmd:
        fail("genrule %s has no 'cmd'" % ctx.label)

    # $(location) and friends first, then Bazel's make variables.
    cmd = ctx.expand_location(cmd, targets = ctx.attr.srcs + tools)
    ruledir = ctx.bin_dir.path + ("/" + ctx.label.package if ctx.label.package else "")
    subs = dict(ctx.var)
    subs.update({
        "SRCS": " ".join([f.path for f in srcs]),
        "OUTS": " ".join([f.path for f in outs]),
        "RULEDIR": ruledir,
        "@D": outs[0].dirname if len(outs) == 1 else ruledir,
    })
    if len(outs) == 1:
        subs["@"] = outs[0].path
    if len(srcs) == 1:
        subs["<"] = srcs[0].path
    cmd = ctx.expand_make_variables("cmd", cmd, subs)
    ctx.actions.run_shell(
        inputs = srcs,
        tools = tools,
        outputs = outs,
        command = cmd,
        mnemonic = "Genrule",
        progress_message = ctx.attr.message or "Executing genrule %{label}",
        # local = True runs the command outside the sandbox, like the tag.
        execution_requirements = {"local": "1"} if ctx.attr.local else {},
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
    if ctx.attr.output_group:
        # The named output group of each src instead of its default outputs.
        groups = []
        for src in ctx.attr.srcs:
            group = getattr(src[OutputGroupInfo], ctx.attr.output_group, None) if OutputGroupInfo in src else None
            if group != None:
                groups.append(group)
        files = depset(transitive = groups)
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

"""genrule, filegroup and alias: the general-purpose built-in rules."""

def _genrule_impl(ctx):
    outs = ctx.outputs.outs
    srcs = ctx.files.srcs
    tools = ctx.attr.tools + ctx.attr.exec_tools

    # As Bazel off Windows: cmd_bash, else cmd; cmd_bat and cmd_ps are for Windows only.
    cmd = ctx.attr.cmd_bash or ctx.attr.cmd
    if not cmd:
        fail("missing value for `cmd` attribute of genrule %s: you can also set `cmd_ps` or " % ctx.label +
             "`cmd_bat` on Windows and `cmd_bash` on other platforms")
    # Make variables from `toolchains`: each must provide TemplateVariableInfo, as in Bazel.
    toolchain_vars = {}
    for toolchain in ctx.attr.toolchains:
        if platform_common.TemplateVariableInfo not in toolchain:
            fail(("in toolchains attribute of genrule %s: '%s' does not have mandatory providers: " +
                  "'TemplateVariableInfo'") % (ctx.label, toolchain.label))
        toolchain_vars.update(toolchain[platform_common.TemplateVariableInfo].variables)

    # stamp = 1: the command may read the workspace status files, so they are inputs.
    stamp_inputs = [ctx.info_file, ctx.version_file] if ctx.attr.stamp else []
    if ctx.attr.executable and len(outs) != 1:
        fail("genrule %s: executable = True needs exactly one file in `outs`, got %d" % (ctx.label, len(outs)))

    # $(location) and friends first, then Bazel's make variables.
    cmd = ctx.expand_location(cmd, targets = ctx.attr.srcs + tools)
    ruledir = ctx.bin_dir.path + ("/" + ctx.label.package if ctx.label.package else "")
    subs = dict(ctx.var)
    subs.update(toolchain_vars)
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
    if ctx.attr.executable:
        # Bazel leaves every output executable; forge keeps the mode the command gave, so
        # the program is made executable here, after the command succeeded.
        cmd = "(\n%s\n) && chmod +x '%s'" % (cmd, outs[0].path)
    ctx.actions.run_shell(
        inputs = srcs + stamp_inputs,
        tools = tools,
        outputs = outs,
        command = cmd,
        mnemonic = "Genrule",
        progress_message = ctx.attr.message or "Executing genrule %{label}",
        # local = True runs the command outside the sandbox, like the tag.
        execution_requirements = {"local": "1"} if ctx.attr.local else {},
    )
    # Only the outputs: srcs and tools are the build's, not the program's (as in Bazel).
    runfiles = ctx.runfiles(files = outs)
    if ctx.attr.executable:
        return [DefaultInfo(files = depset(outs), runfiles = runfiles, executable = outs[0])]
    return [DefaultInfo(files = depset(outs), runfiles = runfiles)]

genrule = rule(
    implementation = _genrule_impl,
    doc = "Runs a shell command over `srcs` to produce `outs`.",
    attrs = {
        "srcs": attr.label_list(allow_files = True, doc = "Inputs of the command."),
        "outs": attr.output_list(mandatory = True, allow_empty = False, doc = "Files the command creates."),
        "cmd": attr.string(doc = "The bash command; `$(SRCS)`, `$(OUTS)`, `$@`, `$<`, `$(location x)` are expanded."),
        "cmd_bash": attr.string(doc = "The command off Windows; preferred to `cmd` when both are given."),
        "cmd_bat": attr.string(doc = "The command on Windows (cmd.exe); unused elsewhere, as in Bazel."),
        "cmd_ps": attr.string(doc = "The command on Windows (PowerShell); unused elsewhere, as in Bazel."),
        "tools": attr.label_list(allow_files = True, cfg = "host", doc = "Tools the command runs, built in the host configuration as in Bazel 4."),
        "exec_tools": attr.label_list(allow_files = True, cfg = "exec"),
        "toolchains": attr.label_list(doc = "Targets providing TemplateVariableInfo: their make variables."),
        # Since Bazel 1.0 genfiles is the bin directory, so where the outputs go is the same
        # either way.
        "output_to_bindir": attr.bool(doc = "Accepted: outputs always go to the bin directory, as in Bazel 4."),
        "local": attr.bool(),
        "message": attr.string(),
        "executable": attr.bool(doc = "The single output is a program `forge run` can run."),
        "stamp": attr.bool(doc = "The command may read the workspace status files (ctx.info_file, ctx.version_file)."),
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
    # The actual target itself: forge forwards all of its providers, as Bazel does.
    return ctx.attr.actual

alias = rule(
    implementation = _alias_impl,
    doc = "Another name for `actual`.",
    attrs = {
        "actual": attr.label(mandatory = True, allow_files = True),
    },
)

"""config_setting, constraint_setting, constraint_value, platform, label_flag and label_setting.

config_setting and constraint_value are the targets select() keys name.

They carry no actions; analysis reads their attributes to decide which select() branch a
configuration takes.
"""

def _no_actions_impl(ctx):
    return []

config_setting = rule(
    implementation = _no_actions_impl,
    doc = "A condition for select(): matches when every given build option, --define, build setting and constraint holds.",
    attrs = {
        "values": attr.string_dict(doc = "Build options and their values: `define`, `compilation_mode`, `cpu`."),
        "define_values": attr.string_dict(doc = "`--define NAME=VALUE` pairs that must all be given."),
        "constraint_values": attr.label_list(doc = "constraint_value targets the platform must have."),
        "flag_values": attr.label_keyed_string_dict(doc = "Build settings and the values they must have in this build."),
    },
)

constraint_setting = rule(
    implementation = _no_actions_impl,
    doc = "A dimension of a platform, such as its OS or CPU.",
    attrs = {
        # A label read against this package; a string, as in Bazel it is no dependency (the
        # value itself names this setting, which would make a cycle).
        "default_constraint_value": attr.string(doc = "The value a platform has when it says none (a label)."),
    },
)

constraint_value = rule(
    implementation = _no_actions_impl,
    doc = "One value of a constraint_setting; usable as a select() key.",
    attrs = {
        "constraint_setting": attr.label(mandatory = True),
    },
)

# `exec_properties` is the attribute every target has; on a platform, the parent's are
# merged under its own.
platform = rule(
    implementation = _no_actions_impl,
    doc = "A platform: a named set of constraint values, which --platforms and register_execution_platforms name.",
    attrs = {
        "constraint_values": attr.label_list(doc = "The constraint_value targets of this platform, at most one per constraint_setting."),
        "parents": attr.label_list(doc = "At most one platform whose constraint values this one inherits (its own win)."),
        "remote_execution_properties": attr.string(doc = "Bazel's older form of exec_properties; forge refuses it when given."),
    },
)

def _label_setting_impl(ctx):
    # The chosen target itself: forge forwards all of its providers, as alias does.
    return ctx.attr.build_setting_default

label_flag = rule(
    implementation = _label_setting_impl,
    doc = "A label the command line can change (`--//pkg:flag=//other:target`); forwards the providers of the target it names.",
    attrs = {
        "build_setting_default": attr.label(mandatory = True, doc = "The target when the command line names none."),
    },
)

label_setting = rule(
    implementation = _label_setting_impl,
    doc = "A label setting (only transitions could change it); forwards the providers of `build_setting_default`.",
    attrs = {
        "build_setting_default": attr.label(mandatory = True, doc = "The target this setting names."),
    },
)

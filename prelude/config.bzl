"""config_setting, constraint_setting and constraint_value: the targets select() keys name.

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
        "default_constraint_value": attr.label(doc = "The value a platform has when it says none."),
    },
)

constraint_value = rule(
    implementation = _no_actions_impl,
    doc = "One value of a constraint_setting; usable as a select() key.",
    attrs = {
        "constraint_setting": attr.label(mandatory = True),
    },
)

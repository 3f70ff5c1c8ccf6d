"""test_suite: a name for a set of tests."""

def _test_suite_impl(ctx):
    return [DefaultInfo(files = depset(transitive = [t[DefaultInfo].files for t in ctx.attr.tests]))]

test_suite = rule(
    implementation = _test_suite_impl,
    doc = "Tests listed in `tests`, or every test of the package matching `tags` when `tests` is empty.",
    attrs = {
        "tests": attr.label_list(),
    },
)

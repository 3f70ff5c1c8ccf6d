"""A small custom rule and a macro that wraps it."""

GreetingInfo = provider(fields = ["text"])

def _greeting_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    ctx.actions.write(output = out, content = ctx.attr.text + "\n")
    return [DefaultInfo(files = depset([out])), GreetingInfo(text = ctx.attr.text)]

greeting = rule(
    implementation = _greeting_impl,
    attrs = {
        "text": attr.string(mandatory = True),
    },
)

def greeting_pair(name, text):
    """Two greetings, one shouted."""
    greeting(name = name, text = text)
    greeting(name = name + "_loud", text = text.upper())

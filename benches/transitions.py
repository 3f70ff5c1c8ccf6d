#!/usr/bin/env python3
"""Configuration benchmark: what an outgoing transition costs. The layered genrule graph of
benches/build.py (N genrules in N/10 packages), then the same graph with a `//trans:opt`
target that depends on the top layer's first half through an outgoing transition to
`-c opt` plus a build setting, so that half of the graph is analysed and built a second
time, in its own `k8-opt-ST-<hash>` configuration.

For both workspaces, from fresh processes and a new output base: the clean build, the
no-op build (median of --runs), and the analysis alone (`build --nobuild` after the package
store is filled), each with the number of actions and the configured targets forge reports.

Usage: python3 benches/transitions.py [--forge PATH] [--sizes 5000] [--runs N] [--keep DIR]
"""

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build import LAYERS, Forge, generate, package_of, run  # noqa: E402

DEFS = '''
def _flavor_impl(ctx):
    return []

flavor = rule(implementation = _flavor_impl, build_setting = config.string(flag = True))

def _to_opt_impl(settings, attr):
    return {
        "//command_line_option:compilation_mode": "opt",
        "//trans:flavor": "transitioned",
    }

to_opt = transition(
    implementation = _to_opt_impl,
    inputs = [],
    outputs = ["//command_line_option:compilation_mode", "//trans:flavor"],
)

def _in_opt_impl(ctx):
    files = depset(transitive = [d[DefaultInfo].files for d in ctx.attr.deps])
    return [DefaultInfo(files = files)]

in_opt = rule(
    implementation = _in_opt_impl,
    attrs = {
        "deps": attr.label_list(cfg = to_opt),
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    },
)
'''


def add_transition(ws, n):
    """`//trans:opt`: the first half of the top layer, behind the transition."""
    width = n // LAYERS
    top = range((LAYERS - 1) * width, (LAYERS - 1) * width + width // 2)
    os.makedirs(os.path.join(ws, "trans"))
    with open(os.path.join(ws, "trans", "defs.bzl"), "w") as f:
        f.write(DEFS)
    deps = ", ".join('"//%s:g%d"' % (package_of(i), i) for i in top)
    with open(os.path.join(ws, "trans", "BUILD"), "w") as f:
        f.write('load(":defs.bzl", "flavor", "in_opt")\n'
                'flavor(name = "flavor", build_setting_default = "plain")\n'
                'in_opt(name = "opt", deps = [%s])\n' % deps)


def configured(out):
    m = re.search(r"(\d+) targets? configured", out)
    return int(m.group(1)) if m else -1


def measure(forge, root, tag, runs):
    forge.clean(root, tag)
    clean = forge.build()
    clean_configured = configured(forge.last_output)
    noops = [forge.build()[0] for _ in range(runs)]
    # Analysis alone: a plan that cannot be reused (a new --define), the packages stored.
    args = [forge.binary, "--output_base", forge.output_base, "build", "--nobuild",
            "--define=bench=%d" % runs, "//..."]
    analysis, _ = run(args, forge.ws, forge.env)
    return clean, clean_configured, statistics.median(noops), analysis


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target_dir = os.environ.get("CARGO_TARGET_DIR", "target")
    parser.add_argument("--forge", default=os.path.join(target_dir, "release", "forge"))
    parser.add_argument("--sizes", default="5000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--jobs", "-j", type=int, default=os.cpu_count())
    parser.add_argument("--keep", help="generate into this directory and keep it")
    args = parser.parse_args()
    binary = os.path.abspath(args.forge)
    if not os.access(binary, os.X_OK):
        sys.exit("no forge binary at %s (cargo build --release)" % binary)
    env = dict(os.environ, HOME=tempfile.mkdtemp(prefix="forge-bench-home-"))
    for n in [int(s) for s in args.sizes.split(",")]:
        root = args.keep or tempfile.mkdtemp(prefix="forge-bench-transitions-")
        if os.path.exists(root) and os.listdir(root):
            shutil.rmtree(root)
        os.makedirs(root, exist_ok=True)
        ws, _ = generate(root, n)
        forge = Forge(binary, ws, args.jobs, env)
        plain = measure(forge, root, "plain", args.runs)
        add_transition(ws, n)
        trans = measure(forge, root, "transition", args.runs)
        print("N = %d genrules, half of the top layer's closure also behind a transition" % n)
        for name, (clean, conf, noop, analysis) in (("plain", plain), ("transition", trans)):
            print("  %-10s clean %7.2f s (%5d actions, %5d targets configured)   "
                  "no-op %6.3f s   analysis %6.3f s" % (name, clean[0], clean[1], conf, noop, analysis))
        print("  cost of the transition: clean x%.2f, no-op x%.2f, analysis x%.2f, "
              "configured targets x%.2f" % (
                  trans[0][0] / plain[0][0], trans[2] / plain[2], trans[3] / plain[3],
                  trans[1] / max(plain[1], 1)))
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

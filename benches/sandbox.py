#!/usr/bin/env python3
"""Sandbox benchmark: what running every command in its own namespaces costs.

Usage: python3 benches/sandbox.py [--forge PATH] [--runs N] [--keep DIR]

Two measurements, each forge from a fresh process and an empty output base, alternating
`--spawn_strategy=local` and `--spawn_strategy=sandboxed`, medians of --runs:

- 1,000 trivial genrules (`echo i > $@`, no inputs) built with -j = the number of cores:
  (sandboxed - local) / 1,000 is the sandbox's cost per action. Target: under 1 ms.
- one genrule with 10,000 declared inputs (100 directories of 100 source files, by glob):
  sandboxed - local is the time to set its sandbox up. Target: under 20 ms.

The clean sandboxed build of the 5,000-genrule graph against ninja is in benches/build.py.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

PER_ACTION_LIMIT_MS = 1.0
MANY_INPUTS_LIMIT_MS = 20.0


def generate_trivial(ws, n=1000):
    os.makedirs(ws)
    with open(os.path.join(ws, "WORKSPACE"), "w") as f:
        f.write('workspace(name = "trivial")\n')
    for p in range(10):
        d = os.path.join(ws, "p%d" % p)
        os.makedirs(d)
        with open(os.path.join(d, "BUILD"), "w") as f:
            for i in range(p * n // 10, (p + 1) * n // 10):
                f.write('genrule(name = "t%d", outs = ["t%d.out"], cmd = "echo %d > $@")\n' % (i, i, i))


def generate_many_inputs(ws, dirs=100, files=100):
    os.makedirs(ws)
    with open(os.path.join(ws, "WORKSPACE"), "w") as f:
        f.write('workspace(name = "many")\n')
    pkg = os.path.join(ws, "pkg")
    for d in range(dirs):
        sub = os.path.join(pkg, "in", "d%03d" % d)
        os.makedirs(sub)
        for i in range(files):
            with open(os.path.join(sub, "f%03d.txt" % i), "w") as f:
                f.write("%d %d\n" % (d, i))
    with open(os.path.join(pkg, "BUILD"), "w") as f:
        f.write('genrule(name = "all", srcs = glob(["in/**"]), outs = ["count.out"], '
                'cmd = "ls pkg/in/d000 | wc -l > $@")\n')


def build(forge, ws, output_base, strategy, jobs):
    if os.path.exists(output_base):
        shutil.rmtree(output_base)
    cmd = [forge, "--output_base", output_base, "build", "-j", str(jobs),
           "--spawn_strategy=" + strategy, "//..."]
    start = time.monotonic()
    p = subprocess.run(cmd, cwd=ws, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    secs = time.monotonic() - start
    if p.returncode != 0:
        sys.exit("forge failed:\n" + p.stdout[-4000:])
    return secs


def compare(forge, ws, root, runs, jobs):
    times = {"local": [], "sandboxed": []}
    for _ in range(runs):
        for strategy in ("local", "sandboxed"):
            times[strategy].append(build(forge, ws, os.path.join(root, "ob"), strategy, jobs))
    return statistics.median(times["local"]), statistics.median(times["sandboxed"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(os.path.dirname(__file__), "..", "target")
    ap.add_argument("--forge", default=os.path.join(target, "release", "forge"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=os.cpu_count())
    ap.add_argument("--keep", help="keep the generated workspaces here")
    args = ap.parse_args()
    forge = os.path.abspath(args.forge)
    root = args.keep or tempfile.mkdtemp(prefix="forge-sandbox-bench-")
    os.makedirs(root, exist_ok=True)
    ok = True
    try:
        print("forge %s, %d cores, medians of %d runs" % (forge, os.cpu_count(), args.runs))
        ws = os.path.join(root, "trivial")
        generate_trivial(ws)
        local, sandboxed = compare(forge, ws, root, args.runs, args.jobs)
        per_action = (sandboxed - local) / 1000 * 1000
        ok &= per_action < PER_ACTION_LIMIT_MS
        print("1,000 trivial actions    local %6.3f s   sandboxed %6.3f s   cost per action %.3f ms"
              "   (limit %.1f ms)  %s" % (local, sandboxed, per_action, PER_ACTION_LIMIT_MS,
                                         "met" if per_action < PER_ACTION_LIMIT_MS else "MISSED"))
        ws = os.path.join(root, "many")
        generate_many_inputs(ws)
        local, sandboxed = compare(forge, ws, root, args.runs, 1)
        setup = (sandboxed - local) * 1000
        ok &= setup < MANY_INPUTS_LIMIT_MS
        print("10,000 declared inputs   local %6.3f s   sandboxed %6.3f s   sandbox setup   %.1f ms"
              "    (limit %.0f ms)   %s" % (local, sandboxed, setup, MANY_INPUTS_LIMIT_MS,
                                          "met" if setup < MANY_INPUTS_LIMIT_MS else "MISSED"))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

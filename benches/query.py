#!/usr/bin/env python3
"""Query benchmark: generates a workspace of 500 packages / 5,000 targets and times
`forge query //...` and `forge query 'deps(//...)'`, each from a fresh process.

Usage: python3 benches/query.py [--forge PATH] [--packages N] [--runs N] [--keep DIR]

Builds nothing itself: pass a release binary (default: target/release/forge, built with
`cargo build --release`). Prints the median and minimum wall time of each query, with the
package store (`<output_base>/cache/packages`, filled by the first run) and with it emptied
before each run, so every BUILD file is evaluated again.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TARGETS_PER_PACKAGE = 10


def generate(root, packages):
    """Writes the workspace: every package has a py_library, a filegroup over a glob, a
    genrule, an sh_binary, a custom rule, a macro call (two targets) and three more rules,
    and depends on up to two earlier packages, so `deps(//...)` walks a deep graph."""
    with open(os.path.join(root, "WORKSPACE"), "w") as f:
        f.write('workspace(name = "bench")\n')
    os.makedirs(os.path.join(root, "rules"))
    with open(os.path.join(root, "rules", "BUILD"), "w") as f:
        f.write("")
    with open(os.path.join(root, "rules", "defs.bzl"), "w") as f:
        f.write(
            "Info = provider(fields = ['n'])\n"
            "def _impl(ctx):\n"
            "    return [DefaultInfo()]\n"
            "custom = rule(implementation = _impl, attrs = {'deps': attr.label_list(), 'n': attr.int()})\n"
            "def pair(name, deps):\n"
            "    custom(name = name + '_a', deps = deps, n = 1)\n"
            "    native.filegroup(name = name + '_b', srcs = [':' + name + '_a'])\n"
        )
    for i in range(packages):
        pkg = os.path.join(root, "pkg%03d" % (i // 50), "p%d" % i)
        os.makedirs(os.path.join(pkg, "data"))
        for name in ("lib.py", "main.sh", "data/a.txt", "data/b.txt"):
            with open(os.path.join(pkg, name), "w") as f:
                f.write("# %d\n" % i)
        deps = ["//pkg%03d/p%d:lib" % (j // 50, j) for j in (i - 1, i // 2) if 0 <= j < i]
        deps = sorted(set(deps))
        with open(os.path.join(pkg, "BUILD"), "w") as f:
            f.write(
                'load("//rules:defs.bzl", "custom", "pair")\n\n'
                'py_library(name = "lib", srcs = ["lib.py"], deps = %r, visibility = ["//visibility:public"])\n'
                'filegroup(name = "data", srcs = glob(["data/*.txt"]))\n'
                'genrule(name = "gen", srcs = [":data"], outs = ["gen.txt"], cmd = "cat $(SRCS) > $@")\n'
                'sh_binary(name = "main", srcs = ["main.sh"], data = [":gen"])\n'
                'custom(name = "c", deps = [":lib", ":main"], n = %d)\n'
                'pair(name = "m", deps = [":c"])\n'
                'filegroup(name = "all_files", srcs = [":data", ":gen"])\n'
                'sh_test(name = "t", srcs = ["main.sh"], data = [":all_files"])\n'
                'py_library(name = "extra", srcs = ["lib.py"], deps = [":lib"])\n'
                % (deps, i)
            )


def forget_packages(cache_home):
    """Empties every package store under the output bases in `cache_home`."""
    for dirpath, dirnames, _ in os.walk(cache_home):
        if os.path.basename(dirpath) == "cache" and "packages" in dirnames:
            shutil.rmtree(os.path.join(dirpath, "packages"))


def time_command(cmd, cwd, runs, env, before=None):
    times = []
    for _ in range(runs):
        if before:
            before()
        start = time.perf_counter()
        result = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        times.append(time.perf_counter() - start)
        if result.returncode != 0:
            sys.exit("%s failed (%d):\n%s" % (" ".join(cmd), result.returncode, result.stderr.decode()))
    return times, len(result.stdout.splitlines())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--forge", default=os.path.join(here, "..", "target", "release", "forge"))
    parser.add_argument("--packages", type=int, default=500)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--keep", help="generate into this directory and keep it")
    args = parser.parse_args()
    forge = os.path.abspath(args.forge)
    if not os.path.exists(forge):
        sys.exit("no forge binary at %s: run `cargo build --release` first" % forge)

    root = args.keep or tempfile.mkdtemp(prefix="forge-bench-")
    if args.keep and os.path.exists(root):
        shutil.rmtree(root)
    os.makedirs(root, exist_ok=True)
    try:
        generate(root, args.packages)
        env = dict(os.environ, XDG_CACHE_HOME=os.path.join(root, ".cache"))
        print("workspace: %d packages, %d targets, %s cores" % (
            args.packages, args.packages * TARGETS_PER_PACKAGE, os.cpu_count()))
        cache_home = env["XDG_CACHE_HOME"]
        for query in ("//...", "deps(//...)"):
            for store in (True, False):
                before = None if store else (lambda: forget_packages(cache_home))
                times, lines = time_command([forge, "query", query], root, args.runs, env, before)
                print("forge query %-14s %-13s %5d results  median %.3f s  min %.3f s  (%d runs)" % (
                    "'%s'" % query, "stored" if store else "store emptied", lines,
                    statistics.median(times), min(times), args.runs))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

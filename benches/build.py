#!/usr/bin/env python3
"""Build benchmark: generates a layered DAG of N genrules and times `forge build //...`
against `ninja` doing the same work on the same graph: a clean build, a no-op build and the
rebuild after one leaf source changes, and after one genrule's command changes (the last
one, which nothing reads, so both tools rerun that one action); then forge alone: a comment
added to one BUILD file and the build after it (the stored plan reused when the package
comes out the same; then with the plan made again from the package and analysis result
stores, with the analysis store emptied first — every target analysed, what a BUILD edit
cost before that store —, and with both emptied), and `forge query //...` from a fresh
process with the package store filled and empty.

Usage: python3 benches/build.py [--forge PATH] [--sizes 1000,5000] [--runs N] [--keep DIR]
                                [--no-sandboxed]

The graph: N genrules in N/10 packages (p0000, p0001, ...), in 10 layers of N/10. Genrule
g<i> reads its own source g<i>.txt and, above the first layer, the outputs of three genrules
of the layer below (g<j>, g<j+1>, g<j+2> with j = i - N/10, wrapping inside the layer), so a
change to g0.txt reaches 1 + 3 + 5 + ... + 19 = 100 genrules whatever N is; its
command is `(echo g<i>; cat $(SRCS)) | md5sum > $@`. A second copy of the sources gets an
equivalent build.ninja (same graph, same commands, outputs under out/), so both tools run
the same N shell commands.

With several sizes it prints how each figure grows from the smallest to the largest (issue 18
asks for 5,000 to 100,000: `--sizes 5000,50000,100000`), and from 50,000 genrules on it checks
issue 18's targets (clean build <= 1.1x ninja, no-op <= 1.5x ninja, a BUILD comment <= 1 s, a
command changed <= 1 s plus what ninja takes to rerun that action, `forge query //...` <= 1 s,
peak memory <= 300 MB for the clean build and <= 150 MB for the no-op and one-edit builds).

Builds nothing itself: pass a release binary (default: $CARGO_TARGET_DIR/release/forge or
target/release/forge). Forge runs from a fresh process each time, with its own output base
(`--output_base`), which is new (empty) for each clean build. Both tools get `-j` = the
number of cores. Forge's peak memory is read from `/usr/bin/time -v`.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TARGETS_PER_PACKAGE = 10
LAYERS = 10
CMD = "(echo g%d; cat %s) | md5sum > %s"

# The targets the project must meet.
NOOP_LIMIT_S = 0.25  # no-op build of 5,000 targets
CLEAN_RATIO = 1.5  # clean build, forge / ninja
INCREMENTAL_RATIO = 2.0  # rebuild after one leaf source changes, forge / ninja
MEMORY_LIMIT_MB = 150  # peak RSS of the 5,000-target clean build
SANDBOXED_RATIO = 2.0  # clean build with every command sandboxed, forge / ninja

# Issue 18's targets, from SCALE_SIZE genrules up.
SCALE_SIZE = 50000
SCALE_CLEAN_RATIO = 1.1  # clean build, forge / ninja
SCALE_NOOP_RATIO = 1.5  # no-op build, forge / ninja
SCALE_EDIT_LIMIT_S = 1.0  # a BUILD comment, then build; a cmd changed: plus its actions
SCALE_QUERY_LIMIT_S = 1.0  # `forge query //...` from a fresh process
SCALE_CLEAN_MEMORY_MB = 300  # peak RSS of the clean build
SCALE_EDIT_MEMORY_MB = 150  # peak RSS of the no-op and of the one-edit builds


def deps_of(i, n):
    """The three genrules of the layer below that g<i> reads (none in the first layer)."""
    width = n // LAYERS
    layer, pos = divmod(i, width)
    if layer == 0:
        return []
    return [(layer - 1) * width + (pos + k) % width for k in range(3)]


def package_of(i):
    return "p%04d" % (i // TARGETS_PER_PACKAGE)


def generate(root, n):
    """Writes root/forge (a workspace) and root/ninja (the same sources and a build.ninja)."""
    if n % (LAYERS * TARGETS_PER_PACKAGE):
        sys.exit("sizes must be multiples of %d" % (LAYERS * TARGETS_PER_PACKAGE))
    ws = os.path.join(root, "forge")
    nj = os.path.join(root, "ninja")
    for d in (ws, nj):
        os.makedirs(d)
    with open(os.path.join(ws, "WORKSPACE"), "w") as f:
        f.write('workspace(name = "bench")\n')
    ninja = ["# %d genrules in %d layers, as in the forge workspace next door\n" % (n, LAYERS)]
    for p in range(n // TARGETS_PER_PACKAGE):
        pkg = package_of(p * TARGETS_PER_PACKAGE)
        for d in (ws, nj):
            os.makedirs(os.path.join(d, pkg))
        rules = []
        for i in range(p * TARGETS_PER_PACKAGE, (p + 1) * TARGETS_PER_PACKAGE):
            for d in (ws, nj):
                with open(os.path.join(d, pkg, "g%d.txt" % i), "w") as f:
                    f.write("source %d\n" % i)
            labels = ["g%d.txt" % i] + ["//%s:g%d" % (package_of(j), j) for j in deps_of(i, n)]
            rules.append(
                "genrule(\n"
                '    name = "g%d",\n'
                "    srcs = [%s],\n"
                '    outs = ["g%d.out"],\n'
                '    cmd = "(echo g%d; cat $(SRCS)) | md5sum > $@",\n'
                '    visibility = ["//visibility:public"],\n'
                ")\n" % (i, ", ".join('"%s"' % l for l in labels), i, i)
            )
            ins = ["%s/g%d.txt" % (pkg, i)] + ["out/%s/g%d.out" % (package_of(j), j) for j in deps_of(i, n)]
            out = "out/%s/g%d.out" % (pkg, i)
            ninja.append("build %s: run %s\n  cmd = %s\n" % (out, " ".join(ins), CMD % (i, " ".join(ins), out)))
        with open(os.path.join(ws, pkg, "BUILD"), "w") as f:
            f.write("\n".join(rules))
    with open(os.path.join(nj, "build.ninja"), "w") as f:
        f.write("rule run\n  command = $cmd\n  description = $out\n\n")
        f.write("".join(ninja))
    return ws, nj


def run(cmd, cwd, env=None):
    """Runs cmd; returns (seconds, stdout + stderr). Exits on failure."""
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    elapsed = time.perf_counter() - start
    out = result.stdout.decode(errors="replace")
    if result.returncode != 0:
        sys.exit("%s failed (%d):\n%s" % (" ".join(cmd), result.returncode, out[-4000:]))
    return elapsed, out


class Forge:
    def __init__(self, binary, ws, jobs, env):
        self.binary, self.ws, self.jobs, self.env = binary, ws, jobs, env
        self.output_base = None

    def query(self, expr="//..."):
        secs, out = run([self.binary, "--output_base", self.output_base, "query", expr], self.ws, self.env)
        return secs, len(out.splitlines())

    def forget_packages(self):
        """Empties the package store: every package is evaluated again."""
        shutil.rmtree(os.path.join(self.output_base, "cache", "packages"), ignore_errors=True)

    def forget_analysis(self):
        """Empties the analysis result store: every configured target is analysed again."""
        shutil.rmtree(os.path.join(self.output_base, "cache", "analysis"), ignore_errors=True)

    def forget_plan_packages(self):
        """Drops what the stored plans were made from: a BUILD edit is not cut off, the plan
        is made again (from the stores, if any)."""
        shutil.rmtree(os.path.join(self.output_base, "cache", "plan-packages"), ignore_errors=True)

    def build(self, measure_memory=False, strategy="local"):
        cmd = [self.binary, "--output_base", self.output_base, "build", "-j", str(self.jobs),
               "--spawn_strategy=" + strategy, "//..."]
        if measure_memory:
            cmd = ["/usr/bin/time", "-v"] + cmd
        secs, out = run(cmd, self.ws, self.env)
        m = re.search(r"(\d+) actions? executed", out)
        if not m:
            sys.exit("no 'N actions executed' line in forge's output:\n" + out[-4000:])
        rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", out)
        self.last_output = out
        return secs, int(m.group(1)), (int(rss.group(1)) / 1024 if rss else None)

    def clean(self, root, tag):
        """A new, empty output base: nothing cached from an earlier build."""
        self.output_base = os.path.join(root, "output_base-%s" % tag)
        if os.path.exists(self.output_base):
            shutil.rmtree(self.output_base)


class Ninja:
    def __init__(self, d, jobs):
        self.d, self.jobs = d, jobs
        self.env = dict(os.environ, NINJA_STATUS="[%f/%t] ")

    def build(self):
        secs, out = run(["ninja", "-j", str(self.jobs)], self.d, self.env)
        done = [int(m.group(1)) for m in re.finditer(r"^\[(\d+)/\d+\]", out, re.M)]
        return secs, (max(done) if done else 0), None

    def clean(self):
        """No outputs and no log; the output directories are made here, untimed, like forge
        makes them itself (ninja does not)."""
        for name in ("out", ".ninja_log", ".ninja_deps"):
            p = os.path.join(self.d, name)
            if os.path.isdir(p):
                shutil.rmtree(p)
            elif os.path.exists(p):
                os.remove(p)
        for pkg in os.listdir(self.d):
            if pkg.startswith("p"):
                os.makedirs(os.path.join(self.d, "out", pkg))


def comment_build_file(ws, k):
    """Adds a comment to the first package's BUILD file: its targets stay the same."""
    with open(os.path.join(ws, package_of(0), "BUILD"), "a") as f:
        f.write("# comment %d\n" % k)


def change_top_cmd(ws, nj, n, k):
    """Changes the command of the last genrule (top layer: nothing reads its output) in both
    copies, so each tool reruns exactly that one action."""
    i = n - 1
    old = re.compile(r"\(echo g%d(?: edit \d+)?;" % i)
    new = "(echo g%d edit %d;" % (i, k)
    for path in (os.path.join(ws, package_of(i), "BUILD"), os.path.join(nj, "build.ninja")):
        with open(path) as f:
            text = f.read()
        text, count = old.subn(new, text)
        if count == 0:
            sys.exit("no command of g%d found in %s" % (i, path))
        with open(path, "w") as f:
            f.write(text)


def packages_loaded(out):
    m = re.search(r"\((\d+) packages? loaded", out)
    return int(m.group(1)) if m else -1


def targets_configured(out):
    m = re.search(r"(\d+) targets? configured", out)
    return int(m.group(1)) if m else -1


def touch_leaf(ws, nj, k):
    """Changes the content of the first leaf source g0.txt in both copies."""
    for d in (ws, nj):
        with open(os.path.join(d, package_of(0), "g0.txt"), "w") as f:
            f.write("source 0, edit %d\n" % k)


def affected(n):
    """How many genrules read g0.txt, directly or not."""
    hit = {0}
    for i in range(n // LAYERS, n):
        if any(j in hit for j in deps_of(i, n)):
            hit.add(i)
    return len(hit)


def fmt_row(what, f, n, note=""):
    ratio = f[0] / n[0] if n[0] > 0 else float("inf")
    return "%-22s forge %7.3f s (%5d actions)   ninja %7.3f s (%5d actions)   ratio %5.2f  %s" % (
        what, f[0], f[1], n[0], n[1], ratio, note)


def bench(root, n, forge_bin, jobs, runs, sandboxed=True):
    print("\n== %d genrules, %d packages, %d layers, -j %d ==" % (n, n // TARGETS_PER_PACKAGE, LAYERS, jobs))
    d = os.path.join(root, "n%d" % n)
    os.makedirs(d)
    ws, nj = generate(d, n)
    env = dict(os.environ, XDG_CACHE_HOME=os.path.join(d, ".cache"))
    forge = Forge(forge_bin, ws, jobs, env)
    ninja = Ninja(nj, jobs)
    results = {}

    # Clean build: a fresh output base for forge, no outputs or log for ninja.
    forge.clean(d, "main")
    f = forge.build(measure_memory=True)
    ninja.clean()
    k = ninja.build()
    if f[1] != n or k[1] != n:
        sys.exit("clean build ran %d (forge) / %d (ninja) actions, expected %d" % (f[1], k[1], n))
    results["clean"] = (f, k)
    print(fmt_row("clean build", f, k, "target <= %.1fx ninja" % CLEAN_RATIO), flush=True)

    # The same, every command in the sandbox (the other rows run commands locally, as ninja).
    if sandboxed:
        forge.clean(d, "sandboxed")
        f = forge.build(strategy="sandboxed")
        results["sandboxed"] = (f, k)
        print(fmt_row("clean, sandboxed", f, k, "target <= %.1fx ninja" % SANDBOXED_RATIO), flush=True)
    forge.clean(d, "main-again")
    forge.output_base = os.path.join(d, "output_base-main")

    # No-op build: nothing changed, median of `runs`.
    fs = [forge.build() for _ in range(runs)]
    ks = [ninja.build() for _ in range(runs)]
    f = (statistics.median(x[0] for x in fs), max(x[1] for x in fs), None)
    k = (statistics.median(x[0] for x in ks), max(x[1] for x in ks), None)
    results["noop"] = (f, k, min(x[0] for x in fs))
    results["noop_rss_mb"] = forge.build(measure_memory=True)[2]
    note = "median of %d, forge min %.3f s" % (runs, min(x[0] for x in fs))
    if n == 5000:
        note += "; target < %.2f s" % NOOP_LIMIT_S
    print(fmt_row("no-op build", f, k, note + "; forge peak %.0f MB" % results["noop_rss_mb"]), flush=True)

    # Incremental: g0.txt changes; everything downstream of it reruns. Median of `runs`
    # edits (at least 3).
    edits = max(3, runs // 2)
    fs, ks = [], []
    for e in range(edits):
        touch_leaf(ws, nj, e)
        fs.append(forge.build())
        ks.append(ninja.build())
    f = (statistics.median(x[0] for x in fs), statistics.median(x[1] for x in fs), None)
    k = (statistics.median(x[0] for x in ks), statistics.median(x[1] for x in ks), None)
    results["incremental"] = (f, k)
    print(fmt_row("one leaf changed", f, k, "median of %d edits, %d affected; target <= %.1fx ninja" % (
        edits, affected(n), INCREMENTAL_RATIO)), flush=True)

    # One genrule's cmd changed (the last one, which nothing reads): each tool reruns that
    # one action; forge also reloads its package. Median of `edits` edits.
    fs, ks = [], []
    for e in range(edits):
        change_top_cmd(ws, nj, n, e)
        fs.append(forge.build(measure_memory=True))
        ks.append(ninja.build())
    f = (statistics.median(x[0] for x in fs), statistics.median(x[1] for x in fs), None)
    k = (statistics.median(x[0] for x in ks), statistics.median(x[1] for x in ks), None)
    results["cmd"] = (f, k, max(x[2] or 0 for x in fs))
    print(fmt_row("one cmd changed", f, k, "median of %d edits; forge peak %.0f MB" % (
        edits, results["cmd"][2])), flush=True)

    # A comment added to one BUILD file, then build: the edited package is loaded again,
    # comes out the same, and the stored plan is reused (the package-level cut-off). Then
    # without the cut-off (what the plan was made from forgotten): the plan is made again,
    # the other packages from the package store and every configured target's analysis
    # from the analysis result store; the same with the analysis store emptied before each
    # build (every target analysed, as before it existed), and with both stores emptied
    # (every package evaluated too).
    variants = (("comment", "BUILD comment, build", False, False, False),
                ("comment_replan", "  plan made again", True, False, False),
                ("comment_noanalysis", "  analysis store emptied", True, False, True),
                ("comment_nostore", "  both stores emptied", True, True, True))
    for v, (key, what, forget_plan, forget_packages, forget_analysis) in enumerate(variants):
        fs, loaded, configured = [], [], []
        for e in range(edits):
            comment_build_file(ws, e + 100 * v)
            if forget_plan:
                forge.forget_plan_packages()
            if forget_packages:
                forge.forget_packages()
            if forget_analysis:
                forge.forget_analysis()
            fs.append(forge.build(measure_memory=True))
            loaded.append(packages_loaded(forge.last_output))
            configured.append(targets_configured(forge.last_output))
        f = statistics.median(x[0] for x in fs)
        rss = max(x[2] or 0 for x in fs)
        results[key] = f
        results[key + "_rss_mb"] = rss
        print("%-25s forge %7.3f s  (%s packages loaded, %s targets configured, %d actions, peak %.0f MB; median of %d)" % (
            what, f, "/".join(str(x) for x in sorted(set(loaded))),
            "/".join(str(x) for x in sorted(set(configured))), max(x[1] for x in fs), rss, edits), flush=True)

    # forge query //... from a fresh process: the package store filled (by the builds above),
    # and emptied before each run (every BUILD file evaluated).
    for store in (True, False):
        qs = []
        for _ in range(runs):
            if not store:
                forge.forget_packages()
            qs.append(forge.query())
        q = statistics.median(x[0] for x in qs)
        results["query" if store else "query_nostore"] = q
        print("%-22s forge %7.3f s  (%d labels; median of %d, min %.3f s)" % (
            "query //..." if store else "  same, store emptied", q, qs[0][1], runs, min(x[0] for x in qs)),
            flush=True)

    results["rss_mb"] = results["clean"][0][2]
    print("forge peak memory (clean build): %.0f MB%s" % (
        results["rss_mb"], "; target < %d MB" % MEMORY_LIMIT_MB if n == 5000 else ""), flush=True)
    shutil.rmtree(forge.output_base, ignore_errors=True)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    target_dir = os.environ.get("CARGO_TARGET_DIR", os.path.join(here, "..", "target"))
    parser.add_argument("--forge", default=os.path.join(target_dir, "release", "forge"))
    parser.add_argument("--sizes", default="1000,5000", help="comma-separated numbers of genrules")
    parser.add_argument("--runs", type=int, default=5, help="no-op runs per size (median)")
    parser.add_argument("--jobs", "-j", type=int, default=os.cpu_count())
    parser.add_argument("--keep", help="generate into this directory and keep it")
    parser.add_argument("--no-sandboxed", action="store_true",
                        help="skip the sandboxed clean build (its targets are checked at 5,000 only)")
    args = parser.parse_args()
    forge = os.path.abspath(args.forge)
    if not os.path.exists(forge):
        sys.exit("no forge binary at %s: run `cargo build --release` first" % forge)
    if not shutil.which("ninja"):
        sys.exit("ninja not found (apt-get install ninja-build)")
    if not os.path.exists("/usr/bin/time"):
        sys.exit("/usr/bin/time not found (apt-get install time)")
    sizes = [int(s) for s in args.sizes.split(",") if s]

    root = args.keep or tempfile.mkdtemp(prefix="forge-build-bench-")
    if args.keep and os.path.exists(root):
        shutil.rmtree(root)
    os.makedirs(root, exist_ok=True)
    print("forge %s, ninja %s, %d cores" % (
        forge, subprocess.run(["ninja", "--version"], stdout=subprocess.PIPE).stdout.decode().strip(),
        os.cpu_count()))
    try:
        results = {n: bench(root, n, forge, args.jobs, args.runs, not args.no_sandboxed) for n in sizes}
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    sizes = sorted(results)
    if len(sizes) > 1:
        print("\n== growth from %d to %d genrules (x%.0f) ==" % (sizes[0], sizes[-1], sizes[-1] / sizes[0]))
        rows = (
            ("clean build, forge s", lambda r: r["clean"][0][0]),
            ("clean build, ninja s", lambda r: r["clean"][1][0]),
            ("no-op, forge s", lambda r: r["noop"][0][0]),
            ("no-op, ninja s", lambda r: r["noop"][1][0]),
            ("one cmd changed, forge s", lambda r: r["cmd"][0][0]),
            ("BUILD comment, forge s", lambda r: r["comment"]),
            ("query //..., forge s", lambda r: r["query"]),
            ("peak MB, clean build", lambda r: r["rss_mb"]),
            ("peak MB, no-op", lambda r: r["noop_rss_mb"]),
            ("peak MB, BUILD comment", lambda r: r["comment_rss_mb"]),
        )
        print("%-26s %s   growth" % ("", "  ".join("%10d" % n for n in sizes)))
        for name, get in rows:
            values = [get(results[n]) for n in sizes]
            print("%-26s %s   x%.1f" % (name, "  ".join("%10.3f" % v for v in values),
                                        values[-1] / values[0] if values[0] else float("inf")))

    print("\n== targets ==")
    ok = True

    def check(name, value, limit, unit, passed):
        nonlocal ok
        ok &= passed
        print("%-44s %8.3f %-3s (limit %s)  %s" % (name, value, unit, limit, "met" if passed else "MISSED"))

    for n, r in results.items():
        (fc, kc), (fi, ki) = r["clean"], r["incremental"]
        check("clean build, %d targets, forge/ninja" % n, fc[0] / kc[0], "%.1fx" % CLEAN_RATIO, "x",
              fc[0] / kc[0] <= CLEAN_RATIO)
        check("one leaf changed, %d targets, forge/ninja" % n, fi[0] / ki[0], "%.1fx" % INCREMENTAL_RATIO, "x",
              fi[0] / ki[0] <= INCREMENTAL_RATIO)
        if "sandboxed" in r:
            fs, ks = r["sandboxed"]
            check("clean sandboxed, %d targets, forge/ninja" % n, fs[0] / ks[0], "%.1fx" % SANDBOXED_RATIO, "x",
                  fs[0] / ks[0] <= SANDBOXED_RATIO)
        if n == 5000:
            noop = r["noop"][0][0]
            check("no-op build, 5000 targets (median)", noop, "%.2f s" % NOOP_LIMIT_S, "s", noop < NOOP_LIMIT_S)
            check("peak memory, 5000-target clean build", r["rss_mb"], "%d MB" % MEMORY_LIMIT_MB, "MB",
                  r["rss_mb"] < MEMORY_LIMIT_MB)
        if n >= SCALE_SIZE:
            check("clean build, %d targets, forge/ninja" % n, fc[0] / kc[0], "%.1fx" % SCALE_CLEAN_RATIO, "x",
                  fc[0] / kc[0] <= SCALE_CLEAN_RATIO)
            fn, kn = r["noop"][0][0], r["noop"][1][0]
            check("no-op, %d targets, forge/ninja" % n, fn / kn, "%.1fx" % SCALE_NOOP_RATIO, "x",
                  fn / kn <= SCALE_NOOP_RATIO)
            check("BUILD comment, %d targets" % n, r["comment"], "%.1f s" % SCALE_EDIT_LIMIT_S, "s",
                  r["comment"] <= SCALE_EDIT_LIMIT_S)
            # "<= 1 s plus the actions it reruns": what ninja takes to rerun the same action,
            # beyond its own no-op, is that action's time.
            (fcmd, kcmd, _) = r["cmd"]
            rerun = max(0.0, kcmd[0] - kn)
            check("one cmd changed, %d targets, minus its action" % n, fcmd[0] - rerun,
                  "%.1f s" % SCALE_EDIT_LIMIT_S, "s", fcmd[0] - rerun <= SCALE_EDIT_LIMIT_S)
            check("query //..., %d targets" % n, r["query"], "%.1f s" % SCALE_QUERY_LIMIT_S, "s",
                  r["query"] <= SCALE_QUERY_LIMIT_S)
            check("peak memory, %d-target clean build" % n, r["rss_mb"], "%d MB" % SCALE_CLEAN_MEMORY_MB, "MB",
                  r["rss_mb"] <= SCALE_CLEAN_MEMORY_MB)
            for what, key in (("no-op", "noop_rss_mb"), ("one cmd changed", None), ("BUILD comment", "comment_rss_mb")):
                mb = r["cmd"][2] if key is None else r[key]
                check("peak memory, %d targets, %s" % (n, what), mb, "%d MB" % SCALE_EDIT_MEMORY_MB, "MB",
                      mb <= SCALE_EDIT_MEMORY_MB)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""C++ build benchmark: a generated workspace of cc_library targets in layers, a cc_binary and
a cc_test on top, built by `forge build //...` and by ninja running forge's own compiler,
archiver and linker commands on the same graph, alternating, in one run: the clean build
(forge with `--spawn_strategy=local`, as ninja runs commands, and with every command
sandboxed), the no-op build, and the rebuild after one header changes.

Usage: python3 benches/cc.py [--forge PATH] [--libs 200] [--files 10] [--runs 3] [--keep DIR]

The graph: --libs libraries l000, l001, ... in 10 layers (one package each), each with
--files pairs f<k>.h / f<k>.cc. Above the first layer a library depends on three libraries
of the layer below (as in benches/build.py: positions p, p+1, p+2, wrapping), and f<k>.h
includes the f<k>.h of those three, so headers are included transitively, as in real C++.
Each header defines a seed constant computed from its dependencies' seeds, which its .cc uses:
changing the seed in l000/f0.h changes the object code of every f0.cc that includes it,
directly or not (100 libraries whatever --libs is, as in benches/build.py), so forge (which
stops early when an output is unchanged) and ninja (which does not) run the same actions.
`app` (cc_binary) and `app_test` (cc_test) depend on the whole top layer.

The ninja file is written from `forge aquery --output=jsonproto //...` (untimed): every
CppCompile, CppArchive and CppLink action forge runs, with its exact arguments, the
compile's `.d` file as ninja's depfile (`deps = gcc`), so that ninja, like forge, recompiles
exactly the objects whose included headers changed. It runs in a second copy of the sources
with the same relative paths, so the commands are the same strings. The benchmark checks
that both tools run the same number of actions in every row.

Builds nothing itself: pass a release binary (default: target/release/forge). Both tools get
`-j` = the number of cores; forge runs from a fresh process each time with its own output
base, new (empty) for each clean build. The clean builds are fair to both tools: the order
of the three rotates from run to run, each starts after a sync, and the outputs of earlier
builds are moved aside, not deleted, until the end (see Trash: on ext4 without a journal a
big deletion slows the file creations of the next half minute). Helpers come from
benches/build.py.
"""

import argparse
import json
import os
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build import Forge, Ninja, fmt_row, run  # noqa: E402

LAYERS = 10
DEPS_PER_LIB = 3

# The targets of issue 15.
CLEAN_RATIO = 1.1  # clean build, forge (local) / ninja
SANDBOXED_RATIO = 1.2  # clean build, forge (sandboxed) / ninja
NOOP_LIMIT_S = 0.1  # no-op build
HEADER_RATIO = 1.3  # rebuild after one header changed, forge / ninja

SPAWN_MNEMONICS = ("CppCompile", "CppArchive", "CppLink")


def lib_deps(i, libs):
    """The libraries of the layer below that l<i> depends on (none in the first layer)."""
    width = libs // LAYERS
    layer, pos = divmod(i, width)
    if layer == 0:
        return []
    return [(layer - 1) * width + (pos + k) % width for k in range(DEPS_PER_LIB)]


def lib_name(i):
    return "l%03d" % i


def header(i, k, libs, seed):
    deps = lib_deps(i, libs)
    lines = ["#pragma once\n"]
    lines += ['#include "%s/f%d.h"\n' % (lib_name(d), k) for d in deps]
    terms = ["L%d_F%d_SEED" % (d, k) for d in deps] + [str(seed)]
    # A constant, not a macro: a macro would expand to 3^layer terms.
    lines.append("constexpr int L%d_F%d_SEED = %s;\n" % (i, k, " + ".join(terms)))
    lines.append("int l%d_f%d(int x);\n" % (i, k))
    return "".join(lines)


def source(i, k, libs):
    deps = lib_deps(i, libs)
    calls = "".join("    r += l%d_f%d(x - 1);\n" % (d, k) for d in deps)
    return (
        '#include "%s/f%d.h"\n\n'
        "int l%d_f%d(int x) {\n"
        "    if (x <= 0) return L%d_F%d_SEED;\n"
        "    int r = x * L%d_F%d_SEED;\n"
        "    for (int i = 0; i < x %% 7; i++) r ^= r << 1;\n"
        "%s"
        "    return r;\n"
        "}\n" % (lib_name(i), k, i, k, i, k, i, k, calls)
    )


def main_source(top):
    includes = "".join('#include "%s/f0.h"\n' % lib_name(i) for i in top)
    calls = "".join("    r += l%d_f0(3) + L%d_F0_SEED;\n" % (i, i) for i in top)
    return "%s\nint main() {\n    int r = 0;\n%s    return r == 0;\n}\n" % (includes, calls)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def generate(root, libs, files):
    """Writes root/forge (a workspace) and root/ninja (the same sources, build.ninja later)."""
    if libs % LAYERS or libs // LAYERS < DEPS_PER_LIB:
        sys.exit("--libs must be a multiple of %d, at least %d" % (LAYERS, LAYERS * DEPS_PER_LIB))
    ws, nj = os.path.join(root, "forge"), os.path.join(root, "ninja")
    write(os.path.join(ws, "WORKSPACE"), 'workspace(name = "ccbench")\n')
    for i in range(libs):
        name = lib_name(i)
        for d in (ws, nj):
            for k in range(files):
                write(os.path.join(d, name, "f%d.h" % k), header(i, k, libs, i + k))
                write(os.path.join(d, name, "f%d.cc" % k), source(i, k, libs))
        write(os.path.join(ws, name, "BUILD"), (
            "cc_library(\n"
            '    name = "%s",\n'
            '    srcs = glob(["*.cc"]),\n'
            '    hdrs = glob(["*.h"]),\n'
            "    deps = [%s],\n"
            '    visibility = ["//visibility:public"],\n'
            ")\n" % (name, ", ".join('"//%s"' % lib_name(d) for d in lib_deps(i, libs)))))
    top = range(libs - libs // LAYERS, libs)
    deps = ", ".join('"//%s"' % lib_name(i) for i in top)
    for d in (ws, nj):
        write(os.path.join(d, "app", "main.cc"), main_source(top))
        write(os.path.join(d, "app", "test.cc"), main_source(top))
    write(os.path.join(ws, "app", "BUILD"), (
        'cc_binary(name = "app", srcs = ["main.cc"], deps = [%s])\n\n'
        'cc_test(name = "app_test", srcs = ["test.cc"], deps = [%s])\n' % (deps, deps)))
    return ws, nj


def ninja_escape(s):
    return s.replace("$", "$$")


def ninja_path(s):
    return s.replace("$", "$$").replace(" ", "$ ").replace(":", "$:")


def plan(forge):
    """forge's planned actions, from `forge aquery --output=jsonproto //...`."""
    _, out = run([forge.binary, "--output_base", forge.output_base, "aquery", "--output=jsonproto", "//..."],
                 forge.ws, forge.env)
    return json.loads(out[out.index("{"):])


def write_ninja(graph, nj, exec_root):
    """build.ninja from forge's planned actions: the same argument vectors, in the same exec
    paths. A link's parameter file (`@path`, written by forge in-process) becomes ninja's
    own response file, its content read from `exec_root` after a forge build, so ninja writes
    it as part of the command like forge does. Returns (the number of build statements, the
    output directories, forge's action environment)."""
    fragments = {p["id"]: p for p in graph["pathFragments"]}

    def fragment_path(fid):
        parts = []
        while fid:
            p = fragments[fid]
            parts.append(p["label"])
            fid = p.get("parentId")
        return "/".join(reversed(parts))

    artifacts = {a["id"]: fragment_path(a["pathFragmentId"]) for a in graph["artifacts"]}
    depsets = {d["id"]: d for d in graph["depSetOfFiles"]}

    def flatten(ids, seen, acc):
        for i in ids:
            if i in seen:
                continue
            seen.add(i)
            d = depsets[i]
            flatten(d.get("transitiveDepSetIds", []), seen, acc)
            acc.extend(artifacts[a] for a in d.get("directArtifactIds", []))
        return acc

    lines = ["# forge's CppCompile, CppArchive and CppLink actions, from forge aquery\n",
             "rule compile\n  command = $cmd\n  description = $out\n  depfile = $dfile\n  deps = gcc\n\n",
             "rule run\n  command = $cmd\n  description = $out\n\n",
             "rule link\n  command = $cmd\n  description = $out\n  rspfile = $rsp\n"
             "  rspfile_content = $rsp_content\n\n"]
    count, dirs, env = 0, set(), {}
    for action in graph["actions"]:
        if action["mnemonic"] not in SPAWN_MNEMONICS:
            continue
        env.update({e["key"]: e["value"] for e in action.get("environmentVariables", [])})
        args = action["arguments"]
        cmd = ninja_escape(" ".join(shlex.quote(a) for a in args))
        outputs = [artifacts[o] for o in action["outputIds"]]
        dirs.update(os.path.dirname(o) for o in outputs)
        if action["mnemonic"] == "CppCompile":
            # Like forge, ninja learns the headers from the .d file; the declared input is the
            # source (headers are not generated here, so nothing has to be built first).
            obj = args[args.index("-o") + 1]
            src = args[args.index("-c") + 1]
            dfile = args[args.index("-MF") + 1]
            lines.append("build %s: compile %s\n  cmd = %s\n  dfile = %s\n" % (
                ninja_path(obj), ninja_path(src), cmd, ninja_path(dfile)))
        else:
            inputs = flatten(action.get("inputDepSetIds", []), set(), [])
            params = [a[1:] for a in args if a.startswith("@")]
            inputs = [i for i in inputs if i not in params]
            lines.append("build %s: %s %s\n  cmd = %s\n" % (
                " ".join(ninja_path(o) for o in outputs), "link" if params else "run",
                " ".join(ninja_path(i) for i in inputs), cmd))
            for p in params:
                # gcc reads an @file as whitespace-separated arguments; forge writes one a line.
                with open(os.path.join(exec_root, p)) as f:
                    content = " ".join(f.read().split())
                lines.append("  rsp = %s\n  rsp_content = %s\n" % (ninja_path(p), ninja_escape(content)))
        count += 1
    with open(os.path.join(nj, "build.ninja"), "w") as f:
        f.write("".join(lines))
    return count, sorted(dirs), env


class Trash:
    """Where the outputs of earlier builds go instead of being deleted before a timed build.

    The file system may be ext4 without a journal (this machine's is): there, a new inode is
    not given a number freed in the last ~35 s, and finding one walks past every such number,
    so a build that starts right after `rm -rf` of a big tree pays for it in every file it
    creates (compilers and forge alike). Deleting each tool's previous outputs just before
    its own build charged forge, whose output base holds more files than ninja's outputs,
    for its own cleaning. Renaming costs nothing; the trash is emptied at the end."""

    def __init__(self, root):
        self.root = os.path.join(root, "trash")
        self.n = 0

    def take(self, path):
        if os.path.lexists(path):
            os.makedirs(self.root, exist_ok=True)
            self.n += 1
            os.rename(path, os.path.join(self.root, str(self.n)))

    def empty(self):
        shutil.rmtree(self.root, ignore_errors=True)


def settle():
    """Before a timed build: what the previous build wrote goes to disk now, not during it."""
    os.sync()


class CcNinja(Ninja):
    def __init__(self, d, jobs, dirs, env, trash):
        super().__init__(d, jobs)
        self.dirs = dirs
        self.env = dict(self.env, **env)
        self.trash = trash

    def clean(self):
        """No outputs and no log or deps; the output directories are made here, untimed, like
        forge makes them itself (ninja does not)."""
        for name in ("forge-out", ".ninja_log", ".ninja_deps"):
            self.trash.take(os.path.join(self.d, name))
        for d in self.dirs:
            os.makedirs(os.path.join(self.d, d), exist_ok=True)


def edit_header(ws, nj, libs, e):
    """A new seed in l000/f0.h, in both copies."""
    for d in (ws, nj):
        write(os.path.join(d, lib_name(0), "f0.h"), header(0, 0, libs, 1000 + e))


def affected_by_header(libs):
    """What the edit of l000/f0.h reruns: each affected library's f0.cc compile, archive and
    shared library, then main.cc and test.cc (they include the top layer's f0.h), and both links."""
    hit = {0}
    for i in range(libs // LAYERS, libs):
        if any(d in hit for d in lib_deps(i, libs)):
            hit.add(i)
    return 3 * len(hit) + 2 * 2


def with_cpu(build):
    """Runs `build()`; returns its (seconds, actions, peak MB) with the CPU seconds (user +
    system) of the tool and every command it ran, which a loaded machine disturbs less than
    the elapsed time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    secs, actions, rss = build()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return secs, actions, rss, cpu


def cpu_note(f, k):
    return "CPU %.1f s / %.1f s = %.2fx" % (f[3], k[3], f[3] / k[3] if k[3] else float("inf"))


def median_row(xs):
    return (statistics.median(x[0] for x in xs), statistics.median(x[1] for x in xs), None,
            statistics.median(x[3] for x in xs))


def expect(what, got, want):
    if got != want:
        sys.exit("%s ran %d actions, expected %d" % (what, got, want))


def bench(root, libs, files, forge_bin, jobs, runs):
    d = os.path.join(root, "libs%d" % libs)
    os.makedirs(d)
    ws, nj = generate(d, libs, files)
    env = dict(os.environ, XDG_CACHE_HOME=os.path.join(d, ".cache"))
    forge = Forge(forge_bin, ws, jobs, env)
    trash = Trash(d)
    forge.output_base = os.path.join(d, "output_base-plan")
    graph = plan(forge)
    trash.take(forge.output_base)
    actions = sum(1 for a in graph["actions"] if a["mnemonic"] in SPAWN_MNEMONICS)
    # Forge also counts writing each link's parameter file; ninja writes it with the link.
    param_files = sum(1 for a in graph["actions"] if a["mnemonic"] in SPAWN_MNEMONICS
                      for arg in a["arguments"] if arg.startswith("@"))
    print("\n== %d libraries x %d files, %d layers, %d actions, -j %d ==" % (
        libs, files, LAYERS, actions, jobs), flush=True)
    results = {}

    # Clean builds of forge (local), ninja and forge (sandboxed), `runs` times, median. Each
    # into a new, empty output directory, the last one moved to the trash (see Trash), after
    # a sync; the order rotates from run to run so that no tool always follows the same one.
    # The ninja file is written after forge's first build, which wrote the parameter files.
    fl, k, fs = [], [], []
    ninja = None

    def forge_build(tag, strategy, into):
        def build():
            trash.take(os.path.join(d, "output_base-%s" % tag))
            forge.output_base = os.path.join(d, "output_base-%s" % tag)
            settle()
            into.append(with_cpu(lambda: forge.build(measure_memory=True, strategy=strategy)))
            expect("forge clean build (%s)" % strategy, into[-1][1], actions + param_files)
        return build

    def ninja_build():
        nonlocal ninja
        if ninja is None:
            exec_root = os.path.join(d, "output_base-main", "execroot", "ccbench")
            _, dirs, action_env = write_ninja(graph, nj, exec_root)
            ninja = CcNinja(nj, jobs, dirs, action_env, trash)
        ninja.clean()
        settle()
        k.append(with_cpu(ninja.build))
        expect("ninja clean build", k[-1][1], actions)

    steps = [forge_build("main", "local", fl), ninja_build, forge_build("sandboxed", "sandboxed", fs)]
    for r in range(runs):
        for step in steps[r % 3:] + steps[:r % 3]:
            step()
        print("  clean build %d: forge %.2f s (CPU %.1f s), ninja %.2f s (CPU %.1f s), sandboxed %.2f s "
              "(CPU %.1f s); load %.1f" % (r + 1, fl[-1][0], fl[-1][3], k[-1][0], k[-1][3], fs[-1][0], fs[-1][3],
                                          os.getloadavg()[0]), flush=True)
    results["rss_mb"] = max(x[2] for x in fl)
    f, k, s = median_row(fl), median_row(k), median_row(fs)
    results["clean"], results["sandboxed"] = (f, k), (s, k)
    print(fmt_row("clean build", f, k, "median of %d; target <= %.1fx ninja; %s" % (
        runs, CLEAN_RATIO, cpu_note(f, k))))
    print(fmt_row("clean, sandboxed", s, k, "median of %d; target <= %.1fx ninja; %s" % (
        runs, SANDBOXED_RATIO, cpu_note(s, k))), flush=True)
    trash.take(os.path.join(d, "output_base-sandboxed"))
    forge.output_base = os.path.join(d, "output_base-main")

    # No-op: nothing changed, alternating, median of 2 * `runs` (at least 5).
    fn, kn = [], []
    for _ in range(max(5, 2 * runs)):
        fn.append(with_cpu(forge.build))
        kn.append(with_cpu(ninja.build))
        expect("forge no-op", fn[-1][1], 0)
        expect("ninja no-op", kn[-1][1], 0)
    f, k = median_row(fn), median_row(kn)
    results["noop"] = (f, k)
    print(fmt_row("no-op build", f, k, "median of %d, forge min %.3f s; target <= %.2f s" % (
        len(fn), min(x[0] for x in fn), NOOP_LIMIT_S)), flush=True)

    # One header changed: a new seed in l000/f0.h, alternating, median of `runs` edits (at least 3).
    want = affected_by_header(libs)
    fh, kh = [], []
    for e in range(max(3, runs)):
        edit_header(ws, nj, libs, e)
        fh.append(with_cpu(forge.build))
        kh.append(with_cpu(ninja.build))
        expect("forge after the header edit", fh[-1][1], want)
        expect("ninja after the header edit", kh[-1][1], want)
    f, k = median_row(fh), median_row(kh)
    results["header"] = (f, k)
    print(fmt_row("one header changed", f, k, "median of %d edits; target <= %.1fx ninja; %s" % (
        len(fh), HEADER_RATIO, cpu_note(f, k))), flush=True)
    print("forge peak memory (clean build): %.0f MB" % results["rss_mb"], flush=True)
    trash.take(forge.output_base)
    trash.empty()
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    target_dir = os.environ.get("CARGO_TARGET_DIR", os.path.join(here, "..", "target"))
    parser.add_argument("--forge", default=os.path.join(target_dir, "release", "forge"))
    parser.add_argument("--libs", type=int, default=200, help="number of cc_library targets")
    parser.add_argument("--files", type=int, default=10, help=".cc/.h pairs per library")
    parser.add_argument("--runs", type=int, default=3, help="repetitions of each row (median)")
    parser.add_argument("--jobs", "-j", type=int, default=os.cpu_count())
    parser.add_argument("--keep", help="generate into this directory and keep it")
    args = parser.parse_args()
    forge = os.path.abspath(args.forge)
    if not os.path.exists(forge):
        sys.exit("no forge binary at %s: run `cargo build --release` first" % forge)
    if not shutil.which("ninja"):
        sys.exit("ninja not found (apt-get install ninja-build)")
    if not os.path.exists("/usr/bin/time"):
        sys.exit("/usr/bin/time not found (apt-get install time)")

    root = args.keep or tempfile.mkdtemp(prefix="forge-cc-bench-")
    if args.keep and os.path.exists(root):
        shutil.rmtree(root)
    os.makedirs(root, exist_ok=True)
    print("forge %s, ninja %s, %d cores, load average %s" % (
        forge, subprocess.run(["ninja", "--version"], stdout=subprocess.PIPE).stdout.decode().strip(),
        os.cpu_count(), " ".join("%.1f" % x for x in os.getloadavg())))
    try:
        r = bench(root, args.libs, args.files, forge, args.jobs, args.runs)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    print("\n== targets (load average now %s) ==" % " ".join("%.1f" % x for x in os.getloadavg()))
    ok = True

    def check(name, value, limit, unit, passed):
        nonlocal ok
        ok &= passed
        print("%-44s %8.3f %-3s (limit %s)  %s" % (name, value, unit, limit, "met" if passed else "MISSED"))

    for key, name, limit in (("clean", "clean build, forge/ninja", CLEAN_RATIO),
                             ("sandboxed", "clean build sandboxed, forge/ninja", SANDBOXED_RATIO),
                             ("header", "one header changed, forge/ninja", HEADER_RATIO)):
        f, k = r[key]
        check(name, f[0] / k[0], "%.1fx" % limit, "x", f[0] / k[0] <= limit)
        print("%-44s %8.3f x   (CPU time, for the noise)" % ("  same, CPU", f[3] / k[3]))
    noop = r["noop"][0][0]
    check("no-op build (median)", noop, "%.2f s" % NOOP_LIMIT_S, "s", noop <= NOOP_LIMIT_S)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

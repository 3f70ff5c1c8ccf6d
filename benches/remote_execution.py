#!/usr/bin/env python3
"""Remote execution benchmark: the genrule workspace of benches/build.py (N genrules in 10
layers) built remotely — BuildGrid in execution mode on a throw-away PostgreSQL, two
`forge worker`s on this machine — against the local sandboxed build, in one run.

Usage: python3 benches/remote_execution.py [--forge PATH] [--size 1000] [--keep DIR]

Reports:
- the clean local sandboxed build and the clean remote build (`--noremote_accept_cached`,
  so every action runs on a worker), and the per-action overhead of remote execution:
  (remote - local) / N;
- a second remote build from a fresh output base, which every action's result is cached
  for, with build without the bytes (`--remote_download_minimal`: nothing is downloaded):
  it loads, analyses and looks each action up, then stores the build entry;
- a third, the same command from another fresh output base, which takes the plan and the
  results from that build entry (docs/remote-cache.md), against a local no-op build from a
  warm output base. The target is <= 2x; it is reported, not enforced (a benchmark, not a
  timed test).

Needs what .ci/run installs: PostgreSQL 15 (FORGE_TEST_PG_BIN, default
/usr/lib/postgresql/15/bin) and BuildGrid (FORGE_TEST_BGD, default
~/.cache/forge-ci/buildgrid-venv/bin/bgd). Builds nothing itself: pass a release binary
(default: target/release/forge).
"""

import argparse
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import build  # noqa: E402  (the workspace generator of the build benchmark)

CACHED_RATIO = 2.0  # fully cached remote build from a fresh output base / local no-op


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, check, proc, log, limit=60):
    deadline = time.time() + limit
    while not check():
        if proc.poll() is not None or time.time() > deadline:
            sys.exit("%s did not start:\n%s" % (what, open(log).read()[-4000:]))
        time.sleep(0.1)


def start(cmd, log, user=None):
    if user:
        cmd = ["setpriv", "--reuid=" + user, "--regid=" + user, "--init-groups"] + cmd
    return subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def servers(root, forge, jobs):
    """PostgreSQL, BuildGrid and two workers; returns (url, processes)."""
    pg_bin = os.environ.get("FORGE_TEST_PG_BIN", "/usr/lib/postgresql/15/bin")
    bgd = os.environ.get("FORGE_TEST_BGD",
                         os.path.expanduser("~/.cache/forge-ci/buildgrid-venv/bin/bgd"))
    pg = os.path.join(root, "pg")
    os.makedirs(pg)
    user = None
    if os.geteuid() == 0:
        user = "postgres" if any(p.pw_name == "postgres" for p in pwd.getpwall()) else "nobody"
        os.chmod(root, 0o755)
        shutil.chown(pg, user)
    init = ["setpriv", "--reuid=" + user, "--regid=" + user, "--init-groups"] if user else []
    subprocess.run(init + [os.path.join(pg_bin, "initdb"), "-U", "bgd", "--auth=trust",
                           "-D", os.path.join(pg, "data")], check=True, stdout=subprocess.DEVNULL)
    procs = [start([os.path.join(pg_bin, "postgres"), "-D", os.path.join(pg, "data"), "-k", pg,
                    "-c", "listen_addresses=", "-c", "fsync=off", "-c", "max_connections=200"],
                   os.path.join(root, "pg.log"), user)]
    wait_for("postgres", lambda: os.path.exists(os.path.join(pg, ".s.PGSQL.5432")), procs[0],
             os.path.join(root, "pg.log"))
    url = "postgresql+psycopg://bgd@/postgres?host=" + pg
    subprocess.run([bgd, "migrate", "apply", url], check=True, stdout=subprocess.DEVNULL)
    port = free_port()
    conf = os.path.join(root, "buildgrid.yml")
    with open(conf, "w") as f:
        f.write("""server:
  - !channel
    address: "127.0.0.1:%(port)d"
    insecure-mode: true
authorization:
  method: none
monitoring:
  enabled: false
connections:
  - !sql-connection &sql
    connection-string: %(url)s
    pool-size: 20
    max-overflow: 40
storages:
  - !disk-storage &cas
    path: %(cas)s
caches:
  - !lru-action-cache &ac
    storage: *cas
    max-cached-refs: 1000000
    allow-updates: true
    cache-failed-actions: false
schedulers:
  - !sql-scheduler &scheduler
    sql: *sql
    storage: *cas
    action-cache: *ac
    poll-interval: 0.05
    bot-poll-interval: 0.05
    bot-session-keepalive-timeout: 30
    assigners:
      - !priority-age-assigner
        count: 2
        interval: 0.02
instances:
  - name: ''
    services:
      - !action-cache
        cache: *ac
      - !execution
        scheduler: *scheduler
      - !cas
        storage: *cas
      - !bytestream
        storage: *cas
thread-pool-size: 80
""" % {"port": port, "url": url, "cas": os.path.join(root, "cas")})
    log = os.path.join(root, "bgd.log")
    procs.append(start([bgd, "server", "start", conf], log))
    wait_for("bgd", lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, procs[-1], log)
    server = "grpc://127.0.0.1:%d" % port
    for name in ("a", "b"):
        work = os.path.join(root, "worker-" + name)
        procs.append(start([forge, "worker", "--server", server, "--jobs", str(jobs),
                            "--work_dir", work], work + ".log"))
    return server, procs


def timed(cmd, cwd):
    start_t = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    elapsed = time.perf_counter() - start_t
    out = result.stdout.decode(errors="replace")
    if result.returncode != 0:
        sys.exit("%s failed:\n%s" % (" ".join(cmd), out[-4000:]))
    summary = [l for l in out.splitlines() if " executed, " in l]
    timed.output = out
    return elapsed, (summary[-1] if summary else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(os.path.dirname(__file__), "..", "target")
    ap.add_argument("--forge", default=os.path.join(target, "release", "forge"))
    ap.add_argument("--size", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=os.cpu_count())
    ap.add_argument("--keep", help="keep the workspace and the servers' files here")
    args = ap.parse_args()
    forge = os.path.abspath(args.forge)
    root = args.keep or tempfile.mkdtemp(prefix="forge-remote-bench-")
    os.makedirs(root, exist_ok=True)
    procs = []
    try:
        ws, _ = build.generate(os.path.join(root, "gen"), args.size)
        server, procs = servers(root, forge, args.jobs)
        base = lambda tag: os.path.join(root, "output_base-" + tag)
        jobs = ["-j", str(args.jobs)]
        n = args.size
        local, _ = timed([forge, "--output_base", base("local"), "build"] + jobs + ["//..."], ws)
        noop, _ = timed([forge, "--output_base", base("local"), "build"] + jobs + ["//..."], ws)
        executor = "--remote_executor=" + server
        remote, line = timed([forge, "--output_base", base("remote"), "build", "-j", "50",
                              executor, "--noremote_accept_cached", "//..."], ws)
        if not re.search(r"Commands: %d remote" % n, line):
            sys.exit("not every action ran remotely: " + line)
        cached, line2 = timed([forge, "--output_base", base("cached"), "build", "-j", "50",
                               executor, "--remote_download_minimal", "//..."], ws)
        if "Fetched 0 files" not in line2:
            sys.exit("the cached build without the bytes fetched something: " + line2)
        # Another fresh output base, the same command: the build entry the one above stored.
        entry, line4 = timed([forge, "--output_base", base("entry"), "build", "-j", "50",
                              executor, "--remote_download_minimal", "//..."], ws)
        if "came from the remote cache's build entry" not in timed.output:
            sys.exit("the build entry was not used:\n" + timed.output[-4000:])
        if "Fetched 0 files" not in line4 or not re.search(r" 0 actions executed", line4):
            sys.exit("the build from the build entry ran or fetched something: " + line4)
        # What a fresh output base costs before any action: loading, analysis, setting up
        # the output base (the floor of the cached build above).
        analysis, _ = timed([forge, "--output_base", base("analysis"), "build", "--nobuild",
                             "//..."], ws)
        # The same build again on its now warm output base: nothing on disk, all known.
        warm, line3 = timed([forge, "--output_base", base("cached"), "build", "-j", "50",
                             executor, "--remote_download_minimal", "//..."], ws)
        print("forge %s, %d cores, %d genrules, 2 workers x %d jobs" % (forge, os.cpu_count(), n, args.jobs))
        print("clean build   local sandboxed %7.2f s   remote %7.2f s   overhead per action %6.2f ms"
              % (local, remote, (remote - local) / n * 1000))
        print("fresh output base, all cached remotely, lookup per action %6.2f s   local no-op %6.3f s"
              "   ratio %.1fx" % (cached, noop, cached / noop if noop > 0 else float("inf")))
        print("  " + line2)
        print("  of which a fresh output base's loading and analysis (--nobuild) %6.2f s;"
              " remote lookups and storing the build entry %6.2f s (%.2f ms per action)"
              % (analysis, cached - analysis, (cached - analysis) / n * 1000))
        ratio = entry / noop if noop > 0 else float("inf")
        print("fresh output base, from the build entry %6.2f s   local no-op %6.3f s   ratio %.1fx"
              " (target <= %.0fx: %s)"
              % (entry, noop, ratio, CACHED_RATIO, "met" if ratio <= CACHED_RATIO else "missed"))
        print("  " + line4)
        print("no-op without the bytes, warm output base %6.3f s (local no-op %6.3f s)"
              % (warm, noop))
        print("  " + line3)
    finally:
        for p in reversed(procs):
            try:
                os.killpg(p.pid, 9)
            except ProcessLookupError:
                pass
            p.wait()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

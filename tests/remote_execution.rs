//! Remote execution against real servers started on 127.0.0.1 by each test: a throw-away
//! PostgreSQL cluster (initdb in a temporary directory, unix socket only, no TCP) for
//! BuildGrid's scheduler, BuildGrid in execution mode with short polling intervals, and
//! `forge worker`s taking its leases. A workspace is built and tested remotely from a fresh
//! output base and every output compared with a local build's; a second fresh output base
//! then runs nothing. Also: a remotely failing action reports its output, a platform the
//! worker cannot honour is refused by name, tags and strategies keep actions here, a worker
//! killed mid-action leaves its lease to another, and an unreachable executor is named (or
//! skipped with `--remote_local_fallback`).
//!
//! The tests that need the servers are `#[ignore]`d, as in tests/remote.rs: `.ci/run`
//! installs PostgreSQL 15 and BuildGrid and runs them with `--include-ignored`.

mod common;

use std::fs;
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Run, Workspace, free_port};

const IGNORE: &str =
    "needs PostgreSQL 15 and BuildGrid: .ci/run installs them and runs the ignored tests";

fn ok(run: &Run) {
    assert_eq!(run.code, 0, "forge failed:\n{}", run.both());
}

fn summary(run: &Run) -> String {
    run.stderr
        .lines()
        .find(|l| l.contains(" executed, "))
        .unwrap_or_else(|| panic!("no summary line in:\n{}", run.stderr))
        .to_owned()
}

/// A process in its own process group, killed (all of it) on drop.
struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(mut command: Command, log: PathBuf) -> Process {
        let out = fs::File::create(&log).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", command.get_program()));
        Process { child, log }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    fn kill(&mut self) {
        let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

fn postgres_bin() -> PathBuf {
    let dir = std::env::var_os("FORGE_TEST_PG_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"));
    assert!(
        dir.join("initdb").is_file(),
        "PostgreSQL is not installed ({}): apt-get install postgresql-15, or set \
         FORGE_TEST_PG_BIN to its bin directory",
        dir.display()
    );
    dir
}

/// PostgreSQL refuses to run as root: as root, the cluster belongs to the `postgres` user
/// (Debian's package makes it), else `nobody`.
fn as_postgres_user(program: &Path) -> Command {
    if !common::is_root() {
        return Command::new(program);
    }
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let user = ["postgres", "nobody"]
        .into_iter()
        .find(|u| passwd.lines().any(|l| l.starts_with(&format!("{u}:"))))
        .expect("a postgres or nobody user");
    let mut command = Command::new("setpriv");
    command
        .arg(format!("--reuid={user}"))
        .arg(format!("--regid={user}"))
        .arg("--init-groups")
        .arg(program);
    command
}

/// A throw-away PostgreSQL cluster listening only on a unix socket in its directory.
struct Postgres {
    _server: Process,
    socket_dir: PathBuf,
    _dir: tempfile::TempDir,
}

impl Postgres {
    fn start() -> Postgres {
        let bin = postgres_bin();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        if common::is_root() {
            let _ = Command::new("chmod").arg("755").arg(&d).status();
            let status = Command::new("chown")
                .arg(
                    if fs::read_to_string("/etc/passwd")
                        .unwrap_or_default()
                        .contains("\npostgres:")
                    {
                        "postgres"
                    } else {
                        "nobody"
                    },
                )
                .arg(&d)
                .status()
                .unwrap();
            assert!(status.success());
        }
        let init = as_postgres_user(&bin.join("initdb"))
            .args(["-U", "bgd", "--auth=trust", "-E", "UTF8", "-D"])
            .arg(d.join("data"))
            .output()
            .unwrap();
        assert!(
            init.status.success(),
            "initdb failed:\n{}{}",
            String::from_utf8_lossy(&init.stdout),
            String::from_utf8_lossy(&init.stderr)
        );
        let mut command = as_postgres_user(&bin.join("postgres"));
        command
            .arg("-D")
            .arg(d.join("data"))
            .arg("-k")
            .arg(&d)
            .args(["-c", "listen_addresses=", "-c", "fsync=off"])
            .args(["-c", "max_connections=200"]);
        let log = std::env::temp_dir().join(format!(
            "forge-test-pg-{}-{}.log",
            std::process::id(),
            free_port()
        ));
        let mut server = Process::spawn(command, log);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !d.join(".s.PGSQL.5432").exists() {
            assert!(
                server.exited().is_none(),
                "postgres exited:\n{}",
                server.log()
            );
            assert!(
                Instant::now() < deadline,
                "postgres did not start:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Postgres {
            _server: server,
            socket_dir: d,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!(
            "postgresql+psycopg://bgd@/postgres?host={}",
            self.socket_dir.display()
        )
    }
}

fn find_bgd() -> PathBuf {
    if let Some(p) = std::env::var_os("FORGE_TEST_BGD") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let venv = home.join(".cache/forge-ci/buildgrid-venv/bin/bgd");
    assert!(
        venv.is_file(),
        "BuildGrid is not installed: a virtualenv with `pip install buildgrid` (Python >= \
         3.13); set FORGE_TEST_BGD to its bin/bgd"
    );
    venv
}

/// BuildGrid in execution mode (Execution, Bots, CAS, ByteStream, ActionCache) over a fresh
/// PostgreSQL, polling often so that a test does not wait on the scheduler.
struct BuildGrid {
    server: Process,
    port: u16,
    dir: tempfile::TempDir,
    _postgres: Postgres,
}

impl BuildGrid {
    /// With its CAS on disk, as a real deployment's: a restarted server still has the blobs.
    fn start() -> BuildGrid {
        BuildGrid::start_with_cas(true)
    }

    /// With its CAS on disk, or in memory (lost when it restarts).
    fn start_with_cas(on_disk: bool) -> BuildGrid {
        let postgres = Postgres::start();
        let bgd = find_bgd();
        let migrate = Command::new(&bgd)
            .args(["migrate", "apply"])
            .arg(postgres.url())
            .output()
            .unwrap();
        assert!(
            migrate.status.success(),
            "bgd migrate failed:\n{}{}",
            String::from_utf8_lossy(&migrate.stdout),
            String::from_utf8_lossy(&migrate.stderr)
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let conf = format!(
            r#"server:
  - !channel
    address: "127.0.0.1:{port}"
    insecure-mode: true
authorization:
  method: none
monitoring:
  enabled: false
connections:
  - !sql-connection &sql
    connection-string: {url}
    pool-size: 10
    pool-timeout: 30
    max-overflow: 20
storages:
  {storage}
caches:
  - !lru-action-cache &ac
    storage: *cas
    max-cached-refs: 100000
    allow-updates: true
    cache-failed-actions: false
schedulers:
  - !sql-scheduler &scheduler
    sql: *sql
    storage: *cas
    action-cache: *ac
    poll-interval: 0.1
    bot-poll-interval: 0.1
    # A bot not heard from for 5 s is gone: its leases go to another.
    bot-session-keepalive-timeout: 5
    session-expiry-timer-interval: 0.5
    property-set: !dynamic-property-set
      wildcard-property-keys: [container-image]
    assigners:
      - !priority-age-assigner
        count: 1
        interval: 0.05
instances:
  - name: ''
    services:
      - !action-cache
        cache: *ac
      - !execution
        scheduler: *scheduler
        operation-stream-keepalive-timeout: 5
      - !cas
        storage: *cas
      - !bytestream
        storage: *cas
thread-pool-size: 40
"#,
            url = postgres.url(),
            storage = match on_disk {
                true => format!(
                    "- !disk-storage &cas\n    path: {}",
                    dir.path().join("cas").display()
                ),
                false => "- !lru-storage &cas\n    size: 512MB".to_owned(),
            }
        );
        fs::write(dir.path().join("buildgrid.yml"), conf).unwrap();
        let server = BuildGrid::serve(dir.path(), port, 0);
        BuildGrid {
            server,
            port,
            dir,
            _postgres: postgres,
        }
    }

    /// `bgd server start` on the configuration in `dir`, once it listens.
    fn serve(dir: &Path, port: u16, generation: usize) -> Process {
        let mut command = Command::new(find_bgd());
        command
            .args(["server", "start"])
            .arg(dir.join("buildgrid.yml"));
        let log = dir.join(format!("bgd-{generation}.log"));
        let mut server = Process::spawn(command, log);
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(server.exited().is_none(), "bgd exited:\n{}", server.log());
            assert!(
                Instant::now() < deadline,
                "bgd did not listen within 60 s:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// Stops the server and starts it again on the same port, database and storage (an
    /// in-memory CAS comes back empty).
    fn restart(&mut self) {
        self.server.kill();
        self.server = BuildGrid::serve(self.dir.path(), self.port, 1);
    }

    fn url(&self) -> String {
        format!("grpc://127.0.0.1:{}", self.port)
    }

    /// A `forge worker` with `jobs` slots, its work directory under the server's.
    fn worker(&self, name: &str, jobs: usize) -> (Process, PathBuf) {
        let work = self.dir.path().join(name);
        fs::create_dir_all(&work).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_forge"));
        command
            .args([
                "worker",
                "--server",
                &self.url(),
                "--jobs",
                &jobs.to_string(),
            ])
            .arg("--work_dir")
            .arg(&work)
            .env_remove("RUST_BACKTRACE");
        let log = self.dir.path().join(format!("{name}.log"));
        (Process::spawn(command, log), work)
    }
}

fn executor(server: &BuildGrid) -> String {
    format!("--remote_executor={}", server.url())
}

/// Every output file under `dir` by relative path, with its bytes; runfiles trees and
/// manifests (which name this machine's paths) are left out.
fn files_under(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.unwrap();
        let rel = entry
            .path()
            .strip_prefix(dir)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if entry.file_type().is_file() && !rel.contains(".runfiles") {
            files.insert(rel, fs::read(entry.path()).unwrap());
        }
    }
    files
}

/// The paths whose content differs between two sets of outputs (or that one lacks).
fn differences(
    a: &std::collections::BTreeMap<String, Vec<u8>>,
    b: &std::collections::BTreeMap<String, Vec<u8>>,
) -> Vec<String> {
    a.keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

/// `(remote, remote cache hit, local, sandboxed)` from the summary.
fn where_ran(run: &Run) -> (usize, usize, usize, usize) {
    let line = summary(run);
    let commands = line
        .split("Commands: ")
        .nth(1)
        .unwrap_or_else(|| panic!("no command counts in: {line}"));
    let numbers: Vec<usize> = commands
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    (numbers[0], numbers[1], numbers[2], numbers[3])
}

#[test]
#[ignore = "needs PostgreSQL 15 and BuildGrid: .ci/run installs them and runs the ignored tests"]
fn builds_and_tests_remotely_exactly_as_locally() {
    let _ = IGNORE;
    let server = BuildGrid::start();
    let (_a, _) = server.worker("worker-a", 2);
    let (_b, _) = server.worker("worker-b", 2);
    let targets = ["//gen/...", "//app/..."];

    let local = Workspace::fixture("remote");
    ok(&local.forge(&["build", targets[0], targets[1]]));

    let remote = Workspace::fixture("remote");
    let mut args = vec!["test", targets[0], targets[1], "--noremote_accept_cached"];
    let flag = executor(&server);
    args.push(&flag);
    let run = remote.forge(&args);
    ok(&run);
    // The build's three genrules ran remotely; the symlinks of the sh_* rules are written
    // here, in-process, and are no command.
    assert_eq!(where_ran(&run), (3, 0, 0, 0), "{}", run.stderr);
    // The test summary is on stdout, as Bazel prints it.
    assert!(
        run.stdout
            .contains("Executed 2 out of 2 tests: 2 tests pass."),
        "{}",
        run.both()
    );
    // The tests ran on a worker (whose sandbox names its exec root `remote`, where this
    // workspace's is `remotews`), and their logs came back.
    let log = remote.root().join("forge-testlogs/app/words_test/test.log");
    let log = fs::read_to_string(&log).unwrap();
    assert!(log.contains("words test ok in /execroot/remote/"), "{log}");
    let built = files_under(&remote.root().join("forge-bin"));
    let names: Vec<&String> = built.keys().collect();
    assert!(built.contains_key("gen/big.bin"), "{names:?}");
    assert!(built.contains_key("gen/counted.txt"), "{names:?}");
    let differ = differences(&built, &files_under(&local.root().join("forge-bin")));
    assert!(
        differ.is_empty(),
        "remote outputs differ from local ones: {differ:?}"
    );

    // A fresh output base: everything is in the server's caches.
    let again = Workspace::fixture("remote");
    let run = again.forge(&["test", targets[0], targets[1], &flag]);
    ok(&run);
    let (ran, hits, _, _) = where_ran(&run);
    assert_eq!(ran, 0, "{}", run.stderr);
    assert!(hits >= 3, "{}", run.stderr);
    assert!(run.stdout.contains("(cached) PASSED"), "{}", run.both());
    let differ = differences(&files_under(&again.root().join("forge-bin")), &built);
    assert!(differ.is_empty(), "cached outputs differ: {differ:?}");
}

/// A workspace of genrules written by the test.
fn genrules(build: &str) -> Workspace {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "workspace(name = \"genrules\")\n");
    ws.write("pkg/BUILD", build);
    ws
}

#[test]
#[ignore = "needs PostgreSQL 15 and BuildGrid: .ci/run installs them and runs the ignored tests"]
fn remote_failures_platforms_tags_and_strategies() {
    let server = BuildGrid::start();
    let (_worker, _) = server.worker("worker", 2);
    let flag = executor(&server);

    // A failing action reports its output and exit code like a local failure.
    let ws = genrules(
        r#"genrule(
    name = "fails",
    outs = ["fails.txt"],
    cmd = "echo partial > $@; echo boom-from-the-worker >&2; exit 3",
)
"#,
    );
    let run = ws.forge(&["build", "//pkg:fails", &flag]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr.contains("boom-from-the-worker"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("exit 3"), "{}", run.stderr);

    // The action's timeout travels with it: the worker kills the command, the client reports
    // the timeout.
    let ws = genrules(
        r#"genrule(
    name = "sleeps",
    outs = ["sleeps.txt"],
    cmd = "sleep 30; echo late > $@",
    tags = ["timeout:1"],
)
"#,
    );
    let started = Instant::now();
    let run = ws.forge(&["build", "//pkg:sleeps", &flag]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(run.stderr.contains("timed out after 1 s"), "{}", run.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "{:?}",
        started.elapsed()
    );

    // A platform the worker cannot honour is refused with its reason.
    let ws = genrules(
        r#"genrule(name = "a", outs = ["a.txt"], cmd = "echo a > $@")
"#,
    );
    let run = ws.forge(&[
        "build",
        "//pkg:a",
        &flag,
        "--remote_default_exec_properties=container-image=docker://debian:12",
    ]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr
            .contains("cannot honour the platform property container-image=docker://debian:12"),
        "{}",
        run.stderr
    );

    // So is one a target asks for with exec_properties.
    let ws = genrules(
        r#"genrule(
    name = "contained",
    outs = ["contained.txt"],
    cmd = "echo c > $@",
    exec_properties = {"container-image": "docker://alpine:3"},
)
"#,
    );
    let run = ws.forge(&["build", "//pkg:contained", &flag]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr
            .contains("cannot honour the platform property container-image=docker://alpine:3"),
        "{}",
        run.stderr
    );

    // Tags and strategies keep actions here.
    let ws = genrules(
        r#"genrule(name = "remote", outs = ["remote.txt"], cmd = "echo r > $@")
genrule(name = "tagged", outs = ["tagged.txt"], cmd = "echo t > $@", tags = ["no-remote-exec"])
genrule(name = "unsandboxed", outs = ["local.txt"], cmd = "echo l > $@", tags = ["local"])
"#,
    );
    let run = ws.forge(&["build", "//pkg:all", &flag, "--noremote_accept_cached"]);
    ok(&run);
    assert_eq!(where_ran(&run), (1, 0, 1, 1), "{}", run.stderr);
    let run = ws.forge(&[
        "build",
        "//pkg:all",
        &flag,
        "--noremote_accept_cached",
        "--strategy=Genrule=sandboxed",
        "--spawn_strategy=remote",
    ]);
    ok(&run);
    // Nothing changed: everything is up to date, nothing runs.
    assert_eq!(where_ran(&run), (0, 0, 0, 0), "{}", run.stderr);
    ws.write(
        "pkg/BUILD",
        &fs::read_to_string(ws.root().join("pkg/BUILD"))
            .unwrap()
            .replace("echo r", "echo r2")
            .replace("echo t ", "echo t2 "),
    );
    let run = ws.forge(&["build", "//pkg:all", &flag, "--strategy=Genrule=sandboxed"]);
    ok(&run);
    assert_eq!(where_ran(&run), (0, 0, 0, 2), "{}", run.stderr);
}

#[test]
#[ignore = "needs PostgreSQL 15 and BuildGrid: .ci/run installs them and runs the ignored tests"]
fn a_worker_killed_mid_action_leaves_the_action_to_another() {
    let server = BuildGrid::start();
    let (mut first, work) = server.worker("first", 1);
    let ws = genrules(
        r#"genrule(name = "slow", outs = ["slow.txt"], cmd = "sleep 3; echo done > $@")
"#,
    );
    let child = ws
        .command(&["build", "//pkg:slow", &executor(&server)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first worker has the action once its input root is being made.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !work.join("slot-0/execroot").exists() {
        assert!(
            Instant::now() < deadline,
            "the first worker never took the action:\n{}",
            first.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill();
    let (_second, _) = server.worker("second", 1);
    let out = child.wait_with_output().unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    ok(&run);
    assert_eq!(where_ran(&run).0, 1, "{}", run.stderr);
    assert_eq!(
        fs::read_to_string(ws.root().join("forge-bin/pkg/slow.txt")).unwrap(),
        "done\n"
    );
}

#[test]
#[ignore = "needs PostgreSQL 15 and BuildGrid: .ci/run installs them and runs the ignored tests"]
fn the_worker_comes_back_after_the_server_restarts() {
    let mut server = BuildGrid::start();
    let (worker, _) = server.worker("worker", 1);
    let flag = executor(&server);
    let ws = genrules(
        r#"genrule(name = "a", outs = ["a.txt"], cmd = "echo one > $@")
"#,
    );
    let run = ws.forge(&["build", "//pkg:a", &flag]);
    ok(&run);
    assert_eq!(where_ran(&run).0, 1, "{}", run.stderr);
    server.restart();
    ws.write(
        "pkg/BUILD",
        r#"genrule(name = "a", outs = ["a.txt"], cmd = "echo two > $@")
"#,
    );
    let run = ws.forge(&["build", "//pkg:a", &flag]);
    ok(&run);
    assert_eq!(where_ran(&run).0, 1, "{}\n{}", run.stderr, worker.log());
    assert_eq!(
        fs::read_to_string(ws.root().join("forge-bin/pkg/a.txt")).unwrap(),
        "two\n"
    );
}

#[test]
#[ignore = "needs PostgreSQL 15 and BuildGrid: .ci/run installs them and runs the ignored tests"]
fn the_server_restarting_mid_action_costs_the_build_nothing() {
    // In memory: the restarted server has lost the action's blobs, so the worker answers
    // that inputs are missing and the client uploads them again.
    let mut server = BuildGrid::start_with_cas(false);
    let (worker, work) = server.worker("worker", 1);
    let ws = genrules(
        r#"genrule(name = "slow", outs = ["slow.txt"], cmd = "sleep 2; echo done > $@")
"#,
    );
    let child = ws
        .command(&["build", "//pkg:slow", &executor(&server)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !work.join("slot-0/execroot").exists() {
        assert!(
            Instant::now() < deadline,
            "the worker never took the action:\n{}",
            worker.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The client's operation stream and the worker's session both drop; the client waits for
    // the operation again (WaitExecution), the worker opens a new session, and the action,
    // whose lease the old session took with it, runs again — after the client has uploaded
    // its inputs again.
    server.restart();
    let out = child.wait_with_output().unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_eq!(run.code, 0, "{}\n--- worker\n{}", run.both(), worker.log());
    assert_eq!(where_ran(&run).0, 1, "{}", run.stderr);
    assert_eq!(
        fs::read_to_string(ws.root().join("forge-bin/pkg/slow.txt")).unwrap(),
        "done\n"
    );
}

#[test]
#[ignore = "needs PostgreSQL 15 and BuildGrid: .ci/run installs them and runs the ignored tests"]
fn a_corrupt_output_on_the_server_is_never_trusted() {
    use sha2::Digest as _;
    let server = BuildGrid::start();
    let (_worker, _) = server.worker("worker", 1);
    let flag = executor(&server);
    let build = r#"genrule(name = "a", outs = ["a.txt"], cmd = "echo trusted > $@")
"#;
    let ws = genrules(build);
    ok(&ws.forge(&["build", "//pkg:a", &flag]));
    // The output's blob in BuildGrid's disk storage, replaced by other bytes of its size.
    let hash: String = sha2::Sha256::digest(b"trusted\n")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let blob = server
        .dir
        .path()
        .join("cas/cas/objects")
        .join(&hash[..2])
        .join(&hash[2..]);
    assert!(blob.is_file(), "{}", blob.display());
    fs::write(&blob, "TRUSTED\n").unwrap();

    let fresh = genrules(build);
    let run = fresh.forge(&["build", "//pkg:a", &flag]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr.contains("does not match its digest"),
        "{}",
        run.stderr
    );
    assert!(!fresh.root().join("forge-bin/pkg/a.txt").exists());
}

#[test]
fn an_unreachable_executor_is_named_or_skipped_with_local_fallback() {
    let port = free_port();
    let url = format!("grpc://127.0.0.1:{port}");
    let ws = genrules(
        r#"genrule(name = "a", outs = ["a.txt"], cmd = "echo a > $@")
"#,
    );
    let flag = format!("--remote_executor={url}");
    let run = ws.forge(&["build", "//pkg:a", &flag, "--remote_timeout=5"]);
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(
        run.stderr
            .contains(&format!("remote executor {url} is unavailable")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("--remote_local_fallback"),
        "{}",
        run.stderr
    );

    let run = ws.forge(&[
        "build",
        "//pkg:a",
        &flag,
        "--remote_timeout=5",
        "--remote_local_fallback",
    ]);
    ok(&run);
    assert!(
        run.stderr
            .contains(&format!("WARNING: remote executor {url} is unavailable")),
        "{}",
        run.stderr
    );
    assert_eq!(where_ran(&run), (0, 0, 0, 1), "{}", run.stderr);
    assert_eq!(
        fs::read_to_string(ws.root().join("forge-bin/pkg/a.txt")).unwrap(),
        "a\n"
    );
}

#[test]
fn the_remote_strategy_needs_an_executor() {
    let ws = genrules(
        r#"genrule(name = "a", outs = ["a.txt"], cmd = "echo a > $@")
"#,
    );
    let run = ws.forge(&["build", "//pkg:a", "--strategy=Genrule=remote"]);
    assert_eq!(run.code, 2, "{}", run.both());
    assert!(run.stderr.contains("--remote_executor"), "{}", run.stderr);
    let run = ws.forge(&["build", "//pkg:a", "--remote_executor=http://127.0.0.1:1"]);
    assert_eq!(run.code, 2, "{}", run.both());
    assert!(run.stderr.contains("grpc://"), "{}", run.stderr);
    let run = ws.forge(&["worker", "--server", "http://127.0.0.1:1"]);
    assert_eq!(run.code, 2, "{}", run.both());
    assert!(
        run.stderr
            .contains("--server expects a grpc:// or grpcs:// URL, not 'http://127.0.0.1:1'"),
        "{}",
        run.stderr
    );
}

/// The blob of `content` in BuildGrid's disk storage.
fn blob_on_server(server: &BuildGrid, content: &[u8]) -> PathBuf {
    use sha2::Digest as _;
    let hash: String = sha2::Sha256::digest(content)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    server
        .dir
        .path()
        .join("cas/cas/objects")
        .join(&hash[..2])
        .join(&hash[2..])
}

/// `(files, bytes)` from the summary's `Fetched N files (B bytes).`
fn fetched(run: &Run) -> (usize, usize) {
    let line = summary(run);
    let rest = line
        .split("Fetched ")
        .nth(1)
        .unwrap_or_else(|| panic!("no fetched counts in: {line}"));
    let numbers: Vec<usize> = rest
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(2)
        .map(|s| s.parse().unwrap())
        .collect();
    (numbers[0], numbers[1])
}

/// A chain of remote genrules (`a` → `b`), one tagged `local` reading `b`, and a program
/// whose runfiles hold `b`.
const WITHOUT_BYTES: &str = r#"genrule(name = "a", outs = ["a.txt"], cmd = "echo alpha > $@")
genrule(
    name = "b",
    srcs = [":a"],
    outs = ["b.txt"],
    cmd = "cat $(location :a) > $@; echo beta >> $@",
)
genrule(
    name = "here",
    srcs = [":b"],
    outs = ["here.txt"],
    cmd = "tr a-z A-Z < $(location :b) > $@",
    tags = ["local"],
)
sh_binary(name = "tool", srcs = ["tool.sh"], data = [":b"])
sh_test(name = "reads_b", srcs = ["reads_b.sh"], data = [":b"], tags = ["local"])
sh_test(name = "reads_b_remotely", srcs = ["reads_b.sh"], data = [":b"])
"#;

fn without_bytes_workspace(build: &str) -> Workspace {
    let ws = genrules(build);
    ws.write("pkg/tool.sh", "#!/bin/sh\nexec cat pkg/b.txt\n");
    ws.write(
        "pkg/reads_b.sh",
        "#!/bin/sh\ngrep -q beta pkg/b.txt && echo read-b-here\n",
    );
    ws
}

#[test]
#[ignore = "needs PostgreSQL 15 and BuildGrid: .ci/run installs them and runs the ignored tests"]
fn build_without_the_bytes_fetches_only_what_is_needed() {
    let server = BuildGrid::start();
    let (_worker, _) = server.worker("worker", 2);
    let flag = executor(&server);
    let bin = |ws: &Workspace, name: &str| ws.root().join("forge-bin/pkg").join(name);

    // Minimal: both genrules run remotely, nothing comes down.
    let ws = without_bytes_workspace(WITHOUT_BYTES);
    let run = ws.forge(&["build", "//pkg:b", &flag, "--remote_download_minimal"]);
    ok(&run);
    assert_eq!(where_ran(&run), (2, 0, 0, 0), "{}", run.stderr);
    assert_eq!(fetched(&run), (0, 0), "{}", run.stderr);
    assert!(!bin(&ws, "a.txt").exists() && !bin(&ws, "b.txt").exists());
    // Again: nothing runs, nothing is fetched; the outputs are known by their digests.
    let run = ws.forge(&["build", "//pkg:b", &flag, "--remote_download_minimal"]);
    ok(&run);
    assert!(
        summary(&run).contains("INFO: 0 actions executed"),
        "{}",
        run.stderr
    );
    assert_eq!(fetched(&run), (0, 0), "{}", run.stderr);
    assert!(!bin(&ws, "b.txt").exists());

    // A command tagged `local` reads `b`: it comes down, `a` stays remote.
    let run = ws.forge(&["build", "//pkg:here", &flag, "--remote_download_minimal"]);
    ok(&run);
    assert_eq!(fetched(&run), (1, "alpha\nbeta\n".len()), "{}", run.stderr);
    assert_eq!(
        fs::read_to_string(bin(&ws, "here.txt")).unwrap(),
        "ALPHA\nBETA\n"
    );
    assert_eq!(
        fs::read_to_string(bin(&ws, "b.txt")).unwrap(),
        "alpha\nbeta\n"
    );
    assert!(!bin(&ws, "a.txt").exists());

    // `forge run` fetches the program's runfiles.
    let fresh = without_bytes_workspace(WITHOUT_BYTES);
    let run = fresh.forge(&["run", "//pkg:tool", &flag, "--remote_download_minimal"]);
    ok(&run);
    assert_eq!(run.stdout, "alpha\nbeta\n", "{}", run.both());
    assert!(!bin(&fresh, "a.txt").exists());
    // Built first without the bytes, then run: the actions are up to date with their outputs
    // remote, and the program still comes down.
    let fresh = without_bytes_workspace(WITHOUT_BYTES);
    let run = fresh.forge(&["build", "//pkg:tool", &flag, "--remote_download_minimal"]);
    ok(&run);
    let run = fresh.forge(&["run", "//pkg:tool", &flag, "--remote_download_minimal"]);
    ok(&run);
    assert_eq!(run.stdout, "alpha\nbeta\n", "{}", run.both());
    assert!(
        run.stderr.contains("INFO: 0 actions executed"),
        "{}",
        run.stderr
    );

    // A test run remotely reads `b` there; a test run here (tagged `local`) reads it
    // through its runfiles, so it comes down. Both logs come back.
    let fresh = without_bytes_workspace(WITHOUT_BYTES);
    let run = fresh.forge(&[
        "test",
        "//pkg:reads_b_remotely",
        &flag,
        "--remote_download_minimal",
    ]);
    ok(&run);
    assert!(
        run.stderr.contains("Test commands: 1 remote,"),
        "{}",
        run.stderr
    );
    assert!(!bin(&fresh, "b.txt").exists(), "{}", run.both());
    // Its result is cached here, keyed without `b`'s bytes.
    let again = fresh.forge(&[
        "test",
        "//pkg:reads_b_remotely",
        &flag,
        "--remote_download_minimal",
    ]);
    ok(&again);
    assert!(again.stdout.contains("(cached) PASSED"), "{}", again.both());
    assert!(!bin(&fresh, "b.txt").exists(), "{}", again.both());
    let run = fresh.forge(&["test", "//pkg:reads_b", &flag, "--remote_download_minimal"]);
    ok(&run);
    for test in ["reads_b", "reads_b_remotely"] {
        let log = fs::read_to_string(
            fresh
                .root()
                .join("forge-testlogs/pkg")
                .join(test)
                .join("test.log"),
        )
        .unwrap_or_else(|e| panic!("no test log of {test} ({e}):\n{}", run.both()));
        assert!(log.contains("read-b-here"), "{log}");
    }
    assert!(bin(&fresh, "b.txt").exists() && !bin(&fresh, "a.txt").exists());

    // Toplevel, from a fresh output base that the server has everything for: exactly the
    // requested target's output comes down.
    let fresh = without_bytes_workspace(WITHOUT_BYTES);
    let run = fresh.forge(&["build", "//pkg:b", &flag, "--remote_download_toplevel"]);
    ok(&run);
    assert_eq!(fetched(&run), (1, "alpha\nbeta\n".len()), "{}", run.stderr);
    assert_eq!(
        fs::read_to_string(bin(&fresh, "b.txt")).unwrap(),
        "alpha\nbeta\n"
    );
    assert!(!bin(&fresh, "a.txt").exists());
    // Already here: nothing more comes down, nothing runs.
    let run = fresh.forge(&["build", "//pkg:b", &flag, "--remote_download_toplevel"]);
    ok(&run);
    assert_eq!(fetched(&run), (0, 0), "{}", run.stderr);
    assert!(
        summary(&run).contains("INFO: 0 actions executed"),
        "{}",
        run.stderr
    );

    // Minimal from a fresh output base, everything cached: nothing runs, nothing comes
    // down, and every action is a remote cache hit.
    let fresh = without_bytes_workspace(WITHOUT_BYTES);
    let run = fresh.forge(&["build", "//pkg:b", &flag, "--remote_download_minimal"]);
    ok(&run);
    let (ran, hits, _, _) = where_ran(&run);
    assert_eq!((ran, hits), (0, 2), "{}", run.stderr);
    assert_eq!(fetched(&run), (0, 0), "{}", run.stderr);
    assert!(!bin(&fresh, "b.txt").exists());
    // Without the flag, the next build downloads what the previous one left remote.
    let run = fresh.forge(&["build", "//pkg:b", &flag]);
    ok(&run);
    assert_eq!(
        fs::read_to_string(bin(&fresh, "b.txt")).unwrap(),
        "alpha\nbeta\n"
    );
    assert_eq!(fs::read_to_string(bin(&fresh, "a.txt")).unwrap(), "alpha\n");
}

#[test]
#[ignore = "needs PostgreSQL 15 and BuildGrid: .ci/run installs them and runs the ignored tests"]
fn build_without_the_bytes_leaves_no_stale_file_and_survives_eviction() {
    let server = BuildGrid::start();
    let (_worker, _) = server.worker("worker", 2);
    let flag = executor(&server);
    let bin = |ws: &Workspace, name: &str| ws.root().join("forge-bin/pkg").join(name);

    // Built with every output downloaded, then changed and built without the bytes: the
    // old `a.txt` must not stay in forge-bin as if it were the new one.
    let ws = without_bytes_workspace(WITHOUT_BYTES);
    ok(&ws.forge(&["build", "//pkg:b", &flag]));
    assert_eq!(fs::read_to_string(bin(&ws, "a.txt")).unwrap(), "alpha\n");
    ws.write(
        "pkg/BUILD",
        &WITHOUT_BYTES.replace("echo alpha > $@", "echo gamma > $@"),
    );
    let run = ws.forge(&["build", "//pkg:b", &flag, "--remote_download_minimal"]);
    ok(&run);
    assert!(!bin(&ws, "a.txt").exists(), "a stale a.txt is left");
    assert!(!bin(&ws, "b.txt").exists(), "a stale b.txt is left");

    // The server evicts `b`'s output; a local command needs it: the action that made it
    // runs again and the build succeeds.
    let blob = blob_on_server(&server, b"gamma\nbeta\n");
    assert!(blob.is_file(), "{}", blob.display());
    fs::remove_file(&blob).unwrap();
    let run = ws.forge(&["build", "//pkg:here", &flag, "--remote_download_minimal"]);
    ok(&run);
    assert!(
        run.stderr.contains("WARNING: the remote cache lost") && run.stderr.contains("pkg/b.txt"),
        "{}",
        run.stderr
    );
    assert_eq!(
        fs::read_to_string(bin(&ws, "here.txt")).unwrap(),
        "GAMMA\nBETA\n"
    );

    // Evicted again, and a remote action needs it: found before executing, made anew.
    let blob = blob_on_server(&server, b"gamma\n");
    fs::remove_file(&blob).unwrap();
    ws.write(
        "pkg/BUILD",
        &format!(
            "{}genrule(name = \"c\", srcs = [\":a\"], outs = [\"c.txt\"], cmd = \"cat $< > $@\")\n",
            WITHOUT_BYTES.replace("echo alpha > $@", "echo gamma > $@")
        ),
    );
    let run = ws.forge(&["build", "//pkg:c", &flag, "--remote_download_toplevel"]);
    ok(&run);
    assert!(
        run.stderr.contains("WARNING: the remote cache lost"),
        "{}",
        run.stderr
    );
    assert_eq!(fs::read_to_string(bin(&ws, "c.txt")).unwrap(), "gamma\n");
}

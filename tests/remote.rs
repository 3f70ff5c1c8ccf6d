//! The remote cache against real servers started on 127.0.0.1 by each test: nginx with WebDAV
//! for Bazel's HTTP cache protocol, BuildGrid (cache-only, in-memory) for the REAPI gRPC
//! cache. A build and test on one output base fill the cache; a fresh copy of the workspace on
//! another output base then runs nothing and reports every test `(cached) PASSED`. Also: a
//! server stopped mid-build or never answering, a corrupted blob, the upload/accept switches,
//! headers and basic auth, and bad flags.
//!
//! The tests that need a server are `#[ignore]`d, so a machine without the servers reports
//! them as ignored, never as passed; `.ci/run` installs both (nginx-full; BuildGrid in a
//! virtualenv whose `bgd` it names in `FORGE_TEST_BGD`) and runs them with
//! `--include-ignored`, where a missing server fails the test.

mod common;

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Run, Workspace, free_port};

const BIN: &str = "forge-bin";

/// `(executed, from cache, up to date)` from the summary line.
fn counts(run: &Run) -> (usize, usize, usize) {
    let line = summary(run);
    let numbers: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    (numbers[0], numbers[1], numbers[2])
}

fn summary(run: &Run) -> String {
    run.stderr
        .lines()
        .find(|l| l.contains(" executed, "))
        .unwrap_or_else(|| panic!("no summary line in:\n{}", run.stderr))
        .to_owned()
}

fn warnings(run: &Run) -> Vec<&str> {
    run.stderr
        .lines()
        .filter(|l| l.starts_with("WARNING: remote cache"))
        .collect()
}

fn ok(run: &Run) {
    assert_eq!(run.code, 0, "forge failed:\n{}", run.both());
}

/// A server process in its own process group, killed (all of it) on drop.
struct Server {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    log: PathBuf,
}

impl Server {
    fn spawn(mut command: Command, port: u16, dir: tempfile::TempDir) -> Result<Server, String> {
        let log = dir.path().join("server.log");
        let out = fs::File::create(&log).map_err(|e| e.to_string())?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone().map_err(|e| e.to_string())?)
            .stderr(out)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {:?}: {e}", command.get_program()))?;
        let mut server = Server {
            child,
            port,
            dir,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "the server exited ({status}):\n{}",
                    fs::read_to_string(&server.log).unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "the server did not listen on port {port} within 60 s:\n{}",
            fs::read_to_string(&server.log).unwrap_or_default()
        ))
    }

    fn stop(&mut self) {
        let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn find_nginx() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// nginx serving a WebDAV directory (`root()`), as teams use it for Bazel's HTTP cache. With
/// `auth`, it wants basic auth `forge:secret` and the header `X-Forge-Test: yes`.
fn nginx(auth: bool) -> Server {
    let binary = find_nginx()
        .unwrap_or_else(|| panic!("nginx is not installed: apt-get install nginx-full"));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir_all(d.join("root")).unwrap();
    fs::create_dir_all(d.join("tmp")).unwrap();
    fs::create_dir_all(d.join("logs")).unwrap();
    fs::write(d.join("htpasswd"), "forge:{PLAIN}secret\n").unwrap();
    let port = free_port();
    // As root, nginx's workers would run as nobody, who cannot enter the temp directory.
    let root =
        fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    let user = if root { "user root root;" } else { "" };
    let guard = if auth {
        r#"auth_basic "cache";
            auth_basic_user_file htpasswd;
            if ($http_x_forge_test != "yes") { return 403; }"#
    } else {
        ""
    };
    let conf = format!(
        r#"{user}
daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/logs/error.log;
events {{ worker_connections 64; }}
http {{
    access_log {d}/logs/access.log;
    client_body_temp_path {d}/tmp;
    proxy_temp_path {d}/tmp;
    fastcgi_temp_path {d}/tmp;
    uwsgi_temp_path {d}/tmp;
    scgi_temp_path {d}/tmp;
    client_max_body_size 0;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            root {d}/root;
            dav_methods PUT;
            create_full_put_path on;
            dav_access user:rw group:r all:r;
            {guard}
        }}
    }}
}}
"#,
        d = d.display()
    );
    fs::write(d.join("nginx.conf"), conf).unwrap();
    let mut command = Command::new(binary);
    command.arg("-c").arg(d.join("nginx.conf")).arg("-p").arg(d);
    Server::spawn(command, port, dir).unwrap_or_else(|e| panic!("nginx: {e}"))
}

fn find_bgd() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FORGE_TEST_BGD") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let home = std::env::var_os("HOME").map(PathBuf::from)?;
    let venv = home.join(".cache/forge-ci/buildgrid-venv/bin/bgd");
    if venv.is_file() {
        return Some(venv);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("bgd"))
            .find(|p| p.is_file())
    })
}

/// BuildGrid in its cache-only configuration: ActionCache, CAS and ByteStream over an
/// in-memory LRU store.
fn buildgrid() -> Server {
    let bgd = find_bgd().unwrap_or_else(|| {
        panic!(
            "BuildGrid is not installed: a virtualenv with `pip install buildgrid` \
             (Python >= 3.13); set FORGE_TEST_BGD to its bin/bgd"
        )
    });
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
instances:
  - name: ''
    description: forge test cache
    storages:
      - !lru-storage &cas
        size: 256MB
    caches:
      - !lru-action-cache &ac
        storage: *cas
        max-cached-refs: 100000
        allow-updates: true
        cache-failed-actions: false
    services:
      - !action-cache
        cache: *ac
      - !cas
        storage: *cas
      - !bytestream
        storage: *cas
thread-pool-size: 8
"#
    );
    let path = dir.path().join("buildgrid.yml");
    fs::write(&path, conf).unwrap();
    let mut command = Command::new(bgd);
    command.args(["server", "start"]).arg(&path);
    Server::spawn(command, port, dir).unwrap_or_else(|e| panic!("BuildGrid: {e}"))
}

fn http_url(server: &Server) -> String {
    format!("http://127.0.0.1:{}/cache", server.port)
}

fn grpc_url(server: &Server) -> String {
    format!("grpc://127.0.0.1:{}", server.port)
}

const OUTPUTS: [&str; 4] = [
    "gen/words.upper",
    "gen/counted.txt",
    "gen/big.bin",
    "app/tool",
];

/// Build and test on one output base, then on a fresh copy with a new output base: nothing
/// runs, every test is `(cached) PASSED`, outputs are byte-identical.
fn shares_between_machines(url: &str) -> (Workspace, Workspace) {
    let flag = format!("--remote_cache={url}");
    let a = Workspace::fixture("remote");
    let run = a.forge(&["test", "//gen/...", "//app/...", &flag]);
    ok(&run);
    assert!(warnings(&run).is_empty(), "{}", run.stderr);
    let (executed, _, _) = counts(&run);
    assert!(executed > 0, "{}", run.stderr);
    assert!(
        summary(&run).contains(" 0 from the remote cache."),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("Executed 2 out of 2 tests"),
        "{}",
        run.both()
    );

    let b = Workspace::fixture("remote");
    assert_ne!(a.cache_dir(), b.cache_dir());
    let run = b.forge(&["test", "//gen/...", "//app/...", &flag]);
    ok(&run);
    assert!(warnings(&run).is_empty(), "{}", run.stderr);
    let (executed, cached, up_to_date) = counts(&run);
    assert_eq!(executed, 0, "no action runs:\n{}", run.stderr);
    assert_eq!(up_to_date, 0, "{}", run.stderr);
    assert!(
        summary(&run).contains(&format!(" {cached} from the remote cache.")),
        "every cache hit is a remote one:\n{}",
        run.stderr
    );
    for test in ["//app:tool_test", "//app:words_test"] {
        let line = run
            .stdout
            .lines()
            .find(|l| l.starts_with(test))
            .unwrap_or_else(|| panic!("no line for {test}:\n{}", run.both()));
        assert!(line.contains("(cached) PASSED"), "{line}");
    }
    assert!(
        run.stdout
            .contains("Executed 0 out of 2 tests: 2 tests pass."),
        "{}",
        run.both()
    );
    for out in OUTPUTS {
        let (pa, pb) = (a.root().join(BIN).join(out), b.root().join(BIN).join(out));
        assert_eq!(fs::read(&pa).unwrap(), fs::read(&pb).unwrap(), "{out}");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&pa), mode(&pb), "{out}");
    }
    assert_eq!(
        fs::metadata(b.root().join(BIN).join("gen/big.bin"))
            .unwrap()
            .len(),
        5 * 1024 * 1024
    );
    // The test logs came along too.
    let log = fs::read_to_string(b.root().join("forge-testlogs/app/tool_test/test.log")).unwrap();
    assert!(log.contains("tool test ok"), "{log}");
    // And the next build there is a plain local no-op.
    let run = b.forge(&["build", "//gen/...", "//app/...", &flag]);
    ok(&run);
    assert_eq!(counts(&run).0, 0, "{}", run.stderr);
    (a, b)
}

#[test]
#[ignore = "needs nginx (nginx-full): .ci/run installs it and runs the ignored tests"]
fn http_cache_is_shared_between_output_bases() {
    let server = nginx(false);
    let (a, _b) = shares_between_machines(&http_url(&server));

    // Bazel's layout: /cas/<sha256 of the content>, /ac/<sha256> holding an ActionResult.
    let root = server.dir.path().join("root/cache");
    let words = fs::read(a.root().join(BIN).join("gen/words.upper")).unwrap();
    let hash = sha256_hex(&words);
    assert_eq!(fs::read(root.join("cas").join(&hash)).unwrap(), words);
    let mut found = false;
    for entry in fs::read_dir(root.join("ac")).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        assert_eq!(name.len(), 64, "{name}");
        let bytes = fs::read(entry.path()).unwrap();
        let result =
            <forge::remote::proto::ActionResult as prost::Message>::decode(bytes.as_slice())
                .unwrap();
        for f in &result.output_files {
            if f.path.ends_with("/gen/words.upper") {
                assert_eq!(f.digest.as_ref().unwrap().hash, hash);
                assert_eq!(f.digest.as_ref().unwrap().size_bytes, words.len() as i64);
                found = true;
            }
        }
    }
    assert!(found, "no ActionResult names gen/words.upper");
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
#[ignore = "needs BuildGrid (FORGE_TEST_BGD): .ci/run installs it and runs the ignored tests"]
fn grpc_cache_is_shared_between_output_bases() {
    let server = buildgrid();
    shares_between_machines(&grpc_url(&server));
}

#[test]
#[ignore = "needs nginx (nginx-full): .ci/run installs it and runs the ignored tests"]
fn http_cache_sends_basic_auth_and_headers() {
    let server = nginx(true);
    let port = server.port;
    let url = format!("--remote_cache=http://forge:secret@127.0.0.1:{port}/cache");
    let a = Workspace::fixture("remote");
    let run = a.forge(&[
        "build",
        "//gen:words",
        &url,
        "--remote_header=X-Forge-Test=yes",
    ]);
    ok(&run);
    assert!(warnings(&run).is_empty(), "{}", run.stderr);
    assert!(server.dir.path().join("root/cache/ac").is_dir());

    let b = Workspace::fixture("remote");
    let run = b.forge(&[
        "build",
        "//gen:words",
        &url,
        "--remote-header=X-Forge-Test=yes",
    ]);
    ok(&run);
    assert_eq!(counts(&run).0, 0, "{}", run.stderr);

    // Without the header the server answers 403: one warning, the build goes on locally.
    let c = Workspace::fixture("remote");
    let run = c.forge(&["build", "//gen/...", &url]);
    ok(&run);
    let w = warnings(&run);
    assert_eq!(w.len(), 1, "{}", run.stderr);
    assert!(w[0].contains("403"), "{}", w[0]);
    // The password is not shown.
    assert!(!run.stderr.contains("secret"), "{}", run.stderr);
}

/// The server dies while the build runs: the build finishes locally, with one warning.
/// `//slow:slow` waits at a gate in a directory the test shares with it: by the time it has
/// started, its cache lookup has happened; its upload happens only once the test opens the
/// gate, after stopping the server.
fn server_stopped_midway(mut server: Server, url: &str) {
    let ws = Workspace::fixture("remote");
    let gate = tempfile::tempdir().unwrap();
    let child = ws
        .command(&[
            "build",
            "//slow:all",
            &format!("--remote_cache={url}"),
            &format!("--action_env=FORGE_TEST_GATE={}", gate.path().display()),
            &format!("--sandbox_writable_path={}", gate.path().display()),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = gate.path().join("started");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !started.exists() {
        assert!(Instant::now() < deadline, "//slow:slow never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.stop();
    fs::write(gate.path().join("open"), "").unwrap();
    let out = child.wait_with_output().unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    ok(&run);
    assert_eq!(counts(&run), (3, 0, 0), "{}", run.stderr);
    assert_eq!(warnings(&run).len(), 1, "{}", run.stderr);
    assert!(
        warnings(&run)[0].contains("continuing without it"),
        "{}",
        run.stderr
    );
    assert_eq!(
        fs::read_to_string(ws.root().join(BIN).join("slow/last.txt")).unwrap(),
        "first\nlast\n"
    );
}

#[test]
#[ignore = "needs nginx (nginx-full): .ci/run installs it and runs the ignored tests"]
fn http_server_stopped_midway() {
    let server = nginx(false);
    let url = http_url(&server);
    server_stopped_midway(server, &url);
}

#[test]
#[ignore = "needs BuildGrid (FORGE_TEST_BGD): .ci/run installs it and runs the ignored tests"]
fn grpc_server_stopped_midway() {
    let server = buildgrid();
    let url = grpc_url(&server);
    server_stopped_midway(server, &url);
}

/// A server that accepts connections and never answers: `--remote_timeout` bounds the wait,
/// one warning, the build and tests succeed.
#[test]
fn silent_server_times_out_once() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    for url in [
        format!("http://127.0.0.1:{port}"),
        format!("grpc://127.0.0.1:{port}"),
    ] {
        let ws = Workspace::fixture("remote");
        let started = Instant::now();
        let run = ws.forge(&[
            "test",
            "//app:words_test",
            &format!("--remote_cache={url}"),
            "--remote_timeout=1",
        ]);
        ok(&run);
        assert_eq!(warnings(&run).len(), 1, "{}", run.stderr);
        assert!(run.stdout.contains("PASSED"), "{}", run.both());
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    }
    drop(listener);
}

#[test]
#[ignore = "needs nginx (nginx-full): .ci/run installs it and runs the ignored tests"]
fn corrupt_blob_on_the_server_is_rebuilt() {
    let server = nginx(false);
    let flag = format!("--remote_cache={}", http_url(&server));
    let a = Workspace::fixture("remote");
    ok(&a.forge(&["build", "//gen/...", &flag]));
    let words = fs::read(a.root().join(BIN).join("gen/words.upper")).unwrap();
    let blob = server
        .dir
        .path()
        .join("root/cache/cas")
        .join(sha256_hex(&words));
    fs::write(&blob, "ALPHA\nBETA\nDAMAGED\n").unwrap();

    let b = Workspace::fixture("remote");
    let run = b.forge(&["build", "//gen/...", &flag]);
    ok(&run);
    let w = warnings(&run);
    assert_eq!(w.len(), 1, "{}", run.stderr);
    assert!(w[0].contains("does not match its digest"), "{}", w[0]);
    assert!(w[0].contains("gen/words.upper"), "{}", w[0]);
    assert_eq!(
        counts(&run).0,
        1,
        "only the damaged action reruns:\n{}",
        run.stderr
    );
    assert_eq!(
        fs::read(b.root().join(BIN).join("gen/words.upper")).unwrap(),
        words
    );
    // Its upload repaired the server.
    assert_eq!(fs::read(&blob).unwrap(), words);
    let c = Workspace::fixture("remote");
    let run = c.forge(&["build", "//gen/...", &flag]);
    ok(&run);
    assert_eq!(counts(&run).0, 0, "{}", run.stderr);
    assert!(warnings(&run).is_empty(), "{}", run.stderr);
}

#[test]
#[ignore = "needs nginx (nginx-full): .ci/run installs it and runs the ignored tests"]
fn upload_and_accept_switches() {
    let server = nginx(false);
    let flag = format!("--remote_cache={}", http_url(&server));
    let a = Workspace::fixture("remote");
    let run = a.forge(&[
        "build",
        "//gen:words",
        &flag,
        "--noremote_upload_local_results",
    ]);
    ok(&run);
    assert!(!server.dir.path().join("root/cache/ac").exists());

    let b = Workspace::fixture("remote");
    ok(&b.forge(&[
        "build",
        "//gen:words",
        &flag,
        "--remote_upload_local_results=true",
    ]));
    assert!(server.dir.path().join("root/cache/ac").is_dir());

    // Not accepting cached results: the action runs (and is uploaded again).
    let c = Workspace::fixture("remote");
    let run = c.forge(&["build", "//gen:words", &flag, "--noremote_accept_cached"]);
    ok(&run);
    assert_eq!(counts(&run).0, 1, "{}", run.stderr);
    let d = Workspace::fixture("remote");
    let run = d.forge(&[
        "build",
        "//gen:words",
        &flag,
        "--remote_accept_cached=false",
    ]);
    assert_eq!(counts(&run).0, 1, "{}", run.stderr);
    let e = Workspace::fixture("remote");
    let run = e.forge(&["build", "//gen:words", &flag]);
    assert_eq!(counts(&run), (0, 1, 0), "{}", run.stderr);
}

/// A workspace whose `//pkg:listing` reads source directory `pkg/dir` and whose `//pkg:made`
/// makes its declared output a directory.
fn with_directories() -> Workspace {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "");
    ws.write("pkg/dir/a", "alpha\n");
    ws.write("pkg/dir/sub/c", "gamma\n");
    ws.write(
        "pkg/BUILD",
        "genrule(name = 'listing', srcs = ['dir'], outs = ['listing.txt'], \
         cmd = 'cat $(location dir)/a $(location dir)/sub/c > $@')\n\
         genrule(name = 'made', outs = ['made_dir'], cmd = 'mkdir $@ && echo in > $@/f')\n",
    );
    ws
}

#[test]
#[ignore = "needs nginx (nginx-full): .ci/run installs it and runs the ignored tests"]
fn directories_and_the_remote_cache() {
    let server = nginx(false);
    let flag = format!("--remote_cache={}", http_url(&server));
    let a = with_directories();
    let run = a.forge(&["build", "//pkg:listing", "//pkg:made", &flag]);
    ok(&run);
    assert!(warnings(&run).is_empty(), "{}", run.stderr);
    assert_eq!(counts(&run).0, 2, "{}", run.stderr);

    // Elsewhere, the action reading the source directory is a remote hit; the output made a
    // directory is not uploaded (no REAPI tree yet), so its action runs, without a warning.
    let b = with_directories();
    let run = b.forge(&["build", "//pkg:listing", "//pkg:made", &flag]);
    ok(&run);
    assert!(warnings(&run).is_empty(), "{}", run.stderr);
    assert_eq!(counts(&run), (1, 1, 0), "{}", run.stderr);
    assert!(
        summary(&run).contains(" 1 from the remote cache."),
        "{}",
        run.stderr
    );
    let listing = fs::read_to_string(b.root().join(BIN).join("pkg/listing.txt")).unwrap();
    assert_eq!(listing, "alpha\ngamma\n");
    assert_eq!(
        fs::read_to_string(b.root().join(BIN).join("pkg/made_dir/f")).unwrap(),
        "in\n"
    );

    // A change inside the directory is another key: no stale hit.
    let c = with_directories();
    c.write("pkg/dir/sub/c", "changed\n");
    let run = c.forge(&["build", "//pkg:listing", &flag]);
    ok(&run);
    assert_eq!(counts(&run).0, 1, "{}", run.stderr);
    let listing = fs::read_to_string(c.root().join(BIN).join("pkg/listing.txt")).unwrap();
    assert_eq!(listing, "alpha\nchanged\n");
}

#[test]
fn bad_remote_flags_are_usage_errors() {
    let ws = Workspace::fixture("remote");
    for (flag, message) in [
        (
            "--remote_cache=ftp://example",
            "ERROR: --remote_cache expects an http://, https://, grpc:// or grpcs:// URL, not 'ftp://example'",
        ),
        (
            "--remote_timeout=soon",
            "ERROR: --remote_timeout expects a positive number of seconds (or 500ms, 10s, 1m), not 'soon'",
        ),
        (
            "--remote_header=novalue",
            "ERROR: --remote_header expects NAME=VALUE, got 'novalue'",
        ),
    ] {
        let mut args = vec!["build", "//gen:words", flag];
        if !flag.starts_with("--remote_cache") {
            args.push("--remote_cache=http://127.0.0.1:1");
        }
        let run = ws.forge(&args);
        assert_eq!(run.code, 2, "{}", run.both());
        assert_eq!(run.stderr.trim_end(), message, "{}", run.both());
    }

    // Build without the bytes: a mode forge does not know, and outputs left in an
    // executor's CAS that the named cache could not serve.
    let run = ws.forge(&[
        "build",
        "//gen:words",
        "--remote_cache=http://127.0.0.1:1",
        "--remote_download_outputs=some",
    ]);
    assert_eq!(run.code, 2, "{}", run.both());
    assert_eq!(
        run.stderr.trim_end(),
        "ERROR: --remote_download_outputs expects all, toplevel or minimal, not 'some'"
    );
    let run = ws.forge(&[
        "build",
        "//gen:words",
        "--remote_cache=http://127.0.0.1:1",
        "--remote_executor=grpc://127.0.0.1:2",
        "--remote_download_minimal",
    ]);
    assert_eq!(run.code, 2, "{}", run.both());
    assert!(
        run.stderr.contains(
            "forge does not support --remote_download_minimal with a --remote_cache \
             (http://127.0.0.1:1) other than the --remote_executor (grpc://127.0.0.1:2) yet"
        ),
        "{}",
        run.both()
    );
    // The last of the three spellings wins, as in Bazel.
    let run = ws.forge(&[
        "build",
        "//gen:words",
        "--remote_cache=http://127.0.0.1:1",
        "--remote_executor=grpc://127.0.0.1:2",
        "--remote_download_minimal",
        "--remote_download_outputs=all",
        "--remote_timeout=1",
    ]);
    assert!(
        !run.stderr.contains("does not support --remote_download"),
        "{}",
        run.both()
    );
}

/// Two chained genrules and one reading the second, all run here.
fn chained_genrules() -> Workspace {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "workspace(name = \"chained\")\n");
    ws.write(
        "pkg/BUILD",
        r#"genrule(name = "a", outs = ["a.txt"], cmd = "echo alpha > $@")
genrule(name = "b", srcs = [":a"], outs = ["b.txt"], cmd = "cat $< > $@; echo beta >> $@")
genrule(name = "c", srcs = [":b"], outs = ["c.txt"], cmd = "tr a-z A-Z < $< > $@")
"#,
    );
    ws
}

#[test]
#[ignore = "needs nginx (nginx-full): .ci/run installs it and runs the ignored tests"]
fn http_cache_without_the_bytes() {
    let server = nginx(false);
    let flag = format!("--remote_cache={}", http_url(&server));
    ok(&chained_genrules().forge(&["build", "//pkg:b", &flag]));
    let bin = |ws: &Workspace, name: &str| ws.root().join(BIN).join("pkg").join(name);
    let fetched = |run: &Run| {
        let line = summary(run);
        line.split("Fetched ")
            .nth(1)
            .unwrap_or_else(|| panic!("no fetched counts in: {line}"))
            .split(" (")
            .next()
            .unwrap()
            .to_owned()
    };

    // A fresh output base: both results are remote hits, and no byte comes down.
    let ws = chained_genrules();
    let run = ws.forge(&["build", "//pkg:b", &flag, "--remote_download_minimal"]);
    ok(&run);
    assert_eq!(counts(&run), (0, 2, 0), "{}", run.stderr);
    assert!(
        summary(&run).contains(" 2 from the remote cache."),
        "{}",
        run.stderr
    );
    assert_eq!(fetched(&run), "0 files", "{}", run.stderr);
    assert!(!bin(&ws, "a.txt").exists() && !bin(&ws, "b.txt").exists());

    // Again: both actions are up to date with their outputs still remote (the stat cache
    // remembers where they are), with no cache lookup, and the output tree is left alone.
    use std::os::unix::fs::MetadataExt;
    let tree_stamp = || {
        [ws.root().join(BIN), bin(&ws, "")]
            .iter()
            .map(|d| {
                fs::metadata(d)
                    .map(|m| (m.ino(), m.mtime_nsec(), m.mtime()))
                    .ok()
            })
            .collect::<Vec<_>>()
    };
    let before = tree_stamp();
    let run = ws.forge(&["build", "//pkg:b", &flag, "--remote_download_minimal"]);
    ok(&run);
    assert_eq!(counts(&run), (0, 0, 2), "{}", run.stderr);
    assert_eq!(fetched(&run), "0 files", "{}", run.stderr);
    assert_eq!(tree_stamp(), before);
    assert!(!bin(&ws, "a.txt").exists() && !bin(&ws, "b.txt").exists());

    // A command run here reads `b`: only `b` comes down.
    let run = ws.forge(&["build", "//pkg:c", &flag, "--remote_download_minimal"]);
    ok(&run);
    assert_eq!(counts(&run).0, 1, "{}", run.stderr);
    assert_eq!(fetched(&run), "1 file", "{}", run.stderr);
    assert_eq!(
        fs::read_to_string(bin(&ws, "c.txt")).unwrap(),
        "ALPHA\nBETA\n"
    );
    assert!(!bin(&ws, "a.txt").exists());

    // Toplevel: exactly the requested target's output.
    let ws = chained_genrules();
    let run = ws.forge(&["build", "//pkg:b", &flag, "--remote_download_toplevel"]);
    ok(&run);
    assert_eq!(fetched(&run), "1 file", "{}", run.stderr);
    assert_eq!(
        fs::read_to_string(bin(&ws, "b.txt")).unwrap(),
        "alpha\nbeta\n"
    );
    assert!(!bin(&ws, "a.txt").exists());

    // The server lost `a` (evicted): a build that needs it makes it anew.
    fs::remove_file(
        server
            .dir
            .path()
            .join("root/cache/cas")
            .join(sha256_hex(b"alpha\n")),
    )
    .unwrap();
    ws.write(
        "pkg/BUILD",
        &format!(
            "{}genrule(name = \"d\", srcs = [\":a\"], outs = [\"d.txt\"], cmd = \"cp $< $@\")\n",
            fs::read_to_string(ws.root().join("pkg/BUILD")).unwrap()
        ),
    );
    let run = ws.forge(&["build", "//pkg:d", &flag, "--remote_download_minimal"]);
    ok(&run);
    assert!(
        run.stderr.contains("WARNING: the remote cache lost"),
        "{}",
        run.stderr
    );
    assert_eq!(fs::read_to_string(bin(&ws, "d.txt")).unwrap(), "alpha\n");
}

/// A glob, a .bzl constant and a chain: what a build entry's key must cover.
fn globbed_genrules() -> Workspace {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "workspace(name = \"entry\")\n");
    ws.write("pkg/defs.bzl", "SUFFIX = \"one\"\n");
    ws.write("pkg/x.txt", "hello\n");
    ws.write(
        "pkg/BUILD",
        r#"load(":defs.bzl", "SUFFIX")
genrule(name = "a", srcs = glob(["*.txt"]), outs = ["a.out"], cmd = "cat $(SRCS) > $@; echo " + SUFFIX + " >> $@")
genrule(name = "b", srcs = [":a"], outs = ["b.out"], cmd = "tr a-z A-Z < $< > $@")
"#,
    );
    ws
}

const FROM_ENTRY: &str = "came from the remote cache's build entry";

#[test]
#[ignore = "needs BuildGrid (FORGE_TEST_BGD): .ci/run installs it and runs the ignored tests"]
fn a_fresh_output_base_takes_the_build_entry_only_while_it_holds() {
    let server = buildgrid();
    let flag = format!("--remote_cache={}", grpc_url(&server));
    let ws = globbed_genrules();
    let bases = tempfile::tempdir().unwrap();
    let mut fresh = 0;
    // A build from a fresh output base, fetching the requested output.
    let mut build = |extra: &[&str]| {
        fresh += 1;
        let base = bases.path().join(format!("base{fresh}"));
        let base = base.to_str().unwrap().to_owned();
        let mut args = vec!["--output_base", &base, "build", "//pkg:b", &flag];
        args.push("--remote_download_toplevel");
        args.extend(extra);
        let run = ws.forge(&args);
        ok(&run);
        let out = fs::read_to_string(ws.root().join(BIN).join("pkg/b.out")).unwrap();
        (run, out)
    };
    // Run here and uploaded, outputs downloaded: its entry holds the plan but no action
    // results (they would name local blobs another output base does not have).
    let ob = bases.path().join("all");
    let run = ws.forge(&[
        "--output_base",
        ob.to_str().unwrap(),
        "build",
        "//pkg:b",
        &flag,
    ]);
    ok(&run);
    assert_eq!(counts(&run).0, 2, "{}", run.stderr);
    // Other flags (the download mode), so another entry: the results are remote hits left
    // in the remote CAS, and they go into this build's entry.
    let (run, out) = build(&[]);
    assert!(!run.stderr.contains(FROM_ENTRY), "{}", run.stderr);
    assert_eq!(counts(&run), (0, 2, 0), "{}", run.stderr);
    assert!(
        summary(&run).contains(" 2 from the remote cache."),
        "{}",
        run.stderr
    );
    assert_eq!(out, "HELLO\nONE\n");

    // Nothing changed: the plan and both results come from the entry; nothing is loaded,
    // nothing looked up per action, nothing runs.
    let (run, out) = build(&[]);
    assert!(
        run.stderr
            .contains("The plan and 2 action results came from the remote cache's build entry"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("(0 packages loaded"), "{}", run.stderr);
    assert!(
        summary(&run).contains(" 0 from the remote cache."),
        "{}",
        run.stderr
    );
    assert_eq!(counts(&run), (0, 2, 0), "{}", run.stderr);
    assert_eq!(out, "HELLO\nONE\n");

    // A changed BUILD file, .bzl file, glob listing or flag: planned afresh, built right.
    let build_file = fs::read_to_string(ws.root().join("pkg/BUILD")).unwrap();
    ws.write("pkg/BUILD", &build_file.replace("a-z A-Z", "a-y A-Y"));
    let (run, out) = build(&[]);
    assert!(!run.stderr.contains(FROM_ENTRY), "{}", run.stderr);
    assert_eq!(out, "HELLO\nONE\n".replace('Z', "z"));
    assert!(run.stderr.contains("(1 package loaded"), "{}", run.stderr);
    ws.write("pkg/BUILD", &build_file);

    ws.write("pkg/defs.bzl", "SUFFIX = \"two\"\n");
    let (run, out) = build(&[]);
    assert!(!run.stderr.contains(FROM_ENTRY), "{}", run.stderr);
    assert_eq!(out, "HELLO\nTWO\n");
    ws.write("pkg/defs.bzl", "SUFFIX = \"one\"\n");

    ws.write("pkg/y.txt", "new\n");
    let (run, out) = build(&[]);
    assert!(!run.stderr.contains(FROM_ENTRY), "{}", run.stderr);
    assert_eq!(out, "HELLO\nNEW\nONE\n");
    fs::remove_file(ws.root().join("pkg/y.txt")).unwrap();

    let (run, out) = build(&["--define=x=1"]);
    assert!(!run.stderr.contains(FROM_ENTRY), "{}", run.stderr);
    assert_eq!(out, "HELLO\nONE\n");

    // Back as it was: the first entry again.
    let (run, out) = build(&[]);
    assert!(run.stderr.contains(FROM_ENTRY), "{}", run.stderr);
    assert_eq!(counts(&run).0, 0, "{}", run.stderr);
    assert_eq!(out, "HELLO\nONE\n");

    // A changed source file keeps the plan, but not the result of the action reading it:
    // each action's key is computed from its inputs as they are.
    ws.write("pkg/x.txt", "changed\n");
    let (run, out) = build(&[]);
    assert!(run.stderr.contains(FROM_ENTRY), "{}", run.stderr);
    assert_eq!(counts(&run).0, 2, "{}", run.stderr);
    assert_eq!(out, "CHANGED\nONE\n");

    // And an output base that took the entry is an ordinary one afterwards: a no-op.
    let base = bases.path().join(format!("base{fresh}"));
    let run = ws.forge(&[
        "--output_base",
        base.to_str().unwrap(),
        "build",
        "//pkg:b",
        &flag,
        "--remote_download_toplevel",
    ]);
    ok(&run);
    assert!(!run.stderr.contains(FROM_ENTRY), "{}", run.stderr);
    assert_eq!(counts(&run), (0, 0, 2), "{}", run.stderr);
}

#[test]
#[ignore = "needs BuildGrid (FORGE_TEST_BGD): .ci/run installs it and runs the ignored tests"]
fn a_plan_that_read_outside_the_workspace_gets_no_build_entry() {
    let server = buildgrid();
    let flag = format!("--remote_cache={}", grpc_url(&server));
    let other = tempfile::tempdir().unwrap();
    fs::write(other.path().join("WORKSPACE"), "").unwrap();
    fs::write(other.path().join("BUILD"), "exports_files([\"f.txt\"])\n").unwrap();
    fs::write(other.path().join("f.txt"), "outside\n").unwrap();
    let ws = Workspace::empty();
    ws.write(
        "WORKSPACE",
        &format!(
            "workspace(name = \"main\")\nlocal_repository(name = \"other\", path = \"{}\")\n",
            other.path().display()
        ),
    );
    ws.write(
        "pkg/BUILD",
        "genrule(name = \"a\", srcs = [\"@other//:f.txt\"], outs = [\"a.out\"], cmd = \"cp $< $@\")\n",
    );
    let bases = tempfile::tempdir().unwrap();
    for n in 0..3 {
        let base = bases.path().join(format!("base{n}"));
        let run = ws.forge(&[
            "--output_base",
            base.to_str().unwrap(),
            "build",
            "//pkg:a",
            &flag,
            "--remote_download_toplevel",
        ]);
        ok(&run);
        assert!(!run.stderr.contains(FROM_ENTRY), "{}", run.stderr);
        assert!(run.stderr.contains("(2 packages loaded"), "{}", run.stderr);
        assert_eq!(
            fs::read_to_string(ws.root().join(BIN).join("pkg/a.out")).unwrap(),
            "outside\n"
        );
    }
}

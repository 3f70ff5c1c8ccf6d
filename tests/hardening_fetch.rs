//! Fetching external repositories from hostile or broken servers: archives built in the test
//! and served from 127.0.0.1 that try to write outside their repository (through strip_prefix,
//! chains of symlinks, hard links, forge's own WORKSPACE/BUILD/patch writes), an http_file
//! that names a path outside, a gzip bomb, a full disk, and servers that stall — each refused
//! with a message naming what was refused, nothing written outside, nothing left behind.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Run, Workspace};
use sha2::{Digest, Sha256};

/// How a test server answers a request.
#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    /// Serves the files it was given (404 for others).
    Files,
    /// Accepts the connection and never answers.
    Silent,
    /// Sends headers announcing a body and a few bytes of it, then nothing more.
    StallAfterHeaders,
}

/// A tiny HTTP/1.0 server on 127.0.0.1, stopped when dropped.
struct Server {
    port: u16,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start(behaviour: Behaviour) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let files: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (f, r, s) = (files.clone(), requests.clone(), stop.clone());
        std::thread::spawn(move || {
            // Connections a stalling server holds open without answering.
            let mut held = Vec::new();
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                r.fetch_add(1, Ordering::SeqCst);
                match behaviour {
                    Behaviour::Silent => {
                        held.push(stream);
                        continue;
                    }
                    Behaviour::StallAfterHeaders => {
                        let mut buf = [0u8; 4096];
                        let _ = stream.read(&mut buf);
                        let _ = stream.write_all(
                            b"HTTP/1.0 200 OK\r\nContent-Length: 100000\r\n\r\nfirst bytes",
                        );
                        let _ = stream.flush();
                        held.push(stream);
                        continue;
                    }
                    Behaviour::Files => {}
                }
                common::answer_from(&mut stream, &f);
            }
        });
        Server {
            port,
            files,
            requests,
            stop,
        }
    }

    fn serve(&self, path: &str, body: Vec<u8>) -> String {
        self.files.lock().unwrap().insert(path.to_owned(), body);
        self.url(path)
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn sha256(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One entry of a test archive.
enum Entry<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
}

fn tar_gz(entries: &[Entry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        match entry {
            Entry::File(path, content) => {
                header.set_size(content.len() as u64);
                header.set_entry_type(tar::EntryType::Regular);
                builder.append_data(&mut header, path, *content).unwrap();
            }
            Entry::Dir(path) => {
                header.set_size(0);
                header.set_mode(0o755);
                header.set_entry_type(tar::EntryType::Directory);
                builder
                    .append_data(&mut header, path, std::io::empty())
                    .unwrap();
            }
            Entry::Symlink(path, target) | Entry::HardLink(path, target) => {
                header.set_size(0);
                header.set_entry_type(if matches!(entry, Entry::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                builder.append_link(&mut header, path, target).unwrap();
            }
        }
    }
    gzip(&builder.into_inner().unwrap())
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zip_of(entries: &[Entry]) -> Vec<u8> {
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for entry in entries {
        match entry {
            Entry::File(path, content) => {
                z.start_file(*path, options).unwrap();
                z.write_all(content).unwrap();
            }
            Entry::Dir(path) => z.add_directory(*path, options).unwrap(),
            Entry::Symlink(path, target) => z.add_symlink(*path, *target, options).unwrap(),
            Entry::HardLink(..) => unreachable!("zip has no hard links"),
        }
    }
    z.finish().unwrap().into_inner()
}

/// A workspace whose one target needs `@evil`, an archive at `url` with `attrs` added.
fn workspace_for(url: &str, archive: &[u8], attrs: &str) -> Workspace {
    let ws = Workspace::empty();
    ws.write(
        "WORKSPACE",
        &format!(
            "http_archive(name = \"evil\", url = \"{url}\", sha256 = \"{}\", build_file_content = \"exports_files(glob(['**']))\"{attrs})\n",
            sha256(archive)
        ),
    );
    ws.write(
        "BUILD",
        "filegroup(name = 'x', srcs = ['@evil//:BUILD.bazel'])\n",
    );
    ws
}

fn fails_with(run: &Run, expected: &[&str]) {
    assert_ne!(run.code, 0, "expected a failure:\n{}", run.both());
    for e in expected {
        assert!(run.stderr.contains(e), "missing '{e}' in:\n{}", run.stderr);
    }
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

/// The directory every file of this test's workspace lives in (workspace, cache, ...).
fn test_dir(ws: &Workspace) -> PathBuf {
    ws.root().parent().unwrap().to_owned()
}

/// The `external/` directory of the workspace's output base (the one output base there is).
fn external_dir(ws: &Workspace) -> PathBuf {
    let bases: Vec<PathBuf> = std::fs::read_dir(ws.cache_dir().join("forge"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("external").is_dir())
        .collect();
    assert_eq!(bases.len(), 1, "{bases:?}");
    bases[0].join("external")
}

/// Files named `name` anywhere below the test's directory (links are not followed).
fn files_named(ws: &Workspace, name: &str) -> Vec<PathBuf> {
    walkdir::WalkDir::new(test_dir(ws))
        .into_iter()
        .flatten()
        .filter(|e| e.file_name() == name)
        .map(|e| e.path().to_owned())
        .collect()
}

/// Nothing of repository `@evil` is left in `external/`, finished or half-written.
fn nothing_left_of_evil(ws: &Workspace) {
    let left: Vec<String> = std::fs::read_dir(external_dir(ws))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n == "evil" || n.starts_with(".tmp-evil-"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

// A repository is extracted into <test dir>/cache/forge/<hash>/external/.tmp-evil-XXXX: five
// levels up from its root is the test's directory, where `pwned` must never appear.
const UP5: &str = "../../../../..";

/// Fetches `archive` (served as `name`) for a workspace with `attrs`, expects a refusal naming
/// `entry`, and checks that nothing was written outside and nothing is left.
fn refused(server: &Server, name: &str, archive: Vec<u8>, attrs: &str, expected: &[&str]) {
    let url = server.serve(&format!("/{name}"), archive.clone());
    let ws = workspace_for(&url, &archive, attrs);
    let run = ws.forge(&["build", "//:x"]);
    let mut all = vec!["repository '@evil'", "refusing to extract it"];
    all.extend(expected);
    fails_with(&run, &all);
    assert_eq!(files_named(&ws, "pwned"), Vec::<PathBuf>::new(), "{name}");
    nothing_left_of_evil(&ws);
}

#[test]
fn a_symlink_judged_where_strip_prefix_puts_it() {
    let server = Server::start(Behaviour::Files);
    let entries = [
        Entry::Dir("d0/d1/d2/d3/d4/d5/"),
        Entry::File("d0/d1/d2/d3/d4/d5/README", b"hi\n"),
        // Five levels up from d5/esc stays inside d0; from the repository root it does not.
        Entry::Symlink("d0/d1/d2/d3/d4/d5/esc", UP5),
        Entry::File("d0/d1/d2/d3/d4/d5/esc/pwned", b"outside!\n"),
    ];
    let attrs = ", strip_prefix = \"d0/d1/d2/d3/d4/d5\"";
    let expected = format!(
        "archive entry 'd0/d1/d2/d3/d4/d5/esc' is a symlink to '{UP5}', outside the repository"
    );
    refused(
        &server,
        "strip.tar.gz",
        tar_gz(&entries),
        attrs,
        &[&expected],
    );
    refused(&server, "strip.zip", zip_of(&entries), attrs, &[&expected]);
}

#[test]
fn chains_of_symlinks_are_followed_when_judging_and_never_written_through() {
    let server = Server::start(Behaviour::Files);
    // `up` is the repository root; `up/esc`, created through it, would be five levels above.
    let through_a_link = [
        Entry::Symlink("a/b/c/d/e/up", UP5),
        Entry::Symlink("a/b/c/d/e/up/esc", UP5),
        Entry::File("a/b/c/d/e/up/esc/pwned", b"outside!\n"),
    ];
    let below =
        "archive entry 'a/b/c/d/e/up/esc' would be written through 'a/b/c/d/e/up', a symlink";
    refused(
        &server,
        "through.tar.gz",
        tar_gz(&through_a_link),
        "",
        &[below],
    );
    refused(
        &server,
        "through.zip",
        zip_of(&through_a_link),
        "",
        &[below],
    );

    // Lexically a/b/c/d/e/up/../../../../../.. is a/, but `up` is the root.
    let target = format!("up/{UP5}");
    let via_target = [
        Entry::Symlink("a/b/c/d/e/up", UP5),
        Entry::Symlink("a/b/c/d/e/esc", &target),
        Entry::File("a/b/c/d/e/esc/pwned", b"outside!\n"),
    ];
    let expected = format!("archive entry 'a/b/c/d/e/esc' is a symlink to '{target}', outside");
    refused(
        &server,
        "chain.tar.gz",
        tar_gz(&via_target),
        "",
        &[&expected],
    );
    refused(&server, "chain.zip", zip_of(&via_target), "", &[&expected]);

    // A link that only lands outside once a later link is in place: d/n becomes the root,
    // so d/late -> n/../../pwned climbs out.
    let later = [
        Entry::Dir("d/"),
        Entry::Symlink("d/late", "n/../../x"),
        Entry::Symlink("d/n", ".."),
    ];
    refused(
        &server,
        "later.tar.gz",
        tar_gz(&later),
        "",
        &["archive entry 'd/late' is a symlink to 'n/../../x', outside the repository once"],
    );
}

#[test]
fn a_hard_link_reached_through_a_chain_of_symlinks_writes_nothing_outside() {
    let server = Server::start(Behaviour::Files);
    let entries = [
        Entry::Symlink("a/b/c/d/e/up", UP5),
        Entry::Symlink("a/b/c/d/e/up/esc", UP5),
        Entry::HardLink("h", "a/b/c/d/e/up/esc/victim"),
        Entry::File("h", b"overwritten!\n"),
    ];
    let archive = tar_gz(&entries);
    let url = server.serve("/hard.tar.gz", archive.clone());
    let ws = workspace_for(&url, &archive, "");
    // The file outside the repository the hard link aims at.
    let victim = test_dir(&ws).join("victim");
    std::fs::write(&victim, "original\n").unwrap();
    let run = ws.forge(&["build", "//:x"]);
    fails_with(
        &run,
        &["archive entry 'a/b/c/d/e/up/esc'", "refusing to extract it"],
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "original\n");
    nothing_left_of_evil(&ws);

    // Even a link that stays inside is not gone through to make a hard link.
    let inside = [
        Entry::File("x.txt", b"x\n"),
        Entry::Symlink("a/b/c/d/e/up", UP5),
        Entry::HardLink("h", "a/b/c/d/e/up/x.txt"),
    ];
    refused(
        &server,
        "inside.tar.gz",
        tar_gz(&inside),
        "",
        &[
            "archive entry 'h' is a hard link to 'a/b/c/d/e/up/x.txt', which goes through 'a/b/c/d/e/up', a symlink",
        ],
    );
}

#[test]
fn forges_own_workspace_build_and_patch_writes_do_not_follow_symlinks() {
    let server = Server::start(Behaviour::Files);
    let entries = [
        Entry::File("notes/ws.txt", b"original ws\n"),
        Entry::File("notes/build.txt", b"original build\n"),
        Entry::File("notes/notice.txt", b"original notice\n"),
        Entry::Symlink("WORKSPACE", "notes/ws.txt"),
        Entry::Symlink("BUILD.bazel", "notes/build.txt"),
        Entry::Symlink("NOTICE", "notes/notice.txt"),
    ];
    let archive = tar_gz(&entries);
    let url = server.serve("/own.tar.gz", archive.clone());
    let ws = Workspace::empty();
    let rule = |patches: &str| {
        format!(
            "http_archive(name = \"evil\", url = \"{url}\", sha256 = \"{}\", build_file_content = \"exports_files(glob(['notes/*']))\"{patches})\n",
            sha256(&archive)
        )
    };
    ws.write("WORKSPACE", &rule(""));
    ws.write(
        "BUILD",
        "genrule(name = 'x', srcs = ['@evil//:notes/build.txt', '@evil//:notes/ws.txt'], outs = ['x.txt'], cmd = 'cat $(SRCS) > $@')\n",
    );
    let run = ws.forge(&["build", "//:x"]);
    assert_eq!(run.code, 0, "{}", run.both());
    assert_eq!(
        std::fs::read_to_string(ws.root().join("forge-bin/x.txt")).unwrap(),
        "original build\noriginal ws\n"
    );
    let repo = external_dir(&ws).join("evil");
    for name in ["WORKSPACE", "BUILD.bazel"] {
        let meta = std::fs::symlink_metadata(repo.join(name)).unwrap();
        assert!(meta.file_type().is_file(), "{name} is forge's own file");
    }

    // A patch that changes NOTICE, a symlink, is refused before patch(1) runs.
    ws.write(
        "notice.patch",
        "--- a/NOTICE\n+++ b/NOTICE\n@@ -1 +1 @@\n-original notice\n+patched notice\n",
    );
    ws.write(
        "WORKSPACE",
        &rule(", patches = [\"//:notice.patch\"], patch_args = [\"-p1\"]"),
    );
    let run = ws.forge(&["build", "//:x"]);
    fails_with(
        &run,
        &[
            "patch '//:notice.patch' refused",
            "'NOTICE' is a symlink and forge never writes through symlinks",
        ],
    );
    // The repository fetched before stays; the refused one is gone.
    let half_written = std::fs::read_dir(external_dir(&ws))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-evil-"))
        .count();
    assert_eq!(half_written, 0);
}

#[test]
fn http_file_refuses_a_downloaded_file_path_outside_before_downloading() {
    let server = Server::start(Behaviour::Files);
    let tool = b"#!/bin/sh\necho tool\n".to_vec();
    let url = server.serve("/tool.sh", tool.clone());
    let probe = Workspace::empty();
    let absolute = test_dir(&probe).join("pwned").display().to_string();
    let cases = [
        ("../../../../../../pwned".to_owned(), "has a '..' component"),
        (absolute.clone(), "is an absolute path"),
    ];
    for (path, why) in cases {
        let ws = Workspace::empty();
        ws.write(
            "WORKSPACE",
            &format!(
                "http_file(name = \"tool\", url = \"{url}\", sha256 = \"{}\", downloaded_file_path = \"{path}\")\n",
                sha256(&tool)
            ),
        );
        ws.write("BUILD", "filegroup(name = 'x', srcs = ['@tool//file'])\n");
        let before = server.requests.load(Ordering::SeqCst);
        let run = ws.forge(&["build", "//:x"]);
        let expected = format!("downloaded_file_path '{path}' {why}");
        let shown = expected.replace(&test_dir(&ws).display().to_string(), "[TMP]");
        fails_with(&run, &["http_file(name = 'tool')", &shown]);
        assert_eq!(
            server.requests.load(Ordering::SeqCst),
            before,
            "no download"
        );
        assert_eq!(files_named(&ws, "pwned"), Vec::<PathBuf>::new());
    }
    assert!(!Path::new(&absolute).exists());
}

/// A gzip'd tar of one file of `size` zero bytes: a few KiB that unpack to `size`.
fn bomb(size: u64) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, "bomb/zeros", std::io::repeat(0).take(size))
        .unwrap();
    gzip(&builder.into_inner().unwrap())
}

#[test]
fn extraction_stops_at_the_size_limit_and_leaves_nothing() {
    let server = Server::start(Behaviour::Files);
    let archive = bomb(8 << 20);
    assert!(archive.len() < 64 << 10);
    let url = server.serve("/bomb.tar.gz", archive.clone());
    let ws = workspace_for(&url, &archive, "");
    let run = ws.forge(&[
        "build",
        "--experimental_repository_extract_limit=1M",
        "//:x",
    ]);
    fails_with(
        &run,
        &[
            "repository '@evil'",
            "the archive unpacks to more than 1.0 MiB (at entry 'bomb/zeros')",
            "--experimental_repository_extract_limit=SIZE",
        ],
    );
    nothing_left_of_evil(&ws);
    // A higher limit (and the default) lets it through.
    let run = ws.forge(&[
        "build",
        "--experimental-repository-extract-limit=16M",
        "//:x",
    ]);
    assert_eq!(run.code, 0, "{}", run.both());
    assert_eq!(
        std::fs::metadata(external_dir(&ws).join("evil/bomb/zeros"))
            .unwrap()
            .len(),
        8 << 20
    );
    let bad = ws.forge(&[
        "build",
        "--experimental_repository_extract_limit=lots",
        "//:x",
    ]);
    assert_eq!(bad.code, 2, "{}", bad.both());
}

#[test]
fn a_full_disk_is_reported_as_such_and_the_partial_extraction_removed() {
    // A 2 MiB tmpfs over the cache directory, in a mount namespace of forge's own (root only).
    let probe = std::process::Command::new("unshare")
        .args(["-m", "true"])
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        // CI runs as root: there the test must run, never pass by skipping.
        assert!(
            std::env::var_os("CI").is_none(),
            "cannot make a mount namespace (needs root and unshare(1))"
        );
        eprintln!("skipped: cannot make a mount namespace here (needs root and unshare(1))");
        return;
    }
    let server = Server::start(Behaviour::Files);
    let archive = bomb(8 << 20);
    let url = server.serve("/bomb.tar.gz", archive.clone());
    let ws = workspace_for(&url, &archive, "");
    let cache = ws.cache_dir();
    std::fs::create_dir_all(&cache).unwrap();
    let script = "mount -t tmpfs -o size=2m forge-test-full \"$1\" || exit 99\n\
                  \"$2\" build //:x\n\
                  echo \"forge exit: $?\"\n\
                  ls -A \"$1\"/forge/*/external\n";
    let out = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(&cache)
        .arg(env!("CARGO_BIN_EXE_forge"))
        .current_dir(ws.root())
        .env("XDG_CACHE_HOME", &cache)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("forge exit: 1"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stderr.contains("repository '@evil'") && stderr.contains("the disk is full"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let left: Vec<&str> = stdout
        .lines()
        .filter(|l| *l == "evil" || l.starts_with(".tmp-evil-"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}\n{stdout}");
}

#[test]
fn a_server_that_never_answers_fails_the_download_naming_the_url() {
    let server = Server::start(Behaviour::Silent);
    let url = server.url("/never.tar.gz");
    let ws = workspace_for(&url, b"whatever", "");
    let run = ws.forge(&["build", "--http_stall_timeout=1", "//:x"]);
    fails_with(
        &run,
        &[
            "repository '@evil'",
            &format!(
                "the download stalled: {url} sent nothing for 1 s while forge waited for an answer"
            ),
            "--http_stall_timeout",
        ],
    );
}

#[test]
fn a_server_that_stalls_after_its_headers_fails_the_download_naming_the_url() {
    let server = Server::start(Behaviour::StallAfterHeaders);
    let url = server.url("/stalls.tar.gz");
    let ws = workspace_for(&url, b"whatever", "");
    let run = ws.forge(&["build", "--http-stall-timeout=500ms", "//:x"]);
    fails_with(
        &run,
        &[
            "repository '@evil'",
            &format!(
                "the download stalled: {url} sent nothing for 0.5 s while forge waited for more data"
            ),
        ],
    );
}

#[test]
fn ctrl_c_stops_a_stalled_download_and_exits_8() {
    ctrl_c_during(Behaviour::Silent);
    ctrl_c_during(Behaviour::StallAfterHeaders);
}

fn ctrl_c_during(behaviour: Behaviour) {
    let server = Server::start(behaviour);
    let url = server.url("/never.tar.gz");
    let ws = workspace_for(&url, b"whatever", "");
    // The default stall timeout is far longer than this test waits.
    let mut forge = ws
        .command(&["build", "//:x"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while server.requests.load(Ordering::SeqCst) == 0 {
        if started.elapsed() > Duration::from_secs(60) || forge.try_wait().unwrap().is_some() {
            let _ = forge.kill();
            panic!("forge never connected to the server");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &forge.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let interrupted = Instant::now();
    let code = loop {
        if let Some(status) = forge.try_wait().unwrap() {
            break status.code();
        }
        if interrupted.elapsed() > Duration::from_secs(30) {
            let _ = forge.kill();
            let _ = forge.wait();
            panic!("forge did not stop within 30 s of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    forge
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(code, Some(8), "{stderr}");
    assert!(stderr.contains("Interrupted (Ctrl-C)"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

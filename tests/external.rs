//! External repositories: archives served by an HTTP server this test runs on 127.0.0.1,
//! pinned by sha256, extracted safely, cached so that builds work after the server is gone
//! and `forge clean --expunge`, and used as `@repo//:files` in runfiles.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{Run, Workspace};
use sha2::{Digest, Sha256};

/// A tiny HTTP/1.0 file server on 127.0.0.1, stopped when dropped.
struct Server {
    port: u16,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let files: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (f, r, s) = (files.clone(), requests.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                r.fetch_add(1, Ordering::SeqCst);
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
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn shut_down(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shut_down();
    }
}

fn sha256(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `(path, content)` entries as a tar archive.
fn tar_of(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(if path.ends_with(".sh") { 0o755 } else { 0o644 });
        header.set_cksum();
        builder
            .append_data(&mut header, path, content.as_bytes())
            .unwrap();
    }
    builder.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn solr_archive() -> Vec<u8> {
    gzip(&tar_of(&[
        ("solr-8.0/README.txt", "Welcome to Solr\n"),
        ("solr-8.0/bin/solr.sh", "#!/bin/sh\necho solr\n"),
        ("solr-8.0/server/conf/solr.xml", "<solr/>\n"),
    ]))
}

const SOLR_BUILD: &str = "filegroup(\n    name = 'files',\n    srcs = glob(['**/*']),\n    visibility = ['//visibility:public'],\n)\n";

/// The Solr-style workspace: an sh_binary whose data is @solr//:files.
fn solr_workspace(workspace_rule: &str) -> Workspace {
    let ws = Workspace::empty();
    ws.write(
        "WORKSPACE",
        &format!("workspace(name = \"app\")\n\n{workspace_rule}"),
    );
    ws.write("BUILD.solr", SOLR_BUILD);
    ws.write(
        "BUILD",
        "sh_binary(\n    name = 'run_solr',\n    srcs = ['run_solr.sh'],\n    data = ['@solr//:files'],\n)\n\n\
         genrule(\n    name = 'list',\n    srcs = ['@solr//:files'],\n    outs = ['list.txt'],\n    cmd = 'echo $(locations @solr//:files) > $@',\n)\n",
    );
    ws.write(
        "run_solr.sh",
        "#!/bin/sh\nR=\"${RUNFILES_DIR:-$0.runfiles}\"\ncat \"$R/solr/README.txt\"\ncat \"$R/app/external/solr/server/conf/solr.xml\"\n",
    );
    let script = ws.root().join("run_solr.sh");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(script, std::fs::Permissions::from_mode(0o755)).unwrap();
    ws
}

fn fails_with(run: &Run, expected: &[&str]) {
    assert_ne!(run.code, 0, "expected a failure:\n{}", run.both());
    for e in expected {
        assert!(run.stderr.contains(e), "missing '{e}' in:\n{}", run.stderr);
    }
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn the_solr_example_builds_runs_and_survives_the_server_and_expunge() {
    let server = Server::start();
    let archive = solr_archive();
    let url = server.serve("/solr-8.0.tgz", archive.clone());
    let ws = solr_workspace(&format!(
        "new_http_archive(\n    name = \"solr\",\n    url = \"{url}\",\n    sha256 = \"{}\",\n    strip_prefix = \"solr-8.0\",\n    build_file = \"BUILD.solr\",\n)\n",
        sha256(&archive)
    ));
    let run = ws.forge(&["run", "//:run_solr"]);
    assert_eq!(run.code, 0, "{}", run.both());
    assert_eq!(run.stdout, "Welcome to Solr\n<solr/>\n");
    let build = ws.forge(&["build", "//:list"]);
    assert_eq!(build.code, 0, "{}", build.both());
    assert_eq!(
        std::fs::read_to_string(ws.root().join("forge-bin/list.txt")).unwrap(),
        "external/solr/BUILD.bazel external/solr/README.txt external/solr/WORKSPACE external/solr/bin/solr.sh external/solr/server/conf/solr.xml\n"
    );
    let fetched = server.requests.load(Ordering::SeqCst);
    assert_eq!(fetched, 1, "one download");

    // No server, no output base: the repository cache is enough.
    server.shut_down();
    assert_eq!(ws.forge(&["clean", "--expunge"]).code, 0);
    let run = ws.forge(&["run", "//:run_solr"]);
    assert_eq!(run.code, 0, "{}", run.both());
    assert_eq!(run.stdout, "Welcome to Solr\n<solr/>\n");
}

#[test]
fn http_archive_loaded_from_bazel_tools_with_a_mirror_list_whose_first_url_is_dead() {
    let server = Server::start();
    let archive = solr_archive();
    let good = server.serve("/mirror/solr.tgz", archive.clone());
    let dead = format!("http://127.0.0.1:{}/nothing-here.tgz", server.port);
    let ws = solr_workspace(&format!(
        "load(\"@bazel_tools//tools/build_defs/repo:http.bzl\", \"http_archive\")\n\n\
         http_archive(\n    name = \"solr\",\n    urls = [\"{dead}\", \"{good}\"],\n    sha256 = \"{}\",\n    strip_prefix = \"solr-8.0\",\n    build_file = \"//:BUILD.solr\",\n)\n",
        sha256(&archive)
    ));
    let run = ws.forge(&["run", "//:run_solr"]);
    assert_eq!(run.code, 0, "{}", run.both());
    assert!(
        run.stderr
            .contains(&format!("WARNING: Download from {dead} failed: HTTP 404")),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "Welcome to Solr\n<solr/>\n");
}

#[test]
fn pins_are_checked_before_anything_is_extracted() {
    let server = Server::start();
    let archive = solr_archive();
    let url = server.serve("/solr.tgz", archive.clone());
    let wrong = "0".repeat(64);
    let ws = solr_workspace(&format!(
        "http_archive(name = \"solr\", url = \"{url}\", sha256 = \"{wrong}\", strip_prefix = \"solr-8.0\", build_file = \"//:BUILD.solr\")\n"
    ));
    let run = ws.forge(&["build", "//:list"]);
    fails_with(
        &run,
        &[
            "repository '@solr'",
            &url,
            &sha256(&archive),
            &wrong,
            "sha256 mismatch",
        ],
    );
    let unpinned = solr_workspace(&format!(
        "http_archive(name = \"solr\", url = \"{url}\", strip_prefix = \"solr-8.0\", build_file = \"//:BUILD.solr\")\n"
    ));
    let run = unpinned.forge(&["build", "//:list"]);
    fails_with(
        &run,
        &[
            "has no sha256",
            &format!("sha256 = \"{}\",", sha256(&archive)),
        ],
    );
    assert!(
        !unpinned
            .cache_dir()
            .join("forge")
            .read_dir()
            .unwrap()
            .flatten()
            .any(|d| d.path().join("external/solr").exists())
    );
}

/// A tar archive with one hand-made entry: `name` as raw bytes, of `kind`.
fn raw_tar(name: &str, kind: tar::EntryType, link: Option<&str>) -> Vec<u8> {
    let mut header = tar::Header::new_old();
    {
        let old = header.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
    }
    header.set_entry_type(kind);
    header.set_size(if kind == tar::EntryType::Regular {
        4
    } else {
        0
    });
    header.set_mode(0o644);
    header.set_cksum();
    let mut out = header.as_bytes().to_vec();
    if kind == tar::EntryType::Regular {
        let mut block = b"evil".to_vec();
        block.resize(512, 0);
        out.extend(block);
    }
    out.resize(out.len() + 1024, 0);
    out
}

#[test]
fn malicious_archives_are_refused_naming_the_entry() {
    let server = Server::start();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "absolute",
            raw_tar("/tmp/forge-evil", tar::EntryType::Regular, None),
            "'/tmp/forge-evil' has an absolute path",
        ),
        (
            "dotdot",
            raw_tar("a/../../evil", tar::EntryType::Regular, None),
            "'a/../../evil' has a '..' component",
        ),
        (
            "symlink",
            raw_tar("a/link", tar::EntryType::Symlink, Some("../../etc/passwd")),
            "'a/link' is a symlink to '../../etc/passwd', outside the repository",
        ),
        (
            "hardlink",
            raw_tar("a/hard", tar::EntryType::Link, Some("/etc/passwd")),
            "'a/hard' is a hard link to '/etc/passwd', outside the repository",
        ),
        (
            "device",
            raw_tar("a/dev", tar::EntryType::Char, None),
            "'a/dev' is a device node",
        ),
    ];
    for (name, archive, expected) in cases {
        let url = server.serve(&format!("/{name}.tar"), archive.clone());
        let ws = Workspace::empty();
        ws.write(
            "WORKSPACE",
            &format!(
                "http_archive(name = \"evil\", url = \"{url}\", sha256 = \"{}\", build_file_content = \"exports_files(glob(['**']))\")\n",
                sha256(&archive)
            ),
        );
        ws.write(
            "BUILD",
            "filegroup(name = 'x', srcs = ['@evil//:BUILD.bazel'])\n",
        );
        let run = ws.forge(&["build", "//:x"]);
        fails_with(
            &run,
            &["repository '@evil'", expected, "refusing to extract it"],
        );
    }
    assert!(!std::path::Path::new("/tmp/forge-evil").exists());
}

fn archive_in(format: &str) -> Vec<u8> {
    let files = [("pkg-1/data/value.txt", "forty-two\n")];
    let tar = tar_of(&files);
    match format {
        "tar" => tar,
        "tar.gz" => gzip(&tar),
        "tar.xz" => {
            let mut e = xz2::write::XzEncoder::new(Vec::new(), 1);
            e.write_all(&tar).unwrap();
            e.finish().unwrap()
        }
        "tar.bz2" => {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            e.write_all(&tar).unwrap();
            e.finish().unwrap()
        }
        "zip" => {
            let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
            for (path, content) in files {
                z.start_file(path, zip::write::SimpleFileOptions::default())
                    .unwrap();
                z.write_all(content.as_bytes()).unwrap();
            }
            z.finish().unwrap().into_inner()
        }
        _ => unreachable!(),
    }
}

#[test]
fn every_archive_format_with_strip_and_add_prefix() {
    let server = Server::start();
    for format in ["tar", "tar.gz", "tar.xz", "tar.bz2", "zip"] {
        let archive = archive_in(format);
        // The type comes from the URL, or from `type` when the URL does not tell.
        let (path, type_attr) = if format == "zip" {
            (
                "/download?id=7".to_owned(),
                format!(", type = \"{format}\""),
            )
        } else {
            (format!("/pkg-1.{format}"), String::new())
        };
        let url = server.serve(&path, archive.clone());
        let ws = Workspace::empty();
        ws.write(
            "WORKSPACE",
            &format!(
                "http_archive(name = \"pkg\", url = \"{url}\", sha256 = \"{}\", strip_prefix = \"pkg-1\", add_prefix = \"vendored\"{type_attr}, build_file_content = \"exports_files(['vendored/data/value.txt'])\")\n",
                sha256(&archive)
            ),
        );
        ws.write(
            "BUILD",
            "genrule(name = 'copy', srcs = ['@pkg//:vendored/data/value.txt'], outs = ['value.txt'], cmd = 'cp $< $@')\n",
        );
        let run = ws.forge(&["build", "//:copy"]);
        assert_eq!(run.code, 0, "{format}: {}", run.both());
        assert_eq!(
            std::fs::read_to_string(ws.root().join("forge-bin/value.txt")).unwrap(),
            "forty-two\n",
            "{format}"
        );
    }
}

#[test]
fn errors_a_user_can_act_on() {
    let server = Server::start();
    let archive = solr_archive();
    let digest = sha256(&archive);
    let good = server.serve("/solr.tgz", archive.clone());
    let not_archive = server.serve("/fake.tgz", b"this is not gzip".to_vec());
    let fake_digest = sha256(b"this is not gzip");
    let missing = format!("http://127.0.0.1:{}/missing.tgz", server.port);
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        format!("http://127.0.0.1:{port}/solr.tgz")
    };
    let cases = [
        (format!("url = \"{missing}\", sha256 = \"{digest}\", strip_prefix = \"solr-8.0\", build_file = \"//:BUILD.solr\""), vec![missing.clone(), "HTTP 404".to_owned()]),
        (format!("url = \"{dead}\", sha256 = \"{digest}\", strip_prefix = \"solr-8.0\", build_file = \"//:BUILD.solr\""), vec![dead.clone(), "after 3 tries".to_owned()]),
        (format!("url = \"{not_archive}\", sha256 = \"{fake_digest}\", build_file = \"//:BUILD.solr\""), vec!["is not a valid tar.gz file".to_owned()]),
        (format!("url = \"{good}\", sha256 = \"{digest}\", strip_prefix = \"solr-9.9\", build_file = \"//:BUILD.solr\""), vec!["strip_prefix 'solr-9.9' matches nothing in the archive; its top-level entries are: solr-8.0".to_owned()]),
        (format!("url = \"{good}\", sha256 = \"{digest}\", strip_prefix = \"solr-8.0\", build_file = \"//:BUILD.nope\""), vec!["build_file '//:BUILD.nope' does not exist".to_owned()]),
    ];
    for (attrs, expected) in cases {
        let ws = solr_workspace(&format!("http_archive(name = \"solr\", {attrs})\n"));
        let run = ws.forge(&["build", "//:list"]);
        let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
        fails_with(&run, &expected);
        assert!(run.stderr.contains("repository '@solr'"), "{}", run.stderr);
    }
}

#[test]
fn local_repositories_http_file_and_refetching_only_on_change() {
    let server = Server::start();
    let tool = b"#!/bin/sh\necho downloaded tool\n".to_vec();
    let tool_url = server.serve("/tool.sh", tool.clone());
    let archive = solr_archive();
    let url = server.serve("/solr.tgz", archive.clone());
    let ws = solr_workspace(&format!(
        "http_archive(name = \"solr\", url = \"{url}\", sha256 = \"{}\", strip_prefix = \"solr-8.0\", build_file = \"//:BUILD.solr\")\n\
         http_file(name = \"tool\", url = \"{tool_url}\", sha256 = \"{}\", executable = True)\n\
         local_repository(name = \"other\", path = \"third_party/other\")\n\
         new_local_repository(name = \"plain\", path = \"third_party/plain\", build_file_content = \"exports_files(['note.txt'])\")\n",
        sha256(&archive),
        sha256(&tool)
    ));
    ws.write(
        "third_party/other/WORKSPACE",
        "workspace(name = \"other\")\n",
    );
    ws.write(
        "third_party/other/lib/BUILD",
        "genrule(name = 'gen', outs = ['gen.txt'], cmd = 'echo from other > $@', visibility = ['//visibility:public'])\n",
    );
    ws.write("third_party/plain/note.txt", "a plain note\n");
    ws.write(
        "uses/BUILD",
        "genrule(name = 'all', srcs = ['@tool//file', '@other//lib:gen', '@plain//:note.txt'], outs = ['all.txt'], cmd = 'cat $(locations @other//lib:gen) $(location @plain//:note.txt) > $@ && $(location @tool//file) >> $@')\n",
    );
    // third_party/other is a workspace of its own: keep //... from descending into it.
    ws.write(".bazelignore", "third_party\n");
    let run = ws.forge(&["build", "//uses:all"]);
    assert_eq!(run.code, 0, "{}", run.both());
    assert_eq!(
        std::fs::read_to_string(ws.root().join("forge-bin/uses/all.txt")).unwrap(),
        "from other\na plain note\ndownloaded tool\n"
    );

    // forge fetch, and no re-extraction while nothing changed.
    let fetch = ws.forge(&["fetch", "//:list"]);
    assert_eq!(fetch.code, 0, "{}", fetch.both());
    let output_base = std::fs::canonicalize(ws.root().join("forge-ws")).unwrap();
    let readme = output_base.join("../../external/solr/README.txt");
    let before = std::fs::metadata(&readme).unwrap().modified().unwrap();
    assert_eq!(ws.forge(&["build", "//:list"]).code, 0);
    assert_eq!(
        std::fs::metadata(&readme).unwrap().modified().unwrap(),
        before
    );
    // A changed build_file makes a new repository directory.
    ws.write("BUILD.solr", &SOLR_BUILD.replace("'**/*'", "'**/*.txt'"));
    assert_eq!(ws.forge(&["build", "//:list"]).code, 0);
    assert_eq!(
        std::fs::read_to_string(ws.root().join("forge-bin/list.txt")).unwrap(),
        "external/solr/README.txt\n"
    );
}

#[test]
fn distdir_and_an_explicit_repository_cache_need_no_server() {
    let archive = solr_archive();
    let distdir = tempfile::tempdir().unwrap();
    std::fs::write(distdir.path().join("solr-8.0.tgz"), &archive).unwrap();
    // Nothing listens at this URL: only the distdir can provide the file.
    let ws = solr_workspace(&format!(
        "http_archive(name = \"solr\", url = \"http://127.0.0.1:9/releases/solr-8.0.tgz\", sha256 = \"{}\", strip_prefix = \"solr-8.0\", build_file = \"//:BUILD.solr\")\n",
        sha256(&archive)
    ));
    let repo_cache = tempfile::tempdir().unwrap();
    let cache_flag = format!("--repository_cache={}", repo_cache.path().display());
    let distdir_flag = format!("--distdir={}", distdir.path().display());
    let run = ws.forge(&["build", &cache_flag, &distdir_flag, "//:list"]);
    assert_eq!(run.code, 0, "{}", run.both());
    let cached = repo_cache
        .path()
        .join("content_addressable/sha256")
        .join(sha256(&archive))
        .join("file");
    assert!(cached.is_file(), "{}", cached.display());
    // Another workspace with the same pin finds it in that cache.
    let other = solr_workspace(&format!(
        "http_archive(name = \"solr\", url = \"http://127.0.0.1:9/releases/solr-8.0.tgz\", sha256 = \"{}\", strip_prefix = \"solr-8.0\", build_file = \"//:BUILD.solr\")\n",
        sha256(&archive)
    ));
    let run = other.forge(&["build", &cache_flag, "//:list"]);
    assert_eq!(run.code, 0, "{}", run.both());
}

#[test]
fn patches_apply_and_python_code_of_an_external_repository_imports() {
    let server = Server::start();
    let archive = gzip(&tar_of(&[
        (
            "greeter-2.1/greeter/__init__.py",
            "def greet():\n    return 'hello from the archive'\n",
        ),
        ("greeter-2.1/NOTICE", "original notice\n"),
    ]));
    let url = server.serve("/greeter-2.1.tar.gz", archive.clone());
    let ws = Workspace::empty();
    ws.write(
        "WORKSPACE",
        &format!(
            "workspace(name = \"app\")\n\nhttp_archive(\n    name = \"greeter\",\n    url = \"{url}\",\n    sha256 = \"{}\",\n    strip_prefix = \"greeter-2.1\",\n    build_file_content = \"py_library(name = 'greeter', srcs = glob(['greeter/*.py']), visibility = ['//visibility:public'])\\nexports_files(['NOTICE'])\",\n    patches = [\"//:notice.patch\"],\n    patch_args = [\"-p1\"],\n)\n",
            sha256(&archive)
        ),
    );
    ws.write(
        "notice.patch",
        "--- a/NOTICE\n+++ b/NOTICE\n@@ -1 +1 @@\n-original notice\n+patched notice\n",
    );
    ws.write(
        "BUILD",
        "py_binary(name = 'main', srcs = ['main.py'], deps = ['@greeter//:greeter'])\n\
         genrule(name = 'notice', srcs = ['@greeter//:NOTICE'], outs = ['NOTICE'], cmd = 'cp $< $@')\n",
    );
    ws.write("main.py", "from greeter import greet\n\nprint(greet())\n");
    let run = ws.forge(&["run", "//:main"]);
    assert_eq!(run.code, 0, "{}", run.both());
    assert_eq!(run.stdout, "hello from the archive\n");
    let build = ws.forge(&["build", "//:notice"]);
    assert_eq!(build.code, 0, "{}", build.both());
    assert_eq!(
        std::fs::read_to_string(ws.root().join("forge-bin/NOTICE")).unwrap(),
        "patched notice\n"
    );
}

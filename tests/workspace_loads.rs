//! WORKSPACE loading .bzl files of external repositories, as Bazel evaluates it: each load
//! sees the repositories declared above it (fetched on demand from an HTTP server this test
//! runs on 127.0.0.1), `@bazel_tools//tools/build_defs/repo:*.bzl` (`maybe`, `http_jar`,
//! `git_repository`), `native.*` in WORKSPACE macros, `repo_mapping`.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::{Run, Workspace};
use sha2::{Digest, Sha256};

/// A tiny HTTP/1.0 file server on 127.0.0.1, stopped when dropped.
struct Server {
    port: u16,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let files: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (f, s) = (files.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                common::answer_from(&mut stream, &f);
            }
        });
        Server { port, files, stop }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn serve(&self, path: &str, body: Vec<u8>) -> String {
        self.files.lock().unwrap().insert(path.to_owned(), body);
        self.url(path)
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

/// `(path, content)` entries as a .tar.gz archive.
fn tgz(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, path, content.as_bytes())
            .unwrap();
    }
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&builder.into_inner().unwrap()).unwrap();
    e.finish().unwrap()
}

fn fails_with(run: &Run, expected: &[&str]) {
    assert_ne!(run.code, 0, "expected a failure:\n{}", run.both());
    for e in expected {
        assert!(run.stderr.contains(e), "missing '{e}' in:\n{}", run.stderr);
    }
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

fn read(ws: &Workspace, path: &str) -> String {
    std::fs::read_to_string(ws.root().join(path)).unwrap()
}

const FILES_BUILD: &str =
    "filegroup(name = 'files', srcs = glob(['**/*.txt']), visibility = ['//visibility:public'])";

/// Rule declarations, which WORKSPACE evaluates (deps.bzl loads them) but cannot use, and
/// BUILD files use.
const DEFS_BZL: &str = r#"DataInfo = provider(fields = ["text"])

def _impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    ctx.actions.write(out, ctx.attr.text)
    return [DefaultInfo(files = depset([out])), DataInfo(text = ctx.attr.text)]

text_rule = rule(implementation = _impl, attrs = {"text": attr.string()})
"#;

/// A rules repository as real ones are made: `deps.bzl` declares its dependencies with
/// `maybe` (and a `build_file` of its own, as a `Label`), loads from its own packages, and
/// sits next to rule declarations (which WORKSPACE evaluates but cannot use).
fn rules_archive(data_url: &str, data_sha: &str) -> Vec<u8> {
    let deps = format!(
        r#"load("@bazel_tools//tools/build_defs/repo:http.bzl", "http_archive")
load("@bazel_tools//tools/build_defs/repo:utils.bzl", "maybe")
load(":versions.bzl", "DATA_SHA")
load("//private:urls.bzl", "data_url")
load("//:defs.bzl", "text_rule")

def rules_x_dependencies():
    maybe(
        http_archive,
        name = "x_data",
        urls = [data_url()],
        sha256 = DATA_SHA,
        strip_prefix = "data",
        build_file = Label("//third_party:BUILD.data"),
    )
    maybe(
        http_archive,
        name = "pinned_by_user",
        urls = ["{data_url}-never-fetched"],
        sha256 = DATA_SHA,
    )
"#
    );
    tgz(&[
        ("rules_x/BUILD", ""),
        ("rules_x/deps.bzl", &deps),
        ("rules_x/defs.bzl", DEFS_BZL),
        ("rules_x/third_party/BUILD", ""),
        ("rules_x/third_party/BUILD.data", FILES_BUILD),
        (
            "rules_x/versions.bzl",
            &format!("DATA_SHA = \"{data_sha}\"\n"),
        ),
        ("rules_x/private/BUILD", ""),
        (
            "rules_x/private/urls.bzl",
            &format!("def data_url():\n    return \"{data_url}\"\n"),
        ),
    ])
}

#[test]
fn a_deps_bzl_of_an_http_archive_declares_more_repositories_with_maybe() {
    let server = Server::start();
    let data = tgz(&[("data/data.txt", "fetched by deps.bzl\n")]);
    let data_url = server.serve("/data.tgz", data.clone());
    let rules = rules_archive(&data_url, &sha256(&data));
    let rules_url = server.serve("/rules_x.tgz", rules.clone());
    let users = tgz(&[("u/user.txt", "declared by the user first\n")]);
    let users_url = server.serve("/users.tgz", users.clone());
    let ws = Workspace::empty();
    ws.write(
        "WORKSPACE",
        &format!(
            r#"workspace(name = "app")

load("@bazel_tools//tools/build_defs/repo:http.bzl", "http_archive")

http_archive(
    name = "pinned_by_user",
    urls = ["{users_url}"],
    sha256 = "{}",
    strip_prefix = "u",
    build_file = "@rules_x//third_party:BUILD.data",
)

http_archive(
    name = "rules_x",
    urls = ["{rules_url}"],
    sha256 = "{}",
    strip_prefix = "rules_x",
)

load("@rules_x//:deps.bzl", "rules_x_dependencies")

rules_x_dependencies()
"#,
            sha256(&users),
            sha256(&rules)
        ),
    );
    ws.write(
        "BUILD",
        "load('@rules_x//:defs.bzl', 'text_rule')\n\
         text_rule(name = 'greeting', text = 'hello')\n\
         genrule(name = 'all', srcs = ['@x_data//:files', '@pinned_by_user//:files', ':greeting'], outs = ['all.txt'], cmd = 'cat $(SRCS) > $@')\n",
    );
    let run = ws.forge(&["build", "//:all"]);
    assert_eq!(run.code, 0, "{}", run.both());
    assert_eq!(
        read(&ws, "forge-bin/all.txt"),
        "fetched by deps.bzl\ndeclared by the user first\nhello"
    );

    // The next command reuses the fetched repositories (only their markers are read) and
    // the plan.
    let output_base = std::fs::canonicalize(ws.root().join("forge-ws")).unwrap();
    let deps = output_base.join("../../external/rules_x/deps.bzl");
    let before = std::fs::metadata(&deps).unwrap().modified().unwrap();
    let again = ws.forge(&["build", "//:all"]);
    assert_eq!(again.code, 0, "{}", again.both());
    assert!(
        again.stderr.contains("0 packages loaded"),
        "{}",
        again.stderr
    );
    assert_eq!(
        std::fs::metadata(&deps).unwrap().modified().unwrap(),
        before
    );

    // Every command reads WORKSPACE so: query, fetch, info; clean does not need it.
    let query = ws.forge(&["query", "@x_data//:all"]);
    assert_eq!(query.code, 0, "{}", query.both());
    assert!(query.stdout.contains("@x_data//:files"), "{}", query.stdout);
    let fetch = ws.forge(&["fetch", "//:all"]);
    assert_eq!(fetch.code, 0, "{}", fetch.both());
    let clean = ws.forge(&["clean", "--expunge"]);
    assert_eq!(clean.code, 0, "{}", clean.both());
    let info = ws.forge(&["info", "workspace_name"]);
    assert_eq!(
        (info.code, info.stdout.as_str()),
        (0, "app\n"),
        "{}",
        info.both()
    );
}

#[test]
fn a_change_in_a_loaded_deps_bzl_reaches_the_next_build() {
    let ws = Workspace::empty();
    ws.write(
        "WORKSPACE",
        "load('//third_party:deps.bzl', 'deps')\ndeps()\n",
    );
    ws.write("third_party/BUILD", "");
    ws.write(
        "third_party/deps.bzl",
        "def deps():\n    native.new_local_repository(name = 'lib', path = 'lib_src', build_file_content = \"exports_files(['one.txt', 'two.txt'])\\nalias(name = 'chosen', actual = ':one.txt', visibility = ['//visibility:public'])\")\n",
    );
    ws.write("lib_src/one.txt", "one\n");
    ws.write("lib_src/two.txt", "two\n");
    ws.write(".bazelignore", "lib_src\n");
    ws.write(
        "BUILD",
        "genrule(name = 'g', srcs = ['@lib//:chosen'], outs = ['g.txt'], cmd = 'cat $(SRCS) > $@')\n",
    );
    let run = ws.forge(&["build", "//:g"]);
    assert_eq!(run.code, 0, "{}", run.both());
    assert_eq!(read(&ws, "forge-bin/g.txt"), "one\n");
    ws.write(
        "third_party/deps.bzl",
        "def deps():\n    native.new_local_repository(name = 'lib', path = 'lib_src', build_file_content = \"exports_files(['one.txt', 'two.txt'])\\nalias(name = 'chosen', actual = ':two.txt', visibility = ['//visibility:public'])\")\n",
    );
    let run = ws.forge(&["build", "//:g"]);
    assert_eq!(run.code, 0, "{}", run.both());
    assert_eq!(read(&ws, "forge-bin/g.txt"), "two\n");
}

#[test]
fn a_load_sees_only_the_repositories_declared_above_it() {
    let ws = Workspace::empty();
    ws.write("BUILD", "");
    ws.write("later/WORKSPACE", "");
    ws.write("later/BUILD", "");
    ws.write("later/defs.bzl", "X = 1\n");
    ws.write(".bazelignore", "later\n");
    ws.write(
        "WORKSPACE",
        "load('@later//:defs.bzl', 'X')\nlocal_repository(name = 'later', path = 'later')\n",
    );
    fails_with(
        &ws.forge(&["build", "//:all"]),
        &[
            "WORKSPACE:1:1",
            "repository '@later' is not declared above this load",
        ],
    );

    // Declared above: the load works.
    ws.write(
        "WORKSPACE",
        "local_repository(name = 'later', path = 'later')\nload('@later//:defs.bzl', 'X')\n",
    );
    let run = ws.forge(&["build", "//:all"]);
    assert_eq!(run.code, 0, "{}", run.both());

    // After a load a repository cannot be declared again (before it, the last one counts).
    ws.write(
        "WORKSPACE",
        "local_repository(name = 'later', path = 'nowhere')\n\
         local_repository(name = 'later', path = 'later')\n\
         load('@later//:defs.bzl', 'X')\n\
         local_repository(name = 'later', path = 'later')\n",
    );
    fails_with(
        &ws.forge(&["build", "//:all"]),
        &[
            "WORKSPACE:4:1",
            "cannot redefine repository 'later' after a load() in WORKSPACE",
            "WORKSPACE:2:1",
        ],
    );

    // A rule declared in a .bzl file cannot be called in WORKSPACE.
    ws.write(
        "rules.bzl",
        "def _impl(ctx):\n    pass\nmy_rule = rule(implementation = _impl, attrs = {'x': attr.string()})\n",
    );
    ws.write(
        "WORKSPACE",
        "load('//:rules.bzl', 'my_rule')\nmy_rule(name = 'x')\n",
    );
    fails_with(
        &ws.forge(&["build", "//:all"]),
        &[
            "WORKSPACE:2:1",
            "WORKSPACE cannot call what rule() declared",
        ],
    );

    // Repository rules written in Starlark load (with utils.bzl's helpers for them) but are
    // refused when called.
    ws.write(
        "repo_rules.bzl",
        "load('@bazel_tools//tools/build_defs/repo:utils.bzl', 'patch', 'workspace_and_buildfile')\n\
         def _impl(rctx):\n    workspace_and_buildfile(rctx)\n    patch(rctx)\n\
         my_repo = repository_rule(implementation = _impl, attrs = {'x': attr.string()})\n",
    );
    ws.write(
        "WORKSPACE",
        "load('//:repo_rules.bzl', 'my_repo')\nmy_repo(name = 'r', x = 'y')\n",
    );
    fails_with(
        &ws.forge(&["build", "//:all"]),
        &[
            "WORKSPACE:2:1",
            "forge does not support `repository_rule` yet",
        ],
    );

    // A build_file label naming an undeclared repository (or the repository itself).
    ws.write("plain/note.txt", "note\n");
    ws.write(
        "WORKSPACE",
        "new_local_repository(name = 'n', path = 'plain', build_file = '@nope//:BUILD.n')\n\
         new_local_repository(name = 's', path = 'plain', build_file = '@s//:BUILD.s')\n",
    );
    ws.write(
        "BUILD",
        "genrule(name = 'n', srcs = ['@n//:note.txt'], outs = ['n.txt'], cmd = 'cp $< $@')\n\
         genrule(name = 's', srcs = ['@s//:note.txt'], outs = ['s.txt'], cmd = 'cp $< $@')\n",
    );
    fails_with(
        &ws.forge(&["build", "//:n"]),
        &["'@nope//:BUILD.n' names repository '@nope', which WORKSPACE does not declare"],
    );
    fails_with(
        &ws.forge(&["build", "//:s"]),
        &["'@s//:BUILD.s' names a repository whose fetch needs '@s' first"],
    );
    ws.write("BUILD", "");

    // Only the repository rules' files of @bazel_tools are served to WORKSPACE.
    ws.write(
        "WORKSPACE",
        "load('@bazel_tools//tools/build_defs/repo:jvm.bzl', 'jvm_maven_import_external')\n",
    );
    fails_with(
        &ws.forge(&["build", "//:all"]),
        &["forge serves WORKSPACE only", "jvm.bzl"],
    );
}

#[test]
fn native_functions_and_existing_rules_in_a_workspace_macro() {
    let ws = Workspace::empty();
    ws.write(
        "WORKSPACE",
        "workspace(name = 'app')\nload('//:setup.bzl', 'setup')\nsetup()\n",
    );
    ws.write(
        "setup.bzl",
        r#"def setup():
    native.local_repository(name = "lib", path = "third_party/lib")
    rule = native.existing_rule("lib")
    if rule["kind"] != "local_repository" or rule["path"] != "third_party/lib":
        fail("existing_rule('lib') = %s" % rule)
    if native.existing_rule("missing") != None:
        fail("existing_rule of an undeclared repository")
    if native.bazel_version != "4.2.3":
        fail("forge follows Bazel 4.2.3, not %s" % native.bazel_version)
    native.register_toolchains("//toolchains:all")
    native.register_execution_platforms("//platforms:local")
    native.bind(name = "lib_alias", actual = "@lib//:files")
    names = sorted(native.existing_rules().keys())
    native.new_local_repository(
        name = "seen_" + "_".join(names),
        path = "third_party/plain",
        build_file_content = "exports_files(['note.txt'])",
    )
"#,
    );
    ws.write("third_party/lib/WORKSPACE", "");
    ws.write(
        "third_party/lib/BUILD",
        "filegroup(name = 'files', srcs = ['lib.txt'], visibility = ['//visibility:public'])\n",
    );
    ws.write("third_party/lib/lib.txt", "lib\n");
    ws.write("third_party/plain/note.txt", "note\n");
    ws.write(".bazelignore", "third_party\n");
    // What the macro registers exists, as toolchain resolution reads it.
    ws.write("toolchains/BUILD", "");
    ws.write("platforms/BUILD", "platform(name = 'local')\n");
    ws.write(
        "BUILD",
        "genrule(name = 'g', srcs = ['//external:lib_alias', '@seen_lib//:note.txt'], outs = ['g.txt'], cmd = 'cat $(SRCS) > $@')\n",
    );
    let run = ws.forge(&["build", "//:g"]);
    assert_eq!(run.code, 0, "{}", run.both());
    // //external:lib_alias is bind()'s alias of @lib//:files.
    assert_eq!(read(&ws, "forge-bin/g.txt"), "lib\nnote\n");
    let query = ws.forge(&["query", "//external:all"]);
    assert_eq!(query.stdout, "//external:lib_alias\n", "{}", query.both());

    // A pattern that is none is refused where it is registered.
    ws.write("WORKSPACE", "register_toolchains('//toolchains:a:b')\n");
    fails_with(
        &ws.forge(&["build", "//:g"]),
        &["register_toolchains(): '//toolchains:a:b' is not a target pattern"],
    );
}

#[test]
fn http_jar_and_git_repository() {
    let server = Server::start();
    let jar = b"PK\x03\x04 not really a jar".to_vec();
    let jar_url = server.serve("/lib-1.0.jar", jar.clone());
    let ws = Workspace::empty();
    ws.write(
        "WORKSPACE",
        &format!(
            r#"load("@bazel_tools//tools/build_defs/repo:http.bzl", "http_jar")
load("@bazel_tools//tools/build_defs/repo:git.bzl", "git_repository")

http_jar(name = "lib_jar", url = "{jar_url}", sha256 = "{}")

git_repository(
    name = "from_git",
    remote = "https://github.com/example/from_git.git",
    commit = "0123456789abcdef0123456789abcdef01234567",
)
"#,
            sha256(&jar)
        ),
    );
    ws.write(
        "BUILD",
        "genrule(name = 'jar', srcs = ['@lib_jar//jar:file'], outs = ['jar.txt'], cmd = 'wc -c < $(SRCS) > $@')\n\
         genrule(name = 'git', srcs = ['@from_git//:files'], outs = ['git.txt'], cmd = 'cat $(SRCS) > $@')\n",
    );
    // The git repository is declared, and only refused when a target needs it.
    let run = ws.forge(&["build", "//:jar"]);
    assert_eq!(run.code, 0, "{}", run.both());
    assert_eq!(read(&ws, "forge-bin/jar.txt").trim(), jar.len().to_string());
    fails_with(
        &ws.forge(&["build", "//:git"]),
        &[
            "repository '@from_git'",
            "forge cannot fetch git repositories",
            "http_archive",
            "sha256",
        ],
    );
}

#[test]
fn repo_mapping_renames_repositories_in_the_files_of_a_repository() {
    let ws = Workspace::empty();
    ws.write("third_party/my_dep/WORKSPACE", "");
    ws.write(
        "third_party/my_dep/BUILD",
        "exports_files(['version.bzl'])\n",
    );
    ws.write(
        "third_party/my_dep/version.bzl",
        "VERSION_NOTE = 'note.txt'\n",
    );
    ws.write("third_party/rules_y/WORKSPACE", "");
    // Its BUILD file names @dep too, in a load and in a label.
    ws.write(
        "third_party/rules_y/BUILD",
        "load('@dep//:version.bzl', 'VERSION_NOTE')\n\
         genrule(name = 'v', srcs = ['@dep//:version.bzl'], outs = ['v.txt'], cmd = 'cat $< > $@ && echo ' + VERSION_NOTE + ' >> $@', visibility = ['//visibility:public'])\n",
    );
    // rules_y's deps.bzl knows its dependency as @dep; this workspace calls it @my_dep.
    ws.write(
        "third_party/rules_y/deps.bzl",
        "load('@dep//:version.bzl', 'VERSION_NOTE')\n\
         def rules_y_dependencies():\n    \
             native.new_local_repository(name = 'y_data', path = 'third_party/plain', build_file_content = \"exports_files(['%s'])\" % VERSION_NOTE)\n",
    );
    ws.write("third_party/plain/note.txt", "mapped\n");
    ws.write(".bazelignore", "third_party\n");
    ws.write(
        "WORKSPACE",
        "local_repository(name = 'my_dep', path = 'third_party/my_dep')\n\
         local_repository(name = 'rules_y', path = 'third_party/rules_y', repo_mapping = {'@dep': '@my_dep'})\n\
         load('@rules_y//:deps.bzl', 'rules_y_dependencies')\n\
         rules_y_dependencies()\n",
    );
    ws.write(
        "BUILD",
        "genrule(name = 'g', srcs = ['@y_data//:note.txt'], outs = ['g.txt'], cmd = 'cat $(SRCS) > $@')\n\
         genrule(name = 'y', srcs = ['@rules_y//:v'], outs = ['y.txt'], cmd = 'cat $(SRCS) > $@')\n",
    );
    let run = ws.forge(&["build", "//:g", "//:y"]);
    assert_eq!(run.code, 0, "{}", run.both());
    assert_eq!(read(&ws, "forge-bin/g.txt"), "mapped\n");
    assert_eq!(
        read(&ws, "forge-bin/y.txt"),
        "VERSION_NOTE = 'note.txt'\nnote.txt\n"
    );

    // Without the mapping, @dep is unknown to WORKSPACE.
    ws.write(
        "WORKSPACE",
        "local_repository(name = 'my_dep', path = 'third_party/my_dep')\n\
         local_repository(name = 'rules_y', path = 'third_party/rules_y')\n\
         load('@rules_y//:deps.bzl', 'rules_y_dependencies')\n",
    );
    fails_with(
        &ws.forge(&["build", "//:g"]),
        &["repository '@dep' is not declared above this load"],
    );
}

//! `forge query` on the graph fixture: patterns, every query function, every output format.

mod common;

use common::Workspace;

fn query(ws: &Workspace, args: &[&str]) -> String {
    let mut all = vec!["query"];
    all.extend_from_slice(args);
    let run = ws.forge(&all);
    assert_eq!(run.code, 0, "forge {all:?} failed:\n{}", run.stderr);
    assert!(
        run.stderr.is_empty(),
        "forge {all:?} warned:\n{}",
        run.stderr
    );
    run.stdout
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

#[test]
fn target_patterns() {
    let ws = Workspace::fixture("graph");
    insta::assert_snapshot!("all_rules", query(&ws, &["//..."]));
    assert_eq!(
        lines(&query(&ws, &["//tools:all"])),
        ["//tools:tool"],
        ":all selects rules only"
    );
    assert_eq!(
        lines(&query(&ws, &["//tools:*"])),
        ["//tools:BUILD", "//tools:tool", "//tools:tool.sh"],
        ":* adds files"
    );
    assert_eq!(
        lines(&query(&ws, &["//data/..."])),
        [
            "//data:files",
            "//data:names",
            "//data:nothing",
            "//data:qmark"
        ]
    );
    assert_eq!(
        lines(&query(&ws, &["//data/...:*"])),
        [
            "//data:BUILD",
            "//data:a.txt",
            "//data:b.txt",
            "//data:files",
            "//data:names",
            "//data:names.txt",
            "//data:nothing",
            "//data:qmark",
            "//data:sub/c.txt",
            "//data/subpkg:BUILD",
            "//data/subpkg:d.txt"
        ]
    );
    assert_eq!(lines(&query(&ws, &["@//lib:dep"])), ["//lib:dep"]);
    // Relative to the package of the current directory.
    let run = ws.forge_in("lib", &["query", ":dep + msg + ..."]);
    assert_eq!(
        lines(&run.stdout),
        ["//lib:dep", "//lib:msg", "//lib:shlib"]
    );
    let run = ws.forge_in("vis", &["query", "..."]);
    assert_eq!(
        lines(&run.stdout),
        ["//vis/a:for_friends", "//vis/a:private", "//vis/b:user"]
    );
    // A pattern list after `--`, with negative patterns, as forge build will read it.
    assert_eq!(
        lines(&query(
            &ws,
            &["--", "//...", "-//app/...", "-//vis/...", "//app:gen"]
        )),
        [
            "//app:gen",
            "//data:files",
            "//data:names",
            "//data:nothing",
            "//data:qmark",
            "//lib:dep",
            "//lib:msg",
            "//lib:shlib",
            "//tools:tool"
        ]
    );
}

#[test]
fn default_target_of_a_package() {
    let ws = Workspace::fixture("graph");
    ws.write("solo/BUILD", "filegroup(name = 'solo')\n");
    assert_eq!(query(&ws, &["//solo"]), "//solo:solo\n");
}

#[test]
fn malformed_labels_say_what_is_wrong() {
    let ws = Workspace::fixture("graph");
    for (pattern, message) in [
        (
            "//app:a:b",
            "ERROR: Skipping '//app:a:b': invalid label '//app:a:b': invalid target name 'a:b': target names may not contain ':'\n",
        ),
        (
            "//app/../x:y",
            "ERROR: Skipping '//app/../x:y': invalid label '//app/../x:y': package names may not contain '..' as a path segment\n",
        ),
        (
            "//app/...:gen",
            "ERROR: Skipping '//app/...:gen': invalid label '//app/...:gen': 'gen' cannot follow '...'; use ':all' (rules) or ':*' (all targets)\n",
        ),
    ] {
        let run = ws.forge(&["query", pattern]);
        assert_eq!(run.code, 1, "{pattern}");
        assert_eq!(run.stderr, message);
    }
}

#[test]
fn deps_and_rdeps() {
    let ws = Workspace::fixture("graph");
    insta::assert_snapshot!("deps_app", query(&ws, &["deps(//app:app)"]));
    assert_eq!(
        lines(&query(&ws, &["deps(//app:app, 1)"])),
        ["//app:app", "//app:app.sh", "//app:gen", "//lib:shlib"]
    );
    assert_eq!(lines(&query(&ws, &["deps(//app:app, 0)"])), ["//app:app"]);
    assert_eq!(
        lines(&query(&ws, &["rdeps(//..., //lib:dep)"])),
        ["//app:all_tests", "//app:hello_test", "//lib:dep"]
    );
    assert_eq!(
        lines(&query(&ws, &["rdeps(//..., //data:files, 1)"])),
        ["//data:files", "//lib:shlib"]
    );
    assert_eq!(
        lines(&query(&ws, &["allrdeps(//tools:tool)"])),
        [
            "//app:app",
            "//app:app_test",
            "//app:gen",
            "//tools:tool",
            "//app:all_tests"
        ]
        .iter()
        .copied()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );
}

#[test]
fn paths() {
    let ws = Workspace::fixture("graph");
    assert_eq!(
        lines(&query(&ws, &["somepath(//app:app, //data:a.txt)"])),
        ["//app:app", "//data:a.txt", "//data:files", "//lib:shlib"]
    );
    assert_eq!(
        lines(&query(&ws, &["allpaths(//app:app_test, //tools:tool.sh)"])),
        [
            "//app:app",
            "//app:app_test",
            "//app:gen",
            "//tools:tool",
            "//tools:tool.sh"
        ]
    );
    assert_eq!(query(&ws, &["somepath(//lib:dep, //app:app)"]), "");
}

#[test]
fn filters_and_attributes() {
    let ws = Workspace::fixture("graph");
    assert_eq!(
        lines(&query(&ws, &["kind('sh_.* rule', //...)"])),
        ["//app:app", "//app:app_test", "//lib:shlib", "//tools:tool"]
    );
    assert_eq!(
        lines(&query(&ws, &["kind('source file', deps(//app:gen))"])),
        ["//app:input.txt", "//tools:tool.sh"]
    );
    assert_eq!(
        lines(&query(&ws, &["attr(size, small, //...)"])),
        ["//app:hello_test"]
    );
    assert_eq!(
        lines(&query(&ws, &["attr(tags, manual, //...)"])),
        ["//app:app_test"]
    );
    assert_eq!(
        lines(&query(&ws, &["attr(level, 2, //...)"])),
        ["//lib:msg"]
    );
    assert_eq!(
        lines(&query(&ws, &["filter('lib', //...)"])),
        ["//lib:dep", "//lib:msg", "//lib:shlib"]
    );
    assert_eq!(
        lines(&query(&ws, &["labels(srcs, //data:files)"])),
        ["//data:a.txt", "//data:b.txt", "//data:sub/c.txt"]
    );
    assert_eq!(
        lines(&query(&ws, &["labels(outs, //app:hi_gen)"])),
        ["//app:hi.out"]
    );
}

#[test]
fn tests_and_suites() {
    let ws = Workspace::fixture("graph");
    assert_eq!(
        lines(&query(&ws, &["tests(//app:all_tests)"])),
        ["//app:app_test", "//app:hello_test"]
    );
    assert_eq!(
        lines(&query(&ws, &["tests(//...)"])),
        ["//app:app_test", "//app:hello_test"]
    );
    assert_eq!(query(&ws, &["tests(//lib:all)"]), "");
}

#[test]
fn buildfiles_let_and_set_operations() {
    let ws = Workspace::fixture("graph");
    assert_eq!(
        lines(&query(&ws, &["buildfiles(//app:hi)"])),
        ["//app:BUILD", "//rules:defs.bzl", "//rules:macros.bzl"]
    );
    assert_eq!(
        lines(&query(
            &ws,
            &["let t = //app:all in $t ^ kind('_test rule', $t)"]
        )),
        ["//app:app_test", "//app:hello_test"]
    );
    assert_eq!(
        query(&ws, &["//lib:all - //lib:dep"]),
        query(&ws, &["//lib:all except //lib:dep"])
    );
    assert_eq!(
        query(&ws, &["//lib:dep + //tools:all"]),
        query(&ws, &["//lib:dep union //tools:tool"])
    );
    assert_eq!(query(&ws, &["//lib:all ^ //lib:msg"]), "//lib:msg\n");
    assert_eq!(
        query(&ws, &["//lib:all intersect //lib:msg"]),
        "//lib:msg\n"
    );
    // Left-associative, one precedence, as in Bazel.
    assert_eq!(
        query(&ws, &["//lib:all - //lib:dep + //lib:dep"]),
        query(&ws, &["//lib:all"])
    );
}

#[test]
fn output_formats() {
    let ws = Workspace::fixture("graph");
    insta::assert_snapshot!(
        "label_kind",
        query(&ws, &["--output=label_kind", "deps(//app:gen)"])
    );
    insta::assert_snapshot!(
        "build",
        query(
            &ws,
            &[
                "--output=build",
                "//app:gen + //app:hi_gen + //app:hi.out + //app:input.txt"
            ]
        )
    );
    insta::assert_snapshot!(
        "graph",
        query(&ws, &["--output", "graph", "deps(//app:gen)"])
    );
    let json = query(&ws, &["--output=json", "//lib:msg + //app:hi"]);
    let parsed: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(parsed[0]["label"], "//app:hi");
    assert_eq!(parsed[0]["kind"], "message rule");
    assert_eq!(parsed[0]["generator_function"], "greeting");
    assert_eq!(parsed[0]["generator_location"], "rules/macros.bzl:10:5");
    assert_eq!(parsed[1]["attributes"]["level"], 2);
    assert_eq!(parsed[1]["attributes"]["message"], "from lib");
    insta::assert_snapshot!("json", json);
}

#[test]
fn each_bzl_file_is_evaluated_once_per_command_and_print_shows_where() {
    let ws = Workspace::fixture("graph");
    ws.write("shared/BUILD", "");
    ws.write("shared/defs.bzl", "print('evaluating defs')\nVALUE = 'v'\n");
    for p in ["one", "two", "three"] {
        ws.write(
            &format!("{p}/BUILD"),
            "load('//shared:defs.bzl', 'VALUE')\nfilegroup(name = VALUE)\n",
        );
    }
    let run = ws.forge(&["query", "//one:all + //two:all + //three:all"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "//one:v\n//three:v\n//two:v\n");
    assert_eq!(run.stderr, "DEBUG: shared/defs.bzl:1:1: evaluating defs\n");
}

#[test]
fn parallel_loading_gives_the_same_answer_as_serial() {
    let ws = Workspace::fixture("graph");
    let serial = query(&ws, &["--jobs=1", "--output=label_kind", "deps(//...)"]);
    let parallel = query(&ws, &["--jobs=4", "--output=label_kind", "deps(//...)"]);
    assert_eq!(serial, parallel);
    assert_eq!(serial.lines().count(), 28);
}

/// A query on the query_more fixture that must succeed quietly; its stdout.
fn more(ws: &Workspace, args: &[&str]) -> String {
    query(ws, args)
}

#[test]
fn implicit_deps_order_and_ranks() {
    let ws = Workspace::fixture("query_more");
    assert_eq!(
        lines(&more(&ws, &["deps(//rank:z)"])),
        [
            "//rank:a",
            "//rank:m",
            "//rank:z",
            "//tools:helper",
            "//tools:helper.sh"
        ],
        "the rule's _tool attribute is an implicit dependency"
    );
    assert_eq!(
        lines(&more(&ws, &["deps(//rank:z)", "--noimplicit_deps"])),
        ["//rank:a", "//rank:m", "//rank:z"]
    );
    assert_eq!(
        lines(&more(
            &ws,
            &["somepath(//rank:z, //tools:helper.sh)", "--noimplicit_deps"]
        )),
        Vec::<&str>::new()
    );
    // full: each target before what it depends on, the same on every run.
    assert_eq!(
        lines(&more(
            &ws,
            &["deps(//rank:z)", "--noimplicit_deps", "--order_output=full"]
        )),
        ["//rank:z", "//rank:m", "//rank:a"]
    );
    assert_eq!(
        lines(&more(
            &ws,
            &["deps(//rank:z)", "--noimplicit_deps", "--order_output=deps"]
        )),
        ["//rank:z", "//rank:m", "//rank:a"]
    );
    assert_eq!(
        lines(&more(
            &ws,
            &["deps(//rank:z)", "--noimplicit_deps", "--order_output=no"]
        )),
        ["//rank:a", "//rank:m", "//rank:z"]
    );
    // z -> m -> a and z -> a: a is one step from the root by the shortest path, two by the
    // longest.
    assert_eq!(
        more(
            &ws,
            &["deps(//rank:z)", "--noimplicit_deps", "--output=minrank"]
        ),
        "0 //rank:z\n1 //rank:a\n1 //rank:m\n"
    );
    assert_eq!(
        more(
            &ws,
            &["deps(//rank:z)", "--noimplicit_deps", "--output=maxrank"]
        ),
        "0 //rank:z\n1 //rank:m\n2 //rank:a\n"
    );
    let run = ws.forge(&["query", "//rank:z", "--order_output=sorted"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("--order_output=sorted"),
        "{}",
        run.stderr
    );
}

#[test]
fn package_location_xml_and_streamed_jsonproto() {
    let ws = Workspace::fixture("query_more");
    assert_eq!(
        more(&ws, &["deps(//rank:z)", "--output=package"]),
        "rank\ntools\n"
    );
    // Bazel's location: the absolute BUILD path and the column of the call's `(`; a source
    // file at its own first line; a generated file where its rule is.
    assert_eq!(
        more(
            &ws,
            &[
                "//rank:public + //rank:in.txt + //rank:out.txt",
                "--output=location"
            ]
        ),
        "[TMP]/ws/rank/BUILD:15:8: source file //rank:in.txt\n".replace("BUILD:15:8", "in.txt:1:1")
            + "[TMP]/ws/rank/BUILD:15:8: generated file //rank:out.txt\n\
               [TMP]/ws/rank/BUILD:15:8: genrule rule //rank:public\n"
    );
    let xml = more(&ws, &["//rank:public + //rank:in.txt", "--output=xml"]);
    assert!(
        xml.starts_with(
            "<?xml version=\"1.1\" encoding=\"UTF-8\" standalone=\"no\"?>\n<query version=\"2\">\n"
        ),
        "{xml}"
    );
    for line in [
        "    <source-file location=\"[TMP]/ws/rank/in.txt:1:1\" name=\"//rank:in.txt\">\n",
        "    <rule class=\"genrule\" location=\"[TMP]/ws/rank/BUILD:15:8\" name=\"//rank:public\">\n",
        "        <string name=\"name\" value=\"public\"/>\n",
        "        <string name=\"cmd\" value=\"cp $&lt; $@\"/>\n",
        "        <list name=\"srcs\">\n            <label value=\"//rank:in.txt\"/>\n        </list>\n",
        "        <list name=\"tags\"/>\n",
        "        <rule-input name=\"//rank:in.txt\"/>\n",
        "        <rule-output name=\"//rank:out.txt\"/>\n    </rule>\n",
    ] {
        assert!(xml.contains(line), "{line} in\n{xml}");
    }
    assert!(xml.ends_with("</query>\n"), "{xml}");

    let streamed = more(
        &ws,
        &[
            "//rank:public + //rank:in.txt + //rank:out.txt",
            "--output=streamed_jsonproto",
        ],
    );
    let messages: Vec<serde_json::Value> = streamed
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON message a line"))
        .collect();
    assert_eq!(messages.len(), 3, "{streamed}");
    assert_eq!(messages[0]["type"], "SOURCE_FILE");
    assert_eq!(messages[0]["sourceFile"]["name"], "//rank:in.txt");
    assert_eq!(messages[1]["type"], "GENERATED_FILE");
    assert_eq!(
        messages[1]["generatedFile"]["generatingRule"],
        "//rank:public"
    );
    let rule = &messages[2]["rule"];
    assert_eq!(messages[2]["type"], "RULE");
    assert_eq!(rule["ruleClass"], "genrule");
    assert_eq!(rule["location"], "[TMP]/ws/rank/BUILD:15:8");
    assert_eq!(rule["ruleInput"], serde_json::json!(["//rank:in.txt"]));
    let cmd = rule["attribute"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "cmd")
        .expect("cmd");
    assert_eq!(cmd["type"], "STRING");
    assert_eq!(cmd["stringValue"], "cp $< $@");
    assert_eq!(cmd["explicitlySpecified"], true);
}

#[test]
fn siblings_loadfiles_rbuildfiles_visible_and_same_package_rdeps() {
    let ws = Workspace::fixture("query_more");
    assert_eq!(
        lines(&more(&ws, &["siblings(//rank:z)"])),
        [
            "//rank:BUILD",
            "//rank:a",
            "//rank:in.txt",
            "//rank:m",
            "//rank:out.txt",
            "//rank:public",
            "//rank:z"
        ]
    );
    assert_eq!(
        lines(&more(&ws, &["loadfiles(//rank:z + //tools:helper)"])),
        ["//defs:rules.bzl"]
    );
    assert_eq!(
        lines(&more(&ws, &["rbuildfiles(defs/rules.bzl)"])),
        ["//rank:BUILD"]
    );
    assert_eq!(
        lines(&more(&ws, &["rbuildfiles(tools/BUILD, defs/rules.bzl)"])),
        ["//rank:BUILD", "//tools:BUILD"]
    );
    assert_eq!(
        lines(&more(
            &ws,
            &[
                "rbuildfiles(defs/rules.bzl)",
                "--universe_scope=//tools:all"
            ]
        )),
        Vec::<&str>::new(),
        "no package in the universe loads it"
    );
    assert_eq!(
        lines(&more(
            &ws,
            &[
                "rbuildfiles(defs/rules.bzl)",
                "--universe_scope=//other:all"
            ]
        )),
        ["//rank:BUILD"],
        "the universe is the scope's closure: //other:user reaches //rank"
    );
    assert_eq!(
        lines(&more(&ws, &["visible(//other:user, //rank:all)"])),
        ["//rank:public"]
    );
    assert_eq!(
        lines(&more(&ws, &["visible(//rank:z, //rank:all)"])),
        ["//rank:a", "//rank:m", "//rank:public", "//rank:z"],
        "a package sees its own targets"
    );
    assert_eq!(
        lines(&more(&ws, &["same_pkg_direct_rdeps(//rank:a)"])),
        ["//rank:m", "//rank:z"]
    );
    assert_eq!(
        lines(&more(&ws, &["allrdeps(//rank:a)"])),
        ["//rank:a", "//rank:m", "//rank:z"]
    );
    assert_eq!(
        lines(&more(
            &ws,
            &["allrdeps(//rank:a)", "--universe_scope=//rank:m"]
        )),
        ["//rank:a", "//rank:m"]
    );
}

#[test]
fn query_flags_canonicalize_without_an_expression() {
    let ws = Workspace::fixture("query_more");
    let run = ws.forge(&[
        "canonicalize-flags",
        "--for_command=query",
        "--",
        "--noimplicit_deps",
        "--output=xml",
        "--order_output=full",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "--implicit_deps=0\n--order_output=full\n--output=xml\n"
    );
}

/// A query about the target set alone (`//...` as labels) keeps no attributes and follows no
/// edge, so it says nothing of cycles and visibility (as Bazel's query does not); a broken
/// package is still reported, and the packages it stored whole answer the edge queries of
/// the next command, which warn about the edges they walk.
#[test]
fn a_query_of_names_follows_no_edge_and_the_next_query_has_them_all() {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "");
    ws.write("defs/BUILD", "");
    ws.write(
        "defs/defs.bzl",
        "print('evaluating defs')\ndef pair(name):\n    native.filegroup(name = name + '_x', srcs = [':' + name + '_y'])\n    native.filegroup(name = name + '_y', srcs = [':' + name + '_x'])\n",
    );
    ws.write("loop/BUILD", "load('//defs:defs.bzl', 'pair')\npair('p')\n");
    ws.write(
        "lib/BUILD",
        "filegroup(name = 'private', srcs = ['f.txt'])\n",
    );
    ws.write(
        "app/BUILD",
        "genrule(name = 'gen', srcs = ['//lib:private'], outs = ['o'], cmd = 'x')\n",
    );
    ws.write("broken/BUILD", "filegroup(name = 'b',\n");

    let names = ws.forge(&["query", "--keep_going", "//..."]);
    assert_eq!(names.code, 3, "{}", names.both());
    assert_eq!(
        lines(&names.stdout),
        ["//app:gen", "//lib:private", "//loop:p_x", "//loop:p_y"]
    );
    assert!(
        names.stderr.contains("broken/BUILD:"),
        "the broken package is reported: {}",
        names.stderr
    );
    assert!(names.stderr.contains("evaluating defs"), "{}", names.stderr);
    assert!(!names.stderr.contains("cycle"), "{}", names.stderr);
    assert!(!names.stderr.contains("not visible"), "{}", names.stderr);
    let strict = ws.forge(&["query", "//..."]);
    assert_eq!((strict.code, strict.stdout.as_str()), (1, ""));
    // Kinds and locations come from the same names-only graph.
    let kinds = ws.forge(&[
        "query",
        "kind(filegroup, //...) - //lib:all",
        "--output=label_kind",
    ]);
    assert_eq!(
        (kinds.code, kinds.stdout.as_str()),
        (1, ""),
        "without --keep_going the broken package fails it: {}",
        kinds.both()
    );
    let kinds = query(
        &ws,
        &[
            "kind(filegroup, //loop/... + //lib:all) - //lib:all",
            "--output=label_kind",
        ],
    );
    assert_eq!(
        lines(&kinds),
        ["filegroup rule //loop:p_x", "filegroup rule //loop:p_y"]
    );

    // The stored packages are whole: no package is evaluated again, and the edges are there.
    let deps = ws.forge(&["query", "deps(//app:gen)"]);
    assert_eq!(deps.code, 0, "{}", deps.both());
    assert_eq!(
        lines(&deps.stdout),
        ["//app:gen", "//lib:f.txt", "//lib:private"]
    );
    assert!(
        deps.stderr
            .contains("target '//lib:private' is not visible from target '//app:gen'"),
        "{}",
        deps.stderr
    );
    let path = ws.forge(&["query", "somepath(//loop:p_x, //loop:p_y)"]);
    assert_eq!(path.code, 0, "{}", path.both());
    assert_eq!(lines(&path.stdout), ["//loop:p_x", "//loop:p_y"]);
    assert!(
        path.stderr.contains("cycle in dependency graph"),
        "{}",
        path.stderr
    );
    assert!(
        !path.stderr.contains("evaluating defs"),
        "the stored package answered: {}",
        path.stderr
    );
    // The same question with an output that reads attributes gets them.
    let build = query(&ws, &["//app:gen", "--output=build"]);
    assert!(build.contains("srcs = [\"//lib:private\"]"), "{build}");
}

/// The package walk of `//...` tells loading which BUILD file each package has: the one
/// Bazel prefers when both are there, and a directory named like a BUILD file is none.
#[test]
fn recursive_patterns_load_the_preferred_build_file() {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "");
    ws.write("both/BUILD.bazel", "filegroup(name = 'preferred')\n");
    ws.write("both/BUILD", "filegroup(name = 'shadowed')\n");
    ws.write("dir/BUILD.bazel/BUILD", "filegroup(name = 'inner')\n");
    ws.write("dir/BUILD", "filegroup(name = 'plain')\n");
    assert_eq!(
        lines(&query(&ws, &["//..."])),
        ["//both:preferred", "//dir:plain", "//dir/BUILD.bazel:inner"]
    );
    assert_eq!(
        lines(&query(&ws, &["//...:*"])),
        [
            "//both:BUILD.bazel",
            "//both:preferred",
            "//dir:BUILD",
            "//dir:plain",
            "//dir/BUILD.bazel:BUILD",
            "//dir/BUILD.bazel:inner",
        ]
    );
}

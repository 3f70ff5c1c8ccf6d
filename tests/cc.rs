//! C and C++ with the host compiler: cc_library / cc_binary / cc_test / cc_import and their
//! attributes, Bazel's output layout, shared libraries, compilation modes and the C++
//! command-line options, a header change rebuilding exactly its dependents, undeclared
//! headers refused in the sandbox, custom rules on cc_common, and the compile database.

mod common;

use std::fs;

use common::{Run, Workspace, bin_dir};

fn ok(run: Run) -> Run {
    assert_eq!(run.code, 0, "forge failed:\n{}", run.both());
    run
}

fn failed(run: Run) -> Run {
    assert_ne!(run.code, 0, "forge should have failed:\n{}", run.both());
    run
}

/// The compile actions that ran, by source, from the progress lines.
fn compiled(run: &Run) -> Vec<String> {
    let mut sources: Vec<String> = run
        .stderr
        .lines()
        .filter_map(|l| l.split_once("] Compiling ").map(|(_, s)| s.to_owned()))
        .collect();
    sources.sort();
    sources.dedup();
    sources
}

/// A library tree: `//lib:greet` (hdrs, defines, local_defines, includes, copts),
/// `//lib:prefixed` (include_prefix / strip_include_prefix), `//app:hello` using both,
/// a passing and a failing cc_test.
fn tree() -> Workspace {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "workspace(name = \"cctree\")\n");
    // Every action's progress line, not a paced few: tests read which compiles ran.
    ws.write(".bazelrc", "build --show_progress_rate_limit=0\n");
    ws.write(
        "lib/BUILD",
        r#"
cc_library(
    name = "greet",
    srcs = ["greet.cc", "internal.h"],
    hdrs = ["greet.h", "unused.h"],
    textual_hdrs = ["greet.inc"],
    defines = ["GREET_PUBLIC=7"],
    local_defines = ["GREET_LOCAL=\"local\""],
    includes = ["include"],
    copts = ["-DGREET_COPT=3"],
    linkopts = ["-lm"],
    data = ["greeting.txt"],
    visibility = ["//visibility:public"],
)

cc_library(
    name = "prefixed",
    hdrs = ["src/inner/shout.h"],
    srcs = ["src/inner/shout.c"],
    strip_include_prefix = "src",
    include_prefix = "loud",
    visibility = ["//visibility:public"],
)

cc_library(
    name = "headers_only",
    hdrs = ["include/version.h"],
    visibility = ["//visibility:public"],
)
"#,
    );
    ws.write(
        "lib/greet.h",
        "#pragma once\n#include <string>\nstd::string greet(const std::string& who);\nint local_value();\n",
    );
    ws.write(
        "lib/internal.h",
        "#pragma once\n#define INTERNAL_WORD \"internal\"\n",
    );
    ws.write("lib/greet.inc", "\"textual\"\n");
    ws.write("lib/unused.h", "#pragma once\n");
    ws.write(
        "lib/include/version.h",
        "#pragma once\n#define VERSION 42\n",
    );
    ws.write("lib/greeting.txt", "hi\n");
    ws.write(
        "lib/greet.cc",
        r#"#include "lib/greet.h"
#include "lib/internal.h"
#include <cmath>
#ifndef GREET_LOCAL
#error local_defines missing
#endif
#if GREET_COPT != 3
#error copts missing
#endif
std::string greet(const std::string& who) {
    return std::string("Hello ") + who + " " + GREET_LOCAL + " " + INTERNAL_WORD + " " +
#include "lib/greet.inc"
    ;
}
int local_value() { return (int)std::sqrt(16.0); }
"#,
    );
    ws.write(
        "lib/src/inner/shout.h",
        "#pragma once\n#ifdef __cplusplus\nextern \"C\"\n#endif\nint shout(void);\n",
    );
    ws.write(
        "lib/src/inner/shout.c",
        "#include \"loud/inner/shout.h\"\nint shout(void) { return 5; }\n",
    );
    ws.write(
        "app/BUILD",
        r#"
cc_binary(
    name = "hello",
    srcs = ["hello.cc"],
    deps = ["//lib:greet", "//lib:prefixed", "//lib:headers_only"],
)

cc_test(
    name = "hello_test",
    srcs = ["hello_test.cc"],
    deps = ["//lib:greet"],
)

cc_test(
    name = "failing_test",
    srcs = ["failing_test.c"],
)
"#,
    );
    ws.write(
        "app/hello.cc",
        r#"#include "lib/greet.h"
#include "loud/inner/shout.h"
#include <version.h>
#include <iostream>
#ifdef GREET_LOCAL
#error local_defines leaked to a dependent
#endif
int main() {
    std::cout << greet("world") << " " << GREET_PUBLIC << " " << VERSION << " "
              << shout() << " " << local_value() << std::endl;
#ifdef NDEBUG
    std::cout << "NDEBUG" << std::endl;
#endif
#ifdef FROM_COPT
    std::cout << "copt " << FROM_COPT << std::endl;
#endif
#ifdef FROM_CXXOPT
    std::cout << "cxxopt" << std::endl;
#endif
#ifdef FROM_CONLYOPT
    std::cout << "conlyopt leaked to C++" << std::endl;
#endif
    return 0;
}
"#,
    );
    ws.write(
        "app/hello_test.cc",
        "#include \"lib/greet.h\"\nint main() { return greet(\"t\").empty() ? 1 : 0; }\n",
    );
    ws.write(
        "app/failing_test.c",
        "#include <stdio.h>\nint main(void) { printf(\"failing on purpose\\n\"); return 3; }\n",
    );
    ws
}

#[test]
fn a_library_tree_builds_with_bazels_layout_and_runs() {
    let ws = tree();
    ok(ws.forge(&["build", "//app:hello", "//lib:all"]));
    let bin = ws.root().join(bin_dir());
    for path in [
        "lib/_objs/greet/greet.pic.o",
        "lib/_objs/greet/greet.pic.d",
        "lib/libgreet.a",
        "lib/libgreet.so",
        "lib/_objs/prefixed/shout.pic.o",
        "lib/libprefixed.a",
        "lib/_virtual_includes/prefixed/loud/inner/shout.h",
        "app/_objs/hello/hello.pic.o",
        "app/hello",
    ] {
        assert!(bin.join(path).exists(), "{path} missing");
    }
    // A header-only library has nothing to archive.
    assert!(!bin.join("lib/libheaders_only.a").exists());
    // The .d file lists the headers the compile read, as Bazel's header discovery uses it.
    let deps = fs::read_to_string(bin.join("lib/_objs/greet/greet.pic.d")).unwrap();
    assert!(
        deps.contains("lib/internal.h") && deps.contains("lib/greet.inc"),
        "{deps}"
    );

    let run = ok(ws.forge(&["run", "//app:hello"]));
    assert_eq!(
        run.stdout,
        "Hello world local internal textual 7 42 5 4\n",
        "{}",
        run.both()
    );
}

#[test]
fn cc_tests_run_under_forge_test_linked_dynamically() {
    let ws = tree();
    let run = failed(ws.forge(&["test", "//app:hello_test", "//app:failing_test"]));
    let out = run.both();
    assert!(
        out.contains("//app:hello_test") && out.contains("PASSED"),
        "{out}"
    );
    assert!(
        out.contains("//app:failing_test") && out.contains("FAILED"),
        "{out}"
    );
    let log = fs::read_to_string(
        ws.root()
            .join(common::testlogs_dir())
            .join("app/failing_test/test.log"),
    )
    .unwrap();
    assert!(log.contains("failing on purpose"), "{log}");
    // cc_test links its libraries dynamically (linkstatic = False), as in Bazel: the shared
    // library is built and found at run time through the runfiles.
    let bin = ws.root().join(bin_dir());
    assert!(bin.join("lib/libgreet.so").exists());
    let manifest = fs::read_to_string(bin.join("app/hello_test.runfiles_manifest")).unwrap();
    assert!(manifest.contains("cctree/lib/libgreet.so"), "{manifest}");
    // The library's data comes along.
    assert!(manifest.contains("cctree/lib/greeting.txt"), "{manifest}");
}

#[test]
fn compilation_modes_and_cpp_options_give_bazels_flags() {
    let ws = tree();
    let run = ok(ws.forge(&[
        "run",
        "-c",
        "opt",
        "--copt=-DFROM_COPT=9",
        "--cxxopt=-DFROM_CXXOPT",
        "--conlyopt=-DFROM_CONLYOPT",
        "//app:hello",
    ]));
    assert_eq!(
        run.stdout,
        "Hello world local internal textual 7 42 5 4\nNDEBUG\ncopt 9\ncxxopt\n",
        "{}",
        run.both()
    );
    // opt compiles objects for binaries (PIC objects only for shared libraries, which the
    // binary does not need).
    let opt_bin = ws.root().join("forge-out/k8-opt/bin");
    assert!(opt_bin.join("lib/_objs/greet/greet.o").exists());
    assert!(opt_bin.join("app/_objs/hello/hello.o").exists());
    assert!(!opt_bin.join("app/_objs/hello/hello.pic.o").exists());

    // The commands, as the compile database shows what forge ran.
    ok(ws.forge(&[
        "build",
        "-c",
        "dbg",
        "--copt=-DX=1",
        "--output_groups=compdb",
        "//app:hello",
    ]));
    let db = fs::read_to_string(ws.root().join("compile_commands.json")).unwrap();
    let entries: serde_json::Value = serde_json::from_str(&db).unwrap();
    // The binary's compile and its libraries'.
    let files: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["file"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        ["app/hello.cc", "lib/greet.cc", "lib/src/inner/shout.c"]
    );
    let entry = &entries[0];
    assert_eq!(entry["file"], "app/hello.cc");
    let args: Vec<&str> = entry["arguments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    for flag in [
        "-g",
        "-DX=1",
        "-std=c++0x",
        "-fPIC",
        "-MD",
        "-c",
        "-DGREET_PUBLIC=7",
    ] {
        assert!(args.contains(&flag), "{flag} missing from {args:?}");
    }
    assert!(!args.contains(&"-O2"), "{args:?}");
    assert!(!args.iter().any(|a| a.contains("GREET_LOCAL")), "{args:?}");
    let directory = entry["directory"].as_str().unwrap();
    assert!(
        std::path::Path::new(directory)
            .join("app/hello.cc")
            .exists(),
        "{directory}"
    );

    // As Bazel's default --strip=sometimes: fastbuild links strip debug information (even
    // with --copt=-g), dbg keeps it.
    let has_debug_info = |path: &str| {
        let bytes = fs::read(ws.root().join(path)).unwrap();
        bytes.windows(11).any(|w| w == b".debug_info")
    };
    ok(ws.forge(&["build", "-c", "dbg", "//app:hello"]));
    assert!(has_debug_info("forge-out/k8-dbg/bin/app/hello"));
    ok(ws.forge(&["build", "--copt=-g", "//app:hello"]));
    assert!(!has_debug_info(&format!("{}/app/hello", bin_dir())));

    // --features=-supports_pic: objects without -fPIC, and so no shared libraries.
    let run = ok(ws.forge(&["build", "//lib:greet"]));
    assert!(run.stderr.contains("libgreet.so"), "{}", run.both());
    let run = ok(ws.forge(&["build", "--features=-supports_pic", "//lib:greet"]));
    assert!(!run.stderr.contains("libgreet.so"), "{}", run.both());
    assert!(run.stderr.contains("libgreet.a"), "{}", run.both());
    let bin = ws.root().join(bin_dir());
    assert!(bin.join("lib/_objs/greet/greet.o").exists());

    // --linkopt reaches the link: a library the linker cannot find fails it.
    let run = failed(ws.forge(&["build", "--linkopt=-lno_such_library_xyz", "//app:hello"]));
    assert!(run.stderr.contains("no_such_library_xyz"), "{}", run.both());
}

#[test]
fn a_header_change_recompiles_exactly_its_dependents() {
    let ws = tree();
    ok(ws.forge(&["build", "//app:hello"]));
    let run = ok(ws.forge(&["build", "//app:hello"]));
    assert!(compiled(&run).is_empty(), "{}", run.both());

    // version.h is seen by hello.cc only (headers_only has no sources).
    ws.write(
        "lib/include/version.h",
        "#pragma once\n#define VERSION 43\n",
    );
    let run = ok(ws.forge(&["build", "//app:hello"]));
    assert_eq!(compiled(&run), ["app/hello.cc"], "{}", run.both());

    // A declared header no compile includes: the .d files say so, nothing runs (Bazel's
    // input discovery).
    ws.write("lib/unused.h", "#pragma once\n// changed\n");
    let run = ok(ws.forge(&["build", "//app:hello"]));
    assert!(compiled(&run).is_empty(), "{}", run.both());

    // greet.h: greet.cc (once: PIC objects only in fastbuild) and hello.cc.
    ws.write(
        "lib/greet.h",
        "#pragma once\n#include <string>\n// changed\nstd::string greet(const std::string& who);\nint local_value();\n",
    );
    let run = ok(ws.forge(&["build", "//app:hello"]));
    assert_eq!(
        compiled(&run),
        ["app/hello.cc", "lib/greet.cc"],
        "{}",
        run.both()
    );
    let run = ok(ws.forge(&["run", "//app:hello"]));
    assert!(run.stdout.contains(" 43 "), "{}", run.both());

    // Once a header includes the unused one, a change to it recompiles what includes both.
    ws.write(
        "lib/greet.h",
        "#pragma once\n#include \"lib/unused.h\"\n#include <string>\nstd::string greet(const std::string& who);\nint local_value();\n",
    );
    ok(ws.forge(&["build", "//app:hello"]));
    ws.write("lib/unused.h", "#pragma once\n// changed again\n");
    let run = ok(ws.forge(&["build", "//app:hello"]));
    assert_eq!(
        compiled(&run),
        ["app/hello.cc", "lib/greet.cc"],
        "{}",
        run.both()
    );
}

#[test]
fn an_undeclared_header_is_refused_naming_the_library_to_depend_on() {
    let ws = tree();
    ws.write(
        "app/BUILD",
        r#"
cc_binary(name = "sneaky", srcs = ["sneaky.cc"])
cc_binary(name = "honest", srcs = ["honest.cc"], deps = ["//lib:greet"])
"#,
    );
    ws.write(
        "app/sneaky.cc",
        "#include \"lib/greet.h\"\nint main() { return local_value(); }\n",
    );
    ws.write(
        "app/honest.cc",
        "#include \"lib/greet.h\"\nint main() { return local_value() - 4; }\n",
    );
    // Alone: the header exists in the workspace but is not an input of the compile.
    let run = failed(ws.forge(&["build", "//app:sneaky"]));
    let err = run.stderr;
    assert!(
        err.contains("lib/greet.h: No such file or directory"),
        "{err}"
    );
    assert!(
        err.contains(
            "'lib/greet.h' (the source file //lib:greet.h) is not a header //app:sneaky may include"
        ),
        "{err}"
    );
    // Unsandboxed, the header is there, but the .d file shows it was read: Bazel's check.
    let run = failed(ws.forge(&["build", "--spawn_strategy=local", "//app:sneaky"]));
    assert!(
        run.stderr.contains(
            "undeclared inclusion(s) in rule '//app:sneaky': this rule is missing dependency \
             declarations for the following files included by 'app/sneaky.cc':\n  'lib/greet.h'"
        ),
        "{}",
        run.both()
    );
    // With the library in the build, the message names it.
    let run = failed(ws.forge(&["build", "--keep_going", "//app:all"]));
    assert!(
        run.stderr.contains(
            "'lib/greet.h' is a header of //lib:greet: add //lib:greet to the deps of //app:sneaky"
        ),
        "{}",
        run.both()
    );
}

#[test]
fn shared_libraries_alwayslink_and_cc_import() {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "");
    ws.write(
        "BUILD",
        r#"
cc_binary(
    name = "libplugin.so",
    srcs = ["plugin.c", "eleven.S"],
    linkshared = True,
    # The linker reads the version script: it must be an input of the link.
    additional_linker_inputs = ["plugin.map"],
    linkopts = ["-Wl,--version-script=$(location plugin.map)"],
)

cc_import(
    name = "plugin",
    hdrs = ["plugin.h"],
    shared_library = ":libplugin.so",
)

cc_library(
    name = "registry",
    srcs = ["registry.cc"],
    alwayslink = True,
)

cc_library(
    name = "dropped",
    srcs = ["dropped.cc"],
)

genrule(
    name = "make_archive",
    srcs = ["archived.c"],
    outs = ["libarchived.a"],
    cmd = "gcc -c -o $(@D)/archived.o $< && ar rcs $@ $(@D)/archived.o",
)

cc_import(
    name = "archived",
    hdrs = ["archived.h"],
    static_library = ":libarchived.a",
)

cc_binary(
    name = "main",
    srcs = ["main.cc"],
    deps = [":plugin", ":registry", ":dropped", ":archived"],
)
"#,
    );
    ws.write("plugin.map", "{ global: plugin_value; local: *; };\n");
    ws.write(
        "plugin.h",
        "#pragma once\nextern \"C\" int plugin_value(void);\n",
    );
    ws.write(
        "plugin.c",
        "int eleven(void);\nint plugin_value(void) { return eleven(); }\n",
    );
    // Preprocessed assembly is compiled as such (no C++ standard flag).
    ws.write(
        "eleven.S",
        "#define V 11\n.globl eleven\neleven:\n  movl $V, %eax\n  ret\n.section .note.GNU-stack,\"\",@progbits\n",
    );
    ws.write(
        "archived.h",
        "#pragma once\nextern \"C\" int archived_value(void);\n",
    );
    ws.write("archived.c", "int archived_value(void) { return 22; }\n");
    ws.write(
        "registry.cc",
        "#include <cstdio>\nstatic int r = (std::printf(\"registered\\n\"), 0);\n",
    );
    ws.write(
        "dropped.cc",
        "#include <cstdio>\nstatic int d = (std::printf(\"dropped was linked\\n\"), 0);\n",
    );
    ws.write(
        "main.cc",
        "#include \"plugin.h\"\n#include \"archived.h\"\n#include <cstdio>\nint main() { std::printf(\"%d %d\\n\", plugin_value(), archived_value()); return 0; }\n",
    );
    let run = ok(ws.forge(&["run", "//:main"]));
    // alwayslink keeps an unreferenced object; a plain library's is dropped by the linker.
    assert_eq!(run.stdout, "registered\n11 22\n", "{}", run.both());
    let bin = ws.root().join(bin_dir());
    assert!(
        bin.join("libregistry.lo").exists(),
        "alwayslink archives are .lo"
    );
    let so = fs::read(bin.join("libplugin.so")).unwrap();
    // ELF type 3: a shared object.
    assert_eq!(&so[..4], b"\x7fELF");
    assert_eq!(so[16], 3);
    let manifest = fs::read_to_string(bin.join("main.runfiles_manifest")).unwrap();
    assert!(manifest.contains("libplugin.so"), "{manifest}");
    // The version script hid everything but plugin_value.
    let dynsym = std::process::Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(bin.join("libplugin.so"))
        .output()
        .unwrap();
    let symbols = String::from_utf8_lossy(&dynsym.stdout);
    assert!(
        symbols.contains("plugin_value") && !symbols.contains("eleven"),
        "{symbols}"
    );
}

#[test]
fn a_custom_rule_compiles_and_links_through_cc_common() {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "");
    ws.write(
        "rules.bzl",
        r#"
load("@bazel_tools//tools/cpp:toolchain_utils.bzl", "find_cpp_toolchain")
load("@rules_cc//cc:action_names.bzl", "ACTION_NAMES")

def _my_cc_impl(ctx):
    toolchain = find_cpp_toolchain(ctx)
    features = cc_common.configure_features(ctx = ctx, cc_toolchain = toolchain)
    compilation_context, outputs = cc_common.compile(
        actions = ctx.actions,
        feature_configuration = features,
        cc_toolchain = toolchain,
        srcs = ctx.files.srcs,
        public_hdrs = ctx.files.hdrs,
        defines = ["MY_CC"],
        compilation_contexts = [d[CcInfo].compilation_context for d in ctx.attr.deps],
        name = ctx.label.name,
    )
    linking_context, _ = cc_common.create_linking_context_from_compilation_outputs(
        actions = ctx.actions,
        feature_configuration = features,
        cc_toolchain = toolchain,
        compilation_outputs = outputs,
        linking_contexts = [d[CcInfo].linking_context for d in ctx.attr.deps],
        name = ctx.label.name,
    )
    info = cc_common.merge_cc_infos(
        direct_cc_infos = [CcInfo(compilation_context = compilation_context, linking_context = linking_context)],
        cc_infos = [d[CcInfo] for d in ctx.attr.deps],
    )
    # Bazel 4's flat views of the linking context: this library's archive, then base's.
    libraries = [
        (lib.static_library or lib.pic_static_library).basename
        for lib in info.linking_context.libraries_to_link.to_list()
    ]
    if libraries != ["lib%s.a" % ctx.label.name, "libbase.a"]:
        fail("libraries_to_link: %s" % libraries)
    tool = cc_common.get_tool_for_action(feature_configuration = features, action_name = ACTION_NAMES.cpp_compile)
    variables = cc_common.create_compile_variables(
        cc_toolchain = toolchain,
        feature_configuration = features,
        user_compile_flags = ["-DSEEN"],
    )
    line = cc_common.get_memory_inefficient_command_line(
        feature_configuration = features,
        action_name = ACTION_NAMES.cpp_compile,
        variables = variables,
    )
    report = ctx.actions.declare_file(ctx.label.name + ".toolchain.txt")
    ctx.actions.write(report, "\n".join([
        tool == toolchain.compiler_executable and "compiler" or tool,
        toolchain.ar_executable.split("/")[-1],
        str("-DSEEN" in line),
        str(cc_common.is_enabled(feature_configuration = features, feature_name = "supports_pic")),
        str(cc_common.action_is_enabled(feature_configuration = features, action_name = ACTION_NAMES.cpp_link_executable)),
        str(cc_common.get_environment_variables(feature_configuration = features, action_name = ACTION_NAMES.cpp_compile, variables = variables)),
        str(len(toolchain.built_in_include_directories) > 0),
        # --copt is the rule's to pass (ctx.fragments.cpp), never added behind its back.
        str(ctx.fragments.cpp.copts),
        str("-DFROM_FLAG" in line),
    ]) + "\n")
    return [DefaultInfo(files = depset([report])), info]

my_cc_library = rule(
    implementation = _my_cc_impl,
    attrs = {
        "srcs": attr.label_list(allow_files = True),
        "hdrs": attr.label_list(allow_files = True),
        "deps": attr.label_list(providers = [CcInfo]),
        "_cc_toolchain": attr.label(default = Label("@bazel_tools//tools/cpp:current_cc_toolchain")),
    },
    fragments = ["cpp"],
)

def _my_link_impl(ctx):
    toolchain = find_cpp_toolchain(ctx)
    features = cc_common.configure_features(ctx = ctx, cc_toolchain = toolchain)
    linked = cc_common.link(
        actions = ctx.actions,
        feature_configuration = features,
        cc_toolchain = toolchain,
        linking_contexts = [d[CcInfo].linking_context for d in ctx.attr.deps],
        name = ctx.label.name,
    )
    return [DefaultInfo(executable = linked.executable, files = depset([linked.executable]))]

my_cc_binary = rule(
    implementation = _my_link_impl,
    executable = True,
    attrs = {
        "deps": attr.label_list(providers = [CcInfo]),
        "_cc_toolchain": attr.label(default = Label("@bazel_tools//tools/cpp:current_cc_toolchain")),
    },
)

def _handmade_impl(ctx):
    hdr = ctx.files.hdrs[0]
    archive = [f for f in ctx.attr.archive[DefaultInfo].files.to_list() if f.basename.endswith(".a")][0]
    lib = cc_common.create_library_to_link(
        actions = ctx.actions,
        feature_configuration = None,
        cc_toolchain = None,
        static_library = archive,
    )
    return [CcInfo(
        compilation_context = cc_common.create_compilation_context(
            headers = depset([hdr]),
            quote_includes = depset(["."]),
        ),
        linking_context = cc_common.create_linking_context(linker_inputs = depset([
            cc_common.create_linker_input(owner = ctx.label, libraries = depset([lib])),
        ])),
    )]

handmade = rule(
    implementation = _handmade_impl,
    attrs = {
        "hdrs": attr.label_list(allow_files = True),
        "archive": attr.label(),
    },
)
"#,
    );
    ws.write(
        "BUILD",
        r#"
load(":rules.bzl", "handmade", "my_cc_binary", "my_cc_library")

cc_library(name = "base", srcs = ["base.cc"], hdrs = ["base.h"])

my_cc_library(name = "mine", srcs = ["mine.cc"], hdrs = ["mine.h"], deps = [":base"])

cc_library(name = "made", srcs = ["made.cc"], linkstatic = True)

handmade(name = "wrapped", hdrs = ["made.h"], archive = ":made")

cc_binary(name = "app", srcs = ["app.cc"], deps = [":mine", ":wrapped"])

my_cc_binary(name = "linked", deps = [":mine", ":entry"])

cc_library(name = "entry", srcs = ["entry.cc"], deps = [":mine"])
"#,
    );
    ws.write("base.h", "#pragma once\nint base();\n");
    ws.write("base.cc", "#include \"base.h\"\nint base() { return 1; }\n");
    ws.write("mine.h", "#pragma once\nint mine();\n");
    ws.write(
        "mine.cc",
        "#include \"mine.h\"\n#include \"base.h\"\n#ifndef MY_CC\n#error\n#endif\nint mine() { return base() + 1; }\n",
    );
    ws.write("made.h", "#pragma once\nint made();\n");
    ws.write("made.cc", "int made() { return 40; }\n");
    ws.write(
        "app.cc",
        "#include \"mine.h\"\n#include \"made.h\"\n#include <cstdio>\n#ifdef MY_CC\nint main() { std::printf(\"%d\\n\", mine() + made()); return 0; }\n#endif\n",
    );
    ws.write(
        "entry.cc",
        "#include \"mine.h\"\n#include <cstdio>\nint main() { std::printf(\"linked %d\\n\", mine()); return 0; }\n",
    );
    let run = ok(ws.forge(&["run", "//:app"]));
    assert_eq!(run.stdout, "42\n", "{}", run.both());
    let run = ok(ws.forge(&["run", "//:linked"]));
    assert_eq!(run.stdout, "linked 2\n", "{}", run.both());
    ok(ws.forge(&["build", "--copt=-DFROM_FLAG", "//:mine"]));
    let report = fs::read_to_string(ws.root().join(bin_dir()).join("mine.toolchain.txt")).unwrap();
    assert_eq!(
        report,
        "compiler\nar\nTrue\nTrue\nTrue\n{}\nTrue\n[\"-DFROM_FLAG\"]\nFalse\n"
    );
}

#[test]
fn rules_cc_defs_load_with_and_without_a_declared_rules_cc() {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "");
    ws.write(
        "BUILD",
        r#"
load("@rules_cc//cc:defs.bzl", "cc_binary")
load("@rules_cc//cc:find_cc_toolchain.bzl", "find_cc_toolchain")
cc_binary(name = "hi", srcs = ["hi.c"])
"#,
    );
    ws.write(
        "hi.c",
        "#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n",
    );
    let run = ok(ws.forge(&["run", "//:hi"]));
    assert_eq!(run.stdout, "hi\n");
    // A workspace declaring its own @rules_cc gets that one.
    ws.write("my_rules_cc/WORKSPACE", "");
    ws.write("my_rules_cc/cc/BUILD", "");
    ws.write(
        "my_rules_cc/cc/defs.bzl",
        "def cc_binary(**kwargs):\n    fail(\"the declared rules_cc\")\n",
    );
    ws.write(
        "my_rules_cc/cc/find_cc_toolchain.bzl",
        "def find_cc_toolchain(ctx):\n    pass\n",
    );
    ws.write(
        "WORKSPACE",
        "local_repository(name = \"rules_cc\", path = \"my_rules_cc\")\n",
    );
    let run = failed(ws.forge(&["build", "//:hi"]));
    assert!(
        run.stderr.contains("the declared rules_cc"),
        "{}",
        run.both()
    );
}

#[test]
fn no_compiler_is_an_error_at_the_first_compile() {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "");
    ws.write(
        "BUILD",
        "cc_binary(name = \"hi\", srcs = [\"hi.c\"])\ngenrule(name = \"g\", outs = [\"g.txt\"], cmd = \"echo > $@\")\n",
    );
    ws.write("hi.c", "int main(void) { return 0; }\n");
    let env = [("CC", "/nonexistent/cc-xyz")];
    let run = ws.forge_with("", &["build", "//:hi"], &env);
    assert_ne!(run.code, 0, "{}", run.both());
    assert!(
        run.stderr.contains("no C/C++ compiler found")
            && run.stderr.contains("/nonexistent/cc-xyz"),
        "{}",
        run.both()
    );
    // What needs no compiler still builds.
    ok(ws.forge_with("", &["build", "//:g"], &env));
}

#[test]
fn the_cpp_runfiles_library_finds_data_under_run_and_test() {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "workspace(name = \"rf\")\n");
    ws.write(
        "BUILD",
        r#"
cc_binary(
    name = "reader",
    srcs = ["reader.cc"],
    data = ["data.txt"],
    deps = ["@bazel_tools//tools/cpp/runfiles"],
)

cc_test(
    name = "reader_test",
    srcs = ["reader.cc"],
    data = ["data.txt"],
    deps = ["@bazel_tools//tools/cpp/runfiles"],
)
"#,
    );
    ws.write("data.txt", "hello runfiles\n");
    ws.write(
        "reader.cc",
        r#"#include "tools/cpp/runfiles/runfiles.h"
#include <fstream>
#include <iostream>
#include <memory>
using bazel::tools::cpp::runfiles::Runfiles;
int main(int argc, char** argv) {
    std::string error;
    std::unique_ptr<Runfiles> runfiles(Runfiles::Create(argv[0], &error));
    if (!runfiles) { std::cerr << error << std::endl; return 1; }
    if (!runfiles->Rlocation("rf/../x").empty()) return 2;
    std::ifstream in(runfiles->Rlocation("rf/data.txt"));
    std::string line;
    if (!std::getline(in, line) || line != "hello runfiles") return 3;
    std::cout << line << std::endl;
    return 0;
}
"#,
    );
    let run = ok(ws.forge(&["run", "//:reader"]));
    assert_eq!(run.stdout, "hello runfiles\n", "{}", run.both());
    let run = ok(ws.forge(&["test", "//:reader_test"]));
    assert!(run.both().contains("PASSED"), "{}", run.both());
}

#[test]
fn a_toolchain_of_the_users_replaces_the_hosts() {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "");
    ws.write(
        "toolchain/BUILD",
        r#"
load("@bazel_tools//tools/cpp:cc_toolchain_config.bzl", "cc_toolchain_config")

cc_toolchain_config(
    name = "config",
    cc = "/usr/bin/gcc",
    toolchain_identifier = "mine",
    compile_flags = ["-DMY_TOOLCHAIN=1"],
)

filegroup(name = "empty")

cc_toolchain(
    name = "mine",
    toolchain_config = ":config",
    all_files = ":empty",
    visibility = ["//visibility:public"],
)
"#,
    );
    ws.write(
        "BUILD",
        "cc_binary(name = \"which\", srcs = [\"which.c\"])\n",
    );
    ws.write(
        "which.c",
        "#include <stdio.h>\nint main(void) {\n#ifdef MY_TOOLCHAIN\n  puts(\"mine\");\n#else\n  puts(\"host\");\n#endif\n  return 0;\n}\n",
    );
    let run = ok(ws.forge(&["run", "//:which"]));
    assert_eq!(run.stdout, "host\n", "{}", run.both());
    let flag = "--@bazel_tools//tools/cpp:cc_toolchain=//toolchain:mine";
    let run = ok(ws.forge(&["run", flag, "//:which"]));
    assert_eq!(run.stdout, "mine\n", "{}", run.both());
}

#[test]
fn a_clang_compiler_gets_clangs_flags() {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "");
    ws.write("BUILD", "cc_binary(name = \"hi\", srcs = [\"hi.c\"])\n");
    ws.write("hi.c", "int main(void) { return 0; }\n");
    // A stand-in named clang (the machine may have none): what matters is the command line.
    let clang = ws.root().join("tools/clang");
    ws.write("tools/clang", "#!/bin/sh\nexec gcc \"$@\"\n");
    fs::set_permissions(&clang, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let cc = clang.display().to_string();
    let args = [
        "build",
        "--spawn_strategy=local",
        "--output_groups=compdb",
        "//:hi",
    ];
    let run = ws.forge_with("", &args, &[("CC", &cc)]);
    assert_eq!(run.code, 0, "{}", run.both());
    let db = fs::read_to_string(ws.root().join("compile_commands.json")).unwrap();
    assert!(db.contains(&cc), "{db}");
    assert!(db.contains("-no-canonical-prefixes"), "{db}");
    assert!(!db.contains("-fno-canonical-system-headers"), "{db}");
    assert!(!db.contains("-Wunused-but-set-parameter"), "{db}");
}

#[test]
fn a_rule_asking_for_the_cpp_toolchain_type_resolves_the_builds_cc_toolchain() {
    // Rules written for Bazel 4 declare the C++ toolchain type and read it from
    // ctx.toolchains; Bazel registers its host toolchain for that type by default.
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "");
    ws.write(
        "defs.bzl",
        r#"
def _impl(ctx):
    cc = ctx.toolchains["@bazel_tools//tools/cpp:toolchain_type"].cc
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    ctx.actions.write(out, cc.compiler_executable + "\n")
    return [DefaultInfo(files = depset([out]))]

which_compiler = rule(
    implementation = _impl,
    toolchains = ["@bazel_tools//tools/cpp:toolchain_type"],
)
"#,
    );
    ws.write(
        "BUILD",
        "load(\":defs.bzl\", \"which_compiler\")\nwhich_compiler(name = \"cc\")\n",
    );
    ok(ws.forge(&["build", "//:cc"]));
    let written = fs::read_to_string(ws.root().join("forge-bin/cc.txt")).unwrap();
    let compiler = written.trim_end();
    assert!(
        ["cc", "gcc", "clang", "c++", "g++"]
            .iter()
            .any(|name| compiler
                .rsplit('/')
                .next()
                .is_some_and(|f| f.starts_with(name))),
        "not a C compiler: {compiler}"
    );
}

//! C++ compiles refer to their dependencies' header sets instead of copies of them: the
//! stored plan holds each header once, the sets' headers are still every compile's declared
//! inputs (aquery, the sandbox), a header edit recompiles exactly what included it, a
//! declared header added to a dependency reruns what declares it (as before), and a plan
//! reused, made afresh or made from stored analysis results keys the actions alike.

mod common;

use std::fs;
use std::path::PathBuf;

use common::{Run, Workspace, counts};

fn ok(run: Run) -> Run {
    assert_eq!(run.code, 0, "forge failed:\n{}", run.both());
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

/// `l0` <- `l1` <- `l2` <- `l3` <- `//app:app`, each library with two headers and two
/// sources, `a.h` including the `a.h` of the library below; `other` is in the build but no
/// dependency of the chain.
fn chain() -> Workspace {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "workspace(name = \"sets\")\n");
    ws.write(".bazelrc", "build --show_progress_rate_limit=0\n");
    for i in 0..4 {
        let include = match i {
            0 => String::new(),
            _ => format!("#include \"l{}/a.h\"\n", i - 1),
        };
        let below = match i {
            0 => "0".to_owned(),
            _ => format!("L{}_A", i - 1),
        };
        ws.write(
            &format!("l{i}/a.h"),
            &format!("#pragma once\n{include}#define L{i}_A ({below} + 1)\n"),
        );
        ws.write(
            &format!("l{i}/b.h"),
            &format!("#pragma once\n#define L{i}_B {i}\n"),
        );
        ws.write(
            &format!("l{i}/a.cc"),
            &format!("#include \"l{i}/a.h\"\nint l{i}_a() {{ return L{i}_A; }}\n"),
        );
        ws.write(
            &format!("l{i}/b.cc"),
            &format!("#include \"l{i}/b.h\"\nint l{i}_b() {{ return L{i}_B; }}\n"),
        );
        let deps = match i {
            0 => String::new(),
            _ => format!("\"//l{}\"", i - 1),
        };
        ws.write(
            &format!("l{i}/BUILD"),
            &format!(
                "cc_library(name = \"l{i}\", srcs = [\"a.cc\", \"b.cc\"], hdrs = [\"a.h\", \"b.h\"], \
                 deps = [{deps}], visibility = [\"//visibility:public\"])\n"
            ),
        );
    }
    ws.write("other/o.h", "#pragma once\n#define OTHER 5\n");
    ws.write(
        "other/o.cc",
        "#include \"other/o.h\"\nint o() { return OTHER; }\n",
    );
    ws.write(
        "other/BUILD",
        "cc_library(name = \"other\", srcs = [\"o.cc\"], hdrs = [\"o.h\"], visibility = [\"//visibility:public\"])\n",
    );
    ws.write(
        "app/main.cc",
        "#include \"l3/a.h\"\nint main() { return L3_A == 4 ? 0 : 1; }\n",
    );
    ws.write(
        "app/BUILD",
        "cc_binary(name = \"app\", srcs = [\"main.cc\"], deps = [\"//l3\"])\n",
    );
    ws
}

/// The stored plans of the workspace's output base.
fn plan_files(ws: &Workspace) -> Vec<PathBuf> {
    walkdir::WalkDir::new(ws.cache_dir())
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter(|e| {
            e.path()
                .parent()
                .is_some_and(|p| p.file_name().is_some_and(|n| n == "plans"))
        })
        .map(|e| e.into_path())
        .collect()
}

/// The declared inputs of the compile of `source`, from `forge aquery`'s text output.
fn compile_inputs(ws: &Workspace, source: &str) -> String {
    let run = ok(ws.forge(&["aquery", "mnemonic('CppCompile', //...)"]));
    let action = run
        .stdout
        .split("\n\n")
        // The command line is printed one argument a line.
        .find(|a| {
            a.replace(" \\\n    ", " ")
                .contains(&format!("-c {source} "))
        })
        .unwrap_or_else(|| panic!("no compile of {source} in:\n{}", run.stdout))
        .to_owned();
    action
        .lines()
        .find(|l| l.trim_start().starts_with("Inputs: ["))
        .unwrap_or_else(|| panic!("no inputs in:\n{action}"))
        .to_owned()
}

#[test]
fn the_stored_plan_holds_each_header_once_and_a_reused_plan_keys_alike() {
    let ws = chain();
    let run = ok(ws.forge(&["build", "//..."]));
    assert_eq!(compiled(&run).len(), 10, "{}", run.both());

    // l0/b.h is a declared input of 9 compiles (l0's to l3's and main.cc): stored flat it
    // would be listed 9 times (18 with the discoverable lists); in sets, in l0's own header
    // set and in the set of l0's headers and its dependencies'.
    let plans = plan_files(&ws);
    assert_eq!(plans.len(), 1, "{plans:?}");
    // The plan is binary (postcard): a path is stored as its length (one byte here) then
    // its bytes.
    let bytes = fs::read(&plans[0]).expect("plan");
    let stored = b"\x06l0/b.h";
    let count = bytes.windows(stored.len()).filter(|w| w == stored).count();
    assert_eq!(count, 2, "{}", String::from_utf8_lossy(&bytes));
    // ...and every compile above still declares it.
    for source in ["l1/a.cc", "l3/b.cc", "app/main.cc"] {
        assert!(
            compile_inputs(&ws, source).contains("l0/b.h"),
            "{source}: {}",
            compile_inputs(&ws, source)
        );
    }
    assert!(!compile_inputs(&ws, "other/o.cc").contains("l0/"));

    // The no-op reuses the plan: nothing runs.
    let run = ok(ws.forge(&["build", "//..."]));
    assert!(compiled(&run).is_empty(), "{}", run.both());
    assert_eq!(counts(&run).0, 0, "{}", run.both());

    // A plan made afresh from the analysis store, and one made by analysing everything
    // again, key every action as the reused one did: still nothing runs.
    for (dir, name) in [("plans", "plan cache"), ("analysis", "analysis store")] {
        for base in walkdir::WalkDir::new(ws.cache_dir())
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_dir() && e.file_name() == dir)
        {
            fs::remove_dir_all(base.path()).expect("remove");
        }
        let run = ok(ws.forge(&["build", "//..."]));
        assert_eq!(counts(&run).0, 0, "without the {name}:\n{}", run.both());
    }
}

#[test]
fn header_edits_and_new_declared_headers_rerun_what_they_should() {
    let ws = chain();
    ok(ws.forge(&["build", "//..."]));

    // l1/a.h is included by l1/a.cc, l2/a.cc, l3/a.cc and app/main.cc (through the chain);
    // declared by l1's, l2's, l3's and main.cc's compiles.
    ws.write(
        "l1/a.h",
        "#pragma once\n#include \"l0/a.h\"\n#define L1_A (L0_A + 1)\n// edited\n",
    );
    let run = ok(ws.forge(&["build", "//..."]));
    assert_eq!(
        compiled(&run),
        ["app/main.cc", "l1/a.cc", "l2/a.cc", "l3/a.cc"],
        "{}",
        run.both()
    );

    // A header no compile includes, newly declared by l1: the compiles declaring it run
    // again (their declared inputs changed), the others do not; aquery lists it.
    ws.write("l1/new.h", "#pragma once\n");
    ws.write(
        "l1/BUILD",
        "cc_library(name = \"l1\", srcs = [\"a.cc\", \"b.cc\"], hdrs = [\"a.h\", \"b.h\", \"new.h\"], \
         deps = [\"//l0\"], visibility = [\"//visibility:public\"])\n",
    );
    let run = ok(ws.forge(&["build", "//..."]));
    assert_eq!(
        compiled(&run),
        [
            "app/main.cc",
            "l1/a.cc",
            "l1/b.cc",
            "l2/a.cc",
            "l2/b.cc",
            "l3/a.cc",
            "l3/b.cc"
        ],
        "{}",
        run.both()
    );
    assert!(compile_inputs(&ws, "app/main.cc").contains("l1/new.h"));
    assert!(!compile_inputs(&ws, "l0/a.cc").contains("l1/new.h"));

    // Its content changes: nothing included it, nothing runs.
    ws.write("l1/new.h", "#pragma once\n// edited\n");
    let run = ok(ws.forge(&["build", "//..."]));
    assert!(compiled(&run).is_empty(), "{}", run.both());

    // A header of the lowest library, included by one source: exactly that one.
    ws.write("l0/b.h", "#pragma once\n#define L0_B 10\n");
    let run = ok(ws.forge(&["build", "//..."]));
    assert_eq!(compiled(&run), ["l0/b.cc"], "{}", run.both());
}

#[test]
fn the_sandbox_stages_the_sets_headers_and_refuses_any_other() {
    let ws = chain();
    // main.cc includes l0's header through l3's set, three levels down: staged.
    ws.write(
        "app/main.cc",
        "#include \"l0/b.h\"\n#include \"l3/a.h\"\nint main() { return L3_A + L0_B == 4 ? 0 : 1; }\n",
    );
    ok(ws.forge(&["build", "--spawn_strategy=sandboxed", "//app"]));
    // other/o.h is in no set main.cc declares: not in its sandbox.
    ws.write(
        "app/main.cc",
        "#include \"other/o.h\"\n#include \"l3/a.h\"\nint main() { return L3_A == 4 ? 0 : 1; }\n",
    );
    let run = ws.forge(&["build", "--spawn_strategy=sandboxed", "//app", "//other"]);
    assert_ne!(run.code, 0, "{}", run.both());
    assert!(
        run.stderr.contains("other/o.h: No such file or directory"),
        "{}",
        run.both()
    );
}

/// A Starlark rule passing a depset of its dependencies' files as inputs: the set's files
/// are read by the command, a change to any of them reruns it, and a plan rebuilt from the
/// analysis store (where the action is kept with its sets) keys it as before.
#[test]
fn a_rules_depset_inputs_are_keyed_by_their_files_through_the_analysis_store() {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "workspace(name = \"sets\")\n");
    ws.write(
        "defs.bzl",
        r#"
FilesInfo = provider(fields = ["files"])

def _impl(ctx):
    files = depset(ctx.files.srcs, transitive = [d[FilesInfo].files for d in ctx.attr.deps])
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    ctx.actions.run_shell(
        inputs = depset(transitive = [files]),
        outputs = [out],
        command = "cat $(echo \"$@\" | tr ' ' '\n' | sort) > " + out.path,
        arguments = [f.path for f in files.to_list()],
    )
    return [DefaultInfo(files = depset([out])), FilesInfo(files = files)]

collect = rule(implementation = _impl, attrs = {
    "srcs": attr.label_list(allow_files = True),
    "deps": attr.label_list(),
})
"#,
    );
    ws.write("low/a.txt", "a\n");
    ws.write(
        "low/BUILD",
        "load(\"//:defs.bzl\", \"collect\")\ncollect(name = \"low\", srcs = [\"a.txt\"], visibility = [\"//visibility:public\"])\n",
    );
    ws.write("top/b.txt", "b\n");
    ws.write(
        "top/BUILD",
        "load(\"//:defs.bzl\", \"collect\")\ncollect(name = \"top\", srcs = [\"b.txt\"], deps = [\"//low\"])\n",
    );
    let run = ok(ws.forge(&["build", "//top"]));
    assert_eq!(counts(&run).0, 1, "{}", run.both());
    let out = ws.root().join("forge-bin/top/top.txt");
    assert_eq!(fs::read_to_string(&out).unwrap(), "a\nb\n");

    // The analysis store keeps the action with its set...
    let stored: Vec<u8> = walkdir::WalkDir::new(ws.cache_dir())
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter(|e| e.path().components().any(|c| c.as_os_str() == "analysis"))
        .flat_map(|e| fs::read(e.path()).unwrap_or_default())
        .collect();
    assert!(
        stored.windows(7).any(|w| w == b"\"nodes\""),
        "no input set in the analysis store"
    );
    // ...and the plan made again from it keys it alike: nothing runs.
    for plans in walkdir::WalkDir::new(ws.cache_dir())
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_dir() && e.file_name() == "plans")
    {
        fs::remove_dir_all(plans.path()).expect("remove");
    }
    let run = ok(ws.forge(&["build", "//top"]));
    assert_eq!(counts(&run).0, 0, "{}", run.both());
    assert!(run.stderr.contains("(0 packages loaded"), "{}", run.both());

    // A file of the dependency's set: the action runs again.
    ws.write("low/a.txt", "A\n");
    let run = ok(ws.forge(&["build", "//top"]));
    assert_eq!(counts(&run).0, 1, "{}", run.both());
    assert_eq!(fs::read_to_string(&out).unwrap(), "A\nb\n");
}

/// The files of the discovered-inputs store of the workspace's output base, and whether an
/// old one-file-per-compile directory is there.
fn discovered_store(ws: &Workspace) -> (Vec<PathBuf>, bool) {
    let dirs = |name: &str| -> Vec<PathBuf> {
        walkdir::WalkDir::new(ws.cache_dir())
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_dir() && e.file_name() == name)
            .map(|e| e.into_path())
            .collect()
    };
    let stores = dirs("discovered_inputs");
    assert_eq!(stores.len(), 1, "{stores:?}");
    let files = fs::read_dir(&stores[0])
        .expect("store")
        .flatten()
        .map(|e| e.path())
        .collect();
    (files, !dirs("discovered").is_empty())
}

#[test]
fn what_compiles_read_is_packed_and_a_damaged_record_reruns_its_compile() {
    let ws = chain();
    let run = ok(ws.forge(&["build", "//..."]));
    assert_eq!(compiled(&run).len(), 10, "{}", run.both());
    // Ten compiles, but the index, its lock and one pack: not a file per compile.
    let (files, legacy) = discovered_store(&ws);
    assert!(files.len() <= 3, "{files:?}");
    assert!(!legacy);
    let run = ok(ws.forge(&["build", "//..."]));
    assert_eq!(counts(&run).0, 0, "{}", run.both());

    // Only l0/b.cc read l0/b.h: its record is damaged, and it alone runs again (a record
    // that fails its digest is not trusted) and is stored anew.
    let packs: Vec<PathBuf> = files
        .iter()
        .filter(|f| {
            f.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("pack-")
        })
        .cloned()
        .collect();
    assert_eq!(packs.len(), 1, "{files:?}");
    let mut bytes = fs::read(&packs[0]).expect("pack");
    let at = bytes
        .windows(7)
        .position(|w| w == b"l0/b.h\n")
        .expect("the record of l0/b.cc");
    bytes[at + 3] = b'x';
    fs::write(&packs[0], &bytes).expect("damage");
    let run = ok(ws.forge(&["build", "//..."]));
    assert_eq!(compiled(&run), ["l0/b.cc"], "{}", run.both());
    let run = ok(ws.forge(&["build", "//..."]));
    assert_eq!(counts(&run).0, 0, "{}", run.both());
}

#[test]
fn a_build_killed_while_compiling_leaves_a_store_the_next_build_uses() {
    let ws = chain();
    ok(ws.forge(&["build", "//..."]));
    for (i, wait) in [50u64, 200, 500].into_iter().enumerate() {
        // Every a.cc includes l0/a.h through the chain.
        ws.write(
            "l0/a.h",
            &format!("#pragma once\n#define L0_A (0 + 1)\n// kill {i}\n"),
        );
        let mut child = ws
            .command(&["build", "//..."])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(std::time::Duration::from_millis(wait));
        let _ = child.kill();
        child.wait().expect("wait");
    }
    let run = ok(ws.forge(&["build", "//..."]));
    let expected = ["app/main.cc", "l0/a.cc", "l1/a.cc", "l2/a.cc", "l3/a.cc"];
    assert!(
        compiled(&run)
            .iter()
            .all(|c| expected.contains(&c.as_str())),
        "{}",
        run.both()
    );
    let run = ok(ws.forge(&["build", "//..."]));
    assert_eq!(counts(&run).0, 0, "{}", run.both());
    // What a killed build published stays readable; what it left unpublished is garbage
    // the next publishing build removes.
    assert!(discovered_store(&ws).0.len() <= 3);
    ws.write("l0/b.h", "#pragma once\n#define L0_B 10\n");
    let run = ok(ws.forge(&["build", "//..."]));
    assert_eq!(compiled(&run), ["l0/b.cc"], "{}", run.both());
}

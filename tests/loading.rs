//! Library-level checks of loading: the fixture workspaces load into the targets their
//! BUILD files declare, with typed attributes and the right locations.

use std::path::Path;
use std::sync::Arc;

use forge::core::PackageId;
use forge::loading::{AttrValue, Loader, TargetKind};
use forge::workspace::{OutputBaseOptions, Workspace};

fn loader(fixture: &str) -> Loader {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(fixture);
    let ws = Workspace::discover(&root, &OutputBaseOptions::default()).expect("workspace");
    Loader::new(Arc::new(ws)).expect("prelude loads")
}

#[test]
fn workspace_name_comes_from_workspace_file() {
    let l = loader("graph");
    assert_eq!(l.workspace().name, "graph_example");
    assert_eq!(loader("errors").workspace().name, "__main__");
}

#[test]
fn rules_become_plain_targets() {
    let l = loader("graph");
    let pkg = l
        .load_package(&PackageId::new("", "app"))
        .unwrap_or_else(|e| panic!("{e:?}"));
    let gen_rule = pkg.targets["gen"].rule().expect("a rule");
    assert_eq!(gen_rule.class, "genrule");
    assert_eq!(gen_rule.attrs["cmd"], AttrValue::String("cp $< $@".into()));
    assert_eq!(pkg.targets["gen"].location.to_string(), "app/BUILD:10:1");
    assert!(matches!(
        pkg.targets["gen.txt"].kind,
        TargetKind::GeneratedFile { .. }
    ));
    assert!(matches!(
        pkg.targets["input.txt"].kind,
        TargetKind::SourceFile
    ));
    let test = pkg.targets["hello_test"].rule().unwrap();
    assert!(test.is_test);
    assert_eq!(test.attrs["timeout"], AttrValue::String("short".into()));
    // The macro-made target remembers the BUILD line and the line inside the macro.
    let hi = &pkg.targets["hi_gen"];
    assert_eq!(hi.location.to_string(), "app/BUILD:37:1");
    let call = hi
        .rule()
        .unwrap()
        .macro_call
        .as_ref()
        .expect("made by a macro");
    assert_eq!(call.function, "greeting");
    assert_eq!(call.location.to_string(), "rules/macros.bzl:5:5");
    assert_eq!(pkg.targets["hi"].rule().unwrap().class, "message");
    assert_eq!(
        pkg.bzl_files
            .iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>(),
        ["//rules:defs.bzl", "//rules:macros.bzl"]
    );
}

#[test]
fn glob_is_sorted_and_stops_at_subpackages() {
    let l = loader("graph");
    let pkg = l
        .load_package(&PackageId::new("", "data"))
        .unwrap_or_else(|e| panic!("{e:?}"));
    let srcs = |name: &str| match &pkg.targets[name].rule().unwrap().attrs["srcs"] {
        AttrValue::LabelList(v) => v.iter().map(|l| l.to_string()).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        srcs("files"),
        ["//data:a.txt", "//data:b.txt", "//data:sub/c.txt"]
    );
    assert_eq!(srcs("qmark"), ["//data:a.txt", "//data:b.txt"]);
    assert!(srcs("nothing").is_empty());
    assert_eq!(
        pkg.targets["names"].rule().unwrap().attrs["cmd"],
        AttrValue::String("echo data @ > $@".into())
    );
}

#[test]
fn package_defaults_exports_and_groups() {
    let l = loader("graph");
    let lib = l
        .load_package(&PackageId::new("", "lib"))
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        lib.default_visibility
            .iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>(),
        ["//visibility:public"]
    );
    assert_eq!(lib.targets["dep"].visibility, lib.default_visibility);
    let tools = l
        .load_package(&PackageId::new("", "tools"))
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        tools.targets["tool"]
            .visibility
            .iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>(),
        ["//app:__pkg__"]
    );
    let rules = l
        .load_package(&PackageId::new("", "rules"))
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert!(matches!(
        rules.targets["defs.bzl"].kind,
        TargetKind::SourceFile
    ));
    assert_eq!(
        rules.targets["defs.bzl"]
            .visibility
            .iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>(),
        ["//visibility:public"]
    );
    let vis = l
        .load_package(&PackageId::new("", "vis/a"))
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert!(matches!(
        vis.targets["friends"].kind,
        TargetKind::PackageGroup(_)
    ));
    assert_eq!(
        vis.targets["private"]
            .visibility
            .iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>(),
        ["//visibility:private"]
    );
}

#[test]
fn package_features_and_custom_rule_attributes() {
    let root = tempfile::tempdir().unwrap();
    let w = |p: &str, c: &str| {
        let path = root.path().join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, c).unwrap();
    };
    w("WORKSPACE", "");
    w(
        "p/defs.bzl",
        "def _i(ctx):\n    pass\nr = rule(implementation = _i, attrs = {'d': attr.string_dict(), 'k': attr.label_keyed_string_dict(allow_files = True), 'o': attr.output()}, outputs = {'log': '%{name}.log'})\n",
    );
    w(
        "p/BUILD",
        "load(':defs.bzl', 'r')\npackage(features = ['a', '-b'])\nr(name = 'x', d = {'k': 'v'}, k = {':f': 'label'}, o = 'x.out')\n",
    );
    let ws = Workspace::discover(root.path(), &OutputBaseOptions::default()).unwrap();
    let l = Loader::new(Arc::new(ws)).unwrap();
    let pkg = l
        .load_package(&PackageId::new("", "p"))
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(pkg.features, ["a", "-b"]);
    let x = pkg.targets["x"].rule().unwrap();
    assert_eq!(
        x.attrs["d"],
        AttrValue::StringDict(vec![("k".into(), "v".into())])
    );
    assert!(
        matches!(&x.attrs["k"], AttrValue::LabelKeyedStringDict(v) if v[0].0.to_string() == "//p:f")
    );
    assert!(matches!(
        pkg.targets["x.out"].kind,
        TargetKind::GeneratedFile { .. }
    ));
    assert!(
        matches!(pkg.targets["x.log"].kind, TargetKind::GeneratedFile { .. }),
        "predeclared output"
    );
    assert!(matches!(pkg.targets["f"].kind, TargetKind::SourceFile));
}

//! Incremental loading and analysis against doing it from scratch: a generated workspace
//! (packages, .bzl macros loading each other, globs, subpackages, Starlark rules whose
//! providers hold transitive depsets and sometimes a function, a tool in the exec
//! configuration, a select()) is edited at random — BUILD files, .bzl files, source files,
//! directory listings — and after each step the answer of `forge query` in a long-lived
//! output base (which reuses stored packages) must equal the answer in a fresh output base;
//! every few steps `forge build` is compared too (the plan and the outputs), alternating
//! between two configurations.
//! Plus the targeted cases: a .bzl edit re-evaluates exactly the packages that load it, a
//! damaged store entry is evaluated again, a glob sees a new file, query reuses the store,
//! commands storing at once into one output base leave the stores whole.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use common::{Run, Workspace};

/// A small deterministic generator (xorshift), so a failing step can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// `//defs:rules.bzl` (`VERSION` replaced): rules whose providers hold transitive depsets,
/// counts, and optionally a function.
const RULES: &str = r#"Info = provider(fields = ["files", "count", "helper"])

def _helper(x):
    return x

def _lib(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".lib")
    ctx.actions.write(out, "vVERSION " + ctx.attr.text + "\n")
    infos = [d[Info] for d in ctx.attr.deps]
    count = 1
    for i in infos:
        count += i.count
    return [
        DefaultInfo(files = depset([out])),
        Info(
            files = depset([out], transitive = [i.files for i in infos], order = "postorder"),
            count = count,
            helper = _helper if ctx.attr.with_fn else None,
        ),
    ]

lib = rule(implementation = _lib, attrs = {
    "text": attr.string(),
    "deps": attr.label_list(providers = [Info]),
    "with_fn": attr.bool(),
})

def _collect(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".all")
    files = depset(transitive = [d[Info].files for d in ctx.attr.deps], order = "postorder")
    count = 0
    for d in ctx.attr.deps:
        count += d[Info].count
    tool = ctx.attr.tool[Info].files.to_list() if ctx.attr.tool else []
    inputs = files.to_list() + tool
    ctx.actions.run_shell(
        outputs = [out],
        inputs = inputs,
        command = "(echo %s %d; cat /dev/null %s) > %s" % (ctx.attr.mode, count, " ".join([f.path for f in inputs]), out.path),
    )
    return [
        DefaultInfo(files = depset([out]), runfiles = ctx.runfiles(files = files.to_list())),
        Info(files = depset([out], transitive = [files]), count = count, helper = None),
    ]

collect = rule(implementation = _collect, attrs = {
    "deps": attr.label_list(providers = [Info]),
    "tool": attr.label(cfg = "exec", providers = [Info]),
    "mode": attr.string(),
})
"#;

/// One target a generated BUILD file declares.
#[derive(Clone, Debug)]
enum Decl {
    /// A genrule written in the BUILD file, depending on `dep` if given.
    Genrule {
        name: String,
        text: u32,
        dep: Option<String>,
    },
    /// A call of the `m1` macro (a genrule in `//defs:m1.bzl`).
    M1 { name: String, dep: Option<String> },
    /// A call of the `m2` macro (which calls `m1` or not, and globs `data/`).
    M2 { name: String },
    /// A filegroup of a glob over the package's `src/`.
    Glob { name: String, recursive: bool },
    /// A `lib` of `//defs:rules.bzl`: a file of its own and an `Info` provider with a
    /// transitive depset of its deps' files (and, `with_fn`, a function, which cannot be
    /// stored).
    Lib {
        name: String,
        text: u32,
        deps: Vec<String>,
        with_fn: bool,
    },
    /// A `collect` of `//defs:rules.bzl`: concatenates its deps' transitive files, with a
    /// tool in the exec configuration and a `select()` on `--define=mode=opt`.
    Collect {
        name: String,
        deps: Vec<String>,
        tool: Option<String>,
    },
}

impl Decl {
    fn name(&self) -> &str {
        match self {
            Decl::Genrule { name, .. }
            | Decl::M1 { name, .. }
            | Decl::M2 { name }
            | Decl::Glob { name, .. }
            | Decl::Lib { name, .. }
            | Decl::Collect { name, .. } => name,
        }
    }
}

#[derive(Clone, Debug)]
struct Package {
    dir: String,
    bazel_name: bool,
    comments: u32,
    broken: bool,
    decls: Vec<Decl>,
}

/// The whole workspace as data; `files()` renders it.
struct Model {
    packages: Vec<Package>,
    m1_text: u32,
    m1_comments: u32,
    m2_uses_m1: bool,
    m2_suffix: u32,
    /// What `//defs:rules.bzl`'s `lib` writes, and comments above its rules.
    rules_version: u32,
    rules_comments: u32,
    /// Source files (path -> content), including some in directories globs see.
    sources: BTreeMap<String, String>,
    next_name: u32,
}

impl Model {
    fn new() -> Model {
        let mut model = Model {
            packages: Vec::new(),
            m1_text: 0,
            m1_comments: 0,
            m2_uses_m1: true,
            m2_suffix: 0,
            rules_version: 0,
            rules_comments: 0,
            sources: BTreeMap::new(),
            next_name: 0,
        };
        for dir in ["p0", "p1", "p2", "p3", "p3/inner"] {
            let mut package = Package {
                dir: dir.to_owned(),
                bazel_name: false,
                comments: 0,
                broken: false,
                decls: Vec::new(),
            };
            let n = model.name();
            package.decls.push(Decl::Genrule {
                name: n,
                text: 0,
                dep: None,
            });
            let n = model.name();
            package.decls.push(Decl::M1 { name: n, dep: None });
            let n = model.name();
            package.decls.push(Decl::Glob {
                name: n,
                recursive: dir == "p3",
            });
            model.packages.push(package);
            model
                .sources
                .insert(format!("{dir}/src/a.txt"), "a\n".into());
        }
        let n = model.name();
        model.packages[1].decls.push(Decl::M2 { name: n });
        // Starlark rules with providers: a chain of libs and a collect over it.
        let lib0 = model.name();
        model.packages[0].decls.push(Decl::Lib {
            name: lib0.clone(),
            text: 0,
            deps: Vec::new(),
            with_fn: false,
        });
        let lib1 = model.name();
        model.packages[1].decls.push(Decl::Lib {
            name: lib1.clone(),
            text: 0,
            deps: vec![format!("//p0:{lib0}")],
            with_fn: false,
        });
        let n = model.name();
        model.packages[2].decls.push(Decl::Collect {
            name: n,
            deps: vec![format!("//p1:{lib1}")],
            tool: Some(format!("//p0:{lib0}")),
        });
        model.sources.insert("p1/data/one.dat".into(), "1\n".into());
        model
    }

    fn name(&mut self) -> String {
        self.next_name += 1;
        format!("t{}", self.next_name)
    }

    /// Every file of the workspace, by path.
    fn files(&self) -> BTreeMap<String, String> {
        let mut files = self.sources.clone();
        files.insert("WORKSPACE".into(), "workspace(name = \"stress\")\n".into());
        files.insert(
            "defs/BUILD".into(),
            "config_setting(name = \"opt\", define_values = {\"mode\": \"opt\"}, visibility = [\"//visibility:public\"])\n".into(),
        );
        let mut rules = String::new();
        for i in 0..self.rules_comments {
            rules.push_str(&format!("# comment {i}\n"));
        }
        rules.push_str(&RULES.replace("VERSION", &self.rules_version.to_string()));
        files.insert("defs/rules.bzl".into(), rules);
        let mut m1 = String::new();
        for i in 0..self.m1_comments {
            m1.push_str(&format!("# comment {i}\n"));
        }
        m1.push_str(&format!(
            "def m1(name, dep = None):\n    native.genrule(\n        name = name,\n        srcs = [dep] if dep else [],\n        outs = [name + \".out\"],\n        cmd = \"echo m1-{} $(SRCS) > $@\",\n        visibility = [\"//visibility:public\"],\n    )\n",
            self.m1_text
        ));
        files.insert("defs/m1.bzl".into(), m1);
        let m2 = if self.m2_uses_m1 {
            format!(
                "load(\":m1.bzl\", \"m1\")\n\ndef m2(name):\n    m1(name = name + \"_a{0}\")\n    native.filegroup(name = name, srcs = [\":\" + name + \"_a{0}\"] + native.glob([\"data/**/*.dat\"]))\n",
                self.m2_suffix
            )
        } else {
            format!(
                "def m2(name):\n    native.filegroup(name = name, srcs = native.glob([\"data/**/*.dat\"]) + [\"k{}\"])\n",
                self.m2_suffix
            )
        };
        files.insert("defs/m2.bzl".into(), m2);
        for package in &self.packages {
            let mut text = String::new();
            let uses = |f: fn(&Decl) -> bool| package.decls.iter().any(f).then_some(()).is_some();
            if uses(|d| matches!(d, Decl::M1 { .. })) {
                text.push_str("load(\"//defs:m1.bzl\", \"m1\")\n");
            }
            if uses(|d| matches!(d, Decl::M2 { .. })) {
                text.push_str("load(\"//defs:m2.bzl\", \"m2\")\n");
            }
            if uses(|d| matches!(d, Decl::Lib { .. } | Decl::Collect { .. })) {
                text.push_str("load(\"//defs:rules.bzl\", \"collect\", \"lib\")\n");
            }
            for i in 0..package.comments {
                text.push_str(&format!("# note {i}\n"));
            }
            for decl in &package.decls {
                let dep = |dep: &Option<String>| match dep {
                    Some(d) => format!("\"{d}\""),
                    None => "None".into(),
                };
                text.push_str(&match decl {
                    Decl::Genrule { name, text, dep: d } => format!(
                        "genrule(name = \"{name}\", srcs = [{}], outs = [\"{name}.out\"], cmd = \"echo g{text} $(SRCS) > $@\", visibility = [\"//visibility:public\"])\n",
                        d.as_ref().map(|d| format!("\"{d}\"")).unwrap_or_default()
                    ),
                    Decl::M1 { name, dep: d } => format!("m1(name = \"{name}\", dep = {})\n", dep(d)),
                    Decl::M2 { name } => format!("m2(name = \"{name}\")\n"),
                    Decl::Lib {
                        name,
                        text,
                        deps,
                        with_fn,
                    } => format!(
                        "lib(name = \"{name}\", text = \"l{text}\", deps = {deps:?}, with_fn = {}, visibility = [\"//visibility:public\"])\n",
                        if *with_fn { "True" } else { "False" }
                    ),
                    Decl::Collect { name, deps, tool } => format!(
                        "collect(name = \"{name}\", deps = {deps:?}, tool = {}, mode = select({{\"//defs:opt\": \"opt\", \"//conditions:default\": \"dbg\"}}), visibility = [\"//visibility:public\"])\n",
                        tool.as_ref().map(|t| format!("\"{t}\"")).unwrap_or("None".into())
                    ),
                    Decl::Glob { name, recursive } => format!(
                        "filegroup(name = \"{name}\", srcs = glob([\"{}\"]), visibility = [\"//visibility:public\"])\n",
                        if *recursive { "**/*.txt" } else { "src/*.txt" }
                    ),
                });
            }
            if package.broken {
                text.push_str("genrule(name = \n");
            }
            let build = if package.bazel_name {
                "BUILD.bazel"
            } else {
                "BUILD"
            };
            files.insert(format!("{}/{build}", package.dir), text);
        }
        files
    }

    /// Labels of targets in packages before `index` that a new target may depend on.
    fn dep_candidates(&self, index: usize) -> Vec<String> {
        self.packages[..index]
            .iter()
            .flat_map(|p| {
                p.decls
                    .iter()
                    .filter(|d| !matches!(d, Decl::M2 { .. }))
                    .map(move |d| format!("//{}:{}", p.dir, d.name()))
            })
            .collect()
    }

    /// Labels of targets with the `Info` provider in packages before `index`.
    fn info_candidates(&self, index: usize) -> Vec<String> {
        self.packages[..index]
            .iter()
            .flat_map(|p| {
                p.decls
                    .iter()
                    .filter(|d| matches!(d, Decl::Lib { .. } | Decl::Collect { .. }))
                    .map(move |d| format!("//{}:{}", p.dir, d.name()))
            })
            .collect()
    }

    /// Up to two of `candidates`, at random.
    fn some_of(rng: &mut Rng, candidates: &[String]) -> Vec<String> {
        let mut deps = Vec::new();
        for _ in 0..2 {
            if !candidates.is_empty() && rng.chance(60) {
                let d = candidates[rng.below(candidates.len())].clone();
                if !deps.contains(&d) {
                    deps.push(d);
                }
            }
        }
        deps
    }

    /// One random edit; returns what it was, for the failure message.
    fn edit(&mut self, rng: &mut Rng) -> String {
        // A broken BUILD file is soon fixed, so that most steps build.
        if let Some(broken) = self.packages.iter_mut().find(|p| p.broken)
            && rng.chance(50)
        {
            broken.broken = false;
            return format!("{}'s BUILD file fixed", broken.dir);
        }
        let p = rng.below(self.packages.len());
        let dir = self.packages[p].dir.clone();
        match rng.below(19) {
            14 => {
                let candidates = self.info_candidates(p);
                let deps = Self::some_of(rng, &candidates);
                let name = self.name();
                let decl = if rng.chance(50) {
                    Decl::Lib {
                        name,
                        text: 0,
                        deps,
                        with_fn: rng.chance(15),
                    }
                } else {
                    let tool = (!candidates.is_empty() && rng.chance(50))
                        .then(|| candidates[rng.below(candidates.len())].clone());
                    Decl::Collect { name, deps, tool }
                };
                let what = format!("{decl:?} added to {dir}");
                self.packages[p].decls.push(decl);
                what
            }
            15 => {
                for decl in &mut self.packages[p].decls {
                    if let Decl::Lib { text, .. } = decl {
                        *text += 1;
                    }
                }
                format!("lib texts changed in {dir}")
            }
            16 => {
                if rng.chance(50) {
                    self.rules_version += 1;
                    "rules.bzl's lib output changed".into()
                } else {
                    self.rules_comments += 1;
                    "comment added to rules.bzl".into()
                }
            }
            17 => {
                let candidates = self.info_candidates(p);
                let new_deps = Self::some_of(rng, &candidates);
                let Some(Decl::Lib { deps, .. } | Decl::Collect { deps, .. }) = self.packages[p]
                    .decls
                    .iter_mut()
                    .find(|d| matches!(d, Decl::Lib { .. } | Decl::Collect { .. }))
                else {
                    return "nothing".into();
                };
                *deps = new_deps;
                format!("deps of a rule target in {dir} changed")
            }
            18 => {
                let Some(Decl::Lib { with_fn, .. }) = self.packages[p]
                    .decls
                    .iter_mut()
                    .find(|d| matches!(d, Decl::Lib { .. }))
                else {
                    return "nothing".into();
                };
                *with_fn = !*with_fn;
                format!("a lib in {dir} gained or lost a function in its provider")
            }
            0 => {
                self.packages[p].comments += 1;
                format!("comment added to {dir}'s BUILD file")
            }
            1 => {
                let candidates = self.dep_candidates(p);
                let dep = (!candidates.is_empty() && rng.chance(60))
                    .then(|| candidates[rng.below(candidates.len())].clone());
                let name = self.name();
                let decl = match rng.below(4) {
                    0 => Decl::Genrule { name, text: 0, dep },
                    1 => Decl::M1 { name, dep },
                    2 => Decl::M2 { name },
                    _ => Decl::Glob {
                        name,
                        recursive: rng.chance(50),
                    },
                };
                let what = format!("{decl:?} added to {dir}");
                self.packages[p].decls.push(decl);
                what
            }
            2 if self.packages[p].decls.len() > 1 => {
                let i = rng.below(self.packages[p].decls.len());
                let removed = self.packages[p].decls.remove(i);
                // The rule targets naming it stop naming it (as an edit would), so that the
                // workspace does not stay broken for the rest of the run.
                let gone = format!("//{dir}:{}", removed.name());
                for decl in self.packages.iter_mut().flat_map(|p| p.decls.iter_mut()) {
                    match decl {
                        Decl::Lib { deps, .. } => deps.retain(|d| *d != gone),
                        Decl::Collect { deps, tool, .. } => {
                            deps.retain(|d| *d != gone);
                            if tool.as_ref() == Some(&gone) {
                                *tool = None;
                            }
                        }
                        _ => {}
                    }
                }
                format!("{removed:?} removed from {dir}")
            }
            3 => {
                for decl in &mut self.packages[p].decls {
                    if let Decl::Genrule { text, .. } = decl {
                        *text += 1;
                    }
                }
                format!("genrule commands changed in {dir}")
            }
            4 => {
                self.packages[p].bazel_name = !self.packages[p].bazel_name;
                format!("{dir}'s BUILD file renamed")
            }
            5 => {
                self.packages[p].broken = !self.packages[p].broken;
                format!("{dir}'s BUILD file broken or fixed")
            }
            6 => {
                self.m1_text += 1;
                "m1.bzl's command changed".into()
            }
            7 => {
                self.m1_comments += 1;
                "comment added to m1.bzl".into()
            }
            8 => {
                if rng.chance(50) {
                    self.m2_uses_m1 = !self.m2_uses_m1;
                    "m2.bzl's load of m1.bzl added or removed".into()
                } else {
                    self.m2_suffix += 1;
                    "m2.bzl's target names changed".into()
                }
            }
            9 | 10 => {
                let sub = ["src", "src/deep", "data", "data/sub", "other"][rng.below(5)];
                let ext = if sub.starts_with("data") {
                    "dat"
                } else {
                    "txt"
                };
                let path = format!("{dir}/{sub}/f{}.{ext}", rng.below(6));
                if self.sources.remove(&path).is_some() {
                    format!("{path} deleted")
                } else {
                    self.sources.insert(path.clone(), "new\n".into());
                    format!("{path} created")
                }
            }
            11 => {
                let path = self
                    .sources
                    .keys()
                    .nth(rng.below(self.sources.len()))
                    .cloned()
                    .expect("sources");
                let content = format!("{}x\n", self.sources[&path]);
                self.sources.insert(path.clone(), content);
                format!("{path} edited")
            }
            12 => {
                // A subpackage appears or goes inside a directory a glob walks.
                let path = format!("{dir}/src/deep/BUILD");
                if self.sources.remove(&path).is_some() {
                    format!("{path} deleted")
                } else {
                    self.sources.insert(path.clone(), String::new());
                    format!("{path} created")
                }
            }
            _ => {
                let candidates = self.dep_candidates(p);
                let Some(Decl::Genrule { dep, .. } | Decl::M1 { dep, .. }) = self.packages[p]
                    .decls
                    .iter_mut()
                    .find(|d| matches!(d, Decl::Genrule { .. } | Decl::M1 { .. }))
                else {
                    return "nothing".into();
                };
                *dep = (!candidates.is_empty())
                    .then(|| candidates[rng.below(candidates.len())].clone());
                format!("a dependency in {dir} changed to {dep:?}")
            }
        }
    }
}

/// Writes the files that changed and removes the ones that went (and directories left
/// empty), leaving every other file untouched.
fn apply(root: &Path, before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) {
    for (path, content) in after {
        if before.get(path) != Some(content) {
            let p = root.join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, content).unwrap();
        }
    }
    for path in before.keys().filter(|p| !after.contains_key(*p)) {
        let p = root.join(path);
        fs::remove_file(&p).unwrap();
        let mut dir = p.parent().map(Path::to_path_buf);
        while let Some(d) = dir.filter(|d| d != root) {
            if fs::remove_dir(&d).is_err() {
                break;
            }
            dir = d.parent().map(Path::to_path_buf);
        }
    }
}

fn forge_at(ws: &Workspace, output_base: &Path, args: &[&str]) -> Run {
    let flag = format!("--output_base={}", output_base.display());
    let mut all = vec![flag.as_str()];
    all.extend_from_slice(args);
    ws.forge(&all)
}

/// What a query answers: exit code, result and messages.
fn query(ws: &Workspace, output_base: &Path) -> (i32, String, Vec<String>) {
    let run = forge_at(
        ws,
        output_base,
        &[
            "query",
            "--keep_going",
            "--output=json",
            "//...:* + buildfiles(//...)",
        ],
    );
    let mut messages: Vec<String> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("ERROR") || l.starts_with("WARNING"))
        .map(str::to_owned)
        .collect();
    messages.sort();
    (run.code, run.stdout, messages)
}

/// A stored plan, without what may differ between two equal plans: the stats of the files
/// loading read (taken at different moments), how many packages were evaluated rather than
/// reused, and the order of the actions (analysis runs in parallel).
fn comparable_plan(path: &Path) -> serde_json::Value {
    let (_, plan) = forge::analysis::plan::read_stored(path).expect("a stored plan");
    let mut plan = serde_json::to_value(&plan).expect("a plan in JSON");
    plan["packages_loaded"] = serde_json::Value::Null;
    // How many targets were analysed rather than taken from the result store.
    plan["targets_configured"] = serde_json::Value::Null;
    let mut actions: Vec<String> = plan["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| a.to_string())
        .collect();
    actions.sort();
    plan["actions"] = serde_json::Value::from(actions);
    plan
}

/// What a build gives: its exit code, every file under `forge-bin` (path -> content), the
/// stored plans (by file name) and how many targets it analysed.
type Built = (
    i32,
    BTreeMap<String, String>,
    BTreeMap<String, serde_json::Value>,
    usize,
);

fn build(ws: &Workspace, output_base: &Path, flags: &[&str]) -> Built {
    let mut args = vec!["build"];
    args.extend_from_slice(flags);
    args.push("//...");
    let run = forge_at(ws, output_base, &args);
    let mut outputs = BTreeMap::new();
    let bin = ws.root().join("forge-bin");
    if run.code == 0 {
        for entry in walkdir::WalkDir::new(&bin).follow_links(true) {
            let entry = entry.unwrap();
            if entry.file_type().is_file() {
                let rel = entry.path().strip_prefix(&bin).unwrap();
                outputs.insert(
                    rel.display().to_string(),
                    fs::read_to_string(entry.path()).unwrap(),
                );
            }
        }
    }
    let plans: BTreeMap<String, serde_json::Value> = fs::read_dir(output_base.join("cache/plans"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    (name, comparable_plan(&e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    let configured = run
        .stderr
        .lines()
        .find(|l| l.starts_with("INFO: Analyzed"))
        .map_or(0, configured_count);
    (run.code, outputs, plans, configured)
}

/// The `M` of `(N packages loaded, M targets configured)` in an analysis line.
fn configured_count(line: &str) -> usize {
    let counts = &line[line.find('(').unwrap() + 1..];
    let after = counts.split(", ").nth(1).expect("a configured count");
    after.split(' ').next().unwrap().parse().unwrap()
}

/// The configuration of the `builds`th build of the random edits: every other one with
/// `--define=mode=opt`.
fn configuration(builds: usize) -> &'static str {
    match builds % 2 {
        0 => "--define=mode=opt",
        _ => "--define=mode=dbg",
    }
}

#[test]
fn random_edits_give_what_loading_from_scratch_gives() {
    let steps: usize = std::env::var("FORGE_STRESS_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let seed: u64 = std::env::var("FORGE_STRESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_f0e6);
    let ws = Workspace::empty();
    let root = ws.root();
    let scratch = tempfile::tempdir().unwrap();
    let incremental = scratch.path().join("incremental");
    let mut model = Model::new();
    let mut rng = Rng(seed);
    let mut files = model.files();
    apply(&root, &BTreeMap::new(), &files);
    let mut history = Vec::new();
    let mut builds = 0;
    // Targets analysed by the incremental and the fresh builds.
    let (mut analysed, mut analysed_fresh) = (0, 0);
    for step in 0..steps {
        let what = model.edit(&mut rng);
        history.push(format!("step {step}: {what}"));
        // A comment in a BUILD file: the workspace is built just before it too (in the
        // configuration of the last build), so the build after it may reuse that plan
        // (`plan_cutoff`); it must then equal a fresh build.
        let comment = what.starts_with("comment added to") && what.ends_with("BUILD file");
        if comment {
            forge_at(
                &ws,
                &incremental,
                &["build", configuration(builds), "//..."],
            );
        }
        let next = model.files();
        apply(&root, &files, &next);
        files = next;
        let fresh = scratch.path().join(format!("fresh{step}"));
        let got = query(&ws, &incremental);
        let want = query(&ws, &fresh);
        if std::env::var("FORGE_STRESS_DEBUG").is_ok() {
            eprintln!("step {step}: {what}: query exit {}", want.0);
        }
        assert!(
            got == want,
            "query differs from loading from scratch after:\n{}\n--- incremental: {:?}\n{}\n--- fresh: {:?}\n{}",
            history.join("\n"),
            (got.0, &got.2),
            got.1,
            (want.0, &want.2),
            want.1
        );
        if (step % 4 == 3 || comment) && want.0 == 0 {
            // Every other build in another configuration: select()s and output paths
            // change, and both configurations' results live in the store. A comment's
            // build keeps the configuration of the build before.
            if !comment {
                builds += 1;
            }
            let flags: &[&str] = &[configuration(builds)];
            let got = build(&ws, &incremental, flags);
            let want = build(&ws, &fresh, flags);
            analysed += got.3;
            analysed_fresh += want.3;
            assert_eq!(
                got.0,
                want.0,
                "build exit codes after:\n{}",
                history.join("\n")
            );
            // Outputs of targets since removed or renamed stay in the long-lived tree (as in
            // Bazel); every output of this build must be there, with the same content.
            for (path, content) in &want.1 {
                assert_eq!(
                    got.1.get(path),
                    Some(content),
                    "build output {path} after:\n{}",
                    history.join("\n")
                );
            }
            // The fresh output base holds this command's plan only; the long-lived one
            // has the other configuration's too.
            for (name, plan) in &want.2 {
                assert_eq!(
                    got.2.get(name),
                    Some(plan),
                    "stored plans after:\n{}",
                    history.join("\n")
                );
            }
        }
        fs::remove_dir_all(&fresh).ok();
    }
    assert!(builds > 0, "no step ended in a workspace that loads");
    // The long-lived output base took results from the analysis result store (an edit of
    // a .bzl file most packages load analyses their targets again, so not all).
    eprintln!("{analysed} targets analysed incrementally, {analysed_fresh} from scratch");
    assert!(
        analysed < analysed_fresh,
        "{analysed} targets analysed incrementally, {analysed_fresh} from scratch"
    );
}

/// The `(N packages loaded, ...` count of the analysis line.
fn packages_loaded(run: &Run) -> usize {
    assert_eq!(run.code, 0, "forge failed:\n{}", run.both());
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("INFO: Analyzed"))
        .unwrap_or_else(|| panic!("no analysis line in:\n{}", run.stderr));
    let counts = &line[line.find('(').unwrap() + 1..];
    counts.split(' ').next().unwrap().parse().unwrap()
}

fn macro_workspace() -> Workspace {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "workspace(name = \"w\")\n");
    ws.write("defs/BUILD", "");
    ws.write(
        "defs/base.bzl",
        "def base(name):\n    native.genrule(name = name, outs = [name + \".out\"], cmd = \"echo base > $@\")\n",
    );
    ws.write(
        "defs/wrap.bzl",
        "load(\":base.bzl\", \"base\")\n\ndef wrap(name):\n    base(name)\n",
    );
    ws.write(
        "defs/other.bzl",
        "def other(name):\n    native.genrule(name = name, outs = [name + \".out\"], cmd = \"echo other > $@\")\n",
    );
    ws.write(
        "a/BUILD",
        "load(\"//defs:base.bzl\", \"base\")\nbase(\"a\")\n",
    );
    ws.write(
        "b/BUILD",
        "load(\"//defs:wrap.bzl\", \"wrap\")\nwrap(\"b\")\n",
    );
    ws.write(
        "c/BUILD",
        "load(\"//defs:other.bzl\", \"other\")\nother(\"c\")\n",
    );
    ws.write(
        "d/BUILD",
        "genrule(name = \"d\", outs = [\"d.out\"], cmd = \"echo d > $@\")\n",
    );
    // A rule of its own: analysis evaluates rule.bzl even when //e comes from the store.
    ws.write(
        "defs/rule.bzl",
        "def _impl(ctx):\n    out = ctx.actions.declare_file(ctx.label.name + \".txt\")\n    ctx.actions.write(out, ctx.attr.text)\n    return [DefaultInfo(files = depset([out]))]\n\ntext_rule = rule(implementation = _impl, attrs = {\"text\": attr.string()})\n",
    );
    ws.write(
        "e/BUILD",
        "load(\"//defs:rule.bzl\", \"text_rule\")\ntext_rule(name = \"e\", text = \"custom\")\n",
    );
    ws
}

#[test]
fn a_bzl_edit_loads_again_exactly_the_packages_that_load_it() {
    let ws = macro_workspace();
    // Six packages: //defs, //a, //b, //c, //d, //e.
    assert_eq!(packages_loaded(&ws.forge(&["build", "//..."])), 6);
    assert_eq!(packages_loaded(&ws.forge(&["build", "//..."])), 0);

    // base.bzl is loaded by //a directly and by //b through wrap.bzl.
    ws.write(
        "defs/base.bzl",
        "# edited\ndef base(name):\n    native.genrule(name = name, outs = [name + \".out\"], cmd = \"echo BASE > $@\")\n",
    );
    assert_eq!(packages_loaded(&ws.forge(&["build", "//..."])), 2);
    let out = |p: &str| fs::read_to_string(ws.root().join(format!("forge-bin/{p}"))).unwrap();
    assert_eq!(out("a/a.out"), "BASE\n");
    assert_eq!(out("b/b.out"), "BASE\n");

    // wrap.bzl only by //b; other.bzl only by //c; a comment in //d's BUILD only //d.
    ws.write(
        "defs/wrap.bzl",
        "load(\":base.bzl\", \"base\")\n\ndef wrap(name):\n    base(name + \"2\")\n",
    );
    assert_eq!(packages_loaded(&ws.forge(&["build", "//..."])), 1);
    assert_eq!(out("b/b2.out"), "BASE\n");
    ws.write(
        "d/BUILD",
        "# a comment\ngenrule(name = \"d\", outs = [\"d.out\"], cmd = \"echo d > $@\")\n",
    );
    assert_eq!(packages_loaded(&ws.forge(&["build", "//..."])), 1);
    // Another command line plans again from stored packages only; //e's rule still runs.
    fs::remove_file(ws.root().join("forge-bin/e/e.txt")).unwrap();
    assert_eq!(
        packages_loaded(&ws.forge(&["build", "--define=x=1", "//..."])),
        0
    );
    assert_eq!(out("e/e.txt"), "custom");
}

/// The directory of a packed store (`packages` or `analysis`) of `ws`'s output base.
fn store_dir(ws: &Workspace, store: &str) -> PathBuf {
    let output_base = fs::canonicalize(ws.root().join("forge-ws")).unwrap();
    output_base.join("../../cache").join(store)
}

/// The pack files of a store directory, by name.
fn packs(dir: &Path) -> Vec<PathBuf> {
    let mut packs: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("pack-")
        })
        .collect();
    packs.sort();
    packs
}

/// Every file of a store directory with its bytes.
fn contents(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| (e.path(), fs::read(e.path()).unwrap()))
        .collect()
}

fn position(haystack: &[u8], needle: &str) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
}

#[test]
fn a_damaged_or_cut_store_entry_is_loaded_again_and_stored_healthy() {
    let ws = macro_workspace();
    assert_eq!(packages_loaded(&ws.forge(&["build", "//..."])), 6);
    let store = store_dir(&ws, "packages");
    // Six packages, one file of entries (and the index, and the writers' lock).
    let [first] = packs(&store).try_into().unwrap();
    assert_eq!(contents(&store).len(), 3, "{:?}", contents(&store).keys());
    // //d's entry damaged in the middle (where its command is).
    let mut bytes = fs::read(&first).unwrap();
    let at = position(&bytes, "echo d > $@").expect("//d's command is in the pack");
    bytes[at + 3] ^= 0x20;
    fs::write(&first, bytes).unwrap();
    // The same command reuses its plan: the package store is not even read.
    let damaged = contents(&store);
    let run = ws.forge(&["build", "//..."]);
    assert!(
        run.stderr
            .contains("(0 packages loaded, 0 targets configured)"),
        "{}",
        run.both()
    );
    assert!(
        contents(&store) == damaged,
        "a no-op build left the store alone"
    );
    // Another command line misses the plan cache and goes to the package store: only //d
    // fails its digest.
    let run = ws.forge(&["build", "--define=x=1", "//..."]);
    assert_eq!(packages_loaded(&run), 1);
    let out = |p: &str| fs::read_to_string(ws.root().join(format!("forge-bin/{p}"))).unwrap();
    assert_eq!(out("a/a.out"), "base\n");
    assert_eq!(out("d/d.out"), "d\n");
    // A pack cut short (a write torn by a crash): the entry at its end is loaded again —
    // here the pack that build wrote, which holds //d alone.
    let [newest] = packs(&store)
        .into_iter()
        .filter(|p| *p != first)
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();
    let file = fs::File::options().write(true).open(&newest).unwrap();
    file.set_len(file.metadata().unwrap().len() - 3).unwrap();
    drop(file);
    let run = ws.forge(&["build", "--define=x=2", "//..."]);
    assert_eq!(packages_loaded(&run), 1);
    assert_eq!(out("d/d.out"), "d\n");
    assert_eq!(
        packages_loaded(&ws.forge(&["build", "--define=x=3", "//..."])),
        0,
        "and stored healthy"
    );
}

/// Starts `forge args` at `output_base` without waiting for it.
fn spawn_at(ws: &Workspace, output_base: &Path, args: &[&str]) -> std::process::Child {
    let flag = format!("--output_base={}", output_base.display());
    let mut all = vec![flag.as_str()];
    all.extend_from_slice(args);
    ws.command(&all)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// 40 packages, each with a genrule and a Starlark rule writing its number.
fn numbered_workspace() -> (Workspace, String) {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "workspace(name = \"w\")\n");
    ws.write(
        "defs/rule.bzl",
        "def _impl(ctx):\n    out = ctx.actions.declare_file(ctx.label.name + \".txt\")\n    ctx.actions.write(out, ctx.attr.text)\n    return [DefaultInfo(files = depset([out]))]\n\ntext_rule = rule(implementation = _impl, attrs = {\"text\": attr.string()})\n",
    );
    ws.write("defs/BUILD", "");
    let mut expected = String::new();
    for p in 0..40 {
        ws.write(
            &format!("p{p:02}/BUILD"),
            &format!(
                "load(\"//defs:rule.bzl\", \"text_rule\")\ntext_rule(name = \"t\", text = \"{p}\")\ngenrule(name = \"g\", outs = [\"g.out\"], cmd = \"echo {p} > $@\")\n"
            ),
        );
        expected.push_str(&format!("//p{p:02}:g\n//p{p:02}:t\n"));
    }
    (ws, expected)
}

/// Every output of `numbered_workspace` is right.
fn assert_numbered_outputs(ws: &Workspace) {
    for p in 0..40 {
        let text =
            |name: &str| fs::read_to_string(ws.root().join(format!("forge-bin/p{p:02}/{name}")));
        assert_eq!(text("t.txt").unwrap(), p.to_string());
        assert_eq!(text("g.out").unwrap(), format!("{p}\n"));
    }
}

#[test]
fn commands_storing_at_once_into_one_output_base_leave_the_stores_whole() {
    let (ws, expected) = numbered_workspace();
    let output_base = ws.root().join("../ob");
    for round in 0..3 {
        // Queries take no lock on the output base: they store packages alongside the build
        // (and the builds, one after the other, packages and analysis results).
        let mut running: Vec<std::process::Child> = (0..3)
            .map(|_| spawn_at(&ws, &output_base, &["query", "//..."]))
            .collect();
        running.push(spawn_at(
            &ws,
            &output_base,
            &["build", &format!("--define=round={round}"), "//..."],
        ));
        running.push(spawn_at(
            &ws,
            &output_base,
            &["build", &format!("--define=round=x{round}"), "//..."],
        ));
        for (i, child) in running.into_iter().enumerate() {
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{stderr}");
            if i < 3 {
                assert_eq!(String::from_utf8_lossy(&out.stdout), expected, "{stderr}");
            }
        }
        // Between rounds, an edit: its package is evaluated again.
        ws.write(
            &format!("p{round:02}/BUILD"),
            &format!(
                "# round {round}\n{}",
                fs::read_to_string(ws.root().join(format!("p{round:02}/BUILD"))).unwrap()
            ),
        );
    }
    // Everything is stored whole: another configuration loads no package, and analysing
    // again (for it) from intact entries gives the right outputs.
    let run = forge_at(&ws, &output_base, &["build", "--define=round=y", "//..."]);
    assert_eq!(packages_loaded(&run), 1, "the last edit only");
    let run = forge_at(&ws, &output_base, &["build", "--define=round=0", "//..."]);
    assert_eq!(packages_loaded(&run), 0);
    assert_eq!(configured(&run), 0, "stored by the first round's build");
    assert_numbered_outputs(&ws);
    for store in ["packages", "analysis"] {
        let dir = output_base.join("cache").join(store);
        assert!(packs(&dir).len() <= 8, "{store}: {:?}", packs(&dir));
        assert!(!dir.join("index.tmp").exists() || dir.join("index").exists());
    }
}

#[test]
fn commands_killed_while_storing_leave_nothing_that_is_read_as_valid() {
    let (ws, _) = numbered_workspace();
    let output_base = ws.root().join("../ob");
    // Killed at moments spread over loading and analysis (where the stores are written),
    // each with another configuration and another edit, so each has something to store.
    for (i, wait) in [30u64, 80, 150, 250, 400, 600, 900].into_iter().enumerate() {
        ws.write(
            &format!("p{i:02}/BUILD"),
            &format!(
                "# kill {i}\n{}",
                fs::read_to_string(ws.root().join(format!("p{i:02}/BUILD"))).unwrap()
            ),
        );
        let mut child = spawn_at(
            &ws,
            &output_base,
            &["build", &format!("--define=kill={i}"), "//..."],
        );
        std::thread::sleep(std::time::Duration::from_millis(wait));
        let _ = child.kill();
        child.wait().unwrap();
    }
    for define in ["--define=kill=0", "--define=kill=after"] {
        let run = forge_at(&ws, &output_base, &["build", define, "//..."]);
        assert_eq!(run.code, 0, "{}", run.both());
        assert_numbered_outputs(&ws);
    }
    // What the killed commands and these builds stored is read whole (the stored plan no
    // longer holds after an edit: the stores are read).
    ws.write(
        "p39/BUILD",
        &format!(
            "# edit\n{}",
            fs::read_to_string(ws.root().join("p39/BUILD")).unwrap()
        ),
    );
    let run = forge_at(&ws, &output_base, &["build", "--define=kill=0", "//..."]);
    assert_eq!(packages_loaded(&run), 1);
    assert_eq!(configured(&run), 0);
    assert_numbered_outputs(&ws);
    let run = forge_at(&ws, &output_base, &["query", "//..."]);
    assert_eq!(run.code, 0, "{}", run.both());
}

#[test]
fn a_glob_sees_a_new_file_and_a_new_subpackage() {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "");
    ws.write(
        "p/BUILD",
        "filegroup(name = \"all\", srcs = glob([\"**/*.txt\"]))\n",
    );
    ws.write("p/a.txt", "");
    ws.write("p/sub/b.txt", "");
    let srcs = |ws: &Workspace| {
        let run = ws.forge(&["query", "labels(srcs, //p:all)"]);
        assert_eq!(run.code, 0, "{}", run.both());
        run.stdout
    };
    assert_eq!(srcs(&ws), "//p:a.txt\n//p:sub/b.txt\n");
    ws.write("p/sub/c.txt", "");
    assert_eq!(srcs(&ws), "//p:a.txt\n//p:sub/b.txt\n//p:sub/c.txt\n");
    // sub becomes a package of its own: its files leave //p's glob.
    ws.write("p/sub/BUILD", "");
    assert_eq!(srcs(&ws), "//p:a.txt\n");
    fs::remove_file(ws.root().join("p/sub/BUILD")).unwrap();
    fs::remove_file(ws.root().join("p/a.txt")).unwrap();
    assert_eq!(srcs(&ws), "//p:sub/b.txt\n//p:sub/c.txt\n");
}

#[test]
fn query_reuses_the_stored_packages_and_replaces_only_what_changed() {
    let ws = macro_workspace();
    let query = |ws: &Workspace| {
        let run = ws.forge(&["query", "//..."]);
        assert_eq!(run.code, 0, "{}", run.both());
        run.stdout
    };
    let first = query(&ws);
    assert_eq!(first, "//a:a\n//b:b\n//c:c\n//d:d\n//e:e\n");
    let store = {
        // query makes no forge-* links: find the output base under the cache directory.
        let found: Vec<PathBuf> = walkdir::WalkDir::new(ws.cache_dir())
            .into_iter()
            .flatten()
            .filter(|e| e.file_name() == "packages")
            .map(|e| e.path().to_path_buf())
            .collect();
        assert_eq!(found.len(), 1, "{found:?}");
        found[0].clone()
    };
    let before = contents(&store);
    // Six packages in one pack, its index and the writers' lock.
    assert_eq!(before.len(), 3, "{:?}", before.keys());
    assert_eq!(packs(&store).len(), 1);
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(query(&ws), first);
    assert!(
        contents(&store) == before,
        "an unchanged workspace rewrites nothing"
    );

    ws.write(
        "c/BUILD",
        "load(\"//defs:other.bzl\", \"other\")\nother(\"c\")\nother(\"c2\")\n",
    );
    assert_eq!(query(&ws), "//a:a\n//b:b\n//c:c\n//c:c2\n//d:d\n//e:e\n");
    let after = contents(&store);
    let added: Vec<&Vec<u8>> = after
        .iter()
        .filter(|(p, _)| !before.contains_key(*p))
        .map(|(_, bytes)| bytes)
        .collect();
    assert_eq!(added.len(), 1, "one new pack");
    for (path, bytes) in &before {
        if packs(&store).contains(path) {
            assert!(&after[path] == bytes, "a pack is never written again");
        }
    }
    // Only //c is evaluated and stored again.
    assert!(position(added[0], "c2.out").is_some());
    for other in ["echo base", "echo d", "text_rule"] {
        assert!(position(added[0], other).is_none(), "{other}");
    }
}

/// The `M targets configured` count of the analysis line: the targets analysed.
fn configured(run: &Run) -> usize {
    assert_eq!(run.code, 0, "forge failed:\n{}", run.both());
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("INFO: Analyzed"))
        .unwrap_or_else(|| panic!("no analysis line in:\n{}", run.stderr));
    configured_count(line)
}

/// `//a:a` <- `//b:b` <- `//c:c` (libs, each with a transitive depset of files) and `//c:all`
/// collecting them; `//f:f` returns a function in its provider and `//f:use` calls it.
fn rules_workspace() -> Workspace {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "workspace(name = \"w\")\n");
    ws.write(
        "defs/BUILD",
        "config_setting(name = \"opt\", define_values = {\"mode\": \"opt\"}, visibility = [\"//visibility:public\"])\n",
    );
    ws.write(
        "defs/rules.bzl",
        &(RULES.replace("VERSION", "0")
            + r#"
FnInfo = provider(fields = ["fn"])

def _twice(x):
    return x + x

def _fn(ctx):
    return [FnInfo(fn = _twice)]

fn_rule = rule(implementation = _fn)

def _use(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    ctx.actions.write(out, ctx.attr.dep[FnInfo].fn(ctx.attr.text))
    return [DefaultInfo(files = depset([out]))]

use_rule = rule(implementation = _use, attrs = {"dep": attr.label(), "text": attr.string()})
"#),
    );
    let lib = |name: &str, text: &str, deps: &str| {
        format!(
            "load(\"//defs:rules.bzl\", \"collect\", \"lib\")\nlib(name = \"{name}\", text = \"{text}\", deps = [{deps}], visibility = [\"//visibility:public\"])\n"
        )
    };
    ws.write("a/BUILD", &lib("a", "A", ""));
    ws.write("b/BUILD", &lib("b", "B", "\"//a\""));
    ws.write(
        "c/BUILD",
        &(lib("c", "C", "\"//b\"")
            + "collect(name = \"all\", deps = [\":c\"], tool = \"//a\", mode = select({\"//defs:opt\": \"opt\", \"//conditions:default\": \"dbg\"}))\n"),
    );
    ws.write(
        "f/BUILD",
        "load(\"//defs:rules.bzl\", \"fn_rule\", \"use_rule\")\nfn_rule(name = \"f\")\nuse_rule(name = \"use\", dep = \":f\", text = \"ab\")\n",
    );
    ws
}

/// The rule targets of `rules_workspace` under `//...`: `//defs:opt`, and `//a:a` twice
/// (also as `//c:all`'s tool, in the exec configuration).
const RULE_TARGETS: usize = 8;

fn all_output(ws: &Workspace) -> String {
    fs::read_to_string(ws.root().join("forge-bin/c/all.all")).unwrap()
}

#[test]
fn a_build_comment_edit_analyses_nothing() {
    let ws = rules_workspace();
    let build = ["build", "//a", "//b", "//c:all"];
    assert_eq!(configured(&ws.forge(&build)), 6);
    assert_eq!(all_output(&ws), "dbg 3\nv0 A\nv0 B\nv0 C\nv0 A\n");
    // Comments added (lines moved) in a BUILD file of the chain's bottom and top: the
    // package loads again and comes out the same, so the stored plan still holds.
    ws.write(
        "a/BUILD",
        &format!(
            "# a comment\n\n{}",
            fs::read_to_string(ws.root().join("a/BUILD")).unwrap()
        ),
    );
    let run = ws.forge(&build);
    assert_eq!(packages_loaded(&run), 1);
    assert_eq!(configured(&run), 0, "{}", run.stderr);
    ws.write(
        "c/BUILD",
        &format!(
            "# another\n{}",
            fs::read_to_string(ws.root().join("c/BUILD")).unwrap()
        ),
    );
    assert_eq!(configured(&ws.forge(&build)), 0);
    assert_eq!(all_output(&ws), "dbg 3\nv0 A\nv0 B\nv0 C\nv0 A\n");
    // The same targets in another configuration are analysed; then both come from the store.
    let opt = ["build", "--define=mode=opt", "//a", "//b", "//c:all"];
    assert_eq!(configured(&ws.forge(&opt)), 6);
    assert_eq!(all_output(&ws), "opt 3\nv0 A\nv0 B\nv0 C\nv0 A\n");
    ws.write(
        "b/BUILD",
        &format!(
            "{}# end\n",
            fs::read_to_string(ws.root().join("b/BUILD")).unwrap()
        ),
    );
    assert_eq!(configured(&ws.forge(&opt)), 0);
    assert_eq!(configured(&ws.forge(&build)), 0);
    assert_eq!(all_output(&ws), "dbg 3\nv0 A\nv0 B\nv0 C\nv0 A\n");
}

#[test]
fn a_changed_attribute_analyses_its_target_and_stops_where_results_are_equal() {
    let ws = rules_workspace();
    let build = ["build", "//a", "//b", "//c:all"];
    assert_eq!(configured(&ws.forge(&build)), 6);
    // //a writes another text: its result (its action) differs, in both configurations,
    // so //b and //c:all (whose inputs hold //a's result digests) are analysed again.
    // //b's result is identical — its depset holds the same file — so //c is not.
    ws.write(
        "a/BUILD",
        &fs::read_to_string(ws.root().join("a/BUILD"))
            .unwrap()
            .replace("\"A\"", "\"A2\""),
    );
    assert_eq!(configured(&ws.forge(&build)), 4);
    assert_eq!(all_output(&ws), "dbg 3\nv0 A2\nv0 B\nv0 C\nv0 A2\n");
    // A new dependency changes //b's provider (its count and depset): //c and //c:all follow.
    ws.write(
        "b/BUILD",
        &fs::read_to_string(ws.root().join("b/BUILD"))
            .unwrap()
            .replace("deps = [\"//a\"]", "deps = [\"//a\", \"//f2\"]"),
    );
    ws.write(
        "f2/BUILD",
        "load(\"//defs:rules.bzl\", \"lib\")\nlib(name = \"f2\", text = \"F2\", visibility = [\"//visibility:public\"])\n",
    );
    assert_eq!(configured(&ws.forge(&build)), 4, "//f2, //b, //c, //c:all");
    assert_eq!(all_output(&ws), "dbg 4\nv0 A2\nv0 F2\nv0 B\nv0 C\nv0 A2\n");
    // A .bzl edit re-analyses the targets of the packages that load it.
    let rules = fs::read_to_string(ws.root().join("defs/rules.bzl")).unwrap();
    ws.write("defs/rules.bzl", &rules.replace("\"v0 \"", "\"v1 \""));
    let run = ws.forge(&build);
    assert_eq!(
        configured(&run),
        6,
        "every target: each package loads rules.bzl"
    );
    assert_eq!(all_output(&ws), "dbg 4\nv1 A2\nv1 F2\nv1 B\nv1 C\nv1 A2\n");
}

#[test]
fn a_provider_holding_a_function_is_analysed_each_time() {
    let ws = rules_workspace();
    assert_eq!(configured(&ws.forge(&["build", "//..."])), RULE_TARGETS);
    let out = || fs::read_to_string(ws.root().join("forge-bin/f/use.txt")).unwrap();
    assert_eq!(out(), "abab");
    for i in 0..2 {
        // Any edit that misses the plan (a new file in a package's directory, which the
        // package walk of //... lists): //f cannot be stored (a function), so it and
        // //f:use, which reads it, are analysed again; every other result comes from the
        // store.
        ws.write(&format!("a/new{i}.txt"), "");
        let run = ws.forge(&["build", "//..."]);
        assert_eq!(configured(&run), 2, "{}", run.stderr);
        assert_eq!(out(), "abab");
    }
    ws.write(
        "f/BUILD",
        &fs::read_to_string(ws.root().join("f/BUILD"))
            .unwrap()
            .replace("\"ab\"", "\"cd\""),
    );
    assert_eq!(configured(&ws.forge(&["build", "//..."])), 2);
    assert_eq!(out(), "cdcd");
}

#[test]
fn a_damaged_analysis_entry_is_analysed_again_and_stored_healthy() {
    let ws = rules_workspace();
    let build = ["build", "//a", "//b", "//c:all"];
    assert_eq!(configured(&ws.forge(&build)), 6);
    let store = store_dir(&ws, "analysis");
    // Six results, one file of entries (and the index, and the writers' lock).
    let [pack] = packs(&store).try_into().unwrap();
    assert_eq!(contents(&store).len(), 3, "{:?}", contents(&store).keys());
    // Damaged all along (every entry is longer than 40 bytes) and cut short.
    let mut bytes = fs::read(&pack).unwrap();
    for at in (20..bytes.len()).step_by(40) {
        bytes[at] ^= 0x20;
    }
    bytes.truncate(bytes.len() - 3);
    fs::write(&pack, bytes).unwrap();
    // A target added that the build does not ask for: the plan does not hold, the
    // requested targets' results are looked up.
    let extra = |i: usize| {
        format!(
            "{}filegroup(name = \"extra{i}\")\n",
            fs::read_to_string(ws.root().join("a/BUILD")).unwrap()
        )
    };
    ws.write("a/BUILD", &extra(1));
    assert_eq!(
        configured(&ws.forge(&build)),
        6,
        "every damaged entry is analysed again"
    );
    assert_eq!(all_output(&ws), "dbg 3\nv0 A\nv0 B\nv0 C\nv0 A\n");
    ws.write("a/BUILD", &extra(2));
    assert_eq!(configured(&ws.forge(&build)), 0, "and stored healthy");
}

#[test]
fn a_bzl_edit_analyses_again_only_the_targets_of_rules_it_may_define() {
    let ws = macro_workspace();
    // //a, //b, //c, //d: genrules (a built-in rule); //e: text_rule of //defs:rule.bzl.
    assert_eq!(configured(&ws.forge(&["build", "//..."])), 5);
    // A comment in the macro //a and //b load: both packages load again, but their genrules'
    // attributes and rule are unchanged.
    let base = fs::read_to_string(ws.root().join("defs/base.bzl")).unwrap();
    ws.write("defs/base.bzl", &format!("# a comment\n{base}"));
    let run = ws.forge(&["build", "//..."]);
    assert_eq!(packages_loaded(&run), 2);
    assert_eq!(configured(&run), 0, "{}", run.stderr);
    // A comment in the .bzl file defining //e's rule: its definition may have changed.
    let rule = fs::read_to_string(ws.root().join("defs/rule.bzl")).unwrap();
    ws.write("defs/rule.bzl", &format!("# a comment\n{rule}"));
    assert_eq!(configured(&ws.forge(&["build", "//..."])), 1);
    ws.write(
        "defs/rule.bzl",
        &rule.replace("ctx.attr.text)", "ctx.attr.text + \"!\")"),
    );
    assert_eq!(configured(&ws.forge(&["build", "//..."])), 1);
    assert_eq!(
        fs::read_to_string(ws.root().join("forge-bin/e/e.txt")).unwrap(),
        "custom!"
    );
}

/// The package-level cutoff: the plan is reused when the changed BUILD files' packages come
/// out the same (nothing is analysed, not even //f, whose result cannot be stored), and the
/// reads it notes make the next build a plain no-op.
#[test]
fn a_build_comment_edit_reuses_the_plan() {
    let ws = rules_workspace();
    assert_eq!(configured(&ws.forge(&["build", "//..."])), RULE_TARGETS);
    let use_txt = || fs::read_to_string(ws.root().join("forge-bin/f/use.txt")).unwrap();
    for (i, path) in ["a/BUILD", "f/BUILD", "c/BUILD"].iter().enumerate() {
        let before = fs::read_to_string(ws.root().join(path)).unwrap();
        // At the top: every target's line moves.
        ws.write(path, &format!("# comment {i}\n\n{before}"));
        let run = ws.forge(&["build", "//..."]);
        assert_eq!(packages_loaded(&run), 1, "{}", run.stderr);
        // Without the cutoff, //f and //f:use (a function in a provider) are analysed.
        assert_eq!(configured(&run), 0, "{}", run.stderr);
        assert!(
            run.stderr
                .contains("(1 package loaded, 0 targets configured)"),
            "{}",
            run.stderr
        );
        assert_eq!(all_output(&ws), "dbg 3\nv0 A\nv0 B\nv0 C\nv0 A\n");
        assert_eq!(use_txt(), "abab");
    }
    // Two comments and a changed attribute: the changed package's result differs, no cutoff.
    let a = fs::read_to_string(ws.root().join("a/BUILD")).unwrap();
    ws.write("a/BUILD", &format!("{a}# more\n"));
    let f = fs::read_to_string(ws.root().join("f/BUILD")).unwrap();
    ws.write(
        "f/BUILD",
        &format!("{}# more\n", f.replace("\"ab\"", "\"xy\"")),
    );
    let run = ws.forge(&["build", "//..."]);
    assert_eq!(packages_loaded(&run), 2, "{}", run.stderr);
    assert!(configured(&run) >= 1, "{}", run.stderr);
    assert_eq!(use_txt(), "xyxy");
    // After one more cut-off comment, the reused plan was stored with the new reads: with
    // the package store gone, the next build still loads nothing (a plan still noting the
    // old BUILD file would evaluate it again to tell).
    ws.write(
        "b/BUILD",
        &format!(
            "# b\n{}",
            fs::read_to_string(ws.root().join("b/BUILD")).unwrap()
        ),
    );
    assert_eq!(configured(&ws.forge(&["build", "//..."])), 0);
    fs::remove_dir_all(store_dir(&ws, "packages")).unwrap();
    let run = ws.forge(&["build", "//..."]);
    assert_eq!(packages_loaded(&run), 0, "{}", run.stderr);
    assert_eq!(configured(&run), 0);
}

#[test]
fn a_changed_command_is_not_cut_off() {
    let ws = macro_workspace();
    assert_eq!(configured(&ws.forge(&["build", "//..."])), 5);
    ws.write(
        "d/BUILD",
        "genrule(name = \"d\", outs = [\"d.out\"], cmd = \"echo changed > $@\")\n",
    );
    let run = ws.forge(&["build", "//..."]);
    assert_eq!(packages_loaded(&run), 1, "{}", run.stderr);
    assert_eq!(configured(&run), 1, "{}", run.stderr);
    assert_eq!(
        fs::read_to_string(ws.root().join("forge-bin/d/d.out")).unwrap(),
        "changed\n"
    );
}

#[test]
fn a_bzl_edit_that_changes_a_macros_output_is_not_cut_off() {
    let ws = macro_workspace();
    assert_eq!(configured(&ws.forge(&["build", "//..."])), 5);
    // The macro now makes another command, and also a second target.
    ws.write(
        "defs/base.bzl",
        "def base(name):\n    native.genrule(name = name, outs = [name + \".out\"], cmd = \"echo new > $@\")\n    native.genrule(name = name + \"_x\", outs = [name + \".x\"], cmd = \"echo x > $@\")\n",
    );
    let run = ws.forge(&["build", "//..."]);
    assert_eq!(packages_loaded(&run), 2, "{}", run.stderr);
    let out = |p: &str| fs::read_to_string(ws.root().join(format!("forge-bin/{p}"))).unwrap();
    assert_eq!(out("a/a.out"), "new\n");
    assert_eq!(out("b/b.out"), "new\n");
    assert_eq!(out("b/b.x"), "x\n");
    // A comment in a rule's .bzl file: the rule may have changed, the plan is not reused
    // (//e is analysed again; the rule's output is unchanged).
    let rule = fs::read_to_string(ws.root().join("defs/rule.bzl")).unwrap();
    ws.write("defs/rule.bzl", &format!("{rule}# a comment\n"));
    assert_eq!(configured(&ws.forge(&["build", "//..."])), 1);
    assert_eq!(out("e/e.txt"), "custom");
}

/// `//g:g` lists the .txt files a glob finds; `//g:lines` counts the lines of the BUILD file
/// itself, a source file as any other.
fn glob_workspace() -> Workspace {
    let ws = Workspace::empty();
    ws.write("WORKSPACE", "workspace(name = \"w\")\n");
    ws.write("g/one.txt", "1\n");
    ws.write(
        "g/BUILD",
        "genrule(name = \"g\", srcs = glob([\"*.txt\"]), outs = [\"list\"], cmd = \"cat $(SRCS) > $@\")\n\
         genrule(name = \"lines\", srcs = [\"BUILD\"], outs = [\"lines.txt\"], cmd = \"wc -l < $< | tr -d ' ' > $@\")\n",
    );
    ws
}

#[test]
fn a_glob_listing_change_is_not_cut_off() {
    let ws = glob_workspace();
    let out = |p: &str| fs::read_to_string(ws.root().join(format!("forge-bin/{p}"))).unwrap();
    assert_eq!(configured(&ws.forge(&["build", "//..."])), 2);
    assert_eq!(out("g/list"), "1\n");
    // A new file the glob matches, with a comment in the BUILD file: the listing changed.
    ws.write("g/two.txt", "2\n");
    let build = fs::read_to_string(ws.root().join("g/BUILD")).unwrap();
    ws.write("g/BUILD", &format!("{build}# one\n"));
    let run = ws.forge(&["build", "//..."]);
    assert_eq!(packages_loaded(&run), 1, "{}", run.stderr);
    assert_eq!(configured(&run), 1, "{}", run.stderr);
    assert_eq!(out("g/list"), "1\n2\n");
    assert_eq!(out("g/lines.txt"), "3\n");
    // A file the glob does not match: the package comes out the same, but a listing changed
    // (a new package could have appeared there), so the plan is made again, from the stores.
    ws.write("g/three.dat", "3\n");
    let run = ws.forge(&["build", "//..."]);
    assert_eq!(configured(&run), 0, "{}", run.stderr);
    assert_eq!(out("g/list"), "1\n2\n");
}

#[test]
fn a_build_file_read_as_a_source_is_read_again_after_a_comment() {
    let ws = glob_workspace();
    let out = |p: &str| fs::read_to_string(ws.root().join(format!("forge-bin/{p}"))).unwrap();
    assert_eq!(configured(&ws.forge(&["build", "//..."])), 2);
    assert_eq!(out("g/lines.txt"), "2\n");
    let build = fs::read_to_string(ws.root().join("g/BUILD")).unwrap();
    ws.write("g/BUILD", &format!("{build}# one\n# two\n"));
    let run = ws.forge(&["build", "//..."]);
    assert!(
        run.stderr
            .contains("(1 package loaded, 0 targets configured)"),
        "{}",
        run.stderr
    );
    assert_eq!(out("g/lines.txt"), "4\n");
}

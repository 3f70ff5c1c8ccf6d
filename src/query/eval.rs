//! An `Expr` and a `QueryEnv` in, the set of labels it denotes and the errors met out.
//!
//! Errors never abort silently: each one is recorded. Without `keep_going` the first error
//! ends evaluation with an empty result; with it, the failing part counts as the empty set and
//! evaluation goes on, as Bazel's `--keep_going` does. Every graph walk keeps a visited set,
//! so cycles terminate.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use regex::Regex;

use super::parser::{Expr, SetOp};
use super::{QueryEnv, kind_of};
use crate::core::{Diagnostic, Label};
use crate::loading::{AttrValue, RuleTarget, Target};

type Labels = BTreeSet<Label>;

/// What a query evaluated to. `labels` is sorted, which is also the order output uses.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Evaluation {
    pub labels: Labels,
    pub errors: Vec<Diagnostic>,
}

/// Evaluates `expr`. Errors the env records itself (in `load_closure`) are not repeated here.
pub fn evaluate(expr: &Expr, env: &mut dyn QueryEnv, keep_going: bool) -> Evaluation {
    evaluate_in(expr, env, keep_going, &[])
}

/// `evaluate` with `--universe_scope`: the target patterns whose transitive closure is the
/// universe of `allrdeps` and `rbuildfiles` (empty: `//...`).
pub fn evaluate_in(
    expr: &Expr,
    env: &mut dyn QueryEnv,
    keep_going: bool,
    universe_scope: &[String],
) -> Evaluation {
    let mut evaluator = Evaluator {
        env,
        keep_going,
        errors: Vec::new(),
        vars: Vec::new(),
        universe_scope: match universe_scope.is_empty() {
            true => vec!["//...".to_owned()],
            false => universe_scope.to_vec(),
        },
    };
    let labels = evaluator.eval(expr).unwrap_or_default();
    Evaluation {
        labels,
        errors: evaluator.errors,
    }
}

/// A package's BUILD file (as opposed to a .bzl file it loads).
fn is_build_file(file: &Label) -> bool {
    matches!(file.name.as_str(), "BUILD" | "BUILD.bazel")
}

/// The path of a source file from its repository's root: `tools/defs.bzl`.
fn workspace_path(file: &Label) -> String {
    match file.package.is_empty() {
        true => file.name.clone(),
        false => format!("{}/{}", file.package, file.name),
    }
}

/// Evaluation was abandoned after an error (only without `keep_going`).
struct Stop;

struct Evaluator<'e> {
    env: &'e mut dyn QueryEnv,
    keep_going: bool,
    errors: Vec<Diagnostic>,
    /// Values bound by the enclosing `let`s, innermost last.
    vars: Vec<(String, Labels)>,
    /// The patterns whose closure is the universe (`--universe_scope`, else `//...`).
    universe_scope: Vec<String>,
}

impl Evaluator<'_> {
    /// Records an error; stops evaluation unless `keep_going`.
    fn report(&mut self, error: Diagnostic) -> Result<(), Stop> {
        self.errors.push(error);
        if self.keep_going { Ok(()) } else { Err(Stop) }
    }

    fn eval(&mut self, expr: &Expr) -> Result<Labels, Stop> {
        Ok(match expr {
            Expr::Pattern(word) => self.pattern(word)?,
            Expr::Var(name) => match self.vars.iter().rev().find(|(bound, _)| bound == name) {
                Some((_, value)) => value.clone(),
                None => {
                    self.report(Diagnostic::new(format!("undefined variable '${name}'")))?;
                    Labels::new()
                }
            },
            Expr::Let { name, value, body } => {
                let value = self.eval(value)?;
                self.vars.push((name.clone(), value));
                let result = self.eval(body);
                self.vars.pop();
                result?
            }
            Expr::Set(words) => {
                let mut all = Labels::new();
                for word in words {
                    all.extend(self.pattern(word)?);
                }
                all
            }
            Expr::Binary { op, left, right } => {
                let mut left = self.eval(left)?;
                let right = self.eval(right)?;
                match op {
                    SetOp::Union => left.extend(right),
                    SetOp::Except => left.retain(|l| !right.contains(l)),
                    SetOp::Intersect => left.retain(|l| right.contains(l)),
                }
                left
            }
            Expr::Deps { of, depth } => {
                let roots = self.eval(of)?;
                let closure = self.env.load_closure(&roots);
                match depth {
                    // The env's closure is exactly the unbounded answer; don't walk it twice.
                    None => closure,
                    Some(_) => forward(&*self.env, &roots, *depth),
                }
            }
            Expr::Rdeps {
                universe,
                of,
                depth,
            } => {
                let universe = self.eval(universe)?;
                let targets = self.eval(of)?;
                self.env.load_closure(&universe);
                let universe = forward(&*self.env, &universe, None);
                reverse(&*self.env, &universe, &targets, *depth)
            }
            Expr::AllRdeps { of, depth } => {
                let targets = self.eval(of)?;
                // The universe is everything the workspace builds, plus the targets themselves
                // so that they (and cycles through them) count even outside `//...`.
                let mut roots = self.universe()?;
                roots.extend(targets.iter().cloned());
                self.env.load_closure(&roots);
                let universe = forward(&*self.env, &roots, None);
                reverse(&*self.env, &universe, &targets, *depth)
            }
            Expr::SomePath { from, to } => {
                let from = self.eval(from)?;
                let to = self.eval(to)?;
                self.env.load_closure(&from);
                some_path(&*self.env, &from, &to)
            }
            Expr::AllPaths { from, to } => {
                let from = self.eval(from)?;
                let to = self.eval(to)?;
                self.env.load_closure(&from);
                let reachable = forward(&*self.env, &from, None);
                reverse(&*self.env, &reachable, &to, None)
            }
            Expr::Kind { pattern, of } => {
                let Some(regex) = self.regex("kind", pattern)? else {
                    return Ok(Labels::new());
                };
                let mut of = self.eval(of)?;
                of.retain(|l| regex.is_match(&kind_of(&*self.env, l)));
                of
            }
            Expr::Filter { pattern, of } => {
                let Some(regex) = self.regex("filter", pattern)? else {
                    return Ok(Labels::new());
                };
                let mut of = self.eval(of)?;
                of.retain(|l| regex.is_match(&l.to_string()));
                of
            }
            Expr::Attr { name, pattern, of } => {
                let Some(regex) = self.regex("attr", pattern)? else {
                    return Ok(Labels::new());
                };
                let mut of = self.eval(of)?;
                of.retain(|l| {
                    let value = self.rule(l).and_then(|r| r.attrs.get(name));
                    value
                        .and_then(attr_text)
                        .is_some_and(|text| regex.is_match(&text))
                });
                of
            }
            Expr::Labels { attr, of } => {
                let of = self.eval(of)?;
                let named: Labels = of
                    .iter()
                    .filter_map(|l| self.rule(l).and_then(|r| r.attrs.get(attr)))
                    .flat_map(attr_labels)
                    .cloned()
                    .collect();
                let mut loaded = Labels::new();
                for label in named {
                    if self.ensure_loaded(&label)? {
                        loaded.insert(label);
                    }
                }
                loaded
            }
            Expr::Tests(of) => {
                let of = self.eval(of)?;
                self.tests(&of)?
            }
            Expr::BuildFiles(of) => {
                let of = self.eval(of)?;
                of.iter().flat_map(|l| self.env.build_files(l)).collect()
            }
            Expr::LoadFiles(of) => {
                let of = self.eval(of)?;
                of.iter()
                    .flat_map(|l| self.env.build_files(l))
                    .filter(|file| !is_build_file(file))
                    .collect()
            }
            Expr::RBuildFiles(paths) => {
                let wanted: BTreeSet<&str> = paths.iter().map(String::as_str).collect();
                let roots = self.universe()?;
                let universe = self.env.load_closure(&roots);
                let mut packages = BTreeSet::new();
                let mut found = Labels::new();
                for label in &universe {
                    if !packages.insert(label.package_id()) {
                        continue;
                    }
                    let files = self.env.build_files(label);
                    let reads_one = files
                        .iter()
                        .any(|f| wanted.contains(workspace_path(f).as_str()));
                    if reads_one && let Some(build) = files.into_iter().find(is_build_file) {
                        found.insert(build);
                    }
                }
                found
            }
            Expr::Siblings(of) => {
                let of = self.eval(of)?;
                let packages: BTreeSet<_> = of.iter().map(Label::package_id).collect();
                let mut all = Labels::new();
                for package in packages {
                    all.extend(self.pattern(&format!("{package}:*"))?);
                }
                all
            }
            Expr::Visible { predicate, of } => {
                let predicate = self.eval(predicate)?;
                let mut of = self.eval(of)?;
                of.retain(|target| predicate.iter().all(|from| self.env.visible(target, from)));
                of
            }
            Expr::SamePkgDirectRdeps(of) => {
                let of = self.eval(of)?;
                let packages: BTreeSet<_> = of.iter().map(Label::package_id).collect();
                let mut found = Labels::new();
                for package in packages {
                    for sibling in self.pattern(&format!("{package}:*"))? {
                        let depends = self
                            .env
                            .deps(&sibling)
                            .iter()
                            .any(|(_, dep)| of.contains(dep));
                        if depends {
                            found.insert(sibling);
                        }
                    }
                }
                found
            }
        })
    }

    /// The targets the universe scope's patterns name (not yet their closure).
    fn universe(&mut self) -> Result<Labels, Stop> {
        let mut roots = Labels::new();
        for pattern in self.universe_scope.clone() {
            roots.extend(self.pattern(&pattern)?);
        }
        Ok(roots)
    }

    fn pattern(&mut self, word: &str) -> Result<Labels, Stop> {
        match self.env.expand_pattern(word) {
            Ok(labels) => Ok(labels),
            Err(error) => {
                self.report(error)?;
                Ok(Labels::new())
            }
        }
    }

    /// The compiled regex, or `None` after reporting why it is malformed.
    fn regex(&mut self, function: &str, pattern: &str) -> Result<Option<Regex>, Stop> {
        match Regex::new(pattern) {
            Ok(regex) => Ok(Some(regex)),
            Err(error) => {
                self.report(Diagnostic::new(format!(
                    "invalid regular expression '{pattern}' in {function}(): {error}"
                )))?;
                Ok(None)
            }
        }
    }

    fn rule(&self, label: &Label) -> Option<&RuleTarget> {
        self.env.target(label).and_then(Target::rule)
    }

    /// Makes sure a label met in an attribute names a loaded target, loading its package if
    /// needed. `false` (after reporting) when it names nothing.
    fn ensure_loaded(&mut self, label: &Label) -> Result<bool, Stop> {
        if self.env.target(label).is_some() {
            return Ok(true);
        }
        if let Err(error) = self.env.expand_pattern(&label.to_string()) {
            self.report(error)?;
        }
        Ok(self.env.target(label).is_some())
    }

    /// `tests(x)`: the test rules in `x`, with test suites replaced by the tests they stand for.
    fn tests(&mut self, of: &Labels) -> Result<Labels, Stop> {
        let mut found = Labels::new();
        let mut expanded = Labels::new();
        for label in of {
            match self.rule(label) {
                Some(rule) if rule.is_test => {
                    found.insert(label.clone());
                }
                Some(rule) if rule.class == "test_suite" => {
                    self.expand_suite(label, &mut expanded, &mut found)?;
                }
                _ => {}
            }
        }
        Ok(found)
    }

    /// Adds the tests of one suite to `found`. `expanded` holds the suites already done, so
    /// suites that list each other terminate.
    fn expand_suite(
        &mut self,
        suite: &Label,
        expanded: &mut Labels,
        found: &mut Labels,
    ) -> Result<(), Stop> {
        if !expanded.insert(suite.clone()) {
            return Ok(());
        }
        let Some(rule) = self.rule(suite) else {
            return Ok(());
        };
        let filter = TagFilter::of_suite(string_list(rule, "tags"));
        let listed = match rule.attrs.get("tests") {
            Some(AttrValue::LabelList(tests)) => tests.clone(),
            _ => Vec::new(),
        };

        if listed.is_empty() {
            // An empty suite means every test of its package, except manual ones.
            let members = self.pattern(&format!("{}:all", suite.package_id()))?;
            for member in members {
                let wanted = self.rule(&member).is_some_and(|test| {
                    test.is_test
                        && !string_list(test, "tags").iter().any(|t| t == "manual")
                        && filter.accepts(test)
                });
                if wanted {
                    found.insert(member);
                }
            }
            return Ok(());
        }

        for member in listed {
            if !self.ensure_loaded(&member)? {
                continue;
            }
            match self.rule(&member) {
                Some(test) if test.is_test => {
                    if filter.accepts(test) {
                        found.insert(member);
                    }
                }
                Some(nested) if nested.class == "test_suite" => {
                    self.expand_suite(&member, expanded, found)?;
                }
                _ => self.report(Diagnostic::new(format!(
                    "test_suite '{suite}' lists '{member}', which is neither a test nor a test_suite"
                )))?,
            }
        }
        Ok(())
    }
}

/// A test suite's `tags` as a filter: a test must carry every positive tag and none of the
/// `-negative` ones; its `size` counts as a tag. `manual` only keeps the suite itself out of
/// wildcards, so it filters nothing.
struct TagFilter {
    required: Vec<String>,
    excluded: Vec<String>,
}

impl TagFilter {
    fn of_suite(tags: &[String]) -> Self {
        let mut filter = TagFilter {
            required: Vec::new(),
            excluded: Vec::new(),
        };
        for tag in tags {
            if let Some(negative) = tag.strip_prefix('-') {
                filter.excluded.push(negative.to_owned());
            } else {
                let positive = tag.strip_prefix('+').unwrap_or(tag);
                if positive != "manual" {
                    filter.required.push(positive.to_owned());
                }
            }
        }
        filter
    }

    fn accepts(&self, test: &RuleTarget) -> bool {
        let mut tags: Vec<&str> = string_list(test, "tags")
            .iter()
            .map(String::as_str)
            .collect();
        if let Some(AttrValue::String(size)) = test.attrs.get("size") {
            tags.push(size);
        }
        self.required.iter().all(|t| tags.contains(&t.as_str()))
            && !self.excluded.iter().any(|t| tags.contains(&t.as_str()))
    }
}

fn string_list<'r>(rule: &'r RuleTarget, attr: &str) -> &'r [String] {
    match rule.attrs.get(attr) {
        Some(AttrValue::StringList(items)) => items,
        _ => &[],
    }
}

/// Every label an attribute value names, outputs included (for `labels()`).
fn attr_labels(value: &AttrValue) -> Vec<&Label> {
    match value {
        AttrValue::Output(label) => vec![label],
        AttrValue::OutputList(labels) => labels.iter().collect(),
        _ => value.dep_labels(),
    }
}

/// The text Bazel's `attr()` matches a value against: strings bare, labels canonical, lists
/// as `[a, b]` (Java's `List.toString`), dicts as `{k=v}`, booleans as `1`/`0` (Bazel's
/// historical integer form, so `attr(testonly, 1, ...)` works). `None` matches nothing.
fn attr_text(value: &AttrValue) -> Option<String> {
    fn join<T: ToString>(items: impl IntoIterator<Item = T>) -> String {
        items
            .into_iter()
            .map(|item| item.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
    Some(match value {
        AttrValue::None => return None,
        AttrValue::Bool(b) => (if *b { "1" } else { "0" }).to_owned(),
        AttrValue::Int(i) => i.to_string(),
        AttrValue::String(s) => s.clone(),
        AttrValue::StringList(items) => format!("[{}]", join(items)),
        AttrValue::StringDict(entries) => {
            format!(
                "{{{}}}",
                join(entries.iter().map(|(k, v)| format!("{k}={v}")))
            )
        }
        AttrValue::Label(label) | AttrValue::Output(label) => label.to_string(),
        AttrValue::LabelList(labels) | AttrValue::OutputList(labels) => {
            format!("[{}]", join(labels))
        }
        AttrValue::LabelKeyedStringDict(entries) => {
            format!(
                "{{{}}}",
                join(entries.iter().map(|(k, v)| format!("{k}={v}")))
            )
        }
        AttrValue::Select(s) => s.display(),
    })
}

/// Everything reachable from `starts` in at most `depth` steps (unbounded when `None`),
/// `starts` included. Breadth-first, so a node's level is its shortest distance.
fn reach(
    starts: Labels,
    depth: Option<u32>,
    mut successors: impl FnMut(&Label) -> Vec<Label>,
) -> Labels {
    let mut seen = starts.clone();
    let mut frontier: Vec<Label> = starts.into_iter().collect();
    let mut level = 0;
    while !frontier.is_empty() && depth.is_none_or(|d| level < d) {
        let mut next = Vec::new();
        for node in &frontier {
            for successor in successors(node) {
                if seen.insert(successor.clone()) {
                    next.push(successor);
                }
            }
        }
        frontier = next;
        level += 1;
    }
    seen
}

/// `deps`: what `roots` depend on, transitively or within `depth`.
fn forward(env: &dyn QueryEnv, roots: &Labels, depth: Option<u32>) -> Labels {
    reach(roots.clone(), depth, |node| {
        env.deps(node).into_iter().map(|(_, dep)| dep).collect()
    })
}

/// `rdeps`: the members of `universe` that depend on `targets` (those in it included),
/// transitively or within `depth`, following edges inside `universe` only.
fn reverse(env: &dyn QueryEnv, universe: &Labels, targets: &Labels, depth: Option<u32>) -> Labels {
    let mut dependents: BTreeMap<Label, Vec<Label>> = BTreeMap::new();
    for node in universe {
        for (_, dep) in env.deps(node) {
            if universe.contains(&dep) {
                dependents.entry(dep).or_default().push(node.clone());
            }
        }
    }
    let starts = targets.intersection(universe).cloned().collect();
    reach(starts, depth, |node| {
        dependents.get(node).cloned().unwrap_or_default()
    })
}

/// `somepath`: the nodes of one shortest path from some `from` to some `to`, or nothing.
fn some_path(env: &dyn QueryEnv, from: &Labels, to: &Labels) -> Labels {
    if let Some(both) = from.intersection(to).next() {
        return Labels::from([both.clone()]);
    }
    let mut parent: BTreeMap<Label, Label> = BTreeMap::new();
    let mut seen = from.clone();
    let mut queue: VecDeque<Label> = from.iter().cloned().collect();
    while let Some(node) = queue.pop_front() {
        for (_, dep) in env.deps(&node) {
            if !seen.insert(dep.clone()) {
                continue;
            }
            parent.insert(dep.clone(), node.clone());
            if to.contains(&dep) {
                let mut path = Labels::from([dep.clone()]);
                let mut step = &dep;
                while let Some(previous) = parent.get(step) {
                    path.insert(previous.clone());
                    step = previous;
                }
                return path;
            }
            queue.push_back(dep);
        }
    }
    Labels::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::fake::{FakeEnv, labels};
    use crate::query::parse;

    fn run(query: &str) -> Evaluation {
        let mut env = FakeEnv::new();
        run_in(&mut env, query, false)
    }

    fn run_in(env: &mut FakeEnv, query: &str, keep_going: bool) -> Evaluation {
        let expr = parse(query).unwrap_or_else(|e| panic!("{query}: {e}"));
        evaluate(&expr, env, keep_going)
    }

    /// The result of an error-free query, as label strings.
    fn query(text: &str) -> Vec<String> {
        let result = run(text);
        assert!(result.errors.is_empty(), "{text}: {:?}", result.errors);
        result.labels.iter().map(Label::to_string).collect()
    }

    fn errors(result: &Evaluation) -> Vec<&str> {
        result.errors.iter().map(|e| e.message.as_str()).collect()
    }

    #[test]
    fn patterns_and_set_operations() {
        assert_eq!(query("//b:all"), ["//b:gen", "//b:util"]);
        assert_eq!(
            query("//b:*"),
            ["//b:gen", "//b:gen.txt", "//b:in.txt", "//b:util"]
        );
        assert_eq!(query("//b:all + //c:x"), ["//b:gen", "//b:util", "//c:x"]);
        assert_eq!(query("//b:* - //b:all"), ["//b:gen.txt", "//b:in.txt"]);
        assert_eq!(query("//b:* ^ //b:all intersect //b:util"), ["//b:util"]);
        assert_eq!(query("set(//c:x //c:y)"), ["//c:x", "//c:y"]);
        assert_eq!(
            query("let v = //c:all in $v - //c:x"),
            ["//c:c_test", "//c:loop_suite", "//c:suite", "//c:y"]
        );
    }

    #[test]
    fn deps_is_the_transitive_closure_and_depth_bounds_it() {
        assert_eq!(
            query("deps(//a:bin)"),
            [
                "//a:bin",
                "//a:lib",
                "//a:lib.cc",
                "//a:main.sh",
                "//b:gen",
                "//b:gen.txt",
                "//b:in.txt",
                "//b:util"
            ]
        );
        assert_eq!(query("deps(//a:bin, 0)"), ["//a:bin"]);
        assert_eq!(
            query("deps(//a:bin, 1)"),
            ["//a:bin", "//a:lib", "//a:main.sh"]
        );
        assert_eq!(
            query("deps(//a:bin, 2)"),
            [
                "//a:bin",
                "//a:lib",
                "//a:lib.cc",
                "//a:main.sh",
                "//b:util"
            ]
        );
    }

    #[test]
    fn deps_terminates_on_cycles() {
        assert_eq!(
            query("deps(//c:x)"),
            [
                "//b:gen",
                "//b:gen.txt",
                "//b:in.txt",
                "//b:util",
                "//c:x",
                "//c:y"
            ]
        );
        assert_eq!(query("deps(//c:x, 1)"), ["//c:x", "//c:y"]);
    }

    #[test]
    fn rdeps_stays_inside_the_universe() {
        assert_eq!(
            query("rdeps(//a:all, //b:util)"),
            ["//a:bin", "//a:lib", "//a:lib_test", "//b:util"]
        );
        assert_eq!(
            query("rdeps(//a:all, //b:util, 1)"),
            ["//a:lib", "//b:util"]
        );
        assert_eq!(query("rdeps(//a:all, //b:util, 0)"), ["//b:util"]);
        // //c:y depends on //b:util, but is not in the closure of //a:all.
        assert!(!query("rdeps(//a:all, //b:util)").contains(&"//c:y".to_owned()));
        // Targets outside the universe are not included.
        assert_eq!(query("rdeps(//a:main.sh, //b:util)"), Vec::<String>::new());
        // Cycles terminate.
        assert_eq!(
            query("rdeps(//c:all, //c:x)"),
            [
                "//c:c_test",
                "//c:loop_suite",
                "//c:suite",
                "//c:x",
                "//c:y"
            ]
        );
    }

    #[test]
    fn allrdeps_uses_the_whole_workspace() {
        assert_eq!(
            query("allrdeps(//b:util)"),
            [
                "//a:bin",
                "//a:lib",
                "//a:lib_test",
                "//b:util",
                "//c:c_test",
                "//c:loop_suite",
                "//c:suite",
                "//c:x",
                "//c:y",
                "//d:bad_suite"
            ]
        );
        assert_eq!(query("allrdeps(//b:in.txt, 1)"), ["//b:gen", "//b:in.txt"]);
    }

    #[test]
    fn somepath_finds_one_path_and_allpaths_all_nodes_on_paths() {
        assert_eq!(
            query("somepath(//a:bin, //b:in.txt)"),
            [
                "//a:bin",
                "//a:lib",
                "//b:gen",
                "//b:gen.txt",
                "//b:in.txt",
                "//b:util"
            ]
        );
        assert_eq!(query("somepath(//a:bin, //c:x)"), Vec::<String>::new());
        assert_eq!(query("somepath(//a:bin, //a:bin + //a:lib)"), ["//a:bin"]);
        assert_eq!(
            query("somepath(//c:c_test, //b:util)"),
            ["//b:util", "//c:c_test", "//c:x", "//c:y"]
        );
        assert_eq!(
            query("allpaths(//c:c_test, //b:util)"),
            ["//b:util", "//c:c_test", "//c:x", "//c:y"]
        );
        assert_eq!(
            query("allpaths(//a:all, //a:lib)"),
            ["//a:bin", "//a:lib", "//a:lib_test"]
        );
        assert_eq!(query("allpaths(//b:util, //a:lib)"), Vec::<String>::new());
    }

    #[test]
    fn kind_filter_and_attr() {
        assert_eq!(query("kind('source file', //b:*)"), ["//b:in.txt"]);
        assert_eq!(query("kind(generated, //b:*)"), ["//b:gen.txt"]);
        assert_eq!(
            query("kind('_test rule', //...)"),
            [
                "//a:lib_test",
                "//a:manual_test",
                "//a:slow_test",
                "//c:c_test"
            ]
        );
        assert_eq!(
            query("filter('\\.txt$', //b:*)"),
            ["//b:gen.txt", "//b:in.txt"]
        );
        assert_eq!(query("filter(//c, //...)").len(), 5);
        // Lists match as [a, b]; strings bare; labels canonical; booleans as 0/1.
        assert_eq!(query("attr(tags, '\\[core, fast\\]', //...)"), ["//a:lib"]);
        assert_eq!(
            query("attr(tags, '^\\[\\]$', //...)"),
            ["//a:all_tests", "//a:slow_test"]
        );
        assert_eq!(
            query("attr(size, '^small$', //...)"),
            ["//a:lib_test", "//a:manual_test"]
        );
        assert_eq!(query("attr(deps, '//b:util', //...)"), ["//a:lib", "//c:y"]);
        assert_eq!(query("attr(testonly, 0, //...)"), ["//a:bin"]);
        assert_eq!(query("attr(stamp, -1, //...)"), ["//a:bin"]);
        assert_eq!(query("attr(defines, '\\{K=V\\}', //...)"), ["//a:lib"]);
        assert_eq!(query("attr(outs, gen.txt, //...)"), ["//b:gen"]);
        // An attribute set to None matches nothing, not even an empty pattern.
        assert_eq!(query("attr(toolchain, '', //...)"), Vec::<String>::new());
    }

    #[test]
    fn labels_reads_attributes_including_outputs() {
        assert_eq!(
            query("labels(srcs, //a:bin + //a:lib)"),
            ["//a:lib.cc", "//a:main.sh"]
        );
        assert_eq!(query("labels(outs, //b:all)"), ["//b:gen.txt"]);
        assert_eq!(query("labels(nonexistent, //b:all)"), Vec::<String>::new());
    }

    #[test]
    fn tests_expands_suites() {
        assert_eq!(query("tests(//a:lib_test + //a:lib)"), ["//a:lib_test"]);
        // An empty suite is every non-manual test of its package...
        assert_eq!(
            query("tests(//a:all_tests)"),
            ["//a:lib_test", "//a:slow_test"]
        );
        // ... filtered by the suite's tags, size counting as a tag.
        assert_eq!(query("tests(//a:not_large)"), ["//a:lib_test"]);
        // Suites listing each other terminate.
        assert_eq!(query("tests(//c:suite)"), ["//a:lib_test", "//c:c_test"]);
        assert_eq!(
            query("tests(//a:* + //c:*)"),
            [
                "//a:lib_test",
                "//a:manual_test",
                "//a:slow_test",
                "//c:c_test"
            ]
        );
    }

    #[test]
    fn a_suite_listing_a_non_test_is_an_error() {
        let mut env = FakeEnv::new();
        let result = run_in(&mut env, "tests(//d:bad_suite)", true);
        assert_eq!(
            errors(&result),
            [
                "test_suite '//d:bad_suite' lists '//a:bin', which is neither a test nor a test_suite"
            ]
        );
        assert_eq!(result.labels, labels(&["//a:lib_test"]));
    }

    #[test]
    fn buildfiles_lists_build_and_bzl_files() {
        assert_eq!(
            query("buildfiles(//a:bin + //b:gen)"),
            ["//a:BUILD", "//b:BUILD", "//tools:defs.bzl"]
        );
        assert_eq!(
            query("kind('source file', buildfiles(//a:bin))"),
            ["//a:BUILD"]
        );
    }

    #[test]
    fn errors_stop_evaluation_unless_keep_going() {
        let mut env = FakeEnv::new();
        let result = run_in(&mut env, "//a:bin + //nope:x + //c:x", false);
        assert_eq!(errors(&result), ["no targets match '//nope:x'"]);
        assert!(result.labels.is_empty());
        // Evaluation stopped at the first error: //c:x was never expanded.
        assert_eq!(env.expanded, ["//a:bin", "//nope:x"]);

        let mut env = FakeEnv::new();
        let result = run_in(&mut env, "//a:bin + //nope:x + //c:x", true);
        assert_eq!(errors(&result), ["no targets match '//nope:x'"]);
        assert_eq!(result.labels, labels(&["//a:bin", "//c:x"]));
    }

    #[test]
    fn bad_regexes_are_reported_without_evaluating_the_argument() {
        let mut env = FakeEnv::new();
        let result = run_in(&mut env, "kind('[', //...) + //c:x", true);
        assert_eq!(result.errors.len(), 1);
        let message = &result.errors[0].message;
        assert!(
            message.starts_with("invalid regular expression '[' in kind(): regex parse error:"),
            "{message}"
        );
        assert!(message.contains("unclosed character class"), "{message}");
        assert_eq!(result.labels, labels(&["//c:x"]));
        assert_eq!(env.expanded, ["//c:x"]);

        for query in ["filter('(', //c:x)", "attr(deps, '*', //c:x)"] {
            let result = run(query);
            assert_eq!(result.errors.len(), 1, "{query}");
            assert!(result.labels.is_empty());
        }
    }

    #[test]
    fn missing_dependencies_are_the_envs_to_report() {
        let mut env = FakeEnv::new();
        if let Some(crate::loading::TargetKind::Rule(rule)) = env
            .targets
            .get_mut(&crate::query::fake::label("//c:x"))
            .map(|t| &mut t.kind)
        {
            rule.attrs.insert(
                "deps",
                crate::query::fake::label_list(&["//c:y", "//c:gone"]),
            );
        }
        let result = run_in(&mut env, "deps(//c:x, 1)", false);
        assert!(result.errors.is_empty());
        assert_eq!(result.labels, labels(&["//c:x", "//c:y"]));
        assert_eq!(env.load_errors.len(), 1);
    }

    #[test]
    fn unbound_variables_in_hand_built_expressions_are_errors() {
        let mut env = FakeEnv::new();
        let result = evaluate(&Expr::Var("v".into()), &mut env, true);
        assert_eq!(errors(&result), ["undefined variable '$v'"]);
    }

    #[test]
    fn attr_text_follows_bazel() {
        use crate::query::fake::{label, label_list, strings};
        assert_eq!(
            attr_text(&strings(&["a", "b c"])).as_deref(),
            Some("[a, b c]")
        );
        assert_eq!(
            attr_text(&label_list(&["//x:y", "//z"])).as_deref(),
            Some("[//x:y, //z:z]")
        );
        assert_eq!(attr_text(&AttrValue::Bool(true)).as_deref(), Some("1"));
        assert_eq!(
            attr_text(&AttrValue::LabelKeyedStringDict(vec![(
                label("//x:y"),
                "v".into()
            )]))
            .as_deref(),
            Some("{//x:y=v}")
        );
        assert_eq!(attr_text(&AttrValue::None), None);
    }
}

//! Planning a build: target patterns, the workspace and `--define`s in; a `BuildPlan` (the
//! actions, the wanted outputs, the runfiles trees, the tests) and the problems found out.
//! An earlier identical command's plan is reused from the plan cache when nothing loading
//! read has changed; `identity` says what "identical" means.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use super::plan_cutoff::{self, Cutoff, PackageResults};
use super::plural;
use crate::analysis::plan::{BuildPlan, PlanCache, PlannedTarget};
use crate::analysis::{self, AnalysisConfig};
use crate::core::{Diagnostic, ExecPath, Failure, Label, PackageId, layout};
use crate::graph::{TargetGraph, TargetPatternArg};
use crate::loading::{Loader, PackageStore};
use crate::workspace::{Workspace, fs_deps};

/// What a build is asked to plan.
pub struct PlanRequest<'a> {
    pub patterns: &'a [String],
    /// The package of the directory the command runs in: relative patterns are read there.
    pub cwd_package: &'a PackageId,
    pub defines: BTreeMap<String, String>,
    /// `--stamp`.
    pub stamp: bool,
    /// Build settings as given: `--//pkg:flag=value`, `--no//pkg:flag`.
    pub build_settings: &'a [String],
    pub keep_going: bool,
    /// `forge test`: test suites are expanded and the tests are planned too.
    pub for_tests: bool,
    pub fetch: &'a crate::fetch::FetchOptions,
    /// `--output_groups`: which of the targets' outputs to build and report.
    pub output_groups: &'a [String],
    /// `-c` and `--cpu`: the top-level configuration.
    pub configuration: &'a layout::OutputConfiguration,
    /// `--platforms`, `--host_platform`, `--extra_toolchains`.
    pub platforms: &'a super::platforms::PlatformFlags,
    /// `--copt`, `--linkopt`, `--features`, ...
    pub cpp: &'a analysis::cpp_fragment::CppOptions,
    /// `--aspects`: aspect ids (`<bzl label>%<name>`) applied to the requested targets.
    pub aspects: &'a [String],
    /// The remote cache, whose build entry may hold the plan for a fresh output base.
    pub remote: Option<&'a Arc<crate::remote::RemoteCache>>,
}

/// A plan and how it came to be.
pub struct Planned {
    pub plan: BuildPlan,
    /// True when the plan came from the plan cache: nothing was analysed, and at most the
    /// packages whose BUILD files changed were loaded to show it still holds.
    pub reused: bool,
    /// Of a reused plan: how many packages were evaluated to show it still holds.
    pub packages_reloaded: usize,
    /// Problems found (only with `--keep_going`; otherwise they end planning).
    pub errors: Vec<Diagnostic>,
    /// When loading and analysis ran (none when the plan was reused), for `--profile`.
    pub phases: Vec<Phase>,
    /// The plan store key this command computed and stored the plan under (not reused):
    /// what a successful build files in the remote cache's build entry.
    pub stored_key: Option<crate::core::Digest>,
    /// When the plan came from the remote cache's build entry: how many action results
    /// came with it.
    pub from_build_entry: Option<usize>,
}

/// A stretch of planning: `Load packages` or `Analyze targets`.
#[derive(Clone, Debug)]
pub struct Phase {
    pub name: &'static str,
    pub start: Instant,
    pub end: Instant,
}

impl Planned {
    /// `target //a:b (3 packages loaded, 5 targets configured)`: what Bazel's "Analyzed"
    /// line says after `Analyzed `.
    pub fn analyzed_summary(&self) -> String {
        let plan = &self.plan;
        let what = if plan.targets.len() == 1 {
            format!("target {}", plan.targets.keys().next().expect("one"))
        } else {
            plural(plan.targets.len(), "target", "targets")
        };
        let (packages, configured) = match self.reused {
            true => (self.packages_reloaded, 0),
            false => (plan.packages_loaded, plan.targets_configured),
        };
        format!(
            "{what} ({} loaded, {} configured)",
            plural(packages, "package", "packages"),
            plural(configured, "target", "targets")
        )
    }
}

/// The parts of a command that decide its plan: the workspace, where it runs, the patterns,
/// the `--define`s and `--stamp`, whether tests are planned, and what WORKSPACE declares
/// (repositories, registered toolchains and platforms, binds; as JSON). Two commands with the
/// same identity share a cached plan.
pub fn identity(
    workspace_root: &std::path::Path,
    cwd_package: &PackageId,
    patterns: &[String],
    defines: &BTreeMap<String, String>,
    stamp: bool,
    for_tests: bool,
    repositories_json: &str,
) -> Vec<String> {
    let mut identity: Vec<String> = vec![
        workspace_root.display().to_string(),
        cwd_package.to_string(),
    ];
    identity.extend(patterns.iter().cloned());
    identity.extend(defines.iter().map(|(k, v)| format!("--define={k}={v}")));
    if stamp {
        identity.push("--stamp".to_owned());
    }
    if for_tests {
        identity.push("(tests)".to_owned());
    }
    identity.push(repositories_json.to_owned());
    identity
}

/// The plan `request` asks for: from the plan cache under the output base when an identical
/// command planned it and nothing it read changed, otherwise loaded and analysed (and
/// stored when it had no errors).
pub fn plan(workspace: &Arc<Workspace>, request: &PlanRequest<'_>) -> Result<Planned, Failure> {
    // What WORKSPACE declares (also through the .bzl files it loads, in this repository or
    // in external ones): a changed deps.bzl changes the plan when it changes a declaration.
    let repositories = workspace.declarations_json();
    let identity = identity(
        &workspace.root,
        request.cwd_package,
        request.patterns,
        &request.defines,
        request.stamp,
        request.for_tests,
        &repositories,
    );
    let mut identity = identity;
    // The configuration (`-c`, `--cpu`) names every output path and decides select()s.
    identity.push(format!(
        "--configuration={}",
        request.configuration.dir_name()
    ));
    // Build settings decide ctx.build_setting_value and select()s; in order, as a setting
    // given twice takes the last value (or, with allow_multiple, all of them in order).
    identity.extend(request.build_settings.iter().cloned());
    identity.extend(request.platforms.identity());
    identity.extend(request.cpp.identity());
    // The host compiler is found again only when loading runs: a changed CC or CXX plans again.
    for var in ["CC", "CXX"] {
        identity.push(format!("{var}={}", std::env::var(var).unwrap_or_default()));
    }
    identity.extend(
        request
            .output_groups
            .iter()
            .map(|g| format!("--output_groups={g}")),
    );
    identity.extend(request.aspects.iter().map(|a| format!("--aspects={a}")));
    let identity: Vec<&str> = identity.iter().map(String::as_str).collect();
    let key = PlanCache::key(&identity);
    let plans = PlanCache::new(workspace.output_base.join("cache").join("plans"));
    // The stored plan, if what it read is unchanged, or if the packages whose BUILD files
    // changed come out the same (`plan_cutoff`).
    let started = Instant::now();
    let mut evaluated_before = 0;
    let local = match plans.load_any(&key) {
        Some((plan, deps)) if deps.unchanged() => plan.decode().map(|plan| (plan, 0)),
        Some((plan, deps)) => {
            match plan_cutoff::try_reuse(workspace, request.fetch, &plans, &key, plan, &deps) {
                Cutoff::Reused {
                    plan,
                    packages_evaluated,
                } => Some((*plan, packages_evaluated)),
                Cutoff::NotReused { packages_evaluated } => {
                    evaluated_before = packages_evaluated;
                    None
                }
            }
        }
        None => None,
    };
    if let Some((plan, packages_reloaded)) = local {
        let phases = match packages_reloaded {
            0 => Vec::new(),
            _ => vec![Phase {
                name: "Load packages",
                start: started,
                end: Instant::now(),
            }],
        };
        return Ok(Planned {
            plan,
            reused: true,
            packages_reloaded,
            errors: Vec::new(),
            phases,
            stored_key: None,
            from_build_entry: None,
        });
    }
    // A fresh output base may find the plan in the remote cache's build entry.
    let remote = request.remote.and_then(|remote| {
        super::build_entry::fetch(workspace, remote, &key, &plans)
            .map(|(plan, results)| (plan, Some(results)))
    });
    if let Some((plan, from_build_entry)) = remote {
        return Ok(Planned {
            plan,
            reused: true,
            packages_reloaded: 0,
            errors: Vec::new(),
            phases: Vec::new(),
            stored_key: None,
            from_build_entry,
        });
    }
    let planned = plan_build(workspace, request, evaluated_before);
    // Ctrl-C during loading (a download, an extraction) ends the command as one.
    super::fetch::interrupted_check()?;
    let (plan, errors, phases, mut results) = planned?;
    let deps = fs_deps::take_recording();
    // A plan that cannot be stored only costs the next command its speed.
    let stored = errors.is_empty() && plans.store(&key, &deps, &plan).is_ok();
    if stored {
        // Without it, the next BUILD edit only costs a whole load and analysis again.
        let _ = plan_cutoff::store(workspace, &key, &deps, &mut results);
    }
    Ok(Planned {
        plan,
        reused: false,
        packages_reloaded: 0,
        errors,
        phases,
        stored_key: stored.then_some(key),
        from_build_entry: None,
    })
}

/// The package store under the output base (`cache/packages/`), whose entries hold for this
/// forge binary and what WORKSPACE declares (repositories and their mappings, binds, the
/// workspace name): the only inputs of loading besides the files each package read.
pub fn package_store(workspace: &Workspace) -> PackageStore {
    let root = workspace.root.display().to_string();
    let declarations = workspace.declarations_json();
    PackageStore::new(
        workspace.output_base.join("cache").join("packages"),
        PlanCache::key(&["packages", &root, &declarations]),
    )
}

/// The analysis result store under the output base (`cache/analysis/`), whose entries hold
/// for this forge binary and what WORKSPACE declares, as the package store's.
pub fn result_store(workspace: &Workspace) -> analysis::result_store::ResultStore {
    let root = workspace.root.display().to_string();
    let declarations = workspace.declarations_json();
    analysis::result_store::ResultStore::new(
        workspace.output_base.join("cache").join("analysis"),
        PlanCache::key(&["analysis", &root, &declarations]),
    )
}

/// The targets the patterns name, as `expand_patterns` gives them, except that wildcards
/// (`//pkg:all`, `//...`) leave out rules tagged `manual`, as Bazel's build and test do;
/// naming such a target on its own still builds it.
pub fn expand_skipping_manual(
    graph: &mut TargetGraph,
    args: &[TargetPatternArg],
) -> (BTreeSet<Label>, Vec<Diagnostic>) {
    let mut result = BTreeSet::new();
    let mut errors = Vec::new();
    for arg in args {
        let labels = match graph.expand(&arg.pattern) {
            Ok(labels) => labels,
            Err(d) => {
                errors.push(d);
                continue;
            }
        };
        if arg.negative {
            result.retain(|l| !labels.contains(l));
            continue;
        }
        let wildcard = !matches!(arg.pattern, crate::core::TargetPattern::Single(_));
        for label in labels {
            let manual = wildcard
                && graph
                    .target(&label)
                    .and_then(|t| t.rule())
                    .is_some_and(|r| match r.attrs.get("tags") {
                        Some(crate::loading::AttrValue::StringList(tags)) => {
                            tags.iter().any(|t| t == "manual")
                        }
                        _ => false,
                    });
            if !manual {
                result.insert(label);
            }
        }
    }
    (result, errors)
}

/// Loads the packages `patterns` need and analyses the targets: the plan, and the problems
/// found (only with `--keep_going`; otherwise the first problems end the command).
/// File-system reads are recorded (`fs_deps`) so the plan can be reused.
///
/// `evaluated_before` packages were evaluated (and stored) by this command before it came
/// here: they count as loaded, as they were.
fn plan_build(
    workspace: &Arc<Workspace>,
    request: &PlanRequest<'_>,
    evaluated_before: usize,
) -> Result<(BuildPlan, Vec<Diagnostic>, Vec<Phase>, PackageResults), Failure> {
    let loading_started = Instant::now();
    let PlanRequest {
        patterns,
        cwd_package,
        keep_going,
        for_tests,
        fetch,
        ..
    } = *request;
    let defines = request.defines.clone();
    let setting_args =
        analysis::build_settings::parse_args(request.build_settings, &workspace.name)
            .map_err(super::usage)?;
    fs_deps::start_recording();
    // The WORKSPACE file was read before recording started; note it too.
    let _ = fs_deps::read_to_string(&workspace.workspace_file);
    let loader = Loader::with_fetch_options(workspace.clone(), fetch)
        .map_err(Failure::from)?
        .with_package_store(package_store(workspace));
    let mut graph = TargetGraph::new(&loader);

    let args = patterns
        .iter()
        .map(|p| TargetPatternArg::parse(p, cwd_package))
        .collect::<Result<Vec<_>, Diagnostic>>()
        .map_err(super::usage)?;
    let (mut targets, mut errors) = expand_skipping_manual(&mut graph, &args);
    let mut tests = BTreeSet::new();
    if for_tests {
        // The tests the patterns name, with test suites replaced by their tests — the query
        // language's tests(); they are built too, runfiles and all.
        graph.load_closure(&targets);
        let set = targets
            .iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
            .join(" ");
        let expr = crate::query::parse(&format!("tests(set({set}))")).map_err(Failure::from)?;
        let mut env = crate::query::GraphEnv {
            graph: &mut graph,
            cwd: cwd_package.clone(),
        };
        let evaluation = crate::query::evaluate(&expr, &mut env, keep_going);
        errors.extend(evaluation.errors);
        tests = evaluation.labels;
        targets.extend(tests.iter().cloned());
    }
    let closure = graph.load_closure(&targets);
    errors.extend(graph.errors().iter().cloned());
    let closure_list: Vec<Label> = closure.iter().cloned().collect();
    for cycle in graph.cycles(&closure_list) {
        errors.push(Diagnostic::new(cycle.to_string()));
    }
    errors.extend(graph.visibility_errors(&closure_list));
    if !errors.is_empty() && !keep_going {
        errors.push(Diagnostic::new(
            "Build did NOT complete successfully (loading failed)",
        ));
        return Err(Failure::from_diagnostics(errors));
    }

    // The settings the command line names are loaded (and checked) after the targets', so
    // an unknown one is named as an option rather than as a missing dependency.
    graph.load_closure(&analysis::build_settings::labels(&setting_args));
    let build_settings = analysis::build_settings::resolve(&graph, &setting_args, &workspace.name)
        .map_err(super::usage)?;
    let chosen = analysis::build_settings::chosen_targets(&build_settings);
    if !chosen.is_empty() {
        graph.load_closure(&chosen);
        let errors: Vec<Diagnostic> = chosen
            .iter()
            .filter(|l| graph.target(l).is_none())
            .map(|l| {
                Diagnostic::new(format!(
                    "no such target '{l}', named by a label_flag on the command line"
                ))
            })
            .collect();
        if !errors.is_empty() {
            return Err(Failure::from_diagnostics(errors));
        }
    }
    // The build settings transitions read and set are loaded like dependencies (their
    // targets may use other rules with transitions of their own).
    loop {
        let settings = analysis::transition_settings(&graph);
        if settings.is_empty() {
            break;
        }
        graph.load_closure(&settings);
        if settings.iter().all(|l| graph.target(l).is_none()) {
            break;
        }
    }
    // `--aspects`, and what the aspects' attributes name, loaded like dependencies.
    let aspects = analysis::aspects::command_line_ids(request.aspects, cwd_package)
        .map_err(Failure::usage)?;
    analysis::aspects::load_aspect_labels(&mut graph, &aspects).map_err(Failure::failed)?;
    let platforms = super::platforms::platform_config(&mut graph, workspace, request.platforms)
        .map_err(Failure::from_diagnostics)?;
    let config = AnalysisConfig {
        defines,
        stamp: request.stamp,
        build_settings,
        output: request.configuration.clone(),
        platforms,
        cpp: request.cpp.clone(),
        aspects,
    };
    // A store that cannot be written only costs the next command its speed.
    let _ = loader.flush_package_store();
    let analysis_started = Instant::now();
    // Targets whose inputs are unchanged since an earlier command take their stored result.
    let results = result_store(workspace);
    let mut analysis = analysis::analyze_with_store(&graph, &targets, &config, Some(&results));
    let _ = results.flush();
    errors.extend(analysis.errors.iter().cloned());
    // Targets the target platform cannot build: a wildcard skips them (Bazel says nothing
    // of a skipped build target; a skipped test is reported SKIPPED), naming one is an error.
    let named: BTreeSet<&Label> = args
        .iter()
        .filter(|a| !a.negative)
        .filter_map(|a| match &a.pattern {
            crate::core::TargetPattern::Single(l) => Some(l),
            _ => None,
        })
        .collect();
    for label in &targets {
        if let Some(why) = analysis.incompatible.get(label)
            && named.contains(label)
        {
            errors.push(Diagnostic::new(why.requested_message()));
        }
    }
    let skipped_tests: Vec<Label> = tests
        .iter()
        .filter(|l| analysis.incompatible.contains_key(*l) && !named.contains(l))
        .cloned()
        .collect();
    targets.retain(|l| !analysis.incompatible.contains_key(l));
    tests.retain(|l| !analysis.incompatible.contains_key(l));
    // Two targets' actions writing one file: an analysis error, as in Bazel; with
    // --keep_going the targets involved are left out and the rest is built.
    let conflicting = conflicting_owners(analysis.actions(), &mut errors);
    // As in Bazel, the targets this command analysed: reused results do not count.
    let configured = analysis.analysed;
    // As in Bazel, the packages loaded by this command: those the package store had
    // unchanged do not count.
    let packages = evaluated_before + loader.packages_evaluated();
    if !errors.is_empty() && !keep_going {
        errors.push(Diagnostic::new(format!(
            "Build did NOT complete successfully ({} loaded, {} configured)",
            plural(packages, "package", "packages"),
            plural(configured, "target", "targets")
        )));
        return Err(Failure::from_diagnostics(errors));
    }

    // What the user asked for: each target's default outputs (or the output groups named)
    // and, for executables, what their runfiles trees point at.
    let groups = analysis::OutputGroups::from_flags(request.output_groups);
    let mut plan = BuildPlan {
        packages_loaded: packages,
        targets_configured: configured,
        bin_dir: analysis.top.bin_dir(),
        testlogs_dir: analysis.top.testlogs_dir(),
        ..BuildPlan::default()
    };
    for label in &targets {
        let outputs = analysis.requested_outputs(&graph, label, &groups);
        plan.wanted
            .extend(outputs.iter().cloned().map(ExecPath::new));
        let analyzed = analysis.target(label);
        if let Some(tree) = analyzed
            .and_then(|a| a.runfiles.as_ref())
            .filter(|_| groups.runfiles || for_tests)
        {
            plan.wanted
                .extend(tree.entries.iter().map(|(_, p)| p.clone()));
        }
        let target = graph.target(label);
        let tags = match target
            .and_then(|t| t.rule())
            .and_then(|r| r.attrs.get("tags"))
        {
            Some(crate::loading::AttrValue::StringList(tags)) => tags.clone(),
            _ => Vec::new(),
        };
        plan.targets.insert(
            label.clone(),
            PlannedTarget {
                kind: target.map(|t| t.kind_name()).unwrap_or_default(),
                tags,
                outputs: outputs.into_iter().map(ExecPath::new).collect(),
                executable: analyzed.and_then(|a| a.executable.clone().map(ExecPath::new)),
                args: analyzed.map(|a| a.args.clone()).unwrap_or_default(),
                is_test: analyzed.is_some_and(|a| a.is_test),
                test: analyzed.and_then(|a| {
                    let mut spec = a.test.clone()?;
                    spec.runfiles = a
                        .runfiles
                        .as_ref()
                        .map(|t| t.entries.clone())
                        .unwrap_or_default();
                    Some(spec)
                }),
            },
        );
    }
    for (label, key) in &analysis.top_level_aspects {
        if !targets.contains(label) {
            continue;
        }
        let outputs = analysis.aspect_outputs(key, &groups);
        plan.wanted
            .extend(outputs.iter().cloned().map(ExecPath::new));
        plan.aspects.push(crate::analysis::plan::PlannedAspect {
            aspect: key.aspect().id.clone(),
            target: label.clone(),
            outputs: outputs.into_iter().map(ExecPath::new).collect(),
        });
    }
    plan.tests = tests.into_iter().collect();
    plan.skipped_tests = skipped_tests;
    plan.wanted.retain(|p| p.starts_with(layout::OUT_DIR));
    plan.wanted.sort();
    plan.wanted.dedup();
    plan.actions = Vec::new();
    // Of shareable actions (the same work registered by several targets), one runs: the
    // index in plan.actions of the last kept action writing each output.
    let mut first_writer: std::collections::HashMap<ExecPath, usize> =
        std::collections::HashMap::new();
    let mut conflicting_outputs: Vec<ExecPath> = Vec::new();
    for action in analysis.take_actions() {
        if conflicting.contains(&action.owner) {
            conflicting_outputs.extend(action.outputs);
            continue;
        }
        if let Some(&other) = action.outputs.first().and_then(|o| first_writer.get(o))
            && plan.actions[other].owner != action.owner
            && shareable(&plan.actions[other], &action)
        {
            continue;
        }
        for out in &action.outputs {
            first_writer.insert(out.clone(), plan.actions.len());
        }
        plan.actions.push(action);
    }
    drop(first_writer);
    if !conflicting_outputs.is_empty() {
        // What only the left-out targets would have made is not asked for; what depends on
        // it fails for lack of its input, as in Bazel.
        let made: std::collections::HashSet<&ExecPath> =
            plan.actions.iter().flat_map(|a| a.outputs.iter()).collect();
        let left_out: std::collections::HashSet<&ExecPath> = conflicting_outputs
            .iter()
            .filter(|o| !made.contains(o))
            .collect();
        plan.wanted.retain(|p| !left_out.contains(p));
    }
    plan.runfiles = analysis
        .targets
        .values()
        .filter_map(|a| a.runfiles.clone())
        .collect();
    plan.runfiles
        .sort_by(|a, b| a.executable.cmp(&b.executable));
    // What the plan is made from, for the next command's cutoff (`plan_cutoff`).
    let results = PackageResults::of(&graph, &loader, fs_deps::direct_reads());
    // The graph and the analysis are big and about to be dropped, which takes a noticeable
    // time (tens of ms for thousands of targets); the process ends soon and frees it all.
    std::mem::forget(analysis);
    std::mem::forget(graph);
    std::mem::forget(loader);
    let phases = vec![
        Phase {
            name: "Load packages",
            start: loading_started,
            end: analysis_started,
        },
        Phase {
            name: "Analyze targets",
            start: analysis_started,
            end: Instant::now(),
        },
    ];
    Ok((plan, errors, phases, results))
}

/// Whether two actions are the same work, differing at most in the target that registered
/// them: Bazel's "shareable" actions, which may write the same file without a conflict (two
/// targets running the same command into the same output).
fn shareable(a: &crate::core::Action, b: &crate::core::Action) -> bool {
    a.mnemonic == b.mnemonic
        && a.kind == b.kind
        && a.inputs == b.inputs
        && a.outputs == b.outputs
        && a.directory_outputs == b.directory_outputs
        && a.scratch_dirs == b.scratch_dirs
        && a.env == b.env
        && a.requirements == b.requirements
}

/// The owners of actions that write the same file as another target's (not shareable)
/// action, each conflict reported once in `errors` with the targets involved.
fn conflicting_owners<'a>(
    actions: impl Iterator<Item = &'a crate::core::Action>,
    errors: &mut Vec<Diagnostic>,
) -> std::collections::BTreeSet<Label> {
    let mut writers: BTreeMap<&'a ExecPath, Vec<&'a crate::core::Action>> = BTreeMap::new();
    for action in actions {
        for out in &action.outputs {
            writers.entry(out).or_default().push(action);
        }
    }
    let mut conflicting = std::collections::BTreeSet::new();
    for (path, writing) in writers {
        let first = writing[0];
        if writing
            .iter()
            .all(|a| a.owner == first.owner || shareable(a, first))
        {
            continue;
        }
        let mut owners: Vec<&Label> = writing.iter().map(|a| &a.owner).collect();
        owners.sort();
        owners.dedup();
        let names: Vec<String> = owners.iter().map(|l| l.to_string()).collect();
        errors.push(Diagnostic::new(format!(
            "file '{path}' is generated by these conflicting actions of {}; give the outputs \
             different names",
            names.join(" and ")
        )));
        conflicting.extend(owners.into_iter().cloned());
    }
    conflicting
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::workspace::OutputBaseOptions;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn identity_differs_by_every_part_that_decides_the_plan() {
        let root = Path::new("/ws");
        let top = PackageId::default();
        let patterns = strings(&["//..."]);
        let defines = BTreeMap::new();
        let base = identity(root, &top, &patterns, &defines, false, false, "{}");
        assert_eq!(
            base,
            identity(root, &top, &patterns, &defines, false, false, "{}")
        );
        let mut one = BTreeMap::new();
        one.insert("MODE".to_owned(), "opt".to_owned());
        let others = [
            identity(
                Path::new("/other"),
                &top,
                &patterns,
                &defines,
                false,
                false,
                "{}",
            ),
            identity(
                root,
                &top,
                &strings(&["//a:b"]),
                &defines,
                false,
                false,
                "{}",
            ),
            identity(root, &top, &patterns, &one, false, false, "{}"),
            identity(root, &top, &patterns, &defines, true, false, "{}"),
            identity(root, &top, &patterns, &defines, false, true, "{}"),
            identity(root, &top, &patterns, &defines, false, false, "{\"r\":1}"),
        ];
        for other in &others {
            assert_ne!(&base, other);
            let base: Vec<&str> = base.iter().map(String::as_str).collect();
            let other: Vec<&str> = other.iter().map(String::as_str).collect();
            assert_ne!(PlanCache::key(&base), PlanCache::key(&other));
        }
    }

    #[test]
    fn wildcards_skip_manual_targets_but_naming_one_keeps_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("ws");
        std::fs::create_dir_all(root.join("pkg")).unwrap();
        std::fs::write(root.join("WORKSPACE"), "workspace(name = \"w\")\n").unwrap();
        std::fs::write(
            root.join("pkg/BUILD"),
            "genrule(name = \"auto\", outs = [\"a\"], cmd = \"x\")\n\
             genrule(name = \"hand\", outs = [\"h\"], cmd = \"x\", tags = [\"manual\"])\n",
        )
        .unwrap();
        let options = OutputBaseOptions {
            output_base: Some(dir.path().join("out")),
            output_user_root: None,
        };
        let workspace = Arc::new(Workspace::discover(&root, &options).expect("workspace"));
        let loader = Loader::new(workspace).expect("loader");
        let mut graph = TargetGraph::new(&loader);
        let top = PackageId::default();
        let args = |patterns: &[&str]| -> Vec<TargetPatternArg> {
            patterns
                .iter()
                .map(|p| TargetPatternArg::parse(p, &top).expect("pattern"))
                .collect()
        };
        let names = |labels: &BTreeSet<Label>| -> Vec<String> {
            labels.iter().map(Label::to_string).collect()
        };

        let (all, errors) = expand_skipping_manual(&mut graph, &args(&["//pkg:all"]));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(names(&all), ["//pkg:auto"]);

        let (named, _) = expand_skipping_manual(&mut graph, &args(&["//pkg:hand"]));
        assert_eq!(names(&named), ["//pkg:hand"]);

        let (none, _) = expand_skipping_manual(&mut graph, &args(&["//...", "-//pkg:auto"]));
        assert!(none.is_empty(), "{none:?}");

        let (_, errors) = expand_skipping_manual(&mut graph, &args(&["//missing:x"]));
        assert_eq!(errors.len(), 1);
    }
}

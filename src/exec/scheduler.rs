//! Scheduling: the action list and wanted outputs in, every needed action performed (in
//! dependency order, up to `jobs` at a time) and an `ExecResult` out.
//!
//! An action is needed if it produces a wanted path or an input of a needed action. It becomes
//! ready when every action producing one of its inputs has succeeded; ready actions start in
//! index order, so a run with one job is fully deterministic and the result (counts, failures
//! in index order) does not depend on the number of jobs.
//!
//! `jobs` bounds the actions in their command (or checking caches) at once, not the worker
//! threads: with more than one job there are more workers than jobs, so that while one worker
//! hashes and records the outputs of a command that has ended, another already runs the next
//! command — as ninja does, instead of leaving a core idle during forge's own bookkeeping.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use crate::core::{Action, ActionKind, InputSet};
use crate::core::{Digest, ExecPath};
use crate::exec::ingredients::Explanation;
use crate::exec::perform::{Ctx, Done, Fail, How};
use crate::exec::progress::{ActionOutcome, Progress};
use crate::exec::runner::Runner;
use crate::exec::{ActionFailure, ExecConfig, ExecError, ExecResult};
use std::sync::Arc;

/// Where an input comes from: `(producing action, index among its outputs)`, or a source.
pub(crate) type Producer = Option<(usize, usize)>;

/// The needed part of the action graph.
pub(crate) struct Graph<'a> {
    /// Per action: its own effective inputs (declared inputs plus a template / symlink
    /// target, not those of its input sets), sorted and unique, with their producers. Empty
    /// for actions that are not needed.
    pub inputs: Vec<Vec<(&'a str, Producer)>>,
    /// Per action: the needed actions consuming its outputs.
    pub dependents: Vec<Vec<usize>>,
    /// Per action: how many distinct producers it waits for.
    pub waiting_for: Vec<usize>,
    /// Needed action indices, ascending.
    pub needed: Vec<usize>,
    /// Output exec path → (producing action, output index).
    pub producers: HashMap<&'a str, (usize, usize)>,
}

/// A generated file of an input set and its producer: `(path, (action, output index))`.
type Generated<'a> = (&'a str, (usize, usize));

pub(crate) fn build_graph<'a>(
    actions: &'a [Action],
    wanted: &[ExecPath],
) -> Result<Graph<'a>, ExecError> {
    let mut producers: HashMap<&str, (usize, usize)> = HashMap::new();
    for (i, a) in actions.iter().enumerate() {
        for (k, out) in a.outputs.iter().enumerate() {
            if let Some(&(first, _)) = producers.get(out.as_str()) {
                return Err(ExecError::DuplicateOutput {
                    path: out.to_string(),
                    first: Box::new(actions[first].owner.clone()),
                    second: Box::new(a.owner.clone()),
                });
            }
            producers.insert(out, (i, k));
        }
    }

    let effective_inputs = |a: &'a Action| -> Vec<(&'a str, Producer)> {
        let mut v: Vec<&'a str> = a.inputs.files().iter().map(ExecPath::as_str).collect();
        match &a.kind {
            ActionKind::ExpandTemplate { template, .. } => v.push(template),
            ActionKind::Symlink { target, .. } => v.push(target),
            _ => {}
        }
        v.sort_unstable();
        v.dedup();
        v.into_iter()
            .map(|p| (p, producers.get(p).copied()))
            .collect()
    };

    // Depth-first from the wanted outputs, iteratively (graphs can be deep), with the usual
    // white/grey/black colouring to find cycles.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    // The generated files of each input set, made once per set (children first).
    let mut generated_in: HashMap<*const InputSet, Vec<Generated<'a>>> = HashMap::new();
    let mut set_inputs_of = |a: &'a Action| -> Vec<Generated<'a>> {
        let mut all = Vec::new();
        for root in a.inputs.sets() {
            if !generated_in.contains_key(&Arc::as_ptr(root)) {
                for set in InputSet::postorder(std::slice::from_ref(root)) {
                    if generated_in.contains_key(&Arc::as_ptr(set)) {
                        continue;
                    }
                    let mut mine: Vec<Generated<'a>> = set
                        .files()
                        .iter()
                        .filter_map(|f| producers.get(f.as_str()).map(|p| (f.as_str(), *p)))
                        .collect();
                    for c in set.children() {
                        mine.extend_from_slice(&generated_in[&Arc::as_ptr(c)]);
                    }
                    mine.sort_unstable();
                    mine.dedup();
                    generated_in.insert(Arc::as_ptr(set), mine);
                }
            }
            all.extend_from_slice(&generated_in[&Arc::as_ptr(root)]);
        }
        all.sort_unstable();
        all.dedup();
        all
    };
    let n = actions.len();
    let mut mark = vec![Mark::New; n];
    let mut inputs: Vec<Vec<(&str, Producer)>> = vec![Vec::new(); n];
    // Per action: the generated files of its input sets with their producers, which it
    // waits for (a set's digest covers their contents; its sources are not listed).
    let mut set_inputs: Vec<Vec<Generated<'_>>> = vec![Vec::new(); n];
    let mut needed = Vec::new();
    for w in wanted {
        let Some(&(root, _)) = producers.get(w.as_str()) else {
            continue;
        };
        if mark[root] != Mark::New {
            continue;
        }
        mark[root] = Mark::Open;
        inputs[root] = effective_inputs(&actions[root]);
        set_inputs[root] = set_inputs_of(&actions[root]);
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(&mut (i, ref mut next)) = stack.last_mut() {
            if *next < inputs[i].len() + set_inputs[i].len() {
                let (path, producer) = match inputs[i].get(*next) {
                    Some(&own) => own,
                    None => {
                        let (path, p) = set_inputs[i][*next - inputs[i].len()];
                        (path, Some(p))
                    }
                };
                *next += 1;
                if let Some((p, _)) = producer {
                    match mark[p] {
                        Mark::Open => {
                            return Err(ExecError::Cycle {
                                path: path.to_owned(),
                            });
                        }
                        Mark::Done => {}
                        Mark::New => {
                            mark[p] = Mark::Open;
                            inputs[p] = effective_inputs(&actions[p]);
                            set_inputs[p] = set_inputs_of(&actions[p]);
                            stack.push((p, 0));
                        }
                    }
                }
            } else {
                mark[i] = Mark::Done;
                needed.push(i);
                stack.pop();
            }
        }
    }
    needed.sort_unstable();

    let mut dependents = vec![Vec::new(); n];
    let mut waiting_for = vec![0; n];
    for &i in &needed {
        let mut producers: Vec<usize> = inputs[i]
            .iter()
            .filter_map(|(_, p)| p.map(|p| p.0))
            .chain(set_inputs[i].iter().map(|(_, p)| p.0))
            .collect();
        producers.sort_unstable();
        producers.dedup();
        waiting_for[i] = producers.len();
        for p in producers {
            dependents[p].push(i);
        }
    }
    Ok(Graph {
        inputs,
        dependents,
        waiting_for,
        needed,
        producers,
    })
}

struct State {
    ready: BinaryHeap<Reverse<usize>>,
    waiting_for: Vec<usize>,
    in_flight: usize,
    /// Actions in flight that have not yet ended their command: at most `jobs`.
    in_command: usize,
    /// Workers waiting for work.
    idle: usize,
    stop: bool,
    interrupted: bool,
    finished: bool,
}

struct Shared<'a> {
    actions: &'a [Action],
    config: &'a ExecConfig,
    graph: Graph<'a>,
    ctx: Ctx<'a>,
    progress: &'a dyn Progress,
    interrupt: &'a AtomicBool,
    keep_going: bool,
    jobs: usize,
    state: Mutex<State>,
    /// Wakes workers: new ready actions, or the build is stopping/over.
    work: Condvar,
    /// Wakes the coordinating thread when the build is over.
    over: Condvar,
    /// Output digests of every action that succeeded, read by its dependents.
    results: Vec<OnceLock<Vec<Digest>>>,
    failures: Mutex<Vec<(usize, ActionFailure)>>,
    explanations: Mutex<Vec<(usize, Explanation)>>,
    executed: AtomicUsize,
    cache_hits: AtomicUsize,
    remote_hits: AtomicUsize,
    up_to_date: AtomicUsize,
}

impl Shared<'_> {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Workers do not panic while holding the lock; if one did, the counters are still
        // consistent enough to wind the build down.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How many worker threads run `jobs` actions at once: one per job, plus (with more than one
/// job) as many again, up to `MAX_RECORDING` more, to record the outputs of ended commands
/// while the next ones run. One job keeps one worker: a fully deterministic order.
fn workers_for(jobs: usize) -> usize {
    match jobs {
        1 => 1,
        _ => jobs + jobs.min(MAX_RECORDING),
    }
}

/// Recording outputs is short next to a command: a few workers at it are enough however many
/// commands run at once (remotely, hundreds).
const MAX_RECORDING: usize = 16;

/// How often the coordinating thread looks at the interrupt flag and ticks progress.
const POLL: Duration = Duration::from_millis(50);

pub(crate) fn run(
    actions: &[Action],
    wanted: &[ExecPath],
    config: &ExecConfig,
    runner: &dyn Runner,
    progress: &dyn Progress,
    interrupt: &AtomicBool,
) -> Result<ExecResult, ExecError> {
    let graph = build_graph(actions, wanted)?;
    let ctx = Ctx::new(config, runner, progress)?;
    let mut ready = BinaryHeap::new();
    for &i in &graph.needed {
        if graph.waiting_for[i] == 0 {
            ready.push(Reverse(i));
        }
    }
    let jobs = config.jobs.max(1);
    let workers = workers_for(jobs).min(graph.needed.len());
    let total = graph.needed.len();
    let shared = Shared {
        actions,
        config,
        state: Mutex::new(State {
            ready,
            waiting_for: graph.waiting_for.clone(),
            in_flight: 0,
            in_command: 0,
            idle: 0,
            stop: false,
            interrupted: false,
            finished: workers == 0,
        }),
        graph,
        ctx,
        progress,
        interrupt,
        keep_going: config.keep_going,
        jobs,
        work: Condvar::new(),
        over: Condvar::new(),
        results: (0..actions.len()).map(|_| OnceLock::new()).collect(),
        failures: Mutex::new(Vec::new()),
        explanations: Mutex::new(Vec::new()),
        executed: AtomicUsize::new(0),
        cache_hits: AtomicUsize::new(0),
        remote_hits: AtomicUsize::new(0),
        up_to_date: AtomicUsize::new(0),
    };

    progress.begin(total);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| worker(&shared));
        }
        coordinate(&shared);
    });
    progress.end();

    // Facts about files stay true whatever happened to the build; losing them only costs
    // re-hashing, so a failed save is not an error.
    let _ = shared.ctx.stat().save();
    shared.ctx.save_discovered();
    // Every command has been waited for (or killed): nothing is left for a later build to kill.
    shared.ctx.cancel.finish();

    let interrupted = shared.lock().interrupted;
    let mut failures = shared
        .failures
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    failures.sort_by_key(|(i, _)| *i);
    let mut explanations = shared
        .explanations
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    explanations.sort_by_key(|(i, _)| *i);
    Ok(ExecResult {
        executed: shared.executed.into_inner(),
        cache_hits: shared.cache_hits.into_inner(),
        remote_hits: shared.remote_hits.into_inner(),
        up_to_date: shared.up_to_date.into_inner(),
        failures: failures.into_iter().map(|(_, f)| f).collect(),
        explanations: explanations.into_iter().map(|(_, e)| e).collect(),
        interrupted,
    })
}

/// What an action says while it runs, or its mnemonic and first output.
pub fn describe_action(action: &Action) -> String {
    match action.progress_message.is_empty() {
        false => action.progress_message.clone(),
        true => format!(
            "{} {}",
            action.mnemonic,
            action.outputs.first().map_or("", |o| o.as_str())
        ),
    }
}

/// Runs on the calling thread: waits for the end, watching for Ctrl-C and ticking progress.
fn coordinate(sh: &Shared) {
    let mut st = sh.lock();
    loop {
        if st.finished {
            return;
        }
        if sh.interrupt.load(Ordering::SeqCst) && !st.interrupted {
            st.stop = true;
            st.interrupted = true;
            sh.ctx.cancel.cancel();
            sh.work.notify_all();
        }
        drop(st);
        sh.progress.tick();
        st = sh.lock();
        if st.finished {
            return;
        }
        st = match sh.over.wait_timeout(st, POLL) {
            Ok((g, _)) => g,
            Err(e) => e.into_inner().0,
        };
    }
}

fn worker(sh: &Shared) {
    let mut st = sh.lock();
    loop {
        if sh.interrupt.load(Ordering::SeqCst) {
            // Checked here too so nothing new starts even before the coordinator notices.
            st.stop = true;
            st.interrupted = true;
        }
        let next = if st.stop || st.in_command >= sh.jobs {
            None
        } else {
            st.ready.pop()
        };
        if let Some(Reverse(i)) = next {
            st.in_flight += 1;
            st.in_command += 1;
            // Another worker is woken only for work this one leaves: waking one after every
            // action (a futex call each, and a context switch on a busy machine) was most of
            // a no-op build's wall time at 50,000 up-to-date actions.
            if st.idle > 0 && !st.ready.is_empty() && st.in_command < sh.jobs {
                sh.work.notify_one();
            }
            drop(st);
            let command_over = std::cell::Cell::new(false);
            let end_command = || {
                if command_over.replace(true) {
                    return;
                }
                let mut st = sh.lock();
                st.in_command -= 1;
                if st.idle > 0 && !st.ready.is_empty() && !st.stop {
                    sh.work.notify_one();
                }
            };
            let performed = perform_one(sh, i, &end_command);
            st = sh.lock();
            st.in_flight -= 1;
            if !command_over.get() {
                st.in_command -= 1;
            }
            match performed {
                Performed::Done => {
                    for &d in &sh.graph.dependents[i] {
                        st.waiting_for[d] -= 1;
                        if st.waiting_for[d] == 0 {
                            st.ready.push(Reverse(d));
                        }
                    }
                }
                Performed::Failed => {
                    if !sh.keep_going {
                        st.stop = true;
                    }
                }
                Performed::Interrupted => {
                    st.stop = true;
                    st.interrupted = true;
                }
            }
            // This worker takes the next ready action itself (and wakes another if more are
            // ready); a stopped build wakes them all to end.
            if st.stop {
                sh.work.notify_all();
            }
            continue;
        }
        if st.in_flight == 0 {
            // Nothing running and nothing can start: done (or stopped, or the rest depends
            // on failures).
            st.finished = true;
            sh.work.notify_all();
            sh.over.notify_all();
            return;
        }
        st.idle += 1;
        st = match sh.work.wait(st) {
            Ok(g) => g,
            Err(e) => e.into_inner(),
        };
        st.idle -= 1;
    }
}

enum Performed {
    Done,
    Failed,
    Interrupted,
}

fn perform_one(sh: &Shared, i: usize, command_over: &dyn Fn()) -> Performed {
    let action = &sh.actions[i];
    let inputs = &sh.graph.inputs[i];
    // Every producer has succeeded (that is what made us ready), so its digests are set.
    let digest_of = |p: usize, k: usize| sh.results[p].get().and_then(|d| d.get(k)).copied();
    let producer_of = |path: &str| sh.graph.producers.get(path).copied();
    match sh
        .ctx
        .perform(action, inputs, &producer_of, &digest_of, command_over)
    {
        Ok(Done {
            digests,
            how,
            changes,
        }) => {
            if !matches!(how, How::UpToDate) {
                let explanation = Explanation {
                    owner: action.owner.clone(),
                    description: describe_action(action),
                    restored: !matches!(how, How::Executed(_)),
                    changes,
                };
                sh.explanations
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((i, explanation));
            }
            let counter = match &how {
                How::Executed(_) => &sh.executed,
                How::CacheHit | How::RemoteHit => &sh.cache_hits,
                How::UpToDate => &sh.up_to_date,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            if matches!(how, How::RemoteHit) {
                sh.remote_hits.fetch_add(1, Ordering::Relaxed);
            }
            let outcome = match &how {
                How::Executed(output) => ActionOutcome::Executed { output },
                How::CacheHit | How::RemoteHit => ActionOutcome::CacheHit,
                How::UpToDate => ActionOutcome::UpToDate,
            };
            sh.progress.finished(action, &outcome);
            let _ = sh.results[i].set(digests);
            Performed::Done
        }
        Err(Fail::Failed { mut failure, ran }) => {
            if ran {
                sh.executed.fetch_add(1, Ordering::Relaxed);
            }
            let cx = crate::exec::explain::Context {
                actions: sh.actions,
                producers: &sh.graph.producers,
                exec_root: &sh.config.exec_root,
                workspace_root: sh.config.workspace_root.as_deref(),
            };
            if let Some(hint) =
                crate::exec::explain::undeclared_inputs(&failure.output, action, &cx)
            {
                failure.output.push_str(&hint);
            }
            sh.progress
                .finished(action, &ActionOutcome::Failed(&failure));
            sh.failures
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((i, *failure));
            Performed::Failed
        }
        Err(Fail::Interrupted) => Performed::Interrupted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Label;
    use std::collections::BTreeMap;

    fn act(name: &str, inputs: &[&str], outputs: &[&str]) -> Action {
        Action {
            owner: Label {
                repo: String::new(),
                package: "p".into(),
                name: name.into(),
            },
            mnemonic: "Genrule".into(),
            progress_message: String::new(),
            kind: ActionKind::Run { argv: vec![] },
            inputs: inputs
                .iter()
                .map(|s| ExecPath::new(*s))
                .collect::<Vec<_>>()
                .into(),
            outputs: outputs.iter().map(|s| ExecPath::new(*s)).collect(),
            env: BTreeMap::new(),
            requirements: vec![],
            directory_outputs: vec![],
            scratch_dirs: vec![],
            discovery: None,
        }
    }

    #[test]
    fn only_needed_actions_with_their_edges() -> Result<(), ExecError> {
        let actions = vec![
            act("a", &["src"], &["o/a"]),
            act("b", &["o/a", "src2"], &["o/b"]),
            act("unused", &[], &["o/u"]),
            act("c", &["o/a", "o/b"], &["o/c1", "o/c2"]),
        ];
        let g = build_graph(&actions, &["o/c2".into(), "not/an/output".into()])?;
        assert_eq!(g.needed, vec![0, 1, 3]);
        assert_eq!(g.waiting_for[3], 2);
        assert_eq!(g.dependents[0], vec![1, 3]);
        assert_eq!(g.inputs[1], vec![("o/a", Some((0, 0))), ("src2", None)]);
        assert!(g.inputs[2].is_empty());
        Ok(())
    }

    #[test]
    fn duplicate_outputs_and_cycles_are_errors() {
        let dup = vec![act("a", &[], &["o/x"]), act("b", &[], &["o/x"])];
        assert!(matches!(
            build_graph(&dup, &[]),
            Err(ExecError::DuplicateOutput { ref path, .. }) if path == "o/x"
        ));
        let cycle = vec![act("a", &["o/b"], &["o/a"]), act("b", &["o/a"], &["o/b"])];
        assert!(matches!(
            build_graph(&cycle, &["o/a".into()]),
            Err(ExecError::Cycle { .. })
        ));
        let selfloop = vec![act("a", &["o/a"], &["o/a"])];
        assert!(matches!(
            build_graph(&selfloop, &["o/a".into()]),
            Err(ExecError::Cycle { .. })
        ));
    }
}

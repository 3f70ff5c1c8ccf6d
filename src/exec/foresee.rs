//! Foreseeing a build without running it: the actions, the wanted outputs and the execution
//! settings in; for each needed action, in dependency order, whether it is up to date or
//! would run and why (what changed since its last run), with that last run's record, out.
//! Nothing is executed and no cache is written; sources are hashed through the stat cache.

use std::collections::VecDeque;

use crate::core::{Action, Digest, ExecPath, Label};
use crate::exec::discovery::{self, DiscoveredInputs};
use crate::exec::ingredients::{self, Change, IngredientLog, Ingredients, Record};
use crate::exec::key::action_key;
use crate::exec::perform::outputs_up_to_date;
use crate::exec::scheduler::Producer;
use crate::exec::scheduler::build_graph;
use crate::exec::set_digests::SetDigests;
use crate::exec::source_dir;
use crate::exec::stat_cache::StatCache;
use crate::exec::{ExecConfig, ExecError, base_environment, command_environment};

/// What would happen to one action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Its outputs are what its current key produced: it would not run.
    UpToDate,
    /// It would run (or be restored from a cache), for these reasons.
    WouldRun(Vec<Change>),
    /// An input is made by an action that would run first; whether this one runs depends on
    /// what that one makes.
    AfterInput { path: String, producer: Label },
    /// An input source file is missing or unreadable.
    MissingInput { path: String, problem: String },
}

/// One needed action's fate.
#[derive(Clone, Debug)]
pub struct Foreseen {
    /// Its index in the actions slice.
    pub index: usize,
    pub verdict: Verdict,
    /// Its last recorded run, with the reasons it ran then.
    pub last: Option<Record>,
}

/// Every action needed for `wanted`, producers before consumers.
pub fn foresee(
    actions: &[Action],
    wanted: &[ExecPath],
    config: &ExecConfig,
) -> Result<Vec<Foreseen>, ExecError> {
    let graph = build_graph(actions, wanted)?;
    let stat = StatCache::load(
        config.cache_dir.join("stat_cache"),
        config.exec_root.clone(),
    );
    let log = IngredientLog::new(&config.cache_dir);
    let discovered = DiscoveredInputs::new(&config.cache_dir);
    let sets = SetDigests::default();
    let base = base_environment(&config.action_env);
    let mut digests: Vec<Option<Vec<Digest>>> = vec![None; actions.len()];
    let mut waiting = graph.waiting_for.clone();
    let mut ready: VecDeque<usize> = graph
        .needed
        .iter()
        .copied()
        .filter(|&i| waiting[i] == 0)
        .collect();
    let mut foreseen = Vec::new();
    while let Some(i) = ready.pop_front() {
        let action = &actions[i];
        let mut inputs: Vec<(&str, Digest)> = Vec::new();
        let mut verdict = None;
        // Every input, its sets' files too (the sets' sources are not in the graph).
        let flat = action.inputs.flatten();
        let mut all: Vec<(&str, Producer)> = graph.inputs[i].clone();
        all.extend(
            flat.iter()
                .map(|p| (p.as_str(), graph.producers.get(p.as_str()).copied())),
        );
        all.sort_unstable();
        all.dedup();
        for &(path, producer) in &all {
            let digest = match producer {
                Some((p, k)) => match digests[p].as_ref().and_then(|d| d.get(k)) {
                    Some(d) => *d,
                    None => {
                        verdict = Some(Verdict::AfterInput {
                            path: path.to_owned(),
                            producer: actions[p].owner.clone(),
                        });
                        break;
                    }
                },
                None => match source_dir::digest_source_input(&stat, path) {
                    Ok(d) => d,
                    Err(e) => {
                        let problem = match e {
                            source_dir::InputError::Missing(e) => e.to_string(),
                            source_dir::InputError::Directory(e) => e.describe(path),
                        };
                        verdict = Some(Verdict::MissingInput {
                            path: path.to_owned(),
                            problem,
                        });
                        break;
                    }
                },
            };
            inputs.push((path, digest));
        }
        let last = action.outputs.first().and_then(|o| log.last(o));
        let verdict = verdict.unwrap_or_else(|| {
            let env = command_environment(&base, action);
            let key = key_of(action, &env, &inputs, &graph.inputs[i], &sets, &discovered);
            let cacheable = !action.requirements.iter().any(|r| r == "no-cache");
            if cacheable
                && let Some(outputs) =
                    outputs_up_to_date(&stat, &config.exec_root, action, &key, None)
            {
                digests[i] = Some(outputs);
                return Verdict::UpToDate;
            }
            let now = Ingredients::of(action, &env, &inputs, key);
            Verdict::WouldRun(ingredients::changes(
                last.as_ref().map(|r| &r.ingredients),
                &now,
                cacheable,
            ))
        });
        foreseen.push(Foreseen {
            index: i,
            verdict,
            last,
        });
        for &d in &graph.dependents[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.push_back(d);
            }
        }
    }
    Ok(foreseen)
}

/// The key `perform` would compute for `action`, from the digests of all its inputs
/// (`inputs`, sorted); `own` are its own inputs (not its sets'). An action with a
/// dependency file is keyed by what it read last time it ran with the same declared inputs,
/// or by its identity when it never did (it would run).
fn key_of(
    action: &Action,
    env: &std::collections::BTreeMap<String, String>,
    inputs: &[(&str, Digest)],
    own: &[(&str, Producer)],
    sets: &SetDigests,
    discovered: &DiscoveredInputs,
) -> Digest {
    let digest = |path: &str| -> Result<Digest, ()> {
        inputs
            .binary_search_by(|(p, _)| (*p).cmp(path))
            .map(|at| inputs[at].1)
            .map_err(|_| ())
    };
    if let Some(discovery) = &action.discovery {
        let pairs = |paths: &mut dyn Iterator<Item = &str>| -> Option<Vec<(String, Digest)>> {
            paths
                .map(|p| digest(p).ok().map(|d| (p.to_owned(), d)))
                .collect()
        };
        let always =
            pairs(&mut discovery.always_read.iter().map(|p| p.as_str())).unwrap_or_default();
        let always: Vec<(&str, Digest)> = always.iter().map(|(p, d)| (p.as_str(), *d)).collect();
        let identity = discovery::identity(action, env, &always);
        let Some(used) = discovered.get(&identity) else {
            return identity;
        };
        let Some(used) = pairs(&mut used.lines()) else {
            return identity;
        };
        let used: Vec<(&str, Digest)> = used.iter().map(|(p, d)| (p.as_str(), *d)).collect();
        return discovery::key_with_used(action, env, &always, &used);
    }
    let own: Vec<(&str, Digest)> = own
        .iter()
        .filter_map(|(p, _)| digest(p).ok().map(|d| (*p, d)))
        .collect();
    let set_digests: Vec<Digest> = action
        .inputs
        .sets()
        .iter()
        .filter_map(|s| sets.digest(s, &mut |p| digest(p)).ok())
        .collect();
    action_key(action, env, &own, &set_digests)
}

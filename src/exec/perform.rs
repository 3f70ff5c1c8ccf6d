//! Performing one action: the action and its inputs' digests in, its outputs right on disk and
//! their digests out — by finding them already right, by restoring them from the action cache,
//! or by executing the action (a command through the `Runner`, or in-process for writes,
//! template expansions and symlinks) and recording the results in the caches.
//!
//! The cache tiers (local store, `--disk_cache`, `--remote_cache`) are `tiers::CacheTiers`;
//! this file says how an action's outputs are put in place from a tier. Actions with directory
//! outputs (declared, or made by the command where a file was declared) are not cached
//! remotely (they run).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Seek};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::core::command_line;
use crate::core::{Action, ActionKind};
use crate::core::{Digest, ExecPath};
use crate::exec::action_cache::{AcEntry, CachedOutput, RemoteDigest};
use crate::exec::cas::Fetch;
use crate::exec::confine::{ExecRoot, Found, Refused, Want};
use crate::exec::discovery::{self, DiscoveredInputs};
use crate::exec::ingredients::{self, Change, IngredientLog, Ingredients, Record};
use crate::exec::key::action_key;
use crate::exec::progress::Progress;
use crate::exec::remote_outputs::{self, DownloadMode, FetchError, RemoteFile, RemoteFiles};
use crate::exec::runner::{Cancel, Runner, Spawn};
use crate::exec::scheduler::Producer;
use crate::exec::set_digests::SetDigests;
use crate::exec::source_dir;
use crate::exec::stat_cache::{FileStat, OutputRecord, RemoteBlob, StatCache};
use crate::exec::tiers::{Blobs, CacheTiers, Tier};
use crate::exec::tree;
use crate::exec::{ActionFailure, ExecConfig, ExecError};
use crate::remote::{KeyKind, proto};

/// How an action's outputs came to be right.
pub(crate) enum How {
    /// Executed; what it printed.
    Executed(Vec<u8>),
    CacheHit,
    /// Restored from the remote cache.
    RemoteHit,
    UpToDate,
}

pub(crate) struct Done {
    /// One per declared output, in order.
    pub digests: Vec<Digest>,
    pub how: How,
    /// Why it ran (or was restored from a cache): what changed since its last run. Empty
    /// when it was up to date.
    pub changes: Vec<Change>,
}

pub(crate) enum Fail {
    /// `ran` tells whether the action was executed (for the `executed` count).
    Failed {
        failure: Box<ActionFailure>,
        ran: bool,
    },
    /// Cancelled by Ctrl-C; not a failure of the action.
    Interrupted,
}

/// Everything shared by all actions of one build.
pub(crate) struct Ctx<'a> {
    exec_root: &'a Path,
    /// Local store, disk and remote cache, with the stat cache of the exec root.
    tiers: CacheTiers<'a>,
    runner: &'a dyn Runner,
    pub cancel: Cancel,
    progress: &'a dyn Progress,
    /// Fixed variables plus `--action_env`.
    base_env: BTreeMap<String, String>,
    tmp_root: PathBuf,
    /// Empty TMPDIRs of finished commands, for the next ones: creating and deleting a
    /// directory per command costs more than the command on some file systems.
    tmp_pool: Mutex<Vec<tempfile::TempDir>>,
    /// Each action's last run's ingredients, to say why it runs again.
    ingredients: IngredientLog,
    /// What compiles with a dependency file read when they last ran.
    discovered: DiscoveredInputs,
    /// The digest of each input set, made once per build.
    set_digests: SetDigests,
    /// Outputs left in the remote CAS (build without the bytes), when there is a remote.
    remote_files: Option<&'a RemoteFiles>,
}

const NO_CACHE: &str = "no-cache";

/// The files below directory `dir` of the exec root, as sorted exec paths (links are listed,
/// not followed).
fn files_under(exec_root: &Path, dir: &str) -> io::Result<Vec<String>> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(exec_root.join(dir))
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry = entry.map_err(io::Error::other)?;
        if entry.file_type().is_dir() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(exec_root)
            .map_err(io::Error::other)?;
        files.push(rel.to_string_lossy().into_owned());
    }
    files.sort();
    Ok(files)
}

fn output_mode(executable: bool) -> u32 {
    if executable { 0o555 } else { 0o444 }
}

/// A regular file with exactly the permissions we give outputs. Anything else (edited to be
/// writable, replaced by a directory) is not what we put there.
fn mode_ok(stat: &FileStat, executable: bool) -> bool {
    stat.mode & 0o170000 == 0o100000 && stat.mode & 0o7777 == output_mode(executable)
}

impl<'a> Ctx<'a> {
    pub fn new(
        config: &'a ExecConfig,
        runner: &'a dyn Runner,
        progress: &'a dyn Progress,
    ) -> Result<Ctx<'a>, ExecError> {
        let tmp_root = config.cache_dir.join("tmp");
        ensure_dir(&tmp_root).map_err(|e| {
            ExecError::Setup(format!("cannot create '{}': {e}", tmp_root.display()))
        })?;
        let base_env = crate::exec::base_environment(&config.action_env);
        Ok(Ctx {
            exec_root: &config.exec_root,
            tiers: CacheTiers::open(
                KeyKind::Action,
                &config.exec_root,
                &config.cache_dir,
                config.disk_cache.as_deref(),
                config.remote.as_deref(),
            )
            .without_bytes(
                config
                    .remote_files
                    .as_ref()
                    .is_some_and(|f| f.mode() != DownloadMode::All),
            ),
            runner,
            cancel: Cancel::with_journal(&config.cache_dir.join("running")).map_err(|e| {
                ExecError::Setup(format!("cannot write the journal of running commands: {e}"))
            })?,
            progress,
            base_env,
            tmp_root,
            tmp_pool: Mutex::new(Vec::new()),
            ingredients: IngredientLog::new(&config.cache_dir),
            discovered: DiscoveredInputs::new(&config.cache_dir),
            set_digests: SetDigests::default(),
            remote_files: config.remote_files.as_deref(),
        })
    }

    pub fn stat(&self) -> &StatCache {
        self.tiers.stat()
    }

    /// Publishes what the build's compiles read, for the next build.
    pub fn save_discovered(&self) {
        self.discovered.flush();
    }

    fn fail(&self, action: &Action, exit: String, output: String, ran: bool) -> Fail {
        let command = match &action.kind {
            ActionKind::Run { argv } => argv.iter().map(|a| command_line::printable(a)).collect(),
            _ => Vec::new(),
        };
        Fail::Failed {
            failure: Box::new(ActionFailure {
                owner: action.owner.clone(),
                mnemonic: action.mnemonic.clone(),
                command,
                exit,
                output,
            }),
            ran,
        }
    }

    /// The environment of a command, without `TMPDIR` (added per run). The action's own
    /// variables win over `--action_env`, which wins over the fixed ones.
    fn env_for(&self, action: &Action) -> Cow<'_, BTreeMap<String, String>> {
        if action.env.is_empty() || !matches!(action.kind, ActionKind::Run { .. }) {
            return Cow::Borrowed(&self.base_env);
        }
        let mut env = self.base_env.clone();
        for (k, v) in &action.env {
            env.insert(k.clone(), v.clone());
        }
        Cow::Owned(env)
    }

    /// The digest of input `path` of `action`: its producer's result, or (a source) from the
    /// stat cache.
    fn input_digest(
        &self,
        action: &Action,
        path: &str,
        producer: Producer,
        digest_of: &dyn Fn(usize, usize) -> Option<Digest>,
    ) -> Result<Digest, Fail> {
        match producer {
            Some((p, k)) => digest_of(p, k).ok_or_else(|| {
                self.fail(
                    action,
                    format!("missing input file '{path}'"),
                    "its producing action has no result".to_owned(),
                    false,
                )
            }),
            // A source directory's whole content is in the key (Bazel's check is unsound).
            None => source_dir::digest_source_input(self.stat(), path).map_err(|e| match e {
                source_dir::InputError::Directory(e) => {
                    self.fail(action, e.describe(path), String::new(), false)
                }
                source_dir::InputError::Missing(e) => self.fail(
                    action,
                    format!("missing input file '{path}'"),
                    e.to_string(),
                    false,
                ),
            }),
        }
    }

    /// `inputs` (own inputs of the action, each with its producer) with their digests.
    fn own_digests<'p>(
        &self,
        action: &Action,
        inputs: &[(&'p str, Producer)],
        digest_of: &dyn Fn(usize, usize) -> Option<Digest>,
    ) -> Result<Vec<(&'p str, Digest)>, Fail> {
        inputs
            .iter()
            .map(|&(path, producer)| {
                Ok((path, self.input_digest(action, path, producer, digest_of)?))
            })
            .collect()
    }

    /// `paths` (sorted) with their digests.
    fn digests_of<'p>(
        &self,
        action: &Action,
        paths: impl IntoIterator<Item = &'p str>,
        producer_of: &dyn Fn(&str) -> Producer,
        digest_of: &dyn Fn(usize, usize) -> Option<Digest>,
    ) -> Result<Vec<(&'p str, Digest)>, Fail> {
        paths
            .into_iter()
            .map(|path| {
                let producer = producer_of(path);
                Ok((path, self.input_digest(action, path, producer, digest_of)?))
            })
            .collect()
    }

    /// Every input of `action`, its sets' files included, with their digests: what a run
    /// records to explain the next one.
    fn all_input_digests(
        &self,
        action: &Action,
        own: &[(&str, Digest)],
        producer_of: &dyn Fn(&str) -> Producer,
        digest_of: &dyn Fn(usize, usize) -> Option<Digest>,
    ) -> Result<Vec<(String, Digest)>, Fail> {
        if action.inputs.sets().is_empty() {
            return Ok(own.iter().map(|(p, d)| ((*p).to_owned(), *d)).collect());
        }
        let mut all: Vec<(String, Digest)> =
            own.iter().map(|(p, d)| ((*p).to_owned(), *d)).collect();
        for path in action.inputs.flatten() {
            if own
                .binary_search_by(|(p, _)| (*p).cmp(path.as_str()))
                .is_ok()
            {
                continue;
            }
            let digest = self.input_digest(action, &path, producer_of(&path), digest_of)?;
            all.push((path.into_string(), digest));
        }
        all.sort();
        Ok(all)
    }

    /// `command_over` is called once a command this action runs has ended well, before its
    /// outputs are hashed and recorded: the scheduler starts the next command meanwhile.
    pub fn perform(
        &self,
        action: &Action,
        inputs: &[(&str, Producer)],
        producer_of: &dyn Fn(&str) -> Producer,
        digest_of: &dyn Fn(usize, usize) -> Option<Digest>,
        command_over: &dyn Fn(),
    ) -> Result<Done, Fail> {
        let env = self.env_for(action);
        let cacheable = !action.requirements.iter().any(|r| r == NO_CACHE);
        if let Some(discovery) = &action.discovery {
            // Keyed by what is always read, and the declared headers by path only (their
            // digest as sets): not by the thousand headers a compile may include.
            let always = self.digests_of(
                action,
                discovery.always_read.iter().map(ExecPath::as_str),
                producer_of,
                digest_of,
            )?;
            let identity = discovery::identity(action, &env, &always);
            let done = self.perform_discovering(
                action,
                &env,
                &always,
                identity,
                cacheable,
                producer_of,
                digest_of,
                command_over,
            )?;
            if matches!(done.how, How::UpToDate) {
                return Ok(done);
            }
            // Explained by its declared inputs: the headers it read are among them.
            let own = self.own_digests(action, inputs, digest_of)?;
            let all = self.all_input_digests(action, &own, producer_of, digest_of)?;
            let now = Ingredients::of(action, &env, &all, identity);
            return Ok(self.explained(action, now, cacheable, done));
        }
        let own = self.own_digests(action, inputs, digest_of)?;
        let mut file = |path: &str| self.input_digest(action, path, producer_of(path), digest_of);
        let sets = action
            .inputs
            .sets()
            .iter()
            .map(|set| self.set_digests.digest(set, &mut file))
            .collect::<Result<Vec<Digest>, Fail>>()?;
        let key = action_key(action, &env, &own, &sets);
        if cacheable && let Some(digests) = self.up_to_date(action, &key) {
            return Ok(Done {
                digests,
                how: How::UpToDate,
                changes: Vec::new(),
            });
        }
        // Only an action that runs (or is restored) pays for explaining itself.
        let all = self.all_input_digests(action, &own, producer_of, digest_of)?;
        let now = Ingredients::of(action, &env, &all, key);
        let found = match cacheable {
            true => self.lookup_cache(action, &key),
            false => None,
        };
        let done = match found {
            Some(done) => done,
            None => self.execute(action, &|| Ok(key), &env, cacheable, command_over)?,
        };
        Ok(self.explained(action, now, cacheable, done))
    }

    /// `done` with what changed since the action's last run, which is recorded for the
    /// next one.
    fn explained(&self, action: &Action, now: Ingredients, cacheable: bool, done: Done) -> Done {
        let last = action
            .outputs
            .first()
            .and_then(|o| self.ingredients.last(o));
        let changes = ingredients::changes(last.as_ref().map(|r| &r.ingredients), &now, cacheable);
        self.ingredients.record(Record {
            ingredients: now,
            changes: changes.clone(),
        });
        Done { changes, ..done }
    }

    /// The outputs as they are on disk or in a cache tier under `key`, if they are.
    fn cached(&self, action: &Action, key: &Digest) -> Option<Done> {
        if let Some(digests) = self.up_to_date(action, key) {
            return Some(Done {
                digests,
                how: How::UpToDate,
                changes: Vec::new(),
            });
        }
        self.lookup_cache(action, key)
    }
    /// `perform` for an action with a dependency file: keyed by the inputs it read last
    /// time it ran with the same `identity` (its key with the discoverable inputs left out,
    /// which `perform` has computed already: over a compile's thousand declared headers, not
    /// free); after a run, by those its dependency file lists.
    #[allow(clippy::too_many_arguments)]
    fn perform_discovering(
        &self,
        action: &Action,
        env: &BTreeMap<String, String>,
        always: &[(&str, Digest)],
        identity: Digest,
        cacheable: bool,
        producer_of: &dyn Fn(&str) -> Producer,
        digest_of: &dyn Fn(usize, usize) -> Option<Digest>,
        command_over: &dyn Fn(),
    ) -> Result<Done, Fail> {
        let key_of = |used: &mut dyn Iterator<Item = &str>| -> Result<Digest, Fail> {
            let used = self.digests_of(action, used, producer_of, digest_of)?;
            Ok(discovery::key_with_used(action, env, always, &used))
        };
        if cacheable
            && let Some(used) = self.discovered.get(&identity)
            // A header it read last time that is gone: it runs again (and says why).
            && let Ok(key) = key_of(&mut used.lines())
            && let Some(done) = self.cached(action, &key)
        {
            return Ok(done);
        }
        let key_after_run = || {
            // As Bazel: what the compile read must have been declared, sandbox or not.
            if let Some(message) = discovery::undeclared_inclusions(action, self.exec_root) {
                return Err(self.fail(action, message, String::new(), true));
            }
            let used = discovery::used_inputs(action, self.exec_root);
            self.discovered.put(&identity, &used);
            key_of(&mut used.iter().map(String::as_str))
        };
        self.execute(action, &key_after_run, env, cacheable, command_over)
    }

    /// The outputs' digests if every output on disk is what this very action key last put
    /// there; by stat only, nothing is read.
    fn up_to_date(&self, action: &Action, key: &Digest) -> Option<Vec<Digest>> {
        outputs_up_to_date(self.stat(), self.exec_root, action, key, self.remote_files)
    }

    /// Restores the outputs from the first cache tier that has them.
    fn lookup_cache(&self, action: &Action, key: &Digest) -> Option<Done> {
        let with_remote = action.directory_outputs.is_empty();
        let hit = self
            .tiers
            .lookup(key, &action.outputs, with_remote, &mut |entry, blobs| {
                self.restore(entry, blobs)
            })?;
        self.record_outputs(key, &hit.entry);
        Some(Done {
            changes: Vec::new(),
            digests: hit.entry.outputs.iter().map(|o| o.digest).collect(),
            how: match hit.tier {
                Tier::Local | Tier::Disk => How::CacheHit,
                Tier::Remote => How::RemoteHit,
            },
        })
    }

    /// Notes that the outputs of `entry` are now on disk as this action key produced them.
    fn record_outputs(&self, key: &Digest, entry: &AcEntry) {
        for o in &entry.outputs {
            self.stat().set_output_at(
                &o.path,
                OutputRecord {
                    action_key: *key,
                    digest: o.digest,
                    executable: o.executable,
                },
                o.remote.as_ref().map(|r| RemoteBlob {
                    hash: r.hash.clone(),
                    size: r.size,
                }),
            );
        }
    }

    /// Puts each output of `entry` in place from `cas`. `Ok(false)` if a blob is missing or
    /// corrupt (corrupt ones are deleted by the CAS): the action must run.
    fn restore(&self, entry: &AcEntry, blobs: Blobs) -> io::Result<bool> {
        let cas = blobs.0;
        for o in &entry.outputs {
            if let Some(remote) = &o.remote {
                if !self.restore_remote(o, remote)? {
                    return Ok(false);
                }
                continue;
            }
            if o.tree {
                let on_disk = tree::scan(self.stat(), &o.path)
                    .map(|files| Digest::of_bytes(&tree::manifest(&files)));
                if on_disk.ok() != Some(o.digest) {
                    self.stat().forget_output(&o.path);
                    if !tree::restore(cas, self.stat(), &o.path, &o.digest)? {
                        return Ok(false);
                    }
                }
                continue;
            }
            // Already right on disk (judged by the stat cache): no need to read the blob.
            if let Ok((digest, stat)) = self.stat().digest_and_stat(&o.path)
                && digest == o.digest
                && mode_ok(&stat, o.executable)
            {
                continue;
            }
            self.stat().forget_output(&o.path);
            let full = self.exec_root.join(&o.path);
            prepare_output_dir(&full)?;
            if let Ok(m) = fs::symlink_metadata(&full)
                && m.is_dir()
            {
                fs::remove_dir_all(&full)?;
            }
            match cas.materialize(&o.digest, &full, output_mode(o.executable))? {
                Fetch::Done => {
                    let stat = FileStat::of(&full)?;
                    self.stat().record(&o.path, stat, o.digest);
                }
                Fetch::Missing | Fetch::Corrupt => return Ok(false),
            }
        }
        Ok(true)
    }

    /// Puts an output whose bytes are in the remote CAS in place: noted as remote only, or
    /// fetched when every output is downloaded; a file already there with that content is
    /// kept. `Ok(false)` without a remote, or when the server lost the blob: the action runs.
    fn restore_remote(&self, o: &CachedOutput, remote: &RemoteDigest) -> io::Result<bool> {
        let Some(files) = self.remote_files else {
            return Ok(false);
        };
        let digest = proto::Digest {
            hash: remote.hash.clone(),
            size_bytes: remote.size,
        };
        let file = RemoteFile {
            blake3: (o.digest != remote_outputs::identity(&digest)).then_some(o.digest),
            digest,
            executable: o.executable,
        };
        // Fetched by an earlier command: the stat cache knows it by its identity.
        let on_disk = self.stat().digest_and_stat(&o.path);
        if let Ok((digest, stat)) = &on_disk
            && *digest == o.digest
            && mode_ok(stat, o.executable)
        {
            files.note_present(&o.path, file);
            return Ok(true);
        }
        let absent = matches!(&on_disk, Err(e) if e.kind() == io::ErrorKind::NotFound);
        let full = self.exec_root.join(&o.path);
        if !absent
            && let Ok(stat) = FileStat::of(&full)
            && mode_ok(&stat, o.executable)
            && files.matches_on_disk(self.exec_root, &o.path, &file.digest)
        {
            self.stat().record(&o.path, stat, o.digest);
            files.note_present(&o.path, file);
            return Ok(true);
        }
        self.stat().forget_output(&o.path);
        if absent && files.mode() != DownloadMode::All {
            // Nothing to remove and nothing written: no directory is made for it either
            // (a fetch makes it).
            files.note_present(&o.path, file);
            return Ok(true);
        }
        prepare_output_dir(&full)?;
        files.note(self.exec_root, &o.path, file)?;
        if files.mode() == DownloadMode::All {
            match files.fetch(self.exec_root, [o.path.as_str()]) {
                Ok(()) => self.stat().record(&o.path, FileStat::of(&full)?, o.digest),
                Err(FetchError::Lost(_)) => {
                    files.take_lost();
                    return Ok(false);
                }
                Err(FetchError::Failed(e)) => return Err(io::Error::other(e)),
            }
        }
        Ok(true)
    }

    /// Fetches the remote-only files among `inputs`, for an action that runs here. A lost
    /// blob fails the action and takes back the result of the action that made it, so that
    /// one runs again.
    fn fetch_inputs<'i>(
        &self,
        action: &Action,
        inputs: impl IntoIterator<Item = &'i str>,
    ) -> Result<(), Fail> {
        let Some(files) = self.remote_files else {
            return Ok(());
        };
        files.fetch_inputs(self.exec_root, inputs).map_err(|e| {
            self.forget_lost();
            self.fail(
                action,
                "cannot fetch its inputs from the remote cache".to_owned(),
                e.to_string(),
                false,
            )
        })
    }

    /// Takes back the results of the actions whose outputs the remote CAS lost: the next
    /// lookup of their keys misses in every tier, so they run again.
    fn forget_lost(&self) {
        let Some(files) = self.remote_files else {
            return;
        };
        for path in files.take_lost() {
            if let Some(record) = self.stat().output(&path) {
                let _ = self.tiers.forget(&record.action_key);
            }
            self.stat().forget_output(&path);
            files.forget(&path);
        }
    }

    /// Runs `action`; `key` gives the key to cache its outputs under once they are there
    /// (or why they must not be).
    fn execute(
        &self,
        action: &Action,
        key: &dyn Fn() -> Result<Digest, Fail>,
        env: &BTreeMap<String, String>,
        cacheable: bool,
        command_over: &dyn Fn(),
    ) -> Result<Done, Fail> {
        let io_fail =
            |what: &str, e: io::Error| self.fail(action, what.to_owned(), e.to_string(), true);
        self.progress.started(action);
        for out in &action.outputs {
            // Whatever is there now is not the result of this run.
            self.stat().forget_output(out);
            if let Some(files) = self.remote_files {
                files.forget(out);
            }
            let full = self.exec_root.join(out);
            remove_output(&full)
                .and_then(|()| prepare_output_dir(&full))
                .and_then(|()| match is_directory(action, out) {
                    true => fs::create_dir(&full),
                    false => Ok(()),
                })
                .map_err(|e| io_fail(&format!("cannot prepare output '{out}'"), e))?;
        }
        let printed = match &action.kind {
            ActionKind::Run { argv } => {
                // A runner that executes remotely fetches for the commands it runs here.
                if !self.runner.fetches_remote_inputs() {
                    self.fetch_inputs(
                        action,
                        action.inputs.flatten().iter().map(ExecPath::as_str),
                    )?;
                }
                let printed = self.run_command(action, argv, env);
                if printed.is_err() {
                    self.forget_lost();
                }
                let printed = printed?;
                // Only a command that ended well: a failure must reach the scheduler (and
                // stop the build) before anything else starts.
                command_over();
                printed
            }
            ActionKind::Write { content, .. } => {
                let out = self.single_output(action)?;
                fs::write(self.exec_root.join(out), content)
                    .map_err(|e| io_fail(&format!("cannot write '{out}'"), e))?;
                Vec::new()
            }
            ActionKind::ExpandTemplate {
                template,
                substitutions,
                ..
            } => {
                let out = self.single_output(action)?;
                self.fetch_inputs(action, [template.as_str()])?;
                let text = fs::read(self.exec_root.join(template))
                    .map_err(|e| io_fail(&format!("cannot read template '{template}'"), e))?;
                fs::write(self.exec_root.join(out), substitute(text, substitutions))
                    .map_err(|e| io_fail(&format!("cannot write '{out}'"), e))?;
                Vec::new()
            }
            ActionKind::Symlink { target, .. } => {
                // Stored as a copy: the cache stays content-addressed and making the output
                // read-only cannot reach the target.
                let out = self.single_output(action)?;
                self.fetch_inputs(action, [target.as_str()])?;
                fs::copy(self.exec_root.join(target), self.exec_root.join(out))
                    .map_err(|e| io_fail(&format!("cannot copy '{target}' to '{out}'"), e))?;
                Vec::new()
            }
        };

        if let Some(cached) = self.remote_outputs(action) {
            let digests = cached.iter().map(|o| o.digest).collect();
            let key = &key()?;
            if cacheable {
                let entry = AcEntry { outputs: cached };
                self.tiers.store(key, &entry, true).map_err(|e| {
                    self.fail(action, e.what().to_owned(), e.cause().to_string(), true)
                })?;
                self.record_outputs(key, &entry);
            }
            return Ok(Done {
                digests,
                how: How::Executed(printed),
                changes: Vec::new(),
            });
        }
        let mut digests = Vec::with_capacity(action.outputs.len());
        let mut cached = Vec::with_capacity(action.outputs.len());
        let inputs = action.inputs.flatten();
        let root = ExecRoot::new(
            self.exec_root,
            self.exec_root,
            self.exec_root,
            &inputs,
            &action.outputs,
        )
        .map_err(|e| io_fail("cannot read the exec root", e))?;
        for out in &action.outputs {
            let (digest, executable, tree) = self.collect_output(action, &root, out)?;
            digests.push(digest);
            cached.push(CachedOutput {
                path: out.clone(),
                digest,
                executable,
                tree,
                remote: None,
            });
        }
        let key = &key()?;
        if cacheable {
            // A tree is not uploaded to the remote cache (its protocol wants a Tree message).
            let with_remote = cached.iter().all(|o| !o.tree);
            let entry = AcEntry { outputs: cached };
            self.tiers
                .store(key, &entry, with_remote)
                .map_err(|e| self.fail(action, e.what().to_owned(), e.cause().to_string(), true))?;
            self.record_outputs(key, &entry);
        }
        Ok(Done {
            digests,
            how: How::Executed(printed),
            changes: Vec::new(),
        })
    }

    /// The outputs of a command that ran remotely and left every output in the remote CAS
    /// (build without the bytes), keyed by their identities; `None` if any is on disk.
    fn remote_outputs(&self, action: &Action) -> Option<Vec<CachedOutput>> {
        let files = self.remote_files?;
        if !matches!(action.kind, ActionKind::Run { .. }) || action.outputs.is_empty() {
            return None;
        }
        action
            .outputs
            .iter()
            .map(|out| {
                let file = files.remote_only(self.exec_root, out)?;
                Some(CachedOutput {
                    path: out.clone(),
                    digest: file.key_digest(),
                    executable: file.executable,
                    tree: false,
                    remote: Some(RemoteDigest {
                        hash: file.digest.hash,
                        size: file.digest.size_bytes,
                    }),
                })
            })
            .collect()
    }

    fn single_output<'b>(&self, action: &'b Action) -> Result<&'b str, Fail> {
        match action.outputs.as_slice() {
            [one] => Ok(one),
            _ => Err(self.fail(
                action,
                format!(
                    "{} must declare exactly one output, not {}",
                    action.mnemonic,
                    action.outputs.len()
                ),
                String::new(),
                true,
            )),
        }
    }

    /// A private, empty TMPDIR for one command.
    fn take_tmp(&self) -> io::Result<tempfile::TempDir> {
        let reused = self
            .tmp_pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop();
        match reused {
            Some(dir) => Ok(dir),
            None => tempfile::Builder::new()
                .prefix("action-")
                .tempdir_in(&self.tmp_root),
        }
    }

    /// Keeps a TMPDIR the command left empty for the next command; deletes any other (the
    /// command's process group is dead, so nothing writes there any more).
    fn give_back_tmp(&self, dir: tempfile::TempDir) {
        let empty = fs::read_dir(dir.path()).is_ok_and(|mut entries| entries.next().is_none());
        if empty {
            self.tmp_pool
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(dir);
        }
    }

    fn run_command(
        &self,
        action: &Action,
        argv: &[String],
        env: &BTreeMap<String, String>,
    ) -> Result<Vec<u8>, Fail> {
        // Directories on the command line (`Args` with expand_directories) become their
        // files now that the actions before this one have made them.
        let expanded;
        let argv = if command_line::has_expansions(argv) {
            expanded = command_line::expand_argv(argv, &|dir| files_under(self.exec_root, dir))
                .map_err(|e| {
                    self.fail(
                        action,
                        "cannot expand a directory on the command line".to_owned(),
                        e.to_string(),
                        false,
                    )
                })?;
            &expanded[..]
        } else {
            argv
        };
        let tmp = self.take_tmp().map_err(|e| {
            self.fail(
                action,
                "cannot create TMPDIR".to_owned(),
                e.to_string(),
                true,
            )
        })?;
        let mut env = env.clone();
        env.insert(
            "TMPDIR".to_owned(),
            tmp.path().to_string_lossy().into_owned(),
        );
        // A `timeout:SECONDS` tag limits how long the command may run.
        let timeout = action
            .requirements
            .iter()
            .find_map(|r| r.strip_prefix("timeout:")?.parse::<f64>().ok())
            .filter(|s| *s > 0.0)
            .map(std::time::Duration::from_secs_f64);
        self.progress.command(action, argv, &env, self.exec_root);
        let spawn = Spawn {
            action,
            argv,
            env: &env,
            cwd: self.exec_root,
            workdir: None,
            stream: false,
            timeout,
        };
        let result = self.runner.run(&spawn, &self.cancel);
        self.give_back_tmp(tmp);
        if self.cancel.is_cancelled() {
            return Err(Fail::Interrupted);
        }
        match result {
            Err(e) => Err(self.fail(
                action,
                format!("cannot run '{}'", argv.first().map_or("", String::as_str)),
                e.to_string(),
                true,
            )),
            Ok(o) if !o.status.success() => Err(self.fail(
                action,
                o.status.to_string(),
                String::from_utf8_lossy(&o.output).into_owned(),
                true,
            )),
            Ok(o) => Ok(o.output),
        }
    }

    /// Checks one output after execution, makes it read-only, records its stat and digest;
    /// returns the digest, whether it is executable and whether it is a tree. Nothing is
    /// followed on the host: a symlink is resolved hop by hop inside the exec root (to another
    /// output or a declared input) and replaced by a copy; one leading out of the exec root, a
    /// FIFO, socket or device is an error naming the output. A declared file the command made
    /// a directory (Bazel 4 accepts `genrule(outs = ["d"], cmd = "mkdir $@")`) is kept as a
    /// tree, checked like a declared directory.
    fn collect_output(
        &self,
        action: &Action,
        root: &ExecRoot,
        out: &str,
    ) -> Result<(Digest, bool, bool), Fail> {
        let full = self.exec_root.join(out);
        // A refused output is removed: nothing reads through it later.
        let refused_at = |entry: Option<String>, e: Refused| {
            let _ = remove_output(&full);
            let what = match entry {
                None => format!("declared output '{out}'"),
                Some(entry) => format!("'{entry}' in declared directory output '{out}'"),
            };
            self.fail(action, e.describe(&what), String::new(), true)
        };
        let refused = |e: Refused| refused_at(None, e);
        let missing = || refused(Refused::Missing);
        let io_fail = |e: io::Error| {
            self.fail(
                action,
                format!("cannot record output '{out}'"),
                e.to_string(),
                true,
            )
        };
        let meta = fs::symlink_metadata(&full).map_err(|_| missing())?;
        let declared_directory = is_directory(action, out);
        if declared_directory || meta.is_dir() {
            if !meta.is_dir() {
                return Err(self.fail(
                    action,
                    format!("declared directory output '{out}' is not a directory"),
                    String::new(),
                    true,
                ));
            }
            root.tree(out, None).map_err(|(entry, e)| match declared_directory {
                true => refused_at(entry, e),
                false => {
                    let _ = remove_output(&full);
                    let what = match entry {
                        None => format!("declared output '{out}'"),
                        Some(entry) => format!(
                            "'{entry}' in declared output '{out}' (a directory the command made)"
                        ),
                    };
                    self.fail(action, e.describe(&what), String::new(), true)
                }
            })?;
            let files = tree::seal(&full)
                .and_then(|()| tree::scan(self.stat(), out))
                .map_err(io_fail)?;
            return Ok((Digest::of_bytes(&tree::manifest(&files)), false, true));
        }
        let (file, mode) = match root.open(out, Want::File) {
            Ok(Found::File(file, mode)) => (file, mode),
            Ok(Found::Dir(_)) => {
                return Err(refused(Refused::WrongKind("a directory", Vec::new())));
            }
            Err(e) => return Err(refused(e)),
        };
        let mut file = if meta.file_type().is_symlink() {
            // Replace a symlink by a copy of what it leads to: outputs are self-contained
            // files, and chmod below must not reach the target (maybe a source file).
            let mut target = file;
            let dir = full.parent().unwrap_or(self.exec_root);
            let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_fail)?;
            io::copy(&mut target, tmp.as_file_mut()).map_err(io_fail)?;
            fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode & 0o777))
                .map_err(io_fail)?;
            tmp.persist(&full).map_err(|e| io_fail(e.error))?
        } else {
            file
        };
        // Bazel leaves every output of a command r-xr-xr-x, whatever mode the command gave it,
        // so a script a genrule writes without `chmod +x` runs as Bazel's does.
        let executable = match &action.kind {
            ActionKind::Run { .. } => true,
            ActionKind::Write { executable, .. }
            | ActionKind::ExpandTemplate { executable, .. }
            | ActionKind::Symlink { executable, .. } => *executable,
        };
        // Hashed, made read-only and stat'ed through the descriptor the confined open gave
        // (the file at the output path): three path walks fewer per output than by path.
        file.rewind().map_err(io_fail)?;
        let digest = Digest::of_reader(&mut file).map_err(io_fail)?;
        file.set_permissions(fs::Permissions::from_mode(output_mode(executable)))
            .map_err(io_fail)?;
        // After chmod, which changes ctime.
        let stat = FileStat::from_metadata(&file.metadata().map_err(io_fail)?);
        self.stat().record(out, stat, digest);
        Ok((digest, executable, false))
    }
}

/// The outputs' digests if every output on disk is what this very action key last put
/// there; by stat only, nothing is read.
pub(crate) fn outputs_up_to_date(
    stat: &StatCache,
    exec_root: &Path,
    action: &Action,
    key: &Digest,
    remote: Option<&RemoteFiles>,
) -> Option<Vec<Digest>> {
    let mut digests = Vec::with_capacity(action.outputs.len());
    // Outputs this key left in the remote CAS, absent here: up to date without the bytes.
    let mut remote_only = Vec::new();
    for out in &action.outputs {
        let record = stat.output(out)?;
        if record.action_key != *key {
            return None;
        }
        let tree_digest = || {
            let files = tree::scan(stat, out).ok()?;
            Some(Digest::of_bytes(&tree::manifest(&files)))
        };
        if is_directory(action, out) {
            let digest = tree_digest().filter(|d| *d == record.digest)?;
            digests.push(digest);
            continue;
        }
        match stat.digest_and_stat(out) {
            Ok((digest, stat)) => {
                if digest != record.digest || !mode_ok(&stat, record.executable) {
                    return None;
                }
                digests.push(digest);
            }
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    && let Some(files) = remote
                    && files.mode() != DownloadMode::All
                    && let Some(blob) = stat.remote_output(out) =>
            {
                let digest = proto::Digest {
                    hash: blob.hash,
                    size_bytes: blob.size,
                };
                let file = RemoteFile {
                    blake3: (record.digest != remote_outputs::identity(&digest))
                        .then_some(record.digest),
                    digest,
                    executable: record.executable,
                };
                remote_only.push((out.as_str(), file));
                digests.push(record.digest);
            }
            // A declared file the command made a directory: checked as a tree. Only
            // looked for when the file check fails, so the no-op path stats once.
            Err(_) if exec_root.join(out).is_dir() => {
                let digest = tree_digest().filter(|d| *d == record.digest)?;
                digests.push(digest);
            }
            Err(_) => return None,
        }
    }
    if let Some(files) = remote {
        for (out, file) in remote_only {
            files.note_present(out, file);
        }
    }
    Some(digests)
}

fn is_directory(action: &Action, out: &str) -> bool {
    action.directory_outputs.iter().any(|d| d == out)
}

/// Deletes an old output (file, symlink or directory), if any.
fn remove_output(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn prepare_output_dir(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => ensure_dir(dir),
        None => Ok(()),
    }
}

/// `create_dir_all`, which tries `mkdir` first even when the directory exists; a failing
/// `mkdir` is far slower than a `stat` on some file systems, and the directory usually exists.
pub(crate) fn ensure_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir)
}

/// Applies `substitutions` in order, each replacing every occurrence of its key.
fn substitute(mut text: Vec<u8>, substitutions: &[(String, String)]) -> Vec<u8> {
    for (key, value) in substitutions {
        let (key, value) = (key.as_bytes(), value.as_bytes());
        if key.is_empty() {
            continue;
        }
        let mut out = Vec::with_capacity(text.len());
        let mut i = 0;
        while i < text.len() {
            if text[i..].starts_with(key) {
                out.extend_from_slice(value);
                i += key.len();
            } else {
                out.push(text[i]);
                i += 1;
            }
        }
        text = out;
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutions_apply_in_order_to_every_occurrence() {
        let subs = vec![
            ("{A}".to_owned(), "{B}x".to_owned()),
            ("{B}".to_owned(), "y".to_owned()),
            (String::new(), "ignored".to_owned()),
        ];
        assert_eq!(substitute(b"{A}-{A}-{B}".to_vec(), &subs), b"yx-yx-y");
    }

    #[test]
    fn output_modes() {
        let stat = |mode| FileStat {
            size: 0,
            mtime_ns: 0,
            ctime_ns: 0,
            ino: 0,
            mode,
        };
        assert!(mode_ok(&stat(0o100444), false));
        assert!(mode_ok(&stat(0o100555), true));
        assert!(!mode_ok(&stat(0o100644), false));
        assert!(!mode_ok(&stat(0o100444), true));
        assert!(!mode_ok(&stat(0o040555), true));
    }
}

//! What went into an action's key, kept to explain its next run: the action, its command's
//! environment and its inputs' digests in; the `Change`s since the last time it ran (an input
//! file, a variable, an argument, an output, a tag) out, and a record of this run appended to
//! `<cache>/ingredients`.
//!
//! The log is written only when an action runs or is restored from a cache, never by a no-op
//! build, and read only then (or by `forge why`): one line per record, `<checksum> <JSON>`,
//! keyed by the action's first output; the latest record of an output wins. Records gather in
//! memory and are appended in one write when the log is dropped (the end of the build). It is
//! rewritten without the superseded records when they outnumber the live ones.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};

use crate::core::fs::write_atomic;
use crate::core::{Action, ActionKind, Digest, layout};

/// Values longer than this are kept as their digest: a record says *that* they changed.
const LONGEST_KEPT: usize = 256;

/// The parts of an action key that can change from one run to the next.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ingredients {
    pub key: Digest,
    /// For a command its argv; for an in-process action its settings as `name: value`.
    pub command: Vec<String>,
    /// Whether `command` is an argv.
    pub runs_command: bool,
    pub env: BTreeMap<String, String>,
    /// Exec path and content digest of each input, sorted by path.
    pub inputs: Vec<(String, Digest)>,
    pub outputs: Vec<String>,
    pub requirements: Vec<String>,
}

fn kept(value: &str) -> String {
    match value.len() > LONGEST_KEPT {
        true => format!(
            "<{} bytes, blake3 {}>",
            value.len(),
            short(&Digest::of_bytes(value.as_bytes()))
        ),
        false => value.to_owned(),
    }
}

/// The first 12 hex digits of a digest: enough to tell two contents apart in a message.
pub fn short(digest: &Digest) -> String {
    digest.to_hex()[..12].to_owned()
}

impl Ingredients {
    /// A test run's ingredients: its command, environment, program and runfiles with their
    /// digests, and `log`, the test.log path that names the run.
    pub fn of_test(
        argv: &[String],
        env: &BTreeMap<String, String>,
        inputs: &[(String, Digest)],
        log: String,
        key: Digest,
    ) -> Ingredients {
        let mut inputs = inputs.to_vec();
        inputs.sort();
        Ingredients {
            key,
            command: argv.iter().map(|a| kept(a)).collect(),
            runs_command: true,
            env: env.iter().map(|(k, v)| (k.clone(), kept(v))).collect(),
            inputs,
            outputs: vec![log],
            requirements: Vec::new(),
        }
    }

    /// `inputs`: every input of the action (its sets' files too) with its digest, sorted.
    pub fn of<S: AsRef<str>>(
        action: &Action,
        env: &BTreeMap<String, String>,
        inputs: &[(S, Digest)],
        key: Digest,
    ) -> Ingredients {
        let (command, runs_command) = match &action.kind {
            ActionKind::Run { argv } => (argv.iter().map(|a| kept(a)).collect(), true),
            ActionKind::Write {
                content,
                executable,
            } => (
                vec![
                    format!("content: blake3 {}", short(&Digest::of_bytes(content))),
                    format!("executable: {executable}"),
                ],
                false,
            ),
            ActionKind::ExpandTemplate {
                template,
                substitutions,
                executable,
            } => {
                let mut parts = vec![format!("template: {template}")];
                parts.extend(
                    substitutions
                        .iter()
                        .map(|(k, v)| format!("substitution {}: {}", kept(k), kept(v))),
                );
                parts.push(format!("executable: {executable}"));
                (parts, false)
            }
            ActionKind::Symlink { target, executable } => (
                vec![
                    format!("target: {target}"),
                    format!("executable: {executable}"),
                ],
                false,
            ),
        };
        Ingredients {
            key,
            command,
            runs_command,
            env: match runs_command {
                true => env.iter().map(|(k, v)| (k.clone(), kept(v))).collect(),
                false => BTreeMap::new(),
            },
            inputs: inputs
                .iter()
                .filter(|(path, _)| path.as_ref() != layout::VOLATILE_STATUS)
                .map(|(p, d)| (p.as_ref().to_owned(), *d))
                .collect(),
            outputs: action.outputs.iter().map(|o| o.to_string()).collect(),
            requirements: action.requirements.clone(),
        }
    }
}

/// One reason an action ran.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// No earlier run is recorded.
    FirstRun,
    /// Tagged `no-cache`: it runs every time.
    NoCache,
    /// A test whose results are not cached (`--nocache_test_results`, tag `external`).
    TestNotCached,
    /// A test whose inputs are those of its last run, which did not pass (or whose pass is
    /// no longer cached): only a pass is cached.
    NoCachedPass,
    /// The key is the one of its last run: its outputs were missing or changed on disk and
    /// no cache had them.
    OutputsNotOnDisk,
    /// Argument `index` (from 0) of the command, or a setting of an in-process action.
    Command {
        index: usize,
        runs_command: bool,
        old: Option<String>,
        new: Option<String>,
    },
    Env {
        name: String,
        old: Option<String>,
        new: Option<String>,
    },
    Input {
        path: String,
        old: Option<Digest>,
        new: Option<Digest>,
    },
    Outputs {
        old: Vec<String>,
        new: Vec<String>,
    },
    Requirements {
        old: Vec<String>,
        new: Vec<String>,
    },
}

/// What differs between the last run's ingredients and this one's, most telling first
/// (inputs, then the environment, the command, outputs and tags).
pub fn changes(last: Option<&Ingredients>, now: &Ingredients, cacheable: bool) -> Vec<Change> {
    if !cacheable {
        return vec![Change::NoCache];
    }
    let Some(last) = last else {
        return vec![Change::FirstRun];
    };
    if last.key == now.key {
        return vec![Change::OutputsNotOnDisk];
    }
    let mut found = Vec::new();
    let old_inputs: BTreeMap<&str, Digest> =
        last.inputs.iter().map(|(p, d)| (p.as_str(), *d)).collect();
    let new_inputs: BTreeMap<&str, Digest> =
        now.inputs.iter().map(|(p, d)| (p.as_str(), *d)).collect();
    let paths: std::collections::BTreeSet<&str> = old_inputs
        .keys()
        .chain(new_inputs.keys())
        .copied()
        .collect();
    for path in paths {
        let (old, new) = (old_inputs.get(path).copied(), new_inputs.get(path).copied());
        if old != new {
            found.push(Change::Input {
                path: path.to_owned(),
                old,
                new,
            });
        }
    }
    let names: std::collections::BTreeSet<&String> =
        last.env.keys().chain(now.env.keys()).collect();
    for name in names {
        let (old, new) = (last.env.get(name), now.env.get(name));
        if old != new {
            found.push(Change::Env {
                name: name.clone(),
                old: old.cloned(),
                new: new.cloned(),
            });
        }
    }
    for index in 0..last.command.len().max(now.command.len()) {
        let (old, new) = (last.command.get(index), now.command.get(index));
        if old != new {
            found.push(Change::Command {
                index,
                runs_command: now.runs_command,
                old: old.cloned(),
                new: new.cloned(),
            });
        }
    }
    if last.outputs != now.outputs {
        found.push(Change::Outputs {
            old: last.outputs.clone(),
            new: now.outputs.clone(),
        });
    }
    if last.requirements != now.requirements {
        found.push(Change::Requirements {
            old: last.requirements.clone(),
            new: now.requirements.clone(),
        });
    }
    if found.is_empty() {
        // Something forge keys on that a record does not keep (a long value's middle).
        found.push(Change::OutputsNotOnDisk);
    }
    found
}

/// A change in words; `name` turns an input's exec path into what a user calls it.
pub fn describe(change: &Change, name: &dyn Fn(&str) -> String) -> String {
    let quoted = |v: &Option<String>| match v {
        Some(v) => format!("'{v}'"),
        None => "(none)".to_owned(),
    };
    match change {
        Change::FirstRun => {
            "no earlier run of it is recorded (its outputs were never built here)".to_owned()
        }
        Change::NoCache => "it is tagged no-cache, so it runs every time".to_owned(),
        Change::TestNotCached => "test results are not cached here (--nocache_test_results, \
                                  or the test is tagged external)"
            .to_owned(),
        Change::NoCachedPass => "nothing it depends on changed, but no pass with these inputs \
                                 is cached (its last run did not pass, or the cache was \
                                 cleaned)"
            .to_owned(),
        Change::OutputsNotOnDisk => {
            "nothing it depends on changed, but its outputs were missing or modified on disk \
             and no cache had them"
                .to_owned()
        }
        Change::Command {
            index,
            runs_command: true,
            old,
            new,
        } => match (old, new) {
            (Some(_), None) => format!("argument {index} {} was removed", quoted(old)),
            (None, Some(_)) => format!("argument {index} {} was added", quoted(new)),
            _ => format!(
                "argument {index} of its command changed: {} -> {}",
                quoted(old),
                quoted(new)
            ),
        },
        Change::Command { old, new, .. } => {
            format!("its definition changed: {} -> {}", quoted(old), quoted(new))
        }
        Change::Env { name, old, new } => match (old, new) {
            (Some(_), None) => format!(
                "environment variable {name} was unset (was {})",
                quoted(old)
            ),
            (None, Some(_)) => format!("environment variable {name} was set to {}", quoted(new)),
            _ => format!(
                "environment variable {name} changed: {} -> {}",
                quoted(old),
                quoted(new)
            ),
        },
        Change::Input { path, old, new } => match (old, new) {
            (Some(old), Some(new)) => format!(
                "input {} changed: blake3 {} -> {}",
                name(path),
                short(old),
                short(new)
            ),
            (None, _) => format!("{} is a new input", name(path)),
            (_, None) => format!("{} is no longer an input", name(path)),
        },
        Change::Outputs { old, new } => format!(
            "its outputs changed: [{}] -> [{}]",
            old.join(", "),
            new.join(", ")
        ),
        Change::Requirements { old, new } => format!(
            "its execution requirements (tags) changed: [{}] -> [{}]",
            old.join(", "),
            new.join(", ")
        ),
    }
}

/// Why one action of a build ran, for `--explain`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    pub owner: crate::core::Label,
    /// What the action says while it runs (`Executing genrule //pkg:x`).
    pub description: String,
    /// Restored from a cache rather than executed.
    pub restored: bool,
    pub changes: Vec<Change>,
}

/// Names an input for people: a source file by its label and path, a generated file by its
/// path and the target that makes it.
pub struct InputNamer<'a> {
    producers: HashMap<&'a str, &'a crate::core::Label>,
    exec_root: &'a std::path::Path,
}

impl<'a> InputNamer<'a> {
    pub fn new(actions: &'a [Action], exec_root: &'a std::path::Path) -> InputNamer<'a> {
        let producers = actions
            .iter()
            .flat_map(|a| a.outputs.iter().map(move |o| (o.as_str(), &a.owner)))
            .collect();
        InputNamer {
            producers,
            exec_root,
        }
    }

    pub fn name(&self, path: &str) -> String {
        if let Some(owner) = self.producers.get(path) {
            return format!("file {path} (generated by {owner})");
        }
        match super::explain::source_label(self.exec_root, path) {
            Some(label) => format!("file {label} ({path})"),
            None => format!("file {path}"),
        }
    }
}

/// One line of the log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub ingredients: Ingredients,
    /// Why it ran that time.
    pub changes: Vec<Change>,
}

/// The log of the last run's ingredients of each action, by its first output.
pub struct IngredientLog {
    file: PathBuf,
    records: OnceLock<Mutex<HashMap<String, Record>>>,
    writer: Mutex<Option<File>>,
    /// Lines recorded and not yet appended: written in one append when this much gathers,
    /// and when the log is dropped (at the end of the build), not one write per action.
    pending: Mutex<Vec<u8>>,
}

/// How many bytes of records gather before they are appended.
const PENDING_LIMIT: usize = 1 << 20;

impl IngredientLog {
    pub fn new(cache_dir: &std::path::Path) -> IngredientLog {
        IngredientLog {
            file: cache_dir.join("ingredients"),
            records: OnceLock::new(),
            writer: Mutex::new(None),
            pending: Mutex::new(Vec::new()),
        }
    }

    fn records(&self) -> &Mutex<HashMap<String, Record>> {
        self.records.get_or_init(|| {
            let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
            let text = fs::read(&self.file).unwrap_or_default();
            let mut map = HashMap::new();
            let mut lines = 0usize;
            let mut damaged = false;
            for line in text.split_inclusive(|b| *b == b'\n') {
                lines += 1;
                match line.strip_suffix(b"\n").and_then(parse_line) {
                    Some(record) => {
                        let output = record
                            .ingredients
                            .outputs
                            .first()
                            .cloned()
                            .unwrap_or_default();
                        map.insert(output, record);
                    }
                    None => damaged = true,
                }
            }
            // Superseded records outnumber the live ones, or some are damaged: keep the live.
            if (damaged || lines > 2 * map.len() + 64) && self.rewrite(&map).is_ok() {
                *writer = None;
            }
            Mutex::new(map)
        })
    }

    fn rewrite(&self, map: &HashMap<String, Record>) -> io::Result<()> {
        let mut text = Vec::new();
        for record in map.values() {
            text.extend(line_of(record)?);
        }
        write_atomic(&self.file, &text)?;
        Ok(())
    }

    /// The last recorded run of the action whose first output is `output`.
    pub fn last(&self, output: &str) -> Option<Record> {
        let records = self.records().lock().unwrap_or_else(|e| e.into_inner());
        records.get(output).cloned()
    }

    /// Records a run. A record that cannot be written only costs the next explanation.
    pub fn record(&self, record: Record) {
        let Some(output) = record.ingredients.outputs.first().cloned() else {
            return;
        };
        let Ok(line) = line_of(&record) else {
            return;
        };
        self.records()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(output, record);
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.capacity() == 0 {
            // Room for all that gathers before an append: no copying as it grows.
            pending.reserve(PENDING_LIMIT + line.len());
        }
        pending.extend(line);
        if pending.len() >= PENDING_LIMIT {
            let lines = std::mem::take(&mut *pending);
            drop(pending);
            self.append(&lines);
        }
    }

    /// Appends the records not yet written.
    pub fn flush(&self) {
        let lines = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if !lines.is_empty() {
            self.append(&lines);
        }
    }

    fn append(&self, lines: &[u8]) {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if writer.is_none() {
            if let Some(dir) = self.file.parent() {
                let _ = fs::create_dir_all(dir);
            }
            *writer = File::options()
                .create(true)
                .append(true)
                .open(&self.file)
                .ok();
        }
        if let Some(file) = writer.as_mut() {
            let _ = file.write_all(lines);
        }
    }
}

impl Drop for IngredientLog {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Hex digits of a record's checksum.
const CHECKSUM_HEX: usize = 64;

/// `<checksum> <JSON>\n`, serialised in place behind room for the checksum: a fresh
/// output base records every action, and growing and copying each line cost more than
/// writing it.
fn line_of(record: &Record) -> io::Result<Vec<u8>> {
    let mut line = Vec::with_capacity(1024);
    line.resize(CHECKSUM_HEX + 1, b' ');
    serde_json::to_writer(&mut line, record)?;
    let sum = Digest::of_bytes(&line[CHECKSUM_HEX + 1..]).to_hex();
    line[..CHECKSUM_HEX].copy_from_slice(sum.as_bytes());
    line.push(b'\n');
    Ok(line)
}

fn parse_line(line: &[u8]) -> Option<Record> {
    let space = line.iter().position(|b| *b == b' ')?;
    let sum = Digest::from_hex(std::str::from_utf8(&line[..space]).ok()?)?;
    let json = &line[space + 1..];
    (Digest::of_bytes(json) == sum).then(|| serde_json::from_slice(json).ok())?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Label;

    fn genrule(argv: &[&str]) -> Action {
        Action {
            owner: Label::parse("//p:g", &Default::default()).expect("label"),
            mnemonic: "Genrule".into(),
            progress_message: String::new(),
            kind: ActionKind::Run {
                argv: argv.iter().map(|s| s.to_string()).collect(),
            },
            inputs: vec!["p/a.txt".into()].into(),
            outputs: vec!["out/g".into()],
            directory_outputs: vec![],
            scratch_dirs: vec![],
            env: BTreeMap::new(),
            requirements: vec![],
            discovery: None,
        }
    }

    fn key(n: u8) -> Digest {
        Digest([n; 32])
    }

    #[test]
    fn changes_name_the_input_variable_and_argument() {
        let a = Digest::of_bytes(b"a");
        let b = Digest::of_bytes(b"b");
        let mut env = BTreeMap::new();
        env.insert("MODE".to_owned(), "fast".to_owned());
        let last = Ingredients::of(&genrule(&["cat", "x"]), &env, &[("p/a.txt", a)], key(1));
        env.insert("MODE".to_owned(), "slow".to_owned());
        let now = Ingredients::of(&genrule(&["cat", "y"]), &env, &[("p/a.txt", b)], key(2));
        let found = changes(Some(&last), &now, true);
        let name = |p: &str| format!("<{p}>");
        let words: Vec<String> = found.iter().map(|c| describe(c, &name)).collect();
        assert_eq!(
            words,
            [
                format!(
                    "input <p/a.txt> changed: blake3 {} -> {}",
                    short(&a),
                    short(&b)
                ),
                "environment variable MODE changed: 'fast' -> 'slow'".to_owned(),
                "argument 1 of its command changed: 'x' -> 'y'".to_owned(),
            ]
        );
        assert_eq!(changes(None, &now, true), [Change::FirstRun]);
        assert_eq!(changes(Some(&now), &now, true), [Change::OutputsNotOnDisk]);
        assert_eq!(changes(Some(&last), &now, false), [Change::NoCache]);
    }

    #[test]
    fn the_volatile_status_file_is_no_ingredient() {
        let d = Digest::of_bytes(b"t");
        let now = Ingredients::of(
            &genrule(&["x"]),
            &BTreeMap::new(),
            &[(layout::VOLATILE_STATUS, d), ("p/a.txt", d)],
            key(1),
        );
        assert_eq!(now.inputs, [("p/a.txt".to_owned(), d)]);
    }

    #[test]
    fn the_log_keeps_the_latest_record_and_survives_damage() {
        let dir = tempfile::tempdir().expect("temp dir");
        let record = |n: u8| Record {
            ingredients: Ingredients::of::<&str>(&genrule(&["x"]), &BTreeMap::new(), &[], key(n)),
            changes: vec![Change::FirstRun],
        };
        let log = IngredientLog::new(dir.path());
        assert!(log.last("out/g").is_none());
        log.record(record(1));
        log.record(record(2));
        // Gathered, and appended in one go at the end.
        let written = || fs::read(dir.path().join("ingredients")).unwrap_or_default();
        assert!(written().is_empty());
        drop(log);
        assert_eq!(written().iter().filter(|b| **b == b'\n').count(), 2);
        let mut file = File::options()
            .append(true)
            .open(dir.path().join("ingredients"))
            .expect("log");
        file.write_all(b"0000 {torn").expect("write");
        let log = IngredientLog::new(dir.path());
        assert_eq!(log.last("out/g").expect("recorded").ingredients.key, key(2));
    }
}

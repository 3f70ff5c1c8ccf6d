//! Input discovery, as Bazel does it for C++ compiles: an action that declares a dependency
//! file (`.d`, written by the compiler with `-MD -MF`) and the inputs it may leave unread (the
//! headers it may include) is keyed, once it has run, by the inputs the dependency file
//! lists. A change to a declared header the compile did not include runs nothing.
//!
//! In: the action, its inputs' digests, the `.d` file after a run. Out: the key to cache the
//! action under, and a record of what was read under `identity` in a packed store in
//! `<cache_dir>/discovered_inputs/`, where `identity` is the action's key with the
//! discoverable inputs' contents left out (so a header added to or removed from the declared
//! set is a new identity that runs again).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::core::pack::PackStore;
use crate::core::{Action, Digest};

use super::key::action_key;

/// The inputs a dependency file lists: the paths after the first `target:`, with line
/// continuations and escaped spaces read as make writes them.
pub fn parse_dependency_file(text: &str) -> Vec<String> {
    let joined = text.replace("\\\r\n", " ").replace("\\\n", " ");
    let Some((_, deps)) = joined.split_once(": ") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = deps.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&' ') => {
                current.push(' ');
                chars.next();
            }
            c if c.is_whitespace() => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
                // A second rule (`-MP` phony targets) lists nothing new.
                if c == '\n' {
                    break;
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out.into_iter().map(|p| normalize(&p)).collect()
}

/// `a/./b/../c` as `a/c`: the compiler writes a header reached as `"../x.h"` from `pkg/` as
/// `pkg/../x.h`. A relative path leaving its root stays as it is.
fn normalize(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

/// Where each action identity's discovered inputs are kept: one entry per identity in a
/// packed store (`core::pack`) under `<cache_dir>/discovered_inputs/`, so a clean build of
/// thousands of compiles writes a few files rather than one per compile. Shared by the
/// worker threads (the store is `Sync`).
pub struct DiscoveredInputs {
    pack: PackStore,
    /// Where an earlier forge kept one file per identity; removed once this store is written.
    legacy: PathBuf,
    /// How long a record may wait unpublished: what a build killed meanwhile ran is kept up to
    /// then (a record not published is a compile run again).
    publish_every: Duration,
    last_published: Mutex<Instant>,
}

/// How often records are published during a build (besides at its end).
const PUBLISH_EVERY: Duration = Duration::from_secs(10);

impl DiscoveredInputs {
    pub fn new(cache_dir: &Path) -> DiscoveredInputs {
        DiscoveredInputs::publishing_every(cache_dir, PUBLISH_EVERY)
    }

    fn publishing_every(cache_dir: &Path, publish_every: Duration) -> DiscoveredInputs {
        DiscoveredInputs {
            pack: PackStore::new(cache_dir.join("discovered_inputs")),
            legacy: cache_dir.join("discovered"),
            publish_every,
            last_published: Mutex::new(Instant::now()),
        }
    }

    /// The discoverable inputs the last run of `identity` read, if it ran and its record is
    /// intact: one path a line, sorted (a no-op reads one of these per compile: its lines are
    /// used in place). A record put by this build is not seen (nothing looks for it: each
    /// identity is one action, performed once a build).
    pub fn get(&self, identity: &Digest) -> Option<String> {
        String::from_utf8(self.pack.get(identity)?).ok()
    }

    /// Records what a run of `identity` read; only a cache, so a failed write means the
    /// action runs again next time.
    pub fn put(&self, identity: &Digest, used: &BTreeSet<String>) {
        let mut text = String::new();
        for u in used {
            text.push_str(u);
            text.push('\n');
        }
        if self.pack.put(*identity, text.as_bytes()).is_err() {
            return;
        }
        let due = self.last_published.try_lock().is_ok_and(|mut last| {
            let due = last.elapsed() >= self.publish_every;
            if due {
                *last = Instant::now();
            }
            due
        });
        if due {
            self.flush();
        }
    }

    /// Publishes the records put so far for later builds (also done on drop).
    pub fn flush(&self) {
        if self.pack.flush().is_ok() && self.legacy.exists() {
            let _ = crate::core::fs::remove_tree(&self.legacy);
        }
    }
}

/// The identity of an action with a dependency file: its key with the discoverable inputs
/// by path only. `always_read` are the digests of the inputs that are not discoverable
/// (`InputDiscovery::always_read`, sorted). The paths come as the digest of the action's
/// inputs, sets and all, so a header added to or removed from the declared set is a new
/// identity; their contents are not read.
pub fn identity(
    action: &Action,
    env: &std::collections::BTreeMap<String, String>,
    always_read: &[(&str, Digest)],
) -> Digest {
    action_key(action, env, always_read, &[action.inputs.paths_digest()])
}

/// The key of an action with a dependency file once it is known what it read: the inputs
/// that are not discoverable and the discoverable ones it read (`used`), with their digests;
/// both sorted by path. The other declared inputs are left out, as Bazel does.
pub fn key_with_used(
    action: &Action,
    env: &std::collections::BTreeMap<String, String>,
    always_read: &[(&str, Digest)],
    used: &[(&str, Digest)],
) -> Digest {
    let mut kept: Vec<(&str, Digest)> = Vec::with_capacity(always_read.len() + used.len());
    kept.extend_from_slice(always_read);
    kept.extend_from_slice(used);
    kept.sort_unstable_by(|a, b| a.0.cmp(b.0));
    kept.dedup_by(|a, b| a.0 == b.0);
    action_key(action, env, &kept, &[])
}

/// Bazel's "undeclared inclusion" error when the dependency file lists a file of the exec
/// root (a relative path) that is not an input: the sandbox hides such files, but a command
/// run unsandboxed (`--spawn_strategy=local`, `no-sandbox`) would read them unseen.
pub fn undeclared_inclusions(action: &Action, exec_root: &Path) -> Option<String> {
    let discovery = action.discovery.as_ref()?;
    let text = fs::read_to_string(exec_root.join(&discovery.dependency_file)).ok()?;
    let listed = parse_dependency_file(&text);
    let source = listed.first()?.clone();
    let undeclared: Vec<String> = listed
        .iter()
        .filter(|p| !Path::new(p).is_absolute())
        .filter(|p| !action.inputs.contains(p))
        .map(|p| format!("'{p}'"))
        .collect();
    if undeclared.is_empty() {
        return None;
    }
    Some(format!(
        "undeclared inclusion(s) in rule '{}': this rule is missing dependency declarations \
         for the following files included by '{source}':\n  {}",
        action.owner,
        undeclared.join("\n  ")
    ))
}

/// The discoverable inputs of `action` its dependency file (now in `exec_root`) lists; every
/// discoverable input when the file cannot be read, so nothing is left out by mistake.
pub fn used_inputs(action: &Action, exec_root: &Path) -> BTreeSet<String> {
    let Some(discovery) = &action.discovery else {
        return BTreeSet::new();
    };
    let all = || {
        discovery
            .discoverable
            .flatten()
            .into_iter()
            .map(|p| p.into_string())
            .collect()
    };
    let Ok(text) = fs::read_to_string(exec_root.join(&discovery.dependency_file)) else {
        return all();
    };
    let listed = parse_dependency_file(&text);
    if listed.is_empty() {
        return all();
    }
    listed
        .into_iter()
        .filter(|p| discovery.discoverable.contains(p))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn used(paths: &[&str]) -> BTreeSet<String> {
        paths.iter().map(|p| (*p).to_owned()).collect()
    }

    #[test]
    fn records_are_read_by_a_later_build_and_the_old_files_go() {
        let cache = tempfile::tempdir().unwrap();
        let legacy = cache.path().join("discovered");
        fs::create_dir_all(&legacy).unwrap();
        fs::write(legacy.join("ab"), "old\n").unwrap();
        let (a, b) = (Digest::of_bytes(b"a"), Digest::of_bytes(b"b"));
        let store = DiscoveredInputs::new(cache.path());
        // Put from many threads at once, as the workers do.
        std::thread::scope(|s| {
            s.spawn(|| store.put(&a, &used(&["x.h", "y.h"])));
            s.spawn(|| store.put(&b, &used(&[])));
        });
        store.flush();
        assert!(!legacy.exists());
        let later = DiscoveredInputs::new(cache.path());
        assert_eq!(later.get(&a).as_deref(), Some("x.h\ny.h\n"));
        assert_eq!(later.get(&b).as_deref(), Some(""));
        assert_eq!(later.get(&Digest::of_bytes(b"c")), None);
    }

    #[test]
    fn records_are_published_during_a_long_build() {
        let cache = tempfile::tempdir().unwrap();
        let a = Digest::of_bytes(b"a");
        let store = DiscoveredInputs::publishing_every(cache.path(), Duration::ZERO);
        store.put(&a, &used(&["x.h"]));
        // Killed: no flush, no drop.
        std::mem::forget(store);
        let later = DiscoveredInputs::new(cache.path());
        assert_eq!(later.get(&a).as_deref(), Some("x.h\n"));
        // Not yet due: left for the end of the build.
        let store = DiscoveredInputs::new(cache.path());
        store.put(&Digest::of_bytes(b"b"), &used(&["z.h"]));
        std::mem::forget(store);
        assert_eq!(
            DiscoveredInputs::new(cache.path()).get(&Digest::of_bytes(b"b")),
            None
        );
    }

    #[test]
    fn a_dependency_file_lists_its_inputs() {
        let text = "out/a.pic.o: \\\n main/a.cc ./lib/a.h main/../lib/b.h \\\n /usr/include/stdio.h dir/with\\ space.h\n\nlib/a.h:\n";
        assert_eq!(
            parse_dependency_file(text),
            [
                "main/a.cc",
                "lib/a.h",
                "lib/b.h",
                "/usr/include/stdio.h",
                "dir/with space.h"
            ]
        );
        assert!(parse_dependency_file("garbage").is_empty());
    }
}

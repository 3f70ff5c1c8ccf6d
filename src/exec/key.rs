//! Action keys: an action, its effective environment and its inputs' digests in, one BLAKE3
//! `Digest` out. Equal keys mean "running this would produce the same outputs".
//!
//! Every field is length-prefixed and every list count-prefixed, so no two different actions
//! encode to the same byte stream (e.g. argv `["a b"]` vs `["a", "b"]`).

use std::collections::BTreeMap;

use crate::core::Digest;
use crate::core::{Action, ActionKind};

/// Bump when the encoding or the meaning of a cached result changes (e.g. a new fixed
/// environment variable), so old cache entries are never reused.
const FORMAT: &[u8] = b"forge-action-key-v2";

struct Encoder(blake3::Hasher);

impl Encoder {
    fn u64(&mut self, n: u64) {
        self.0.update(&n.to_le_bytes());
    }

    fn len(&mut self, n: usize) {
        self.u64(u64::try_from(n).unwrap_or(u64::MAX));
    }

    fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.0.update(b);
    }

    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    fn bool(&mut self, b: bool) {
        self.0.update(&[u8::from(b)]);
    }
}

/// The key of `action`. `env` is the complete environment a `Run` action gets (minus the
/// per-action `TMPDIR`, which is random and does not affect results); `inputs` are the
/// action's own effective inputs (sorted, unique) with their content digests, `sets` the
/// digests of the input sets it refers to (`SetDigests`: each covers its files' paths and
/// contents), so that a compile's thousand headers cost one digest per set here.
pub fn action_key(
    action: &Action,
    env: &BTreeMap<String, String>,
    inputs: &[(&str, Digest)],
    sets: &[Digest],
) -> Digest {
    let mut e = Encoder(blake3::Hasher::new());
    e.bytes(FORMAT);
    match &action.kind {
        ActionKind::Run { argv } => {
            e.str("run");
            e.len(argv.len());
            for a in argv {
                e.str(a);
            }
            // Only commands see the environment; in-process kinds ignore it, so
            // `--action_env` changes do not invalidate them.
            e.len(env.len());
            for (k, v) in env {
                e.str(k);
                e.str(v);
            }
        }
        ActionKind::Write {
            content,
            executable,
        } => {
            e.str("write");
            e.bytes(content);
            e.bool(*executable);
        }
        ActionKind::ExpandTemplate {
            template,
            substitutions,
            executable,
        } => {
            e.str("expand_template");
            e.str(template);
            e.len(substitutions.len());
            for (k, v) in substitutions {
                e.str(k);
                e.str(v);
            }
            e.bool(*executable);
        }
        ActionKind::Symlink { target, executable } => {
            e.str("symlink");
            e.str(target);
            e.bool(*executable);
        }
    }
    e.len(inputs.len());
    for (path, digest) in inputs {
        e.str(path);
        // The volatile workspace status (`ctx.version_file`) changes at every build (it
        // holds the time); as in Bazel, it alone never makes an action run again.
        if *path == crate::core::layout::VOLATILE_STATUS {
            continue;
        }
        e.0.update(&digest.0);
    }
    e.len(sets.len());
    for set in sets {
        e.0.update(&set.0);
    }
    e.len(action.outputs.len());
    for o in &action.outputs {
        e.str(o);
    }
    e.len(action.directory_outputs.len());
    for o in &action.directory_outputs {
        e.str(o);
    }
    let mut reqs: Vec<&str> = action.requirements.iter().map(String::as_str).collect();
    reqs.sort_unstable();
    reqs.dedup();
    e.len(reqs.len());
    for r in reqs {
        e.str(r);
    }
    Digest(*e.0.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Label;

    fn run(argv: &[&str]) -> Action {
        Action {
            owner: Label {
                repo: String::new(),
                package: "p".into(),
                name: "n".into(),
            },
            mnemonic: "Genrule".into(),
            progress_message: String::new(),
            kind: ActionKind::Run {
                argv: argv.iter().map(|s| s.to_string()).collect(),
            },
            inputs: Default::default(),
            outputs: vec!["out".into()],
            env: BTreeMap::new(),
            requirements: vec![],
            directory_outputs: vec![],
            scratch_dirs: vec![],
            discovery: None,
        }
    }

    #[test]
    fn every_field_matters_and_encoding_is_unambiguous() {
        let env = BTreeMap::new();
        let d1 = Digest::of_bytes(b"1");
        let d2 = Digest::of_bytes(b"2");
        let base = action_key(&run(&["a", "b"]), &env, &[("in", d1)], &[]);
        assert_eq!(
            base,
            action_key(&run(&["a", "b"]), &env, &[("in", d1)], &[])
        );
        assert_ne!(base, action_key(&run(&["a b"]), &env, &[("in", d1)], &[]));
        assert_ne!(base, action_key(&run(&["ab"]), &env, &[("in", d1)], &[]));
        assert_ne!(
            base,
            action_key(&run(&["a", "b"]), &env, &[("in", d2)], &[])
        );
        assert_ne!(
            base,
            action_key(&run(&["a", "b"]), &env, &[("in2", d1)], &[])
        );
        let mut env2 = BTreeMap::new();
        env2.insert("K".to_owned(), "V".to_owned());
        assert_ne!(
            base,
            action_key(&run(&["a", "b"]), &env2, &[("in", d1)], &[])
        );
        let mut outs = run(&["a", "b"]);
        outs.outputs = vec!["other".into()];
        assert_ne!(base, action_key(&outs, &env, &[("in", d1)], &[]));
        let mut reqs = run(&["a", "b"]);
        reqs.requirements = vec!["no-sandbox".into()];
        assert_ne!(base, action_key(&reqs, &env, &[("in", d1)], &[]));
        // The owner and progress message are not part of what the action computes.
        let mut owner = run(&["a", "b"]);
        owner.owner.name = "other".into();
        owner.progress_message = "hello".into();
        assert_eq!(base, action_key(&owner, &env, &[("in", d1)], &[]));

        let write = |content: &[u8], executable| {
            let mut a = run(&[]);
            a.kind = ActionKind::Write {
                content: content.to_vec(),
                executable,
            };
            a
        };
        let w = action_key(&write(b"x", false), &env, &[], &[]);
        assert_ne!(w, action_key(&write(b"x", true), &env, &[], &[]));
        assert_ne!(w, action_key(&write(b"y", false), &env, &[], &[]));
        // The environment does not affect in-process kinds.
        assert_eq!(w, action_key(&write(b"x", false), &env2, &[], &[]));
    }

    #[test]
    fn the_volatile_status_file_alone_never_changes_a_key() {
        let action = run(&["stamp"]);
        let env = BTreeMap::new();
        let key = |volatile: &[u8], stable: &[u8]| {
            action_key(
                &action,
                &env,
                &[
                    (crate::core::layout::STABLE_STATUS, Digest::of_bytes(stable)),
                    (
                        crate::core::layout::VOLATILE_STATUS,
                        Digest::of_bytes(volatile),
                    ),
                ],
                &[],
            )
        };
        assert_eq!(
            key(b"BUILD_TIMESTAMP 1", b"s"),
            key(b"BUILD_TIMESTAMP 2", b"s")
        );
        assert_ne!(
            key(b"BUILD_TIMESTAMP 1", b"s"),
            key(b"BUILD_TIMESTAMP 1", b"t")
        );
    }
}

//! The digests of input sets: a set and the digest of each of its files (from the stat
//! cache, or the result of the action producing it) in; one digest per set out, covering
//! its files' paths and contents and its children's digests, made once per build however
//! many actions refer to the set.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::core::{Digest, InputSet, layout};

/// Each set's digest, by identity, for one build.
#[derive(Default)]
pub(crate) struct SetDigests {
    made: Mutex<HashMap<usize, Digest>>,
}

fn id(set: &Arc<InputSet>) -> usize {
    Arc::as_ptr(set) as usize
}

impl SetDigests {
    fn known(&self, set: &Arc<InputSet>) -> Option<Digest> {
        self.made
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id(set))
            .copied()
    }

    /// The digest of `set`, its files digested by `file` (the first error stops it). The
    /// sets below it are made first, without recursion; two threads may make the same set
    /// at once, which costs time, not correctness.
    pub fn digest<E>(
        &self,
        set: &Arc<InputSet>,
        file: &mut dyn FnMut(&str) -> Result<Digest, E>,
    ) -> Result<Digest, E> {
        if let Some(d) = self.known(set) {
            return Ok(d);
        }
        let mut stack: Vec<(&Arc<InputSet>, usize)> = vec![(set, 0)];
        let mut children: Vec<Digest> = Vec::new();
        while let Some((node, next)) = stack.pop() {
            if let Some(child) = node.children().get(next) {
                stack.push((node, next + 1));
                match self.known(child) {
                    Some(d) => children.push(d),
                    None => stack.push((child, 0)),
                }
                continue;
            }
            // Every child's digest is on top of `children`, in order.
            let own = children.split_off(children.len() - node.children().len());
            let mut h = blake3::Hasher::new();
            h.update(b"input-set-content");
            h.update(&(node.files().len() as u64).to_le_bytes());
            for path in node.files() {
                h.update(&(path.len() as u64).to_le_bytes());
                h.update(path.as_bytes());
                // The volatile workspace status never makes an action run again (key.rs).
                if path.as_str() != layout::VOLATILE_STATUS {
                    h.update(&file(path)?.0);
                }
            }
            h.update(&(own.len() as u64).to_le_bytes());
            for d in &own {
                h.update(&d.0);
            }
            let digest = Digest(*h.finalize().as_bytes());
            self.made
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id(node), digest);
            children.push(digest);
        }
        Ok(children.pop().expect("the set's own digest"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ExecPath;

    #[test]
    fn a_set_digest_covers_every_file_below_and_is_made_once() {
        let low = InputSet::new(vec![ExecPath::new("l/a.h")], vec![]);
        let top = InputSet::new(vec![ExecPath::new("t/t.h")], vec![low.clone()]);
        let mut calls = 0;
        let mut contents = |p: &str| -> Result<Digest, ()> {
            calls += 1;
            Ok(Digest::of_bytes(p.as_bytes()))
        };
        let sets = SetDigests::default();
        let first = sets.digest(&top, &mut contents).unwrap();
        assert_eq!(sets.digest(&top, &mut contents).unwrap(), first);
        assert_eq!(calls, 2);
        // Another content for the lowest header: another digest for every set above it.
        let other = SetDigests::default();
        let changed = other
            .digest(&top, &mut |p: &str| -> Result<Digest, ()> {
                Ok(Digest::of_bytes(if p == "l/a.h" {
                    b"new"
                } else {
                    p.as_bytes()
                }))
            })
            .unwrap();
        assert_ne!(first, changed);
        assert!(
            other.digest(&low, &mut |_| Err("no file")).is_ok(),
            "made with top"
        );
    }
}

//! Actions: the plain-data result of analysis and the input of execution. An action reads
//! files at exec paths (relative to the exec root) and writes files at exec paths; nothing
//! here refers to Starlark, so the plan cache, the executor and the output tree share it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ExecPath, Inputs, Label};

/// What an action does.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ActionKind {
    /// Runs a program: `argv[0]` is an exec path or a program found on the fixed `PATH`.
    /// `ctx.actions.run_shell` becomes `["/bin/bash", "-c", command, "", args...]`.
    Run { argv: Vec<String> },
    /// Writes fixed bytes (`ctx.actions.write`).
    Write {
        /// As a JSON string when it is UTF-8 (a compile database, a script): a list of
        /// numbers would make it four times the size in a stored plan.
        #[serde(with = "text_or_bytes")]
        content: Vec<u8>,
        executable: bool,
    },
    /// Copies `template`'s content into the output with each key replaced by its value, in
    /// order (`ctx.actions.expand_template`).
    ExpandTemplate {
        template: String,
        substitutions: Vec<(String, String)>,
        executable: bool,
    },
    /// The output has the content of `target` (`ctx.actions.symlink`); stored as a copy so
    /// that the cache stays content-addressed.
    Symlink { target: String, executable: bool },
}

/// How a target's `exec_properties` entry appears among its actions' requirements
/// (`exec-property:container-image=docker://...`): remote execution sends them as the
/// action's platform; running here, they mean nothing.
pub const EXEC_PROPERTY_PREFIX: &str = "exec-property:";

/// One unit of work and of caching.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Action {
    /// The target whose analysis created the action.
    pub owner: Label,
    /// A short name for the kind of work: `Genrule`, `FileWrite`, `Symlink`, `Action`.
    pub mnemonic: String,
    /// Shown while the action runs: `Executing genrule //pkg:x`.
    pub progress_message: String,
    pub kind: ActionKind,
    /// Every file the action reads, as exec paths: sources (`pkg/a.txt`, `external/repo/x`)
    /// and outputs of other actions (`forge-out/k8-fastbuild/bin/pkg/gen.txt`), its own and
    /// those of the shared sets it refers to (`Inputs::flatten` lists them all).
    pub inputs: Inputs,
    /// The files the action must create, as exec paths, sorted.
    pub outputs: Vec<ExecPath>,
    /// The outputs that are directories (`declare_directory`): created empty before the
    /// action runs, and cached as a whole tree.
    pub directory_outputs: Vec<ExecPath>,
    /// Directories the command may write that are not outputs (a test's `TEST_TMPDIR`): made
    /// empty and writable in the sandbox, never collected, never cached.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scratch_dirs: Vec<ExecPath>,
    /// Environment variables set by the rule (`env = {...}`), on top of the fixed ones.
    pub env: BTreeMap<String, String>,
    /// Execution requirements from tags (`no-sandbox`, `no-cache`, `local`, `requires-network`).
    pub requirements: Vec<String>,
    /// For a compile: the dependency file that says which of its possible inputs it read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<InputDiscovery>,
}

/// Inputs found out by running: the action's `dependency_file` (one of its outputs, in make's
/// format) lists which of the `discoverable` inputs it read; the others are left out of its
/// cache key, as Bazel does with a C++ compile's `.d` file.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InputDiscovery {
    pub dependency_file: ExecPath,
    /// A subset of the inputs.
    pub discoverable: Inputs,
    /// The inputs that are not discoverable, sorted and unique (a compile's source, the
    /// tool's files): always keyed by their content. Found once, when the action is made, so
    /// that keying a compile does not walk its thousand declared headers.
    pub always_read: Vec<ExecPath>,
}

/// A runfiles tree to lay out next to an executable: `<exe>.runfiles/<runfiles path>` points
/// at each exec path, and `<exe>.runfiles_manifest` / `<exe>.runfiles/MANIFEST` list them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunfilesTree {
    /// The executable's exec path; the tree is `<executable>.runfiles`.
    pub executable: ExecPath,
    /// `(runfiles path, exec path)`, sorted by runfiles path, e.g.
    /// `("my_ws/pkg/data.txt", "pkg/data.txt")`.
    pub entries: Vec<(String, ExecPath)>,
}

/// Bytes as a string when they are UTF-8, else as a list of numbers; either is read back.
mod text_or_bytes {
    use std::fmt;

    use serde::de::{self, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(bytes) {
            Ok(text) => s.serialize_str(text),
            Err(_) => s.collect_seq(bytes),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_any(BytesVisitor)
    }

    struct BytesVisitor;

    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or a list of bytes")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
            Ok(v.as_bytes().to_vec())
        }

        fn visit_string<E: de::Error>(self, v: String) -> Result<Vec<u8>, E> {
            Ok(v.into_bytes())
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
            while let Some(b) = seq.next_element::<u8>()? {
                out.push(b);
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_content_is_text_when_it_can_be_and_reads_back_either_way() {
        for (content, json) in [
            (
                b"[{\"file\": \"a.cc\"}]\n".to_vec(),
                r#""[{\"file\": \"a.cc\"}]\n""#,
            ),
            (vec![0xff, 0x00], "[255,0]"),
        ] {
            let kind = ActionKind::Write {
                content: content.clone(),
                executable: false,
            };
            let text = serde_json::to_string(&kind).unwrap();
            assert!(text.contains(json), "{text}");
            assert_eq!(serde_json::from_str::<ActionKind>(&text).unwrap(), kind);
        }
    }
}

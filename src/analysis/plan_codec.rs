//! A `BuildPlan` in, its binary form (postcard) out, and back: the bulk of a stored plan
//! (`analysis::plan`). Every input set the actions refer to comes first, each once, and the
//! actions refer to them by number, as in the JSON form of `core::input_set`.
//!
//! Binary because the no-op build reads the whole plan: at 50,000 genrules its JSON was
//! 44 MB, read whole before being parsed, a quarter of the no-op's CPU time and a quarter of
//! its peak memory. `Action`'s own serde form leaves empty fields out and reads some fields
//! by what they look like, which a format without field names cannot do, so actions are
//! written and read here through mirrors that spell every field out, in one fixed order.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::de::Error as _;
use serde::ser::{Error as _, SerializeTuple};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::plan::{BuildPlan, PlannedAspect, PlannedTarget};
use crate::core::input_set::InputSet;
use crate::core::{Action, ActionKind, ExecPath, InputDiscovery, Inputs, Label, RunfilesTree};

/// The binary form of `plan`.
#[cfg(test)]
fn encode(plan: &BuildPlan) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    encode_into(plan, &mut bytes).map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// Writes the binary form of `plan` to `out` as it is made: a clean build's plan is tens of
/// megabytes, not held a second time in one buffer.
pub(super) fn encode_into(plan: &BuildPlan, out: &mut impl std::io::Write) -> std::io::Result<()> {
    let roots: Vec<Arc<InputSet>> = plan
        .actions
        .iter()
        .flat_map(|a| {
            let discoverable = a.discovery.as_ref().map(|d| d.discoverable.sets());
            a.inputs
                .sets()
                .iter()
                .chain(discoverable.into_iter().flatten())
        })
        .cloned()
        .collect();
    let sets = InputSet::postorder(&roots);
    let ids: HashMap<*const InputSet, u32> = sets
        .iter()
        .enumerate()
        .map(|(i, s)| (Arc::as_ptr(s), i as u32))
        .collect();
    let input_sets = sets
        .iter()
        .map(|s| {
            let children = s.children().iter().map(|c| ids[&Arc::as_ptr(c)]).collect();
            (s.files(), children)
        })
        .collect();
    let plan_out = PlanOut {
        input_sets,
        actions: ActionsOut {
            actions: &plan.actions,
            ids: &ids,
        },
        wanted: &plan.wanted,
        targets: &plan.targets,
        runfiles: &plan.runfiles,
        packages_loaded: plan.packages_loaded,
        targets_configured: plan.targets_configured,
        tests: &plan.tests,
        bin_dir: &plan.bin_dir,
        testlogs_dir: &plan.testlogs_dir,
        skipped_tests: &plan.skipped_tests,
        aspects: &plan.aspects,
    };
    let mut sink = Sink { out, failed: None };
    match postcard::serialize_with_flavor(&plan_out, &mut sink) {
        Ok(()) => Ok(()),
        Err(e) => Err(sink
            .failed
            .take()
            .unwrap_or_else(|| std::io::Error::other(e.to_string()))),
    }
}

/// Postcard's output going straight to a writer; the first write error is kept for the
/// caller (postcard's own error cannot carry it).
struct Sink<'w, W: std::io::Write> {
    out: &'w mut W,
    failed: Option<std::io::Error>,
}

impl<W: std::io::Write> postcard::ser_flavors::Flavor for &mut Sink<'_, W> {
    type Output = ();

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.try_extend(&[byte])
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.out.write_all(data).map_err(|e| {
            self.failed = Some(e);
            postcard::Error::SerializeBufferFull
        })
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// The plan `bytes` hold, if they are a whole plan in this form and nothing more.
pub(super) fn decode(bytes: &[u8]) -> Option<BuildPlan> {
    let _reading = Reading::start();
    let (plan, rest): (PlanIn, &[u8]) = postcard::take_from_bytes(bytes).ok()?;
    if !rest.is_empty() {
        return None;
    }
    Some(BuildPlan {
        // The same layout (`ActionIn` is a transparent wrapper): the list is reused in place.
        actions: plan.actions.into_iter().map(|a| a.0).collect(),
        wanted: plan.wanted,
        targets: plan.targets,
        runfiles: plan.runfiles,
        packages_loaded: plan.packages_loaded,
        targets_configured: plan.targets_configured,
        tests: plan.tests,
        bin_dir: plan.bin_dir,
        testlogs_dir: plan.testlogs_dir,
        skipped_tests: plan.skipped_tests,
        aspects: plan.aspects,
    })
}

// The two sides below must list the same fields in the same order: postcard writes a struct
// as its fields one after the other, with no names.

#[derive(Serialize)]
struct PlanOut<'a> {
    input_sets: Vec<(&'a [ExecPath], Vec<u32>)>,
    actions: ActionsOut<'a>,
    wanted: &'a [ExecPath],
    targets: &'a BTreeMap<Label, PlannedTarget>,
    runfiles: &'a [RunfilesTree],
    packages_loaded: usize,
    targets_configured: usize,
    tests: &'a [Label],
    bin_dir: &'a str,
    testlogs_dir: &'a str,
    skipped_tests: &'a [Label],
    aspects: &'a [PlannedAspect],
}

#[derive(Deserialize)]
struct PlanIn {
    /// Read first: the actions after it refer to its sets.
    #[allow(dead_code)]
    input_sets: SetsIn,
    actions: Vec<ActionIn>,
    wanted: Vec<ExecPath>,
    #[serde(deserialize_with = "crate::core::sorted_map::deserialize")]
    targets: BTreeMap<Label, PlannedTarget>,
    runfiles: Vec<RunfilesTree>,
    packages_loaded: usize,
    targets_configured: usize,
    tests: Vec<Label>,
    bin_dir: String,
    testlogs_dir: String,
    skipped_tests: Vec<Label>,
    aspects: Vec<PlannedAspect>,
}

thread_local! {
    /// The input sets of the plan being read on this thread.
    static SETS: RefCell<Option<Vec<Arc<InputSet>>>> = const { RefCell::new(None) };
}

/// While a plan is read on this thread: its sets, once read, are where actions find theirs.
struct Reading;

impl Reading {
    fn start() -> Reading {
        SETS.with(|s| *s.borrow_mut() = Some(Vec::new()));
        Reading
    }
}

impl Drop for Reading {
    fn drop(&mut self) {
        SETS.with(|s| *s.borrow_mut() = None);
    }
}

/// The plan's sets, children before parents, installed for the actions read after them.
struct SetsIn;

impl<'de> Deserialize<'de> for SetsIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SetsIn, D::Error> {
        let nodes = Vec::<(Vec<ExecPath>, Vec<u32>)>::deserialize(d)?;
        let mut sets: Vec<Arc<InputSet>> = Vec::with_capacity(nodes.len());
        for (files, children) in nodes {
            let children = pick::<D::Error>(&sets, &children)?;
            sets.push(InputSet::interned(InputSet::new(files, children)));
        }
        SETS.with(|s| *s.borrow_mut() = Some(sets));
        Ok(SetsIn)
    }
}

fn pick<E: serde::de::Error>(sets: &[Arc<InputSet>], ids: &[u32]) -> Result<Vec<Arc<InputSet>>, E> {
    ids.iter()
        .map(|&i| {
            sets.get(i as usize)
                .cloned()
                .ok_or_else(|| E::custom(format!("no input set {i} before it is used")))
        })
        .collect()
}

struct ActionsOut<'a> {
    actions: &'a [Action],
    ids: &'a HashMap<*const InputSet, u32>,
}

impl Serialize for ActionsOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.actions.iter().map(|action| ActionOut {
            action,
            ids: self.ids,
        }))
    }
}

struct ActionOut<'a> {
    action: &'a Action,
    ids: &'a HashMap<*const InputSet, u32>,
}

impl Serialize for ActionOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let a = self.action;
        let inputs = |inputs| set_ids(inputs, self.ids).map_err(S::Error::custom);
        let kind = match &a.kind {
            ActionKind::Run { argv } => KindOut::Run { argv },
            ActionKind::Write {
                content,
                executable,
            } => KindOut::Write {
                content,
                executable: *executable,
            },
            ActionKind::ExpandTemplate {
                template,
                substitutions,
                executable,
            } => KindOut::ExpandTemplate {
                template,
                substitutions,
                executable: *executable,
            },
            ActionKind::Symlink { target, executable } => KindOut::Symlink {
                target,
                executable: *executable,
            },
        };
        let discovery = match &a.discovery {
            Some(d) => Some((&d.dependency_file, inputs(&d.discoverable)?, &d.always_read)),
            None => None,
        };
        let mut t = s.serialize_tuple(11)?;
        t.serialize_element(&a.owner)?;
        t.serialize_element(&a.mnemonic)?;
        t.serialize_element(&a.progress_message)?;
        t.serialize_element(&kind)?;
        t.serialize_element(&inputs(&a.inputs)?)?;
        t.serialize_element(&a.outputs)?;
        t.serialize_element(&a.directory_outputs)?;
        t.serialize_element(&a.scratch_dirs)?;
        t.serialize_element(&a.env)?;
        t.serialize_element(&a.requirements)?;
        t.serialize_element(&discovery)?;
        t.end()
    }
}

/// An action's own input files and its sets, by their numbers in the plan's table.
fn set_ids<'i>(
    inputs: &'i Inputs,
    ids: &HashMap<*const InputSet, u32>,
) -> Result<(&'i [ExecPath], Vec<u32>), &'static str> {
    let sets = inputs
        .sets()
        .iter()
        .map(|set| ids.get(&Arc::as_ptr(set)).copied())
        .collect::<Option<_>>()
        .ok_or("an input set missing from the plan's table")?;
    Ok((inputs.files(), sets))
}

#[derive(Serialize)]
enum KindOut<'a> {
    Run {
        argv: &'a [String],
    },
    Write {
        #[serde(with = "serde_bytes_slice")]
        content: &'a [u8],
        executable: bool,
    },
    ExpandTemplate {
        template: &'a str,
        substitutions: &'a [(String, String)],
        executable: bool,
    },
    Symlink {
        target: &'a str,
        executable: bool,
    },
}

#[derive(Deserialize)]
enum KindIn {
    Run {
        argv: Vec<String>,
    },
    Write {
        #[serde(with = "serde_bytes_slice")]
        content: Vec<u8>,
        executable: bool,
    },
    ExpandTemplate {
        template: String,
        substitutions: Vec<(String, String)>,
        executable: bool,
    },
    Symlink {
        target: String,
        executable: bool,
    },
}

/// Written content as one run of bytes (not a list of numbers).
mod serde_bytes_slice {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &&[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct Bytes;
        impl serde::de::Visitor<'_> for Bytes {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_byte_buf(Bytes)
    }
}

/// An action's own input files and the numbers of its sets in the plan's table.
type WireInputs = (Vec<ExecPath>, Vec<u32>);

/// `InputDiscovery`: the dependency file, the discoverable inputs, what is always read.
type WireDiscovery = (ExecPath, WireInputs, Vec<ExecPath>);

/// The fields of `ActionOut`, in its order.
#[derive(Deserialize)]
struct WireAction {
    owner: Label,
    mnemonic: String,
    progress_message: String,
    kind: KindIn,
    inputs: WireInputs,
    outputs: Vec<ExecPath>,
    directory_outputs: Vec<ExecPath>,
    scratch_dirs: Vec<ExecPath>,
    env: BTreeMap<String, String>,
    requirements: Vec<String>,
    discovery: Option<WireDiscovery>,
}

/// An action read back, its input sets taken from the plan's table.
#[repr(transparent)]
struct ActionIn(Action);

impl<'de> Deserialize<'de> for ActionIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ActionIn, D::Error> {
        let w = WireAction::deserialize(d)?;
        let inputs = |(files, ids): WireInputs| -> Result<Inputs, D::Error> {
            let sets = SETS.with(|s| match s.borrow().as_deref() {
                Some(table) => pick::<D::Error>(table, &ids),
                None => Err(D::Error::custom("an action read outside of a plan")),
            })?;
            Ok(Inputs::new(files, sets))
        };
        let kind = match w.kind {
            KindIn::Run { argv } => ActionKind::Run { argv },
            KindIn::Write {
                content,
                executable,
            } => ActionKind::Write {
                content,
                executable,
            },
            KindIn::ExpandTemplate {
                template,
                substitutions,
                executable,
            } => ActionKind::ExpandTemplate {
                template,
                substitutions,
                executable,
            },
            KindIn::Symlink { target, executable } => ActionKind::Symlink { target, executable },
        };
        let discovery = match w.discovery {
            Some((dependency_file, discoverable, always_read)) => Some(InputDiscovery {
                dependency_file,
                discoverable: inputs(discoverable)?,
                always_read,
            }),
            None => None,
        };
        Ok(ActionIn(Action {
            owner: w.owner,
            mnemonic: w.mnemonic,
            progress_message: w.progress_message,
            kind,
            inputs: inputs(w.inputs)?,
            outputs: w.outputs,
            directory_outputs: w.directory_outputs,
            scratch_dirs: w.scratch_dirs,
            env: w.env,
            requirements: w.requirements,
            discovery,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::TestSpec;

    fn paths(p: &[&str]) -> Vec<ExecPath> {
        p.iter().map(|s| ExecPath::new(*s)).collect()
    }

    fn label(text: &str) -> Label {
        Label::parse(text, &Default::default()).unwrap()
    }

    fn action(owner: &str, kind: ActionKind, inputs: Inputs, outputs: &[&str]) -> Action {
        Action {
            owner: label(owner),
            mnemonic: "Mn".to_owned(),
            progress_message: format!("Making {owner}"),
            kind,
            inputs,
            outputs: paths(outputs),
            directory_outputs: Vec::new(),
            scratch_dirs: Vec::new(),
            env: BTreeMap::new(),
            requirements: Vec::new(),
            discovery: None,
        }
    }

    /// Every kind of action and every optional field, input sets shared between actions
    /// and nested, and the targets, tests and aspects around them.
    fn rich_plan() -> BuildPlan {
        let headers = InputSet::new(paths(&["lib/b.h", "lib/a.h"]), Vec::new());
        let all = InputSet::new(paths(&["top/t.h"]), vec![headers.clone()]);
        let mut compile = action(
            "//top:t",
            ActionKind::Run {
                argv: vec!["cc".to_owned(), "-c".to_owned(), "top/t.cc".to_owned()],
            },
            Inputs::new(paths(&["top/t.cc"]), vec![all.clone()]),
            &["out/t.o"],
        );
        compile.env.insert("LANG".to_owned(), "C".to_owned());
        compile.requirements.push("no-remote".to_owned());
        compile.scratch_dirs = paths(&["out/scratch"]);
        compile.discovery = Some(InputDiscovery {
            dependency_file: ExecPath::new("out/t.d"),
            discoverable: Inputs::new(Vec::new(), vec![all, headers.clone()]),
            always_read: paths(&["top/t.cc"]),
        });
        let mut tree = action(
            "//top:tree",
            ActionKind::Run {
                argv: vec!["mk".to_owned()],
            },
            Inputs::new(Vec::new(), vec![headers]),
            &[],
        );
        tree.directory_outputs = paths(&["out/dir"]);
        let actions = vec![
            compile,
            tree,
            action(
                "//top:bin",
                ActionKind::Write {
                    content: vec![0xff, 0, b'\n'],
                    executable: true,
                },
                Inputs::default(),
                &["out/bin.sh"],
            ),
            action(
                "//top:cfg",
                ActionKind::ExpandTemplate {
                    template: "top/in.tpl".to_owned(),
                    substitutions: vec![("{A}".to_owned(), "a".to_owned())],
                    executable: false,
                },
                Inputs::from(paths(&["top/in.tpl"])),
                &["out/cfg"],
            ),
            action(
                "@ext//:link",
                ActionKind::Symlink {
                    target: "out/bin.sh".to_owned(),
                    executable: true,
                },
                Inputs::from(paths(&["out/bin.sh"])),
                &["out/link"],
            ),
        ];
        let mut targets = BTreeMap::new();
        targets.insert(
            label("//top:t_test"),
            PlannedTarget {
                outputs: paths(&["out/link"]),
                executable: Some(ExecPath::new("out/link")),
                args: vec!["--x".to_owned()],
                is_test: true,
                test: Some(TestSpec {
                    size: "small".to_owned(),
                    timeout: Some("short".to_owned()),
                    flaky: true,
                    shard_count: 2,
                    tags: vec!["manual".to_owned()],
                    env: [("K".to_owned(), "V".to_owned())].into(),
                    runfiles: vec![("ws/link".to_owned(), ExecPath::new("out/link"))],
                    testlogs_dir: "forge-out/k8-fastbuild/testlogs".to_owned(),
                }),
                kind: "sh_test rule".to_owned(),
                tags: vec!["manual".to_owned()],
            },
        );
        targets.insert(label("//top:cfg"), PlannedTarget::default());
        BuildPlan {
            actions,
            wanted: paths(&["out/link", "out/cfg"]),
            targets,
            runfiles: vec![RunfilesTree {
                executable: ExecPath::new("out/link"),
                entries: vec![("ws/top/cfg".to_owned(), ExecPath::new("out/cfg"))],
            }],
            packages_loaded: 3,
            targets_configured: 7,
            tests: vec![label("//top:t_test")],
            bin_dir: "forge-out/k8-fastbuild/bin".to_owned(),
            testlogs_dir: "forge-out/k8-fastbuild/testlogs".to_owned(),
            skipped_tests: vec![label("//top:other_test")],
            aspects: vec![PlannedAspect {
                aspect: "//top:a.bzl%a".to_owned(),
                target: label("//top:t"),
                outputs: paths(&["out/a.txt"]),
            }],
        }
    }

    /// Everything but the actions, compared through their JSON form.
    fn json_of(plan: &BuildPlan) -> serde_json::Value {
        let mut value = serde_json::to_value(BuildPlan {
            actions: Vec::new(),
            ..plan.clone()
        })
        .unwrap();
        value["actions"] = serde_json::to_value(&plan.actions).unwrap();
        value
    }

    #[test]
    fn a_plan_reads_back_equal_with_its_sets_shared() {
        let plan = rich_plan();
        let bytes = encode(&plan).unwrap();
        let back = decode(&bytes).expect("an intact plan decodes");
        assert_eq!(back.actions, plan.actions);
        assert_eq!(json_of(&back), json_of(&plan));
        // A set shared by two actions (and nested in a third) is one set again, read once.
        let [compile, tree, ..] = &back.actions[..] else {
            panic!("actions lost")
        };
        let in_compile = &compile.inputs.sets()[0].children()[0];
        assert!(Arc::ptr_eq(in_compile, &tree.inputs.sets()[0]));
        assert_eq!(
            compile.inputs.flatten(),
            paths(&["lib/a.h", "lib/b.h", "top/t.cc", "top/t.h"])
        );
        // An empty plan too.
        let empty = decode(&encode(&BuildPlan::default()).unwrap()).unwrap();
        assert!(empty.actions.is_empty() && empty.targets.is_empty());
    }

    #[test]
    fn cut_or_extended_bytes_are_not_a_plan() {
        let bytes = encode(&rich_plan()).unwrap();
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_none());
        for end in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode(&bytes[..end]).is_none(), "cut at {end}");
        }
    }
}

//! The build plan: what loading and analysis decided for one command — its actions, the
//! outputs the user asked for, runfiles trees, what to report per target — in; the same plan
//! out of `<output_base>/cache/plans/` on the next command with the same arguments, as long
//! as the files and directories loading read are unchanged (`workspace::fs_deps`).
//!
//! This is what keeps a no-op build fast without a server: instead of evaluating every BUILD
//! file and rule implementation again, forge stats what they read and reuses the plan.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::core::{Action, Digest, ExecPath, Label, RunfilesTree, TestSpec};
use crate::workspace::fs_deps::FsDeps;

/// What a command builds, independent of how it was found out.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BuildPlan {
    /// Every action of every analysed target.
    pub actions: Vec<Action>,
    /// The output paths to build: the requested targets' default outputs and their runfiles.
    pub wanted: Vec<ExecPath>,
    /// The requested targets.
    #[serde(deserialize_with = "crate::core::sorted_map::deserialize")]
    pub targets: BTreeMap<Label, PlannedTarget>,
    /// The runfiles trees of every analysed executable.
    pub runfiles: Vec<RunfilesTree>,
    pub packages_loaded: usize,
    pub targets_configured: usize,
    /// For `forge test`: the test targets the patterns name, test suites expanded.
    pub tests: Vec<Label>,
    /// The top-level configuration's bin and testlogs directories, where `forge-bin` and
    /// `forge-testlogs` point.
    pub bin_dir: String,
    pub testlogs_dir: String,
    /// For `forge test`: the tests a wildcard named that the target platform cannot build
    /// (`target_compatible_with`), reported SKIPPED.
    #[serde(default)]
    pub skipped_tests: Vec<Label>,
    /// `--aspects` applied to the requested targets, in order, as the build reports them.
    #[serde(default)]
    pub aspects: Vec<PlannedAspect>,
}

/// An aspect the command line applied to a requested target (`Aspect <id> of <label>`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PlannedAspect {
    /// `<bzl label>%<name>`.
    pub aspect: String,
    pub target: Label,
    /// The files of the output groups `--output_groups` names that the aspect returned.
    pub outputs: Vec<ExecPath>,
}

/// A requested target, as the commands report or run it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PlannedTarget {
    /// Its default outputs.
    pub outputs: Vec<ExecPath>,
    /// The executable's exec path, for executable rules.
    pub executable: Option<ExecPath>,
    /// The rule's `args`.
    pub args: Vec<String>,
    pub is_test: bool,
    /// For test rules: how to run them.
    pub test: Option<TestSpec>,
    /// Bazel's kind string (`genrule rule`) and the rule's `tags`, for the build event file.
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A test target's `TestSpec`, from its (configured) rule's attributes; the runfiles are
/// filled in later.
pub fn test_spec(attrs: &BTreeMap<String, crate::loading::AttrValue>) -> TestSpec {
    use crate::loading::AttrValue;
    let string = |name: &str| match attrs.get(name) {
        Some(AttrValue::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    TestSpec {
        size: string("size").unwrap_or_else(|| "medium".to_owned()),
        timeout: string("timeout"),
        flaky: matches!(attrs.get("flaky"), Some(AttrValue::Bool(true))),
        shard_count: match attrs.get("shard_count") {
            Some(AttrValue::Int(n)) if *n > 0 => *n as u32,
            _ => 0,
        },
        tags: match attrs.get("tags") {
            Some(AttrValue::StringList(t)) => t.clone(),
            _ => Vec::new(),
        },
        env: match attrs.get("env") {
            Some(AttrValue::StringDict(d)) => d.iter().cloned().collect(),
            _ => BTreeMap::new(),
        },
        runfiles: Vec::new(),
        testlogs_dir: String::new(),
    }
}

/// The first part of a stored plan's body, one line of JSON: what loading read, checked
/// before the rest is decoded, and read by `ops::build_entry` (`stored_deps_json`).
#[derive(Deserialize)]
struct StoredDeps {
    deps: FsDeps,
}

#[derive(Serialize)]
struct StoredDepsRef<'a> {
    deps: &'a FsDeps,
}

/// The first line of a stored plan, before the digest of the rest: a damaged plan (its
/// content no longer matches) is not trusted, the command plans afresh and stores it anew.
/// The body is the line of `StoredDeps`, then the plan in binary (`plan_codec`).
const HEADER: &str = "forge-plan 3 ";

/// The JSON line of what loading read, `{"deps": ...}`, in the bytes of a stored plan's
/// file (not verified: the plan store checks the seal when it loads the plan).
pub fn stored_deps_json(file: &[u8]) -> Option<&[u8]> {
    let body = &file[file.iter().position(|b| *b == b'\n')? + 1..];
    Some(&body[..body.iter().position(|b| *b == b'\n')?])
}

/// What a stored plan's file holds, if it is intact: what loading read (as JSON) and the
/// plan, whether or not the files loading read are still as they were. For tests and
/// tools that compare stored plans.
pub fn read_stored(path: &std::path::Path) -> Option<(serde_json::Value, BuildPlan)> {
    let body = crate::core::sealed::read_sealed(path, HEADER)?;
    let newline = body.iter().position(|b| *b == b'\n')?;
    let deps: serde_json::Value = serde_json::from_slice(&body[..newline]).ok()?;
    Some((deps, super::plan_codec::decode(&body[newline + 1..])?))
}

/// An intact stored plan, decoded only when the caller decides to use it.
pub struct StoredPlan {
    body: crate::core::sealed::Body,
    plan_at: usize,
}

impl StoredPlan {
    pub fn decode(&self) -> Option<BuildPlan> {
        super::plan_codec::decode(&self.body[self.plan_at..])
    }
}

/// Where plans are kept, one file per command identity.
pub struct PlanCache {
    dir: PathBuf,
}

impl PlanCache {
    pub fn new(dir: PathBuf) -> PlanCache {
        PlanCache { dir }
    }

    /// A digest of everything besides the file system that decides the plan: the forge
    /// binary itself (its rules are embedded in it), and the command's arguments.
    pub fn key(parts: &[&str]) -> Digest {
        let mut text = String::new();
        text.push_str(env!("CARGO_PKG_VERSION"));
        if let Ok(exe) = std::env::current_exe()
            && let Ok(m) = fs::metadata(&exe)
        {
            use std::os::unix::fs::MetadataExt;
            text.push_str(&format!(
                "\0{}\0{}\0{}",
                exe.display(),
                m.size(),
                m.mtime_nsec() + m.mtime() * 1_000_000_000
            ));
        }
        for p in parts {
            text.push('\0');
            text.push_str(p);
        }
        Digest::of_bytes(text.as_bytes())
    }

    /// The file the plan under `key` is kept in (`ops::build_entry` shares it).
    pub fn path(&self, key: &Digest) -> PathBuf {
        self.dir.join(key.to_hex())
    }

    /// The plan stored under `key`, if it is intact (its content matches the digest it was
    /// stored with) and what it depended on is unchanged.
    pub fn load(&self, key: &Digest) -> Option<BuildPlan> {
        let (stored, deps) = self.load_any(key)?;
        // Checked before the plan is decoded: a changed workspace costs no decoding.
        if !deps.unchanged() {
            return None;
        }
        stored.decode()
    }

    /// The plan stored under `key`, if it is intact, not yet decoded, and what it depended
    /// on, changed or not: for a caller that can tell whether a change matters
    /// (`ops::plan_cutoff`).
    pub fn load_any(&self, key: &Digest) -> Option<(StoredPlan, FsDeps)> {
        let body = crate::core::sealed::read_sealed(&self.path(key), HEADER)?;
        let newline = body.iter().position(|b| *b == b'\n')?;
        let stored: StoredDeps = serde_json::from_slice(&body[..newline]).ok()?;
        Some((
            StoredPlan {
                body,
                plan_at: newline + 1,
            },
            stored.deps,
        ))
    }

    /// Keeps `plan` for the next command (atomically: a reader sees the old plan or the new).
    /// Written as it is encoded, the seal's digest made on the way and put in its place at
    /// the end.
    pub fn store(&self, key: &Digest, deps: &FsDeps, plan: &BuildPlan) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        let placeholder = crate::core::sealed::header_for(HEADER, &Digest([0; 32]));
        tmp.write_all(placeholder.as_bytes())?;
        let mut body = io::BufWriter::with_capacity(
            1 << 16,
            Sealing {
                file: tmp.as_file_mut(),
                hasher: blake3::Hasher::new(),
            },
        );
        // JSON writes no raw newline: the line ends where the binary plan starts.
        serde_json::to_writer(&mut body, &StoredDepsRef { deps })?;
        body.write_all(b"\n")?;
        super::plan_codec::encode_into(plan, &mut body)?;
        let sealing = body.into_inner().map_err(|e| e.into_error())?;
        let digest = Digest(*sealing.hasher.finalize().as_bytes());
        let header = crate::core::sealed::header_for(HEADER, &digest);
        use std::io::Seek;
        tmp.as_file_mut().seek(io::SeekFrom::Start(0))?;
        tmp.write_all(header.as_bytes())?;
        tmp.persist(self.path(key)).map_err(|e| e.error)?;
        Ok(())
    }
}

/// A stored plan's body on its way to the file, hashed as it goes.
struct Sealing<'f> {
    file: &'f mut fs::File,
    hasher: blake3::Hasher,
}

impl Write for Sealing<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let n = self.file.write(bytes)?;
        self.hasher.update(&bytes[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::fs_deps;

    fn plan_with(targets: usize) -> BuildPlan {
        let mut plan = BuildPlan {
            bin_dir: "forge-out/k8-fastbuild/bin".to_owned(),
            ..BuildPlan::default()
        };
        for i in 0..targets {
            let label = Label::parse(&format!("//p:t{i}"), &Default::default()).unwrap();
            let target = PlannedTarget {
                outputs: vec![ExecPath::new(format!("forge-out/k8-fastbuild/bin/p/t{i}"))],
                kind: "genrule rule".to_owned(),
                ..PlannedTarget::default()
            };
            plan.targets.insert(label, target);
        }
        plan
    }

    #[test]
    fn a_stored_plan_loads_back_while_intact_and_unchanged() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        // Loading found no BUILD file here (noted without the process-wide recorder, which
        // another test may be using).
        let build = dir.path().join("BUILD");
        let mut deps = FsDeps::default();
        fs_deps::missing_into(&build, &mut deps);
        let cache = PlanCache::new(dir.path().join("plans"));
        let key = PlanCache::key(&["build", "//..."]);
        let plan = plan_with(300);
        cache.store(&key, &deps, &plan)?;

        let loaded = cache.load(&key).expect("an intact plan loads");
        assert_eq!(loaded.targets.len(), 300);
        assert_eq!(
            serde_json::to_value(&loaded.targets).unwrap(),
            serde_json::to_value(&plan.targets).unwrap()
        );
        assert_eq!(loaded.bin_dir, plan.bin_dir);
        assert!(cache.load(&PlanCache::key(&["build", "//p:all"])).is_none());

        // Damage anywhere after the header, even past what the parser needs, is refused.
        let path = cache.path(&key);
        let intact = fs::read(&path)?;
        let mut trailing = intact.clone();
        trailing.extend_from_slice(b"  ");
        let mut flipped = intact.clone();
        let middle = HEADER.len() + 65 + (intact.len() - HEADER.len() - 65) / 2;
        flipped[middle] ^= 0x20;
        let mut header = intact.clone();
        header[HEADER.len()] ^= 1;
        for damaged in [
            trailing,
            flipped,
            header,
            intact[..intact.len() - 1].to_vec(),
        ] {
            fs::write(&path, damaged)?;
            assert!(cache.load(&key).is_none());
        }
        // A plan of the JSON format before this one, or a binary part that is not a plan
        // under an intact seal, is not read either.
        let body = &intact[intact.iter().position(|b| *b == b'\n').unwrap() + 1..];
        let json = serde_json::to_vec(&serde_json::json!({"deps": deps, "plan": {}})).unwrap();
        let mut garbage = stored_deps_json(&intact).unwrap().to_vec();
        garbage.extend_from_slice(b"\n\xff\xff\xff");
        for (tag, body) in [
            ("forge-plan 2 ", &json[..]),
            (HEADER, &json),
            (HEADER, &garbage),
        ] {
            fs::write(&path, crate::core::sealed::seal(tag, body))?;
            assert!(cache.load(&key).is_none());
        }
        fs::write(&path, &intact)?;
        assert!(cache.load(&key).is_some());
        // What `ops::build_entry` reads of the file: what loading read, as JSON.
        let read: serde_json::Value = serde_json::from_slice(stored_deps_json(&intact).unwrap())?;
        assert_eq!(read["deps"], serde_json::to_value(&deps)?);
        let (read, whole) = read_stored(&path).expect("an intact plan reads");
        assert_eq!(read["deps"], serde_json::to_value(&deps)?);
        assert_eq!(whole.targets.len(), 300);
        assert!(body.len() > stored_deps_json(&intact).unwrap().len() + 1);

        // What loading saw changed: the plan no longer holds.
        fs::write(&build, "")?;
        assert!(cache.load(&key).is_none());
        Ok(())
    }
}

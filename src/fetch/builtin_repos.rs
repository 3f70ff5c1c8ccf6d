//! Repositories forge provides itself (`@bazel_tools`, `@platforms`, `@local_config_platform`,
//! `@local_config_sh`): their files, compiled
//! into the binary from `prelude/<name>/`, in; their directory
//! `<output_base>/external/<name>/` out. The directory is written whole into a temporary
//! directory and renamed into place, and rewritten only when forge's copy changes: a marker
//! holds the digest of the files, so an up-to-date repository costs one small read.
//!
//! They are real directories, not text served to the loader, because their files are build
//! inputs like any external repository's: `runfiles.bash` has the exec path
//! `external/bazel_tools/tools/bash/runfiles/runfiles.bash` and its place in runfiles trees.

use std::fs;
use std::path::{Path, PathBuf};

use super::{FetchError, remove_any};
use crate::core::fs::IoContext;

/// A repository whose files are compiled into forge.
pub struct BuiltinRepo {
    pub name: &'static str,
    /// `(path inside the repository, content)`.
    pub files: &'static [(&'static str, &'static [u8])],
    /// Files made on this host when the repository is materialised: `(path, maker)`, the
    /// maker given the `external/` directory for a cache of its own.
    pub generated: &'static [(&'static str, MakeFile)],
}

/// Makes a generated file's content, given the `external/` directory.
pub type MakeFile = fn(&Path) -> Vec<u8>;

fn host_cc_bzl(external: &Path) -> Vec<u8> {
    super::host_cc::host_cc_bzl(&external.join("@bazel_tools.host_cc"))
}

/// `(path, content)` of each listed file of `prelude/<repo>/`.
macro_rules! embedded {
    ($repo:literal: $($path:literal),* $(,)?) => {
        &[$((
            $path,
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/prelude/", $repo, "/", $path)),
        )),*]
    };
}

/// Every repository forge provides, by name. A WORKSPACE that declares a repository of the
/// same name wins, as in Bazel, where these are declared before the user's WORKSPACE.
pub const BUILTIN_REPOS: &[BuiltinRepo] = &[
    BuiltinRepo {
        name: "bazel_tools",
        files: embedded!("bazel_tools":
            "WORKSPACE",
            "platforms/BUILD",
            "src/conditions/BUILD",
            "tools/allowlists/function_transition_allowlist/BUILD",
            "tools/bash/runfiles/BUILD",
            "tools/bash/runfiles/runfiles.bash",
            "tools/cpp/BUILD",
            "tools/cpp/cc_toolchain_config.bzl",
            "tools/cpp/runfiles/BUILD",
            "tools/cpp/runfiles/runfiles.cc",
            "tools/cpp/runfiles/runfiles.h",
            "tools/cpp/toolchain_utils.bzl",
            "tools/python/BUILD",
            "tools/python/private_prelude.bzl",
            "tools/python/runfiles/BUILD",
            "tools/python/runfiles/runfiles.py",
            "tools/python/srcs_version.bzl",
            "tools/python/toolchain.bzl",
            "tools/sh/BUILD",
            "tools/sh/sh_toolchain.bzl",
            "tools/test/BUILD",
        ),
        generated: &[("tools/cpp/host_cc.bzl", host_cc_bzl)],
    },
    BuiltinRepo {
        name: "platforms",
        files: embedded!("platforms": "WORKSPACE", "BUILD", "cpu/BUILD", "os/BUILD", "host/BUILD"),
        generated: &[],
    },
    BuiltinRepo {
        name: "local_config_platform",
        files: &[
            (
                "WORKSPACE",
                b"workspace(name = \"local_config_platform\")\n",
            ),
            ("BUILD", HOST_PLATFORM_BUILD.as_bytes()),
            ("constraints.bzl", HOST_CONSTRAINTS_BZL.as_bytes()),
        ],
        generated: &[],
    },
    BuiltinRepo {
        name: "local_config_sh",
        files: &[
            ("WORKSPACE", b"workspace(name = \"local_config_sh\")\n"),
            ("BUILD", LOCAL_SH_BUILD.as_bytes()),
        ],
        generated: &[],
    },
    // Bazel 4 provides @rules_cc itself; a WORKSPACE declaring it gets its own.
    BuiltinRepo {
        name: "rules_cc",
        files: embedded!("rules_cc":
            "WORKSPACE",
            "cc/BUILD",
            "cc/action_names.bzl",
            "cc/defs.bzl",
            "cc/find_cc_toolchain.bzl",
            "cc/toolchain_utils.bzl",
        ),
        generated: &[],
    },
];

/// `@local_config_sh`, Bazel's default shell toolchain, which forge registers after the
/// workspace's own toolchains.
const LOCAL_SH_BUILD: &str = "\
# @local_config_sh: written by forge, the shell forge's actions run.

load(\"@bazel_tools//tools/sh:sh_toolchain.bzl\", \"sh_toolchain\")

package(default_visibility = [\"//visibility:public\"])

sh_toolchain(
    name = \"local_sh\",
    path = \"/bin/bash\",
)

toolchain(
    name = \"local_sh_toolchain\",
    toolchain = \":local_sh\",
    toolchain_type = \"@bazel_tools//tools/sh:toolchain_type\",
)
";

// The machine's OS and CPU as @platforms names them. forge runs on the machine it was built
// for, so the compile-time target is the host Bazel's local_config_platform detects.
#[cfg(target_os = "linux")]
macro_rules! host_os {
    () => {
        "linux"
    };
}
#[cfg(target_os = "macos")]
macro_rules! host_os {
    () => {
        "macos"
    };
}
#[cfg(target_os = "windows")]
macro_rules! host_os {
    () => {
        "windows"
    };
}
#[cfg(target_os = "freebsd")]
macro_rules! host_os {
    () => {
        "freebsd"
    };
}
#[cfg(target_arch = "x86_64")]
macro_rules! host_cpu {
    () => {
        "x86_64"
    };
}
#[cfg(target_arch = "aarch64")]
macro_rules! host_cpu {
    () => {
        "aarch64"
    };
}
#[cfg(target_arch = "x86")]
macro_rules! host_cpu {
    () => {
        "x86_32"
    };
}
#[cfg(target_arch = "arm")]
macro_rules! host_cpu {
    () => {
        "arm"
    };
}
#[cfg(target_arch = "powerpc64")]
macro_rules! host_cpu {
    () => {
        "ppc"
    };
}
#[cfg(target_arch = "s390x")]
macro_rules! host_cpu {
    () => {
        "s390x"
    };
}
#[cfg(target_arch = "riscv64")]
macro_rules! host_cpu {
    () => {
        "riscv64"
    };
}

/// `@local_config_platform//:host`, as Bazel 4 writes it.
const HOST_PLATFORM_BUILD: &str = concat!(
    "# @local_config_platform: written by forge for the machine it runs on.\n\n",
    "package(default_visibility = [\"//visibility:public\"])\n\n",
    "platform(\n",
    "    name = \"host\",\n",
    "    constraint_values = [\n",
    "        \"@platforms//cpu:",
    host_cpu!(),
    "\",\n",
    "        \"@platforms//os:",
    host_os!(),
    "\",\n",
    "    ],\n",
    ")\n",
);

/// `@local_config_platform//:constraints.bzl`: the host's constraint values as a list.
const HOST_CONSTRAINTS_BZL: &str = concat!(
    "HOST_CONSTRAINTS = [\n",
    "    \"@platforms//cpu:",
    host_cpu!(),
    "\",\n",
    "    \"@platforms//os:",
    host_os!(),
    "\",\n",
    "]\n",
);

/// The repository forge provides under `name`, if any.
pub fn builtin_repo(name: &str) -> Option<&'static BuiltinRepo> {
    BUILTIN_REPOS.iter().find(|r| r.name == name)
}

impl BuiltinRepo {
    /// Its packages (the directories holding a BUILD file), sorted, for messages.
    pub fn packages(&self) -> Vec<&'static str> {
        let mut packages: Vec<&'static str> = self
            .files
            .iter()
            .filter_map(|(path, _)| match path.rsplit_once('/') {
                Some((dir, "BUILD")) => Some(dir),
                None if *path == "BUILD" => Some(""),
                _ => None,
            })
            .collect();
        packages.sort_unstable();
        packages
    }

    /// Every file: the embedded ones, then those made on this host.
    fn contents(&self, external: &Path) -> Vec<(&'static str, Vec<u8>)> {
        let mut files: Vec<(&'static str, Vec<u8>)> =
            self.files.iter().map(|(p, c)| (*p, c.to_vec())).collect();
        files.extend(self.generated.iter().map(|(p, make)| (*p, make(external))));
        files
    }

    /// What the directory is made of; equal digests mean equal directories.
    pub fn digest(&self, files: &[(&str, Vec<u8>)]) -> String {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"forge builtin repository\0");
        hasher.update(self.name.as_bytes());
        for (path, content) in files {
            // Lengths first, so no two listings hash the same text.
            hasher.update(&(path.len() as u64).to_le_bytes());
            hasher.update(path.as_bytes());
            hasher.update(&(content.len() as u64).to_le_bytes());
            hasher.update(content);
        }
        hasher.finalize().to_hex().to_string()
    }

    /// Makes `<external>/<name>/` hold exactly this repository's files, unless it already
    /// does (the marker `<external>/@<name>.marker` says so); its path.
    pub fn materialize(&self, external: &Path) -> Result<PathBuf, FetchError> {
        let dir = external.join(self.name);
        let marker_path = external.join(format!("@{}.marker", self.name));
        let files = self.contents(external);
        let digest = self.digest(&files);
        // A link is never ours (a local_repository of the same name made it): rewrite.
        let is_real_dir = fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir());
        if is_real_dir && fs::read_to_string(&marker_path).is_ok_and(|m| m == digest) {
            return Ok(dir);
        }
        fs::create_dir_all(external).at("create directory", external)?;
        let prefix = format!(".tmp-{}-", self.name);
        if let Ok(entries) = fs::read_dir(external) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = remove_any(&e.path());
                }
            }
        }
        let tmp = tempfile::Builder::new()
            .prefix(&prefix)
            .tempdir_in(external)
            .at("create a temporary directory in", external)?;
        for (path, content) in &files {
            let file = tmp.path().join(path);
            if let Some(parent) = file.parent() {
                fs::create_dir_all(parent).at("create directory", parent)?;
            }
            fs::write(&file, content).at("write", &file)?;
        }
        remove_any(&dir).at("remove", &dir)?;
        let made = tmp.keep();
        fs::rename(&made, &dir).at("rename into place", &made)?;
        crate::core::fs::write_atomic(&marker_path, digest.as_bytes())?;
        Ok(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Every file under `prelude/<repo>/` is listed, so none is left out of the binary.
    #[test]
    fn every_file_of_each_directory_is_embedded() {
        // @local_config_platform and @local_config_sh are written by forge, not from prelude/.
        for repo in BUILTIN_REPOS
            .iter()
            .filter(|r| !r.name.starts_with("local_config_"))
        {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("prelude")
                .join(repo.name);
            let on_disk: BTreeSet<String> = walkdir::WalkDir::new(&root)
                .into_iter()
                .flatten()
                .filter(|e| e.file_type().is_file())
                .map(|e| {
                    let rel = e.path().strip_prefix(&root).expect("below the root");
                    rel.to_string_lossy().into_owned()
                })
                .collect();
            let listed: BTreeSet<String> = repo.files.iter().map(|(p, _)| p.to_string()).collect();
            let on_disk: BTreeSet<String> = on_disk
                .into_iter()
                .filter(|p| !repo.generated.iter().any(|(g, _)| g == p))
                .collect();
            assert_eq!(
                on_disk, listed,
                "prelude/{} and its listing differ",
                repo.name
            );
        }
    }

    #[test]
    fn the_host_platform_names_the_machine() {
        let repo = builtin_repo("local_config_platform").unwrap();
        let build = repo.files.iter().find(|(p, _)| *p == "BUILD").unwrap().1;
        let build = String::from_utf8_lossy(build);
        assert!(build.contains("name = \"host\""), "{build}");
        let os = std::env::consts::OS;
        assert!(
            build.contains(&format!("\"@platforms//os:{os}\"")),
            "{build}"
        );
    }

    #[test]
    fn materializes_once_and_again_only_when_changed() {
        let base = tempfile::tempdir().unwrap();
        let external = base.path().join("external");
        let repo = builtin_repo("bazel_tools").unwrap();
        let dir = repo.materialize(&external).unwrap();
        let runfiles = dir.join("tools/bash/runfiles/runfiles.bash");
        assert!(
            fs::read_to_string(&runfiles)
                .unwrap()
                .contains("function rlocation")
        );

        // Up to date: nothing is rewritten, not even a file that was tampered with.
        fs::write(&runfiles, "edited").unwrap();
        repo.materialize(&external).unwrap();
        assert_eq!(fs::read_to_string(&runfiles).unwrap(), "edited");

        // A different marker (another forge's files) makes a fresh copy, dropping extras.
        fs::write(external.join("@bazel_tools.marker"), "older").unwrap();
        fs::write(dir.join("stray"), "x").unwrap();
        repo.materialize(&external).unwrap();
        assert!(
            fs::read_to_string(&runfiles)
                .unwrap()
                .contains("function rlocation")
        );
        assert!(!dir.join("stray").exists());
    }

    #[test]
    fn a_link_left_by_a_local_repository_is_replaced() {
        let base = tempfile::tempdir().unwrap();
        let external = base.path().join("external");
        let repo = builtin_repo("platforms").unwrap();
        repo.materialize(&external).unwrap();
        let elsewhere = base.path().join("elsewhere");
        fs::create_dir_all(&elsewhere).unwrap();
        let dir = external.join("platforms");
        fs::remove_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &dir).unwrap();
        repo.materialize(&external).unwrap();
        assert!(!dir.is_symlink());
        assert!(dir.join("os/BUILD").is_file());
        assert!(elsewhere.read_dir().unwrap().next().is_none());
    }

    #[test]
    fn a_directory_that_cannot_be_made_is_an_error_naming_it() {
        let base = tempfile::tempdir().unwrap();
        // `external` is a file, so nothing can be created below it.
        let external = base.path().join("external");
        fs::write(&external, "not a directory").unwrap();
        let error = builtin_repo("bazel_tools")
            .unwrap()
            .materialize(&external)
            .unwrap_err()
            .to_string();
        assert!(error.contains(&external.display().to_string()), "{error}");
    }

    #[test]
    fn packages_are_the_directories_with_a_build_file() {
        assert_eq!(
            builtin_repo("bazel_tools").unwrap().packages(),
            [
                "platforms",
                "src/conditions",
                "tools/allowlists/function_transition_allowlist",
                "tools/bash/runfiles",
                "tools/cpp",
                "tools/cpp/runfiles",
                "tools/python",
                "tools/python/runfiles",
                "tools/sh",
                "tools/test"
            ]
        );
    }

    #[test]
    fn digests_differ_between_repositories() {
        let digests: BTreeSet<String> = BUILTIN_REPOS
            .iter()
            .map(|r| r.digest(&r.contents(Path::new("/nonexistent"))))
            .collect();
        assert_eq!(digests.len(), BUILTIN_REPOS.len());
    }
}

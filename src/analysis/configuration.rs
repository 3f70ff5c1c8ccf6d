//! Configurations: the build options of one configuration in, an interned `Config` out —
//! cheap to clone, compare and hash, so configured targets are keyed by `(Label, Config)` —
//! with the output directory Bazel 4 gives it (`k8-fastbuild`, `k8-opt`,
//! `k8-fastbuild-ST-<hash>`, `k8-opt-exec-<hash>`, `host`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::cpp_fragment::CppOptions;
use crate::core::{Label, layout};
use crate::loading::AttrValue;

/// Which kind of configuration: the one targets are built in, or a tool's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConfigKind {
    Target,
    /// `cfg = "exec"`: tools, for the exec platform (this machine), optimised.
    Exec,
    /// `cfg = "host"`: Bazel's older tool configuration, directory `host`.
    Host,
}

/// The build options of one configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildOptions {
    /// `fastbuild`, `opt` or `dbg`.
    pub compilation_mode: String,
    /// Bazel's `--cpu`.
    pub cpu: String,
    /// `--define NAME=VALUE`.
    pub defines: BTreeMap<String, String>,
    /// `--stamp`.
    pub stamp: bool,
    /// `--features` (only transitions set it in forge).
    pub features: Vec<String>,
    /// Build settings whose value is not their default (`--//pkg:flag=value`, transitions).
    pub build_settings: BTreeMap<Label, AttrValue>,
    pub kind: ConfigKind,
    /// The options a Starlark transition changed on the way here (Bazel 4's
    /// `affected_by_starlark_transition`): they name the `-ST-<hash>` directory.
    pub transitioned: BTreeSet<String>,
    /// `//command_line_option:allow_analysis_failures`: a target's analysis error becomes
    /// its `AnalysisFailureInfo` (set by analysis tests' transitions).
    pub allow_analysis_failures: bool,
    /// `--copt`, `--cxxopt`, `--conlyopt`, `--linkopt` (`ctx.fragments.cpp`); tools get none,
    /// as Bazel gives them `--host_copt` and friends instead.
    pub cpp: CppOptions,
}

impl BuildOptions {
    /// The command line's configuration: `-c`, `--cpu`, `--define`, `--stamp` and the
    /// build settings it sets.
    pub fn top_level(
        output: &layout::OutputConfiguration,
        defines: BTreeMap<String, String>,
        stamp: bool,
        build_settings: BTreeMap<Label, AttrValue>,
        cpp: CppOptions,
    ) -> BuildOptions {
        BuildOptions {
            compilation_mode: output.compilation_mode.clone(),
            cpu: output.cpu.clone(),
            defines,
            stamp,
            features: cpp.features.clone(),
            build_settings,
            kind: ConfigKind::Target,
            transitioned: BTreeSet::new(),
            allow_analysis_failures: false,
            cpp,
        }
    }

    /// The value of a transitioned option, as the text the `-ST-` hash digests.
    fn option_text(&self, option: &str) -> String {
        match option {
            "compilation_mode" => self.compilation_mode.clone(),
            "cpu" => self.cpu.clone(),
            "stamp" => self.stamp.to_string(),
            "features" => self.features.join(","),
            "minimum_os_version" => self.cpp.minimum_os_version.clone().unwrap_or_default(),
            "allow_analysis_failures" => self.allow_analysis_failures.to_string(),
            "define" => self
                .defines
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
            setting => self
                .build_settings
                .iter()
                .find(|(l, _)| l.to_string() == setting)
                .map(|(_, v)| v.display())
                .unwrap_or_default(),
        }
    }
}

/// An interned configuration: its options, its identity (a digest of the options) and its
/// output directory name. Equality and hashing use the identity only.
#[derive(Clone)]
pub struct Config(Arc<ConfigData>);

struct ConfigData {
    options: BuildOptions,
    id: [u8; 16],
    dir: String,
}

impl Config {
    pub fn new(options: BuildOptions) -> Config {
        let digest = blake3::hash(format!("{options:?}").as_bytes());
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest.as_bytes()[..16]);
        let dir = directory_name(&options);
        Config(Arc::new(ConfigData { options, id, dir }))
    }

    pub fn options(&self) -> &BuildOptions {
        &self.0.options
    }

    /// The output directory's name: `k8-fastbuild`, `k8-fastbuild-ST-0123456789ab`, ...
    pub fn dir_name(&self) -> &str {
        &self.0.dir
    }

    /// `forge-out/<dir>/bin`: where the outputs of targets in this configuration go.
    pub fn bin_dir(&self) -> String {
        format!("{}/{}/bin", layout::OUT_DIR, self.0.dir)
    }

    /// `forge-out/<dir>/testlogs`.
    pub fn testlogs_dir(&self) -> String {
        format!("{}/{}/testlogs", layout::OUT_DIR, self.0.dir)
    }

    /// The short form `cquery` prints after a label: the first 7 hex digits of the identity,
    /// as Bazel prints its configuration checksum; `HOST` for the host configuration.
    pub fn short_id(&self) -> String {
        match self.0.options.kind {
            ConfigKind::Host => "HOST".to_owned(),
            _ => self.hex_id()[..7].to_owned(),
        }
    }

    /// The whole identity in hex.
    pub fn hex_id(&self) -> String {
        self.0.id.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// This configuration with different options.
    pub fn with(&self, change: impl FnOnce(&mut BuildOptions)) -> Config {
        let mut options = self.0.options.clone();
        change(&mut options);
        if options == self.0.options {
            return self.clone();
        }
        Config::new(options)
    }

    /// The exec configuration of tools built for this one: optimised, for the host CPU, in
    /// a directory of its own; build settings and defines carry over, as in Bazel 4. The
    /// options the exec transition sets itself no longer count as transitioned, so the
    /// configurations a transition of `-c` or `--cpu` made share their tools.
    pub fn exec(&self) -> Config {
        self.tool_configuration(ConfigKind::Exec)
    }

    /// The host configuration (`cfg = "host"`).
    pub fn host(&self) -> Config {
        self.tool_configuration(ConfigKind::Host)
    }

    fn tool_configuration(&self, kind: ConfigKind) -> Config {
        self.with(|o| {
            o.kind = kind;
            o.compilation_mode = "opt".to_owned();
            o.cpu = layout::host_cpu();
            o.allow_analysis_failures = false;
            o.cpp = CppOptions {
                features: o.cpp.features.clone(),
                ..CppOptions::default()
            };
            for reset in [
                "compilation_mode",
                "cpu",
                "allow_analysis_failures",
                "minimum_os_version",
            ] {
                o.transitioned.remove(reset);
            }
        })
    }
}

/// The exec platform forge runs tools on, which names the exec directory as Bazel's does.
const EXEC_PLATFORM: &str = "@local_config_platform//:host";

fn directory_name(options: &BuildOptions) -> String {
    let base = match options.kind {
        ConfigKind::Host => "host".to_owned(),
        ConfigKind::Exec => {
            let digest = blake3::hash(EXEC_PLATFORM.as_bytes());
            let hash: String = digest.as_bytes()[..4]
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect();
            format!("{}-{}-exec-{hash}", options.cpu, options.compilation_mode)
        }
        ConfigKind::Target => format!("{}-{}", options.cpu, options.compilation_mode),
    };
    if options.transitioned.is_empty() {
        return base;
    }
    // As Bazel 4: a digest of `option=value` for each option a Starlark transition changed,
    // so two paths to the same options share a directory.
    let text = options
        .transitioned
        .iter()
        .map(|o| format!("{o}={}", options.option_text(o)))
        .collect::<Vec<_>>()
        .join(", ");
    let digest = blake3::hash(text.as_bytes()).to_hex();
    format!("{base}-ST-{}", &digest[..12])
}

impl Default for Config {
    /// The configuration of a command without options.
    fn default() -> Config {
        Config::new(BuildOptions::top_level(
            &layout::OutputConfiguration::default(),
            BTreeMap::new(),
            false,
            BTreeMap::new(),
            Default::default(),
        ))
    }
}

impl PartialEq for Config {
    fn eq(&self, other: &Config) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.id == other.0.id
    }
}

impl Eq for Config {}

impl Hash for Config {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.id.hash(state);
    }
}

impl PartialOrd for Config {
    fn partial_cmp(&self, other: &Config) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Config {
    fn cmp(&self, other: &Config) -> std::cmp::Ordering {
        (&self.0.dir, &self.0.id).cmp(&(&other.0.dir, &other.0.id))
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.dir)
    }
}

/// A target in a configuration: what analysis analyses once.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConfiguredLabel {
    pub label: Label,
    pub config: Config,
}

impl fmt::Display for ConfiguredLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.label, self.config.short_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn top() -> Config {
        Config::new(BuildOptions::top_level(
            &layout::OutputConfiguration {
                cpu: "k8".into(),
                compilation_mode: "fastbuild".into(),
            },
            BTreeMap::new(),
            false,
            BTreeMap::new(),
            Default::default(),
        ))
    }

    #[test]
    fn directories_are_named_as_bazel_names_them() {
        let c = top();
        assert_eq!(c.dir_name(), "k8-fastbuild");
        assert_eq!(c.host().dir_name(), "host");
        let exec = c.exec();
        assert!(
            exec.dir_name()
                .starts_with(&format!("{}-opt-exec-", layout::host_cpu()))
        );
        assert_eq!(
            exec.dir_name().len(),
            format!("{}-opt-exec-", layout::host_cpu()).len() + 8
        );
        let st = c.with(|o| {
            o.compilation_mode = "opt".into();
            o.transitioned.insert("compilation_mode".into());
        });
        assert!(st.dir_name().starts_with("k8-opt-ST-"), "{}", st.dir_name());
        assert_eq!(st.dir_name().len(), "k8-opt-ST-".len() + 12);
    }

    #[test]
    fn equal_options_are_one_configuration() {
        let a = top().with(|o| {
            o.defines.insert("x".into(), "1".into());
        });
        let b = top().with(|o| {
            o.defines.insert("x".into(), "1".into());
        });
        assert_eq!(a, b);
        assert_ne!(a, top());
        assert_eq!(top().with(|_| {}), top());
        assert_eq!(a.exec(), b.exec());
    }

    #[test]
    fn tools_are_shared_unless_a_transition_changed_what_they_keep() {
        let dbg = top().with(|o| {
            o.compilation_mode = "dbg".into();
            o.transitioned.insert("compilation_mode".into());
        });
        assert_ne!(dbg, top());
        assert_eq!(dbg.exec(), top().exec());
        let defined = top().with(|o| {
            o.defines.insert("x".into(), "1".into());
            o.transitioned.insert("define".into());
        });
        assert_ne!(defined.exec(), top().exec());
        assert_ne!(defined.exec().dir_name(), top().exec().dir_name());
        assert!(defined.exec().dir_name().contains("-exec-"));
        assert!(defined.exec().dir_name().contains("-ST-"));
    }
}

//! Where outputs go, as exec paths relative to the exec root, and the names of the
//! convenience links in the workspace. One place, so analysis, execution, `forge info` and
//! the output links agree.

/// The directory under the exec root that holds every output.
pub const OUT_DIR: &str = "forge-out";

/// The file that tells Bazel (and forge) not to follow the symlinks in its directory when a
/// recursive pattern (`//...`) is expanded; forge puts one in its exec root.
pub const DONT_FOLLOW_SYMLINKS: &str =
    "DONT_FOLLOW_SYMLINKS_WHEN_TRAVERSING_THIS_DIRECTORY_VIA_A_RECURSIVE_TARGET_PATTERN";

/// How the convenience links in the workspace are named for this command: `forge-` (so
/// `forge-bin`, `forge-out`, `forge-testlogs`, `forge-<dir>`), `bazel-` when forge runs
/// as `bazel`, or `--symlink_prefix`. `None` (`--symlink_prefix=/`) makes no links.
static LINK_PREFIX: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

/// The prefix forge's own links have when nothing else is asked for.
pub const DEFAULT_LINK_PREFIX: &str = "forge-";

/// Sets this command's link prefix (once: one command runs per process); `/` means none.
pub fn set_link_prefix(prefix: &str) {
    let prefix = (prefix != "/").then(|| prefix.to_owned());
    let _ = LINK_PREFIX.set(prefix);
}

/// This command's link prefix; `None` when no links are made.
pub fn link_prefix() -> Option<&'static str> {
    LINK_PREFIX
        .get_or_init(|| Some(DEFAULT_LINK_PREFIX.to_owned()))
        .as_deref()
}

/// Whether a workspace entry called `name` that is a symlink is one of the convenience
/// links forge or Bazel made (any of `forge-`, `bazel-` or this command's prefix): not a
/// source, so neither linked into the exec root nor counted as a change of the directory.
pub fn is_convenience_link_name(name: &str) -> bool {
    name.starts_with(DEFAULT_LINK_PREFIX)
        || name.starts_with("bazel-")
        || link_prefix().is_some_and(|p| !p.is_empty() && !p.contains('/') && name.starts_with(p))
}

/// The workspace directory this command's links go in, when the prefix names one
/// (`--symlink_prefix=.out/` makes `.out/bin`, as Bazel does).
pub fn link_dir() -> Option<&'static str> {
    link_prefix()?.split_once('/').map(|(dir, _)| dir)
}

/// The command line's options that name the top-level configuration's output directory:
/// `--cpu` and `-c`/`--compilation_mode`. The front end passes them down as a value: to
/// analysis (`analysis::Config` names every configuration's directory), to the plan, `forge
/// info` and the `forge-bin` link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputConfiguration {
    /// Bazel's `--cpu`: `k8` on x86_64 Linux by default.
    pub cpu: String,
    /// `fastbuild`, `opt` or `dbg`.
    pub compilation_mode: String,
}

impl Default for OutputConfiguration {
    /// The host's CPU in fastbuild: Bazel's configuration without flags.
    fn default() -> OutputConfiguration {
        OutputConfiguration {
            cpu: host_cpu(),
            compilation_mode: "fastbuild".to_owned(),
        }
    }
}

/// Bazel's `--cpu` name for this machine: `k8` for x86_64 Linux, `darwin_arm64`, ...
pub fn host_cpu() -> String {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("macos", "aarch64") => "darwin_arm64".to_owned(),
        ("macos", a) => format!("darwin_{a}"),
        ("windows", "x86_64") => "x64_windows".to_owned(),
        (_, "x86_64") => "k8".to_owned(),
        (_, a) => a.to_owned(),
    }
}

/// The compilation modes `-c` accepts, in Bazel's order.
pub const COMPILATION_MODES: [&str; 3] = ["fastbuild", "dbg", "opt"];

impl OutputConfiguration {
    /// The directory name, as Bazel's `<cpu>-<compilation mode>`: `k8-fastbuild`, `k8-opt`.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.cpu, self.compilation_mode)
    }

    /// `forge-out/<config>/bin`: where the top-level targets' outputs go.
    pub fn bin_dir(&self) -> String {
        format!("{OUT_DIR}/{}/bin", self.dir_name())
    }

    /// `forge-out/<config>/testlogs`.
    pub fn testlogs_dir(&self) -> String {
        format!("{OUT_DIR}/{}/testlogs", self.dir_name())
    }
}

/// The workspace status files (`ctx.info_file`, `ctx.version_file`), written before each
/// build's actions run, as Bazel's `bazel-out/stable-status.txt` and `volatile-status.txt`.
pub const STABLE_STATUS: &str = "forge-out/stable-status.txt";
pub const VOLATILE_STATUS: &str = "forge-out/volatile-status.txt";

/// The exec path of a package-relative file in a repository: `pkg/file` for the main
/// repository, `external/<repo>/pkg/file` for others.
pub fn source_path(repo: &str, package: &str, name: &str) -> String {
    let mut p = String::new();
    if !repo.is_empty() {
        p.push_str("external/");
        p.push_str(repo);
        p.push('/');
    }
    if !package.is_empty() {
        p.push_str(package);
        p.push('/');
    }
    p.push_str(name);
    p
}

/// The path of a file relative to its repository's runfiles directory, as `File.short_path`:
/// `pkg/file`, or `../<repo>/pkg/file` for other repositories.
pub fn short_path(repo: &str, package: &str, name: &str) -> String {
    let rel = if package.is_empty() {
        name.to_owned()
    } else {
        format!("{package}/{name}")
    };
    if repo.is_empty() {
        rel
    } else {
        format!("../{repo}/{rel}")
    }
}

/// The bin directory an output's exec path lies under (`forge-out/<config>/bin`), whichever
/// configuration made it.
pub fn bin_root_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix(OUT_DIR)?.strip_prefix('/')?;
    let (config, rest) = rest.split_once('/')?;
    rest.strip_prefix("bin/")?;
    Some(&path[..OUT_DIR.len() + 1 + config.len() + "/bin".len()])
}

/// The configuration directory (`k8-fastbuild`) of an exec path under `forge-out/<config>/`:
/// an output, or a configuration's `bin` or `testlogs` directory itself.
pub fn configuration_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix(OUT_DIR)?.strip_prefix('/')?;
    let config = rest.split('/').next()?;
    (!config.is_empty() && rest.len() > config.len()).then_some(config)
}

/// The `File.short_path` of a file at an exec path: outputs lose `forge-out/<config>/bin/`,
/// other repositories' files become `../<repo>/...`.
pub fn short_from_exec(path: &str) -> String {
    let rel = match bin_root_of(path) {
        Some(root) => &path[root.len() + 1..],
        None => path,
    };
    match rel.strip_prefix("external/") {
        Some(ext) => format!("../{ext}"),
        None => rel.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_of_names_the_directory_under_forge_out() {
        assert_eq!(configuration_of("forge-out/k8-opt/bin"), Some("k8-opt"));
        assert_eq!(
            configuration_of("forge-out/k8-fastbuild-ST-0a1b/bin/pkg/x.txt"),
            Some("k8-fastbuild-ST-0a1b")
        );
        assert_eq!(configuration_of("forge-out/stable-status.txt"), None);
        assert_eq!(configuration_of("pkg/forge-out/k8-opt/bin/x"), None);
    }
}

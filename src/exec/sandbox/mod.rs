//! The sandbox runner: a command and its action in, the command run in its own Linux
//! namespaces (user, mount, pid, network, ipc, uts) out, seeing only its declared inputs —
//! with its outputs copied back into the exec root as if it had run there.
//!
//! Each command gets a root directory on a tmpfs (reused per worker): the system directories
//! (`/usr`, `/bin`, `/lib*`, `/etc`, ...) bound read-only, a few `/dev` nodes, a fresh
//! `/proc`, private tmpfs `/tmp` and `/dev/shm`, and `/execroot/<workspace>` holding a
//! read-only bind mount per declared input at its exec path and, writable, the directories of
//! the declared outputs. The workspace, the output base, the caches and the home directory
//! are simply not there. The root becomes `/` with `pivot_root`, so the real file system is
//! unreachable, whether by relative or absolute paths. The command runs with no capability
//! at all (even when forge runs as root), with the parts of `/proc` that change the host
//! read-only, in a network namespace of its own (loopback only), and with size-limited
//! tmpfs for `/tmp` and `/dev/shm`.

mod collect;
mod command;
mod holders;
mod layers;
mod mounts;
mod namespaces;
mod roots;
mod staging;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use nix::libc;

use self::holders::{Holder, pipe_pair, reap};
use self::roots::{remove_entries, shared_dir};
pub use self::roots::{roots_dir, roots_dir_of};
use super::runner::{
    Cancel, LocalRunner, Runner, Spawn, SpawnOutcome, SpawnStatus, status_of, supervise,
};

/// Where and how to run sandboxed.
#[derive(Clone, Debug, Default)]
pub struct SandboxConfig {
    /// The real exec root; inputs are read from here and outputs written back here.
    pub exec_root: PathBuf,
    pub workspace_name: String,
    /// Where sandbox roots are made; a tmpfs is fastest.
    pub roots_dir: PathBuf,
    /// `--sandbox_debug`: keep each sandbox and say where it is.
    pub debug: bool,
    /// `--sandbox_writable_path`: host paths bound writable at the same path.
    pub writable_paths: Vec<PathBuf>,
    /// `--sandbox_tmpfs_path`: paths that get an empty tmpfs.
    pub tmpfs_paths: Vec<PathBuf>,
    /// `--sandbox_add_mount_pair`: host path bound (read-only) at a sandbox path.
    pub mount_pairs: Vec<(PathBuf, PathBuf)>,
    /// `--sandbox_tmpfs_size`: the size limit of each tmpfs a command gets (`/tmp`,
    /// `/dev/shm`, `--sandbox_tmpfs_path`), in tmpfs's `size=` syntax (`512m`, `2g`, `10%`
    /// of the RAM). `None`: [`DEFAULT_TMPFS_SIZE`].
    pub tmpfs_size: Option<String>,
}

/// A command's `/tmp` may hold at most this share of the machine's RAM (tmpfs alone allows
/// half of it, per mount).
pub const DEFAULT_TMPFS_SIZE: &str = "25%";

/// How a command was run, for the summary.
#[derive(Debug, Default)]
pub struct Counts {
    pub sandboxed: AtomicUsize,
    pub local: AtomicUsize,
}

/// Runs commands sandboxed, or locally when the action's tags or the strategy say so.
pub struct SandboxRunner {
    config: SandboxConfig,
    /// `--strategy=MNEMONIC=local|sandboxed`; the rest use `default_sandboxed`.
    strategies: BTreeMap<String, bool>,
    default_sandboxed: bool,
    local: LocalRunner,
    roots: Mutex<Vec<PathBuf>>,
    next_root: AtomicUsize,
    mount_flags: Mutex<HashMap<u64, libc::c_ulong>>,
    /// Whether namespaces work here, found out when the first command needs them.
    unavailable: std::sync::OnceLock<Option<String>>,
    /// Where inputs are bound from, so that no host path shows (see `layers`); `None` when
    /// that cannot be set up here, said once.
    layers: std::sync::OnceLock<Option<layers::Layers>>,
    /// The process holding the build's user namespace.
    holder: std::sync::OnceLock<io::Result<Holder>>,
    /// Network namespaces (loopback only) not in use: each command gets one of its own,
    /// which goes back here when the command and everything it started have ended.
    nets: Mutex<Vec<std::os::fd::OwnedFd>>,
    pub counts: Counts,
    /// Source directories staged for commands that see part of them (see `staging`).
    staging: Mutex<staging::Staging>,
    /// The entries (name, whether a directory) of each source directory a command declared
    /// many files of, read once per build like the sources themselves (see `mounts`).
    listings: Mutex<HashMap<String, Option<mounts::Listing>>>,
    /// The system directories, `/dev` nodes and `/proc` entries every command gets.
    fixed: std::sync::OnceLock<command::FixedMounts>,
}

/// The system directories a command may read.
const SYSTEM_DIRS: [&str; 10] = [
    "/bin", "/sbin", "/usr", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt", "/nix",
];
/// The `/dev` nodes a command gets.
const DEV_NODES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];
/// Entries of `/proc` bound read-only over the command's own proc.
const PROC_READ_ONLY: [&str; 5] = ["sys", "sysrq-trigger", "irq", "bus", "fs"];
/// The empty directory every overlay needs as its second lower layer, in the roots directory.
const LAYERS_EMPTY: &str = "empty-layer";
/// Where the exec root is inside the sandbox.
const INNER_EXEC_ROOT: &str = "/execroot";

/// Tags and execution requirements that keep an action out of the sandbox.
pub fn wants_local(requirements: &[String]) -> bool {
    requirements
        .iter()
        .any(|r| r == "no-sandbox" || r == "local")
}

impl SandboxRunner {
    pub fn new(
        config: SandboxConfig,
        strategies: BTreeMap<String, bool>,
        default_sandboxed: bool,
    ) -> SandboxRunner {
        // The caller holds the output base's lock: whatever is in this workspace's roots
        // directory was kept or left by an earlier command.
        remove_entries(&config.roots_dir, |_| true);
        // Roots of forge versions that kept them all in the user's directory, named
        // `<pid>-<n>`, whose forge is gone.
        if let Some(shared) = shared_dir(&config.roots_dir) {
            remove_entries(shared, |name| {
                name.split_once('-').is_some_and(|(pid, n)| {
                    n.parse::<u32>().is_ok()
                        && pid.parse::<u32>().is_ok()
                        && !Path::new("/proc").join(pid).exists()
                })
            });
        }
        // Named like the roots, so that it goes with them.
        let staged_dir = format!("{}-staged", std::process::id());
        let staging = Mutex::new(staging::Staging::new(config.roots_dir.join(staged_dir)));
        SandboxRunner {
            config,
            strategies,
            default_sandboxed,
            local: LocalRunner,
            roots: Mutex::new(Vec::new()),
            next_root: AtomicUsize::new(0),
            mount_flags: Mutex::new(HashMap::new()),
            staging,
            listings: Mutex::new(HashMap::new()),
            fixed: std::sync::OnceLock::new(),
            unavailable: std::sync::OnceLock::new(),
            layers: std::sync::OnceLock::new(),
            holder: std::sync::OnceLock::new(),
            nets: Mutex::new(Vec::new()),
            counts: Counts::default(),
        }
    }

    /// Whether namespaces work here: `None` if they do, else why not. Starts `/bin/true`
    /// in a sandbox, so it checks everything a real command needs.
    pub fn probe(&self) -> Option<String> {
        if let Err(e) = self.holder() {
            return Some(e.to_string());
        }
        let outcome = (|| -> io::Result<SpawnStatus> {
            let root = self.take_root()?;
            let plan = self.plan(&root, &[], &[], &[], &[], false)?;
            let (output, _reader) = pipe_pair()?;
            let cmd = self.command(
                &plan,
                &root,
                "/bin/true",
                &["true".into()],
                &BTreeMap::new(),
                output,
                true,
                None,
            )?;
            let pid = namespaces::spawn(&cmd)?;
            let status = status_of(reap(pid)?, None);
            self.give_back_net(cmd.net);
            self.give_back_root(root);
            Ok(status)
        })();
        match outcome {
            Ok(s) if s.success() => None,
            Ok(s) => Some(format!("a test command in the sandbox ended with {s}")),
            Err(e) => Some(e.to_string()),
        }
    }

    /// A network namespace of the build's user namespace, loopback up, that no running
    /// command uses: from the pool, or new.
    fn take_net(&self) -> io::Result<std::os::fd::OwnedFd> {
        if let Some(net) = self.nets.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(net);
        }
        self.holder()?.new_net()
    }

    /// Returns a command's network namespace to the pool. Only once the command has been
    /// reaped: as pid 1 of its pid namespace, it ends last, so no process is left in it.
    fn give_back_net(&self, net: Option<std::os::fd::OwnedFd>) {
        if let Some(net) = net {
            self.nets
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(net);
        }
    }

    /// The layers inputs are bound from, set up on first use (after `take_root` has made the
    /// roots directory). Where they cannot be, forge says so once and binds host paths.
    fn layers(&self) -> Option<&layers::Layers> {
        self.layers
            .get_or_init(|| {
                // Named like the roots, so that it goes with them.
                let empty = format!("{}-{LAYERS_EMPTY}", std::process::id());
                match layers::Layers::new(&self.config.roots_dir.join(empty)) {
                    Ok(l) => Some(l),
                    Err(e) => {
                        eprintln!(
                            "WARNING: sandbox: cannot hide host paths from commands ({e}): \
                             /proc/self/mountinfo shows where their inputs are"
                        );
                        None
                    }
                }
            })
            .as_ref()
    }

    /// Where layer `layer`'s overlay is mounted in the layers' namespace (mounting it first).
    fn layer_mount_point(&self, all: &layers::Layers, layer: usize) -> io::Result<PathBuf> {
        let mount_point = self
            .config
            .roots_dir
            .join(format!("{}-layers", std::process::id()))
            .join(layer.to_string());
        self.holder()?
            .mount_layer(layer, &all.dir(layer)?, &all.empty, &mount_point)
    }

    fn holder(&self) -> io::Result<&Holder> {
        self.holder
            .get_or_init(Holder::start)
            .as_ref()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot create namespaces: {e}")))
    }

    fn sandboxed(&self, spawn: &Spawn) -> bool {
        if wants_local(&spawn.action.requirements) {
            return false;
        }
        *self
            .strategies
            .get(&spawn.action.mnemonic)
            .unwrap_or(&self.default_sandboxed)
    }

    fn run_sandboxed(&self, spawn: &Spawn, cancel: &Cancel) -> io::Result<SpawnOutcome> {
        let Some(program) = spawn.argv.first() else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty argv"));
        };
        let action = spawn.action;
        let root = self.take_root()?;
        let inner = root
            .join(&INNER_EXEC_ROOT[1..])
            .join(&self.config.workspace_name);
        // The exec root's own directory, with the workspace name, is where paths start.
        fs::create_dir_all(&inner)?;
        let network = action.requirements.iter().any(|r| r == "requires-network");
        let plan = self.plan(
            &root,
            &action.inputs.flatten(),
            &action.outputs,
            &action.directory_outputs,
            &action.scratch_dirs,
            network,
        );
        let plan = match plan {
            Ok(p) => p,
            Err(e) => {
                let _ = fs::remove_dir_all(&root);
                return Err(e);
            }
        };
        // Inside, TMPDIR is the private /tmp.
        let mut env = spawn.env.clone();
        env.insert("TMPDIR".to_owned(), "/tmp".to_owned());
        let (writer, reader) = pipe_pair()?;
        let inner_root = format!("{INNER_EXEC_ROOT}/{}", self.config.workspace_name);
        let env = super::runner::expand_exec_root(&env, Path::new(&inner_root));
        let mut cmd = self.command(
            &plan,
            &root,
            program,
            spawn.argv,
            &env,
            writer,
            false,
            spawn.workdir,
        )?;
        let started = namespaces::spawn(&cmd);
        let net = cmd.net.take();
        drop(cmd);
        let pid = match started {
            Ok(pid) => pid,
            Err(e) => {
                self.give_back_net(net);
                self.clean(root);
                return Err(e);
            }
        };
        // The command is pid 1 of its namespace: when it ends, the kernel kills everything
        // it left.
        let (timed_out, mut output) = supervise(pid, reader, cancel, spawn);
        let status = status_of(reap(pid)?, timed_out);
        self.give_back_net(net);
        let mut status = status;
        // Outputs are copied even from a failed command: a failed test's XML and undeclared
        // outputs are what its author needs.
        let collected = self.collect(&inner, action, spawn.cwd);
        if status.success() {
            if let Err(violation) = collected {
                output.extend_from_slice(format!("{violation}\n").as_bytes());
                status = SpawnStatus::Exited(1);
            }
        } else if !cancel.is_cancelled() {
            let text = String::from_utf8_lossy(&output);
            let isolation_errors = [
                "No such file or directory",
                "Read-only file system",
                "Permission denied",
                "Connection refused",
                "Network is unreachable",
            ];
            if isolation_errors.iter().any(|e| text.contains(e)) {
                output.extend_from_slice(
                    b"(In forge's sandbox only the declared inputs are visible, only the \
                      declared outputs' directories are writable, and the network is loopback \
                      only unless the target is tagged requires-network.)\n",
                );
            }
        }
        if self.config.debug {
            eprintln!(
                "INFO: sandbox of {} kept at {} (--sandbox_debug)",
                action.owner,
                root.display()
            );
        } else {
            self.clean(root);
        }
        self.counts.sandboxed.fetch_add(1, Ordering::Relaxed);
        Ok(SpawnOutcome { status, output })
    }
}

impl Drop for SandboxRunner {
    fn drop(&mut self) {
        self.cleanup();
    }
}

impl Runner for SandboxRunner {
    fn run(&self, spawn: &Spawn, cancel: &Cancel) -> io::Result<SpawnOutcome> {
        if self.sandboxed(spawn) {
            let unavailable = self.unavailable.get_or_init(|| {
                let why = self.probe();
                if let Some(why) = &why {
                    // Said once, plainly; every sandboxed command then fails.
                    eprintln!(
                        "ERROR: the sandbox cannot run here ({why}). Forge does not fall back \
                         to running commands unsandboxed on its own: pass \
                         --spawn_strategy=local to build without the sandbox."
                    );
                }
                why
            });
            if unavailable.is_some() {
                return Err(io::Error::other(
                    "the sandbox is not available (see above); --spawn_strategy=local runs without it",
                ));
            }
            self.run_sandboxed(spawn, cancel)
        } else {
            self.counts.local.fetch_add(1, Ordering::Relaxed);
            self.local.run(spawn, cancel)
        }
    }
}

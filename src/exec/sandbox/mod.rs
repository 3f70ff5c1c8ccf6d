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

mod layers;
mod namespaces;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use nix::libc;

use self::namespaces::Step;
use super::runner::{
    Cancel, LocalRunner, Runner, Spawn, SpawnOutcome, SpawnStatus, status_of, supervise,
};
use crate::core::ExecPath;

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

/// Where the sandbox roots of the workspace with `output_base` go: a tmpfs (`/dev/shm`) when
/// there is a writable one, else the temporary directory, else the output base.
pub fn roots_dir(output_base: &Path) -> PathBuf {
    // SAFETY: a plain getter.
    roots_dir_of(output_base, unsafe { libc::geteuid() })
}

/// `roots_dir` for user `uid`. On the shared tmpfs each output base has its own directory,
/// named by a hash of its path, so that a command removes what the last command of its own
/// workspace kept (`--sandbox_debug`) or left (killed), and nothing of other workspaces.
///
/// The shared tmpfs first, for speed; else the temporary directory: a sandbox root shows its
/// own path to the command (in mountinfo), which must not be the output base's.
pub fn roots_dir_of(output_base: &Path, uid: u32) -> PathBuf {
    let writable = |dir: &Path| {
        dir.is_dir() && nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_ok()
    };
    let hash = blake3::hash(output_base.as_os_str().as_encoded_bytes()).to_hex();
    let tmp = std::env::temp_dir();
    match [Path::new("/dev/shm"), tmp.as_path()]
        .into_iter()
        .find(|d| writable(d))
    {
        Some(dir) => dir.join(format!("forge-sandbox-{uid}")).join(&hash[..16]),
        None => output_base.join("sandbox"),
    }
}

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
        SandboxRunner {
            config,
            strategies,
            default_sandboxed,
            local: LocalRunner,
            roots: Mutex::new(Vec::new()),
            next_root: AtomicUsize::new(0),
            mount_flags: Mutex::new(HashMap::new()),
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

    /// A sandbox root with the fixed mount points made, from the pool or new.
    fn take_root(&self) -> io::Result<PathBuf> {
        if let Some(root) = self.roots.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(root);
        }
        let n = self.next_root.fetch_add(1, Ordering::SeqCst);
        let root = self
            .config
            .roots_dir
            .join(format!("{}-{n}", std::process::id()));
        if root.exists() {
            fs::remove_dir_all(&root)?;
        }
        let dir = &self.config.roots_dir;
        // The user's directory right in /dev/shm, then this workspace's inside it.
        if let Some(shared) = shared_dir(dir) {
            secure_dir(shared)?;
        }
        secure_dir(dir)?;
        fs::create_dir(&root)?;
        for dir in SYSTEM_DIRS {
            let host = Path::new(dir);
            let inside = root.join(&dir[1..]);
            match fs::symlink_metadata(host) {
                Ok(m) if m.file_type().is_symlink() => {
                    std::os::unix::fs::symlink(fs::read_link(host)?, &inside)?
                }
                Ok(m) if m.is_dir() => fs::create_dir(&inside)?,
                _ => {}
            }
        }
        for dir in ["proc", "tmp", "dev", "dev/shm", &INNER_EXEC_ROOT[1..]] {
            fs::create_dir_all(root.join(dir))?;
        }
        for node in DEV_NODES {
            if Path::new("/dev").join(node).exists() {
                fs::File::create(root.join("dev").join(node))?;
            }
        }
        Ok(root)
    }

    fn give_back_root(&self, root: PathBuf) {
        self.roots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(root);
    }

    /// The flags a read-only remount of a bind mount from the file system of `dev` must
    /// keep: a user namespace may not clear nosuid, nodev, noexec or atime flags.
    fn locked_flags(&self, path: &Path, dev: u64) -> libc::c_ulong {
        if let Some(f) = self
            .mount_flags
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&dev)
        {
            return *f;
        }
        let flags = nix::sys::statvfs::statvfs(path)
            .map(|s| {
                use nix::sys::statvfs::FsFlags;
                let f = s.flags();
                let mut m: libc::c_ulong = 0;
                for (st, ms) in [
                    (FsFlags::ST_NOSUID, libc::MS_NOSUID),
                    (FsFlags::ST_NODEV, libc::MS_NODEV),
                    (FsFlags::ST_NOEXEC, libc::MS_NOEXEC),
                    (FsFlags::ST_NOATIME, libc::MS_NOATIME),
                    (FsFlags::ST_NODIRATIME, libc::MS_NODIRATIME),
                    (FsFlags::ST_RELATIME, libc::MS_RELATIME),
                ] {
                    if f.contains(st) {
                        m |= ms;
                    }
                }
                m
            })
            .unwrap_or(0);
        self.mount_flags
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(dev, flags);
        flags
    }

    /// Makes the mount points under `root` and lists the mounts for one command.
    fn plan(
        &self,
        root: &Path,
        inputs: &[ExecPath],
        outputs: &[ExecPath],
        directory_outputs: &[ExecPath],
        scratch_dirs: &[ExecPath],
        network: bool,
    ) -> io::Result<Plan> {
        let inner = root
            .join(&INNER_EXEC_ROOT[1..])
            .join(&self.config.workspace_name);
        let mut made: BTreeSet<PathBuf> = BTreeSet::new();
        let mkdirs = |dir: &Path, made: &mut BTreeSet<PathBuf>| -> io::Result<()> {
            if made.contains(dir) {
                return Ok(());
            }
            fs::create_dir_all(dir)?;
            let mut d = dir.to_path_buf();
            while d.starts_with(&inner) && made.insert(d.clone()) {
                if !d.pop() {
                    break;
                }
            }
            Ok(())
        };
        let mut binds = Vec::new();
        let mut add_input = |exec_path: &str, made: &mut BTreeSet<PathBuf>| -> io::Result<()> {
            let host = self.config.exec_root.join(exec_path);
            let Ok(meta) = fs::metadata(&host) else {
                // Missing inputs are reported by the executor before anything runs.
                return Ok(());
            };
            let target = inner.join(exec_path);
            if target.exists() {
                return Ok(());
            }
            if let Some(parent) = target.parent() {
                mkdirs(parent, made)?;
            }
            if meta.is_dir() {
                fs::create_dir(&target)?;
            } else {
                fs::File::create(&target)?;
            }
            let flags = self.locked_flags(&host, meta.dev());
            let Some(all) = self.layers() else {
                binds.push((host, target, flags));
                return Ok(());
            };
            // Bound from the layer's overlay: mountinfo shows the path within it.
            let (layer, within) = all.locate(&self.config.exec_root, exec_path)?;
            let mount_point = self.layer_mount_point(all, layer)?;
            binds.push((
                mount_point.join(within),
                target,
                flags | libc::MS_NOSUID | libc::MS_NODEV,
            ));
            Ok(())
        };
        // Source directories whose every file is an input are mounted whole: one mount for
        // a thousand files, so setup does not grow with the number of inputs.
        let (whole_dirs, single) = self.collapse(inputs);
        for dir in &whole_dirs {
            add_input(dir, &mut made)?;
        }
        for input in single {
            add_input(input, &mut made)?;
            // A tool's runfiles tree travels with it (its files are inputs already).
            if input.starts_with(crate::core::layout::OUT_DIR) {
                let tree = format!("{input}.runfiles");
                if self.config.exec_root.join(&tree).is_dir() {
                    add_input(&tree, &mut made)?;
                }
            }
        }
        let mut writable = BTreeSet::new();
        for out in outputs {
            let target = inner.join(out);
            if let Some(parent) = target.parent() {
                mkdirs(parent, &mut made)?;
                writable.insert(parent.to_path_buf());
            }
            if directory_outputs.contains(out) {
                fs::create_dir_all(&target)?;
            }
        }
        let mut scratch = Vec::new();
        for dir in scratch_dirs {
            let target = inner.join(dir);
            mkdirs(&target, &mut made)?;
            scratch.push(target);
        }
        Ok(Plan {
            binds,
            writable: writable.into_iter().collect(),
            scratch,
            network,
        })
    }

    /// Splits `inputs` into source directories that can be mounted whole (every entry in
    /// them, recursively, is an input) and the inputs outside those.
    fn collapse<'i>(&self, inputs: &'i [ExecPath]) -> (Vec<String>, Vec<&'i ExecPath>) {
        // Directory → how many of its entries are inputs (files, or whole subdirectories).
        let sources: BTreeSet<&str> = inputs
            .iter()
            .map(ExecPath::as_str)
            .filter(|i| !i.starts_with(crate::core::layout::OUT_DIR) && !i.starts_with("external/"))
            .collect();
        let mut by_dir: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for input in &sources {
            if let Some((dir, name)) = input.rsplit_once('/') {
                by_dir.entry(dir).or_default().insert(name.to_owned());
            }
        }
        if by_dir.values().all(|names| names.len() < 8) {
            return (Vec::new(), inputs.iter().collect());
        }
        // Deepest first, so a parent sees which subdirectories are whole.
        let mut dirs: Vec<&str> = by_dir.keys().copied().collect();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.matches('/').count()));
        let mut whole: BTreeSet<String> = BTreeSet::new();
        let mut i = 0;
        while i < dirs.len() {
            let dir = dirs[i];
            i += 1;
            let Ok(entries) = fs::read_dir(self.config.exec_root.join(dir)) else {
                continue;
            };
            let declared = &by_dir[dir];
            let complete = entries.flatten().all(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                match e.file_type() {
                    Ok(t) if t.is_dir() => whole.contains(&format!("{dir}/{name}")),
                    _ => declared.contains(&name),
                }
            });
            if complete {
                whole.insert(dir.to_owned());
                if let Some((parent, name)) = dir.rsplit_once('/') {
                    let entry = by_dir.entry(parent).or_default();
                    if entry.insert(name.to_owned()) && entry.len() == 1 {
                        dirs.push(parent);
                        dirs[i..].sort_by_key(|d| std::cmp::Reverse(d.matches('/').count()));
                    }
                }
            }
        }
        let covered = |path: &str| {
            let mut p = path;
            while let Some((parent, _)) = p.rsplit_once('/') {
                if whole.contains(parent) {
                    return true;
                }
                p = parent;
            }
            false
        };
        let top: Vec<String> = whole.iter().filter(|d| !covered(d)).cloned().collect();
        let single = inputs.iter().filter(|i| !covered(i)).collect();
        (top, single)
    }

    #[allow(clippy::too_many_arguments)]
    fn command(
        &self,
        plan: &Plan,
        root: &Path,
        program: &str,
        argv: &[String],
        env: &BTreeMap<String, String>,
        output: std::os::fd::OwnedFd,
        probe: bool,
        workdir: Option<&str>,
    ) -> io::Result<namespaces::Command> {
        let c = |p: &Path| CString::new(p.as_os_str().as_encoded_bytes()).map_err(io::Error::other);
        let cs = |s: &str| CString::new(s).map_err(io::Error::other);
        let bind = |source: &Path, target: &Path, flags: libc::c_ulong| -> io::Result<Step> {
            Ok(Step::Mount {
                source: Some(c(source)?),
                target: c(target)?,
                fstype: None,
                flags: libc::MS_BIND | libc::MS_REC | flags,
                data: None,
            })
        };
        let read_only = |target: &Path, locked: libc::c_ulong| -> io::Result<Step> {
            Ok(Step::Mount {
                source: None,
                target: c(target)?,
                fstype: None,
                flags: libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | locked,
                data: None,
            })
        };
        let null_in = fs::File::open("/dev/null")?;
        // SAFETY: plain getters.
        let holder = self.holder()?;
        let mut steps = vec![
            // Nothing done here may propagate back to the host.
            Step::Mount {
                source: None,
                target: cs("/")?,
                fstype: None,
                flags: libc::MS_REC | libc::MS_PRIVATE,
                data: None,
            },
            bind(root, root, 0)?,
        ];
        for dir in SYSTEM_DIRS {
            let host = Path::new(dir);
            let inside = root.join(&dir[1..]);
            if let Ok(m) = fs::symlink_metadata(host)
                && m.is_dir()
                && inside.is_dir()
            {
                let locked = self.locked_flags(host, m.dev());
                steps.push(bind(host, &inside, 0)?);
                steps.push(read_only(&inside, locked)?);
            }
        }
        for node in DEV_NODES {
            let host = Path::new("/dev").join(node);
            let inside = root.join("dev").join(node);
            if let Ok(m) = fs::metadata(&host)
                && inside.exists()
            {
                // Read-only: the node still reads and writes, but a command running as its
                // owner (root) cannot chmod or chown the host's device.
                steps.push(bind(&host, &inside, 0)?);
                steps.push(read_only(&inside, self.locked_flags(&host, m.dev()))?);
            }
        }
        for (source, target, locked) in &plan.binds {
            steps.push(bind(source, target, 0)?);
            steps.push(read_only(target, *locked)?);
        }
        // The probe checks what namespaces need, not the user's extra mounts: a mistake there
        // is reported by the commands, as what it is.
        let (mount_pairs, writable_paths, tmpfs_paths) = if probe {
            (&[][..], &[][..], &[][..])
        } else {
            (
                &self.config.mount_pairs[..],
                &self.config.writable_paths[..],
                &self.config.tmpfs_paths[..],
            )
        };
        // Private tmpfs first, so that paths the user adds below /tmp land inside it.
        let size = self
            .config
            .tmpfs_size
            .as_deref()
            .unwrap_or(DEFAULT_TMPFS_SIZE);
        let tmpfs = |target: &Path| -> io::Result<Step> {
            Ok(Step::Mount {
                source: Some(cs("tmpfs")?),
                target: c(target)?,
                fstype: Some(cs("tmpfs")?),
                flags: libc::MS_NOSUID | libc::MS_NODEV,
                data: Some(cs(&format!("size={size}"))?),
            })
        };
        // `mkdir -p` inside the sandbox, for mount points of the user's paths.
        let make_dirs = |inside: &Path, steps: &mut Vec<Step>| -> io::Result<PathBuf> {
            let mut target = root.to_path_buf();
            for part in inside.strip_prefix("/").unwrap_or(inside).components() {
                target.push(part);
                steps.push(Step::Mkdir(c(&target)?));
            }
            Ok(target)
        };
        steps.push(tmpfs(&root.join("tmp"))?);
        steps.push(tmpfs(&root.join("dev/shm"))?);
        for path in tmpfs_paths {
            let target = make_dirs(path, &mut steps)?;
            steps.push(tmpfs(&target)?);
        }
        for (host, inside) in mount_pairs {
            let meta = fs::metadata(host)?;
            let target = make_dirs(inside, &mut steps)?;
            steps.push(bind(host, &target, 0)?);
            steps.push(read_only(&target, self.locked_flags(host, meta.dev()))?);
        }
        for host in writable_paths {
            let target = make_dirs(host, &mut steps)?;
            steps.push(bind(host, &target, 0)?);
        }
        for dir in &plan.writable {
            steps.push(bind(dir, dir, 0)?);
        }
        for dir in &plan.scratch {
            steps.push(tmpfs(dir)?);
        }
        // Everything else in the root is read-only: writes outside the declared outputs fail.
        let root_locked = self.locked_flags(root, fs::metadata(root)?.dev());
        steps.push(read_only(root, root_locked)?);
        let proc_flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        steps.push(Step::Mount {
            source: Some(cs("proc")?),
            target: c(&root.join("proc"))?,
            fstype: Some(cs("proc")?),
            flags: proc_flags,
            data: None,
        });
        // The files of /proc that change the host (kernel settings, sysrq, irq affinity,
        // devices) check only uid and mode, not capabilities: a command running as host
        // root could write them. Read-only, as container runtimes do. Covering them also
        // keeps a command from mounting a proc of its own (the kernel allows that only where
        // a proc is fully visible).
        for entry in PROC_READ_ONLY {
            let inside = root.join("proc").join(entry);
            if Path::new("/proc").join(entry).exists() {
                steps.push(bind(&inside, &inside, 0)?);
                steps.push(read_only(&inside, proc_flags)?);
            }
        }
        use std::os::fd::AsRawFd;
        let clone_flags =
            libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
        // A network namespace of its own (loopback only), unless the action needs the host's
        // network.
        let net = if plan.network {
            None
        } else {
            Some(self.take_net()?)
        };
        let join = Some(holder.user.as_raw_fd());
        steps.push(Step::Hostname(cs("forge")?));
        steps.push(Step::PivotRoot(c(root)?));
        let cwd = if probe {
            "/".to_owned()
        } else {
            format!("{INNER_EXEC_ROOT}/{}", self.config.workspace_name)
        };
        match workdir {
            Some(dir) => steps.push(Step::Chdir(cs(&format!("{cwd}/{dir}"))?)),
            None => steps.push(Step::Chdir(cs(&cwd)?)),
        }
        // Last: the command, even as root, can change no mount and no kernel setting.
        steps.push(Step::DropPrivileges);

        // A program with a slash but not absolute is an exec path, relative to the cwd.
        let program = if program.contains('/') && !program.starts_with('/') {
            format!("{cwd}/{program}")
        } else if program.contains('/') {
            program.to_owned()
        } else {
            find_in_path(program, env).unwrap_or_else(|| program.to_owned())
        };
        Ok(namespaces::Command {
            join,
            net,
            mnt: holder.layers_fd(),
            clone_flags,
            steps,
            program: cs(&program)?,
            argv: argv.iter().map(|a| cs(a)).collect::<io::Result<_>>()?,
            env: env
                .iter()
                .map(|(k, v)| cs(&format!("{k}={v}")))
                .collect::<io::Result<_>>()?,
            output,
            input: null_in.into(),
        })
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
            &action.inputs,
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
                output.extend_from_slice(violation.as_bytes());
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

    /// Copies the declared outputs from the sandbox into the exec root. A missing output is
    /// left for the executor to report. Nothing is followed on the host: a symlink among the
    /// outputs is resolved hop by hop inside the sandbox's exec root (to another output or a
    /// declared input, copied), and one that leads out of it, a FIFO, socket or device is a
    /// violation naming the output.
    fn collect(
        &self,
        inner: &Path,
        action: &crate::core::Action,
        exec_root: &Path,
    ) -> Result<(), String> {
        use crate::exec::confine::{ExecRoot, Found, Refused, Want, write_copy};
        let seen = PathBuf::from(format!("{INNER_EXEC_ROOT}/{}", self.config.workspace_name));
        let root = ExecRoot::new(inner, exec_root, &seen, &action.inputs, &action.outputs)
            .map_err(|e| format!("cannot read the outputs in the sandbox: {e}\n"))?;
        for out in &action.outputs {
            let to = exec_root.join(out);
            if action.directory_outputs.contains(out) {
                match root.tree(out, Some(&to)) {
                    Ok(()) | Err((None, Refused::Missing)) => {}
                    Err((None, e)) => {
                        let _ = fs::remove_dir_all(&to);
                        return Err(format!(
                            "{}\n",
                            e.describe(&format!("declared output '{out}'"))
                        ));
                    }
                    Err((Some(entry), e)) => {
                        // Not half a tree: nothing of it is kept.
                        let _ = fs::remove_dir_all(&to);
                        let what = format!("'{entry}' in declared directory output '{out}'");
                        return Err(format!("{}\n", e.describe(&what)));
                    }
                }
                continue;
            }
            match root.open(out, Want::File) {
                Ok(Found::File(mut file, mode)) => write_copy(&mut file, mode, &to)
                    .map_err(|e| format!("cannot copy output '{out}' out of the sandbox: {e}\n"))?,
                Ok(Found::Dir(_)) => {}
                Err(Refused::Missing) => {}
                Err(e) => {
                    return Err(format!(
                        "{}\n",
                        e.describe(&format!("declared output '{out}'"))
                    ));
                }
            }
        }
        Ok(())
    }

    /// Empties a root's exec root and returns the root to the pool.
    fn clean(&self, root: PathBuf) {
        let inner = root.join(&INNER_EXEC_ROOT[1..]);
        match fs::remove_dir_all(&inner).and_then(|()| fs::create_dir(&inner)) {
            Ok(()) => self.give_back_root(root),
            Err(_) => {
                let _ = fs::remove_dir_all(&root);
            }
        }
    }

    /// Stops the namespace holder and removes this process's sandbox roots, whichever way
    /// the build ended (also when the runner is dropped); with `--sandbox_debug` the roots
    /// stay until the next command in this workspace. Safe to call more than once.
    pub fn cleanup(&self) {
        if let Some(Ok(holder)) = self.holder.get() {
            holder.stop();
        }
        if self.config.debug {
            return;
        }
        self.roots.lock().unwrap_or_else(|e| e.into_inner()).clear();
        // Also roots an early return never gave back to the pool.
        let mine = format!("{}-", std::process::id());
        remove_entries(&self.config.roots_dir, |name| name.starts_with(&mine));
        // Empty now unless another command of this workspace has started since.
        let _ = fs::remove_dir(&self.config.roots_dir);
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

/// A process (`cat`, reading a pipe only forge writes to) that keeps one user namespace
/// alive for the whole build; every command joins it instead of creating its own. When
/// forge ends, even killed, the pipe closes and the holder exits.
struct Holder {
    pid: i32,
    user: std::os::fd::OwnedFd,
    keepalive: Mutex<Option<io::PipeWriter>>,
    /// The mount namespace the layers are mounted in, made on first use.
    layers: Mutex<LayerNamespace>,
    /// Its descriptor, once it exists, for the commands to enter.
    layers_fd: std::sync::OnceLock<RawFd>,
}

/// A `cat` in the build's user namespace holding a mount namespace of its own: a copy of
/// forge's mounts, plus one read-only overlay per layer, mounted once per build. Every
/// command's mount namespace starts as a copy of it, so its binds can come from the layers
/// without each command making (and tearing down) overlays of its own.
#[derive(Default)]
struct LayerNamespace {
    holder: Option<(i32, std::os::fd::OwnedFd, io::PipeWriter)>,
    /// Layer → where its overlay is mounted (a directory of the roots directory).
    mounted: HashMap<usize, PathBuf>,
}

/// `true`, run where a namespace needs a process only for its steps.
fn true_program() -> io::Result<&'static str> {
    ["/usr/bin/true", "/bin/true"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or_else(|| io::Error::other("no true(1) to mount the sandbox's layers"))
}

/// Starts `cat` reading a pipe only forge writes to (so it ends with forge, or when the
/// returned end is dropped), in the user namespace `join` if given, with new namespaces
/// `clone_flags` set up by `steps`: how forge holds a namespace open.
fn start_cat(
    join: Option<RawFd>,
    clone_flags: libc::c_int,
    steps: Vec<Step>,
) -> io::Result<(i32, io::PipeWriter)> {
    let cs = |s: &str| CString::new(s).map_err(io::Error::other);
    let (reader, writer) = io::pipe()?;
    let null = fs::File::options().write(true).open("/dev/null")?;
    let cmd = namespaces::Command {
        join,
        net: None,
        mnt: None,
        clone_flags,
        steps,
        program: cs(cat()?)?,
        argv: vec![cs("cat")?],
        env: Vec::new(),
        output: null.into(),
        input: reader.into(),
    };
    Ok((namespaces::spawn(&cmd)?, writer))
}

/// `cat`, the program the namespace holders run.
fn cat() -> io::Result<&'static str> {
    ["/usr/bin/cat", "/bin/cat"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or_else(|| io::Error::other("no cat(1) to hold the namespaces"))
}

impl Holder {
    fn start() -> io::Result<Holder> {
        let cs = |s: &str| CString::new(s).map_err(io::Error::other);
        // SAFETY: plain getters.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let (pid, writer) = start_cat(
            None,
            libc::CLONE_NEWUSER,
            vec![
                Step::Write {
                    path: cs("/proc/self/setgroups")?,
                    data: cs("deny")?,
                },
                Step::Write {
                    path: cs("/proc/self/uid_map")?,
                    data: cs(&format!("{uid} {uid} 1\n"))?,
                },
                Step::Write {
                    path: cs("/proc/self/gid_map")?,
                    data: cs(&format!("{gid} {gid} 1\n"))?,
                },
            ],
        )?;
        Ok(Holder {
            pid,
            user: fs::File::open(format!("/proc/{pid}/ns/user"))?.into(),
            keepalive: Mutex::new(Some(writer)),
            layers: Mutex::new(LayerNamespace::default()),
            layers_fd: std::sync::OnceLock::new(),
        })
    }

    fn layers_fd(&self) -> Option<RawFd> {
        self.layers_fd.get().copied()
    }

    /// Mounts `dir` as a read-only overlay at `mount_point` in the layers' mount namespace
    /// (made first if need be), unless layer `layer` is mounted already; returns where it is.
    fn mount_layer(
        &self,
        layer: usize,
        dir: &Path,
        empty: &Path,
        mount_point: &Path,
    ) -> io::Result<PathBuf> {
        use std::os::fd::AsRawFd;
        let cs = |s: &str| CString::new(s).map_err(io::Error::other);
        let c = |p: &Path| CString::new(p.as_os_str().as_encoded_bytes()).map_err(io::Error::other);
        let mut state = self.layers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = state.mounted.get(&layer) {
            return Ok(found.clone());
        }
        if state.holder.is_none() {
            let (pid, writer) = start_cat(
                Some(self.user.as_raw_fd()),
                libc::CLONE_NEWNS,
                vec![Step::Mount {
                    source: None,
                    target: cs("/")?,
                    fstype: None,
                    flags: libc::MS_REC | libc::MS_PRIVATE,
                    data: None,
                }],
            )?;
            let mnt: std::os::fd::OwnedFd = fs::File::open(format!("/proc/{pid}/ns/mnt"))?.into();
            let _ = self.layers_fd.set(mnt.as_raw_fd());
            state.holder = Some((pid, mnt, writer));
        }
        let Some((_, mnt, _)) = &state.holder else {
            return Err(io::Error::other("the sandbox layers' namespace is gone"));
        };
        fs::create_dir_all(mount_point)?;
        // A short-lived `true` in that namespace opens the layer there (an overlay's layers
        // must be mounts of the namespace that mounts it) at descriptors fixed here, so the
        // overlay's options can name them, then mounts it.
        let null = fs::File::options()
            .read(true)
            .write(true)
            .open("/dev/null")?;
        let null_out = null.try_clone()?;
        let mut fds = layer_fds(&[null.as_raw_fd(), null_out.as_raw_fd()]);
        let (layer_fd, empty_fd) = match (fds.next(), fds.next()) {
            (Some(a), Some(b)) => (a, b),
            _ => {
                return Err(io::Error::other(
                    "sandbox: no descriptor free to open a layer",
                ));
            }
        };
        let cmd = namespaces::Command {
            join: Some(self.user.as_raw_fd()),
            net: None,
            mnt: Some(mnt.as_raw_fd()),
            clone_flags: 0,
            steps: vec![
                Step::OpenDir {
                    path: c(dir)?,
                    fd: layer_fd,
                },
                Step::OpenDir {
                    path: c(empty)?,
                    fd: empty_fd,
                },
                Step::Mount {
                    source: Some(cs("overlay")?),
                    target: c(mount_point)?,
                    fstype: Some(cs("overlay")?),
                    flags: libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
                    data: Some(cs(&format!(
                        "lowerdir=/proc/self/fd/{layer_fd}:/proc/self/fd/{empty_fd}"
                    ))?),
                },
            ],
            program: cs(true_program()?)?,
            argv: vec![cs("true")?],
            env: Vec::new(),
            output: null_out.into(),
            input: null.into(),
        };
        let pid = namespaces::spawn(&cmd)?;
        let status = reap(pid)?;
        if !status.success() {
            return Err(io::Error::other(format!(
                "sandbox: mounting the layer of {} ended with {status}",
                dir.display()
            )));
        }
        state.mounted.insert(layer, mount_point.to_path_buf());
        Ok(mount_point.to_path_buf())
    }

    /// A new network namespace, owned by the build's user namespace, with loopback up:
    /// made by a short-lived `cat` that joins the user namespace and ends once the
    /// namespace is open here.
    fn new_net(&self) -> io::Result<std::os::fd::OwnedFd> {
        use std::os::fd::AsRawFd;
        let (pid, writer) = start_cat(
            Some(self.user.as_raw_fd()),
            libc::CLONE_NEWNET,
            vec![Step::LoopbackUp],
        )?;
        let net = fs::File::open(format!("/proc/{pid}/ns/net"));
        drop(writer);
        reap(pid)?;
        Ok(net?.into())
    }

    /// Closes the pipes and waits for the holders to exit; once only.
    fn stop(&self) {
        let layers = self
            .layers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .holder
            .take();
        if let Some((pid, mnt, writer)) = layers {
            drop(writer);
            drop(mnt);
            let _ = reap(pid);
        }
        let writer = self
            .keepalive
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(writer) = writer {
            drop(writer);
            let _ = reap(self.pid);
        }
    }
}

struct Plan {
    /// `(source, mount point, flags a read-only remount must keep)`; the source is a path
    /// in one of `layers`, or a host path when there are none.
    binds: Vec<(PathBuf, PathBuf, libc::c_ulong)>,
    /// Directories of declared outputs: bound onto themselves to stay writable.
    writable: Vec<PathBuf>,
    /// Scratch directories (`TEST_TMPDIR`): private tmpfs, bounded like `/tmp`.
    scratch: Vec<PathBuf>,
    network: bool,
}

/// Descriptor numbers for the sandbox's child to open layers at: the highest the open-files
/// limit allows, skipping `taken` (its standard streams before they are moved to 0-2).
fn layer_fds(taken: &[i32]) -> impl Iterator<Item = i32> + use<> {
    let mut rlimit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    let limit = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rlimit) } == 0 {
        rlimit.rlim_cur.min(1 << 20) as i32
    } else {
        1024
    };
    let taken = taken.to_vec();
    (3..limit)
        .rev()
        .filter(move |fd| !taken.contains(fd))
        .take(64)
}

/// The user's directory (in `/dev/shm` or the temporary directory) that holds `roots_dir`,
/// if that is where it is.
fn shared_dir(roots_dir: &Path) -> Option<&Path> {
    roots_dir.parent().filter(|p| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("forge-sandbox-"))
    })
}

/// Removes the entries of `dir` whose names `wanted` accepts.
fn remove_entries(dir: &Path, wanted: impl Fn(&str) -> bool) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if wanted(&entry.file_name().to_string_lossy()) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Makes the roots directory, private to this user: it lives in a world-writable place
/// (`/dev/shm`), where another user could have made it first to watch or tamper.
fn secure_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = fs::symlink_metadata(dir)?;
    // SAFETY: a plain getter.
    let uid = unsafe { libc::geteuid() };
    if !meta.is_dir() || meta.uid() != uid {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is not a directory owned by this user; remove it or run elsewhere",
                dir.display()
            ),
        ));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

fn pipe_pair() -> io::Result<(std::os::fd::OwnedFd, io::PipeReader)> {
    let (reader, writer) = io::pipe()?;
    Ok((writer.into(), reader))
}

/// Waits for and reaps `pid`.
fn reap(pid: i32) -> io::Result<std::process::ExitStatus> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(std::process::ExitStatus::from_raw(status))
}

fn find_in_path(program: &str, env: &BTreeMap<String, String>) -> Option<String> {
    let path = env.get("PATH")?;
    path.split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
}

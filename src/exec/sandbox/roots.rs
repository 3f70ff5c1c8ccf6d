//! The pool of sandbox roots: an output base in, the directory its sandbox roots live in out
//! (on a private tmpfs where there is one); and per command a root with the fixed mount points
//! made, taken from the pool or new, emptied and given back when the command is done.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use nix::libc;

use super::*;

impl SandboxRunner {
    /// A sandbox root with the fixed mount points made, from the pool or new.
    pub(super) fn take_root(&self) -> io::Result<PathBuf> {
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

    pub(super) fn give_back_root(&self, root: PathBuf) {
        self.roots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(root);
    }

    /// Empties a root's exec root and returns the root to the pool.
    pub(super) fn clean(&self, root: PathBuf) {
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

/// The user's directory (in `/dev/shm` or the temporary directory) that holds `roots_dir`,
/// if that is where it is.
pub(super) fn shared_dir(roots_dir: &Path) -> Option<&Path> {
    roots_dir.parent().filter(|p| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("forge-sandbox-"))
    })
}

/// Removes the entries of `dir` whose names `wanted` accepts.
pub(super) fn remove_entries(dir: &Path, wanted: impl Fn(&str) -> bool) {
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
pub(super) fn secure_dir(dir: &Path) -> io::Result<()> {
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

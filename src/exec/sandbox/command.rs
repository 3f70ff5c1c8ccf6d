//! The step list of one sandboxed command: its plan, argv and environment in, the flat list
//! of `namespaces::Step`s (mounts, `pivot_root`, dropped capabilities, `execve`) its child
//! walks out, every path already a C string because the child may not allocate.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::libc;

use super::mounts::*;
use super::namespaces::{self, Step};
use super::*;

impl SandboxRunner {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn command(
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
}

/// Descriptor numbers for the sandbox's child to open layers at: the highest the open-files
/// limit allows, skipping `taken` (its standard streams before they are moved to 0-2).
pub(super) fn layer_fds(taken: &[i32]) -> impl Iterator<Item = i32> + use<> {
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

pub(super) fn find_in_path(program: &str, env: &BTreeMap<String, String>) -> Option<String> {
    let path = env.get("PATH")?;
    path.split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
}

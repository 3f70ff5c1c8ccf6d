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
        // Where the kernel can, every bind below is left writable until one recursive
        // `mount_setattr` makes the whole root read-only, and the few mounts meant to be
        // writable are made so again after it: two system calls fewer per bind, of which a
        // compile has dozens. Elsewhere each bind is remounted read-only on its own.
        let one_pass = namespaces::mount_setattr_works();
        let mut writable_mounts: Vec<PathBuf> = Vec::new();
        let bind_read_only = |source: &Path,
                              target: &Path,
                              locked: libc::c_ulong,
                              steps: &mut Vec<Step>|
         -> io::Result<()> {
            steps.push(bind(source, target, 0)?);
            if !one_pass {
                steps.push(read_only(target, locked)?);
            }
            Ok(())
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
        let fixed = self.fixed_mounts();
        for (dir, locked) in &fixed.system_dirs {
            bind_read_only(Path::new(dir), &root.join(&dir[1..]), *locked, &mut steps)?;
        }
        for (node, locked) in &fixed.dev_nodes {
            // Read-only: the node still reads and writes, but a command running as its
            // owner (root) cannot chmod or chown the host's device.
            let host = Path::new("/dev").join(node);
            bind_read_only(&host, &root.join("dev").join(node), *locked, &mut steps)?;
        }
        for (source, target, locked) in &plan.binds {
            bind_read_only(source, target, *locked, &mut steps)?;
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
        for target in [root.join("tmp"), root.join("dev/shm")] {
            steps.push(tmpfs(&target)?);
            writable_mounts.push(target);
        }
        for path in tmpfs_paths {
            let target = make_dirs(path, &mut steps)?;
            steps.push(tmpfs(&target)?);
            writable_mounts.push(target);
        }
        for (host, inside) in mount_pairs {
            let meta = fs::metadata(host)?;
            let target = make_dirs(inside, &mut steps)?;
            bind_read_only(
                host,
                &target,
                self.locked_flags(host, meta.dev()),
                &mut steps,
            )?;
        }
        for host in writable_paths {
            let target = make_dirs(host, &mut steps)?;
            steps.push(bind(host, &target, 0)?);
            writable_mounts.push(target);
        }
        for dir in &plan.writable {
            steps.push(bind(dir, dir, 0)?);
            writable_mounts.push(dir.clone());
        }
        for dir in &plan.scratch {
            steps.push(tmpfs(dir)?);
            writable_mounts.push(dir.clone());
        }
        // Everything else in the root is read-only: writes outside the declared outputs fail.
        if one_pass {
            steps.push(Step::SetReadOnly {
                target: c(root)?,
                read_only: true,
                recursive: true,
            });
            // In the order they were mounted, so that a writable mount inside another is
            // made writable after it; only each mount itself, not what is bound inside it.
            for target in &writable_mounts {
                steps.push(Step::SetReadOnly {
                    target: c(target)?,
                    read_only: false,
                    recursive: false,
                });
            }
        } else {
            let root_locked = self.locked_flags(root, fs::metadata(root)?.dev());
            steps.push(read_only(root, root_locked)?);
        }
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
        for entry in &fixed.proc_read_only {
            let inside = root.join("proc").join(entry);
            steps.push(bind(&inside, &inside, 0)?);
            steps.push(read_only(&inside, proc_flags)?);
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

/// The mounts every command gets that depend only on the host: looked up once per build
/// rather than with a dozen `stat`s per command.
pub(super) struct FixedMounts {
    /// `SYSTEM_DIRS` that are directories here (a symlink is copied into the root as one),
    /// with the flags a read-only remount of them must keep.
    system_dirs: Vec<(&'static str, libc::c_ulong)>,
    /// `DEV_NODES` present here, likewise.
    dev_nodes: Vec<(&'static str, libc::c_ulong)>,
    /// `PROC_READ_ONLY` entries this kernel's proc has.
    proc_read_only: Vec<&'static str>,
}

impl SandboxRunner {
    fn fixed_mounts(&self) -> &FixedMounts {
        self.fixed.get_or_init(|| FixedMounts {
            system_dirs: SYSTEM_DIRS
                .into_iter()
                .filter_map(|dir| {
                    let m = fs::symlink_metadata(dir).ok().filter(|m| m.is_dir())?;
                    Some((dir, self.locked_flags(Path::new(dir), m.dev())))
                })
                .collect(),
            dev_nodes: DEV_NODES
                .into_iter()
                .filter_map(|node| {
                    let host = Path::new("/dev").join(node);
                    let m = fs::metadata(&host).ok()?;
                    Some((node, self.locked_flags(&host, m.dev())))
                })
                .collect(),
            proc_read_only: PROC_READ_ONLY
                .into_iter()
                .filter(|entry| Path::new("/proc").join(entry).exists())
                .collect(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ExecPath;

    /// A command seeing eight source directories in part, on a kernel with `mount_setattr`:
    /// each staged directory costs one bind and nothing more, the read-only remounts left are
    /// `/proc`'s, and the root with everything bound in it is made read-only in one step.
    #[test]
    fn binds_are_made_read_only_in_one_step() -> io::Result<()> {
        if !namespaces::mount_setattr_works() {
            eprintln!("skipped: no mount_setattr here");
            return Ok(());
        }
        let tmp = tempfile::tempdir()?;
        let exec_root = tmp.path().join("execroot");
        let mut inputs = Vec::new();
        for d in 0..8 {
            for f in ["a.h", "b.h", "hidden.cc"] {
                let path = format!("lib{d}/{f}");
                fs::create_dir_all(exec_root.join(format!("lib{d}")))?;
                fs::write(exec_root.join(&path), f)?;
                if f != "hidden.cc" {
                    inputs.push(ExecPath::new(path));
                }
            }
        }
        let runner = SandboxRunner::new(
            SandboxConfig {
                exec_root,
                workspace_name: "ws".into(),
                roots_dir: tmp.path().join("roots"),
                ..Default::default()
            },
            BTreeMap::new(),
            true,
        );
        // As the integration tests, this one needs the sandbox: it fails, not skips, without.
        if let Some(why) = runner.probe() {
            panic!("the sandbox is unavailable here: {why}");
        }
        let root = runner.take_root()?;
        let outputs = [ExecPath::new("forge-out/bin/lib0/a.o")];
        let plan = runner.plan(&root, &inputs, &outputs, &[], &[], false)?;
        let (output, _reader) = super::super::holders::pipe_pair()?;
        let cmd = runner.command(
            &plan,
            &root,
            "/bin/true",
            &["true".into()],
            &BTreeMap::new(),
            output,
            false,
            None,
        )?;
        let remounts = cmd
            .steps
            .iter()
            .filter(|s| matches!(s, Step::Mount { flags, .. } if flags & libc::MS_REMOUNT != 0))
            .count();
        assert_eq!(remounts, runner.fixed_mounts().proc_read_only.len());
        let staged = plan
            .binds
            .iter()
            .filter(|(_, target, _)| target.file_name().is_some_and(|n| n != "a.h"))
            .count();
        assert_eq!(
            staged, 8,
            "each directory staged and bound whole: {:?}",
            plan.binds
        );
        let recursive: Vec<_> = cmd
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::SetReadOnly {
                    target,
                    read_only: true,
                    recursive: true,
                } => Some(target.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(recursive, [c_root(&root)]);
        // The output's directory, /tmp and /dev/shm are made writable again.
        let writable = cmd
            .steps
            .iter()
            .filter(|s| {
                matches!(
                    s,
                    Step::SetReadOnly {
                        read_only: false,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(writable, 3);
        runner.give_back_net(cmd.net);
        runner.cleanup();
        Ok(())
    }

    fn c_root(root: &Path) -> CString {
        CString::new(root.as_os_str().as_encoded_bytes()).unwrap()
    }
}

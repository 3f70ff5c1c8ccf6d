//! A repository's `patches`: a patch file and `patch_args` in, checked never to write through
//! a symlink or outside the repository, then applied with patch(1).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::beneath::Beneath;

/// Why a patch was refused or did not apply.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("cannot read {}: {source}", .path.display())]
    Unreadable { path: PathBuf, source: io::Error },
    #[error("it names '{name}', which is outside the repository")]
    OutsideRepository { name: String },
    #[error(
        "it changes '{name}', but '{}' is a symlink and forge never writes through symlinks",
        .link.display()
    )]
    ThroughSymlink { name: String, link: PathBuf },
    #[error("cannot run patch(1): {0}")]
    CannotRun(io::Error),
    /// patch(1) ran and failed: what it printed.
    #[error("{output}")]
    Rejected { output: String },
}

/// The `-pN` of `patch_args` (patch(1)'s default strips nothing).
fn patch_strip(args: &[String]) -> usize {
    let mut strip = 0;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let value = if a == "-p" {
            it.next().map(String::as_str)
        } else {
            a.strip_prefix("--strip=").or_else(|| a.strip_prefix("-p"))
        };
        if let Some(n) = value.and_then(|v| v.parse().ok()) {
            strip = n;
        }
    }
    strip
}

/// Refuses a patch that would write through a symlink of the repository: every file it
/// names (`---`/`+++` lines, less `-pN` components) must be reached without one.
pub fn check_patch_targets(
    patch: &Path,
    args: &[String],
    repo: &Beneath,
) -> Result<(), PatchError> {
    let text = fs::read(patch).map_err(|source| PatchError::Unreadable {
        path: patch.to_owned(),
        source,
    })?;
    let strip = patch_strip(args);
    for line in String::from_utf8_lossy(&text).lines() {
        let Some(name) = line
            .strip_prefix("+++ ")
            .or_else(|| line.strip_prefix("--- "))
        else {
            continue;
        };
        let name = name.split('\t').next().unwrap_or("").trim();
        let name = name.trim_matches('"');
        if name == "/dev/null" || name.is_empty() {
            continue;
        }
        let parts: Vec<&str> = name.split('/').filter(|c| !c.is_empty()).collect();
        if parts.len() <= strip {
            continue;
        }
        let rel: PathBuf = parts[strip..].iter().collect();
        if rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(PatchError::OutsideRepository {
                name: name.to_owned(),
            });
        }
        let mut walked = PathBuf::new();
        for c in rel.components() {
            walked.push(c);
            if repo.read_link(&walked).is_some() {
                return Err(PatchError::ThroughSymlink {
                    name: name.to_owned(),
                    link: walked,
                });
            }
        }
    }
    Ok(())
}

/// Runs patch(1) on the repository's files in `dir`.
pub fn apply_patch(patch: &Path, args: &[String], dir: &Path) -> Result<(), PatchError> {
    let out = std::process::Command::new("patch")
        .args(args)
        .arg("-i")
        .arg(patch)
        .current_dir(dir)
        .output()
        .map_err(PatchError::CannotRun)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(PatchError::Rejected {
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        })
    }
}

//! Unpacking a downloaded archive: the file, its type, `strip_prefix` and `add_prefix` in; its
//! entries written below a directory out — refusing any entry that would land outside it
//! (absolute paths, `..`, links pointing out) or that is a device node.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

/// The archive formats forge unpacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    TarGz,
    Tar,
    TarXz,
    TarBz2,
    Zip,
}

impl Format {
    /// From `type` (`tar.gz`, `tgz`, `zip`, ...) or the end of a URL.
    pub fn of(name: &str) -> Option<Format> {
        let name = name.trim_start_matches('.').to_ascii_lowercase();
        let ends = |s: &str| name == s || name.ends_with(&format!(".{s}"));
        Some(if ends("tar.gz") || ends("tgz") {
            Format::TarGz
        } else if ends("tar.xz") || ends("txz") {
            Format::TarXz
        } else if ends("tar.bz2") || ends("tbz2") || ends("tbz") {
            Format::TarBz2
        } else if ends("tar") {
            Format::Tar
        } else if ends("zip") || ends("jar") {
            Format::Zip
        } else {
            return None;
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::TarGz => "tar.gz",
            Format::Tar => "tar",
            Format::TarXz => "tar.xz",
            Format::TarBz2 => "tar.bz2",
            Format::Zip => "zip",
        }
    }
}

/// What went wrong, for a message that names the entry.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("the archive is not a valid {format} file: {detail}")]
    Corrupt {
        format: &'static str,
        detail: String,
    },
    #[error("archive entry '{entry}' {why}; refusing to extract it")]
    Unsafe { entry: String, why: String },
    #[error(
        "strip_prefix '{prefix}' matches nothing in the archive; its top-level entries are: {found}"
    )]
    NoSuchPrefix { prefix: String, found: String },
    #[error("cannot write '{path}': {source}")]
    Io { path: String, source: io::Error },
}

/// Rejects paths that are absolute or climb with `..`; returns the normalised relative path.
fn safe_relative(entry: &str) -> Result<PathBuf, ExtractError> {
    let unsafe_entry = |why: &str| ExtractError::Unsafe {
        entry: entry.to_owned(),
        why: why.to_owned(),
    };
    let path = Path::new(entry);
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => return Err(unsafe_entry("has a '..' component")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(unsafe_entry("has an absolute path"));
            }
        }
    }
    Ok(out)
}

/// `entry` with `strip_prefix` removed (`None` if outside it) and `add_prefix` added.
fn relocate(entry: &Path, strip: &Path, add: &Path) -> Option<PathBuf> {
    let rest = entry.strip_prefix(strip).ok()?;
    if rest.as_os_str().is_empty() {
        return None;
    }
    Some(add.join(rest))
}

/// Whether a link at `link` (relative to the root) pointing at `target` stays inside.
fn link_stays_inside(link: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: i64 = link.components().count() as i64 - 1;
    for c in target.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

/// Unpacks `archive` into `dest` (which must exist and be empty).
pub fn extract(
    archive: &Path,
    format: Format,
    strip_prefix: &str,
    add_prefix: &str,
    dest: &Path,
) -> Result<(), ExtractError> {
    let strip = safe_relative(strip_prefix)?;
    let add = safe_relative(add_prefix)?;
    let io_err = |path: &Path, source: io::Error| ExtractError::Io {
        path: path.display().to_string(),
        source,
    };
    let corrupt = |detail: String| ExtractError::Corrupt {
        format: format.name(),
        detail,
    };
    let file = File::open(archive).map_err(|e| io_err(archive, e))?;
    let mut top_level = std::collections::BTreeSet::new();
    let mut wrote_any = false;
    match format {
        Format::Zip => {
            let mut zip = zip::ZipArchive::new(file).map_err(|e| corrupt(e.to_string()))?;
            for i in 0..zip.len() {
                let mut entry = zip.by_index(i).map_err(|e| corrupt(e.to_string()))?;
                let name = entry.name().to_owned();
                let rel = safe_relative(&name)?;
                if let Some(first) = rel.components().next() {
                    top_level.insert(first.as_os_str().to_string_lossy().into_owned());
                }
                let is_symlink = entry.unix_mode().is_some_and(|m| m & 0o170000 == 0o120000);
                let Some(out) = relocate(&rel, &strip, &add) else {
                    continue;
                };
                let path = dest.join(&out);
                if entry.is_dir() {
                    fs::create_dir_all(&path).map_err(|e| io_err(&path, e))?;
                    continue;
                }
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
                }
                if is_symlink {
                    let mut target = String::new();
                    entry
                        .read_to_string(&mut target)
                        .map_err(|e| corrupt(e.to_string()))?;
                    if !link_stays_inside(&out, Path::new(&target)) {
                        return Err(ExtractError::Unsafe {
                            entry: name,
                            why: format!("is a symlink to '{target}', outside the repository"),
                        });
                    }
                    std::os::unix::fs::symlink(&target, &path).map_err(|e| io_err(&path, e))?;
                } else {
                    let mut f = File::create(&path).map_err(|e| io_err(&path, e))?;
                    io::copy(&mut entry, &mut f).map_err(|e| corrupt(e.to_string()))?;
                    if let Some(mode) = entry.unix_mode() {
                        use std::os::unix::fs::PermissionsExt;
                        let _ =
                            fs::set_permissions(&path, fs::Permissions::from_mode(mode & 0o755));
                    }
                }
                wrote_any = true;
            }
        }
        _ => {
            let reader: Box<dyn Read> = match format {
                Format::TarGz => Box::new(flate2::read::GzDecoder::new(file)),
                Format::TarXz => Box::new(xz2::read::XzDecoder::new(file)),
                Format::TarBz2 => Box::new(bzip2::read::BzDecoder::new(file)),
                _ => Box::new(file),
            };
            let mut tar = tar::Archive::new(reader);
            let entries = tar.entries().map_err(|e| corrupt(e.to_string()))?;
            for entry in entries {
                let mut entry = entry.map_err(|e| corrupt(e.to_string()))?;
                let name = entry
                    .path()
                    .map_err(|e| corrupt(e.to_string()))?
                    .to_string_lossy()
                    .into_owned();
                let rel = safe_relative(&name)?;
                if let Some(first) = rel.components().next() {
                    top_level.insert(first.as_os_str().to_string_lossy().into_owned());
                }
                let kind = entry.header().entry_type();
                if kind.is_block_special() || kind.is_character_special() || kind.is_fifo() {
                    return Err(ExtractError::Unsafe {
                        entry: name,
                        why: "is a device node or fifo".to_owned(),
                    });
                }
                if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
                    continue;
                }
                let out = relocate(&rel, &strip, &add);
                if kind.is_symlink() || kind.is_hard_link() {
                    let target = entry
                        .link_name()
                        .map_err(|e| corrupt(e.to_string()))?
                        .map(|t| t.into_owned())
                        .unwrap_or_default();
                    let inside = if kind.is_symlink() {
                        link_stays_inside(&rel, &target)
                    } else {
                        // A hard link names another entry of the archive, from its root.
                        safe_relative(&target.to_string_lossy()).is_ok()
                    };
                    if !inside {
                        return Err(ExtractError::Unsafe {
                            entry: name,
                            why: format!(
                                "is a {} to '{}', outside the repository",
                                if kind.is_symlink() {
                                    "symlink"
                                } else {
                                    "hard link"
                                },
                                target.display()
                            ),
                        });
                    }
                    let Some(out) = out else { continue };
                    let path = dest.join(&out);
                    if let Some(parent) = path.parent() {
                        fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
                    }
                    if kind.is_symlink() {
                        std::os::unix::fs::symlink(&target, &path).map_err(|e| io_err(&path, e))?;
                    } else {
                        let original =
                            relocate(&safe_relative(&target.to_string_lossy())?, &strip, &add)
                                .map(|t| dest.join(t));
                        match original {
                            Some(original) => fs::hard_link(&original, &path)
                                .or_else(|_| fs::copy(&original, &path).map(drop))
                                .map_err(|e| io_err(&path, e))?,
                            None => continue,
                        }
                    }
                    wrote_any = true;
                    continue;
                }
                let Some(out) = out else { continue };
                let path = dest.join(&out);
                if kind.is_dir() {
                    fs::create_dir_all(&path).map_err(|e| io_err(&path, e))?;
                    continue;
                }
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
                }
                let mode = entry.header().mode().unwrap_or(0o644);
                let mut f = File::create(&path).map_err(|e| io_err(&path, e))?;
                io::copy(&mut entry, &mut f).map_err(|e| corrupt(e.to_string()))?;
                use std::os::unix::fs::PermissionsExt;
                let _ =
                    fs::set_permissions(&path, fs::Permissions::from_mode(mode & 0o755 | 0o644));
                wrote_any = true;
            }
        }
    }
    if !strip.as_os_str().is_empty() && !wrote_any {
        return Err(ExtractError::NoSuchPrefix {
            prefix: strip_prefix.to_owned(),
            found: if top_level.is_empty() {
                "(none: the archive is empty)".to_owned()
            } else {
                top_level.into_iter().collect::<Vec<_>>().join(", ")
            },
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_from_types_and_urls() {
        assert_eq!(Format::of("https://x/a-1.0.tar.gz"), Some(Format::TarGz));
        assert_eq!(Format::of("tgz"), Some(Format::TarGz));
        assert_eq!(Format::of("a.tar.xz"), Some(Format::TarXz));
        assert_eq!(Format::of("a.tar.bz2"), Some(Format::TarBz2));
        assert_eq!(Format::of("zip"), Some(Format::Zip));
        assert_eq!(Format::of("a.tar"), Some(Format::Tar));
        assert_eq!(Format::of("a.rar"), None);
    }

    #[test]
    fn links_must_stay_inside() {
        assert!(link_stays_inside(Path::new("a/b"), Path::new("c")));
        assert!(link_stays_inside(Path::new("a/b"), Path::new("../c")));
        assert!(!link_stays_inside(Path::new("a/b"), Path::new("../../c")));
        assert!(!link_stays_inside(Path::new("a"), Path::new("/etc/passwd")));
        assert!(safe_relative("../x").is_err());
        assert!(safe_relative("/x").is_err());
    }
}

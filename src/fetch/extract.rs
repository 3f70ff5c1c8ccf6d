//! Unpacking a downloaded archive: the file, its type, `strip_prefix`, `add_prefix` and the
//! limits in; its entries written below a directory out — never through a symlink, refusing
//! any entry that would land outside it (absolute paths, `..`, links that point out once
//! stripped and once the links already extracted are followed, hard links through links) or
//! that is a device node, and stopping at the size limit or at Ctrl-C.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::beneath::{Beneath, WalkError};

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
    #[error(
        "the archive unpacks to more than {} (at entry '{entry}'), the limit for one repository; \
         if you trust it, raise the limit with --experimental_repository_extract_limit=SIZE (e.g. 64G)",
        size(*.limit)
    )]
    TooLarge { entry: String, limit: u64 },
    #[error("extraction interrupted (Ctrl-C)")]
    Interrupted,
    #[error("cannot write '{path}': {source}{}", disk_full_hint(.source))]
    Io { path: String, source: io::Error },
}

/// A word on what to do when the disk is full.
pub fn disk_full_hint(e: &io::Error) -> &'static str {
    if e.kind() == io::ErrorKind::StorageFull || e.kind() == io::ErrorKind::QuotaExceeded {
        " — the disk is full: free some space (or use --output_base on a larger disk) and try again"
    } else {
        ""
    }
}

/// `1536` as `1.5 KiB`, for messages.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// How much one extraction may write, and what stops it.
#[derive(Clone, Copy)]
pub struct Limits<'a> {
    /// Bytes of file content, in all.
    pub max_bytes: u64,
    /// Set by Ctrl-C.
    pub interrupt: &'a AtomicBool,
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

/// Writes the entries below the destination, never through a symlink, within the limits.
struct Writer<'a> {
    dest: Beneath,
    root: &'a Path,
    limits: Limits<'a>,
    written: u64,
    /// The symlinks made (where, from which entry), checked again once all are in place.
    links: Vec<(PathBuf, String)>,
}

impl Writer<'_> {
    fn walk_error(&self, entry: &str, out: &Path, e: WalkError) -> ExtractError {
        match e {
            WalkError::Symlink(link) => ExtractError::Unsafe {
                entry: entry.to_owned(),
                why: format!(
                    "would be written through '{}', a symlink (forge never writes through symlinks)",
                    link.display()
                ),
            },
            WalkError::Io(source) => ExtractError::Io {
                path: self.root.join(out).display().to_string(),
                source,
            },
        }
    }

    fn check_interrupt(&self) -> Result<(), ExtractError> {
        if self.limits.interrupt.load(Ordering::SeqCst) {
            return Err(ExtractError::Interrupted);
        }
        Ok(())
    }

    fn dir(&mut self, entry: &str, out: &Path) -> Result<(), ExtractError> {
        self.check_interrupt()?;
        self.dest
            .dir(out, true)
            .map(drop)
            .map_err(|e| self.walk_error(entry, out, e))
    }

    fn file(
        &mut self,
        entry: &str,
        out: &Path,
        mode: u32,
        content: &mut dyn Read,
        corrupt: &dyn Fn(String) -> ExtractError,
    ) -> Result<(), ExtractError> {
        self.check_interrupt()?;
        let mut file = self
            .dest
            .create_file(out, 0o644)
            .map_err(|e| self.walk_error(entry, out, e))?;
        let io_err = |source| ExtractError::Io {
            path: self.root.join(out).display().to_string(),
            source,
        };
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match content.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(corrupt(e.to_string())),
            };
            self.written += n as u64;
            if self.written > self.limits.max_bytes {
                return Err(ExtractError::TooLarge {
                    entry: entry.to_owned(),
                    limit: self.limits.max_bytes,
                });
            }
            file.write_all(&buf[..n]).map_err(io_err)?;
            self.check_interrupt()?;
        }
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(io_err)?;
        Ok(())
    }

    fn symlink(&mut self, entry: &str, out: &Path, target: &Path) -> Result<(), ExtractError> {
        self.check_interrupt()?;
        if let Some(why) = self.dest.link_lands_outside(out, target) {
            return Err(ExtractError::Unsafe {
                entry: entry.to_owned(),
                why: format!(
                    "is a symlink to '{}', outside the repository ({why})",
                    target.display()
                ),
            });
        }
        self.dest
            .symlink(out, target)
            .map_err(|e| self.walk_error(entry, out, e))?;
        self.links.push((out.to_owned(), entry.to_owned()));
        Ok(())
    }

    fn hard_link(
        &mut self,
        entry: &str,
        out: &Path,
        target: &Path,
        original: &Path,
    ) -> Result<(), ExtractError> {
        self.check_interrupt()?;
        self.dest
            .hard_link(out, original)
            .map_err(|e| match e {
                WalkError::Symlink(link) => ExtractError::Unsafe {
                    entry: entry.to_owned(),
                    why: format!(
                        "is a hard link to '{}', which goes through '{}', a symlink (forge never follows symlinks when extracting)",
                        target.display(),
                        link.display()
                    ),
                },
                other => self.walk_error(entry, out, other),
            })
    }

    /// Every link once all are in place: a later link may change where an earlier one lands.
    fn finish(&self) -> Result<(), ExtractError> {
        for (out, entry) in &self.links {
            let Some(target) = self.dest.read_link(out) else {
                continue;
            };
            if let Some(why) = self.dest.link_lands_outside(out, &target) {
                return Err(ExtractError::Unsafe {
                    entry: entry.clone(),
                    why: format!(
                        "is a symlink to '{}', outside the repository once the archive's other links are in place ({why})",
                        target.display()
                    ),
                });
            }
        }
        Ok(())
    }
}

/// Unpacks `archive` into `dest` (which must exist and be empty). On an error `dest` holds
/// what was written so far: the caller removes it.
pub fn extract(
    archive: &Path,
    format: Format,
    strip_prefix: &str,
    add_prefix: &str,
    dest: &Path,
    limits: Limits,
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
    let mut w = Writer {
        dest: Beneath::open(dest).map_err(|e| io_err(dest, e))?,
        root: dest,
        limits,
        written: 0,
        links: Vec::new(),
    };
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
                if entry.is_dir() {
                    w.dir(&name, &out)?;
                    continue;
                }
                if is_symlink {
                    let mut target = String::new();
                    entry
                        .read_to_string(&mut target)
                        .map_err(|e| corrupt(e.to_string()))?;
                    w.symlink(&name, &out, Path::new(&target))?;
                } else {
                    let mode = entry.unix_mode().map_or(0o644, |m| m & 0o755 | 0o644);
                    w.file(&name, &out, mode, &mut entry, &corrupt)?;
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
                    let unsafe_link = |why: &str| ExtractError::Unsafe {
                        entry: name.clone(),
                        why: format!(
                            "is a {} to '{}', {why}",
                            if kind.is_symlink() {
                                "symlink"
                            } else {
                                "hard link"
                            },
                            target.display()
                        ),
                    };
                    if target.is_absolute() {
                        return Err(unsafe_link("outside the repository"));
                    }
                    // A hard link names another entry of the archive, from its root.
                    let original = match kind.is_hard_link() {
                        true => Some(
                            safe_relative(&target.to_string_lossy())
                                .map_err(|_| unsafe_link("outside the repository"))?,
                        ),
                        false => None,
                    };
                    let Some(out) = out else { continue };
                    match original {
                        None => w.symlink(&name, &out, &target)?,
                        Some(original) => match relocate(&original, &strip, &add) {
                            Some(original) => w.hard_link(&name, &out, &target, &original)?,
                            None => continue,
                        },
                    }
                    wrote_any = true;
                    continue;
                }
                let Some(out) = out else { continue };
                if kind.is_dir() {
                    w.dir(&name, &out)?;
                    continue;
                }
                let mode = entry.header().mode().unwrap_or(0o644) & 0o755 | 0o644;
                w.file(&name, &out, mode, &mut entry, &corrupt)?;
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
    w.finish()
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
    fn links_must_stay_inside_after_following_the_links_already_there() {
        let dir = tempfile::tempdir().unwrap();
        let b = Beneath::open(dir.path()).unwrap();
        let outside = |link: &str, target: &str| {
            b.link_lands_outside(Path::new(link), Path::new(target))
                .is_some()
        };
        assert!(!outside("a/b", "c"));
        assert!(!outside("a/b", "../c"));
        assert!(outside("a/b", "../../c"));
        assert!(outside("a", "/etc/passwd"));
        b.symlink(Path::new("a/b/up"), Path::new("../..")).unwrap();
        // Lexically a/b/x, really the root's parent.
        assert!(outside("a/b/esc", "up/../x"));
        assert!(!outside("a/b/ok", "up/a/x"));
        b.symlink(Path::new("loop"), Path::new("loop")).unwrap();
        assert!(outside("l", "loop/x"));
        assert!(matches!(
            b.create_file(Path::new("a/b/up/file"), 0o644),
            Err(WalkError::Symlink(p)) if p == Path::new("a/b/up")
        ));
        assert!(safe_relative("../x").is_err());
        assert!(safe_relative("/x").is_err());
    }
}

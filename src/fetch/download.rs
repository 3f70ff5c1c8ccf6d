//! Getting a file pinned by sha256: the URLs and the digest in, a verified file in the
//! repository cache out — found there, found in a `--distdir`, or downloaded (mirrors in
//! order, transient failures retried with backoff, progress shown for large files, written
//! to a temporary file renamed into place only once its digest is right).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

/// Where downloads are kept: `<dir>/content_addressable/sha256/<hex>/file`, shared by every
/// workspace of the user.
pub struct RepositoryCache {
    pub dir: PathBuf,
    pub distdirs: Vec<PathBuf>,
}

/// A failed download, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error(
        "sha256 mismatch for {url}: the file's digest is {actual}, but WORKSPACE pins {expected}"
    )]
    Mismatch {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("{0}")]
    Failed(String),
}

fn sha256_hex(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl RepositoryCache {
    fn entry(&self, sha256: &str) -> PathBuf {
        self.dir
            .join("content_addressable/sha256")
            .join(sha256)
            .join("file")
    }

    /// The cached file with this digest, re-verified (a damaged one is dropped).
    fn cached(&self, sha256: &str) -> Option<PathBuf> {
        let path = self.entry(sha256);
        match sha256_hex(&path) {
            Ok(actual) if actual == sha256 => Some(path),
            Ok(_) => {
                let _ = fs::remove_file(&path);
                None
            }
            Err(_) => None,
        }
    }

    /// Puts `file` (already verified) under its digest, atomically.
    fn adopt(&self, file: &Path, sha256: &str, copy: bool) -> io::Result<PathBuf> {
        let dest = self.entry(sha256);
        let dir = dest.parent().expect("entry has a parent");
        fs::create_dir_all(dir)?;
        if copy {
            let tmp = tempfile::NamedTempFile::new_in(dir)?;
            fs::copy(file, tmp.path())?;
            tmp.persist(&dest).map_err(|e| e.error)?;
        } else {
            fs::rename(file, &dest)?;
        }
        Ok(dest)
    }

    /// The file pinned by `sha256`: from the cache, a distdir, or the first URL that works.
    pub fn get(&self, urls: &[String], sha256: &str, what: &str) -> Result<PathBuf, DownloadError> {
        let sha256 = sha256.to_ascii_lowercase();
        if let Some(path) = self.cached(&sha256) {
            return Ok(path);
        }
        for dir in &self.distdirs {
            for url in urls {
                let Some(base) = url.rsplit('/').next() else {
                    continue;
                };
                let candidate = dir.join(base);
                if sha256_hex(&candidate).is_ok_and(|d| d == sha256) {
                    return self
                        .adopt(&candidate, &sha256, true)
                        .map_err(|e| DownloadError::Failed(format!("cannot cache {base}: {e}")));
                }
            }
        }
        let (tmp, actual, url) = self.download_any(urls, what)?;
        if actual != sha256 {
            let _ = fs::remove_file(&tmp);
            return Err(DownloadError::Mismatch {
                url,
                expected: sha256,
                actual,
            });
        }
        self.adopt(&tmp, &sha256, false)
            .map_err(|e| DownloadError::Failed(format!("cannot cache the download: {e}")))
    }

    /// Downloads without a pin, to tell the user what to pin: the file's sha256 and URL.
    pub fn digest_of(
        &self,
        urls: &[String],
        what: &str,
    ) -> Result<(String, String), DownloadError> {
        let (tmp, actual, url) = self.download_any(urls, what)?;
        // Keep it: once pinned, the next fetch needs no network.
        let _ = self.adopt(&tmp, &actual, false);
        Ok((actual, url))
    }

    /// Tries each URL in turn; a temporary file in the cache, its sha256 and its URL.
    fn download_any(
        &self,
        urls: &[String],
        what: &str,
    ) -> Result<(PathBuf, String, String), DownloadError> {
        let tmp_dir = self.dir.join("tmp");
        fs::create_dir_all(&tmp_dir).map_err(|e| {
            DownloadError::Failed(format!("cannot create {}: {e}", tmp_dir.display()))
        })?;
        let mut errors = Vec::new();
        for url in urls {
            match download(url, &tmp_dir, what) {
                Ok((path, digest)) => return Ok((path, digest, url.clone())),
                Err(e) => {
                    eprintln!("WARNING: Download from {url} failed: {e}");
                    errors.push(format!("{url}: {e}"));
                }
            }
        }
        Err(DownloadError::Failed(format!(
            "every URL failed:\n  {}",
            errors.join("\n  ")
        )))
    }
}

/// Whether an HTTP failure may go away by itself.
fn transient(status: Option<reqwest::StatusCode>) -> bool {
    match status {
        None => true,
        Some(s) => s.is_server_error() || s == reqwest::StatusCode::TOO_MANY_REQUESTS,
    }
}

/// One URL, with up to three tries for transient failures; a temporary file and its sha256.
fn download(url: &str, tmp_dir: &Path, what: &str) -> Result<(PathBuf, String), String> {
    if let Some(path) = url.strip_prefix("file://") {
        let mut tmp = tempfile::NamedTempFile::new_in(tmp_dir).map_err(|e| e.to_string())?;
        let mut src = File::open(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        io::copy(&mut src, &mut tmp).map_err(|e| e.to_string())?;
        let (_, kept) = tmp.keep().map_err(|e| e.to_string())?;
        let digest = sha256_hex(&kept).map_err(|e| e.to_string())?;
        return Ok((kept, digest));
    }
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(600))
        .build()
        .map_err(|e| e.to_string())?;
    let mut delay = Duration::from_millis(300);
    let mut last = String::new();
    for attempt in 0..3 {
        if attempt > 0 {
            std::thread::sleep(delay);
            delay *= 3;
        }
        let response = match client.get(url).send() {
            Ok(r) => r,
            Err(e) => {
                last = describe(&e);
                if transient(e.status()) {
                    continue;
                }
                return Err(last);
            }
        };
        let status = response.status();
        if !status.is_success() {
            last = format!("HTTP {status}");
            if transient(Some(status)) {
                continue;
            }
            return Err(last);
        }
        match save(response, tmp_dir, what) {
            Ok(done) => return Ok(done),
            Err(e) => last = e,
        }
    }
    Err(format!("{last} (after 3 tries)"))
}

/// The error of a request, with its cause (reqwest's own message alone is vague).
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// Streams a response to a temporary file while hashing; shows progress for large files.
fn save(
    mut response: reqwest::blocking::Response,
    tmp_dir: &Path,
    what: &str,
) -> Result<(PathBuf, String), String> {
    let total = response.content_length();
    let mut tmp = tempfile::NamedTempFile::new_in(tmp_dir).map_err(|e| e.to_string())?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut done: u64 = 0;
    let started = Instant::now();
    let mut shown = Instant::now();
    loop {
        let n = response.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        tmp.write_all(&buf[..n]).map_err(|e| e.to_string())?;
        done += n as u64;
        if started.elapsed() > Duration::from_secs(1) && shown.elapsed() > Duration::from_secs(1) {
            shown = Instant::now();
            let of = total.map_or(String::new(), |t| format!(" of {:.1} MB", t as f64 / 1e6));
            eprintln!("Fetching {what}: {:.1} MB{of}", done as f64 / 1e6);
        }
    }
    if let Some(t) = total
        && t != done
    {
        return Err(format!("the download stopped after {done} of {t} bytes"));
    }
    let (_, kept) = tmp.keep().map_err(|e| e.to_string())?;
    Ok((kept, hex(&hasher.finalize())))
}

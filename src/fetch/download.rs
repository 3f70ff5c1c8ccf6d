//! Getting a file pinned by sha256: the URLs and the digest in, a verified file in the
//! repository cache out — found there, found in a `--distdir`, or downloaded (mirrors in
//! order, transient failures retried with backoff, progress shown for large files, written
//! to a temporary file renamed into place only once its digest is right). A download that
//! receives nothing for the stall timeout fails, and Ctrl-C stops one at once.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use super::extract::disk_full_hint;
use crate::core::fs::{IoContext, PathError};

/// Where downloads are kept: `<dir>/content_addressable/sha256/<hex>/file`, shared by every
/// workspace of the user.
pub struct RepositoryCache {
    pub dir: PathBuf,
    pub distdirs: Vec<PathBuf>,
    /// A download that receives nothing for this long fails.
    pub stall_timeout: Duration,
    /// Set by Ctrl-C: a download stops at once.
    pub interrupt: &'static AtomicBool,
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
    #[error("download interrupted (Ctrl-C)")]
    Interrupted,
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
            match self.download(url, &tmp_dir, what) {
                Ok((path, digest)) => return Ok((path, digest, url.clone())),
                Err(Attempt::Interrupted) => return Err(DownloadError::Interrupted),
                Err(Attempt::Failed { message, .. }) => {
                    eprintln!("WARNING: Download from {url} failed: {message}");
                    errors.push(format!("{url}: {message}"));
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

/// Why one try at a URL ended.
enum Attempt {
    Failed { message: String, retry: bool },
    Interrupted,
}

impl Attempt {
    fn fatal(message: String) -> Attempt {
        Attempt::Failed {
            message,
            retry: false,
        }
    }
}

/// How often a waiting download looks at the Ctrl-C flag and the stall clock.
const POLL: Duration = Duration::from_millis(50);

/// The rules one download follows: how long it may go without a byte, and what stops it.
struct Watch<'a> {
    url: &'a str,
    stall: Duration,
    interrupt: &'a AtomicBool,
}

impl Watch<'_> {
    /// `fut`'s output, unless Ctrl-C comes first or nothing arrived for the stall timeout
    /// since `progress`.
    async fn wait<F: std::future::Future>(
        &self,
        fut: F,
        progress: Instant,
        waiting_for: &str,
    ) -> Result<F::Output, Attempt> {
        let mut fut = std::pin::pin!(fut);
        loop {
            if let Ok(out) = tokio::time::timeout(POLL, fut.as_mut()).await {
                return Ok(out);
            }
            if self.interrupt.load(Ordering::SeqCst) {
                return Err(Attempt::Interrupted);
            }
            if progress.elapsed() >= self.stall {
                return Err(Attempt::fatal(format!(
                    "the download stalled: {} sent nothing for {} while forge waited for {waiting_for} \
                     (a server that does not answer; to wait longer, use --http_stall_timeout=SECONDS)",
                    self.url,
                    seconds(self.stall)
                )));
            }
        }
    }

    async fn pause(&self, delay: Duration) -> Result<(), Attempt> {
        let until = Instant::now() + delay;
        while Instant::now() < until {
            if self.interrupt.load(Ordering::SeqCst) {
                return Err(Attempt::Interrupted);
            }
            tokio::time::sleep(POLL.min(until - Instant::now())).await;
        }
        Ok(())
    }
}

/// `2.5 s`, `60 s`, for messages.
fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s} s")
    }
}

impl RepositoryCache {
    /// One URL, with up to three tries for transient failures; a temporary file and its
    /// sha256. A stall or Ctrl-C ends it at once.
    fn download(
        &self,
        url: &str,
        tmp_dir: &Path,
        what: &str,
    ) -> Result<(PathBuf, String), Attempt> {
        if let Some(path) = url.strip_prefix("file://") {
            let fatal = |e: String| Attempt::fatal(e);
            let failed = |e: PathError| Attempt::fatal(e.to_string());
            let mut tmp = tempfile::NamedTempFile::new_in(tmp_dir)
                .at("create a temporary file in", tmp_dir)
                .map_err(failed)?;
            let mut src =
                File::open(path).map_err(|e| fatal(format!("cannot read {path}: {e}")))?;
            io::copy(&mut src, &mut tmp)
                .map_err(|e| fatal(format!("{e}{}", disk_full_hint(&e))))?;
            let tmp_path = tmp.path().to_owned();
            let (_, kept) = tmp
                .keep()
                .map_err(|e| e.error)
                .at("keep", &tmp_path)
                .map_err(failed)?;
            let digest = sha256_hex(&kept).at("read", &kept).map_err(failed)?;
            return Ok((kept, digest));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Attempt::fatal(format!("cannot start the downloader: {e}")))?;
        let watch = Watch {
            url,
            stall: self.stall_timeout,
            interrupt: self.interrupt,
        };
        runtime.block_on(async {
            let client = reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| Attempt::fatal(e.to_string()))?;
            let mut delay = Duration::from_millis(300);
            let mut last = String::new();
            for attempt in 0..3 {
                if attempt > 0 {
                    watch.pause(delay).await?;
                    delay *= 3;
                }
                match fetch_once(&client, &watch, tmp_dir, what).await {
                    Ok(done) => return Ok(done),
                    Err(Attempt::Failed {
                        message,
                        retry: true,
                    }) => last = message,
                    Err(other) => return Err(other),
                }
            }
            Err(Attempt::fatal(format!("{last} (after 3 tries)")))
        })
    }
}

/// One request: the response streamed to a temporary file while hashing, with progress shown
/// for large files.
async fn fetch_once(
    client: &reqwest::Client,
    watch: &Watch<'_>,
    tmp_dir: &Path,
    what: &str,
) -> Result<(PathBuf, String), Attempt> {
    let started = Instant::now();
    let response = match watch
        .wait(client.get(watch.url).send(), started, "an answer")
        .await?
    {
        Ok(r) => r,
        Err(e) => {
            return Err(Attempt::Failed {
                message: describe(&e),
                retry: transient(e.status()),
            });
        }
    };
    let status = response.status();
    if !status.is_success() {
        return Err(Attempt::Failed {
            message: format!("HTTP {status}"),
            retry: transient(Some(status)),
        });
    }
    let mut response = response;
    let total = response.content_length();
    let saving = |e: io::Error| {
        Attempt::fatal(format!(
            "cannot save the download in {}: {e}{}",
            tmp_dir.display(),
            disk_full_hint(&e)
        ))
    };
    let mut tmp = tempfile::NamedTempFile::new_in(tmp_dir).map_err(saving)?;
    let mut hasher = Sha256::new();
    let mut done: u64 = 0;
    let mut shown = Instant::now();
    let mut progress = Instant::now();
    loop {
        let chunk = watch
            .wait(response.chunk(), progress, "more data")
            .await?
            .map_err(|e| Attempt::Failed {
                message: describe(&e),
                retry: true,
            })?;
        let Some(chunk) = chunk else { break };
        progress = Instant::now();
        hasher.update(&chunk);
        tmp.write_all(&chunk).map_err(saving)?;
        done += chunk.len() as u64;
        if started.elapsed() > Duration::from_secs(1) && shown.elapsed() > Duration::from_secs(1) {
            shown = Instant::now();
            let of = total.map_or(String::new(), |t| format!(" of {:.1} MB", t as f64 / 1e6));
            eprintln!("Fetching {what}: {:.1} MB{of}", done as f64 / 1e6);
        }
    }
    if let Some(t) = total
        && t != done
    {
        return Err(Attempt::Failed {
            message: format!("the download stopped after {done} of {t} bytes"),
            retry: true,
        });
    }
    let (_, kept) = tmp.keep().map_err(|e| saving(e.error))?;
    Ok((kept, hex(&hasher.finalize())))
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

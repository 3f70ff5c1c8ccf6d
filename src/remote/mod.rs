//! The remote cache: forge's action and test keys (BLAKE3) and the files they produced in,
//! shared with other machines through a server that already exists — Bazel's HTTP cache
//! protocol (`/ac/`, `/cas/`) or the REAPI v2 cache services over gRPC — and verified files
//! back out.
//!
//! A remote cache is an optimisation: every failure to reach it, every timeout and every error
//! it answers is reported once ("WARNING: remote cache ... unavailable") and the rest of the
//! command runs without it. A blob whose content does not match its digest is never used: the
//! result it belongs to is a miss, so the action runs.
//!
//! On the server, an entry is an REAPI `ActionResult` under the SHA-256 (or BLAKE3, when a
//! gRPC server offers it) of a fixed prefix plus forge's own key; its `output_files` name the
//! outputs by exec path and their blobs live in the CAS. `docs/remote-cache.md` shows the
//! layout.

pub mod bots;
pub mod execution;
mod grpc;
mod http;
pub mod merkle;
pub mod proto;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sha2::Digest as _;

use crate::core::{Digest, ExecPath};

/// How the user configured the remote cache.
#[derive(Clone, Debug)]
pub struct RemoteSpec {
    /// `http://`, `https://`, `grpc://` or `grpcs://` URL (user:password@ allowed).
    pub url: String,
    /// `--remote_header` pairs, sent with every request.
    pub headers: Vec<(String, String)>,
    /// `--remote_instance_name` (gRPC only).
    pub instance_name: String,
    /// `--remote_timeout`: for connecting and for each request.
    pub timeout: Duration,
    /// `--remote_upload_local_results`.
    pub upload: bool,
    /// `--remote_accept_cached`.
    pub accept: bool,
}

/// What a remote entry is the result of; each kind hashes its keys with its own prefix so a
/// test key can never be read as an action key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Action,
    Test,
    /// Which files a build's plan was computed from (`ops::build_entry`).
    BuildManifest,
    /// A whole build: its plan and its actions' results (`ops::build_entry`).
    Build,
}

/// The name of the node property in which forge records an output file's BLAKE3 digest, the
/// one it keys dependents with: a client that leaves the file remote (build without the
/// bytes) keys them as a client that downloaded it does.
pub const BLAKE3_PROPERTY: &str = "forge-blake3";

/// The node properties naming `data`'s BLAKE3 digest.
pub fn blake3_property(data: &[u8]) -> proto::NodeProperties {
    proto::NodeProperties {
        properties: vec![proto::NodeProperty {
            name: BLAKE3_PROPERTY.to_owned(),
            value: Digest::of_bytes(data).to_hex(),
        }],
        ..Default::default()
    }
}

/// The BLAKE3 digest an output file's node properties name, if any.
pub fn blake3_of(file: &proto::OutputFile) -> Option<Digest> {
    let property = file
        .node_properties
        .as_ref()?
        .properties
        .iter()
        .find(|p| p.name == BLAKE3_PROPERTY)?;
    Digest::from_hex(&property.value)
}

/// One output file of a cached result: where it goes and what it holds (verified).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteFile {
    pub path: ExecPath,
    pub executable: bool,
    pub data: Vec<u8>,
}

/// A file to upload: its exec path, whether it is executable and where to read it.
pub struct LocalFile {
    pub path: ExecPath,
    pub executable: bool,
    pub source: PathBuf,
}

/// The hash the server's CAS is addressed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashFn {
    Sha256,
    Blake3,
}

impl HashFn {
    pub fn digest(self, data: &[u8]) -> proto::Digest {
        let hash = match self {
            HashFn::Sha256 => Digest(sha2::Sha256::digest(data).into()).to_hex(),
            HashFn::Blake3 => Digest::of_bytes(data).to_hex(),
        };
        proto::Digest {
            hash,
            size_bytes: i64::try_from(data.len()).unwrap_or(i64::MAX),
        }
    }

    /// `DigestFunction.Value` for requests: 0 (let the server infer it) for SHA-256, which
    /// every server speaks, so servers older than the field understand us too.
    pub fn proto_value(self) -> i32 {
        match self {
            HashFn::Sha256 => 0,
            HashFn::Blake3 => proto::DIGEST_BLAKE3,
        }
    }
}

/// An error talking to the server (connection, timeout, unexpected status, bad message).
#[derive(Debug)]
pub struct RemoteError(pub String);

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

type Result<T> = std::result::Result<T, RemoteError>;

/// One protocol.
trait Backend: Send + Sync {
    fn hash_fn(&self) -> HashFn;
    /// `Ok(None)` when the server has no entry.
    fn get_action_result(&self, key: &proto::Digest) -> Result<Option<proto::ActionResult>>;
    fn update_action_result(&self, key: &proto::Digest, result: &proto::ActionResult)
    -> Result<()>;
    /// Stores the blobs the server does not have yet (each `data` hashes to its digest).
    fn upload_blobs(&self, blobs: Vec<(proto::Digest, Vec<u8>)>) -> Result<()>;
    /// The blobs the server has, by hash, unverified; missing ones are left out.
    fn read_blobs(&self, digests: &[proto::Digest]) -> Result<HashMap<String, Vec<u8>>>;
}

/// A connection to one remote cache, shared by the threads of one command.
pub struct RemoteCache {
    spec: RemoteSpec,
    /// The URL without credentials, for messages.
    shown: String,
    /// Connected on first use (a gRPC connection asks the server's capabilities first).
    backend: OnceLock<Option<Box<dyn Backend>>>,
    /// Set after the first failure: the rest of the command runs without the remote.
    disabled: AtomicBool,
}

impl fmt::Debug for RemoteCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RemoteCache({})", self.shown)
    }
}

/// Why a remote cache's settings are refused; each is the user's flag to fix.
#[derive(Debug, thiserror::Error)]
pub enum RemoteSpecError {
    #[error("--remote_cache expects an http://, https://, grpc:// or grpcs:// URL, not '{0}'")]
    Scheme(String),
    /// The URL parser's reason (reqwest does not export its error type).
    #[error("--remote_cache: bad URL '{url}': {reason}")]
    Url { url: String, reason: String },
    #[error("--remote_cache: no host in '{0}'")]
    NoHost(String),
    #[error("--remote_header: invalid header '{name}={value}'")]
    Header { name: String, value: String },
}

impl RemoteCache {
    /// Checks the URL (a bad one is the caller's usage error); connects on first use.
    pub fn new(spec: RemoteSpec) -> std::result::Result<RemoteCache, RemoteSpecError> {
        let scheme = spec.url.split("://").next().unwrap_or("");
        if !spec.url.contains("://") || !matches!(scheme, "http" | "https" | "grpc" | "grpcs") {
            return Err(RemoteSpecError::Scheme(spec.url.clone()));
        }
        let parsed = reqwest::Url::parse(&spec.url).map_err(|e| RemoteSpecError::Url {
            url: spec.url.clone(),
            reason: e.to_string(),
        })?;
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(RemoteSpecError::NoHost(spec.url.clone()));
        }
        for (name, value) in &spec.headers {
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err()
                || reqwest::header::HeaderValue::from_str(value).is_err()
            {
                return Err(RemoteSpecError::Header {
                    name: name.clone(),
                    value: value.clone(),
                });
            }
        }
        let mut shown = parsed.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        Ok(RemoteCache {
            shown: shown.to_string().trim_end_matches('/').to_owned(),
            spec,
            backend: OnceLock::new(),
            disabled: AtomicBool::new(false),
        })
    }

    pub fn url(&self) -> &str {
        &self.shown
    }

    /// Whether lookups may use the remote (`--remote_accept_cached`).
    pub fn accepts(&self) -> bool {
        self.spec.accept && !self.disabled.load(Ordering::Relaxed)
    }

    /// Whether local results are uploaded (`--remote_upload_local_results`).
    pub fn uploads(&self) -> bool {
        self.spec.upload && !self.disabled.load(Ordering::Relaxed)
    }

    fn backend(&self) -> Option<&dyn Backend> {
        if self.disabled.load(Ordering::Relaxed) {
            return None;
        }
        let backend = self.backend.get_or_init(|| {
            let connected: Result<Box<dyn Backend>> = if self.spec.url.starts_with("grpc") {
                grpc::GrpcBackend::connect(&self.spec).map(|b| Box::new(b) as Box<dyn Backend>)
            } else {
                http::HttpBackend::new(&self.spec).map(|b| Box::new(b) as Box<dyn Backend>)
            };
            match connected {
                Ok(b) => Some(b),
                Err(e) => {
                    self.give_up(&e);
                    None
                }
            }
        });
        backend.as_deref()
    }

    /// Reports the first failure and turns the remote off for the rest of the command.
    fn give_up(&self, error: &RemoteError) {
        if !self.disabled.swap(true, Ordering::SeqCst) {
            eprintln!(
                "WARNING: remote cache {} is unavailable ({error}); continuing without it",
                self.shown
            );
        }
    }

    fn key(&self, hash: HashFn, kind: KeyKind, key: &Digest) -> proto::Digest {
        let prefix: &[u8] = match kind {
            KeyKind::Action => b"forge-remote-action-v1\0",
            KeyKind::Test => b"forge-remote-test-v1\0",
            KeyKind::BuildManifest => b"forge-remote-build-manifest-v1\0",
            KeyKind::Build => b"forge-remote-build-v1\0",
        };
        let mut bytes = prefix.to_vec();
        bytes.extend_from_slice(&key.0);
        hash.digest(&bytes)
    }

    /// The files of the result cached under `key`, verified, in the order of `paths` — which
    /// must be exactly the entry's output files. `None` on a miss, on any error (reported
    /// once) and when a blob does not match its digest (reported each time).
    pub fn fetch(
        &self,
        kind: KeyKind,
        key: &Digest,
        paths: &[ExecPath],
    ) -> Option<Vec<RemoteFile>> {
        let result = self.cached_result(kind, key, paths)?;
        let backend = self.backend()?;
        let hash = backend.hash_fn();
        let mut by_path: HashMap<&str, &proto::OutputFile> = HashMap::new();
        for f in &result.output_files {
            by_path.insert(f.path.as_str(), f);
        }
        let mut wanted = Vec::with_capacity(paths.len());
        for p in paths {
            let f = by_path.get(p.as_str())?;
            wanted.push((*f, f.digest.clone()?));
        }
        // Inlined contents and the empty blob need no download.
        let to_read: Vec<proto::Digest> = wanted
            .iter()
            .filter(|(f, d)| d.size_bytes > 0 && f.contents.is_empty())
            .map(|(_, d)| d.clone())
            .collect();
        let mut blobs = match to_read.is_empty() {
            true => HashMap::new(),
            false => match backend.read_blobs(&to_read) {
                Ok(b) => b,
                Err(e) => {
                    self.give_up(&e);
                    return None;
                }
            },
        };
        let mut files = Vec::with_capacity(wanted.len());
        for (f, digest) in wanted {
            let data = if digest.size_bytes == 0 {
                Vec::new()
            } else if !f.contents.is_empty() {
                f.contents.clone()
            } else {
                blobs.remove(&digest.hash)?
            };
            if hash.digest(&data) != digest {
                eprintln!(
                    "WARNING: remote cache {}: the blob {}/{} for '{}' does not match its digest; ignoring the cached result",
                    self.shown, digest.hash, digest.size_bytes, f.path
                );
                return None;
            }
            files.push(RemoteFile {
                path: ExecPath::new(f.path.clone()),
                executable: f.is_executable,
                data,
            });
        }
        Some(files)
    }

    /// Uploads `blobs` (each once), then `result` as the entry for `key`: blobs first, so an
    /// entry never names a blob the server lacks. Errors are reported once.
    fn upload_entry(
        &self,
        backend: &dyn Backend,
        kind: KeyKind,
        key: &Digest,
        mut blobs: Vec<(proto::Digest, Vec<u8>)>,
        result: &proto::ActionResult,
    ) {
        blobs.sort_by(|a, b| (&a.0.hash, a.0.size_bytes).cmp(&(&b.0.hash, b.0.size_bytes)));
        blobs.dedup_by(|a, b| a.0 == b.0);
        let hash = backend.hash_fn();
        let outcome = backend
            .upload_blobs(blobs)
            .and_then(|()| backend.update_action_result(&self.key(hash, kind, key), result));
        if let Err(e) = outcome {
            self.give_up(&e);
        }
    }

    /// Uploads `files` (blobs first) and then the entry for `key`. Errors are reported once.
    pub fn store(&self, kind: KeyKind, key: &Digest, files: &[LocalFile]) {
        // Checked before anything is read: a build that shares nothing reads nothing.
        if !self.uploads() || self.backend().is_none() {
            return;
        }
        let mut outputs = Vec::with_capacity(files.len());
        for f in files {
            let data = match std::fs::read(&f.source) {
                Ok(d) => d,
                // The output vanished (the user deleted it); nothing to share.
                Err(_) => return,
            };
            let file = proto::OutputFile {
                path: f.path.to_string(),
                is_executable: f.executable,
                node_properties: Some(blake3_property(&data)),
                ..Default::default()
            };
            outputs.push((file, data));
        }
        self.store_outputs(kind, key, outputs);
    }

    /// Uploads `files` (name and bytes; blobs first) and then the entry for `key` naming
    /// them. Errors are reported once.
    pub fn store_bytes(&self, kind: KeyKind, key: &Digest, files: Vec<(ExecPath, Vec<u8>)>) {
        let outputs = files.into_iter().map(|(path, data)| {
            let file = proto::OutputFile {
                path: path.to_string(),
                ..Default::default()
            };
            (file, data)
        });
        self.store_outputs(kind, key, outputs);
    }

    /// Digests each file's bytes into its entry, then uploads the blobs and the entry.
    fn store_outputs(
        &self,
        kind: KeyKind,
        key: &Digest,
        files: impl IntoIterator<Item = (proto::OutputFile, Vec<u8>)>,
    ) {
        if !self.uploads() {
            return;
        }
        let Some(backend) = self.backend() else {
            return;
        };
        let hash = backend.hash_fn();
        let mut blobs = Vec::new();
        let mut result = proto::ActionResult::default();
        for (mut file, data) in files {
            let digest = hash.digest(&data);
            file.digest = Some(digest.clone());
            result.output_files.push(file);
            if !data.is_empty() {
                blobs.push((digest, data));
            }
        }
        self.upload_entry(backend, kind, key, blobs, &result);
    }
}

/// An output file of a cached result left in the server's CAS: where it goes and the digest
/// its bytes have there (build without the bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteBlob {
    pub path: ExecPath,
    pub executable: bool,
    pub digest: proto::Digest,
    /// Its BLAKE3 digest, when the entry names it (`BLAKE3_PROPERTY`).
    pub blake3: Option<Digest>,
}

impl RemoteCache {
    /// The successful result cached under `key` whose output files are exactly `paths` (no
    /// directories); `None` on a miss, another shape, or an error (reported once).
    fn cached_result(
        &self,
        kind: KeyKind,
        key: &Digest,
        paths: &[ExecPath],
    ) -> Option<proto::ActionResult> {
        if !self.accepts() {
            return None;
        }
        let backend = self.backend()?;
        let result = match backend.get_action_result(&self.key(backend.hash_fn(), kind, key)) {
            Ok(Some(r)) => r,
            Ok(None) => return None,
            Err(e) => {
                self.give_up(&e);
                return None;
            }
        };
        let same_shape = result.exit_code == 0
            && result.output_directories.is_empty()
            && result.output_files.len() == paths.len();
        same_shape.then_some(result)
    }

    /// The output files of the result cached under `key`, as digests in the server's CAS,
    /// nothing downloaded; in the order of `paths`, which must be exactly the entry's output
    /// files. `None` on a miss or an error (reported once). Whether the blobs are still there
    /// is found out when one is needed (`read_verified`).
    pub fn fetch_digests(
        &self,
        kind: KeyKind,
        key: &Digest,
        paths: &[ExecPath],
    ) -> Option<Vec<RemoteBlob>> {
        let result = self.cached_result(kind, key, paths)?;
        let mut blobs = Vec::with_capacity(paths.len());
        for p in paths {
            let f = result.output_files.iter().find(|f| f.path == p.as_str())?;
            blobs.push(RemoteBlob {
                path: p.clone(),
                executable: f.is_executable,
                digest: f.digest.clone()?,
                blake3: blake3_of(f),
            });
        }
        Some(blobs)
    }

    /// Records under `key` a result whose output files are already in the server's CAS
    /// (executed there): only the entry is uploaded. Errors are reported once.
    pub fn store_digests(&self, kind: KeyKind, key: &Digest, files: &[RemoteBlob]) {
        if !self.uploads() {
            return;
        }
        let Some(backend) = self.backend() else {
            return;
        };
        let result = proto::ActionResult {
            output_files: files
                .iter()
                .map(|f| proto::OutputFile {
                    path: f.path.to_string(),
                    digest: Some(f.digest.clone()),
                    is_executable: f.executable,
                    node_properties: f.blake3.map(|d| proto::NodeProperties {
                        properties: vec![proto::NodeProperty {
                            name: BLAKE3_PROPERTY.to_owned(),
                            value: d.to_hex(),
                        }],
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        if let Err(e) =
            backend.update_action_result(&self.key(backend.hash_fn(), kind, key), &result)
        {
            self.give_up(&e);
        }
    }

    /// The hash the server's CAS is addressed by; `None` when it cannot be reached.
    pub fn hash_fn(&self) -> Option<HashFn> {
        self.backend().map(|b| b.hash_fn())
    }

    /// The blobs, each checked against its digest. `Err` when the server cannot be reached;
    /// a blob it does not have (evicted) or that does not match its digest is left out, for
    /// the caller to name.
    pub fn read_verified(
        &self,
        digests: &[proto::Digest],
    ) -> std::result::Result<HashMap<String, Vec<u8>>, String> {
        let Some(backend) = self.backend() else {
            return Err(format!("the remote cache {} is unavailable", self.shown));
        };
        let hash = backend.hash_fn();
        let wanted: Vec<proto::Digest> = digests
            .iter()
            .filter(|d| d.size_bytes > 0)
            .cloned()
            .collect();
        let mut blobs = match wanted.is_empty() {
            true => HashMap::new(),
            false => backend.read_blobs(&wanted).map_err(|e| {
                self.give_up(&e);
                e.to_string()
            })?,
        };
        blobs.retain(|h, data| {
            wanted
                .iter()
                .any(|d| d.hash == *h && hash.digest(data) == *d)
        });
        for d in digests.iter().filter(|d| d.size_bytes == 0) {
            blobs.insert(d.hash.clone(), Vec::new());
        }
        Ok(blobs)
    }
}

/// `--remote_timeout`: `60`, `60s`, `500ms`, `2m`.
pub fn parse_timeout(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: f64 = number.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        _ => return None,
    };
    (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("60"), Some(Duration::from_secs(60)));
        assert_eq!(parse_timeout("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_timeout("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_timeout("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_timeout("0"), None);
        assert_eq!(parse_timeout("x"), None);
        assert_eq!(parse_timeout("5h"), None);
    }

    #[test]
    fn digests_and_keys() {
        let d = HashFn::Sha256.digest(b"");
        assert_eq!(
            d.hash,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(d.size_bytes, 0);
        let b = HashFn::Blake3.digest(b"abc");
        assert_eq!(b.hash, Digest::of_bytes(b"abc").to_hex());
        let spec = RemoteSpec {
            url: "http://u:p@127.0.0.1:1/x".into(),
            headers: vec![],
            instance_name: String::new(),
            timeout: Duration::from_secs(1),
            upload: true,
            accept: true,
        };
        let cache = RemoteCache::new(spec.clone()).unwrap();
        assert_eq!(cache.url(), "http://127.0.0.1:1/x");
        let k = Digest::of_bytes(b"k");
        assert_ne!(
            cache.key(HashFn::Sha256, KeyKind::Action, &k),
            cache.key(HashFn::Sha256, KeyKind::Test, &k)
        );
        let bad = |url: &str| {
            RemoteCache::new(RemoteSpec {
                url: url.into(),
                ..spec.clone()
            })
            .unwrap_err()
            .to_string()
        };
        assert!(bad("ftp://x").contains("expects an http://"));
        assert!(bad("localhost:8080").contains("expects an http://"));
    }

    #[test]
    fn action_results_round_trip_in_protobuf() {
        use prost::Message;
        let r = proto::ActionResult {
            output_files: vec![proto::OutputFile {
                path: "forge-out/bin/a".into(),
                digest: Some(HashFn::Sha256.digest(b"a")),
                is_executable: true,
                ..Default::default()
            }],
            ..Default::default()
        };
        let bytes = r.encode_to_vec();
        assert_eq!(proto::ActionResult::decode(bytes.as_slice()).unwrap(), r);
    }
}

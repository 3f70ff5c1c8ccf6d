//! The REAPI v2 cache services over gRPC: action results and blobs in, `ActionCache`,
//! `ContentAddressableStorage` (`FindMissingBlobs`, `BatchUpdateBlobs`, `BatchReadBlobs`) and
//! `ByteStream` (for blobs over the server's batch limit) calls out, through the typed clients
//! generated from the API's `.proto` files. The digest function is the server's: BLAKE3 when
//! its capabilities offer it, else SHA-256.
//!
//! Forge's executor is threads, not async: this backend owns a small tokio runtime and
//! blocks on each call, bounded by `--remote_timeout`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tonic::metadata::{MetadataKey, MetadataValue};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::{Backend, HashFn, RemoteError, RemoteSpec, Result, proto};

/// gRPC's default message limit, used when the server names no batch limit.
const DEFAULT_BATCH_LIMIT: i64 = 4 * 1024 * 1024;
/// Room for everything in a batch request besides the blobs' bytes.
const PER_BLOB_OVERHEAD: i64 = 256;
/// ByteStream chunk size.
const CHUNK: usize = 1024 * 1024;

pub struct GrpcBackend {
    runtime: tokio::runtime::Runtime,
    channel: Channel,
    instance: String,
    metadata: Vec<(
        MetadataKey<tonic::metadata::Ascii>,
        MetadataValue<tonic::metadata::Ascii>,
    )>,
    timeout: Duration,
    hash: HashFn,
    batch_limit: i64,
    update_enabled: bool,
    /// Whether the server's capabilities offer remote execution.
    pub execution: bool,
}

pub fn status_error(call: &str, s: &tonic::Status) -> RemoteError {
    let message = s.message();
    if message.is_empty() {
        RemoteError(format!("{call}: {:?}", s.code()))
    } else {
        RemoteError(format!("{call}: {:?}: {message}", s.code()))
    }
}

/// Standard base64 (for a basic-auth header from the URL's user info).
fn base64(data: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A fresh name for one upload (the ByteStream resource names want a UUID).
fn upload_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = format!(
        "{}-{:?}-{}",
        std::process::id(),
        std::time::SystemTime::now(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let mut b = *blake3::hash(seed.as_bytes()).as_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b[..16].iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

impl GrpcBackend {
    pub fn connect(spec: &RemoteSpec) -> Result<GrpcBackend> {
        let url =
            reqwest::Url::parse(&spec.url).map_err(|e| RemoteError(format!("bad URL: {e}")))?;
        let tls = url.scheme() == "grpcs";
        let host = url.host_str().unwrap_or_default();
        let port = url.port().unwrap_or(if tls { 443 } else { 80 });
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        let scheme = if tls { "https" } else { "http" };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("forge-remote")
            .enable_all()
            .build()
            .map_err(|e| RemoteError(format!("cannot start the gRPC runtime: {e}")))?;
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{host}:{port}"))
            .map_err(|e| RemoteError(format!("bad address: {e}")))?
            .timeout(spec.timeout)
            .connect_timeout(spec.timeout);
        if tls {
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().with_webpki_roots())
                .map_err(|e| RemoteError(format!("TLS: {e}")))?;
        }
        let channel = {
            let _entered = runtime.enter();
            endpoint.connect_lazy()
        };
        let mut metadata = Vec::new();
        let mut headers: Vec<(String, String)> = spec.headers.clone();
        if !url.username().is_empty() {
            let credentials = format!("{}:{}", url.username(), url.password().unwrap_or(""));
            headers.push((
                "authorization".to_owned(),
                format!("Basic {}", base64(credentials.as_bytes())),
            ));
        }
        for (name, value) in headers {
            let key = MetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes())
                .map_err(|_| RemoteError(format!("bad header name '{name}'")))?;
            let value = MetadataValue::try_from(value.as_str())
                .map_err(|_| RemoteError(format!("bad value for header '{name}'")))?;
            metadata.push((key, value));
        }
        let mut backend = GrpcBackend {
            runtime,
            channel,
            instance: spec.instance_name.clone(),
            metadata,
            timeout: spec.timeout,
            hash: HashFn::Sha256,
            batch_limit: DEFAULT_BATCH_LIMIT,
            update_enabled: true,
            execution: false,
        };
        let request = backend.request(proto::GetCapabilitiesRequest {
            instance_name: backend.instance.clone(),
        });
        let caps = backend.call("GetCapabilities", async {
            proto::CapabilitiesClient::new(backend.channel.clone())
                .get_capabilities(request)
                .await
        })?;
        backend.execution = caps
            .execution_capabilities
            .as_ref()
            .is_some_and(|e| e.exec_enabled);
        let cache = caps.cache_capabilities.ok_or_else(|| {
            RemoteError("the server offers no cache (no cache capabilities)".to_owned())
        })?;
        let functions = &cache.digest_functions;
        backend.hash = if functions.contains(&proto::DIGEST_BLAKE3) {
            HashFn::Blake3
        } else if functions.is_empty() || functions.contains(&proto::DIGEST_SHA256) {
            HashFn::Sha256
        } else {
            return Err(RemoteError(format!(
                "the server speaks neither SHA-256 nor BLAKE3 (digest functions {functions:?})"
            )));
        };
        if cache.max_batch_total_size_bytes > 0 {
            backend.batch_limit = cache.max_batch_total_size_bytes.min(DEFAULT_BATCH_LIMIT);
        }
        backend.update_enabled = cache
            .action_cache_update_capabilities
            .is_none_or(|c| c.update_enabled);
        Ok(backend)
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs `future` on the runtime with no time limit of its own (for calls that wait for
    /// work: an execution, a bot's long poll).
    pub fn block_unbounded<T>(&self, future: impl Future<Output = T>) -> T {
        self.runtime.block_on(future)
    }

    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        for (k, v) in &self.metadata {
            request.metadata_mut().append(k.clone(), v.clone());
        }
        request
    }

    /// Runs `future` on the runtime, bounded by the timeout.
    pub fn block<T>(
        &self,
        name: &str,
        future: impl Future<Output = std::result::Result<T, tonic::Status>>,
    ) -> std::result::Result<T, tonic::Status> {
        self.runtime.block_on(async {
            match tokio::time::timeout(self.timeout, future).await {
                Ok(r) => r.map_err(with_transport_causes),
                Err(_) => Err(tonic::Status::deadline_exceeded(format!(
                    "{name} took longer than {:?}",
                    self.timeout
                ))),
            }
        })
    }

    /// One unary call: its response, or any failing status as the error.
    pub fn call<T>(
        &self,
        name: &str,
        future: impl Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T> {
        self.block(name, async { Ok(future.await?.into_inner()) })
            .map_err(|s| status_error(name, &s))
    }

    fn cas(&self) -> proto::ContentAddressableStorageClient<Channel> {
        proto::ContentAddressableStorageClient::new(self.channel.clone())
    }

    fn resource(&self, digest: &proto::Digest, upload: bool) -> String {
        let mut parts = Vec::new();
        if !self.instance.is_empty() {
            parts.push(self.instance.clone());
        }
        if upload {
            parts.push(format!("uploads/{}", upload_id()));
        }
        parts.push("blobs".to_owned());
        if self.hash == HashFn::Blake3 {
            parts.push("blake3".to_owned());
        }
        parts.push(format!("{}/{}", digest.hash, digest.size_bytes));
        parts.join("/")
    }

    fn bytestream_read(&self, digest: &proto::Digest) -> Result<Option<Vec<u8>>> {
        let request = self.request(proto::ReadRequest {
            resource_name: self.resource(digest, false),
            read_offset: 0,
            read_limit: 0,
        });
        let result = self.block("ByteStream.Read", async {
            let mut stream = proto::ByteStreamClient::new(self.channel.clone())
                .read(request)
                .await?
                .into_inner();
            let mut data = Vec::new();
            while let Some(chunk) = stream.message().await? {
                data.extend_from_slice(&chunk.data);
            }
            Ok(data)
        });
        match result {
            Ok(data) => Ok(Some(data)),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(status_error("ByteStream.Read", &s)),
        }
    }

    fn bytestream_write(&self, digest: &proto::Digest, data: Vec<u8>) -> Result<()> {
        let name = self.resource(digest, true);
        let total = data.len();
        let mut chunks = Vec::new();
        let mut offset = 0;
        loop {
            let end = (offset + CHUNK).min(total);
            chunks.push(proto::WriteRequest {
                resource_name: if offset == 0 {
                    name.clone()
                } else {
                    String::new()
                },
                write_offset: offset as i64,
                finish_write: end == total,
                data: data[offset..end].to_vec(),
            });
            offset = end;
            if offset == total {
                break;
            }
        }
        let request = self.request(tokio_stream::iter(chunks));
        let result = self.block("ByteStream.Write", async {
            proto::ByteStreamClient::new(self.channel.clone())
                .write(request)
                .await
                .map(tonic::Response::into_inner)
        });
        match result {
            Ok(_) => Ok(()),
            // The server already has the blob and says so early.
            Err(s) if s.code() == tonic::Code::AlreadyExists => Ok(()),
            Err(s) => Err(status_error("ByteStream.Write", &s)),
        }
    }

    fn small(&self, size: i64) -> bool {
        size + PER_BLOB_OVERHEAD <= self.batch_limit
    }

    /// Groups digests (or blobs) into batches that fit the server's limit.
    fn batches<T>(&self, items: Vec<T>, size: impl Fn(&T) -> i64) -> Vec<Vec<T>> {
        let mut batches = Vec::new();
        let mut current = Vec::new();
        let mut total = 0;
        for item in items {
            let s = size(&item) + PER_BLOB_OVERHEAD;
            if !current.is_empty() && total + s > self.batch_limit {
                batches.push(std::mem::take(&mut current));
                total = 0;
            }
            total += s;
            current.push(item);
        }
        if !current.is_empty() {
            batches.push(current);
        }
        batches
    }
}

/// `status` with the causes of a transport error added to its message (tonic's own text
/// for them is just "transport error").
pub fn with_transport_causes(status: tonic::Status) -> tonic::Status {
    let mut text = status.message().to_owned();
    let mut source = std::error::Error::source(&status);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    if text == status.message() {
        status
    } else {
        tonic::Status::new(status.code(), text)
    }
}

fn rpc_ok(status: &Option<proto::Status>) -> bool {
    status.as_ref().is_none_or(|s| s.code == 0)
}

impl Backend for GrpcBackend {
    fn hash_fn(&self) -> HashFn {
        self.hash
    }

    fn get_action_result(&self, key: &proto::Digest) -> Result<Option<proto::ActionResult>> {
        let request = self.request(proto::GetActionResultRequest {
            instance_name: self.instance.clone(),
            action_digest: Some(key.clone()),
            digest_function: self.hash.proto_value(),
            ..Default::default()
        });
        let result = self.block("GetActionResult", async {
            proto::ActionCacheClient::new(self.channel.clone())
                .get_action_result(request)
                .await
                .map(tonic::Response::into_inner)
        });
        match result {
            Ok(r) => Ok(Some(r)),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(status_error("GetActionResult", &s)),
        }
    }

    fn update_action_result(
        &self,
        key: &proto::Digest,
        result: &proto::ActionResult,
    ) -> Result<()> {
        if !self.update_enabled {
            return Ok(());
        }
        let request = self.request(proto::UpdateActionResultRequest {
            instance_name: self.instance.clone(),
            action_digest: Some(key.clone()),
            action_result: Some(result.clone()),
            digest_function: self.hash.proto_value(),
            ..Default::default()
        });
        self.call("UpdateActionResult", async {
            proto::ActionCacheClient::new(self.channel.clone())
                .update_action_result(request)
                .await
        })?;
        Ok(())
    }

    fn upload_blobs(&self, blobs: Vec<(proto::Digest, Vec<u8>)>) -> Result<()> {
        if blobs.is_empty() {
            return Ok(());
        }
        let request = self.request(proto::FindMissingBlobsRequest {
            instance_name: self.instance.clone(),
            blob_digests: blobs.iter().map(|(d, _)| d.clone()).collect(),
            digest_function: self.hash.proto_value(),
        });
        let missing = self.call("FindMissingBlobs", async {
            self.cas().find_missing_blobs(request).await
        })?;
        let missing: std::collections::HashSet<String> = missing
            .missing_blob_digests
            .into_iter()
            .map(|d| d.hash)
            .collect();
        let missing: Vec<_> = blobs
            .into_iter()
            .filter(|(d, _)| missing.contains(&d.hash))
            .collect();
        self.upload_blobs_unchecked(missing)
    }

    fn read_blobs(&self, digests: &[proto::Digest]) -> Result<HashMap<String, Vec<u8>>> {
        self.read_blobs_unchecked(digests)
    }
}

impl GrpcBackend {
    /// Uploads the blobs without asking which the server has (the caller did).
    pub fn upload_blobs_unchecked(&self, blobs: Vec<(proto::Digest, Vec<u8>)>) -> Result<()> {
        let (small, big): (Vec<_>, Vec<_>) = blobs
            .into_iter()
            .partition(|(d, _)| self.small(d.size_bytes));
        for (digest, data) in big {
            self.bytestream_write(&digest, data)?;
        }
        for batch in self.batches(small, |(d, _)| d.size_bytes) {
            let request = self.request(proto::BatchUpdateBlobsRequest {
                instance_name: self.instance.clone(),
                requests: batch
                    .into_iter()
                    .map(|(digest, data)| proto::UpdateBlob {
                        digest: Some(digest),
                        data,
                        ..Default::default()
                    })
                    .collect(),
                digest_function: self.hash.proto_value(),
            });
            let response = self.call("BatchUpdateBlobs", async {
                self.cas().batch_update_blobs(request).await
            })?;
            if let Some(bad) = response.responses.iter().find(|r| !rpc_ok(&r.status)) {
                let status = bad.status.clone().unwrap_or_default();
                return Err(RemoteError(format!(
                    "BatchUpdateBlobs refused {}: code {}: {}",
                    bad.digest.as_ref().map_or("", |d| d.hash.as_str()),
                    status.code,
                    status.message
                )));
            }
        }
        Ok(())
    }

    /// The blobs the server has, by hash, not checked against their digests.
    pub fn read_blobs_unchecked(
        &self,
        digests: &[proto::Digest],
    ) -> Result<HashMap<String, Vec<u8>>> {
        let mut out = HashMap::new();
        let (small, big): (Vec<_>, Vec<_>) = digests
            .iter()
            .cloned()
            .partition(|d| self.small(d.size_bytes));
        for d in big {
            if let Some(data) = self.bytestream_read(&d)? {
                out.insert(d.hash, data);
            }
        }
        for batch in self.batches(small, |d| d.size_bytes) {
            let request = self.request(proto::BatchReadBlobsRequest {
                instance_name: self.instance.clone(),
                digests: batch,
                digest_function: self.hash.proto_value(),
                ..Default::default()
            });
            let response = self.call("BatchReadBlobs", async {
                self.cas().batch_read_blobs(request).await
            })?;
            for r in response.responses {
                // NOT_FOUND and other per-blob errors: that blob is missing.
                if let (true, Some(d)) = (rpc_ok(&r.status), r.digest) {
                    out.insert(d.hash, r.data);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_of_credentials() {
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b""), "");
    }

    #[test]
    fn upload_ids_look_like_uuids() {
        let a = upload_id();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_ne!(a, upload_id());
    }
}

//! Remote execution over the REAPI: a connection to a server that executes (`Reapi`), with
//! the calls a client and a worker need — blobs in and out of the CAS (missing ones found
//! first, big ones by ByteStream, every blob read back checked against its digest),
//! `Execution.Execute` with its stream of operations (and `WaitExecution` when the stream
//! drops), and the Remote Workers API's bot session calls.

use std::collections::HashMap;
use std::time::Duration;

use prost::Message;

use super::bots::{self, BotSession, BotsClient};
use super::grpc::{GrpcBackend, status_error, with_transport_causes};
use super::{Backend, HashFn, RemoteError, RemoteSpec, Result, proto};

/// A blob to make sure the server has: its digest and where its bytes are.
#[derive(Clone)]
pub enum Upload {
    Bytes(proto::Digest, Vec<u8>),
    /// A file, read only when the server lacks it.
    File(proto::Digest, std::path::PathBuf),
}

impl Upload {
    pub fn digest(&self) -> &proto::Digest {
        match self {
            Upload::Bytes(d, _) | Upload::File(d, _) => d,
        }
    }
}

/// The words of the error `Reapi::read` gives for a blob the server does not have.
pub const MISSING_BLOB: &str = "has no blob";

/// A connection to an REAPI server, for one process.
pub struct Reapi {
    backend: GrpcBackend,
    /// The URL without credentials, for messages.
    shown: String,
    /// Blobs this connection saw the server have (found or uploaded): not asked about
    /// again, so an input shared by many actions costs one `FindMissingBlobs`. A server
    /// that loses blobs says so when it executes (`forget_present`, then upload again).
    present: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// How an execution ended, from the server's point of view.
pub struct Executed {
    pub response: proto::ExecuteResponse,
}

impl Reapi {
    /// Connects and asks the server's capabilities; `need_execution` refuses a cache-only
    /// server.
    pub fn connect(spec: &RemoteSpec, need_execution: bool) -> Result<Reapi> {
        let parsed = reqwest::Url::parse(&spec.url)
            .map_err(|e| RemoteError(format!("bad URL '{}': {e}", spec.url)))?;
        if !matches!(parsed.scheme(), "grpc" | "grpcs") {
            return Err(RemoteError(format!(
                "remote execution speaks gRPC: expected a grpc:// or grpcs:// URL, not '{}'",
                spec.url
            )));
        }
        let mut shown = parsed.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        let shown = shown.to_string().trim_end_matches('/').to_owned();
        let backend = GrpcBackend::connect(spec)?;
        if need_execution && !backend.execution {
            return Err(RemoteError(format!(
                "{shown} does not offer remote execution (its capabilities have no execution)"
            )));
        }
        Ok(Reapi {
            backend,
            shown,
            present: Default::default(),
        })
    }

    pub fn url(&self) -> &str {
        &self.shown
    }

    pub fn hash_fn(&self) -> HashFn {
        self.backend.hash_fn()
    }

    pub fn instance(&self) -> &str {
        self.backend.instance()
    }

    /// Makes sure the server has every blob: asks which are missing, then uploads those.
    pub fn upload(&self, blobs: Vec<Upload>) -> Result<()> {
        self.upload_with(blobs, true)
    }

    /// `upload` asking about every blob, even those this connection saw the server have: a
    /// worker's outputs must be there when it reports them, though the server may have
    /// evicted the same content since.
    pub fn upload_asking(&self, blobs: Vec<Upload>) -> Result<()> {
        self.upload_with(blobs, false)
    }

    fn upload_with(&self, blobs: Vec<Upload>, trust_present: bool) -> Result<()> {
        if blobs.is_empty() {
            return Ok(());
        }
        let mut by_hash: HashMap<String, Upload> = HashMap::new();
        {
            let present = self.present.lock().unwrap_or_else(|e| e.into_inner());
            for b in blobs {
                if b.digest().size_bytes > 0
                    && !(trust_present && present.contains(&b.digest().hash))
                {
                    by_hash.entry(b.digest().hash.clone()).or_insert(b);
                }
            }
        }
        if by_hash.is_empty() {
            return Ok(());
        }
        let digests: Vec<proto::Digest> = by_hash.values().map(|b| b.digest().clone()).collect();
        let missing = self.find_missing(digests)?;
        let missing_hashes: std::collections::HashSet<&str> =
            missing.iter().map(|d| d.hash.as_str()).collect();
        let found: Vec<String> = by_hash
            .keys()
            .filter(|h| !missing_hashes.contains(h.as_str()))
            .cloned()
            .collect();
        self.present
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(found);
        let mut payload = Vec::with_capacity(missing.len());
        for digest in missing {
            let Some(blob) = by_hash.remove(&digest.hash) else {
                continue;
            };
            let (digest, data) = match blob {
                Upload::Bytes(d, data) => (d, data),
                Upload::File(d, path) => {
                    let data = std::fs::read(&path).map_err(|e| {
                        RemoteError(format!("cannot read '{}': {e}", path.display()))
                    })?;
                    (d, data)
                }
            };
            if self.hash_fn().digest(&data) != digest {
                return Err(RemoteError(format!(
                    "the content of {} changed while it was being uploaded",
                    digest.hash
                )));
            }
            payload.push((digest, data));
        }
        let uploaded: Vec<String> = payload.iter().map(|(d, _)| d.hash.clone()).collect();
        self.backend.upload_blobs_unchecked(payload)?;
        self.present
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(uploaded);
        Ok(())
    }

    /// Forgets which blobs the server has: the next uploads ask again.
    pub fn forget_present(&self) {
        self.present
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Which of `digests` the server does not have, asking only about those this connection
    /// has not seen it have; the others are remembered as present.
    pub fn missing(&self, digests: &[proto::Digest]) -> Result<Vec<proto::Digest>> {
        let unknown: Vec<proto::Digest> = {
            let present = self.present.lock().unwrap_or_else(|e| e.into_inner());
            digests
                .iter()
                .filter(|d| d.size_bytes > 0 && !present.contains(&d.hash))
                .cloned()
                .collect()
        };
        if unknown.is_empty() {
            return Ok(Vec::new());
        }
        let missing = self.find_missing(unknown.clone())?;
        let mut present = self.present.lock().unwrap_or_else(|e| e.into_inner());
        for d in unknown {
            if !missing.iter().any(|m| m.hash == d.hash) {
                present.insert(d.hash);
            }
        }
        Ok(missing)
    }

    /// Remembers that the server has these blobs (it just made them).
    pub fn mark_present(&self, digests: impl IntoIterator<Item = proto::Digest>) {
        let mut present = self.present.lock().unwrap_or_else(|e| e.into_inner());
        present.extend(digests.into_iter().map(|d| d.hash));
    }

    fn find_missing(&self, digests: Vec<proto::Digest>) -> Result<Vec<proto::Digest>> {
        let mut missing = Vec::new();
        for chunk in digests.chunks(10_000) {
            let request = self.backend.request(proto::FindMissingBlobsRequest {
                instance_name: self.instance().to_owned(),
                blob_digests: chunk.to_vec(),
                digest_function: self.hash_fn().proto_value(),
            });
            let response = self.backend.call("FindMissingBlobs", async {
                proto::ContentAddressableStorageClient::new(self.backend.channel())
                    .find_missing_blobs(request)
                    .await
            })?;
            missing.extend(response.missing_blob_digests);
        }
        Ok(missing)
    }

    /// The blobs, each checked against its digest; a missing or corrupt one is an error
    /// naming it.
    pub fn read(&self, digests: &[proto::Digest]) -> Result<HashMap<String, Vec<u8>>> {
        let mut wanted: Vec<proto::Digest> = digests
            .iter()
            .filter(|d| d.size_bytes > 0)
            .cloned()
            .collect();
        wanted.sort_by(|a, b| a.hash.cmp(&b.hash));
        wanted.dedup();
        let mut blobs = self.backend.read_blobs(&wanted)?;
        for d in &wanted {
            let data = blobs.get(&d.hash).ok_or_else(|| {
                RemoteError(format!(
                    "{} {MISSING_BLOB} {}/{} in its CAS",
                    self.shown, d.hash, d.size_bytes
                ))
            })?;
            if self.hash_fn().digest(data) != *d {
                return Err(RemoteError(format!(
                    "{}: the blob {}/{} does not match its digest; not trusting it",
                    self.shown, d.hash, d.size_bytes
                )));
            }
        }
        for d in digests.iter().filter(|d| d.size_bytes == 0) {
            blobs.insert(d.hash.clone(), Vec::new());
        }
        Ok(blobs)
    }

    /// One blob, checked.
    pub fn read_one(&self, digest: &proto::Digest) -> Result<Vec<u8>> {
        let mut blobs = self.read(std::slice::from_ref(digest))?;
        Ok(blobs.remove(&digest.hash).unwrap_or_default())
    }

    /// A message stored in the CAS.
    pub fn read_message<M: Message + Default>(&self, digest: &proto::Digest) -> Result<M> {
        let bytes = self.read_one(digest)?;
        M::decode(bytes.as_slice()).map_err(|e| {
            RemoteError(format!(
                "the blob {} is not the message expected: {e}",
                digest.hash
            ))
        })
    }

    /// Every `Directory` of the tree rooted at `root`, by hash, level by level.
    pub fn read_tree(&self, root: &proto::Digest) -> Result<HashMap<String, proto::Directory>> {
        let mut directories = HashMap::new();
        let mut level = vec![root.clone()];
        while !level.is_empty() {
            let blobs = self.read(&level)?;
            let mut next = Vec::new();
            for d in &level {
                let bytes = blobs.get(&d.hash).cloned().unwrap_or_default();
                let directory = proto::Directory::decode(bytes.as_slice()).map_err(|e| {
                    RemoteError(format!("the blob {} is not a Directory: {e}", d.hash))
                })?;
                for child in &directory.directories {
                    if let Some(c) = &child.digest
                        && !directories.contains_key(&c.hash)
                    {
                        next.push(c.clone());
                    }
                }
                directories.insert(d.hash.clone(), directory);
            }
            next.sort_by(|a, b| a.hash.cmp(&b.hash));
            next.dedup();
            level = next;
        }
        Ok(directories)
    }

    /// Executes the action (already in the CAS) and waits for its result: follows the
    /// operation stream, and after a dropped stream asks again with `WaitExecution`.
    /// `deadline` bounds the whole wait.
    pub fn execute(
        &self,
        action: &proto::Digest,
        skip_cache: bool,
        deadline: Option<Duration>,
    ) -> Result<Executed> {
        let started = std::time::Instant::now();
        let mut operation_name: Option<String> = None;
        let mut reconnects = 0;
        loop {
            let remaining = match deadline {
                Some(d) => Some(d.checked_sub(started.elapsed()).ok_or_else(|| {
                    RemoteError(format!("the remote execution took longer than {d:?}"))
                })?),
                None => None,
            };
            let outcome = self.follow(action, skip_cache, operation_name.as_deref(), remaining);
            match outcome {
                Follow::Done(response) => {
                    return Ok(Executed {
                        response: *response,
                    });
                }
                Follow::Failed(e) => return Err(e),
                Follow::Dropped(name, why) => {
                    reconnects += 1;
                    if reconnects > 20 {
                        return Err(RemoteError(format!(
                            "the execution stream kept dropping: {why}"
                        )));
                    }
                    // Without a name the server never took the action: execute again.
                    operation_name = name.or(operation_name);
                    std::thread::sleep(Duration::from_millis(200 * reconnects.min(10)));
                }
            }
        }
    }

    fn follow(
        &self,
        action: &proto::Digest,
        skip_cache: bool,
        wait_for: Option<&str>,
        remaining: Option<Duration>,
    ) -> Follow {
        let channel = self.backend.channel();
        let connect_timeout = self.backend.timeout();
        let call = async {
            let mut client = proto::ExecutionClient::new(channel);
            let started = match wait_for {
                Some(name) => {
                    let request = self.backend.request(proto::WaitExecutionRequest {
                        name: name.to_owned(),
                    });
                    tokio::time::timeout(connect_timeout, client.wait_execution(request)).await
                }
                None => {
                    let request = self.backend.request(proto::ExecuteRequest {
                        instance_name: self.instance().to_owned(),
                        skip_cache_lookup: skip_cache,
                        action_digest: Some(action.clone()),
                        digest_function: self.hash_fn().proto_value(),
                        ..Default::default()
                    });
                    tokio::time::timeout(connect_timeout, client.execute(request)).await
                }
            };
            let call_name = if wait_for.is_some() {
                "WaitExecution"
            } else {
                "Execute"
            };
            let mut stream = match started {
                Err(_) => {
                    return Follow::Failed(RemoteError(format!(
                        "{call_name}: no answer from {} within {connect_timeout:?}",
                        self.shown
                    )));
                }
                Ok(Err(status)) => {
                    let status = with_transport_causes(status);
                    return match status.code() {
                        // The operation is gone (the server restarted): execute again.
                        tonic::Code::NotFound if wait_for.is_some() => {
                            Follow::Dropped(None, status.message().to_owned())
                        }
                        // The server is restarting (it answered capabilities before): ask
                        // again in a moment.
                        tonic::Code::Unavailable => Follow::Dropped(
                            wait_for.map(str::to_owned),
                            status.message().to_owned(),
                        ),
                        _ => Follow::Failed(status_error(call_name, &status)),
                    };
                }
                Ok(Ok(response)) => response.into_inner(),
            };
            let mut name = wait_for.map(str::to_owned);
            loop {
                match stream.message().await {
                    Ok(Some(operation)) => {
                        if !operation.name.is_empty() {
                            name = Some(operation.name.clone());
                        }
                        if operation.done {
                            return finished(operation);
                        }
                    }
                    Ok(None) => return Follow::Dropped(name, "the stream ended early".into()),
                    Err(status) => {
                        let status = with_transport_causes(status);
                        return match status.code() {
                            tonic::Code::Unavailable
                            | tonic::Code::Unknown
                            | tonic::Code::Internal
                            | tonic::Code::Cancelled
                            | tonic::Code::Aborted => {
                                Follow::Dropped(name, status.message().to_owned())
                            }
                            _ => Follow::Failed(status_error(call_name, &status)),
                        };
                    }
                }
            }
        };
        self.backend.block_unbounded(async {
            match remaining {
                Some(limit) => tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
                    Follow::Failed(RemoteError(format!(
                        "the remote execution took longer than {limit:?}"
                    )))
                }),
                None => call.await,
            }
        })
    }

    /// `CreateBotSession` under this connection's instance.
    pub fn create_bot_session(&self, session: BotSession) -> Result<BotSession> {
        let request = self.backend.request(bots::CreateBotSessionRequest {
            parent: self.instance().to_owned(),
            bot_session: Some(session),
        });
        self.backend.call("CreateBotSession", async {
            BotsClient::new(self.backend.channel())
                .create_bot_session(request)
                .await
        })
    }

    /// `UpdateBotSession`, which the server may hold up to `poll` waiting for work; returns
    /// early (with `None`) when `interrupt` completes first.
    pub fn update_bot_session(
        &self,
        session: BotSession,
        poll: Duration,
        interrupt: impl Future<Output = ()>,
    ) -> Result<Option<BotSession>> {
        let mut request = self.backend.request(bots::UpdateBotSessionRequest {
            name: session.name.clone(),
            bot_session: Some(session),
            update_mask: None,
        });
        request.set_timeout(poll);
        let channel = self.backend.channel();
        let limit = poll + self.backend.timeout();
        self.backend.block_unbounded(async move {
            let call = async {
                match tokio::time::timeout(
                    limit,
                    BotsClient::new(channel).update_bot_session(request),
                )
                .await
                {
                    Ok(Ok(r)) => Ok(Some(r.into_inner())),
                    Ok(Err(s)) => Err(status_error("UpdateBotSession", &with_transport_causes(s))),
                    Err(_) => Err(RemoteError(format!(
                        "UpdateBotSession: no answer within {limit:?}"
                    ))),
                }
            };
            tokio::select! {
                r = call => r,
                () = interrupt => Ok(None),
            }
        })
    }
}

enum Follow {
    Done(Box<proto::ExecuteResponse>),
    /// The stream ended before the operation was done; the operation's name if known.
    Dropped(Option<String>, String),
    Failed(RemoteError),
}

fn finished(operation: proto::Operation) -> Follow {
    match operation.result {
        Some(proto::OperationResult::Response(any)) => {
            match proto::ExecuteResponse::decode(any.value.as_slice()) {
                Ok(r) => Follow::Done(Box::new(r)),
                Err(e) => Follow::Failed(RemoteError(format!(
                    "the operation's response is not an ExecuteResponse: {e}"
                ))),
            }
        }
        Some(proto::OperationResult::Error(status)) => Follow::Failed(RemoteError(format!(
            "the execution failed: code {}: {}",
            status.code, status.message
        ))),
        None => Follow::Failed(RemoteError(
            "the server finished the operation without a result".into(),
        )),
    }
}

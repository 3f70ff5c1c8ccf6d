//! The Remote Execution API's messages and gRPC clients, generated from the upstream `.proto`
//! files (build.bazel.remote.execution.v2, google.bytestream, google.longrunning, google.rpc)
//! by the `bazel-remote-apis` crate: re-exported here under the short names forge uses.
//!
//! The crate ships its generated code, so forge's build needs neither `protoc` nor a build
//! script. The Remote Workers API (google.devtools.remoteworkers.v1test2), which a worker
//! needs, is not in it: `remote::bots` has its messages, referring to these types for the
//! ones it shares.

pub use bazel_remote_apis::build::bazel::remote::execution::v2::{
    Action, ActionCacheUpdateCapabilities, ActionResult, BatchReadBlobsRequest,
    BatchReadBlobsResponse, BatchUpdateBlobsRequest, BatchUpdateBlobsResponse, CacheCapabilities,
    Command, Digest, Directory, DirectoryNode, ExecuteOperationMetadata, ExecuteRequest,
    ExecuteResponse, ExecutedActionMetadata, FileNode, FindMissingBlobsRequest,
    FindMissingBlobsResponse, GetActionResultRequest, GetCapabilitiesRequest, NodeProperties,
    NodeProperty, OutputDirectory, OutputFile, Platform, ServerCapabilities, Tree,
    UpdateActionResultRequest, WaitExecutionRequest, action_cache_client::ActionCacheClient,
    batch_read_blobs_response::Response as ReadBlob,
    batch_update_blobs_request::Request as UpdateBlob,
    batch_update_blobs_response::Response as UpdatedBlob, capabilities_client::CapabilitiesClient,
    command::EnvironmentVariable,
    content_addressable_storage_client::ContentAddressableStorageClient, digest_function,
    execution_client::ExecutionClient, platform::Property as PlatformProperty,
};
pub use bazel_remote_apis::google::bytestream::{
    ReadRequest, ReadResponse, WriteRequest, WriteResponse, byte_stream_client::ByteStreamClient,
};
pub use bazel_remote_apis::google::longrunning::{Operation, operation::Result as OperationResult};
pub use bazel_remote_apis::google::protobuf::{Any, Duration as ProtoDuration, Timestamp};
pub use bazel_remote_apis::google::rpc::Status;

/// `DigestFunction.Value` of the two hashes forge speaks.
pub const DIGEST_SHA256: i32 = digest_function::Value::Sha256 as i32;
pub const DIGEST_BLAKE3: i32 = digest_function::Value::Blake3 as i32;

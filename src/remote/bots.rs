//! The Remote Workers API (`google.devtools.remoteworkers.v1test2`): the messages of its
//! `Bots` service and a client for `CreateBotSession` and `UpdateBotSession`, which a worker
//! uses to take leases from an REAPI server (BuildGrid's scheduler hands actions out through
//! it).
//!
//! The `bazel-remote-apis` crate does not carry this API, and forge's build runs no `protoc`,
//! so the messages are written here as prost would generate them from `bots.proto` and
//! `worker.proto` — the same field numbers and types — and the client calls the methods by
//! their gRPC paths through tonic's generic client. Timestamps, `Any` and `Status` are the
//! shared well-known types of the other generated code.

use bazel_remote_apis::google::protobuf::{Any, Timestamp};
use bazel_remote_apis::google::rpc::Status;
use tonic::codegen::http;
use tonic::transport::Channel;

/// `BotStatus`: how healthy the bot says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum BotStatus {
    Unspecified = 0,
    Ok = 1,
    Unhealthy = 2,
    HostRebooting = 3,
    BotTerminating = 4,
}

/// `LeaseState`: where a lease is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum LeaseState {
    Unspecified = 0,
    Pending = 1,
    Active = 2,
    Completed = 4,
    Cancelled = 5,
}

/// A key/value pair of a `Worker` or a `Device`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Property {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `Device`: one machine (the first is the one that runs commands) and its properties
/// (`OSFamily`, `ISA`, ...), which the scheduler matches against an action's platform.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Device {
    #[prost(string, tag = "1")]
    pub handle: String,
    #[prost(message, repeated, tag = "2")]
    pub properties: Vec<Property>,
}

/// `Worker`: the devices of a bot, and its configuration (`capacity` for BuildGrid).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Worker {
    #[prost(message, repeated, tag = "1")]
    pub devices: Vec<Device>,
    #[prost(message, repeated, tag = "2")]
    pub properties: Vec<Property>,
    #[prost(message, repeated, tag = "3")]
    pub configs: Vec<Property>,
}

/// `Lease`: one unit of work given to the bot; `payload` is the REAPI `Action` (or its
/// digest), `result` the `ActionResult` the bot sends back with `status`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Lease {
    #[prost(string, tag = "1")]
    pub assignment: String,
    #[prost(enumeration = "LeaseState", tag = "2")]
    pub state: i32,
    #[prost(message, optional, tag = "3")]
    pub status: Option<Status>,
    #[prost(message, optional, tag = "4")]
    pub requirements: Option<Worker>,
    #[prost(message, optional, tag = "5")]
    pub expire_time: Option<Timestamp>,
    #[prost(message, optional, tag = "6")]
    pub inline_assignment: Option<Any>,
    #[prost(string, tag = "7")]
    pub id: String,
    #[prost(message, optional, tag = "8")]
    pub payload: Option<Any>,
    #[prost(message, optional, tag = "9")]
    pub result: Option<Any>,
}

/// `BotSession`: the bot's standing with the server, sent back and forth on every update.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BotSession {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub bot_id: String,
    #[prost(enumeration = "BotStatus", tag = "3")]
    pub status: i32,
    #[prost(message, optional, tag = "4")]
    pub worker: Option<Worker>,
    #[prost(message, repeated, tag = "5")]
    pub leases: Vec<Lease>,
    #[prost(message, optional, tag = "6")]
    pub expire_time: Option<Timestamp>,
    #[prost(string, tag = "7")]
    pub version: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateBotSessionRequest {
    #[prost(string, tag = "1")]
    pub parent: String,
    #[prost(message, optional, tag = "2")]
    pub bot_session: Option<BotSession>,
}

/// `google.protobuf.FieldMask`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct FieldMask {
    #[prost(string, repeated, tag = "1")]
    pub paths: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct UpdateBotSessionRequest {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub bot_session: Option<BotSession>,
    #[prost(message, optional, tag = "3")]
    pub update_mask: Option<FieldMask>,
}

/// The `Any` type URL of a message of this package or of the REAPI.
pub fn type_url(full_name: &str) -> String {
    format!("type.googleapis.com/{full_name}")
}

/// A client of the `Bots` service.
#[derive(Clone, Debug)]
pub struct BotsClient {
    inner: tonic::client::Grpc<Channel>,
}

impl BotsClient {
    pub fn new(channel: Channel) -> BotsClient {
        BotsClient {
            inner: tonic::client::Grpc::new(channel),
        }
    }

    async fn unary<Req, Resp>(
        &mut self,
        method: &'static str,
        request: tonic::Request<Req>,
    ) -> Result<tonic::Response<Resp>, tonic::Status>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        self.inner
            .ready()
            .await
            .map_err(|e| tonic::Status::unavailable(format!("the server is not ready: {e}")))?;
        let path = http::uri::PathAndQuery::from_static(method);
        let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
        self.inner.unary(request, path, codec).await
    }

    pub async fn create_bot_session(
        &mut self,
        request: tonic::Request<CreateBotSessionRequest>,
    ) -> Result<tonic::Response<BotSession>, tonic::Status> {
        self.unary(
            "/google.devtools.remoteworkers.v1test2.Bots/CreateBotSession",
            request,
        )
        .await
    }

    pub async fn update_bot_session(
        &mut self,
        request: tonic::Request<UpdateBotSessionRequest>,
    ) -> Result<tonic::Response<BotSession>, tonic::Status> {
        self.unary(
            "/google.devtools.remoteworkers.v1test2.Bots/UpdateBotSession",
            request,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// Bytes of a `BotSession` as BuildGrid's Python protobuf encodes it (name "b/1", bot_id
    /// "x", status OK, a device "h" with OSFamily=linux, capacity 2, one ACTIVE lease "l"
    /// with status 9 and a payload of type URL "t", version "7"): the hand-written field
    /// numbers must match `bots.proto` and `worker.proto`.
    #[test]
    fn bot_sessions_decode_as_the_proto_defines_them() {
        let bytes: &[u8] = &[
            0x0a, 0x03, 0x62, 0x2f, 0x31, 0x12, 0x01, 0x78, 0x18, 0x01, 0x22, 0x27, 0x0a, 0x16,
            0x0a, 0x01, 0x68, 0x12, 0x11, 0x0a, 0x08, 0x4f, 0x53, 0x46, 0x61, 0x6d, 0x69, 0x6c,
            0x79, 0x12, 0x05, 0x6c, 0x69, 0x6e, 0x75, 0x78, 0x1a, 0x0d, 0x0a, 0x08, 0x63, 0x61,
            0x70, 0x61, 0x63, 0x69, 0x74, 0x79, 0x12, 0x01, 0x32, 0x2a, 0x0e, 0x10, 0x02, 0x1a,
            0x02, 0x08, 0x09, 0x3a, 0x01, 0x6c, 0x42, 0x03, 0x0a, 0x01, 0x74, 0x3a, 0x01, 0x37,
        ];
        let session = BotSession::decode(bytes).unwrap();
        assert_eq!(session.name, "b/1");
        assert_eq!(session.bot_id, "x");
        assert_eq!(session.status, BotStatus::Ok as i32);
        assert_eq!(session.version, "7");
        let worker = session.worker.as_ref().unwrap();
        assert_eq!(worker.devices[0].handle, "h");
        assert_eq!(worker.devices[0].properties[0].key, "OSFamily");
        assert_eq!(worker.configs[0].value, "2");
        assert_eq!(session.leases.len(), 1);
        let lease = &session.leases[0];
        assert_eq!(lease.id, "l");
        assert_eq!(lease.state, LeaseState::Active as i32);
        assert_eq!(lease.status.as_ref().unwrap().code, 9);
        assert_eq!(lease.payload.as_ref().unwrap().type_url, "t");
        assert_eq!(session.encode_to_vec(), bytes);
    }
}

//! What a node serves on the bus besides its replica: introductions, the layout and
//! clock pings. Plain Rust types, so callers never see protobuf.

use crate::replica_api::{ReplicaApi, ReplicaError};
use crate::NodeId;
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::Arc;

/// A node and the address of its bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddr {
    /// The node.
    pub node: NodeId,
    /// Its bus address (`host:port`, gRPC over TCP; gossip over UDP on the same port).
    pub bus_addr: String,
}

/// A node's introduction (bootstrap: who it is, where it listens, what it knows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The node introducing itself.
    pub node: NodeId,
    /// Its cluster id, once it has one.
    pub cluster_id: Option<String>,
    /// Where it serves RESP clients.
    pub resp_addr: String,
    /// Where it serves the bus.
    pub bus_addr: String,
    /// Its layout document (JSON, opaque here), if it has one.
    pub layout: Option<Bytes>,
    /// The peers it knows.
    pub peers: Vec<PeerAddr>,
}

/// A layout document as it travels: its version and its JSON, opaque to the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutBlob {
    /// The layout's version.
    pub version: u64,
    /// The layout document (JSON).
    pub json: Bytes,
}

/// A node's answer to a pushed layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushLayoutReply {
    /// Whether the node took the pushed layout.
    pub accepted: bool,
    /// The version the node holds after the push.
    pub current_version: u64,
}

/// What the bus server calls. The node implements it; the server handles transport,
/// authentication and limits before calling it.
#[async_trait]
pub trait BusHandler: Send + Sync + 'static {
    /// This node's replica store.
    fn replica(&self) -> Arc<dyn ReplicaApi>;

    /// A peer introduces itself; the answer is this node's introduction.
    async fn hello(&self, from: Hello) -> Result<Hello, ReplicaError>;

    /// This node's layout, if it has one.
    async fn get_layout(&self) -> Result<Option<LayoutBlob>, ReplicaError>;

    /// A peer pushes a layout (normally a newer one).
    async fn push_layout(&self, layout: LayoutBlob) -> Result<PushLayoutReply, ReplicaError>;

    /// A peer syncs cluster metadata: merge `entries`, answer with every entry held.
    /// Nodes without a metadata store (tests) refuse.
    async fn sync_metadata(
        &self,
        _entries: Vec<crate::metadata::MetaEntry>,
    ) -> Result<Vec<crate::metadata::MetaEntry>, ReplicaError> {
        Err(ReplicaError::Failed(
            "this node serves no cluster metadata".into(),
        ))
    }

    /// A peer sends pub/sub messages published through it, in publish order, for this
    /// node's subscribers; the answer is the number of deliveries made. Nodes without
    /// pub/sub (tests) refuse.
    async fn publish(
        &self,
        _messages: Vec<crate::pubsub_fanout::PubSubMessage>,
    ) -> Result<u64, ReplicaError> {
        Err(ReplicaError::Failed("this node serves no pub/sub".into()))
    }

    /// The records and bytes this node holds of each of `partitions`, in order (layout
    /// plans and streaming progress). Nodes without a store (tests) refuse.
    async fn partition_sizes(
        &self,
        _partitions: Vec<u16>,
    ) -> Result<Vec<crate::partition_size::PartitionSize>, ReplicaError> {
        Err(ReplicaError::Failed(
            "this node measures no partitions".into(),
        ))
    }

    /// A peer sends a client command on a key this node proposes for (crate::forward):
    /// run it, answer its encoded reply. Nodes without a server (tests) refuse, and the
    /// peer runs the command itself.
    async fn propose(
        &self,
        _command: crate::forward::Forwarded,
    ) -> Result<bytes::Bytes, ReplicaError> {
        Err(ReplicaError::Failed(
            "this node runs no commands for other nodes".into(),
        ))
    }

    /// This node's layout tag: replica requests tagged with an older layout version are
    /// refused (rpc/layout_tag.rs). `None` (test handlers) checks nothing.
    fn layout_tag(&self) -> Option<Arc<super::LayoutTag>> {
        None
    }

    /// A replica request from `from` carried layout `version`, newer than this node's:
    /// fetch that layout from the sender, in the background (the request is served).
    fn pull_layout(&self, _from: NodeId, _version: u64) {}

    /// This node's wall clock in Unix milliseconds, for skew measurement. The default
    /// reads the system clock; tests and simulations override it.
    fn wall_clock_ms(&self) -> i64 {
        crate::rpc::auth::unix_ms()
    }
}

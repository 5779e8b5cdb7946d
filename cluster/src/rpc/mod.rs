//! The cluster bus: gRPC (tonic) between nodes, one service `ClusterBus` defined in
//! cluster/proto/cluster.proto and documented in docs/cluster-protocol.md. The server
//! serves this node's [`crate::replica_api::ReplicaApi`] and membership callbacks
//! ([`BusHandler`]); [`PeerClient`] is the same API for a remote node, and
//! [`PeerClients`] the address book the coordinator reads. Protobuf types stay inside
//! this module: the rest of the crate sees only its own Rust types.

pub mod auth;
pub(crate) mod batcher;
pub mod bus_version;
pub mod client;
mod convert;
pub mod handler;
pub mod latency;
pub mod layout_tag;
mod leaves_page;
mod meta_entries;
mod metadata;
mod not_counted;
mod partition_scan;
mod partition_sizes;
pub mod peers;
mod propose;
mod publish;
mod replica_link;
mod replica_stream;
pub mod server;
pub mod tls;

#[cfg(test)]
mod large_messages_tests;
#[cfg(test)]
mod not_counted_tests;
#[cfg(test)]
mod publish_tests;
#[cfg(test)]
mod replica_link_tests;
#[cfg(test)]
mod replica_stream_tests;
#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod tls_tests;

/// Code generated from cluster/proto/cluster.proto.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub(crate) mod pb {
    tonic::include_proto!("kvd.cluster.v1");
}

pub use auth::{check_exposure, AuthError, BusAuth, REPLAY_WINDOW};
pub use client::{ClientConfig, PeerClient, PingReply, DEFAULT_TIMEOUT};
pub use handler::{BusHandler, Hello, LayoutBlob, PeerAddr, PushLayoutReply};
pub use latency::{RpcLatencies, RpcLatency, RPC_LATENCY_BUCKETS_MICROS};
pub use layout_tag::{Admission, LayoutTag, LayoutTagStats, LAYOUT_VERSION_HEADER};
pub use peers::{CarrierCounts, PeerClients};
pub use replica_stream::Carrier;
pub use server::{serve, BusLimits};
pub use tls::BusTls;

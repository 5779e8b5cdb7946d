//! kvd's Dynamo-style ring (docs/cluster.md): keys are placed on N replicas of a
//! partition by a versioned layout, any node coordinates a request with quorums, and
//! hints, read repair and Merkle anti-entropy make replicas converge. The cluster knows
//! nothing of RESP: the server hands it a key and what to do with it.

pub mod gossip;
pub mod node_id;
pub mod record;
pub mod replica_api;
pub mod rpc;
pub mod version;

pub use node_id::NodeId;
pub use record::{Body, Record};
pub use version::Version;

//! kvd's Dynamo-style ring (docs/cluster.md): keys are placed on N replicas of a
//! partition by a versioned layout, any node coordinates a request with quorums, and
//! hints, read repair and Merkle anti-entropy make replicas converge. The cluster knows
//! nothing of RESP: the server hands it a key and what to do with it.

pub mod anti_entropy;
pub mod atomic_file;
pub mod catch_up;
pub mod cluster_scan;
pub mod config;
pub mod coordinator;
pub mod dvv;
pub mod fake_replica;
pub mod forward;
pub mod gossip;
pub mod hint_replay;
pub mod hints;
pub mod hlc;
pub mod layout;
pub mod local_replica;
pub mod merkle;
pub mod metadata;
pub mod node;
pub mod node_id;
pub mod partition_set;
pub mod partition_size;
pub mod placement;
pub mod pubsub_fanout;
pub mod quorum;
pub mod read_repair;
pub mod record;
pub mod record_size;
pub mod replica_api;
pub mod replica_store;
pub mod request_record;
pub mod ring;
pub mod rpc;
pub mod sim;
pub mod skew;
pub mod snapshot_stream;
pub mod tombstone_gc;
pub mod txn_lock;
pub mod version;
pub mod view;
pub mod wal_deferral;

pub use node_id::NodeId;
pub use record::{Body, Record};
pub use request_record::{NewRequest, RequestRecord};
pub use version::Version;

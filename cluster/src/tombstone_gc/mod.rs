//! Tombstone collection and the wipe rule (docs/cluster.md, "Tombstone collection").
//!
//! Deletes are tombstone records so that an older value arriving later is refused. A
//! tombstone is dropped only once it is older than `--cluster-tombstone-grace-ms` and
//! every other replica of its partition, asked directly, holds it, something newer or
//! nothing (rule.rs); each replica collects its own (collect.rs) through the write path's
//! Merkle to-dos. A node whose data may predate collected tombstones (away too long, or
//! restored from an old backup) must be wiped before it rejoins (stamp.rs).

mod collect;
mod rule;
mod stamp;

pub use collect::{collect_partition, collect_round, GcStats};
pub use rule::{may_purge, old_enough, ReplicaAnswer};
pub use stamp::{check_at_start, record_synced_at, synced_at, StartCheck, NODE_STATE_KEYSPACE};

//! How Redis keys, values, TTLs and records are laid out in kv-engine. Shared by the
//! server, the cluster and kvtool, so that every reader of a data directory agrees on
//! one encoding (specs: docs/server.md "Keyspace encoding", docs/format/).

pub mod data_key;
pub mod encoding;
pub mod slot;

pub use encoding::ValueType;
pub use slot::{key_slot, slot_partition, PARTITIONS, SLOTS};

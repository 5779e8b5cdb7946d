//! How Redis keys, values, TTLs and records are laid out in kv-engine. Shared by the
//! server, the cluster and kvtool, so that every reader of a data directory agrees on
//! one encoding (spec: docs/format/keyspace.md).

#![warn(missing_docs)]

pub mod clock;
pub mod data_key;
pub mod encoding;
pub mod format;
pub mod legacy;
pub mod migrate;
pub mod namespace_iter;
pub mod namespaces;
pub mod slot;

pub use clock::now_ms;
pub use encoding::ValueType;
pub use namespaces::Namespaces;
pub use slot::{key_slot, slot_partition, PARTITIONS, SLOTS};

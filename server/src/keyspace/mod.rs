//! Redis keys on the engine: encoding, the shared store, per-command transactions,
//! write notifications and idempotency records.

pub use kv_keyspace::encoding;
pub mod events;
pub mod idempotency;
pub mod idempotency_sweep;
pub mod key_counts;
pub mod keyed_reads;
#[cfg(test)]
mod migration_tests;
#[cfg(test)]
mod scan_tests;
pub mod store;
#[cfg(test)]
mod test_store;
pub mod txn;

pub use encoding::ValueType;
pub use store::{now_ms, ExpiryFilter, Guard, Store};
pub use txn::{Entry, Txn};

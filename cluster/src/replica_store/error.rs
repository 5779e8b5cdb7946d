//! What can go wrong in a replica's local storage.

use crate::replica_api::{ItemKey, ReplicaError};

/// A replica store or Merkle tree failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage engine failed (I/O, closed, writes suspended...).
    #[error("storage engine: {0}")]
    Engine(#[from] kv_engine::Error),
    /// Stored bytes that do not decode: named so an operator can find them.
    #[error("corrupt {what} for {key}")]
    Corrupt {
        /// The key (or engine key) holding the bad bytes, printable.
        key: String,
        /// Which record and what is wrong with it.
        what: String,
    },
    /// A request outside what exists (a partition number past the last, for example).
    #[error("invalid argument: {0}")]
    Invalid(String),
}

impl StoreError {
    /// A corrupt replicated record of `key`.
    pub fn corrupt_record(key: &ItemKey, what: &str) -> StoreError {
        StoreError::Corrupt {
            key: describe_key(key),
            what: format!("replicated record ({what})"),
        }
    }
}

/// `db 0 key "foo\x00"`: a key in words, escaped so any bytes print.
pub fn describe_key(key: &ItemKey) -> String {
    format!("db {} key \"{}\"", key.db, key.key.escape_ascii())
}

impl From<StoreError> for ReplicaError {
    fn from(e: StoreError) -> ReplicaError {
        ReplicaError::Failed(e.to_string())
    }
}

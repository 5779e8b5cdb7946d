//! kv-engine: kvd's log-structured merge-tree storage engine.
//!
//! A [`Db`] is a directory holding a write-ahead log, a MANIFEST of version edits, and
//! SSTables arranged in levels. Writes go to the WAL (group-committed, fsynced per the
//! [`FsyncPolicy`]) and a skiplist memtable; full memtables are flushed to L0 and leveled
//! compaction merges them down. Formats: `docs/format/{wal,sstable,manifest}.md`.
//!
//! The engine knows nothing of Redis or the network and has no async runtime.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

mod chunked;
pub mod coding;
mod compaction;
pub mod constants;
pub mod error;
pub mod fs;
pub mod iter;
pub mod key;
pub mod manifest;
pub mod memtable;
pub mod sst;
pub mod wal;

pub use error::{Error, Result};
pub mod batch;
pub mod db;
pub mod filename;
pub mod options;
pub mod stats;

pub use batch::{Keyspace, WriteBatch};
pub use db::{Db, DbIterator, EntryRef, IterEntry, Snapshot, Versioned};
pub use key::SeqNo;
pub use options::{CompactionFilter, Compression, FilterDecision, FsyncPolicy, Options};
pub use stats::{LevelStats, Stats};

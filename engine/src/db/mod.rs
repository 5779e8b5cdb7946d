//! The database: the public face of the engine.

use crate::batch::{Keyspace, WriteBatch};
use crate::error::Result;
use crate::key::SeqNo;
use crate::options::Options;
use crate::stats::Stats;
use bytes::Bytes;
use std::path::Path;

/// A value together with the sequence number of the write that stored it (its version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The stored bytes.
    pub value: Bytes,
    /// Sequence number of the write; only grows, never reused.
    pub seq: SeqNo,
}

/// A consistent, read-only view of the database as of one sequence number.
/// Compaction keeps every version a live snapshot can see; dropping it releases them.
#[derive(Debug)]
pub struct Snapshot {
    seq: SeqNo,
}

impl Snapshot {
    /// The sequence number this snapshot sees up to (inclusive).
    pub fn sequence(&self) -> SeqNo {
        self.seq
    }
}

/// One entry yielded by [`DbIterator`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IterEntry {
    /// The key, without keyspace prefix.
    pub key: Bytes,
    /// The value.
    pub value: Bytes,
    /// Version (sequence number of the write).
    pub seq: SeqNo,
}

/// A forward iterator over the live keys of one keyspace in a range, at a snapshot.
pub struct DbIterator {}

impl DbIterator {
    /// Moves to the first key >= `key` (within the iterator's range).
    pub fn seek(&mut self, _key: &[u8]) {
        todo!()
    }
}

impl Iterator for DbIterator {
    type Item = Result<IterEntry>;
    fn next(&mut self) -> Option<Self::Item> {
        todo!()
    }
}

/// An open database. Cheap to clone; all clones share one engine. Thread-safe.
#[derive(Clone)]
pub struct Db {}

impl Db {
    /// Opens (recovering if needed) or creates the database in `dir`.
    pub fn open(_dir: impl AsRef<Path>, _options: Options) -> Result<Db> {
        todo!()
    }

    /// The keyspace called `name`, created (durably) if it does not exist.
    pub fn keyspace(&self, _name: &str) -> Result<Keyspace> {
        todo!()
    }

    /// Applies `batch` atomically; returns the sequence number of its first op (op i has
    /// `first + i`). Durable per the fsync policy when this returns.
    pub fn write(&self, _batch: WriteBatch) -> Result<SeqNo> {
        todo!()
    }

    /// Sets one key.
    pub fn put(&self, _ks: Keyspace, _key: &[u8], _value: &[u8]) -> Result<SeqNo> {
        todo!()
    }

    /// Deletes one key.
    pub fn delete(&self, _ks: Keyspace, _key: &[u8]) -> Result<SeqNo> {
        todo!()
    }

    /// The newest value of `key` and its version.
    pub fn get(&self, _ks: Keyspace, _key: &[u8]) -> Result<Option<Versioned>> {
        todo!()
    }

    /// The value of `key` as seen by `snapshot`.
    pub fn get_at(
        &self,
        _ks: Keyspace,
        _key: &[u8],
        _snapshot: &Snapshot,
    ) -> Result<Option<Versioned>> {
        todo!()
    }

    /// A snapshot of the current state.
    pub fn snapshot(&self) -> Snapshot {
        todo!()
    }

    /// Iterates keys in `[start, end)` (`None` = unbounded) at `snapshot` (or now).
    pub fn iter(
        &self,
        _ks: Keyspace,
        _start: Option<&[u8]>,
        _end: Option<&[u8]>,
        _snapshot: Option<&Snapshot>,
    ) -> Result<DbIterator> {
        todo!()
    }

    /// Iterates keys starting with `prefix` at `snapshot` (or now).
    pub fn iter_prefix(
        &self,
        _ks: Keyspace,
        _prefix: &[u8],
        _snapshot: Option<&Snapshot>,
    ) -> Result<DbIterator> {
        todo!()
    }

    /// Flushes the memtable to an L0 table and waits for it.
    pub fn flush(&self) -> Result<()> {
        todo!()
    }

    /// Fsyncs the WAL now, whatever the policy.
    pub fn sync_wal(&self) -> Result<()> {
        todo!()
    }

    /// Compacts every level's files overlapping `[start, end]` of `ks` down to the bottom.
    pub fn compact_range(
        &self,
        _ks: Keyspace,
        _start: Option<&[u8]>,
        _end: Option<&[u8]>,
    ) -> Result<()> {
        todo!()
    }

    /// Writes a consistent copy of the database into the new directory `dest`
    /// (hard links for tables), openable with [`Db::open`].
    pub fn checkpoint(&self, _dest: impl AsRef<Path>) -> Result<()> {
        todo!()
    }

    /// Current statistics.
    pub fn stats(&self) -> Stats {
        todo!()
    }

    /// The last sequence number assigned.
    pub fn latest_sequence(&self) -> SeqNo {
        todo!()
    }

    /// Flushes and syncs, stops background work and releases the directory lock.
    pub fn close(self) -> Result<()> {
        todo!()
    }
}

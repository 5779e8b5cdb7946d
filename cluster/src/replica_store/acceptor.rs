//! The Paxos acceptor of each key (docs/consistency.md, "Single-key consensus"): the
//! record a replica holds is the acceptor's accepted value, its version the ballot it was
//! accepted at, and the `paxos` keyspace holds the highest ballot promised per key.
//!
//! Both rules refuse a ballot that is not above everything the acceptor has seen (its
//! promise, its record, the database's flush floor), and both make their change durable
//! (WAL fsynced, whatever `appendfsync` says) before answering: an acceptor that forgot
//! a promise or an accept after a power cut could let two rounds choose different
//! values.
//!
//! Read repair, hints and anti-entropy write records through [`ReplicaStore::apply`]:
//! newer versions win, promises are never touched. A record they bring was accepted by
//! some acceptor at its version, so it is a value of the key's history, and copying it
//! keeps every acknowledged value safe (docs/consistency.md, "What repair may do").
//! What a copy must not do is count as this acceptor's own accept while it has promised
//! a higher ballot: then the round that wrote it could be acknowledged and still be
//! overwritten by the round that holds the promise (the model check's first
//! counterexample, docs/consistency-model-check.md). So a retried accept is answered
//! Accepted only at or above the promise, and a copy stored while a higher ballot was
//! promised is marked: a prepare reports it (as `promised_before`, the promise it was
//! stored under), and the proposer's read shortcut does not take such a record for
//! chosen. Promises made after a record was stored (rounds that prepared and wrote
//! nothing: a losing compare-and-set, a SERIAL read) do not make it doubtful: the
//! record was accepted, or copied, at or above every promise made before it, exactly
//! as an Accept of its ballot would have been (the model's
//! `Design::guard_marks_copies`).

use super::records::engine_key;
use super::{ReplicaStore, StoreError};
use crate::replica_api::{ItemKey, PrepareOutcome, WriteItem, WriteOutcome};
use crate::Version;
use kv_engine::{Db, Keyspace, WriteBatch};
use std::sync::atomic::Ordering;

/// Whether the promises keyspace `paxos` of `db` holds any promise (at open: the
/// promises left by consensus rounds that prepared and never accepted).
pub(super) fn any_promise(db: &Db, paxos: Keyspace) -> Result<bool, StoreError> {
    match db.iter(paxos, None, None, None)?.next() {
        Some(entry) => entry.map(|_| true).map_err(StoreError::from),
        None => Ok(false),
    }
}

/// Engine keyspace of the promises: engine key as in `replicated`, value the encoded
/// ballot promised, followed, for a record copied while that ballot (or a higher one)
/// was promised, by the copied record's version (docs/format/cluster-storage.md).
pub const PAXOS_KEYSPACE: &str = "paxos";

/// A key's acceptor state besides its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PromiseEntry {
    /// The highest ballot promised (ZERO if none).
    pub promise: Version,
    /// The version of a record repair, a hint or anti-entropy stored while a higher
    /// ballot was promised: not this acceptor's accept.
    pub copied_below: Option<Version>,
}

impl Default for PromiseEntry {
    fn default() -> Self {
        PromiseEntry {
            promise: Version::ZERO,
            copied_below: None,
        }
    }
}

impl PromiseEntry {
    fn encode(&self) -> Vec<u8> {
        let mut out = self.promise.encode().to_vec();
        if let Some(v) = self.copied_below {
            out.extend_from_slice(&v.encode());
        }
        out
    }

    fn decode(bytes: &[u8]) -> Option<PromiseEntry> {
        let version = |b: &[u8]| Version::decode(b);
        match bytes.len() {
            16 => Some(PromiseEntry {
                promise: version(bytes)?,
                copied_below: None,
            }),
            32 => Some(PromiseEntry {
                promise: version(&bytes[..16])?,
                copied_below: Some(version(&bytes[16..])?),
            }),
            _ => None,
        }
    }

    /// What a prepare reports as the promise its record was stored under: the promise
    /// when the record is a copy stored below it, else nothing above the record.
    fn stored_under(&self, record: Option<&crate::Record>) -> Version {
        match (record, self.copied_below) {
            (Some(r), Some(v)) if r.version == v => self.promise,
            _ => Version::ZERO,
        }
    }
}

impl ReplicaStore {
    /// Phase 1: promises `ballot` for `key` and returns the record held, or refuses with
    /// the highest ballot seen when `ballot` is not above it.
    pub fn prepare(&self, key: &ItemKey, ballot: Version) -> Result<PrepareOutcome, StoreError> {
        let _guard = self.stripes.lock(std::iter::once(key));
        let record = self.get(key)?;
        let entry = self.promise_entry(key)?;
        let seen = entry
            .promise
            .max(record.as_ref().map_or(Version::ZERO, |r| r.version))
            .max(self.floors.floor(key.db));
        if ballot <= seen {
            return Ok(PrepareOutcome::Rejected { seen });
        }
        let promised_before = entry.stored_under(record.as_ref());
        let promised = PromiseEntry {
            promise: ballot,
            ..entry
        };
        // Before the promise is written, under the key's stripe: a copy of this key
        // applied after it (under the same stripe) sees the flag and checks the promise.
        self.promises_made.store(true, Ordering::Relaxed);
        let mut batch = WriteBatch::new();
        batch.put(self.paxos, &engine_key(key), &promised.encode());
        self.write_durably(batch)?;
        Ok(PrepareOutcome::Promised {
            record,
            promised_before,
        })
    }

    /// Phase 2: stores `item.record` as the value accepted at its version (the ballot),
    /// unless a higher ballot was promised or a newer record is held. The same record
    /// again is `Applied` (a retried accept).
    pub fn accept(&self, item: &WriteItem) -> Result<WriteOutcome, StoreError> {
        let key = &item.key;
        let ballot = item.record.version;
        let _guard = self.stripes.lock(std::iter::once(key));
        let held = self.get(key)?.map_or(Version::ZERO, |r| r.version);
        let promise = self.promised(key)?;
        let promised = promise.max(self.floors.floor(key.db));
        // A retried accept of the record held is answered Accepted only while no higher
        // ballot is promised: the record may have arrived by repair after this acceptor
        // promised a higher ballot to another proposer, which then overwrites it, and
        // counting it toward the first proposer's majority would acknowledge a value
        // that is lost (the model check's first counterexample,
        // docs/consistency-model-check.md).
        if ballot < promised || ballot < held {
            return Ok(WriteOutcome::Stale {
                current: promised.max(held),
            });
        }
        if ballot == held {
            // The record held may be a copy (a hint or read repair of this very accept)
            // that `apply` has not synced under `everysec`: sync it before it counts as
            // this acceptor's accept, or a power cut could take an accept the round was
            // acknowledged with (a replica catching up after one must have lost none).
            // One WAL fsync covers every earlier write (an older log is synced when the
            // memtable switches).
            self.db.sync_wal()?;
            return Ok(WriteOutcome::Applied);
        }
        let mut batch = WriteBatch::new();
        let mut leaves = self.merkle.begin_leaves();
        let stored_key = engine_key(key);
        self.put_keyed(&mut batch, &mut leaves, key, &stored_key, &item.record);
        // A promise at or below the record's version tells nothing the record does not
        // (both rules compare a ballot with the higher of the two, and a prepare's
        // read shortcut needs the promise at or below the record's version either way):
        // forget it in the same batch, so a finished round leaves only its record.
        // Promises above the record (rounds that prepared and never accepted) stay.
        if promise <= ballot {
            batch.delete(self.paxos, &stored_key);
        }
        self.write_durably(batch)?;
        drop(leaves);
        Ok(WriteOutcome::Applied)
    }

    /// How many promises this replica holds (live entries of the `paxos` keyspace):
    /// what consensus leaves behind besides records. A full scan: for tests and tools.
    pub fn promises_held(&self) -> Result<u64, StoreError> {
        let mut held = 0;
        for entry in self.db.iter(self.paxos, None, None, None)? {
            entry?;
            held += 1;
        }
        Ok(held)
    }

    /// The highest ballot promised for `key` (ZERO if none).
    pub(super) fn promised(&self, key: &ItemKey) -> Result<Version, StoreError> {
        Ok(self.promise_entry(key)?.promise)
    }

    /// `key`'s promise and copy mark.
    pub(super) fn promise_entry(&self, key: &ItemKey) -> Result<PromiseEntry, StoreError> {
        self.promise_entry_at(key, &engine_key(key))
    }

    /// [`Self::promise_entry`] for a caller that built `key`'s engine key already.
    fn promise_entry_at(
        &self,
        key: &ItemKey,
        engine_key: &[u8],
    ) -> Result<PromiseEntry, StoreError> {
        match self.db.get(self.paxos, engine_key)? {
            None => Ok(PromiseEntry::default()),
            Some(v) => PromiseEntry::decode(&v.value).ok_or_else(|| StoreError::Corrupt {
                key: super::describe_key(key),
                what: "paxos promise (not a ballot)".into(),
            }),
        }
    }

    /// Marks, in `batch`, `record` stored for `key` by a copy (repair, hint,
    /// anti-entropy) while a higher ballot is promised; forgets an older mark.
    pub(super) fn mark_copy(
        &self,
        batch: &mut WriteBatch,
        key: &ItemKey,
        engine_key: &[u8],
        version: Version,
    ) -> Result<(), StoreError> {
        // No promise anywhere: nothing to mark, and no engine read to find that out.
        if !self.promises_made.load(Ordering::Relaxed) {
            return Ok(());
        }
        let entry = self.promise_entry_at(key, engine_key)?;
        let marked = PromiseEntry {
            promise: entry.promise,
            copied_below: (entry.promise > version).then_some(version),
        };
        if marked != entry {
            batch.put(self.paxos, engine_key, &marked.encode());
        }
        Ok(())
    }

    /// Writes `batch` and fsyncs the WAL before returning (one fsync shared by the
    /// promises and accepts committed together).
    fn write_durably(&self, batch: WriteBatch) -> Result<(), StoreError> {
        self.db.write_synced(batch)?;
        Ok(())
    }
}

#[cfg(test)]
mod entry_tests {
    use super::*;

    fn v(ts: u64) -> Version {
        Version {
            ts,
            node: crate::NodeId(1),
        }
    }

    #[test]
    fn a_promise_entry_round_trips_with_and_without_a_copy_mark() {
        for entry in [
            PromiseEntry {
                promise: v(7),
                copied_below: None,
            },
            PromiseEntry {
                promise: v(9),
                copied_below: Some(v(4)),
            },
        ] {
            assert_eq!(PromiseEntry::decode(&entry.encode()), Some(entry));
        }
        assert_eq!(PromiseEntry::decode(&[0; 15]), None);
        assert_eq!(PromiseEntry::decode(&[0; 17]), None);
    }

    #[test]
    fn only_a_copy_stored_below_the_promise_is_reported_as_such() {
        let record = |version| crate::Record::tombstone(version);
        let marked = PromiseEntry {
            promise: v(9),
            copied_below: Some(v(4)),
        };
        assert_eq!(marked.stored_under(Some(&record(v(4)))), v(9));
        // A newer record (accepted since) is not the copy.
        assert_eq!(marked.stored_under(Some(&record(v(10)))), Version::ZERO);
        // A promise made after the record was stored says nothing about it.
        let later = PromiseEntry {
            promise: v(9),
            copied_below: None,
        };
        assert_eq!(later.stored_under(Some(&record(v(4)))), Version::ZERO);
        assert_eq!(later.stored_under(None), Version::ZERO);
    }
}

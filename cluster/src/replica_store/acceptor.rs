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
//! Accepted only at or above the promise, and a prepare reports the promise it
//! replaced, for the proposer's read shortcut.

use super::records::engine_key;
use super::{ReplicaStore, StoreError};
use crate::replica_api::{ItemKey, PrepareOutcome, WriteItem, WriteOutcome};
use crate::Version;
use kv_engine::WriteBatch;

/// Engine keyspace of the promises: engine key as in `replicated`, value the encoded
/// ballot (docs/format/cluster-storage.md).
pub const PAXOS_KEYSPACE: &str = "paxos";

impl ReplicaStore {
    /// Phase 1: promises `ballot` for `key` and returns the record held, or refuses with
    /// the highest ballot seen when `ballot` is not above it.
    pub fn prepare(&self, key: &ItemKey, ballot: Version) -> Result<PrepareOutcome, StoreError> {
        let _guard = self.stripes.lock(std::iter::once(key));
        let record = self.get(key)?;
        let promised_before = self.promised(key)?;
        let seen = promised_before
            .max(record.as_ref().map_or(Version::ZERO, |r| r.version))
            .max(self.floors.floor(key.db));
        if ballot <= seen {
            return Ok(PrepareOutcome::Rejected { seen });
        }
        let mut batch = WriteBatch::new();
        batch.put(self.paxos, &engine_key(key), &ballot.encode());
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
            return Ok(WriteOutcome::Applied);
        }
        let mut batch = WriteBatch::new();
        let mut todos = self.merkle.begin_todos();
        self.put_record(&mut batch, &mut todos, item);
        // A promise at or below the record's version tells nothing the record does not
        // (both rules compare a ballot with the higher of the two, and a prepare's
        // read shortcut needs the promise at or below the record's version either way):
        // forget it in the same batch, so a finished round leaves only its record.
        // Promises above the record (rounds that prepared and never accepted) stay.
        if promise <= ballot {
            batch.delete(self.paxos, &engine_key(key));
        }
        self.write_durably(batch)?;
        drop(todos);
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
        match self.db.get(self.paxos, &engine_key(key))? {
            None => Ok(Version::ZERO),
            Some(v) => Version::decode(&v.value).ok_or_else(|| StoreError::Corrupt {
                key: super::describe_key(key),
                what: "paxos promise (not a ballot)".into(),
            }),
        }
    }

    /// Writes `batch` and fsyncs the WAL before returning (one fsync shared by the
    /// promises and accepts committed together).
    fn write_durably(&self, batch: WriteBatch) -> Result<(), StoreError> {
        self.db.write_synced(batch)?;
        Ok(())
    }
}

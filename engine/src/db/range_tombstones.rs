//! Range deletes.
//!
//! `WriteBatch::delete_range(ks, start, end)` is stored as an ordinary entry in the
//! reserved keyspace [`RANGE_TOMBSTONE_KEYSPACE`]: key `ks start_seq:u64-BE start`,
//! value `end`, at the op's sequence number. It travels through the WAL, memtables,
//! tables, checkpoints and recovery like any write. Every live range tombstone is also
//! kept in memory (they are few: a FLUSHDB or the drop of a whole collection each add
//! one), and reads, iterators and compactions ask it whether an entry is covered:
//!
//! an entry `(key, seq)` of keyspace `ks` is deleted at read sequence `r` by a tombstone
//! `(ks, start, end, t)` when `start <= key < end` and `seq < t <= r`.
//!
//! Compaction drops covered entries once every snapshot sees the tombstone. Tombstones
//! themselves are kept: whether older data still lies below them anywhere is not known.

use crate::key::SeqNo;
use parking_lot::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Keyspace id reserved for range tombstone records; never handed out by `Db::keyspace`.
pub(crate) const RANGE_TOMBSTONE_KEYSPACE: u8 = u8::MAX;

/// One range delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RangeTombstone {
    pub(crate) keyspace: u8,
    pub(crate) start: Vec<u8>,
    pub(crate) end: Vec<u8>,
    pub(crate) seq: SeqNo,
}

impl RangeTombstone {
    /// Key of its record in the reserved keyspace (keyspace-prefixed).
    pub(crate) fn record_key(keyspace: u8, seq: SeqNo, start: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(start.len() + 10);
        k.push(RANGE_TOMBSTONE_KEYSPACE);
        k.push(keyspace);
        k.extend_from_slice(&seq.to_be_bytes());
        k.extend_from_slice(start);
        k
    }

    /// Decodes a record (key without the reserved keyspace byte).
    pub(crate) fn from_record(key: &[u8], end: &[u8]) -> Option<RangeTombstone> {
        let (&keyspace, rest) = key.split_first()?;
        let seq = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
        Some(RangeTombstone {
            keyspace,
            start: rest.get(8..)?.to_vec(),
            end: end.to_vec(),
            seq,
        })
    }

    fn covers(&self, keyspace: u8, key: &[u8], seq: SeqNo, read_seq: SeqNo) -> bool {
        self.keyspace == keyspace
            && seq < self.seq
            && self.seq <= read_seq
            && self.start.as_slice() <= key
            && key < self.end.as_slice()
    }
}

/// The live range tombstones, copied on write so readers take a cheap snapshot.
#[derive(Debug, Default)]
pub(crate) struct RangeTombstones {
    any: AtomicBool,
    list: RwLock<Arc<Vec<RangeTombstone>>>,
}

/// A reader's view of the tombstones (empty when there are none, at no cost).
#[derive(Debug, Clone, Default)]
pub(crate) struct TombstoneView(Option<Arc<Vec<RangeTombstone>>>);

impl TombstoneView {
    /// True if the entry `(keyspace, key, seq)` is deleted by a range tombstone visible at
    /// `read_seq`. `key` has no keyspace prefix.
    pub(crate) fn covers(&self, keyspace: u8, key: &[u8], seq: SeqNo, read_seq: SeqNo) -> bool {
        self.0
            .as_ref()
            .is_some_and(|l| l.iter().any(|t| t.covers(keyspace, key, seq, read_seq)))
    }
}

impl RangeTombstones {
    pub(crate) fn add(&self, t: RangeTombstone) {
        let mut list = self.list.write();
        let mut next = Vec::clone(&list);
        next.push(t);
        *list = Arc::new(next);
        self.any.store(true, Ordering::Release);
    }

    pub(crate) fn view(&self) -> TombstoneView {
        if !self.any.load(Ordering::Acquire) {
            return TombstoneView(None);
        }
        TombstoneView(Some(self.list.read().clone()))
    }

    pub(crate) fn len(&self) -> usize {
        self.list.read().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_respects_range_keyspace_and_sequences() {
        let set = RangeTombstones::default();
        assert!(!set.view().covers(0, b"b", 1, 100));
        set.add(RangeTombstone {
            keyspace: 0,
            start: b"b".to_vec(),
            end: b"d".to_vec(),
            seq: 10,
        });
        let v = set.view();
        assert!(v.covers(0, b"b", 5, 10));
        assert!(v.covers(0, b"c\xff", 9, 50));
        assert!(!v.covers(0, b"d", 5, 50), "end is exclusive");
        assert!(!v.covers(0, b"a", 5, 50));
        assert!(!v.covers(1, b"c", 5, 50), "other keyspace");
        assert!(!v.covers(0, b"c", 11, 50), "newer write survives");
        assert!(!v.covers(0, b"c", 5, 9), "snapshot before the delete");
        let rec = RangeTombstone::record_key(0, 10, b"b");
        assert_eq!(
            RangeTombstone::from_record(&rec[1..], b"d"),
            Some(RangeTombstone {
                keyspace: 0,
                start: b"b".to_vec(),
                end: b"d".to_vec(),
                seq: 10
            })
        );
    }
}

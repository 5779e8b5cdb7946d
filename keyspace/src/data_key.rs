//! The engine key of a Redis key: slot first, then namespace, then a hash of the key
//! (spec: docs/format/keyspace.md).
//!
//! ```text
//! data key := slot:u16-BE namespace:u32-BE key-hash:u32-BE redis-key
//! slot     := Redis Cluster's CRC16 slot of the key (slot.rs)
//! key-hash := high 32 bits of xxh3-64(redis-key)
//! ```
//! Slot first makes one partition (64 slots) one contiguous engine key range, so
//! anti-entropy and streaming a partition are range scans. Within a slot and namespace,
//! keys are in hash order, and (slot, key-hash) is a *scan position* that fits in a
//! 64-bit SCAN cursor: a cursor names where to resume, so SCAN needs no server-side
//! state and keeps its guarantee (a key present for the whole scan is returned: keys
//! never move, and a reply never stops between two keys of the same position).

use crate::slot::{key_slot, SLOTS, SLOTS_PER_PARTITION};
use xxhash_rust::xxh3::xxh3_64;

/// Bytes before the Redis key in a data key.
pub const DATA_KEY_PREFIX: usize = 2 + 4 + 4;

/// The hash that orders keys inside a slot.
pub fn key_hash(key: &[u8]) -> u32 {
    (xxh3_64(key) >> 32) as u32
}

/// Engine key of `key` in namespace `ns`.
pub fn data_key(ns: u32, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(DATA_KEY_PREFIX + key.len());
    k.extend_from_slice(&key_slot(key).to_be_bytes());
    k.extend_from_slice(&ns.to_be_bytes());
    k.extend_from_slice(&key_hash(key).to_be_bytes());
    k.extend_from_slice(key);
    k
}

/// The parts of a data key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataKey<'a> {
    /// Redis Cluster slot.
    pub slot: u16,
    /// Namespace (a logical database's current id).
    pub ns: u32,
    /// Hash that orders keys inside the slot.
    pub hash: u32,
    /// The Redis key.
    pub key: &'a [u8],
}

impl DataKey<'_> {
    /// Where this key sits in a scan of its namespace.
    pub fn position(&self) -> ScanPosition {
        ScanPosition {
            slot: self.slot,
            hash: self.hash,
        }
    }
}

/// Splits a data key; `None` if it is too short or its slot or hash do not match its
/// Redis key (a damaged or foreign key).
pub fn split_data_key(k: &[u8]) -> Option<DataKey<'_>> {
    if k.len() < DATA_KEY_PREFIX {
        return None;
    }
    let slot = u16::from_be_bytes([k[0], k[1]]);
    let ns = u32::from_be_bytes([k[2], k[3], k[4], k[5]]);
    let hash = u32::from_be_bytes([k[6], k[7], k[8], k[9]]);
    let key = &k[DATA_KEY_PREFIX..];
    (slot == key_slot(key) && hash == key_hash(key)).then_some(DataKey {
        slot,
        ns,
        hash,
        key,
    })
}

/// The parts of a data key without checking its slot and hash against its Redis key:
/// for hot paths over keys kvd wrote itself (scans, key counts, the compaction filter),
/// where hashing every key would cost more than the read. `None` if it is too short.
pub fn split_data_key_unchecked(k: &[u8]) -> Option<DataKey<'_>> {
    let (head, key) = k.split_first_chunk::<DATA_KEY_PREFIX>()?;
    Some(DataKey {
        slot: u16::from_be_bytes([head[0], head[1]]),
        ns: u32::from_be_bytes([head[2], head[3], head[4], head[5]]),
        hash: u32::from_be_bytes([head[6], head[7], head[8], head[9]]),
        key,
    })
}

/// Slot and namespace of a data key, read without hashing; `None` if it is too short.
pub fn slot_ns_of(k: &[u8]) -> Option<(u16, u32)> {
    let (head, _) = k.split_first_chunk::<6>()?;
    Some((
        u16::from_be_bytes([head[0], head[1]]),
        u32::from_be_bytes([head[2], head[3], head[4], head[5]]),
    ))
}

/// A point in the (slot, key-hash) order of one namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ScanPosition {
    /// Slot.
    pub slot: u16,
    /// Key hash inside the slot.
    pub hash: u32,
}

impl ScanPosition {
    /// The first position.
    pub const START: ScanPosition = ScanPosition { slot: 0, hash: 0 };

    /// Where `key` sits in a scan of its namespace.
    pub fn of_key(key: &[u8]) -> ScanPosition {
        ScanPosition {
            slot: key_slot(key),
            hash: key_hash(key),
        }
    }

    /// The SCAN cursor that resumes here. Cursor 0 means "start" (and, in a reply,
    /// "done"), so positions are offset by one.
    pub fn cursor(&self) -> u64 {
        ((self.slot as u64) << 32 | self.hash as u64) + 1
    }

    /// The position a cursor names; `None` for cursors no reply ever gave.
    pub fn from_cursor(cursor: u64) -> Option<ScanPosition> {
        if cursor == 0 {
            return Some(ScanPosition::START);
        }
        let p = cursor - 1;
        let slot = p >> 32;
        (slot < SLOTS as u64).then_some(ScanPosition {
            slot: slot as u16,
            hash: p as u32,
        })
    }

    /// The position just after this one, or `None` at the very end.
    pub fn next(&self) -> Option<ScanPosition> {
        match self.hash.checked_add(1) {
            Some(hash) => Some(ScanPosition {
                slot: self.slot,
                hash,
            }),
            None => (self.slot + 1 < SLOTS).then_some(ScanPosition {
                slot: self.slot + 1,
                hash: 0,
            }),
        }
    }

    /// The first engine key at or after this position in namespace `ns`.
    pub fn seek_key(&self, ns: u32) -> Vec<u8> {
        let mut k = Vec::with_capacity(DATA_KEY_PREFIX);
        k.extend_from_slice(&self.slot.to_be_bytes());
        k.extend_from_slice(&ns.to_be_bytes());
        k.extend_from_slice(&self.hash.to_be_bytes());
        k
    }
}

/// The engine key range `[start, end)` of one slot in namespace `ns`.
pub fn slot_ns_range(slot: u16, ns: u32) -> (Vec<u8>, Vec<u8>) {
    let start = ScanPosition { slot, hash: 0 }.seek_key(ns);
    let mut end = Vec::with_capacity(6);
    end.extend_from_slice(&slot.to_be_bytes());
    match ns.checked_add(1) {
        Some(n) => end.extend_from_slice(&n.to_be_bytes()),
        None => end = (slot as u32 + 1).to_be_bytes()[2..].to_vec(),
    }
    (start, end)
}

/// The engine key range `[start, end)` holding every key of `partition`, all
/// namespaces; `end` is `None` for the last partition.
pub fn partition_range(partition: u16) -> (Vec<u8>, Option<Vec<u8>>) {
    let first = partition * SLOTS_PER_PARTITION;
    let start = first.to_be_bytes().to_vec();
    let end = first
        .checked_add(SLOTS_PER_PARTITION)
        .filter(|&s| s < SLOTS)
        .map(|s| s.to_be_bytes().to_vec());
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slot::{key_partition, PARTITIONS};
    use proptest::prelude::*;

    #[test]
    fn a_slot_range_holds_exactly_its_namespace() {
        let k = data_key(3, b"foo");
        let (start, end) = slot_ns_range(key_slot(b"foo"), 3);
        assert!(start <= k && k < end);
        let (s4, _) = slot_ns_range(key_slot(b"foo"), 4);
        assert!(k < s4);
        let (_, e2) = slot_ns_range(key_slot(b"foo"), 2);
        assert!(e2 <= k);
        let (_, e_max) = slot_ns_range(5, u32::MAX);
        assert_eq!(e_max, vec![0, 6]);
    }

    #[test]
    fn the_documented_example_holds() {
        // docs/format/keyspace.md, "Example".
        let k = data_key(0, b"user:1");
        assert_eq!(
            &k[..DATA_KEY_PREFIX],
            &[0x2a, 0x1a, 0, 0, 0, 0, 0x3b, 0x57, 0x7a, 0xfd]
        );
        let position = split_data_key(&k).unwrap().position();
        assert_eq!(position.slot, 10778);
        assert_eq!(position.cursor(), 46_292_153_105_150);
    }

    #[test]
    fn damaged_keys_do_not_split() {
        let mut k = data_key(0, b"foo");
        assert_eq!(split_data_key(&k).map(|d| d.key), Some(&b"foo"[..]));
        let unchecked = split_data_key_unchecked(&k);
        assert_eq!(unchecked, split_data_key(&k));
        assert_eq!(slot_ns_of(&k), Some((key_slot(b"foo"), 0)));
        k[9] ^= 1;
        assert_eq!(split_data_key(&k), None);
        assert_eq!(split_data_key(b"short"), None);
        assert_eq!(split_data_key_unchecked(b"short"), None);
        assert_eq!(slot_ns_of(b"short"), None);
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        assert_eq!(ScanPosition::from_cursor(0), Some(ScanPosition::START));
        let last = ScanPosition {
            slot: SLOTS - 1,
            hash: u32::MAX,
        };
        assert_eq!(ScanPosition::from_cursor(last.cursor()), Some(last));
        assert_eq!(last.next(), None);
        assert_eq!(ScanPosition::from_cursor(last.cursor() + 1), None);
        assert_eq!(ScanPosition::from_cursor(u64::MAX), None);
    }

    proptest! {
        #[test]
        fn layout_orders_by_slot_namespace_hash(
            a in (0u32..4, proptest::collection::vec(any::<u8>(), 0..12)),
            b in (0u32..4, proptest::collection::vec(any::<u8>(), 0..12)),
        ) {
            let (ka, kb) = (data_key(a.0, &a.1), data_key(b.0, &b.1));
            let (da, db) = (split_data_key(&ka).unwrap(), split_data_key(&kb).unwrap());
            prop_assert_eq!(da.key, &a.1[..]);
            prop_assert_eq!(da.ns, a.0);
            let order = (da.slot, da.ns, da.hash, da.key).cmp(&(db.slot, db.ns, db.hash, db.key));
            prop_assert_eq!(ka.cmp(&kb), order);
            // The key lies inside its partition's range and at or after its seek key.
            let (start, end) = partition_range(key_partition(&a.1));
            prop_assert!(start <= ka && end.is_none_or(|e| ka < e));
            prop_assert!(da.position().seek_key(da.ns) <= ka);
            let pos = ScanPosition::from_cursor(da.position().cursor());
            prop_assert_eq!(pos, Some(da.position()));
            prop_assert_eq!(ScanPosition::of_key(&a.1), da.position());
        }
    }

    #[test]
    fn partitions_tile_the_key_space() {
        let mut prev_end = Some(vec![0u8, 0]);
        for p in 0..PARTITIONS {
            let (start, end) = partition_range(p);
            assert_eq!(Some(start), prev_end);
            prev_end = end;
        }
        assert_eq!(prev_end, None);
    }
}

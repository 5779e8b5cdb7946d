//! Redis Cluster's key -> slot function, and kvd's slot -> partition mapping.
//!
//! A key hashes to one of 16384 slots exactly as in Redis Cluster (CRC-16/XMODEM of the
//! key, or of the first non-empty `{hash tag}` in it), so `CLUSTER KEYSLOT` agrees with
//! Redis and hash tags keep related keys together. 64 consecutive slots form one of 256
//! partitions: the unit of placement, replication, anti-entropy and streaming.

use crc::{Crc, Table, CRC_16_XMODEM};

/// Redis Cluster's slot count.
pub const SLOTS: u16 = 16384;
/// kvd's partition count: placement moves whole partitions.
pub const PARTITIONS: u16 = 256;
/// Slots in one partition.
pub const SLOTS_PER_PARTITION: u16 = SLOTS / PARTITIONS;

/// Slice-by-16 tables (8 KiB): a key's slot is computed several times per replicated
/// write (placement, engine key, Merkle leaf), and a 16-byte key took about 180
/// instructions with the one-table default (docs/performance.md, "Fewer instructions
/// per key").
const CRC16: Crc<u16, Table<16>> = Crc::<u16, Table<16>>::new(&CRC_16_XMODEM);

/// The part of `key` that is hashed: the content of the first `{...}` if it is
/// non-empty, else the whole key (Redis's `keyHashSlot`).
pub fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        if let Some(len) = key[open + 1..].iter().position(|&b| b == b'}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

/// The Redis Cluster slot of `key`.
pub fn key_slot(key: &[u8]) -> u16 {
    CRC16.checksum(hash_tag(key)) & (SLOTS - 1)
}

/// The partition that holds `slot`.
pub fn slot_partition(slot: u16) -> u16 {
    slot / SLOTS_PER_PARTITION
}

/// The partition that holds `key`.
pub fn key_partition(key: &[u8]) -> u16 {
    slot_partition(key_slot(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn slots_match_redis() {
        // Values from redis-server 7.0's CLUSTER KEYSLOT.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"somekey"), 11058);
        assert_eq!(key_slot(b""), 0);
        assert_eq!(CRC16.checksum(b"123456789"), 0x31c3);
    }

    #[test]
    fn hash_tags_follow_redis_rules() {
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"{user1000}.followers"), key_slot(b"user1000"));
        // An empty tag hashes the whole key; only the first tag counts.
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(hash_tag(b"foo{bar}{zap}"), b"bar");
        assert_eq!(hash_tag(b"{unclosed"), b"{unclosed");
    }

    proptest! {
        #[test]
        fn every_slot_and_partition_is_in_range(key in proptest::collection::vec(any::<u8>(), 0..64)) {
            let slot = key_slot(&key);
            prop_assert!(slot < SLOTS);
            prop_assert!(key_partition(&key) < PARTITIONS);
            prop_assert_eq!(key_partition(&key), slot / 64);
        }
    }
}

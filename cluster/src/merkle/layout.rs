//! Engine keys of the `merkle` keyspace (docs/format/cluster-storage.md):
//!
//! ```text
//! leaf   := 'L' partition:u16-BE bucket:u8 db:u32-BE key -> item-hash:16
//! bucket := 'B' partition:u16-BE bucket:u8                -> bucket-hash:16
//! to-do  := 'T' seq:u64-BE                                -> db:u32-BE key
//! ```

use super::hash::bucket_of;
use crate::replica_api::ItemKey;
use bytes::Bytes;
use kv_keyspace::slot::key_partition;

const LEAF: u8 = b'L';
const BUCKET: u8 = b'B';
const TODO: u8 = b'T';
/// The first key after every to-do key.
pub const TODO_END: &[u8] = b"U";

/// Where a key's leaf lives: (partition, bucket).
pub fn leaf_place(key: &ItemKey) -> (u16, u8) {
    (key_partition(&key.key), bucket_of(&key.key))
}

/// The leaf key of `key`.
pub fn leaf_key(key: &ItemKey) -> Vec<u8> {
    let (partition, bucket) = leaf_place(key);
    let mut k = leaf_prefix(partition, Some(bucket));
    k.extend_from_slice(&key.db.to_be_bytes());
    k.extend_from_slice(&key.key);
    k
}

/// The prefix of a partition's leaves, or of one bucket's.
pub fn leaf_prefix(partition: u16, bucket: Option<u8>) -> Vec<u8> {
    let mut k = vec![LEAF];
    k.extend_from_slice(&partition.to_be_bytes());
    k.extend(bucket);
    k
}

/// (bucket, item key) of a leaf key; `None` if it is not one.
pub fn decode_leaf_key(k: &Bytes) -> Option<(u8, ItemKey)> {
    if k.len() < 8 || k[0] != LEAF {
        return None;
    }
    let db = u32::from_be_bytes(k[4..8].try_into().ok()?);
    Some((
        k[3],
        ItemKey {
            db,
            key: k.slice(8..),
        },
    ))
}

/// The key of one bucket hash.
pub fn bucket_key(partition: u16, bucket: u8) -> Vec<u8> {
    let mut k = bucket_prefix(partition);
    k.push(bucket);
    k
}

/// The prefix of a partition's bucket hashes.
pub fn bucket_prefix(partition: u16) -> Vec<u8> {
    let mut k = vec![BUCKET];
    k.extend_from_slice(&partition.to_be_bytes());
    k
}

/// The bucket a bucket key names; `None` if it is not one.
pub fn decode_bucket_key(k: &[u8]) -> Option<u8> {
    (k.len() == 4 && k[0] == BUCKET).then(|| k[3])
}

/// The key of to-do number `seq`.
pub fn todo_key(seq: u64) -> Vec<u8> {
    let mut k = vec![TODO];
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The sequence number of a to-do key.
pub fn decode_todo_seq(k: &[u8]) -> Option<u64> {
    if k.len() != 9 || k[0] != TODO {
        return None;
    }
    Some(u64::from_be_bytes(k[1..].try_into().ok()?))
}

/// A to-do names the key whose leaf must be recomputed from the data.
pub fn encode_todo(key: &ItemKey) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + key.key.len());
    v.extend_from_slice(&key.db.to_be_bytes());
    v.extend_from_slice(&key.key);
    v
}

/// The key a to-do names; `None` if the bytes are not one.
pub fn decode_todo(v: &Bytes) -> Option<ItemKey> {
    let db = u32::from_be_bytes(v.get(..4)?.try_into().ok()?);
    Some(ItemKey {
        db,
        key: v.slice(4..),
    })
}

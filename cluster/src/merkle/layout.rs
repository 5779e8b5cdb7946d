//! Engine keys of the `merkle` keyspace (docs/format/cluster-storage.md):
//!
//! ```text
//! leaf   := 'L' partition:u16-BE bucket:u8 db:u32-BE key -> item-hash:16
//! bucket := 'B' partition:u16-BE bucket:u8                -> bucket-hash:16
//! to-do  := 'T' seq:u64-BE                                -> db:u32-BE key
//!                                                           | 0xFF leaf:16 db:u32-BE key
//! ```

use super::hash::{bucket_of, bucket_of_hash, decode_hash};
use crate::replica_api::{Hash16, ItemKey};
use bytes::Bytes;
use kv_keyspace::data_key::split_data_key_unchecked;
use kv_keyspace::slot::{key_partition, slot_partition};

const LEAF: u8 = b'L';
const BUCKET: u8 = b'B';
const TODO: u8 = b'T';
/// The first key after every to-do key.
pub const TODO_END: &[u8] = b"U";
/// First byte of a to-do that carries its key's new leaf hash. A to-do without one
/// starts with the database number's top byte, which is never 0xFF.
const WITH_LEAF: u8 = 0xFF;

/// Where a key's leaf lives: (partition, bucket).
pub fn leaf_place(key: &ItemKey) -> (u16, u8) {
    (key_partition(&key.key), bucket_of(&key.key))
}

/// [`leaf_place`] read from `key`'s data key (`engine_key`, built by
/// `kv_keyspace::data_key::data_key` for it), which holds the key's slot and the hash its
/// bucket is taken from: a write that built the data key already saves the CRC and the
/// hash of the key a second time. Computed from the key if `engine_key` is too short.
pub fn leaf_place_in(engine_key: &[u8], key: &ItemKey) -> (u16, u8) {
    match split_data_key_unchecked(engine_key) {
        Some(k) => (slot_partition(k.slot), bucket_of_hash(k.hash)),
        None => leaf_place(key),
    }
}

/// The leaf key of `key`.
pub fn leaf_key(key: &ItemKey) -> Vec<u8> {
    leaf_key_at(leaf_place(key), key)
}

/// The leaf key of `key` at its `leaf_place` (for callers that need both).
pub fn leaf_key_at((partition, bucket): (u16, u8), key: &ItemKey) -> Vec<u8> {
    // Sized once: every replicated write builds one, and growing from the prefix's
    // allocation cost two reallocations each.
    let mut k = Vec::with_capacity(LEAF_PREFIX_LEN + 4 + key.key.len());
    k.extend_from_slice(&leaf_prefix_bytes(partition, Some(bucket)));
    k.extend_from_slice(&key.db.to_be_bytes());
    k.extend_from_slice(&key.key);
    k
}

/// The prefix of a partition's leaves, or of one bucket's.
pub fn leaf_prefix(partition: u16, bucket: Option<u8>) -> Vec<u8> {
    let bytes = leaf_prefix_bytes(partition, bucket);
    bytes[..LEAF_PREFIX_LEN - usize::from(bucket.is_none())].to_vec()
}

/// Bytes of a leaf key before its database number: 'L', partition, bucket.
const LEAF_PREFIX_LEN: usize = 4;

/// [`leaf_prefix`] without an allocation; without a bucket, its last byte is unused.
fn leaf_prefix_bytes(partition: u16, bucket: Option<u8>) -> [u8; LEAF_PREFIX_LEN] {
    let [p0, p1] = partition.to_be_bytes();
    [LEAF, p0, p1, bucket.unwrap_or(0)]
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

/// A decoded to-do: the key whose leaf changed and, when its writer knew it, the leaf
/// hash the key has after that write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Todo {
    pub key: ItemKey,
    pub leaf: Option<Hash16>,
}

/// A to-do names the key whose leaf must change; with `leaf`, it also says what the
/// leaf becomes, which only a writer that holds the key's stripe lock from taking the
/// to-do's number until its batch is written may say (docs/format/cluster-storage.md).
pub fn encode_todo(key: &ItemKey, leaf: Option<&Hash16>) -> Vec<u8> {
    let mut v = Vec::with_capacity(21 + key.key.len());
    if let Some(hash) = leaf {
        v.push(WITH_LEAF);
        v.extend_from_slice(hash);
    }
    v.extend_from_slice(&key.db.to_be_bytes());
    v.extend_from_slice(&key.key);
    v
}

/// The to-do the bytes hold; `None` if they are not one.
pub fn decode_todo(v: &Bytes) -> Option<Todo> {
    let (leaf, rest) = match v.first() {
        Some(&WITH_LEAF) => (Some(decode_hash(v.get(1..17)?)?), v.slice(17..)),
        _ => (None, v.clone()),
    };
    let db = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
    Some(Todo {
        key: ItemKey {
            db,
            key: rest.slice(4..),
        },
        leaf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The place read from a data key is the place computed from the key, for keys
    /// with and without hash tags, empty and binary, in several databases.
    #[test]
    fn a_leaf_place_read_from_the_data_key_is_the_computed_one() {
        use kv_keyspace::data_key::data_key;
        let mut keys: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"{user1000}.following".to_vec(),
            b"{}x".to_vec(),
            vec![0, 255, 7, b'{', 1, b'}'],
        ];
        keys.extend((0..2000).map(|i| format!("key:{i:06}").into_bytes()));
        for (i, k) in keys.into_iter().enumerate() {
            let item = ItemKey {
                db: (i % 3) as u32,
                key: Bytes::from(k),
            };
            let engine_key = data_key(item.db, &item.key);
            assert_eq!(
                leaf_place_in(&engine_key, &item),
                leaf_place(&item),
                "{:?}",
                item.key
            );
        }
        let short = ItemKey {
            db: 0,
            key: Bytes::from_static(b"k"),
        };
        assert_eq!(leaf_place_in(b"", &short), leaf_place(&short));
    }

    fn key(db: u32, k: &'static [u8]) -> ItemKey {
        ItemKey {
            db,
            key: Bytes::from_static(k),
        }
    }

    #[test]
    fn todos_round_trip_with_and_without_a_leaf() {
        for leaf in [None, Some([7u8; 16])] {
            for k in [
                key(0, b""),
                key(3, b"user:1"),
                key(0x00ff_ffff, &[0xff; 20]),
            ] {
                let bytes = Bytes::from(encode_todo(&k, leaf.as_ref()));
                assert_eq!(decode_todo(&bytes), Some(Todo { key: k, leaf }));
            }
        }
    }

    #[test]
    fn a_todo_written_before_leaves_were_carried_still_decodes() {
        // Format 1's to-do: db:u32-BE key, nothing else.
        let bytes = Bytes::from_static(b"\x00\x00\x00\x02k1");
        assert_eq!(
            decode_todo(&bytes),
            Some(Todo {
                key: key(2, b"k1"),
                leaf: None
            })
        );
    }

    #[test]
    fn truncated_todos_are_not_decoded() {
        for bytes in [&b"\x00\x00\x00"[..], &[0xff; 10][..], &[0xff; 19][..]] {
            assert_eq!(decode_todo(&Bytes::copy_from_slice(bytes)), None);
        }
    }
}

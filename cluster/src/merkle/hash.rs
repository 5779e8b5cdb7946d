//! The hashes of the Merkle trees (docs/format/cluster-storage.md). Leaves hash what
//! identifies a write (key, version, expiry, kind), not the payload: versions are
//! unique per write, so replicas holding the same writes have the same leaves.

use crate::replica_api::{Hash16, ItemKey};
use crate::{Body, Record};
use kv_keyspace::data_key::key_hash;
use xxhash_rust::xxh3::{xxh3_128, Xxh3};

/// The hash of an empty bucket.
pub const EMPTY_BUCKET: Hash16 = [0; 16];
/// Buckets per partition tree.
pub const BUCKETS: usize = 256;

/// xxh3-128 of `db:u32-BE key-len:u32-BE key version:16 expire-at:u64-BE kind:u8`
/// (expire-at 0 = none; kind 0 = tombstone, else the value type tag, as in the record),
/// followed for a siblings record (kind 0x80) by its whole payload.
pub fn item_hash(key: &ItemKey, record: &Record) -> Hash16 {
    let mut h = Xxh3::new();
    h.update(&key.db.to_be_bytes());
    h.update(&(key.key.len() as u32).to_be_bytes());
    h.update(&key.key);
    h.update(&record.version.encode());
    h.update(&(record.expire_at.unwrap_or(0).max(0) as u64).to_be_bytes());
    h.update(&[record.body.kind()]);
    // Siblings replicas with the same newest version can still hold different sets
    // (concurrent writes, one merged and one not): their leaf covers the whole state.
    if let Body::Siblings(s) = &record.body {
        let mut state = Vec::new();
        s.encode_into(&mut state);
        h.update(&state);
    }
    h.digest128().to_be_bytes()
}

/// The bucket of a Redis key inside its partition's tree: the top byte of the key hash
/// that orders data keys (so a bucket is spread over the partition's slots).
pub fn bucket_of(key: &[u8]) -> u8 {
    bucket_of_hash(key_hash(key))
}

/// [`bucket_of`] a key whose `key_hash` is `hash`.
pub fn bucket_of_hash(hash: u32) -> u8 {
    (hash >> 24) as u8
}

/// xxh3-128 of the bucket's leaf hashes concatenated in leaf-key order; all zero for
/// an empty bucket.
pub fn bucket_hash<'a>(leaves: impl IntoIterator<Item = &'a Hash16>) -> Hash16 {
    let mut h = Xxh3::new();
    let mut any = false;
    for leaf in leaves {
        h.update(leaf);
        any = true;
    }
    if any {
        h.digest128().to_be_bytes()
    } else {
        EMPTY_BUCKET
    }
}

/// xxh3-128 of the 256 bucket hashes in bucket order.
pub fn root_hash(buckets: &[Hash16]) -> Hash16 {
    xxh3_128(buckets.concat().as_slice()).to_be_bytes()
}

/// A stored 16-byte hash; `None` if the bytes are not one.
pub fn decode_hash(bytes: &[u8]) -> Option<Hash16> {
    bytes.try_into().ok()
}

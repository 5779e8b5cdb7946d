//! A partition's tree computed in memory from its records, by the definitions alone:
//! what the stored, incremental trees must equal. Tests use it as the model, and
//! in-memory replicas (fakes, the simulation) can serve it so that their hashes compare
//! equal with real replicas'.

use super::hash::{bucket_hash, bucket_of, item_hash, root_hash, BUCKETS, EMPTY_BUCKET};
use crate::replica_api::{Hash16, ItemKey, MerkleLeaf};
use crate::Record;
use std::collections::BTreeMap;

/// The Merkle tree of one partition's records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionTree {
    /// Bucket -> leaves in key order (db, then key bytes: the stored leaf order).
    buckets: BTreeMap<u8, BTreeMap<ItemKey, Hash16>>,
}

impl PartitionTree {
    /// The tree of `records` (all of one partition; a key given twice keeps the last).
    pub fn from_records<'a>(
        records: impl IntoIterator<Item = (&'a ItemKey, &'a Record)>,
    ) -> PartitionTree {
        let mut tree = PartitionTree::default();
        for (key, record) in records {
            tree.buckets
                .entry(bucket_of(&key.key))
                .or_default()
                .insert(key.clone(), item_hash(key, record));
        }
        tree
    }

    /// The leaves of one bucket, in key order.
    pub fn leaves(&self, bucket: u8) -> Vec<MerkleLeaf> {
        self.buckets
            .get(&bucket)
            .into_iter()
            .flatten()
            .map(|(key, hash)| MerkleLeaf {
                key: key.clone(),
                hash: *hash,
            })
            .collect()
    }

    /// The 256 bucket hashes.
    pub fn buckets(&self) -> Vec<Hash16> {
        let mut hashes = vec![EMPTY_BUCKET; BUCKETS];
        for (&bucket, leaves) in &self.buckets {
            hashes[bucket as usize] = bucket_hash(leaves.values());
        }
        hashes
    }

    /// The root hash.
    pub fn root(&self) -> Hash16 {
        root_hash(&self.buckets())
    }
}

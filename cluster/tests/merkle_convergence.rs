//! Replicas holding the same writes have the same Merkle trees, whatever the order and
//! batching of the writes and of the folding; and diff_leaves names exactly the keys
//! that differ.

mod replica_support;

use bytes::Bytes;
use kv_cluster::merkle::{diff_leaves, PartitionTree};
use kv_cluster::replica_api::{ItemKey, MerkleLeaf, WriteItem};
use kv_cluster::{NodeId, Record, Version};
use proptest::prelude::*;
use replica_support::*;
use std::collections::{BTreeMap, BTreeSet};

/// Writes with distinct versions (the node id is the write's index), on few keys so
/// that keys are overwritten, tombstoned and refused as stale.
fn arb_writes() -> impl Strategy<Value = Vec<WriteItem>> {
    proptest::collection::vec((0u32..2, 0u8..12, 1u64..40, any::<bool>(), 0u8..3), 1..60).prop_map(
        |specs| {
            specs
                .into_iter()
                .enumerate()
                .map(|(i, (db, k, ts, tomb, expiry))| {
                    let version = Version {
                        ts,
                        node: NodeId(i as u64),
                    };
                    let key = ItemKey {
                        db,
                        key: Bytes::from(format!("key{k}")),
                    };
                    let record = if tomb {
                        Record::tombstone(version)
                    } else {
                        let expire_at = (expiry > 0).then_some(expiry as i64 * 1000);
                        Record::string(version, Bytes::from(vec![k; 3]), expire_at)
                    };
                    WriteItem { key, record }
                })
                .collect()
        },
    )
}

fn apply_in_batches(
    store: &kv_cluster::replica_store::ReplicaStore,
    writes: &[WriteItem],
    size: usize,
    fold: usize,
) {
    for batch in writes.chunks(size) {
        store.apply(batch).unwrap();
        store.merkle().process_todos(fold).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn same_writes_in_any_order_and_batching_give_equal_trees(
        (writes, shuffled) in arb_writes().prop_flat_map(|w| (Just(w.clone()), Just(w).prop_shuffle())),
        size_a in 1usize..8,
        size_b in 1usize..8,
        fold_a in 0usize..4,
        fold_b in 0usize..4,
    ) {
        let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (a, b) = (open_store(dir_a.path()), open_store(dir_b.path()));
        apply_in_batches(&a, &writes, size_a, fold_a);
        apply_in_batches(&b, &shuffled, size_b, fold_b);
        // Both hold the newest write of every key...
        let mut newest: BTreeMap<ItemKey, Record> = BTreeMap::new();
        for w in &writes {
            let merged = match newest.remove(&w.key) {
                Some(r) => Record::merge(r, w.record.clone()),
                None => w.record.clone(),
            };
            newest.insert(w.key.clone(), merged);
        }
        for (k, r) in &newest {
            prop_assert_eq!(a.get(k).unwrap(), Some(r.clone()));
            prop_assert_eq!(b.get(k).unwrap(), Some(r.clone()));
        }
        // ...and so the same trees, root to leaves.
        let partitions = all_partitions();
        prop_assert_eq!(a.merkle().roots(&partitions).unwrap(), b.merkle().roots(&partitions).unwrap());
        let places: BTreeSet<(u16, u8)> = newest
            .keys()
            .map(|k| (kv_keyspace::slot::key_partition(&k.key), kv_cluster::merkle::bucket_of(&k.key)))
            .collect();
        for &(p, bucket) in &places {
            prop_assert_eq!(a.merkle().buckets(p).unwrap(), b.merkle().buckets(p).unwrap());
            prop_assert_eq!(a.merkle().leaves(p, bucket).unwrap(), b.merkle().leaves(p, bucket).unwrap());
        }
        // The incremental tree is the tree the definitions give for the data.
        let mut by_partition: BTreeMap<u16, Vec<(&ItemKey, &Record)>> = BTreeMap::new();
        for (k, r) in &newest {
            by_partition.entry(kv_keyspace::slot::key_partition(&k.key)).or_default().push((k, r));
        }
        for (&p, records) in &by_partition {
            let model = PartitionTree::from_records(records.iter().copied());
            prop_assert_eq!(a.merkle().root(p).unwrap(), model.root());
            prop_assert_eq!(a.merkle().buckets(p).unwrap(), model.buckets());
            for &(pp, bucket) in places.iter().filter(|(pp, _)| *pp == p) {
                prop_assert_eq!(a.merkle().leaves(pp, bucket).unwrap(), model.leaves(bucket));
            }
        }
        let unused = (0..256u16).find(|p| !by_partition.contains_key(p)).unwrap();
        prop_assert_eq!(a.merkle().root(unused).unwrap(), PartitionTree::default().root());
        // An empty store's tree differs wherever data exists.
        let dir_c = tempfile::tempdir().unwrap();
        let empty = open_store(dir_c.path());
        for &(p, _) in &places {
            prop_assert_ne!(empty.merkle().root(p).unwrap(), a.merkle().root(p).unwrap());
        }
    }

    #[test]
    fn diff_leaves_names_exactly_the_differing_keys(
        a in proptest::collection::btree_map((0u32..2, 0u8..10), 0u8..3, 0..15),
        b in proptest::collection::btree_map((0u32..2, 0u8..10), 0u8..3, 0..15),
        reverse in any::<bool>(),
    ) {
        let leaves = |m: &BTreeMap<(u32, u8), u8>| -> Vec<MerkleLeaf> {
            let mut v: Vec<MerkleLeaf> = m
                .iter()
                .map(|(&(db, k), &h)| MerkleLeaf {
                    key: ItemKey { db, key: Bytes::from(vec![k]) },
                    hash: [h; 16],
                })
                .collect();
            if reverse {
                v.reverse();
            }
            v
        };
        let expected: Vec<ItemKey> = a
            .keys()
            .chain(b.keys())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|k| a.get(k) != b.get(k))
            .map(|&(db, k)| ItemKey { db, key: Bytes::from(vec![k]) })
            .collect();
        prop_assert_eq!(diff_leaves(&leaves(&a), &leaves(&b)), expected.clone());
        prop_assert_eq!(diff_leaves(&leaves(&b), &leaves(&a)), expected);
    }
}

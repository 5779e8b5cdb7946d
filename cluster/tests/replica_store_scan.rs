//! Paging through a partition: every key of the database exactly once per pass, in
//! scan order, and nothing of other databases or partitions.

mod replica_support;

use bytes::Bytes;
use kv_cluster::replica_api::ItemKey;
use kv_cluster::replica_store::MAX_SCAN_LIMIT;
use kv_keyspace::data_key::{data_key, split_data_key, ScanPosition};
use kv_keyspace::slot::key_partition;
use replica_support::*;
use std::collections::{BTreeMap, BTreeSet};

fn position_of(db: u32, key: &[u8]) -> ScanPosition {
    split_data_key(&data_key(db, key)).unwrap().position()
}

#[test]
fn scan_pages_cover_every_key_exactly_once_per_pass() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let mut expected: BTreeMap<u32, BTreeSet<Bytes>> = BTreeMap::new();
    for (db, count) in [(0u32, 400), (1, 150), (7, 60)] {
        let items: Vec<_> = (0..count)
            .map(|i| put(&key(db, &format!("key:{i}")), 1, "v"))
            .collect();
        store.apply(&items).unwrap();
        expected
            .entry(db)
            .or_default()
            .extend(items.iter().map(|i| i.key.key.clone()));
    }
    // A tombstone is a record too: scans return it for the caller to judge.
    store.apply(&[delete(&key(1, "key:0"), 2)]).unwrap();
    for db in [0u32, 1, 7, 3] {
        for limit in [1usize, 7, 1000] {
            let mut seen: Vec<Bytes> = Vec::new();
            for partition in all_partitions() {
                let mut from = ScanPosition::START;
                loop {
                    let page = store.scan(partition, db, from, limit).unwrap();
                    for (k, _) in &page.items {
                        assert_eq!(key_partition(k), partition);
                    }
                    let positions: Vec<_> =
                        page.items.iter().map(|(k, _)| position_of(db, k)).collect();
                    assert!(positions.windows(2).all(|w| w[0] <= w[1]), "scan order");
                    seen.extend(page.items.into_iter().map(|(k, _)| k));
                    match page.next {
                        Some(next) => {
                            assert!(positions.len() >= limit);
                            // Resuming at `next` cannot repeat or skip a key of the
                            // last position returned.
                            assert!(positions.last().is_some_and(|&last| next > last));
                            from = next;
                        }
                        None => break,
                    }
                }
            }
            let unique: BTreeSet<Bytes> = seen.iter().cloned().collect();
            assert_eq!(
                unique.len(),
                seen.len(),
                "a key came twice (db {db}, limit {limit})"
            );
            assert_eq!(unique, expected.get(&db).cloned().unwrap_or_default());
        }
    }
}

#[test]
fn partition_records_hold_every_database_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let mut expected = BTreeSet::new();
    for db in 0..3u32 {
        let items: Vec<_> = (0..120)
            .map(|i| put(&key(db, &format!("k{i}")), 5, "v"))
            .collect();
        store.apply(&items).unwrap();
        expected.extend(items.into_iter().map(|i| i.key));
    }
    let mut seen: Vec<ItemKey> = Vec::new();
    for partition in all_partitions() {
        for entry in store.partition_records(partition).unwrap() {
            let (k, record) = entry.unwrap();
            assert_eq!(key_partition(&k.key), partition);
            assert_eq!(record.version, version(5));
            seen.push(k);
        }
    }
    assert_eq!(seen.len(), expected.len());
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), expected);
}

#[test]
fn a_page_is_capped_whatever_the_caller_asks() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    // A hash tag puts every key in one slot, so one partition holds them all.
    let items: Vec<_> = (0..MAX_SCAN_LIMIT + 10)
        .map(|i| put(&key(0, &format!("{{tag}}{i}")), 1, "v"))
        .collect();
    store.apply(&items).unwrap();
    let partition = key_partition(b"tag");
    let page = store
        .scan(partition, 0, ScanPosition::START, usize::MAX)
        .unwrap();
    assert_eq!(page.items.len(), MAX_SCAN_LIMIT);
    let rest = store
        .scan(partition, 0, page.next.unwrap(), usize::MAX)
        .unwrap();
    assert_eq!((rest.items.len(), rest.next), (10, None));
}

#[test]
fn partitions_past_the_last_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    assert!(store.scan(256, 0, ScanPosition::START, 10).is_err());
    assert!(store.partition_records(300).is_err());
    assert!(store.merkle().buckets(256).is_err());
    assert!(store.merkle().leaves(u16::MAX, 0).is_err());
}

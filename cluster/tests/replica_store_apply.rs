//! Applying replicated writes: newer versions win, older ones are refused with the
//! version held, and concurrent applies of one key never lose the newest.

mod replica_support;

use kv_cluster::replica_api::WriteOutcome;
use kv_cluster::replica_store::StoreError;
use kv_cluster::Body;
use kv_keyspace::data_key::data_key;
use kv_keyspace::data_key::ScanPosition;
use kv_keyspace::slot::key_partition;
use replica_support::*;
use std::sync::Arc;

#[test]
fn apply_refuses_older_versions_and_reports_the_current_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let k = key(0, "k");
    assert_eq!(
        store.apply(&[put(&k, 10, "ten")]).unwrap(),
        [WriteOutcome::Applied]
    );
    assert_eq!(
        store.apply(&[put(&k, 5, "five")]).unwrap(),
        [WriteOutcome::Stale {
            current: version(10)
        }]
    );
    // The same version again is the same write: applied, nothing changes.
    assert_eq!(
        store.apply(&[put(&k, 10, "ten")]).unwrap(),
        [WriteOutcome::Applied]
    );
    assert_eq!(store.get(&k).unwrap(), Some(put(&k, 10, "ten").record));
    assert_eq!(
        store.apply(&[put(&k, 11, "eleven")]).unwrap(),
        [WriteOutcome::Applied]
    );
    assert_eq!(store.get(&k).unwrap(), Some(put(&k, 11, "eleven").record));
    assert_eq!(store.get(&key(0, "other")).unwrap(), None);
    // Databases are separate key spaces.
    assert_eq!(store.get(&key(1, "k")).unwrap(), None);
}

#[test]
fn a_tombstone_beats_an_older_value_and_loses_to_a_newer_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let k = key(0, "k");
    store.apply(&[put(&k, 10, "v")]).unwrap();
    assert_eq!(
        store.apply(&[delete(&k, 12)]).unwrap(),
        [WriteOutcome::Applied]
    );
    assert_eq!(
        store.apply(&[put(&k, 11, "late")]).unwrap(),
        [WriteOutcome::Stale {
            current: version(12)
        }]
    );
    assert_eq!(
        store.get(&k).unwrap().map(|r| r.body),
        Some(Body::Tombstone)
    );
    assert_eq!(
        store.apply(&[put(&k, 13, "new")]).unwrap(),
        [WriteOutcome::Applied]
    );
    assert_eq!(store.get(&k).unwrap(), Some(put(&k, 13, "new").record));
    // A delete of a key never seen is kept, so an older value cannot resurrect it.
    let fresh = key(0, "fresh");
    store.apply(&[delete(&fresh, 20)]).unwrap();
    assert_eq!(
        store.apply(&[put(&fresh, 19, "old")]).unwrap(),
        [WriteOutcome::Stale {
            current: version(20)
        }]
    );
}

#[test]
fn later_items_of_a_batch_see_earlier_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let k = key(0, "k");
    let outcomes = store
        .apply(&[
            put(&k, 5, "a"),
            put(&k, 3, "b"),
            put(&k, 7, "c"),
            put(&k, 7, "c"),
        ])
        .unwrap();
    assert_eq!(
        outcomes,
        [
            WriteOutcome::Applied,
            WriteOutcome::Stale {
                current: version(5)
            },
            WriteOutcome::Applied,
            WriteOutcome::Applied,
        ]
    );
    assert_eq!(store.get(&k).unwrap(), Some(put(&k, 7, "c").record));
}

#[test]
fn concurrent_applies_of_the_same_keys_keep_the_newest() {
    const THREADS: u64 = 6;
    const WRITES: u64 = 300;
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let keys: Vec<_> = (0..2).map(|i| key(0, &format!("hot{i}"))).collect();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (store, keys) = (Arc::clone(&store), keys.clone());
            std::thread::spawn(move || {
                for i in 0..WRITES {
                    // Versions of the threads interleave, so writers keep overtaking
                    // each other; batches name the two keys in both orders, which
                    // would deadlock if stripes were not locked in a fixed order.
                    let ts = i * THREADS + t + 1;
                    let first = (i % 2) as usize;
                    let items = [put(&keys[first], ts, "v"), put(&keys[1 - first], ts, "v")];
                    let outcomes = store.apply(&items).unwrap();
                    for (item, outcome) in items.iter().zip(outcomes) {
                        match outcome {
                            // Once applied, the key never holds anything older again.
                            WriteOutcome::Applied => {
                                let held = store.get(&item.key).unwrap().unwrap().version;
                                assert!(held >= item.record.version);
                            }
                            WriteOutcome::Stale { current } => {
                                assert!(current > item.record.version)
                            }
                            WriteOutcome::StoredNotCounted => {
                                panic!("only a catch-up gate answers that, not the store")
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for k in &keys {
        let newest = WRITES * THREADS;
        assert_eq!(store.get(k).unwrap().unwrap().version, version(newest));
    }
}

#[test]
fn corrupt_records_are_errors_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let k = key(3, "damaged\x01");
    store
        .db()
        .put(store.data_keyspace(), &data_key(3, &k.key), b"\x09garbage")
        .unwrap();
    let expect_named = |e: StoreError| {
        let text = e.to_string();
        assert!(text.contains("db 3 key \"damaged\\x01\""), "{text}");
    };
    expect_named(store.get(&k).unwrap_err());
    expect_named(store.apply(&[put(&k, 1, "x")]).unwrap_err());
    let partition = key_partition(&k.key);
    expect_named(
        store
            .scan(partition, 3, ScanPosition::START, 10)
            .unwrap_err(),
    );
    let from_iter: Vec<_> = store.partition_records(partition).unwrap().collect();
    assert!(matches!(
        from_iter.as_slice(),
        [Err(StoreError::Corrupt { .. })]
    ));
    // Other keys are unaffected.
    let fine = key(3, "fine");
    store.apply(&[put(&fine, 1, "x")]).unwrap();
    assert!(store.get(&fine).unwrap().is_some());
}

//! The flush floor (docs/cluster.md, "Flushing a database"): below its database's floor
//! a record is gone on a replica (reads, scans, writes), for a coordinator even when
//! its replicas have not learned of the flush, and after the purge in the Merkle trees.

mod replica_support;
mod support;

use bytes::Bytes;
use kv_cluster::metadata::FlushFloors;
use kv_cluster::partition_set::PartitionSet;
use kv_cluster::quorum::Consistency;
use kv_cluster::replica_api::WriteOutcome;
use kv_cluster::{NodeId, Record, Version};
use kv_keyspace::data_key::ScanPosition;
use kv_keyspace::slot::key_partition;
use replica_support::{delete, key, open_store, put, version};

fn floor_at(ts: u64) -> Version {
    Version {
        ts,
        node: NodeId(7),
    }
}

#[test]
fn below_the_floor_a_replica_returns_nothing_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let (old, new, other_db) = (key(0, "old"), key(0, "new"), key(1, "old"));
    store
        .apply(&[
            put(&old, 10, "a"),
            put(&new, 30, "b"),
            put(&other_db, 10, "c"),
        ])
        .unwrap();
    store.floors().raise(0, floor_at(20));
    assert_eq!(store.get(&old).unwrap(), None, "flushed record still read");
    assert!(store.get(&new).unwrap().is_some());
    assert!(
        store.get(&other_db).unwrap().is_some(),
        "another database was flushed"
    );
    let page = store
        .scan(key_partition(b"old"), 0, ScanPosition::START, 100)
        .unwrap();
    assert!(page.items.iter().all(|(k, _)| &k[..] != b"old"));
    // A hint or repair of flushed data, and a write stamped before the flush: nothing
    // is written, and the answer names the floor.
    let outcomes = store
        .apply(&[
            put(&old, 15, "hint"),
            delete(&key(0, "gone"), 19),
            put(&old, 21, "after"),
        ])
        .unwrap();
    assert_eq!(
        outcomes,
        vec![
            WriteOutcome::Stale {
                current: floor_at(20)
            },
            WriteOutcome::Stale {
                current: floor_at(20)
            },
            WriteOutcome::Applied
        ]
    );
    assert_eq!(
        store.get(&old).unwrap().map(|r| r.version),
        Some(version(21)),
        "the write after the flush survives it"
    );
}

#[test]
fn the_purge_deletes_only_records_below_the_floor_and_the_trees_agree_again() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (flushed, clean) = (open_store(d1.path()), open_store(d2.path()));
    let mut before = Vec::new();
    for i in 0..300 {
        before.push(put(&key(0, &format!("k{i}")), 10 + i, "before"));
    }
    flushed.apply(&before).unwrap();
    // Records after the flush, on both: a new key, a key rewritten, a tombstone, and a
    // key of another database written before the flush (untouched by it).
    let after = [
        put(&key(0, "fresh"), 5_000, "after"),
        put(&key(0, "k7"), 5_001, "rewritten"),
        delete(&key(0, "k8"), 5_002),
        put(&key(1, "k1"), 11, "db1"),
    ];
    flushed.apply(&after).unwrap();
    clean.apply(&after).unwrap();
    let partitions = replica_support::all_partitions();
    assert_ne!(
        flushed.merkle().roots(&partitions).unwrap(),
        clean.merkle().roots(&partitions).unwrap()
    );
    flushed.floors().raise(0, floor_at(1_000));
    let deleted = flushed.purge_below(0, floor_at(1_000)).unwrap();
    assert_eq!(deleted, 298, "k7 and k8 were rewritten after the flush");
    assert_eq!(
        flushed.merkle().roots(&partitions).unwrap(),
        clean.merkle().roots(&partitions).unwrap(),
        "after the purge the flushed replica holds what a clean one does"
    );
    assert_eq!(
        flushed.get(&key(0, "k7")).unwrap().map(|r| r.version),
        Some(version(5_001))
    );
    assert!(flushed.get(&key(1, "k1")).unwrap().is_some());
    // Purging again finds nothing; rebuilding the trees from data finds nothing wrong.
    assert_eq!(flushed.purge_below(0, floor_at(1_000)).unwrap(), 0);
    for p in partitions {
        assert_eq!(flushed.merkle().rebuild_partition(p).unwrap(), 0);
    }
}

#[tokio::test]
async fn a_coordinator_hides_flushed_records_that_replicas_still_hold() {
    let ring = support::Ring::new(3);
    let floors = FlushFloors::default();
    let c = ring
        .coordinator(support::config(2_000))
        .with_flush_floors(floors.clone());
    // Every replica holds "old" from before the flush and has not learned of it (the
    // fakes know no floors); one also holds "tail", the others do not.
    let old = support::key("old");
    let tail = support::key("tail");
    let early = Record::string(version(1 << 16), Bytes::from_static(b"v"), None);
    for fake in &ring.fakes {
        fake.put_raw(&old, early.clone());
    }
    ring.fakes[0].put_raw(&tail, early.clone());
    let flush_ts = 5_000_000u64 << 16; // later than the coordinator's clock
    floors.raise(0, floor_at(flush_ts));
    assert_eq!(c.get(old.clone(), Consistency::Quorum).await.unwrap(), None);
    assert_eq!(c.get(tail.clone(), Consistency::All).await.unwrap(), None);
    assert!(
        ring.fakes[1].get(&tail).is_none() && ring.fakes[2].get(&tail).is_none(),
        "read repair spread a flushed record"
    );
    let (_, keys) = c
        .scan(&PartitionSet::ALL, 0, 0, 100, 0, Consistency::Quorum)
        .await
        .unwrap();
    assert!(keys.is_empty(), "scan returned flushed keys: {keys:?}");
    // A write after the flush is ordered after it although the clock was behind.
    let v = support::put(&c, "old", "new", Consistency::Quorum)
        .await
        .unwrap();
    assert!(v > floor_at(flush_ts), "{v} not after the flush");
    let read = c.get(old, Consistency::Quorum).await.unwrap();
    assert_eq!(read.map(|r| r.version), Some(v));
}

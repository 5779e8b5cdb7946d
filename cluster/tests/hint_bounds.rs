//! Hints are bounded in bytes and in age, the oldest dropped first and counted, and
//! survive a restart of the node's engine.

use bytes::Bytes;
use kv_cluster::hints::{decode_hint, encode_hint, HintConfig, HintStore, WallClockMs};
use kv_cluster::replica_api::{ItemKey, WriteItem};
use kv_cluster::{NodeId, Record, Version};
use kv_engine::{Db, Options};
use proptest::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn item(i: u64, payload_len: usize) -> WriteItem {
    WriteItem {
        key: ItemKey {
            db: 0,
            key: Bytes::from(format!("key{i}")),
        },
        record: Record::string(
            Version {
                ts: i,
                node: NodeId(1),
            },
            Bytes::from(vec![b'x'; payload_len]),
            None,
        ),
    }
}

/// A hint's stored size: 16 key bytes plus its encoded value.
fn hint_bytes(i: u64, payload_len: usize) -> u64 {
    16 + encode_hint(0, &item(i, payload_len)).len() as u64
}

struct Fixture {
    dir: tempfile::TempDir,
    now: Arc<AtomicU64>,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
            now: Arc::new(AtomicU64::new(1_000_000)),
        }
    }

    fn open(&self, config: HintConfig) -> (Db, HintStore) {
        let db = Db::open(self.dir.path(), Options::default()).unwrap();
        let now = self.now.clone();
        let clock: WallClockMs = Arc::new(move || now.load(Ordering::Relaxed));
        (
            db.clone(),
            HintStore::open_with_clock(db, config, clock).unwrap(),
        )
    }

    fn seqs(store: &HintStore, target: NodeId) -> Vec<u64> {
        let pending = store.pending_blocking(target, 100).unwrap();
        pending.iter().map(|h| h.item.record.version.ts).collect()
    }
}

#[test]
fn the_byte_bound_drops_the_oldest_hints_across_targets() {
    let f = Fixture::new();
    let per_hint = hint_bytes(0, 100);
    let (_db, store) = f.open(HintConfig {
        max_bytes: 3 * per_hint,
        max_age: Duration::from_secs(3600),
    });
    for i in 0..5 {
        store
            .store_blocking(NodeId(10 + i % 2), &item(i, 100))
            .unwrap();
    }
    let stats = store.stats();
    assert_eq!(
        (stats.count, stats.bytes, stats.dropped),
        (3, 3 * per_hint, 2)
    );
    // Hints 0 and 1 (the oldest) are gone; target 10 keeps 2 and 4, target 11 keeps 3.
    assert_eq!(Fixture::seqs(&store, NodeId(10)), vec![2, 4]);
    assert_eq!(Fixture::seqs(&store, NodeId(11)), vec![3]);
    // A hint bigger than the whole bound is dropped at once, keeping the others.
    store.store_blocking(NodeId(10), &item(9, 1000)).unwrap();
    assert_eq!((store.stats().count, store.stats().dropped), (3, 3));
}

#[test]
fn the_age_bound_drops_old_hints_on_store_and_on_expire() {
    let f = Fixture::new();
    let (_db, store) = f.open(HintConfig {
        max_bytes: 1 << 20,
        max_age: Duration::from_secs(60),
    });
    store.store_blocking(NodeId(1), &item(0, 10)).unwrap();
    f.now.fetch_add(30_000, Ordering::Relaxed);
    store.store_blocking(NodeId(1), &item(1, 10)).unwrap();
    f.now.fetch_add(31_000, Ordering::Relaxed);
    // Hint 0 is 61 s old: storing hint 2 drops it.
    store.store_blocking(NodeId(2), &item(2, 10)).unwrap();
    assert_eq!(Fixture::seqs(&store, NodeId(1)), vec![1]);
    assert_eq!(store.stats().dropped, 1);
    f.now.fetch_add(60_000, Ordering::Relaxed);
    // Hint 1 is now 91 s old, hint 2 exactly 60 s: only hint 1 goes.
    assert_eq!(store.expire_blocking().unwrap(), 1);
    f.now.fetch_add(1, Ordering::Relaxed);
    assert_eq!(store.expire_blocking().unwrap(), 1);
    assert_eq!(store.stats().count, 0);
    assert_eq!(store.stats().bytes, 0);
    assert!(store.targets().is_empty());
}

#[test]
fn hints_survive_a_restart_and_new_ones_sort_after_them() {
    let f = Fixture::new();
    let config = HintConfig::default();
    {
        let (db, store) = f.open(config.clone());
        store.store_blocking(NodeId(7), &item(0, 10)).unwrap();
        store.store_blocking(NodeId(7), &item(1, 10)).unwrap();
        store
            .remove_delivered_blocking(
                NodeId(7),
                &[store.pending_blocking(NodeId(7), 1).unwrap()[0].seq],
            )
            .unwrap();
        assert_eq!(store.stats().delivered, 1);
        drop(store);
        db.close().unwrap();
    }
    let (_db, store) = f.open(config);
    assert_eq!(store.stats().count, 1);
    assert_eq!(store.stats().bytes, hint_bytes(1, 10));
    store.store_blocking(NodeId(7), &item(2, 10)).unwrap();
    assert_eq!(Fixture::seqs(&store, NodeId(7)), vec![1, 2]);
    assert_eq!(store.targets(), vec![NodeId(7)]);
}

proptest! {
    #[test]
    fn hint_values_round_trip_and_damage_is_refused(
        db in any::<u32>(),
        key in proptest::collection::vec(any::<u8>(), 0..40),
        payload in proptest::collection::vec(any::<u8>(), 0..40),
        at in any::<u64>(),
        cut in any::<usize>(),
    ) {
        let item = WriteItem {
            key: ItemKey { db, key: Bytes::from(key) },
            record: Record::string(Version::ZERO, Bytes::from(payload), Some(5)),
        };
        let v = encode_hint(at, &item);
        let headers = 17 + item.key.key.len() + 26;
        prop_assert_eq!(decode_hint(&Bytes::from(v.clone())), Some((at, item)));
        // Cut inside the header, the key or the record header: refused, never misread.
        let short = &v[..cut % headers];
        prop_assert_eq!(decode_hint(&Bytes::copy_from_slice(short)), None);
    }
}

/// After a layout change moved a partition away from a hint's target, that hint is
/// dropped (counted) instead of delivered: delivering it would leave a record on a node
/// that already deleted the partition and never reads or cleans it again.
#[tokio::test]
async fn hints_for_a_partition_the_target_no_longer_holds_are_dropped_not_delivered() {
    use kv_cluster::fake_replica::{FakeLiveness, FakeReplica, FakeReplicas};
    use kv_cluster::hint_replay::{replay_round, ByteBudget, HintReplayConfig};
    use kv_keyspace::slot::key_partition;

    let f = Fixture::new();
    let (_db, store) = f.open(HintConfig::default());
    let target = NodeId(2);
    let items: Vec<WriteItem> = (0..20).map(|i| item(i, 10)).collect();
    for it in &items {
        store.store_blocking(target, it).unwrap();
    }
    // The target still holds the partitions of the even-numbered keys only.
    let kept: std::collections::BTreeSet<u16> = items
        .iter()
        .step_by(2)
        .map(|it| key_partition(&it.key.key))
        .collect();
    let held = |it: &WriteItem| kept.contains(&key_partition(&it.key.key));
    let expect_delivered = items.iter().filter(|it| held(it)).count();
    assert!(expect_delivered > 0 && expect_delivered < items.len());

    let replica = FakeReplica::new();
    let replicas = FakeReplicas::new();
    replicas.insert(target, replica.clone());
    let holds = |node: NodeId, partition: u16| node == target && kept.contains(&partition);
    let report = replay_round(
        &store,
        &*replicas,
        &*FakeLiveness::new(),
        &ByteBudget::new(0),
        &HintReplayConfig::default(),
        &holds,
    )
    .await;
    assert_eq!(report.delivered, expect_delivered as u64);
    assert_eq!(
        replica.len(),
        expect_delivered,
        "only held partitions reach it"
    );
    for it in &items {
        assert_eq!(replica.get(&it.key).is_some(), held(it), "{:?}", it.key);
    }
    let stats = store.stats();
    assert_eq!(stats.count, 0, "nothing left pending");
    assert_eq!(stats.dropped, (items.len() - expect_delivered) as u64);
    assert_eq!(stats.delivered, expect_delivered as u64);
}

//! Anti-entropy between two local replicas: roots become equal and only the keys that
//! differ are read and written.

mod replica_support;

use kv_cluster::anti_entropy::{sync_all, sync_partition_within, SyncStats};
use kv_cluster::hint_replay::ByteBudget;
use kv_cluster::local_replica::LocalReplica;
use kv_cluster::merkle::bucket_of;
use kv_cluster::replica_api::{ItemKey, ReplicaApi, WriteItem};
use kv_cluster::NodeId;
use kv_keyspace::slot::key_partition;
use replica_support::watched::{Watch, Watched};
use replica_support::*;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Counts the keys read from a replica and written to it.
#[derive(Default)]
struct Counting {
    keys_read: AtomicU64,
    keys_written: AtomicU64,
}

impl Watch for Counting {
    fn on_write(&self, items: &[WriteItem]) {
        self.keys_written
            .fetch_add(items.len() as u64, Ordering::Relaxed);
    }
    fn on_read(&self, keys: &[ItemKey]) {
        self.keys_read
            .fetch_add(keys.len() as u64, Ordering::Relaxed);
    }
}

type CountingReplica = Watched<Counting>;

fn counting(store: Arc<kv_cluster::replica_store::ReplicaStore>) -> Arc<CountingReplica> {
    Arc::new(Watched {
        replica: LocalReplica::new(store),
        watch: Counting::default(),
    })
}

/// Keys read from and written to `replica` since the last call.
fn take_counts(replica: &CountingReplica) -> (u64, u64) {
    (
        replica.watch.keys_read.swap(0, Ordering::Relaxed),
        replica.watch.keys_written.swap(0, Ordering::Relaxed),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_makes_roots_equal_and_moves_only_the_differing_keys() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (store_a, store_b) = (open_store(dir_a.path()), open_store(dir_b.path()));
    let (a, b) = (counting(store_a.clone()), counting(store_b.clone()));

    // 500 keys both replicas hold alike.
    let common: Vec<_> = (0..500)
        .map(|i| put(&key(i % 2, &format!("common:{i}")), 10, "same"))
        .collect();
    a.write(common.clone()).await.unwrap();
    b.write(common.clone()).await.unwrap();
    // Divergence: keys only one side has, newer on one side, a delete only B saw.
    let only_a: Vec<_> = (0..10)
        .map(|i| put(&key(0, &format!("only-a:{i}")), 20, "a"))
        .collect();
    let only_b: Vec<_> = (0..7)
        .map(|i| put(&key(1, &format!("only-b:{i}")), 20, "b"))
        .collect();
    let newer_a: Vec<_> = common[0..5]
        .iter()
        .map(|w| put(&w.key, 30, "newer a"))
        .collect();
    let newer_b: Vec<_> = common[5..9]
        .iter()
        .map(|w| put(&w.key, 30, "newer b"))
        .collect();
    let deleted_b: Vec<_> = common[9..12].iter().map(|w| delete(&w.key, 30)).collect();
    a.write([only_a.clone(), newer_a.clone()].concat())
        .await
        .unwrap();
    b.write([only_b.clone(), newer_b.clone(), deleted_b.clone()].concat())
        .await
        .unwrap();
    take_counts(&a);
    take_counts(&b);

    let differing: Vec<&WriteItem> = [&only_a, &only_b, &newer_a, &newer_b, &deleted_b]
        .into_iter()
        .flatten()
        .collect();
    let differing_buckets: BTreeSet<(u16, u8)> = differing
        .iter()
        .map(|w| (key_partition(&w.key.key), bucket_of(&w.key.key)))
        .collect();
    let partitions = all_partitions();
    let mut stats = SyncStats::default();
    let budget = ByteBudget::new(0);
    for &p in &partitions {
        let synced = sync_partition_within(p, a.as_ref(), b.as_ref(), &budget).await;
        stats.add(synced.unwrap());
    }
    assert_eq!(stats.keys_repaired, differing.len() as u64);
    // Every copied record was charged to the background budget, and nothing else.
    let copied: u64 = differing
        .iter()
        .map(|w| (w.key.key.len() + w.record.encode().len()) as u64)
        .sum();
    assert_eq!(budget.spent(), copied);
    assert_eq!(stats.buckets_differing, differing_buckets.len() as u64);
    assert!(stats.keys_compared >= differing.len() as u64);
    assert!(
        stats.keys_compared < 100,
        "compared {} keys: whole buckets travelled",
        stats.keys_compared
    );
    // Reads: exactly the differing keys from each side. Writes: what each side lacked.
    assert_eq!(
        take_counts(&a),
        (
            differing.len() as u64,
            (only_b.len() + newer_b.len() + deleted_b.len()) as u64
        )
    );
    assert_eq!(
        take_counts(&b),
        (
            differing.len() as u64,
            (only_a.len() + newer_a.len()) as u64
        )
    );

    assert_eq!(
        a.merkle_roots(partitions.clone()).await.unwrap(),
        b.merkle_roots(partitions.clone()).await.unwrap()
    );
    for w in &differing {
        let on_a = store_a.get(&w.key).unwrap();
        assert_eq!(on_a, store_b.get(&w.key).unwrap());
        assert_eq!(
            on_a.unwrap().version,
            w.record.version,
            "the newest record won"
        );
    }

    // A second round (through sync_all) finds nothing to do.
    let peer: Arc<dyn ReplicaApi> = b.clone();
    let (again, failures) = sync_all(
        &partitions,
        a.as_ref(),
        |_| vec![(NodeId(2), peer.clone())],
        &|_, _| true,
    )
    .await;
    assert!(failures.is_empty());
    assert_eq!(again, SyncStats::default());
    assert_eq!(take_counts(&a), (0, 0));
    assert_eq!(take_counts(&b), (0, 0));
}

/// Two replica stores, `a` holding one key `k` that `b` lacks (and their directories).
async fn one_key_on_a() -> (
    (tempfile::TempDir, tempfile::TempDir),
    LocalReplica,
    Arc<dyn ReplicaApi>,
    ItemKey,
) {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = LocalReplica::new(open_store(dir_a.path()));
    let b: Arc<dyn ReplicaApi> = Arc::new(LocalReplica::new(open_store(dir_b.path())));
    let k = key(0, "k");
    a.write(vec![put(&k, 1, "v")]).await.unwrap();
    ((dir_a, dir_b), a, b, k)
}

#[tokio::test]
async fn sync_all_reports_a_failing_peer_and_goes_on() {
    let (_dirs, a, b, k) = one_key_on_a().await;
    let p = key_partition(&k.key);
    // Partition 256 does not exist: that sync fails, the real one still runs.
    let (stats, failures) = sync_all(&[256, p], &a, |_| vec![(NodeId(2), b.clone())], &|_, _| {
        true
    })
    .await;
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].0, 256);
    assert_eq!(stats.keys_repaired, 1);
    assert_eq!(
        b.read(vec![k]).await.unwrap()[0]
            .as_ref()
            .map(|r| r.version),
        Some(version(1))
    );
}

#[tokio::test]
async fn the_local_replica_folds_and_rebuilds_off_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let local = LocalReplica::new(store.clone());
    let items: Vec<_> = (0..10)
        .map(|i| put(&key(0, &format!("k{i}")), 1, "v"))
        .collect();
    local.write(items.clone()).await.unwrap();
    // Writes put their leaves themselves; to-dos come from writers without the keys'
    // stripes (and from older builds).
    let mut batch = kv_engine::WriteBatch::new();
    let mut todos = store.merkle().begin_todos();
    for item in &items {
        todos.add(&mut batch, &item.key);
    }
    store.db().write(batch).unwrap();
    drop(todos);
    assert_eq!(local.fold_todos(4).await.unwrap(), 4);
    assert_eq!(local.fold_todos(100).await.unwrap(), 6);
    assert_eq!(local.fold_todos(100).await.unwrap(), 0);
    let k = key(0, "k3");
    let p = key_partition(&k.key);
    assert_eq!(local.rebuild_partition(p).await.unwrap(), 0);
    store
        .db()
        .delete(
            store.data_keyspace(),
            &kv_keyspace::data_key::data_key(0, &k.key),
        )
        .unwrap();
    assert_eq!(local.rebuild_partition(p).await.unwrap(), 1);
    assert!(local.rebuild_partition(256).await.is_err());
}

/// A sync writes only while both sides still hold the partition (`still_held`, asked by
/// the syncing node against its layout right before each write): one that a layout
/// change overtook writes nothing and fails, so no record lands on a replica that
/// deleted the partition meanwhile.
#[tokio::test]
async fn sync_all_writes_nothing_to_a_side_that_no_longer_holds_the_partition() {
    let (_dirs, a, b, k) = one_key_on_a().await;
    let p = key_partition(&k.key);
    let peers = |_| vec![(NodeId(2), b.clone())];
    let (stats, failures) = sync_all(&[p], &a, peers, &|_, _| false).await;
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].1.to_string().contains("moved"), "{failures:?}");
    assert_eq!(stats.keys_repaired, 0);
    assert_eq!(b.read(vec![k.clone()]).await.unwrap(), vec![None]);
    // Held: the same sync copies the record.
    let (stats, failures) = sync_all(&[p], &a, peers, &|q, peer| q == p && peer == NodeId(2)).await;
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(stats.keys_repaired, 1);
    assert!(b.read(vec![k]).await.unwrap()[0].is_some());
}

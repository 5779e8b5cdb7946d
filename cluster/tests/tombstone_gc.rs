//! Tombstone collection over real replica stores: a tombstone goes only once it is past
//! the grace and every other replica holds it (or something newer, or nothing); purging
//! goes through the Merkle to-dos so trees converge; and no sequence of collection and
//! anti-entropy rounds changes what a reader sees for any key.

mod replica_support;

use async_trait::async_trait;
use kv_cluster::anti_entropy::sync_partition;
use kv_cluster::local_replica::LocalReplica;
use kv_cluster::replica_api::{
    Hash16, ItemKey, MerkleLeaf, ReplicaApi, ReplicaError, ScanPage, WriteItem, WriteOutcome,
};
use kv_cluster::replica_store::ReplicaStore;
use kv_cluster::tombstone_gc::collect_partition;
use kv_cluster::Record;
use kv_keyspace::data_key::ScanPosition;
use kv_keyspace::slot::key_partition;
use proptest::prelude::*;
use replica_support::*;
use std::collections::BTreeSet;
use std::sync::Arc;

const GRACE_MS: u64 = 1000;

/// A version at `ms` milliseconds (HLC: ms << 16).
fn at_ms(ms: u64) -> u64 {
    ms << 16
}

struct Replicas {
    _dirs: Vec<tempfile::TempDir>,
    stores: Vec<Arc<ReplicaStore>>,
}

impl Replicas {
    fn new(n: usize) -> Replicas {
        let dirs: Vec<_> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
        let stores = dirs.iter().map(|d| open_store(d.path())).collect();
        Replicas {
            _dirs: dirs,
            stores,
        }
    }

    fn api(&self, i: usize) -> Arc<dyn ReplicaApi> {
        Arc::new(LocalReplica::new(self.stores[i].clone()))
    }

    fn others(&self, i: usize) -> Vec<Arc<dyn ReplicaApi>> {
        (0..self.stores.len())
            .filter(|&j| j != i)
            .map(|j| self.api(j))
            .collect()
    }

    /// Replica `i` collects in `partition`; returns how many it purged.
    async fn collect(&self, i: usize, partition: u16, now_ms: u64) -> u64 {
        collect_partition(
            &self.stores[i],
            partition,
            &self.others(i),
            now_ms,
            GRACE_MS,
        )
        .await
        .unwrap()
        .purged
    }

    async fn sync(&self, i: usize, j: usize, partition: u16) {
        sync_partition(partition, &*self.api(i), &*self.api(j))
            .await
            .unwrap();
    }

    fn get(&self, i: usize, key: &ItemKey) -> Option<Record> {
        self.stores[i].get(key).unwrap()
    }

    fn root(&self, i: usize, partition: u16) -> Hash16 {
        self.stores[i].merkle().root(partition).unwrap()
    }
}

fn partition_of(key: &ItemKey) -> u16 {
    key_partition(&key.key)
}

#[tokio::test]
async fn a_tombstone_every_replica_holds_goes_everywhere_and_the_trees_agree() {
    let r = Replicas::new(3);
    let k = key(0, "deleted");
    let p = partition_of(&k);
    for s in &r.stores {
        s.apply(&[put(&k, at_ms(1000), "v"), delete(&k, at_ms(2000))])
            .unwrap();
    }
    let empty_root = Replicas::new(1).root(0, p);
    assert_ne!(r.root(0, p), empty_root);
    // Not before the grace has passed.
    for i in 0..3 {
        assert_eq!(r.collect(i, p, 2000 + GRACE_MS).await, 0);
    }
    assert_eq!(r.collect(0, p, 2001 + GRACE_MS).await, 1);
    // The first replica purged: the others see "nothing" there, which counts.
    assert_eq!(r.collect(1, p, 2001 + GRACE_MS).await, 1);
    assert_eq!(r.collect(2, p, 2001 + GRACE_MS).await, 1);
    for i in 0..3 {
        assert_eq!(r.get(i, &k), None);
        assert_eq!(r.root(i, p), empty_root, "replica {i}'s tree lost the leaf");
    }
}

#[tokio::test]
async fn a_replica_with_an_older_value_keeps_the_tombstone_until_repair() {
    let r = Replicas::new(3);
    let k = key(0, "half-deleted");
    let p = partition_of(&k);
    for s in &r.stores {
        s.apply(&[put(&k, at_ms(1000), "old")]).unwrap();
    }
    for s in &r.stores[..2] {
        s.apply(&[delete(&k, at_ms(2000))]).unwrap();
    }
    let now = 10_000 + GRACE_MS;
    for i in 0..3 {
        assert_eq!(
            r.collect(i, p, now).await,
            0,
            "replica 2 still holds the value"
        );
    }
    r.sync(0, 2, p).await;
    assert!(matches!(r.get(2, &k), Some(t) if t.version == version(at_ms(2000))));
    for i in 0..3 {
        assert_eq!(r.collect(i, p, now).await, 1);
    }
    assert!((0..3).all(|i| r.get(i, &k).is_none()));
}

/// A replica whose reads fail.
struct Silent;

#[async_trait]
impl ReplicaApi for Silent {
    async fn write(&self, _: Vec<WriteItem>) -> Result<Vec<WriteOutcome>, ReplicaError> {
        Err(ReplicaError::Timeout)
    }
    async fn read(&self, _: Vec<ItemKey>) -> Result<Vec<Option<Record>>, ReplicaError> {
        Err(ReplicaError::Timeout)
    }
    async fn merkle_roots(&self, _: Vec<u16>) -> Result<Vec<Hash16>, ReplicaError> {
        Err(ReplicaError::Timeout)
    }
    async fn merkle_buckets(&self, _: u16) -> Result<Vec<Hash16>, ReplicaError> {
        Err(ReplicaError::Timeout)
    }
    async fn merkle_leaves(&self, _: u16, _: u8) -> Result<Vec<MerkleLeaf>, ReplicaError> {
        Err(ReplicaError::Timeout)
    }
    async fn scan(
        &self,
        _: u16,
        _: u32,
        _: ScanPosition,
        _: usize,
    ) -> Result<ScanPage, ReplicaError> {
        Err(ReplicaError::Timeout)
    }
}

#[tokio::test]
async fn a_replica_that_does_not_answer_keeps_every_tombstone() {
    let r = Replicas::new(2);
    let k = key(0, "k");
    let p = partition_of(&k);
    for s in &r.stores {
        s.apply(&[delete(&k, at_ms(1000))]).unwrap();
    }
    let others: Vec<Arc<dyn ReplicaApi>> = vec![r.api(1), Arc::new(Silent)];
    let result = collect_partition(&r.stores[0], p, &others, 1_000_000, GRACE_MS).await;
    assert!(result.is_err());
    assert!(r.get(0, &k).is_some());
}

#[test]
fn a_write_that_replaced_the_tombstone_is_not_purged() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let k = key(0, "k");
    store.apply(&[delete(&k, at_ms(1000))]).unwrap();
    store.apply(&[put(&k, at_ms(3000), "new")]).unwrap();
    let purged = store
        .purge_tombstones(&[(k.clone(), version(at_ms(1000)))])
        .unwrap();
    assert_eq!(purged, 0);
    assert!(matches!(store.get(&k).unwrap(), Some(r) if r.live_value(0).is_some()));
}

/// One step of the model: replica `node` collects, or two replicas run anti-entropy.
#[derive(Debug, Clone)]
enum Step {
    Collect(usize),
    Sync(usize, usize),
}

fn arb_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0usize..3).prop_map(Step::Collect),
        (0usize..3, 0usize..3).prop_map(|(a, b)| Step::Sync(a, b)),
    ]
}

/// What a quorum reader of all replicas sees: the newest record's live value.
fn reader_view(r: &Replicas, key: &ItemKey) -> Option<Vec<u8>> {
    let newest = (0..r.stores.len())
        .filter_map(|i| r.get(i, key))
        .reduce(Record::merge)?;
    newest.live_value(0).map(|(_, v)| v.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Writes and deletes (all past the grace) reach random subsets of three replicas;
    /// then any sequence of collection and anti-entropy rounds never changes what a
    /// reader of the replicas sees for any key (a purge that left an older value
    /// somewhere would show it), and once every pair synced and every replica collected
    /// twice, no tombstone is left and all trees agree.
    #[test]
    fn collection_never_changes_what_readers_see(
        writes in proptest::collection::vec((0usize..4, any::<bool>(), 1u8..8), 1..16),
        steps in proptest::collection::vec(arb_step(), 0..12),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let r = Replicas::new(3);
            // All keys in one partition ({tag}), so each round covers them all.
            let keys: Vec<ItemKey> = (0..4).map(|i| key(0, &format!("{{gc}}{i}"))).collect();
            let p = partition_of(&keys[0]);
            for (n, (k, is_value, to)) in writes.iter().enumerate() {
                let ts = at_ms(1000 + n as u64);
                let item = if *is_value { put(&keys[*k], ts, &format!("v{n}")) } else { delete(&keys[*k], ts) };
                for i in 0..3 {
                    if to & (1 << i) != 0 {
                        r.stores[i].apply(std::slice::from_ref(&item)).unwrap();
                    }
                }
            }
            let before: Vec<_> = keys.iter().map(|k| reader_view(&r, k)).collect();
            let now = 1000 + writes.len() as u64 + GRACE_MS + 1;
            for step in &steps {
                match step {
                    Step::Collect(i) => { r.collect(*i, p, now).await; }
                    Step::Sync(a, b) if a != b => r.sync(*a, *b, p).await,
                    Step::Sync(..) => {}
                }
                let after: Vec<_> = keys.iter().map(|k| reader_view(&r, k)).collect();
                prop_assert_eq!(&after, &before, "after {:?}", step);
            }
            for (a, b) in [(0, 1), (1, 2), (0, 2)] {
                r.sync(a, b, p).await;
            }
            for _ in 0..2 {
                for i in 0..3 {
                    r.collect(i, p, now).await;
                }
            }
            let after: Vec<_> = keys.iter().map(|k| reader_view(&r, k)).collect();
            prop_assert_eq!(&after, &before);
            let mut tombstones = BTreeSet::new();
            for i in 0..3 {
                for k in &keys {
                    if r.get(i, k).is_some_and(|rec| rec.live_value(0).is_none()) {
                        tombstones.insert(i);
                    }
                }
            }
            prop_assert!(tombstones.is_empty(), "tombstones left on {:?}", tombstones);
            prop_assert!((1..3).all(|i| r.root(i, p) == r.root(0, p)));
            Ok(())
        })?;
    }
}

//! A node's replica storage (spec: docs/format/cluster-storage.md): the `replicated`
//! engine keyspace holds one [`Record`] per key, and every applied write also puts the
//! key's Merkle leaf in the same engine batch (merkle/leaf_writes.rs), so the partition
//! trees are kept up to date without a read of the tree before every write or a full
//! scan.
//!
//! All calls block on the engine: async callers use `spawn_blocking`
//! ([`crate::local_replica::LocalReplica`] does).

mod acceptor;
mod drop_partition;
mod error;
mod floor_purge;
mod partition_page;
mod purge;
mod records;
mod scan;
mod siblings;
mod size;
mod stripes;

pub use acceptor::PAXOS_KEYSPACE;
pub use drop_partition::DropStep;
pub use error::{describe_key, StoreError};
pub use scan::{PartitionRecords, MAX_PAGE_BYTES, MAX_SCAN_LIMIT};
pub use siblings::TOO_MANY_SIBLINGS;

use crate::merkle::{LeafWrites, Merkle};
use crate::metadata::FlushFloors;
use crate::replica_api::{ItemKey, KeyMap, PartitionPage, ScanPage, WriteItem, WriteOutcome};
use crate::{Body, NodeId, Record};
use kv_engine::{Db, Keyspace, WriteBatch};
use kv_keyspace::data_key::ScanPosition;
use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

pub(crate) use records::{check_partition, decode_engine_key, read_record};
pub(crate) use stripes::Stripes;

/// Engine keyspace of the replicated records.
pub const REPLICATED_KEYSPACE: &str = "replicated";
/// Engine keyspace of the Merkle trees and their to-do records.
pub const MERKLE_KEYSPACE: &str = "merkle";

/// How [`ReplicaStore::apply_with`] commits its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Written to the WAL (and synced) as the database's fsync policy says, before it
    /// returns: [`kv_engine::Db::write`].
    Now,
    /// Left in the log writer's buffer until the next write-out:
    /// [`kv_engine::Db::write_deferred`].
    Deferred,
}

/// Versioned last-writer-wins storage of one node's replicas, with its Merkle trees.
pub struct ReplicaStore {
    db: Arc<Db>,
    data: Keyspace,
    /// Consensus promises (replica_store/acceptor.rs).
    paxos: Keyspace,
    /// Whether `paxos` may hold a promise: set at open when it holds one and by every
    /// prepare before it writes one, never cleared. While it is false, a copy's check
    /// for a higher promise (`mark_copy`) skips its engine read: a replica of eventual
    /// databases only never pays it.
    promises_made: AtomicBool,
    merkle: Merkle,
    /// Per-key locks every writer holds across read, compare and write; the Merkle
    /// trees take them too, to set a leaf from a record they read.
    stripes: Arc<Stripes>,
    floors: FlushFloors,
    /// This node's id: the actor of the dots it gives siblings writes (0: not set, and
    /// such writes are refused).
    actor: AtomicU64,
}

impl ReplicaStore {
    /// Opens the replica store inside `db` (creating its keyspaces if needed).
    pub fn open(db: Arc<Db>) -> Result<ReplicaStore, StoreError> {
        let data = db.keyspace(REPLICATED_KEYSPACE)?;
        let tree = db.keyspace(MERKLE_KEYSPACE)?;
        let paxos = db.keyspace(PAXOS_KEYSPACE)?;
        let stripes = Arc::new(Stripes::default());
        let merkle = Merkle::open(db.clone(), data, tree, stripes.clone())?;
        let promises_made = AtomicBool::new(acceptor::any_promise(&db, paxos)?);
        Ok(ReplicaStore {
            db,
            data,
            paxos,
            promises_made,
            merkle,
            stripes,
            floors: FlushFloors::default(),
            actor: AtomicU64::new(0),
        })
    }

    /// Sets the node this store belongs to: siblings writes it accepts get dots of this
    /// actor (crate::dvv).
    pub fn set_actor(&self, me: NodeId) {
        self.actor.store(me.0, Ordering::Relaxed);
    }

    /// The partition Merkle trees kept over this store.
    pub fn merkle(&self) -> &Merkle {
        &self.merkle
    }

    /// The flush floors this store applies (docs/cluster.md, "Flushing a database"):
    /// records below their database's floor are never returned, and writes below it
    /// are refused as `Stale` with the floor. The node raises them from the metadata.
    pub fn floors(&self) -> &FlushFloors {
        &self.floors
    }

    /// The engine this store lives in.
    pub fn db(&self) -> &Arc<Db> {
        &self.db
    }

    /// The engine keyspace of the replicated records (tests and tools read it).
    pub fn data_keyspace(&self) -> Keyspace {
        self.data
    }

    /// Applies each write whose version is newer than the one held, all in ONE engine
    /// batch with their Merkle leaves (durable under the Db's fsync policy when
    /// this returns). One outcome per item, in order: `Applied` when written or when
    /// that very version is already held, `Stale{current}` when a newer one is held.
    /// Items later in `items` see the effect of earlier ones. A write below its
    /// database's flush floor is `Stale{current: floor}` and writes nothing: a hint or a
    /// repair of flushed data is dropped (its sender stops retrying), and a coordinator
    /// moves its clock past the flush and retries, so its write lands after the flush.
    pub fn apply(&self, items: &[WriteItem]) -> Result<Vec<WriteOutcome>, StoreError> {
        self.apply_with(items, Commit::Now)
    }

    /// [`ReplicaStore::apply`], committed as `commit` says. With [`Commit::Deferred`]
    /// the batch's WAL record may stay in the log writer's buffer: only for a caller
    /// that writes the WAL out before it answers anyone (crate::wal_deferral). With
    /// [`Commit::Now`] an outcome that wrote nothing (the version is held already, or
    /// newer) is only answered once the WAL is written out: the record held may be a
    /// deferred write's, and the answer tells the writer it is stored here.
    pub fn apply_with(
        &self,
        items: &[WriteItem],
        commit: Commit,
    ) -> Result<Vec<WriteOutcome>, StoreError> {
        // Held across read, compare and write so that a concurrent apply of the same
        // key cannot slip between them.
        let _guards = self.stripes.lock(items.iter().map(|i| &i.key));
        let mut batch = WriteBatch::new();
        // Dropped after the write (and before the stripes): marks the leaves' buckets.
        let mut leaves = self.merkle.begin_leaves();
        // What this batch wrote so far, for a key named again later in it: the item's
        // own record borrowed (no copy per write), or the merged siblings record.
        // Sized once (growing it by doubling was most of its cost), and not kept for a
        // lone record, which has no later item to look it up.
        let mut written: KeyMap<&ItemKey, Cow<'_, Record>> = match items.len() {
            0 | 1 => KeyMap::default(),
            n => KeyMap::with_capacity_and_hasher(n, Default::default()),
        };
        let remember = items.len() > 1;
        let mut outcomes = Vec::with_capacity(items.len());
        for item in items {
            let floor = self.floors.floor(item.key.db);
            if item.record.version < floor {
                outcomes.push(WriteOutcome::Stale { current: floor });
                continue;
            }
            let engine_key = records::engine_key(&item.key);
            let held = match written.get(&item.key) {
                Some(r) => Some(r.clone().into_owned()),
                None => records::read_record_at(&self.db, self.data, &item.key, &engine_key)?,
            };
            if let Body::Siblings(_) | Body::SiblingsWrite(_) = &item.record.body {
                let actor = NodeId(self.actor.load(Ordering::Relaxed));
                if let Some(record) = siblings::after_write(&item.key, held, &item.record, actor)? {
                    self.put_keyed(&mut batch, &mut leaves, &item.key, &engine_key, &record);
                    if remember {
                        written.insert(&item.key, Cow::Owned(record));
                    }
                }
                outcomes.push(WriteOutcome::Applied);
                continue;
            }
            let outcome = match held.map(|r| (r.version, r.body)) {
                // Siblings beat every other kind (Record::merge): a last-writer-wins
                // write meets one only if the database's mode changed.
                Some((current, Body::Siblings(_))) => WriteOutcome::Stale {
                    current: current.max(item.record.version),
                },
                Some((current, _)) if current > item.record.version => {
                    WriteOutcome::Stale { current }
                }
                Some((current, _)) if current == item.record.version => WriteOutcome::Applied,
                _ => {
                    self.put_keyed(
                        &mut batch,
                        &mut leaves,
                        &item.key,
                        &engine_key,
                        &item.record,
                    );
                    // A copy under a higher promise is not this acceptor's accept
                    // (replica_store/acceptor.rs).
                    self.mark_copy(&mut batch, &item.key, &engine_key, item.record.version)?;
                    if remember {
                        written.insert(&item.key, Cow::Borrowed(&item.record));
                    }
                    WriteOutcome::Applied
                }
            };
            outcomes.push(outcome);
        }
        match (batch.is_empty(), commit) {
            (false, Commit::Now) => self.db.write(batch).map(drop)?,
            (false, Commit::Deferred) => self.db.write_deferred(batch).map(drop)?,
            (true, Commit::Now) => self.db.write_out_wal()?,
            (true, Commit::Deferred) => {}
        }
        Ok(outcomes)
    }

    /// Adds `key`'s `record` and its Merkle leaf to `batch`. The caller holds the key's
    /// stripe until the batch is written (Merkle::begin_leaves).
    fn put_keyed(
        &self,
        batch: &mut WriteBatch,
        leaves: &mut LeafWrites<'_>,
        key: &ItemKey,
        engine_key: &[u8],
        record: &Record,
    ) {
        batch.put(self.data, engine_key, &record.encode());
        let place = crate::merkle::leaf_place_in(engine_key, key);
        leaves.set_at(batch, place, key, Some(record));
    }

    /// Deletes `key`'s record and its Merkle leaf in `batch` (purges: the key is gone on
    /// this replica). The caller holds the key's stripe until the batch is written.
    fn delete_keyed(&self, batch: &mut WriteBatch, leaves: &mut LeafWrites<'_>, key: &ItemKey) {
        batch.delete(self.data, &records::engine_key(key));
        leaves.set(batch, key, None);
    }

    /// The record held for `key` (tombstones and expired values included; records
    /// below the flush floor are not: they are gone).
    pub fn get(&self, key: &ItemKey) -> Result<Option<Record>, StoreError> {
        let held = read_record(&self.db, self.data, key)?;
        Ok(self.floors.visible(key.db, held))
    }

    /// `limit` records (at most [`MAX_SCAN_LIMIT`]; more only to finish a scan
    /// position; fewer only at the partition's end) of database `db` in `partition`,
    /// from `from` on, in scan order.
    pub fn scan(
        &self,
        partition: u16,
        db: u32,
        from: ScanPosition,
        limit: usize,
    ) -> Result<ScanPage, StoreError> {
        let mut page = scan::scan_page(&self.db, self.data, partition, db, from, limit)?;
        // Flushed records are gone; `next` stays right, as the page covered them.
        page.items
            .retain(|(_, r)| !self.floors.flushed(db, r.version));
        Ok(page)
    }

    /// `limit` records (at most [`MAX_SCAN_LIMIT`]; fewer at the partition's end) of
    /// every database in `partition` from engine key `from` on (`None`: its start), in
    /// engine key order: a page of a snapshot stream.
    pub fn scan_partition(
        &self,
        partition: u16,
        from: Option<&[u8]>,
        limit: usize,
    ) -> Result<PartitionPage, StoreError> {
        // Flushed records are gone; `next` stays right, as the page read them.
        partition_page::partition_page(&self.db, self.data, partition, from, limit, |db, v| {
            !self.floors.flushed(db, v)
        })
    }

    /// Every record of `partition`, all databases (for repair and streaming).
    pub fn partition_records(&self, partition: u16) -> Result<PartitionRecords, StoreError> {
        PartitionRecords::new(&self.db, self.data, partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::sync::mpsc;
    use std::time::Duration;

    /// The read-compare-write of a key cannot start while its stripe is held. (Races
    /// are too rare to show by hammering alone; this shows the exclusion directly. A
    /// slow machine can only make it pass wrongly, never fail wrongly.)
    /// A store in a fresh directory, and a tombstone write of key `k` at version `ts`.
    fn store_and_write(ts: u64) -> (tempfile::TempDir, ReplicaStore, ItemKey, WriteItem) {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(dir.path(), kv_engine::Options::default()).unwrap());
        let store = ReplicaStore::open(db).unwrap();
        let key = ItemKey {
            db: 0,
            key: Bytes::from_static(b"k"),
        };
        let item = WriteItem {
            key: key.clone(),
            record: Record::tombstone(crate::Version {
                ts,
                node: NodeId(1),
            }),
        };
        (dir, store, key, item)
    }

    #[test]
    fn apply_waits_for_the_stripe_of_its_key() {
        let (_dir, store, key, item) = store_and_write(0);
        let guards = store.stripes.lock(std::iter::once(&key));
        let (tx, rx) = mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| {
                let outcome = store.apply(std::slice::from_ref(&item));
                tx.send(outcome.is_ok()).unwrap();
            });
            assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
            drop(guards);
            assert!(rx.recv().unwrap());
        });
    }

    /// Folding a to-do and rebuilding a partition set a leaf from a record they read,
    /// so they too wait for the key's stripe (merkle/leaf_writes.rs): otherwise one
    /// that read the record just before a write could put the older leaf back over the
    /// newer one. Shown as above: with the stripe held, neither touches the leaf.
    #[test]
    fn fold_and_rebuild_wait_for_the_stripe_of_their_key() {
        let (_dir, store, key, item) = store_and_write(7);
        store.apply(std::slice::from_ref(&item)).unwrap();
        let leaf_key = crate::merkle::leaf_key(&key);
        let tree = store.db.keyspace(MERKLE_KEYSPACE).unwrap();
        let leaf = || store.db.get(tree, &leaf_key).unwrap().map(|v| v.value);
        let good = leaf();
        assert!(good.is_some());
        let partition = kv_keyspace::slot::key_partition(&key.key);
        type Run<'a> = Box<dyn Fn() -> bool + Sync + 'a>;
        let runs: [(&str, Run); 2] = [
            (
                "fold",
                Box::new(|| {
                    let mut batch = WriteBatch::new();
                    let mut todos = store.merkle.begin_todos();
                    todos.add(&mut batch, &key);
                    store.db.write(batch).unwrap();
                    drop(todos);
                    store.merkle.process_todos(usize::MAX).unwrap() == 1
                }),
            ),
            (
                "rebuild",
                Box::new(|| store.merkle.rebuild_partition(partition).unwrap() == 1),
            ),
        ];
        for (what, run) in runs {
            store.db.put(tree, &leaf_key, b"a wrong leaf....").unwrap();
            let guards = store.stripes.lock(std::iter::once(&key));
            let (tx, rx) = mpsc::channel();
            std::thread::scope(|s| {
                s.spawn(|| tx.send(run()).unwrap());
                assert!(
                    rx.recv_timeout(Duration::from_millis(200)).is_err(),
                    "{what} did not wait for the stripe"
                );
                assert_eq!(leaf().as_deref(), Some(&b"a wrong leaf...."[..]), "{what}");
                drop(guards);
                assert!(rx.recv().unwrap(), "{what} fixed nothing");
            });
            assert_eq!(leaf(), good, "{what}");
        }
    }
}

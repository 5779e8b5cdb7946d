//! Hinted handoff storage: writes a replica missed (it was down, suspect, or did not
//! answer), kept durably in the node's engine until hint replay delivers them. Hints
//! never count toward a quorum; they only shorten the time a replica stays behind.
//! Bounded by total bytes and by age: the oldest hints (lowest seq, across targets) are
//! dropped first and the drops are counted; anti-entropy repairs what a dropped hint
//! would have delivered. On-disk layout: `format.rs`.

use crate::replica_api::WriteItem;
use crate::NodeId;
use kv_engine::{Db, Keyspace, WriteBatch};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod format;
mod index;

pub use format::{decode_hint, encode_hint};

use format::{hint_key, split_hint_key, KEY_LEN};
use index::{HintIndex, HintMeta};

/// Hint bounds.
#[derive(Debug, Clone)]
pub struct HintConfig {
    /// Total bytes (keys and values) kept for all targets.
    pub max_bytes: u64,
    /// Hints older than this are dropped: it must stay shorter than the tombstone
    /// grace period so a late hint never resurrects a collected delete.
    pub max_age: Duration,
}

impl Default for HintConfig {
    fn default() -> Self {
        HintConfig {
            max_bytes: 256 << 20,
            // Cassandra's max_hint_window: three hours.
            max_age: Duration::from_secs(3 * 3600),
        }
    }
}

/// Hint counters, for CLUSTER INFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HintStats {
    /// Hints pending.
    pub count: u64,
    /// Bytes pending.
    pub bytes: u64,
    /// Hints dropped by the bounds, because their target no longer holds their
    /// partition, or unreadable, since start.
    pub dropped: u64,
    /// Hints delivered since start.
    pub delivered: u64,
    /// Hints stored since start.
    pub written: u64,
}

/// Why hints are removed, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// The target acknowledged them.
    Delivered,
    /// The target no longer holds their partition (a layout change moved it away):
    /// counted with the dropped hints.
    Obsolete,
}

/// One stored hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    /// Its sequence number (the order it was stored in).
    pub seq: u64,
    /// The write to deliver.
    pub item: WriteItem,
    /// Bytes it takes in the store.
    pub bytes: u64,
}

/// Why a hint operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HintError {
    /// The engine failed.
    #[error("hint store: {0}")]
    Engine(String),
}

impl From<kv_engine::Error> for HintError {
    fn from(e: kv_engine::Error) -> Self {
        HintError::Engine(e.to_string())
    }
}

/// Milliseconds since the Unix epoch; injectable so tests can age hints.
pub type WallClockMs = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system clock as a [`WallClockMs`].
pub fn system_clock_ms() -> WallClockMs {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    })
}

struct Inner {
    db: Db,
    ks: Keyspace,
    config: HintConfig,
    now_ms: WallClockMs,
    index: Mutex<HintIndex>,
    dropped: AtomicU64,
    delivered: AtomicU64,
    written: AtomicU64,
    calls: EngineCalls,
}

/// Where the async methods run their engine calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineCalls {
    /// On tokio's blocking pool, so no runtime thread waits on disk (a server).
    BlockingPool,
    /// On the caller's thread: the deterministic simulation (`crate::sim`) runs every
    /// node on one thread so that a seed replays, and a pool thread finishing at a
    /// random moment would break that. Never in a server: it blocks the runtime.
    Inline,
}

/// The node's hint store. Cheap to clone. Methods ending in `_blocking` call the
/// engine directly; the async ones run them on the blocking pool (or inline in the
/// simulation, see [`EngineCalls`]).
#[derive(Clone)]
pub struct HintStore {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The index is rebuilt from the engine on open; a panic elsewhere must not wedge it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl HintStore {
    /// Opens the `hints` keyspace of `db` and indexes what it holds.
    pub fn open(db: Db, config: HintConfig) -> Result<HintStore, HintError> {
        HintStore::open_with_clock(db, config, system_clock_ms())
    }

    /// [`HintStore::open`] with an injected wall clock.
    pub fn open_with_clock(
        db: Db,
        config: HintConfig,
        now_ms: WallClockMs,
    ) -> Result<HintStore, HintError> {
        HintStore::open_with(db, config, now_ms, EngineCalls::BlockingPool)
    }

    /// [`HintStore::open_with_clock`], choosing where engine calls run.
    pub fn open_with(
        db: Db,
        config: HintConfig,
        now_ms: WallClockMs,
        calls: EngineCalls,
    ) -> Result<HintStore, HintError> {
        let ks = db.keyspace("hints")?;
        let mut index = HintIndex::default();
        let mut damaged = WriteBatch::new();
        for entry in db.iter(ks, None, None, None)? {
            let entry = entry?;
            let parsed = split_hint_key(&entry.key)
                .and_then(|(target, seq)| Some((target, seq, decode_hint(&entry.value)?)));
            let Some((target, seq, (stored_at_ms, _))) = parsed else {
                damaged.delete(ks, &entry.key);
                continue;
            };
            let bytes = (entry.key.len() + entry.value.len()) as u64;
            index.add(
                seq,
                HintMeta {
                    target,
                    bytes,
                    stored_at_ms,
                },
            );
        }
        let dropped = damaged.len() as u64;
        if !damaged.is_empty() {
            db.write(damaged)?;
        }
        Ok(HintStore {
            inner: Arc::new(Inner {
                db,
                ks,
                config,
                now_ms,
                index: Mutex::new(index),
                dropped: AtomicU64::new(dropped),
                delivered: AtomicU64::new(0),
                written: AtomicU64::new(0),
                calls,
            }),
        })
    }

    /// Counters.
    pub fn stats(&self) -> HintStats {
        let index = lock(&self.inner.index);
        HintStats {
            count: index.by_seq.len() as u64,
            bytes: index.bytes,
            dropped: self.inner.dropped.load(Ordering::Relaxed),
            delivered: self.inner.delivered.load(Ordering::Relaxed),
            written: self.inner.written.load(Ordering::Relaxed),
        }
    }

    /// Nodes that have hints pending, with how many each.
    pub fn targets_with_counts(&self) -> Vec<(NodeId, u64)> {
        let index = lock(&self.inner.index);
        index.per_target.iter().map(|(&t, &n)| (t, n)).collect()
    }

    /// Nodes that have hints pending.
    pub fn targets(&self) -> Vec<NodeId> {
        let index = lock(&self.inner.index);
        index.per_target.keys().copied().collect()
    }

    /// Keeps `item` for `target`, then enforces the bounds (oldest dropped first). A
    /// hint larger than the whole byte bound is dropped at once.
    pub fn store_blocking(&self, target: NodeId, item: &WriteItem) -> Result<(), HintError> {
        let inner = &self.inner;
        let now = (inner.now_ms)();
        let value = encode_hint(now, item);
        let bytes = (KEY_LEN + value.len()) as u64;
        if bytes > inner.config.max_bytes {
            inner.dropped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let mut index = lock(&inner.index);
        let seq = index.next_seq;
        let mut batch = WriteBatch::new();
        batch.put(inner.ks, &hint_key(target, seq), &value);
        // The new hint and the drops it causes are one atomic batch.
        let evicted = self.plan_drops(&index, bytes, now, &mut batch);
        inner.db.write(batch)?;
        index.add(
            seq,
            HintMeta {
                target,
                bytes,
                stored_at_ms: now,
            },
        );
        self.forget(&mut index, &evicted);
        inner
            .dropped
            .fetch_add(evicted.len() as u64, Ordering::Relaxed);
        inner.written.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Drops hints older than the age bound; returns how many.
    pub fn expire_blocking(&self) -> Result<usize, HintError> {
        let inner = &self.inner;
        let mut index = lock(&inner.index);
        let mut batch = WriteBatch::new();
        let evicted = self.plan_drops(&index, 0, (inner.now_ms)(), &mut batch);
        if evicted.is_empty() {
            return Ok(0);
        }
        inner.db.write(batch)?;
        self.forget(&mut index, &evicted);
        inner
            .dropped
            .fetch_add(evicted.len() as u64, Ordering::Relaxed);
        Ok(evicted.len())
    }

    /// The oldest hints that must go, oldest first, so that `extra` more bytes fit and
    /// none is past the age bound; their deletes are added to `batch`.
    fn plan_drops(
        &self,
        index: &HintIndex,
        extra: u64,
        now: u64,
        batch: &mut WriteBatch,
    ) -> Vec<(u64, HintMeta)> {
        let config = &self.inner.config;
        let max_age_ms = config.max_age.as_millis() as u64;
        let mut bytes = index.bytes + extra;
        let mut drops = Vec::new();
        for (&seq, &meta) in &index.by_seq {
            let too_old = meta.stored_at_ms.saturating_add(max_age_ms) < now;
            if !too_old && bytes <= config.max_bytes {
                break;
            }
            bytes -= meta.bytes;
            batch.delete(self.inner.ks, &hint_key(meta.target, seq));
            drops.push((seq, meta));
        }
        drops
    }

    fn forget(&self, index: &mut HintIndex, gone: &[(u64, HintMeta)]) {
        for (seq, _) in gone {
            index.remove(*seq);
        }
    }

    /// Up to `max_items` hints for `target`, oldest first.
    pub fn pending_blocking(
        &self,
        target: NodeId,
        max_items: usize,
    ) -> Result<Vec<Hint>, HintError> {
        let inner = &self.inner;
        let mut hints = Vec::new();
        let mut damaged = Vec::new();
        // Start at the target's oldest live hint, not at its prefix: delivered hints are
        // deleted but their tombstones stay in the engine until compaction, and walking
        // over them made each batch cost more than the last (replay of 1M hints slowed
        // from ~3000/s to ~220/s in the cluster benchmark).
        let oldest = lock(&inner.index)
            .by_seq
            .iter()
            .find(|(_, m)| m.target == target)
            .map(|(&seq, _)| seq);
        let Some(oldest) = oldest else {
            return Ok(hints);
        };
        let start = hint_key(target, oldest);
        let end = (target.0 < u64::MAX).then(|| (target.0 + 1).to_be_bytes().to_vec());
        for entry in inner
            .db
            .iter(inner.ks, Some(&start), end.as_deref(), None)?
            .take(max_items)
        {
            let entry = entry?;
            match split_hint_key(&entry.key).zip(decode_hint(&entry.value)) {
                Some(((_, seq), (_, item))) => {
                    let bytes = (entry.key.len() + entry.value.len()) as u64;
                    hints.push(Hint { seq, item, bytes });
                }
                // Undeliverable: dropped (and counted) so it cannot stall the target.
                None => damaged.extend(split_hint_key(&entry.key).map(|(_, seq)| seq)),
            }
        }
        if !damaged.is_empty() {
            let n = self.remove_blocking(target, &damaged)?;
            inner.dropped.fetch_add(n, Ordering::Relaxed);
        }
        Ok(hints)
    }

    /// Deletes `target`'s hints `seqs` after they were delivered.
    pub fn remove_delivered_blocking(&self, target: NodeId, seqs: &[u64]) -> Result<(), HintError> {
        self.remove_counted_blocking(target, seqs, Removal::Delivered)
    }

    /// Deletes `target`'s hints `seqs`, counted as `why` says.
    fn remove_counted_blocking(
        &self,
        target: NodeId,
        seqs: &[u64],
        why: Removal,
    ) -> Result<(), HintError> {
        let n = self.remove_blocking(target, seqs)?;
        let counter = match why {
            Removal::Delivered => &self.inner.delivered,
            Removal::Obsolete => &self.inner.dropped,
        };
        counter.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    /// Deletes `target`'s hints `seqs`; returns how many were still indexed.
    fn remove_blocking(&self, target: NodeId, seqs: &[u64]) -> Result<u64, HintError> {
        let inner = &self.inner;
        let mut index = lock(&inner.index);
        let mut batch = WriteBatch::new();
        for &seq in seqs {
            batch.delete(inner.ks, &hint_key(target, seq));
        }
        inner.db.write(batch)?;
        let mut removed = 0;
        for &seq in seqs {
            if index.by_seq.get(&seq).is_some_and(|m| m.target == target) {
                index.remove(seq);
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// [`HintStore::store_blocking`], on the blocking pool (or inline: [`EngineCalls`]).
    pub async fn store(&self, target: NodeId, item: WriteItem) -> Result<(), HintError> {
        let store = self.clone();
        self.run(move || store.store_blocking(target, &item)).await
    }

    /// [`HintStore::expire_blocking`], on the blocking pool (or inline: [`EngineCalls`]).
    pub async fn expire(&self) -> Result<usize, HintError> {
        let store = self.clone();
        self.run(move || store.expire_blocking()).await
    }

    /// [`HintStore::pending_blocking`], on the blocking pool (or inline: [`EngineCalls`]).
    pub async fn pending(&self, target: NodeId, max_items: usize) -> Result<Vec<Hint>, HintError> {
        let store = self.clone();
        self.run(move || store.pending_blocking(target, max_items))
            .await
    }

    /// Deletes `target`'s hints `seqs`, on the blocking pool (or inline: [`EngineCalls`]):
    /// delivered, or obsolete (counted as dropped).
    pub async fn remove(
        &self,
        target: NodeId,
        seqs: Vec<u64>,
        why: Removal,
    ) -> Result<(), HintError> {
        let store = self.clone();
        self.run(move || store.remove_counted_blocking(target, &seqs, why))
            .await
    }

    /// Runs an engine call where [`EngineCalls`] says: on the blocking pool so it never
    /// stalls the async workers, or inline in the simulation.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, HintError> + Send + 'static,
    ) -> Result<T, HintError> {
        if self.inner.calls == EngineCalls::Inline {
            return f();
        }
        tokio::task::spawn_blocking(f)
            .await
            .unwrap_or_else(|e| Err(HintError::Engine(format!("hint task failed: {e}"))))
    }
}

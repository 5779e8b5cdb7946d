//! The server's view of the engine: logical databases mapped to namespaces, striped key
//! locks, and the registries that react to writes (WATCH, lock waiters).
//!
//! Concurrency (docs/server.md, "Atomicity"): every command runs under `world` — shared
//! for ordinary commands, exclusive for those that change whole databases (FLUSHDB,
//! FLUSHALL, SWAPDB) or EXEC containing one. Writing commands also hold the stripe
//! locks of every key they touch, taken in stripe order, until their batch has committed,
//! so read-modify-write commands are atomic with respect to each other. Reads take no
//! stripe lock: the engine applies each batch atomically, and multi-key reads use a
//! snapshot.

use super::events::KeyEvents;
use super::idempotency_sweep::RecordPresence;
use super::key_counts::KeyCounts;
use kv_engine::{CompactionFilter, Db, FilterDecision, Keyspace, WriteBatch};
use kv_keyspace::data_key::slot_ns_of;
use kv_keyspace::migrate::ensure_current_format;
use kv_keyspace::namespaces::{META_KEYSPACE, META_NAMESPACES};
use parking_lot::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

pub use kv_keyspace::namespaces::Namespaces;
pub use kv_keyspace::now_ms;

/// Stripes of key locks; a power of two well above typical concurrency.
const LOCK_STRIPES: usize = 1024;

/// What the compaction filter needs to know; shared with the engine.
pub struct ExpiryFilter {
    loaded: AtomicBool,
    live: RwLock<HashSet<u32>>,
    data_ks: u8,
    idem_ks: AtomicU8,
    /// Idempotency records older than this are dropped.
    pub idem_window_ms: AtomicU64,
}

impl ExpiryFilter {
    /// A filter that drops nothing but expired keys until the namespace map is loaded.
    pub fn new(idem_window_ms: u64) -> Arc<ExpiryFilter> {
        Arc::new(ExpiryFilter {
            loaded: AtomicBool::new(false),
            live: RwLock::new(HashSet::new()),
            data_ks: Keyspace::DEFAULT.id(),
            idem_ks: AtomicU8::new(u8::MAX),
            idem_window_ms: AtomicU64::new(idem_window_ms),
        })
    }
}

impl CompactionFilter for ExpiryFilter {
    fn filter(&self, keyspace: u8, key: &[u8], value: &[u8]) -> FilterDecision {
        let now = now_ms();
        if keyspace == self.data_ks {
            // Expired keys are not dropped here: the key counts must see every removal, so
            // the active expiry sweep deletes them through a transaction (key_counts.rs).
            // Until the map is loaded (and the keyspace migrated to the slot-first layout,
            // which Store::new does first) nothing is dropped: a legacy key read as a new
            // one would name a random namespace.
            if self.loaded.load(Ordering::Acquire) {
                if let Some((_, ns)) = slot_ns_of(key) {
                    if !self.live.read().contains(&ns) {
                        return FilterDecision::Remove; // the database was flushed
                    }
                }
            }
        } else if keyspace == self.idem_ks.load(Ordering::Relaxed) {
            if let Some(created) = super::idempotency::created_at(value) {
                let window = self.idem_window_ms.load(Ordering::Relaxed);
                if !super::idempotency::is_live(created, window, now) {
                    return FilterDecision::Remove;
                }
            }
        }
        FilterDecision::Keep
    }
}

/// Locks held by one command (released on drop).
pub enum Guard<'a> {
    /// Shared world lock plus the stripes of the keys written.
    Shared {
        /// World lock, shared.
        _world: RwLockReadGuard<'a, ()>,
        /// Stripe locks in stripe order.
        _stripes: Vec<MutexGuard<'a, ()>>,
    },
    /// Exclusive world lock.
    Exclusive(RwLockWriteGuard<'a, ()>),
}

/// The engine plus the server's shared keyspace state.
pub struct Store {
    /// The engine.
    pub db: Db,
    /// Keyspace of Redis data.
    pub data: Keyspace,
    /// Keyspace of server metadata (namespace map).
    pub meta: Keyspace,
    /// Keyspace of idempotency records.
    pub idem: Keyspace,
    namespaces: RwLock<Namespaces>,
    filter: Arc<ExpiryFilter>,
    stripes: Box<[Mutex<()>]>,
    world: RwLock<()>,
    /// WATCH flags and lock waiters, told about every committed write.
    pub events: KeyEvents,
    /// Keys per namespace (DBSIZE, INFO keyspace).
    pub counts: KeyCounts,
    /// Whether idempotency records may exist (the sweep skips an empty keyspace).
    pub idem_presence: RecordPresence,
}

impl Store {
    /// Wraps an open engine: loads (or creates) the namespace map for `databases`.
    pub fn new(db: Db, databases: usize, filter: Arc<ExpiryFilter>) -> kv_engine::Result<Store> {
        let meta = db.keyspace(META_KEYSPACE)?;
        let idem = db.keyspace("kvd-idempotency")?;
        filter.idem_ks.store(idem.id(), Ordering::Relaxed);
        // A damaged map must not be replaced by a fresh one: the compaction filter would
        // then take every existing namespace for a flushed database and delete live data.
        let mut ns = match db.get(meta, META_NAMESPACES)? {
            Some(v) => Namespaces::decode(&v.value).ok_or_else(|| {
                kv_engine::Error::corruption(
                    db.path(),
                    0,
                    format!(
                        "kvd namespace map record (keyspace kvd-meta, key {:?}) is malformed: \
                         {} bytes; refusing to start rather than treat existing data as flushed",
                        String::from_utf8_lossy(META_NAMESPACES),
                        v.value.len()
                    ),
                )
            })?,
            None => Namespaces::fresh(databases),
        };
        // A directory of an older kvd is rewritten to the current data-key layout before
        // anything reads it; a newer format is refused before anything is written
        // (kv_keyspace::migrate).
        let started = std::time::Instant::now();
        if let Some(report) = ensure_current_format(&db, meta, Keyspace::DEFAULT)? {
            tracing::info!(
                millis = started.elapsed().as_millis() as u64,
                staged = report.staged,
                rewritten = report.rewritten,
                unreadable = report.unreadable,
                "keyspace at the current format"
            );
        }
        ns.grow_to(databases);
        db.put(meta, META_NAMESPACES, &ns.encode())?;
        *filter.live.write() = ns.map.iter().copied().collect();
        filter.loaded.store(true, Ordering::Release);
        let started = std::time::Instant::now();
        let counts = KeyCounts::scan(&db, Keyspace::DEFAULT)?;
        counts.retain(|n| ns.map.contains(&n));
        tracing::info!(
            millis = started.elapsed().as_millis() as u64,
            "counted keys"
        );
        Ok(Store {
            data: Keyspace::DEFAULT,
            meta,
            idem,
            db,
            namespaces: RwLock::new(ns),
            filter,
            stripes: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            world: RwLock::new(()),
            events: KeyEvents::default(),
            counts,
            idem_presence: RecordPresence::default(),
        })
    }

    /// Number of logical databases.
    pub fn databases(&self) -> usize {
        self.namespaces.read().map.len()
    }

    /// Current namespace map.
    pub fn namespaces(&self) -> Namespaces {
        self.namespaces.read().clone()
    }

    /// Namespace of database `db` (caller holds the world lock).
    pub fn namespace(&self, db: usize) -> u32 {
        self.namespaces.read().map[db]
    }

    /// Adds the namespace-map record to `batch` (committed by the caller).
    pub fn stage_namespaces(&self, batch: &mut WriteBatch, ns: &Namespaces) {
        batch.put(self.meta, META_NAMESPACES, &ns.encode());
    }

    /// Installs a namespace map after its record committed.
    pub fn install_namespaces(&self, ns: Namespaces) {
        *self.filter.live.write() = ns.map.iter().copied().collect();
        *self.namespaces.write() = ns;
    }

    /// The compaction filter's settings.
    pub fn filter(&self) -> &ExpiryFilter {
        &self.filter
    }

    fn stripe_of(key: &[u8]) -> usize {
        (xxhash_rust::xxh3::xxh3_64(key) as usize) & (LOCK_STRIPES - 1)
    }

    /// Shared world lock and the stripes of `keys` (in stripe order, so no deadlock).
    pub fn lock_keys<'a, I: IntoIterator<Item = &'a [u8]>>(&self, keys: I) -> Guard<'_> {
        let mut idx: Vec<usize> = keys.into_iter().map(Self::stripe_of).collect();
        idx.sort_unstable();
        idx.dedup();
        let world = self.world.read();
        Guard::Shared {
            _world: world,
            _stripes: idx.into_iter().map(|i| self.stripes[i].lock()).collect(),
        }
    }

    /// Exclusive world lock: nothing else runs.
    pub fn lock_world(&self) -> Guard<'_> {
        Guard::Exclusive(self.world.write())
    }

    /// Like [`Self::lock_keys`], but gives up after `wait` if the world lock is held
    /// exclusively (by a script, for one) all that time.
    pub fn try_lock_keys<'a, I: IntoIterator<Item = &'a [u8]>>(
        &self,
        keys: I,
        wait: std::time::Duration,
    ) -> Option<Guard<'_>> {
        let mut idx: Vec<usize> = keys.into_iter().map(Self::stripe_of).collect();
        idx.sort_unstable();
        idx.dedup();
        let world = self.world.try_read_for(wait)?;
        Some(Guard::Shared {
            _world: world,
            _stripes: idx.into_iter().map(|i| self.stripes[i].lock()).collect(),
        })
    }

    /// Like [`Self::lock_world`], but gives up after `wait`.
    pub fn try_lock_world(&self, wait: std::time::Duration) -> Option<Guard<'_>> {
        self.world.try_write_for(wait).map(Guard::Exclusive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compaction_filter_drops_flushed_namespaces_and_old_records_but_not_expired_keys() {
        use super::super::encoding::{encode_value, ValueType};
        use super::super::idempotency::encode_record;
        use kv_keyspace::data_key::data_key;
        let f = ExpiryFilter::new(1000);
        let now = now_ms();
        let live = encode_value(ValueType::String, Some(now + 60_000), b"v");
        let dead = encode_value(ValueType::String, Some(now - 1), b"v");
        let data = Keyspace::DEFAULT.id();
        assert_eq!(
            f.filter(data, &data_key(7, b"k"), &live),
            FilterDecision::Keep
        );
        // Expired keys stay until the sweep deletes them through a transaction, which keeps
        // the key counts exact.
        assert_eq!(
            f.filter(data, &data_key(7, b"k"), &dead),
            FilterDecision::Keep
        );
        // Until the namespace map is loaded nothing else is dropped; then unknown namespaces are.
        *f.live.write() = [0u32, 1].into_iter().collect();
        f.loaded.store(true, Ordering::Release);
        assert_eq!(
            f.filter(data, &data_key(1, b"k"), &live),
            FilterDecision::Keep
        );
        assert_eq!(
            f.filter(data, &data_key(7, b"k"), &live),
            FilterDecision::Remove
        );
        f.idem_ks.store(9, Ordering::Relaxed);
        let fresh = encode_record(now, 0, &crate::protocol::Reply::Ok);
        let old = encode_record(now - 5000, 0, &crate::protocol::Reply::Ok);
        assert_eq!(f.filter(9, b"req", &fresh), FilterDecision::Keep);
        assert_eq!(f.filter(9, b"req", &old), FilterDecision::Remove);
    }
}

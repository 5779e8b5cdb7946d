//! One command's (or one EXEC's) view of the keyspace: reads go through an overlay of its
//! own uncommitted writes, writes collect in one engine batch committed at the end, so a
//! transaction is applied atomically and durably as one WAL record.

use super::encoding::{decode_value, encode_value, ValueType};
use super::key_counts::KeyCount;
use super::keyed_reads::KeyedReads;
use super::store::{now_ms, Namespaces, Store};
use crate::protocol::Version;
use bytes::Bytes;
use kv_engine::{Keyspace, Snapshot, Versioned, WriteBatch};
use kv_keyspace::data_key::{data_key, slot_ns_of, split_data_key_unchecked, ScanPosition};
use kv_keyspace::namespace_iter::NamespaceIter;
use std::cell::RefCell;
use std::collections::HashMap;

/// Seeks past other databases' keys a scan page may make per key it may examine: a
/// sparse database among big ones answers SCAN and feeds the expiry sweep in bounded
/// steps (Redis likewise visits at most 10 × COUNT empty buckets per SCAN call).
pub const SEEKS_PER_KEY: u64 = 10;

/// A live (or, from [`Txn::get_any`], possibly expired) key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Type tag.
    pub ty: ValueType,
    /// Absolute expiry, Unix ms.
    pub expire_at: Option<i64>,
    /// Payload.
    pub value: Bytes,
    /// Version: sequence number of the key's last write.
    pub version: Version,
}

impl Entry {
    /// True if the key has expired at `now`.
    pub fn expired(&self, now: i64) -> bool {
        self.expire_at.is_some_and(|e| e <= now)
    }
}

struct Pending {
    value: Option<Bytes>,
    op: usize,
}

/// The maps a transaction builds and drops on every command: keyed by client keys, so
/// the hash must be seeded (foldhash's per-process random seed), and it is hashed a few
/// times per key per command, so it must be fast. std's SipHash with its rehashes was
/// about 9% of a pipelined SET's instructions (docs/performance.md).
pub(crate) type CommandMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// What a command on the ring read of its keys before it runs, by (database, key).
pub(crate) type RingReads = KeyedReads<Option<Entry>>;

/// Reads and buffered writes of one command or transaction.
pub struct Txn<'s> {
    /// The store.
    pub store: &'s Store,
    /// The time the command runs at (one clock reading per command, like Redis).
    pub now: i64,
    overlay: CommandMap<Vec<u8>, Pending>,
    records: CommandMap<(u8, Vec<u8>), Pending>,
    batch: WriteBatch,
    touched: Vec<(usize, Bytes)>,
    touched_dbs: Vec<usize>,
    snapshot: Option<Snapshot>,
    namespaces: Option<Namespaces>,
    /// Committed state of data keys read from the engine (not a snapshot), so the key
    /// counts need not read them again at commit.
    read_before: RefCell<CommandMap<Vec<u8>, KeyCount>>,
    /// False for a read-only command, whose reads need not feed `read_before`.
    may_write: bool,
    /// On a cluster node: the command runs against the ring instead of the local engine.
    ring: Option<RingView>,
    /// Id of the client whose command this is (0: the server itself), for CLIENT
    /// TRACKING's NOLOOP.
    writer: u64,
    /// Commit with [`kv_engine::Db::write_deferred`] ([`Txn::defer_wal_write`]).
    defer_wal: bool,
}

/// A command's view of the ring (cluster mode): the keys it reads were fetched from their
/// replicas before it ran, and its writes are collected for the coordinator to replicate
/// after it returns. The same command code thus runs on one node and on the ring.
#[derive(Debug, Default)]
pub struct RingView {
    /// Every key the command may read, by (database, key): `None` if absent.
    pub reads: RingReads,
    /// Writes in command order: (database, key, encoded value or `None` for a delete).
    pub writes: Vec<(usize, Bytes, Option<Bytes>)>,
}

/// What was fetched of `key` before a ring command ran (a key it did not name is an
/// error: the caller fetches every key the command names).
fn ring_read(ring: &RingView, db: usize, key: &[u8]) -> kv_engine::Result<Option<Entry>> {
    match ring.reads.get(db, key) {
        Some(entry) => Ok(entry.clone()),
        None => Err(kv_engine::Error::InvalidArgument(
            "a command read a key it did not name (cluster mode)".into(),
        )),
    }
}

impl<'s> Txn<'s> {
    /// An empty transaction at the current time.
    pub fn new(store: &'s Store) -> Txn<'s> {
        Txn {
            store,
            now: now_ms(),
            overlay: CommandMap::default(),
            records: CommandMap::default(),
            batch: WriteBatch::new(),
            touched: Vec::new(),
            touched_dbs: Vec::new(),
            snapshot: None,
            namespaces: None,
            read_before: RefCell::new(CommandMap::default()),
            may_write: true,
            ring: None,
            writer: 0,
            defer_wal: false,
        }
    }

    /// Names the client running this transaction (CLIENT TRACKING NOLOOP skips it).
    pub fn set_writer(&mut self, client_id: u64) {
        self.writer = client_id;
    }

    /// A transaction of a command that runs on the ring: reads answer from `reads`
    /// (a key not in it is an error: the caller fetches every key the command names),
    /// and [`Self::into_ring_writes`] hands back the writes instead of committing them.
    pub fn on_ring(store: &'s Store, reads: RingReads) -> Txn<'s> {
        let mut t = Txn::new(store);
        t.ring = Some(RingView {
            reads,
            writes: Vec::new(),
        });
        t
    }

    /// The writes of a ring transaction, in command order.
    pub fn into_ring_writes(mut self) -> Vec<(usize, Bytes, Option<Bytes>)> {
        self.ring.take().map(|r| r.writes).unwrap_or_default()
    }

    /// Declares that this transaction will not write, so its reads skip the bookkeeping
    /// the key counts need at commit (a hash map entry per key read). Were it to write
    /// anyway, the commit reads the keys' committed state again, as for any key not read.
    pub fn read_only(&mut self) {
        self.may_write = false;
    }

    /// Reads committed data as of one snapshot (for multi-key reads without locks).
    pub fn use_snapshot(&mut self) {
        self.snapshot = Some(self.store.db.snapshot());
    }

    /// Number of writes so far.
    pub fn pending_writes(&self) -> usize {
        self.batch.len()
    }

    /// Namespace of `db` as this transaction sees it.
    pub fn ns(&self, db: usize) -> u32 {
        match &self.namespaces {
            Some(n) => n.map[db],
            None => self.store.namespace(db),
        }
    }

    fn engine_get(&self, ks: Keyspace, key: &[u8]) -> kv_engine::Result<Option<Versioned>> {
        match &self.snapshot {
            Some(s) => self.store.db.get_at(ks, key, s),
            None => self.store.db.get(ks, key),
        }
    }

    /// Starts loading into the CPU cache what the lookups of `keys` (of database `db`)
    /// will read first, so a group's reads overlap their cache misses
    /// ([`kv_engine::Db::prefetch`]). A cluster node reads through its replicas: nothing
    /// to do there.
    pub fn prefetch<'k>(&self, db: usize, keys: impl Iterator<Item = &'k [u8]>) {
        if self.ring.is_some() {
            return;
        }
        let ns = self.ns(db);
        let keys: Vec<Vec<u8>> = keys.map(|k| data_key(ns, k)).collect();
        self.store
            .db
            .prefetch(self.store.data, keys.iter().map(Vec::as_slice));
    }

    /// The key including an expired one not yet removed.
    pub fn get_any(&self, db: usize, key: &[u8]) -> kv_engine::Result<Option<Entry>> {
        let ring = self.ring.as_ref();
        if let (Some(ring), true) = (ring, self.overlay.is_empty()) {
            // Nothing written yet (every read-only command): what was fetched, without
            // building the data key the overlay is keyed by.
            return ring_read(ring, db, key);
        }
        let k = data_key(self.ns(db), key);
        let (raw, version) = match (self.overlay.get(&k), ring) {
            (Some(Pending { value: None, .. }), _) => return Ok(None),
            (Some(Pending { value: Some(v), op }), _) => (v.clone(), Version::Pending(*op)),
            (None, Some(ring)) => return ring_read(ring, db, key),
            (None, None) => {
                let found = self.engine_get(self.store.data, &k)?;
                if self.snapshot.is_none() && self.may_write {
                    let count = KeyCount::of_value(found.as_ref().map(|v| &v.value[..]));
                    self.read_before.borrow_mut().insert(k, count);
                }
                match found {
                    Some(v) => (v.value, Version::Committed(v.seq)),
                    None => return Ok(None),
                }
            }
        };
        Ok(decode_value(&raw).map(|d| Entry {
            ty: d.ty,
            expire_at: d.expire_at,
            value: d.payload,
            version,
        }))
    }

    /// The live key (expired keys read as absent).
    pub fn get(&self, db: usize, key: &[u8]) -> kv_engine::Result<Option<Entry>> {
        Ok(self.get_any(db, key)?.filter(|e| !e.expired(self.now)))
    }

    fn stage(&mut self, db: usize, key: &[u8], value: Option<Bytes>) -> usize {
        let k = data_key(self.ns(db), key);
        if let Some(ring) = &mut self.ring {
            let op = ring.writes.len();
            let key = Bytes::copy_from_slice(key);
            ring.writes.push((db, key, value.clone()));
            self.overlay.insert(k, Pending { value, op });
            return op;
        }
        let op = self.batch.len();
        match &value {
            Some(v) => self.batch.put(self.store.data, &k, v),
            None => self.batch.delete(self.store.data, &k),
        };
        self.overlay.insert(k, Pending { value, op });
        self.touched.push((db, Bytes::copy_from_slice(key)));
        op
    }

    /// Writes `key`; returns the write's index in the batch (its pending version).
    pub fn put(
        &mut self,
        db: usize,
        key: &[u8],
        ty: ValueType,
        expire_at: Option<i64>,
        payload: &[u8],
    ) -> usize {
        let v = Bytes::from(encode_value(ty, expire_at, payload));
        self.stage(db, key, Some(v))
    }

    /// Writes a string value.
    pub fn put_string(
        &mut self,
        db: usize,
        key: &[u8],
        value: &[u8],
        expire_at: Option<i64>,
    ) -> usize {
        self.put(db, key, ValueType::String, expire_at, value)
    }

    /// Deletes `key` unconditionally (a tombstone even if absent).
    pub fn delete(&mut self, db: usize, key: &[u8]) -> usize {
        self.stage(db, key, None)
    }

    /// Deletes `key` if present (expired keys are removed but count as absent).
    pub fn remove(&mut self, db: usize, key: &[u8]) -> kv_engine::Result<bool> {
        match self.get_any(db, key)? {
            Some(e) => {
                self.delete(db, key);
                Ok(!e.expired(self.now))
            }
            None => Ok(false),
        }
    }

    /// Reads a record of a server keyspace (not a Redis key): its value and version,
    /// including this transaction's own uncommitted record.
    pub fn get_record(
        &self,
        ks: Keyspace,
        key: &[u8],
    ) -> kv_engine::Result<Option<(Bytes, Version)>> {
        if let Some(p) = self.records.get(&(ks.id(), key.to_vec())) {
            return Ok(p.value.clone().map(|v| (v, Version::Pending(p.op))));
        }
        Ok(self
            .engine_get(ks, key)?
            .map(|v: Versioned| (v.value, Version::Committed(v.seq))))
    }

    /// Writes a record of a server keyspace; returns its batch index.
    pub fn put_record(&mut self, ks: Keyspace, key: &[u8], value: &[u8]) -> usize {
        let op = self.batch.len();
        self.batch.put(ks, key, value);
        let value = Some(Bytes::copy_from_slice(value));
        self.records
            .insert((ks.id(), key.to_vec()), Pending { value, op });
        op
    }

    /// Deletes a record of a server keyspace; returns its batch index.
    pub fn delete_record(&mut self, ks: Keyspace, key: &[u8]) -> usize {
        let op = self.batch.len();
        self.batch.delete(ks, key);
        self.records
            .insert((ks.id(), key.to_vec()), Pending { value: None, op });
        op
    }

    fn namespaces_mut(&mut self) -> &mut Namespaces {
        let store = self.store;
        self.namespaces.get_or_insert_with(|| store.namespaces())
    }

    /// Empties `db` (it gets a fresh namespace; compaction drops the old keys).
    pub fn flush_db(&mut self, db: usize) -> kv_engine::Result<()> {
        self.touch_existing_watched(db, &[db])?;
        self.namespaces_mut().renew(db);
        self.touched_dbs.push(db);
        Ok(())
    }

    /// Swaps two databases.
    pub fn swap_db(&mut self, a: usize, b: usize) -> kv_engine::Result<()> {
        self.touch_existing_watched(a, &[a, b])?;
        self.touch_existing_watched(b, &[a, b])?;
        self.namespaces_mut().map.swap(a, b);
        self.touched_dbs.extend([a, b]);
        Ok(())
    }

    /// Marks as written the keys watched in `db` that exist (live) in any of `dbs`, before
    /// a whole-database change: Redis 7's `touchAllWatchedKeysInDb`, so a WATCH of a key
    /// that did not exist survives FLUSHALL.
    fn touch_existing_watched(&mut self, db: usize, dbs: &[usize]) -> kv_engine::Result<()> {
        for key in self.store.events.watched_keys(db) {
            let mut exists = false;
            for d in dbs {
                exists |= self.get(*d, &key)?.is_some();
            }
            if exists {
                self.touched.push((db, key));
            }
        }
        Ok(())
    }

    /// Calls `f(key, position, entry)` for the live keys of `db` in scan order (slot,
    /// key hash, key) from position `from` (inclusive), merging this transaction's own
    /// writes; stops when `f` returns false. Cost: the keys visited plus the seek bound of
    /// [`NamespaceIter`].
    pub fn scan(
        &self,
        db: usize,
        from: ScanPosition,
        f: impl FnMut(&[u8], ScanPosition, Entry) -> bool,
    ) -> kv_engine::Result<()> {
        self.scan_keys(db, from, true, u64::MAX, f).map(|_| ())
    }

    /// One bounded page of a scan of `db` from `from`: calls `f` for every key examined
    /// (expired ones included: they cost as much to pass over) until `limit` keys have
    /// been examined, then stops before the first key at a new position and returns that
    /// position, where the next page starts (`None`: the end was reached). It never stops
    /// between two keys of the same position, so resuming there misses no key. It also
    /// stops after [`SEEKS_PER_KEY`] × `limit` seeks past other databases' keys (a sparse
    /// database among big ones), returning the slot it was about to seek.
    pub fn scan_page(
        &self,
        db: usize,
        from: ScanPosition,
        limit: usize,
        mut f: impl FnMut(&[u8], &Entry),
    ) -> kv_engine::Result<Option<ScanPosition>> {
        let (mut examined, mut last, mut resume) = (0usize, None, None);
        let seek_budget = (limit as u64).saturating_mul(SEEKS_PER_KEY);
        let stopped = self.scan_keys(db, from, false, seek_budget, |key, pos, entry| {
            if examined >= limit && last != Some(pos) {
                resume = Some(pos);
                return false;
            }
            examined += 1;
            last = Some(pos);
            f(key, &entry);
            true
        })?;
        Ok(resume.or(stopped))
    }

    /// Like [`Self::scan`], but `live_only = false` also yields expired keys not yet
    /// removed, and the walk ends early after `seek_budget` seeks past other databases'
    /// keys: then it returns the position to resume at (see
    /// [`NamespaceIter::stopped_at`]), having yielded every key before it.
    pub fn scan_keys(
        &self,
        db: usize,
        from: ScanPosition,
        live_only: bool,
        seek_budget: u64,
        mut f: impl FnMut(&[u8], ScanPosition, Entry) -> bool,
    ) -> kv_engine::Result<Option<ScanPosition>> {
        let ns = self.ns(db);
        let start = from.seek_key(ns);
        let mut engine = NamespaceIter::new(
            &self.store.db,
            self.store.data,
            ns,
            from,
            self.snapshot.as_ref(),
        )?
        .with_seek_budget(seek_budget);
        let mut own: Vec<(&Vec<u8>, &Pending)> = self
            .overlay
            .iter()
            .filter(|(k, _)| {
                slot_ns_of(k).is_some_and(|(_, n)| n == ns) && k.as_slice() >= start.as_slice()
            })
            .collect();
        own.sort_by(|a, b| a.0.cmp(b.0));
        let mut own = own.into_iter().peekable();
        // The engine's next entry, read ahead to merge with our own writes in key order.
        let mut ahead = engine.next().transpose()?;
        loop {
            let own_key = own.peek().map(|(k, _)| k.as_slice());
            let take_engine = match (&ahead, own_key) {
                (Some(e), Some(ok)) => e.key.as_ref() < ok,
                (Some(_), None) => true,
                (None, own_key) => {
                    // The walk may have ended early: our own writes from there on wait for
                    // the next page like the engine's keys.
                    if let Some(stop) = engine.stopped_at() {
                        if own_key.is_none_or(|k| k >= stop.seek_key(ns).as_slice()) {
                            return Ok(Some(stop));
                        }
                    }
                    if own_key.is_none() {
                        return Ok(None);
                    }
                    false
                }
            };
            let (key, raw, version) = if take_engine {
                let Some(e) = ahead.take() else {
                    return Ok(None);
                };
                ahead = engine.next().transpose()?;
                (e.key.to_vec(), Some(e.value), Version::Committed(e.seq))
            } else {
                let Some((k, p)) = own.next() else {
                    return Ok(None);
                };
                if ahead
                    .as_ref()
                    .is_some_and(|e| e.key.as_ref() == k.as_slice())
                {
                    ahead = engine.next().transpose()?; // shadowed by our own write
                }
                (k.clone(), p.value.clone(), Version::Pending(p.op))
            };
            let Some(raw) = raw else { continue };
            let (Some(d), Some(parts)) = (decode_value(&raw), split_data_key_unchecked(&key))
            else {
                continue;
            };
            let entry = Entry {
                ty: d.ty,
                expire_at: d.expire_at,
                value: d.payload,
                version,
            };
            if live_only && entry.expired(self.now) {
                continue;
            }
            if !f(parts.key, parts.position(), entry) {
                return Ok(None);
            }
        }
    }

    /// How the key counts of each namespace change if this transaction commits: for every
    /// key written, its state after minus its committed state (read now, under the key's
    /// lock, unless the transaction already read it), one entry per namespace touched:
    /// a command touches one or a few, so a list searched in place beats a hash map
    /// allocated per commit.
    fn count_changes(&self) -> kv_engine::Result<Vec<(u32, KeyCount)>> {
        let mut changes: Vec<(u32, KeyCount)> = Vec::new();
        for (k, pending) in &self.overlay {
            let Some((_, ns)) = slot_ns_of(k) else {
                continue;
            };
            let known = self.read_before.borrow().get(k).copied();
            let before = match known {
                Some(c) => c,
                None => {
                    let found = self.store.db.get(self.store.data, k)?;
                    KeyCount::of_value(found.as_ref().map(|v| &v.value[..]))
                }
            };
            let after = KeyCount::of_value(pending.value.as_deref());
            let change = KeyCount::change(before, after);
            match changes.iter_mut().find(|(n, _)| *n == ns) {
                Some((_, total)) => total.add(change),
                None => changes.push((ns, change)),
            }
        }
        Ok(changes)
    }

    /// Keys of `db` as DBSIZE and INFO count them, including this transaction's writes.
    pub fn key_count(&self, db: usize) -> kv_engine::Result<KeyCount> {
        let ns = self.ns(db);
        let mut count = self.store.counts.get(ns);
        if let Some((_, change)) = self.count_changes()?.iter().find(|(n, _)| *n == ns) {
            count.add(*change);
        }
        Ok(count)
    }

    /// Commits leave their WAL record buffered ([`kv_engine::Db::write_deferred`]): for
    /// a client that writes the WAL out before it replies.
    pub fn defer_wal_write(&mut self) {
        self.defer_wal = true;
    }

    /// Commits the batch; returns the first sequence number (None if nothing to write).
    /// Must be called while the command still holds its locks.
    pub fn commit(mut self) -> kv_engine::Result<Option<u64>> {
        if let Some(ns) = &self.namespaces {
            self.store.stage_namespaces(&mut self.batch, ns);
        }
        if self.batch.is_empty() {
            return Ok(None);
        }
        let changes = self.count_changes()?;
        let batch = std::mem::take(&mut self.batch);
        let first = if self.defer_wal {
            self.store.db.write_deferred(batch)?
        } else {
            self.store.db.write(batch)?
        };
        self.store
            .counts
            .apply(changes.iter().map(|(ns, c)| (ns, c)));
        let idem = self.store.idem.id();
        if self.records.keys().any(|(ks, _)| *ks == idem) {
            self.store.idem_presence.record_written();
        }
        if let Some(ns) = self.namespaces.take() {
            // The compaction filter drops the old namespaces' keys as soon as the new map
            // is installed: make the map durable first, whatever the fsync policy.
            self.store.db.sync_wal()?;
            let live: std::collections::HashSet<u32> = ns.map.iter().copied().collect();
            self.store.counts.retain(|n| live.contains(&n));
            self.store.install_namespaces(ns);
        }
        for (db, key) in &self.touched {
            self.store.events.touch(*db, key);
        }
        for db in &self.touched_dbs {
            self.store.events.wake_db_waiters(*db);
        }
        let tracking = &self.store.events.tracking;
        if !self.touched_dbs.is_empty() {
            tracking.invalidate_all();
        }
        tracking.invalidate_keys(self.touched.iter().map(|(_, k)| k), self.writer);
        Ok(Some(first))
    }
}

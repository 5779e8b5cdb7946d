//! The memtable: recent writes, ordered for scans and flushes, indexed for point
//! lookups.
//!
//! Entries are never removed; a full memtable is frozen (made immutable) and flushed to
//! an L0 table. The structure (list.rs) is a skiplist of user keys, each holding its
//! versions newest first, with a hash index beside it, all in one arena (arena.rs):
//! a point lookup is one hash probe, a new version of a key already here is one link,
//! and iterators step through memory that lives as long as the memtable, without
//! reference counts or epochs.

mod arena;
mod list;

use crate::error::Result;
use crate::iter::InternalIterator;
use crate::key::{self, SeqNo, ValueKind};
use bytes::Bytes;
use list::{Cursor, List};
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::Arc;

/// Per-entry bookkeeping counted against the memtable size. The arena's actual
/// overhead is smaller (32 bytes per version, about 60 more for a key's first); the
/// flush threshold keeps the count the engine has always used, so tables keep their
/// size.
const ENTRY_OVERHEAD: usize = 96;

/// Memtable bytes per entry the index is planned for: an entry is counted as its key,
/// value and [`ENTRY_OVERHEAD`], so 128 plans for small values.
const PLANNED_BYTES_PER_ENTRY: usize = 128;
/// Planned entries per index bucket at the planned size: chains of about two, at 16
/// bytes per bucket (4 MiB for a 64 MiB memtable).
const PLANNED_ENTRIES_PER_BUCKET: usize = 2;

/// What the memtable knows about a user key at a sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemLookup {
    /// The newest visible version is a value.
    Value(Bytes, SeqNo),
    /// The newest visible version is a tombstone.
    Deleted(SeqNo),
}

/// A sorted, concurrent, append-only table of recent writes. Inserts are serialized
/// inside (the engine's write leader is the only writer anyway); reads take no lock.
#[derive(Debug)]
pub struct Memtable {
    list: List,
    bytes: AtomicUsize,
}

impl Default for Memtable {
    fn default() -> Self {
        Self::new()
    }
}

impl Memtable {
    /// An empty memtable with an index planned for the default memtable size.
    pub fn new() -> Self {
        Self::sized(crate::constants::MEMTABLE_SIZE)
    }

    /// An empty memtable to be flushed at about `memtable_bytes` (its index's plan).
    pub fn sized(memtable_bytes: usize) -> Self {
        let entries = memtable_bytes / PLANNED_BYTES_PER_ENTRY;
        Memtable {
            list: List::new(entries / PLANNED_ENTRIES_PER_BUCKET),
            bytes: AtomicUsize::new(0),
        }
    }

    /// Inserts one entry. `user_key` already carries its keyspace prefix.
    pub fn add(&self, seq: SeqNo, kind: ValueKind, user_key: &[u8], value: &[u8]) {
        let size = user_key.len() + key::TRAILER_LEN + value.len() + ENTRY_OVERHEAD;
        self.list
            .insert(user_key, key::pack_trailer(seq, kind as u8), value);
        self.bytes.fetch_add(size, AtomicOrdering::Relaxed);
    }

    /// The newest version of `user_key` with sequence <= `seq`.
    pub fn get(&self, user_key: &[u8], seq: SeqNo) -> Option<MemLookup> {
        let found = self.list.get(user_key, seq)?;
        match ValueKind::from_u8(found.kind())? {
            ValueKind::Put => Some(MemLookup::Value(found.value(), found.seq())),
            ValueKind::Delete | ValueKind::RangeDelete => Some(MemLookup::Deleted(found.seq())),
        }
    }

    /// The hash [`Memtable::prefetch_bucket`] and [`Memtable::prefetch_node`] take, the
    /// same for every memtable, so a caller warming several computes it once.
    pub fn lookup_hash(user_key: &[u8]) -> u64 {
        list::key_hash(user_key)
    }

    /// Starts loading the index bucket a lookup of the key of `hash` reads first.
    pub fn prefetch_bucket(&self, hash: u64) {
        self.list.prefetch_bucket(hash);
    }

    /// Starts loading the node the bucket leads to (after [`Memtable::prefetch_bucket`]
    /// for every key of a batch, so the bucket is likely in the cache by now).
    pub fn prefetch_node(&self, hash: u64) {
        self.list.prefetch_node(hash);
    }

    /// Memory counted for the entries, for the flush trigger and stats (the index's
    /// fixed size, about 6% of the planned size, is not counted: see
    /// [`Memtable::reserved_bytes`]).
    pub fn approximate_bytes(&self) -> usize {
        self.bytes.load(AtomicOrdering::Relaxed)
    }

    /// Memory the memtable holds: its arena blocks and its index.
    pub fn reserved_bytes(&self) -> usize {
        self.list.reserved_bytes()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True if nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keys inserted but not yet in key order: what the next ordered access (a scan,
    /// the flush) would order first.
    pub fn unordered(&self) -> usize {
        self.list.unordered()
    }

    /// Puts every key inserted so far in key order now, as the next ordered access
    /// would, so that it does not have to (the flush thread calls it while the
    /// memtable fills: docs/engine.md, "Ordering ahead").
    pub fn order_queued(&self) {
        self.list.order();
    }

    /// A cursor over the memtable (holding it alive).
    pub fn iter(self: &Arc<Self>) -> MemtableIterator {
        MemtableIterator {
            current: None,
            mem: self.clone(),
        }
    }
}

/// An [`InternalIterator`] over a memtable. It holds a position in the list, so `next`
/// is a step along a link rather than a fresh search.
pub struct MemtableIterator {
    // Declared before `mem`: it borrows the list `mem` owns.
    current: Option<Cursor<'static>>,
    mem: Arc<Memtable>,
}

impl MemtableIterator {
    fn list(&self) -> &'static List {
        // SAFETY: the list lives inside `self.mem`, an Arc this iterator owns and never
        // replaces, so it outlives every cursor stored in `self.current`.
        unsafe { &*(&self.mem.list as *const List) }
    }
}

impl InternalIterator for MemtableIterator {
    fn valid(&self) -> bool {
        self.current.is_some()
    }

    fn seek_to_first(&mut self) {
        self.current = self.list().first();
    }

    fn seek(&mut self, target: &[u8]) {
        self.current = self.list().seek(target);
    }

    fn next(&mut self) {
        self.current = self.current.and_then(|c| c.next());
    }

    fn key(&self) -> &[u8] {
        self.current.map(|c| c.key()).unwrap_or(&[])
    }

    fn value(&self) -> &[u8] {
        self.current.map(|c| c.value()).unwrap_or(&[])
    }

    fn status(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::compare_internal_keys;
    use proptest::prelude::*;
    use std::cmp::Ordering;
    use std::sync::atomic::AtomicU64;

    /// One write of the model: key index, sequence, kind, value length.
    #[derive(Debug, Clone)]
    struct Write {
        key: usize,
        seq: SeqNo,
        kind: ValueKind,
        value_len: usize,
    }

    /// Keys of several lengths, the empty one among them, and values on both sides of
    /// the inline limit, so every allocation shape is exercised.
    fn keys() -> Vec<Vec<u8>> {
        let mut keys: Vec<Vec<u8>> = (0u8..24).map(|i| vec![b'k', i]).collect();
        keys.push(Vec::new());
        keys.push(vec![b'k']);
        keys.push(vec![b'k'; 300]);
        // Above the arena's own-block size (16 KiB); smaller under Miri, which is slow.
        keys.push(vec![b'z'; if cfg!(miri) { 17_000 } else { 70_000 }]);
        keys
    }

    fn value_of(w: &Write) -> Vec<u8> {
        let mut v = w.seq.to_le_bytes().to_vec();
        v.resize(w.value_len.max(8), (w.seq % 251) as u8);
        v.truncate(w.value_len);
        v
    }

    fn write() -> impl Strategy<Value = Write> {
        (
            0..keys().len(),
            1u64..60,
            prop_oneof![
                Just(ValueKind::Put),
                Just(ValueKind::Delete),
                Just(ValueKind::RangeDelete)
            ],
            prop_oneof![
                0usize..12,
                Just(list::INLINE_VALUE_MAX),
                Just(list::INLINE_VALUE_MAX + 1),
                1500usize..3000
            ],
        )
            .prop_map(|(key, seq, kind, value_len)| Write {
                key,
                seq,
                kind,
                value_len,
            })
    }

    /// The model: every entry by internal key, a later write of the same internal key
    /// replacing the earlier (as the memtable does).
    fn model(writes: &[Write]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let keys = keys();
        let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for w in writes {
            let ikey = key::make_internal_key(&keys[w.key], w.seq, w.kind);
            entries.retain(|(k, _)| *k != ikey);
            entries.push((ikey, value_of(w)));
        }
        entries.sort_by(|a, b| compare_internal_keys(&a.0, &b.0));
        entries
    }

    fn collect(it: &mut MemtableIterator) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        while it.valid() {
            out.push((it.key().to_vec(), it.value().to_vec()));
            it.next();
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 1 } else { 256 }))]

        /// Whatever the order of sequence numbers (the engine inserts them ascending;
        /// the structure must not depend on it), iteration yields the model's entries
        /// in internal-key order, every seek lands where the model's lower bound is,
        /// and every lookup at every sequence finds the model's newest visible version.
        #[test]
        fn memtable_matches_a_model(
            writes in proptest::collection::vec(write(), 1..if cfg!(miri) { 30 } else { 80 }),
            one_bucket in any::<bool>(),
        ) {
            // One bucket puts every key in one chain: lookups must still be right.
            let mem = Arc::new(Memtable::sized(if one_bucket { 0 } else { 1 << 16 }));
            let keys = keys();
            for w in &writes {
                mem.add(w.seq, w.kind, &keys[w.key], &value_of(w));
            }
            let model = model(&writes);
            prop_assert_eq!(mem.len(), model.len());
            let mut it = mem.iter();
            it.seek_to_first();
            prop_assert_eq!(&collect(&mut it), &model);

            for (k, user_key) in keys.iter().enumerate() {
                for seq in (0..61u64).step_by(if cfg!(miri) { 7 } else { 1 }) {
                    let target = key::lookup_key(user_key, seq);
                    let expected = model
                        .iter()
                        .position(|(ikey, _)| compare_internal_keys(ikey, &target) != Ordering::Less);
                    it.seek(&target);
                    match expected {
                        Some(i) => {
                            prop_assert!(it.valid());
                            prop_assert_eq!(it.key(), &model[i].0[..]);
                            prop_assert_eq!(it.value(), &model[i].1[..]);
                        }
                        None => prop_assert!(!it.valid()),
                    }
                    let newest = expected
                        .map(|i| &model[i])
                        .filter(|(ikey, _)| key::user_key(ikey) == &user_key[..]);
                    let want = newest.map(|(ikey, value)| {
                        let parsed = key::ParsedKey::parse(ikey).unwrap();
                        match parsed.value_kind().unwrap() {
                            ValueKind::Put => MemLookup::Value(Bytes::from(value.clone()), parsed.seq),
                            _ => MemLookup::Deleted(parsed.seq),
                        }
                    });
                    prop_assert_eq!(mem.get(user_key, seq), want, "key {} at {}", k, seq);
                }
            }
            // A seek to a key shorter than a trailer compares as the whole user key.
            it.seek(b"k");
            let expected = model.iter().position(|(ikey, _)| compare_internal_keys(ikey, b"k") != Ordering::Less);
            prop_assert_eq!(it.valid(), expected.is_some());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 1 } else { 128 }))]

        /// Keys are ordered only at an ordered access (list.rs): iterations and seeks
        /// between writes, each of which orders the keys new since the one before,
        /// still see exactly the entries written so far, in order.
        #[test]
        fn ordered_accesses_between_writes_see_every_entry_so_far(
            writes in proptest::collection::vec(write(), 1..if cfg!(miri) { 20 } else { 60 }),
            every in 1..8usize,
            seek_key in 0..keys().len(),
        ) {
            let mem = Arc::new(Memtable::sized(1 << 16));
            let keys = keys();
            for (i, w) in writes.iter().enumerate() {
                mem.add(w.seq, w.kind, &keys[w.key], &value_of(w));
                if i % every != 0 {
                    continue;
                }
                let model = model(&writes[..=i]);
                let mut it = mem.iter();
                if i % 2 == 0 {
                    it.seek_to_first();
                    prop_assert_eq!(&collect(&mut it), &model, "after write {}", i);
                } else {
                    let target = key::lookup_key(&keys[seek_key], key::MAX_SEQUENCE);
                    it.seek(&target);
                    let from = model
                        .iter()
                        .position(|(ikey, _)| compare_internal_keys(ikey, &target) != Ordering::Less)
                        .unwrap_or(model.len());
                    prop_assert_eq!(&collect(&mut it), &model[from..].to_vec(), "after write {}", i);
                }
            }
        }
    }

    #[test]
    fn absent_keys_are_not_found_and_present_ones_are_in_a_full_index() {
        let mem = Memtable::sized(1 << 16);
        let n = if cfg!(miri) { 200 } else { 5000 };
        for i in 0..n as u32 {
            mem.add(
                u64::from(i) + 1,
                ValueKind::Put,
                &i.to_be_bytes(),
                &i.to_le_bytes(),
            );
        }
        for i in 0..n as u32 {
            assert_eq!(
                mem.get(&i.to_be_bytes(), key::MAX_SEQUENCE),
                Some(MemLookup::Value(
                    Bytes::copy_from_slice(&i.to_le_bytes()),
                    u64::from(i) + 1
                )),
                "key {i}"
            );
            assert_eq!(
                mem.get(&i.to_be_bytes(), u64::from(i)),
                None,
                "key {i} before its write"
            );
        }
        assert!((n as u32..2 * n as u32)
            .all(|i| mem.get(&i.to_be_bytes(), key::MAX_SEQUENCE).is_none()));
    }

    #[test]
    fn a_large_value_is_shared_by_reads_and_a_small_one_copied() {
        let mem = Memtable::sized(1 << 16);
        let large = vec![7u8; 4096];
        mem.add(1, ValueKind::Put, b"large", &large);
        mem.add(2, ValueKind::Put, b"small", b"abc");
        let value = |k: &[u8]| match mem.get(k, 10) {
            Some(MemLookup::Value(v, _)) => v,
            other => panic!("{other:?}"),
        };
        let (a, b) = (value(b"large"), value(b"large"));
        assert_eq!(&a[..], &large[..]);
        assert_eq!(a.as_ptr(), b.as_ptr(), "one shared buffer");
        let (c, d) = (value(b"small"), value(b"small"));
        assert_eq!(&c[..], b"abc");
        assert_ne!(c.as_ptr(), d.as_ptr(), "copied out of the arena");
    }

    /// One writer inserts versions with ascending sequence numbers and publishes each
    /// after inserting it, as the engine does; readers at the published sequence must
    /// always see the newest version at or below it, and iterators a complete, ordered
    /// prefix of the history. With few keys most writes add a version to a known key;
    /// with many, new keys keep coming while iterators order them.
    #[test]
    fn readers_see_complete_entries_while_one_writer_inserts() {
        readers_see_complete_entries_while_one_writer_inserts_over(37, 64);
    }

    #[test]
    fn readers_see_complete_entries_while_one_writer_inserts_new_keys() {
        // Iterating often, three readers keep arriving while another links.
        readers_see_complete_entries_while_one_writer_inserts_over(
            if cfg!(miri) { 211 } else { 40_009 },
            2,
        );
    }

    /// Readers iterate the whole memtable every `iterate_every` rounds.
    fn readers_see_complete_entries_while_one_writer_inserts_over(keys: u64, iterate_every: u64) {
        let writes: u64 = if cfg!(miri) { 300 } else { 60_000 };
        let mem = Arc::new(Memtable::sized(1 << 12));
        let published = Arc::new(AtomicU64::new(0));
        let key_of = move |seq: u64| format!("key{:05}", seq % keys).into_bytes();
        let value_len = |seq: u64| {
            if seq.is_multiple_of(11) {
                2000
            } else {
                (seq % 40) as usize
            }
        };
        let writer = {
            let (mem, published) = (mem.clone(), published.clone());
            std::thread::spawn(move || {
                for seq in 1..=writes {
                    let value = vec![(seq % 256) as u8; value_len(seq)];
                    mem.add(seq, ValueKind::Put, &key_of(seq), &value);
                    published.store(seq, AtomicOrdering::Release);
                }
            })
        };
        let readers: Vec<_> = (0..3)
            .map(|r| {
                let (mem, published) = (mem.clone(), published.clone());
                std::thread::spawn(move || {
                    let mut rounds = 0u64;
                    loop {
                        let visible = published.load(AtomicOrdering::Acquire);
                        let k = (rounds * 7 + r) % keys;
                        // The newest write of key k at or below `visible`.
                        let want = (visible >= k)
                            .then(|| visible - (visible - k) % keys)
                            .filter(|s| *s > 0);
                        match (mem.get(&key_of(k), visible), want) {
                            (None, None) => {}
                            (Some(MemLookup::Value(v, seq)), Some(w)) => {
                                assert_eq!(seq, w, "key {k} at {visible}");
                                assert_eq!(v.len(), value_len(w));
                                assert!(v.iter().all(|b| *b == (w % 256) as u8));
                            }
                            (got, want) => panic!("key {k} at {visible}: {got:?}, want {want:?}"),
                        }
                        if rounds.is_multiple_of(iterate_every) {
                            let mut it = mem.iter();
                            it.seek_to_first();
                            let (mut prev, mut seen) = (Vec::new(), 0u64);
                            while it.valid() {
                                let key = it.key().to_vec();
                                assert_eq!(compare_internal_keys(&prev, &key), Ordering::Less);
                                let parsed = key::ParsedKey::parse(&key).unwrap();
                                assert_eq!(it.value().len(), value_len(parsed.seq));
                                if parsed.seq <= visible {
                                    seen += 1;
                                }
                                prev = key;
                                it.next();
                            }
                            assert_eq!(seen, visible, "entries at or below {visible}");
                        }
                        rounds += 1;
                        if visible == writes {
                            return;
                        }
                    }
                })
            })
            .collect();
        writer.join().unwrap();
        for r in readers {
            r.join().unwrap();
        }
        assert_eq!(mem.len() as u64, writes);
    }
}

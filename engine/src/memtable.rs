//! The memtable: a concurrent skiplist (crossbeam-skiplist) of internal keys.
//!
//! Entries are never removed; a full memtable is frozen (made immutable) and flushed to
//! an L0 table. Keys and values are `Bytes`, so iterators clone entries by reference
//! count instead of copying them. A whole-key bloom filter beside the skiplist
//! (memtable_filter.rs) answers most lookups of keys it does not hold without a search.

use crate::error::Result;
use crate::iter::InternalIterator;
use crate::key::{self, compare_internal_keys, ParsedKey, SeqNo, ValueKind};
use crate::memtable_filter::MemtableFilter;
use bytes::Bytes;
use crossbeam_skiplist::map::Entry;
use crossbeam_skiplist::SkipMap;
use std::cmp::Ordering;
use std::ops::Bound;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::Arc;

/// Per-entry bookkeeping counted against the memtable size (skiplist node, two `Bytes`).
const ENTRY_OVERHEAD: usize = 96;

/// Internal keys up to this length live inside the skiplist node itself, sparing a
/// search the cache miss of following a pointer at every comparison, and an insert or a
/// lookup the allocation of a heap key. 46 makes a `MemKey` 48 bytes: server keys carry
/// 19 bytes of prefix and trailer (keyspace, slot, namespace, hash, sequence), so this
/// holds Redis keys up to 27 bytes, redis-benchmark's `key:` (16) and `counter:` (20)
/// among them. At 30 (a `MemKey` the size of `Bytes`) only Redis keys up to 11 bytes fit.
const INLINE_KEY: usize = 46;

/// An internal key ordered by [`compare_internal_keys`], stored inline when short.
#[derive(Debug, Clone)]
enum MemKey {
    Inline { len: u8, bytes: [u8; INLINE_KEY] },
    Heap(Bytes),
}

impl MemKey {
    fn new(key: &[u8]) -> MemKey {
        if key.len() <= INLINE_KEY {
            let mut bytes = [0u8; INLINE_KEY];
            bytes[..key.len()].copy_from_slice(key);
            MemKey::Inline {
                len: key.len() as u8,
                bytes,
            }
        } else {
            MemKey::Heap(Bytes::copy_from_slice(key))
        }
    }

    /// The internal key of `user_key` at `seq` with `kind`, built in place: no
    /// allocation when it fits inline, one (the key itself) otherwise.
    fn internal(user_key: &[u8], seq: SeqNo, kind: u8) -> MemKey {
        let len = user_key.len() + key::TRAILER_LEN;
        if len <= INLINE_KEY {
            let mut bytes = [0u8; INLINE_KEY];
            bytes[..user_key.len()].copy_from_slice(user_key);
            bytes[user_key.len()..len].copy_from_slice(&key::pack_trailer(seq, kind).to_le_bytes());
            MemKey::Inline {
                len: len as u8,
                bytes,
            }
        } else {
            let mut ik = Vec::with_capacity(len);
            key::append_internal_key(&mut ik, user_key, seq, kind);
            MemKey::Heap(Bytes::from(ik))
        }
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            MemKey::Inline { len, bytes } => &bytes[..*len as usize],
            MemKey::Heap(b) => b,
        }
    }
}

impl PartialEq for MemKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for MemKey {}
impl PartialOrd for MemKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for MemKey {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_internal_keys(self.as_slice(), other.as_slice())
    }
}

/// What the memtable knows about a user key at a sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemLookup {
    /// The newest visible version is a value.
    Value(Bytes, SeqNo),
    /// The newest visible version is a tombstone.
    Deleted(SeqNo),
}

/// A sorted, concurrent, append-only table of recent writes.
#[derive(Debug)]
pub struct Memtable {
    map: SkipMap<MemKey, Bytes>,
    filter: MemtableFilter,
    bytes: AtomicUsize,
}

impl Default for Memtable {
    fn default() -> Self {
        Self::new()
    }
}

impl Memtable {
    /// An empty memtable with a filter planned for the default memtable size.
    pub fn new() -> Self {
        Self::sized(crate::constants::MEMTABLE_SIZE)
    }

    /// An empty memtable to be flushed at about `memtable_bytes` (its filter's plan).
    pub fn sized(memtable_bytes: usize) -> Self {
        Memtable {
            map: SkipMap::new(),
            filter: MemtableFilter::for_memtable_bytes(memtable_bytes),
            bytes: AtomicUsize::new(0),
        }
    }

    /// Inserts one entry. `user_key` already carries its keyspace prefix.
    pub fn add(&self, seq: SeqNo, kind: ValueKind, user_key: &[u8], value: &[u8]) {
        let size = user_key.len() + key::TRAILER_LEN + value.len() + ENTRY_OVERHEAD;
        // Before the insert: whoever can see the entry sees its filter bits.
        self.filter.add(user_key);
        self.map.insert(
            MemKey::internal(user_key, seq, kind as u8),
            Bytes::copy_from_slice(value),
        );
        self.bytes.fetch_add(size, AtomicOrdering::Relaxed);
    }

    /// The newest version of `user_key` with sequence <= `seq`.
    pub fn get(&self, user_key: &[u8], seq: SeqNo) -> Option<MemLookup> {
        if !self.filter.may_contain(user_key) {
            return None;
        }
        let target = MemKey::internal(user_key, seq, key::KIND_FOR_SEEK);
        let entry = self.map.lower_bound(Bound::Included(&target))?;
        let parsed = ParsedKey::parse(entry.key().as_slice())?;
        if parsed.user_key != user_key {
            return None;
        }
        match parsed.value_kind()? {
            ValueKind::Put => Some(MemLookup::Value(entry.value().clone(), parsed.seq)),
            ValueKind::Delete | ValueKind::RangeDelete => Some(MemLookup::Deleted(parsed.seq)),
        }
    }

    /// Approximate memory used by entries, for the flush trigger and stats (the
    /// filter's fixed size, about 1% of the planned size, is not counted: see
    /// [`Memtable::filter_bytes`]).
    pub fn approximate_bytes(&self) -> usize {
        self.bytes.load(AtomicOrdering::Relaxed)
    }

    /// Memory held by the whole-key filter.
    pub fn filter_bytes(&self) -> usize {
        self.filter.bytes()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True if nothing was written.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// A cursor over the memtable (holding it alive).
    pub fn iter(self: &Arc<Self>) -> MemtableIterator {
        MemtableIterator {
            current: None,
            mem: self.clone(),
        }
    }
}

/// An [`InternalIterator`] over a memtable. It holds a skiplist entry, so `next` is a
/// step along the bottom level rather than a fresh search.
pub struct MemtableIterator {
    // Declared before `mem` so it is dropped first: it borrows the map `mem` owns.
    current: Option<Entry<'static, MemKey, Bytes>>,
    mem: Arc<Memtable>,
}

impl MemtableIterator {
    fn map(&self) -> &'static SkipMap<MemKey, Bytes> {
        // SAFETY: the map lives inside `self.mem`, an Arc this iterator owns and never
        // replaces, so it outlives every entry stored in `self.current` (dropped first).
        unsafe { &*(&self.mem.map as *const SkipMap<MemKey, Bytes>) }
    }
}

impl InternalIterator for MemtableIterator {
    fn valid(&self) -> bool {
        self.current.is_some()
    }

    fn seek_to_first(&mut self) {
        self.current = self.map().front();
    }

    fn seek(&mut self, target: &[u8]) {
        let target = MemKey::new(target);
        self.current = self.map().lower_bound(Bound::Included(&target));
    }

    fn next(&mut self) {
        if let Some(e) = self.current.as_mut() {
            if !e.move_next() {
                self.current = None;
            }
        }
    }

    fn key(&self) -> &[u8] {
        self.current
            .as_ref()
            .map(|e| e.key().as_slice())
            .unwrap_or(&[])
    }

    fn value(&self) -> &[u8] {
        self.current.as_ref().map(|e| &e.value()[..]).unwrap_or(&[])
    }

    fn status(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Debug, Clone)]
    enum Op {
        Put(u8, u8),
        Del(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..32, any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
            (0u8..32).prop_map(Op::Del),
        ]
    }

    /// Keys on both sides of the inline limit are built the same way in place as from a
    /// whole internal key, and are found, ordered and shadowed alike.
    #[test]
    fn keys_around_the_inline_limit() {
        let mem = Arc::new(Memtable::new());
        let lens = (INLINE_KEY - key::TRAILER_LEN - 2)..=(INLINE_KEY - key::TRAILER_LEN + 2);
        for len in lens.clone() {
            let user_key = vec![b'k'; len];
            for kind in [ValueKind::Put as u8, key::KIND_FOR_SEEK] {
                let built = MemKey::internal(&user_key, 7, kind);
                let whole = MemKey::new(
                    &[&user_key[..], &key::pack_trailer(7, kind).to_le_bytes()].concat(),
                );
                assert_eq!(built.as_slice(), whole.as_slice(), "len {len}");
                assert_eq!(
                    matches!(built, MemKey::Inline { .. }),
                    len + key::TRAILER_LEN <= INLINE_KEY
                );
            }
            mem.add(1, ValueKind::Put, &user_key, b"old");
            mem.add(2, ValueKind::Put, &user_key, b"new");
        }
        for len in lens {
            let user_key = vec![b'k'; len];
            assert_eq!(
                mem.get(&user_key, 1),
                Some(MemLookup::Value(Bytes::from_static(b"old"), 1))
            );
            assert_eq!(
                mem.get(&user_key, 5),
                Some(MemLookup::Value(Bytes::from_static(b"new"), 2))
            );
            assert_eq!(mem.get(&user_key, 0), None);
            assert_eq!(
                mem.get(&user_key[1..], 5).is_some(),
                len > INLINE_KEY - key::TRAILER_LEN - 2
            );
        }
    }

    #[test]
    fn the_filter_skips_absent_keys_and_never_hides_one() {
        let mem = Memtable::sized(1 << 20);
        for i in 0..1000u32 {
            mem.add(u64::from(i) + 1, ValueKind::Put, &i.to_be_bytes(), b"v");
        }
        for i in 0..1000u32 {
            assert!(
                mem.get(&i.to_be_bytes(), u64::MAX >> 8).is_some(),
                "key {i}"
            );
        }
        let passed = (1000..101_000u32)
            .filter(|i| mem.filter.may_contain(&i.to_be_bytes()))
            .count();
        assert!(
            passed < 100,
            "{passed} of 100000 absent keys passed the filter"
        );
        assert!((1000..101_000u32).all(|i| mem.get(&i.to_be_bytes(), u64::MAX >> 8).is_none()));
    }

    proptest! {
        /// Every get at every sequence agrees with a model of the history, and iteration
        /// yields entries in internal-key order.
        #[test]
        fn memtable_matches_history_model(
            ops in proptest::collection::vec(op(), 1..200),
            tiny_filter in any::<bool>(),
        ) {
            // A tiny filter (one block) fills up and answers "maybe" for most absent
            // keys: lookups must still be right, found or not.
            let mem = Arc::new(if tiny_filter { Memtable::sized(0) } else { Memtable::new() });
            let mut history: Vec<BTreeMap<u8, Option<u8>>> = vec![BTreeMap::new()];
            for (i, op) in ops.iter().enumerate() {
                let seq = i as u64 + 1;
                let mut state = history[i].clone();
                match *op {
                    Op::Put(k, v) => { mem.add(seq, ValueKind::Put, &[k], &[v]); state.insert(k, Some(v)); }
                    Op::Del(k) => { mem.add(seq, ValueKind::Delete, &[k], &[]); state.insert(k, None); }
                }
                history.push(state);
            }
            for (seq, state) in history.iter().enumerate() {
                for k in 0u8..32 {
                    let got = match mem.get(&[k], seq as u64) {
                        None | Some(MemLookup::Deleted(_)) => None,
                        Some(MemLookup::Value(v, _)) => Some(v[0]),
                    };
                    prop_assert_eq!(got, state.get(&k).copied().flatten());
                }
            }
            let mut it = mem.iter();
            it.seek_to_first();
            let mut n = 0;
            let mut prev: Option<Vec<u8>> = None;
            while it.valid() {
                if let Some(p) = &prev {
                    prop_assert_eq!(compare_internal_keys(p, it.key()), Ordering::Less);
                }
                prev = Some(it.key().to_vec());
                n += 1;
                it.next();
            }
            prop_assert_eq!(n, ops.len());
        }
    }
}

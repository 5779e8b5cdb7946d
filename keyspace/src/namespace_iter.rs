//! Listing one namespace (one logical database) of the slot-first data layout.
//!
//! A namespace is not one contiguous engine range: its keys are spread over up to 16384
//! `(slot, namespace)` ranges. Seeking each slot in turn would cost 16384 seeks even for
//! an empty database, so the walk reads the engine forwards and only seeks when the key
//! it lands on belongs to another namespace: a lower one in some slot means "jump to our
//! namespace in that slot", a higher one means "jump to the next slot".
//!
//! Cost bound: every key yielded costs one step and no seek; every key of another
//! namespace that is met costs one seek, and at most two are met per slot (one below and
//! one above ours), so a full walk costs at most `keys yielded + 2 * min(16384, non-empty
//! slots)` seeks, and a store holding only this namespace costs no extra seek at all.
//!
//! A walk that must answer quickly (a SCAN page, an expiry sweep cycle) also gets a seek
//! budget: when it is spent, the walk ends early at the slot it was about to seek, and
//! [`NamespaceIter::stopped_at`] says where to resume. Every key of the namespace before
//! that position has been yielded, so resuming there misses nothing.

use crate::data_key::{slot_ns_of, ScanPosition};
use crate::slot::SLOTS;
use kv_engine::{Db, DbIterator, IterEntry, Keyspace, Snapshot};
use std::cmp::Ordering;

/// Engine entries of one namespace in (slot, key-hash, key) order.
pub struct NamespaceIter {
    inner: DbIterator,
    ns: u32,
    done: bool,
    seeks: u64,
    seek_budget: u64,
    stopped_at: Option<ScanPosition>,
}

impl NamespaceIter {
    /// The entries of namespace `ns` in the engine keyspace `data`, from position `from`
    /// (inclusive), at `snapshot` (or now).
    pub fn new(
        db: &Db,
        data: Keyspace,
        ns: u32,
        from: ScanPosition,
        snapshot: Option<&Snapshot>,
    ) -> kv_engine::Result<NamespaceIter> {
        let start = from.seek_key(ns);
        Ok(NamespaceIter {
            inner: db.iter(data, Some(&start), None, snapshot)?,
            ns,
            done: false,
            seeks: 0,
            seek_budget: u64::MAX,
            stopped_at: None,
        })
    }

    /// Ends the walk early (see [`Self::stopped_at`]) rather than seek more than `seeks`
    /// times past other namespaces' keys.
    pub fn with_seek_budget(mut self, seeks: u64) -> NamespaceIter {
        self.seek_budget = seeks;
        self
    }

    /// Where the walk ended because its seek budget was spent (`None`: it has not, or it
    /// reached the end of the namespace). Later than every position yielded.
    pub fn stopped_at(&self) -> Option<ScanPosition> {
        self.stopped_at
    }

    /// Seeks made so far past other namespaces' keys (the cost bound above; for tests).
    pub fn seeks(&self) -> u64 {
        self.seeks
    }

    /// Seeks the first key of the namespace in `slot`, unless the budget is spent.
    fn seek_slot(&mut self, slot: u16) {
        let target = ScanPosition { slot, hash: 0 };
        if self.seeks >= self.seek_budget {
            self.stopped_at = Some(target);
            self.done = true;
            return;
        }
        self.seeks += 1;
        self.inner.seek(&target.seek_key(self.ns));
    }
}

impl Iterator for NamespaceIter {
    type Item = kv_engine::Result<IterEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let entry = match self.inner.next()? {
                Ok(e) => e,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            // Keys too short to be data keys are not kvd's: skip them.
            let Some((slot, ns)) = slot_ns_of(&entry.key) else {
                continue;
            };
            match ns.cmp(&self.ns) {
                Ordering::Equal => return Some(Ok(entry)),
                Ordering::Less => self.seek_slot(slot),
                Ordering::Greater => match slot.checked_add(1).filter(|&s| s < SLOTS) {
                    Some(next) => self.seek_slot(next),
                    None => self.done = true,
                },
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data_key::{data_key, split_data_key};
    use proptest::prelude::*;

    fn open() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), kv_engine::Options::default()).unwrap();
        (dir, db)
    }

    fn keys_of(it: &mut NamespaceIter) -> Vec<Vec<u8>> {
        it.map(|e| split_data_key(&e.unwrap().key).unwrap().key.to_vec())
            .collect()
    }

    #[test]
    fn a_store_of_one_namespace_costs_no_extra_seek() {
        let (_dir, db) = open();
        for i in 0..2000u32 {
            db.put(Keyspace::DEFAULT, &data_key(0, &i.to_be_bytes()), b"v")
                .unwrap();
        }
        let mut it =
            NamespaceIter::new(&db, Keyspace::DEFAULT, 0, ScanPosition::START, None).unwrap();
        assert_eq!(it.by_ref().count(), 2000);
        assert_eq!(it.seeks(), 0);
        let mut empty =
            NamespaceIter::new(&db, Keyspace::DEFAULT, 1, ScanPosition::START, None).unwrap();
        assert_eq!(keys_of(&mut empty), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn a_spent_seek_budget_ends_the_walk_where_it_can_resume() {
        let (_dir, db) = open();
        // Namespace 0 fills many slots; namespace 1 has keys in a few of them.
        for i in 0..3000u32 {
            db.put(Keyspace::DEFAULT, &data_key(0, &i.to_be_bytes()), b"v")
                .unwrap();
        }
        let ours: Vec<Vec<u8>> = (0..40u32)
            .map(|i| format!("ours:{i}").into_bytes())
            .collect();
        for k in &ours {
            db.put(Keyspace::DEFAULT, &data_key(1, k), b"v").unwrap();
        }
        let mut from = ScanPosition::START;
        let mut got = Vec::new();
        let mut pages = 0;
        loop {
            let mut it = NamespaceIter::new(&db, Keyspace::DEFAULT, 1, from, None)
                .unwrap()
                .with_seek_budget(5);
            let page = keys_of(&mut it);
            assert!(it.seeks() <= 5);
            if let (Some(stop), Some(last)) = (it.stopped_at(), page.last()) {
                assert!(ScanPosition::of_key(last) < stop);
            }
            got.extend(page);
            pages += 1;
            match it.stopped_at() {
                Some(stop) => {
                    assert!(stop > from, "progress");
                    from = stop;
                }
                None => break,
            }
        }
        assert!(pages > 1, "the budget did stop walks");
        let mut want = ours.clone();
        want.sort_by_key(|k| (ScanPosition::of_key(k), k.clone()));
        assert_eq!(got, want);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// The walk yields exactly the keys of its namespace at or after its start, in
        /// position order, within the seek bound, whatever other namespaces hold.
        #[test]
        fn the_walk_yields_exactly_one_namespace(
            keys in proptest::collection::btree_set((0u32..4, proptest::collection::vec(any::<u8>(), 0..6)), 0..200),
            ns in 0u32..4,
            from_slot in 0u16..SLOTS,
        ) {
            let (_dir, db) = open();
            for (n, k) in &keys {
                db.put(Keyspace::DEFAULT, &data_key(*n, k), b"v").unwrap();
            }
            let from = ScanPosition { slot: from_slot, hash: 0 };
            let mut want: Vec<(ScanPosition, Vec<u8>)> = keys
                .iter()
                .filter(|(n, k)| *n == ns && ScanPosition::of_key(k) >= from)
                .map(|(_, k)| (ScanPosition::of_key(k), k.clone()))
                .collect();
            want.sort();
            let mut it = NamespaceIter::new(&db, Keyspace::DEFAULT, ns, from, None).unwrap();
            let got = keys_of(&mut NamespaceIter::new(&db, Keyspace::DEFAULT, ns, from, None).unwrap());
            prop_assert_eq!(got, want.iter().map(|(_, k)| k.clone()).collect::<Vec<_>>());
            let slots: std::collections::HashSet<u16> =
                keys.iter().map(|(_, k)| crate::key_slot(k)).collect();
            let yielded = it.by_ref().count() as u64;
            prop_assert!(it.seeks() <= yielded + 2 * slots.len() as u64);
        }
    }
}

//! Leaves written in the same engine batch as the records they describe, and leaves put
//! right under the keys' stripe locks (folding, rebuilding, damage).
//!
//! A leaf is a pure function of its key's record (`item_hash`), so a writer that already
//! holds the record it writes needs neither a read of the tree nor a to-do to be folded
//! later: it puts the leaf beside the record, and the crash safety of Garage's to-do
//! design (the tree's change is durable with the data's) comes from the batch being
//! atomic. Only the bucket hashes, which cover many keys, are left for later: the
//! writer marks the bucket dirty once its batch is written (merkle/dirty.rs), and the
//! next query rehashes it.
//!
//! What keeps a leaf equal to its record is the key's stripe lock
//! (replica_store/stripes.rs): every writer holds it from before it reads the record
//! until its batch is written, and so does everything else that sets a leaf from a
//! record it read (the fold of to-dos, the rebuild, a damaged leaf's repair). Without
//! it, a rebuild that read a record just before a write could put the older leaf back
//! over the newer one, and nothing would correct it until the next rebuild.

use super::hash::item_hash;
use super::{layout, Merkle};
use crate::replica_api::{Hash16, ItemKey};
use crate::replica_store::StoreError;
use crate::Record;
use kv_engine::WriteBatch;

/// A leaf key and the leaf it should hold (`None`: no leaf).
pub(super) type LeafFix = (Vec<u8>, Option<Hash16>);

/// The leaf changes of one engine batch being built. Dropping it marks their buckets
/// dirty: drop it after the batch is written (a batch that failed marks them for
/// nothing, which only costs a rehash).
pub struct LeafWrites<'a> {
    merkle: &'a Merkle,
    places: Vec<(u16, u8)>,
}

impl Merkle {
    /// Starts the leaf changes of a batch. Only for a writer that holds the stripe lock
    /// of every key it sets, from before it read the key's record until the batch is
    /// written and this is dropped.
    pub fn begin_leaves(&self) -> LeafWrites<'_> {
        LeafWrites {
            merkle: self,
            places: Vec::new(),
        }
    }

    /// Puts into `batch` the leaf each of `keys` should have by its record as stored now,
    /// for those whose stored leaf differs; returns their places (partition, bucket),
    /// to mark dirty once `batch` is written. The caller holds the keys' stripes until
    /// then.
    pub(super) fn correct_leaves<'k>(
        &self,
        batch: &mut WriteBatch,
        keys: impl Iterator<Item = &'k ItemKey>,
    ) -> Result<Vec<(u16, u8)>, StoreError> {
        let mut places = Vec::new();
        for key in keys {
            if let Some((leaf, expected)) = self.wrong_leaf(key)? {
                match expected {
                    Some(hash) => batch.put(self.tree, &leaf, &hash),
                    None => batch.delete(self.tree, &leaf),
                };
                places.push(layout::leaf_place(key));
            }
        }
        Ok(places)
    }

    /// `key`'s leaf key and the leaf its record says it should have (`None`: no leaf),
    /// if the stored leaf differs; `None` if it is right.
    pub(super) fn wrong_leaf(&self, key: &ItemKey) -> Result<Option<LeafFix>, StoreError> {
        let expected = self.expected_leaf(key)?;
        let leaf = layout::leaf_key(key);
        let held = self.db.get(self.tree, &leaf)?.map(|v| v.value);
        let right = held.as_deref() == expected.as_ref().map(|h| &h[..]);
        Ok((!right).then_some((leaf, expected)))
    }

    /// Sets the leaves of `keys` to what their records say, under their stripe locks,
    /// in one batch; returns how many differed.
    pub(super) fn fix_leaves(&self, keys: &[ItemKey]) -> Result<usize, StoreError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let _guards = self.stripes.lock(keys.iter());
        let mut batch = WriteBatch::new();
        let places = self.correct_leaves(&mut batch, keys.iter())?;
        if !batch.is_empty() {
            self.db.write(batch)?;
        }
        self.mark_dirty(&places);
        Ok(places.len())
    }

    pub(super) fn mark_dirty(&self, places: &[(u16, u8)]) {
        for &(partition, bucket) in places {
            self.dirty.mark(partition, bucket);
        }
    }
}

impl LeafWrites<'_> {
    /// Puts `key`'s leaf for `record` into `batch` (`None`: the key's record is being
    /// deleted, and its leaf with it).
    pub fn set(&mut self, batch: &mut WriteBatch, key: &ItemKey, record: Option<&Record>) {
        self.set_at(batch, layout::leaf_place(key), key, record);
    }

    /// [`LeafWrites::set`] for a caller that knows the key's `place` already
    /// (`layout::leaf_place_in` its data key).
    pub fn set_at(
        &mut self,
        batch: &mut WriteBatch,
        place: (u16, u8),
        key: &ItemKey,
        record: Option<&Record>,
    ) {
        let leaf = layout::leaf_key_at(place, key);
        match record {
            Some(r) => batch.put(self.merkle.tree, &leaf, &item_hash(key, r)),
            None => batch.delete(self.merkle.tree, &leaf),
        };
        self.places.push(place);
    }
}

impl Drop for LeafWrites<'_> {
    fn drop(&mut self) {
        self.merkle.mark_dirty(&self.places);
    }
}

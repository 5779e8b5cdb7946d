//! Dropping collected tombstones (tombstone GC, docs/cluster.md "Tombstone collection").
//! A purge is an engine delete of the record and of its Merkle leaf in the same batch,
//! the path every write takes, so the partition's tree loses the key's leaf exactly as
//! it would gain one on a write.

use super::records::read_record;
use super::{ReplicaStore, StoreError};
use crate::replica_api::ItemKey;
use crate::{Body, Version};
use kv_engine::WriteBatch;

impl ReplicaStore {
    /// Deletes each `(key, version)` whose held record is still the tombstone of exactly
    /// that version ("delete if equal", as Garage's GC does): a write that replaced it
    /// since the caller looked is kept. Returns how many were deleted. One engine batch.
    pub fn purge_tombstones(&self, items: &[(ItemKey, Version)]) -> Result<usize, StoreError> {
        // The same stripes as apply(): no write of these keys can slip between the
        // check and the delete.
        let _guards = self.stripes.lock(items.iter().map(|(k, _)| k));
        let mut batch = WriteBatch::new();
        let mut leaves = self.merkle.begin_leaves();
        let mut purged = 0;
        for (key, version) in items {
            let held = read_record(&self.db, self.data, key)?;
            let unchanged =
                held.is_some_and(|r| r.version == *version && matches!(r.body, Body::Tombstone));
            if unchanged {
                self.delete_keyed(&mut batch, &mut leaves, key);
                purged += 1;
            }
        }
        if !batch.is_empty() {
            self.db.write(batch)?;
        }
        Ok(purged)
    }
}

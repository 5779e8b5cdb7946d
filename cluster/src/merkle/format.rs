//! The tree format record (`V`): how this store's bucket hashes are computed.

use super::{layout, Merkle};
use crate::replica_store::StoreError;
use kv_engine::WriteBatch;
use kv_keyspace::slot::PARTITIONS;

impl Merkle {
    /// Brings the stored trees to this build's format before anything folds: trees of
    /// format 1 (no `V` record; buckets hashed the concatenated leaves, which are the
    /// same in both formats) get every bucket rehashed from its leaves, then the record;
    /// a crash before the record is written does it all again. A newer format is
    /// refused rather than folded into.
    pub(super) fn upgrade_format(&self) -> Result<(), StoreError> {
        match self.db.get(self.tree, layout::FORMAT_KEY)? {
            Some(stored) if stored.value[..] == [layout::TREE_FORMAT] => return Ok(()),
            Some(stored) => {
                let found = match stored.value[..] {
                    [format] => format.to_string(),
                    _ => format!("{:?}", stored.value),
                };
                return Err(StoreError::Invalid(format!(
                    "Merkle tree format {found} is not supported (this kvd reads format {}; was it written by a newer kvd?)",
                    layout::TREE_FORMAT
                )));
            }
            None => {}
        }
        let any_bucket = self
            .db
            .iter_prefix(self.tree, &layout::bucket_prefix_all(), None)?
            .next()
            .is_some();
        if any_bucket {
            for partition in 0..PARTITIONS {
                self.rehash_buckets(partition)?;
            }
        }
        let mut batch = WriteBatch::new();
        batch.put(self.tree, layout::FORMAT_KEY, &[layout::TREE_FORMAT]);
        self.db.write(batch)?;
        Ok(())
    }
}

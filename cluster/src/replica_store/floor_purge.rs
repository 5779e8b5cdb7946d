//! Deleting a flushed database's records below its floor, in the background (docs/
//! cluster.md, "Flushing a database"). Reads and writes already treat them as gone;
//! this reclaims the space and takes their leaves out of the Merkle trees, so replicas
//! that flushed have equal roots again. Each deletion takes the key's Merkle leaf with it,
//! in the same batch, under the key's stripe: a write newer than the floor that lands
//! meanwhile is never deleted.

use super::records::read_record;
use super::{scan, ReplicaStore, StoreError};
use crate::replica_api::ItemKey;
use crate::Version;
use kv_engine::WriteBatch;
use kv_keyspace::data_key::ScanPosition;
use kv_keyspace::slot::{PARTITIONS, SLOTS_PER_PARTITION};

/// Records looked at per step: bounds the memory and the time stripes are held.
const PURGE_PAGE: usize = 1024;

impl ReplicaStore {
    /// Deletes every record of database `db` whose version is below `floor`; returns
    /// how many. Blocks on the engine.
    pub fn purge_below(&self, db: u32, floor: Version) -> Result<u64, StoreError> {
        let mut deleted = 0;
        for partition in 0..PARTITIONS {
            let mut from = ScanPosition {
                slot: partition * SLOTS_PER_PARTITION,
                hash: 0,
            };
            loop {
                let page = scan::scan_page(&self.db, self.data, partition, db, from, PURGE_PAGE)?;
                let below: Vec<ItemKey> = page
                    .items
                    .iter()
                    .filter(|(_, r)| r.version < floor)
                    .map(|(key, _)| ItemKey {
                        db,
                        key: key.clone(),
                    })
                    .collect();
                deleted += self.delete_if_below(&below, floor)?;
                match page.next {
                    Some(next) => from = next,
                    None => break,
                }
            }
        }
        Ok(deleted)
    }

    /// Deletes each of `keys` whose record is still below `floor`, with its Merkle leaf.
    fn delete_if_below(&self, keys: &[ItemKey], floor: Version) -> Result<u64, StoreError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let _guards = self.stripes.lock(keys.iter());
        let mut batch = WriteBatch::new();
        let mut leaves = self.merkle.begin_leaves();
        let mut deleted = 0;
        for key in keys {
            if read_record(&self.db, self.data, key)?.is_some_and(|r| r.version < floor) {
                self.delete_keyed(&mut batch, &mut leaves, key);
                deleted += 1;
            }
        }
        if !batch.is_empty() {
            self.db.write(batch)?;
        }
        Ok(deleted)
    }
}

//! The table cache: open [`Table`]s by file number, bounded in count (each holds a file
//! handle, its index and its filter), least recently used evicted first.

use super::cache::BlockCache;
use super::lru::Lru;
use super::reader::Table;
use super::SstCounters;
use crate::error::Result;
use crate::filename::table_path;
use crate::fs::Fs;
use parking_lot::Mutex;
use std::path::PathBuf;
use std::sync::Arc;

/// Open tables of one data directory.
pub struct TableCache {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    block_cache: Option<Arc<BlockCache>>,
    counters: Arc<SstCounters>,
    tables: Mutex<Lru<u64, Arc<Table>>>,
}

impl std::fmt::Debug for TableCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableCache")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl TableCache {
    /// A cache of at most `capacity` open tables from `dir`.
    pub fn new(
        fs: Arc<dyn Fs>,
        dir: PathBuf,
        capacity: usize,
        block_cache: Option<Arc<BlockCache>>,
        counters: Arc<SstCounters>,
    ) -> Self {
        TableCache {
            fs,
            dir,
            block_cache,
            counters,
            tables: Mutex::new(Lru::new(capacity)),
        }
    }

    /// The open table numbered `file_number`, opening it on a miss. The file is opened
    /// outside the lock; if two threads race, both open it and the last insert wins,
    /// which is harmless for immutable files.
    pub fn get(&self, file_number: u64) -> Result<Arc<Table>> {
        if let Some(t) = self.tables.lock().get(&file_number) {
            return Ok(t);
        }
        let path = table_path(&self.dir, file_number);
        let file = self.fs.open(&path)?;
        let table = Table::open(
            path,
            file,
            file_number,
            self.block_cache.clone(),
            self.counters.clone(),
        )?;
        self.tables.lock().insert(file_number, table.clone(), 1);
        Ok(table)
    }

    /// Forgets table `file_number` (after it is deleted). Iterators holding it keep it alive.
    pub fn evict(&self, file_number: u64) {
        self.tables.lock().remove(&file_number);
    }
}

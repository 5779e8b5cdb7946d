//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use kv_engine::fs::{Fs, MemFs};
use kv_engine::{Db, Keyspace, Options};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Options that make flushes and compactions happen after a few kilobytes.
pub fn tiny_options(fs: Arc<dyn Fs>) -> Options {
    Options {
        fs,
        memtable_size: 4 * 1024,
        block_size: 256,
        l0_compaction_trigger: 2,
        l0_slowdown_writes_trigger: 8,
        l0_stop_writes_trigger: 12,
        l1_max_bytes: 16 * 1024,
        target_file_size: 8 * 1024,
        block_cache_bytes: 64 * 1024,
        ..Options::default()
    }
}

pub fn mem_fs() -> (MemFs, Arc<dyn Fs>) {
    let fs = MemFs::new();
    let dynfs: Arc<dyn Fs> = Arc::new(fs.clone());
    (fs, dynfs)
}

pub fn dir() -> PathBuf {
    PathBuf::from("/db")
}

/// Every live key/value of a keyspace, by full iteration.
pub fn contents(db: &Db, ks: Keyspace) -> BTreeMap<Vec<u8>, Vec<u8>> {
    db.iter(ks, None, None, None)
        .expect("iter")
        .map(|e| {
            let e = e.expect("entry");
            (e.key.to_vec(), e.value.to_vec())
        })
        .collect()
}

pub fn files_in(fs: &dyn Fs, dir: &Path) -> Vec<String> {
    fs.list_dir(dir).unwrap_or_default()
}

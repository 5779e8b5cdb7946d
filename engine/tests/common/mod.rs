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

/// Keys and values, as a test expects to read them back.
pub type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// The state a crash leaves when memtable switches happened but no flush recorded its
/// table: the manifest still starts recovery at the first WAL, and each later WAL
/// holds one of `groups` (the first WAL holds `groups[0]`). Built from a real Db: a copy
/// of its files taken while only the first WAL existed, plus the bytes each later WAL
/// received afterwards. Returns the file system, the WALs' paths (oldest first) and
/// what each holds.
pub fn live_wals(
    options: impl Fn(&MemFs) -> Options,
    groups: &[&[(String, Vec<u8>)]],
) -> (MemFs, Vec<PathBuf>, Vec<Model>) {
    let fs = MemFs::new();
    let db = Db::open(dir(), options(&fs)).expect("open");
    let mut copy = None;
    let mut wals: Vec<PathBuf> = Vec::new();
    let mut models = Vec::new();
    // Read before the next flush deletes it.
    let mut later_bytes = Vec::new();
    for (i, group) in groups.iter().enumerate() {
        if i > 0 {
            db.flush().expect("flush");
        }
        let wal = newest_wal(&fs);
        assert!(
            wals.last().is_none_or(|w| &wal > w),
            "the flush switched WALs"
        );
        let mut model = Model::new();
        for (k, v) in group.iter() {
            db.put(Keyspace::DEFAULT, k.as_bytes(), v).expect("put");
            model.insert(k.clone().into_bytes(), v.clone());
        }
        models.push(model);
        if i == 0 {
            copy = Some(fs.deep_copy());
        } else {
            later_bytes.push(fs.read_all(&wal).expect("read WAL"));
        }
        wals.push(wal);
    }
    drop(db);
    let copy = copy.expect("at least one group");
    for (wal, bytes) in wals[1..].iter().zip(&later_bytes) {
        copy.write_all_synced(wal, bytes).expect("write WAL");
    }
    (copy, wals, models)
}

/// Numbers of the WALs in [`dir`], ascending.
pub fn wal_numbers(fs: &dyn Fs) -> Vec<u64> {
    let mut wals: Vec<u64> = files_in(fs, &dir())
        .iter()
        .filter_map(|n| match kv_engine::filename::parse(n) {
            Some(kv_engine::filename::FileKind::Wal(w)) => Some(w),
            _ => None,
        })
        .collect();
    wals.sort_unstable();
    wals
}

/// Path of the WAL with the highest number in [`dir`].
pub fn newest_wal(fs: &dyn Fs) -> PathBuf {
    let newest = wal_numbers(fs).pop().expect("a WAL");
    kv_engine::filename::wal_path(&dir(), newest)
}

/// `n` keys `{prefix}000`.. with `size`-byte values.
pub fn keys(prefix: &str, n: usize, size: usize) -> Vec<(String, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let k = format!("{prefix}{i:03}");
            let mut v = format!("value of {k} ").into_bytes();
            v.resize(size.max(v.len()), b'v');
            (k, v)
        })
        .collect()
}

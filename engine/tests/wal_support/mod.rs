//! Helpers shared by the `wal_*` test files.
#![allow(dead_code)]

use kv_engine::fs::{Fs, MemFs};
use kv_engine::wal::{read_all, LogWriter, ReadEnd};
use std::path::{Path, PathBuf};

/// Path of the log every test writes.
pub fn log_path() -> PathBuf {
    PathBuf::from("/db/000001.log")
}

/// A MemFs holding `/db`.
pub fn mem_fs() -> MemFs {
    let fs = MemFs::new();
    fs.create_dir_all(Path::new("/db")).unwrap();
    fs
}

/// Writes `records` to a fresh log at [`log_path`], synced; returns each record's
/// `(start, end)` file offsets.
pub fn write_log(fs: &MemFs, records: &[Vec<u8>]) -> Vec<(u64, u64)> {
    let path = log_path();
    let mut w = LogWriter::new(path.clone(), fs.create(&path).unwrap());
    let mut spans = Vec::new();
    for r in records {
        let before = w.len();
        w.add_record(r).unwrap();
        // A record starts after any trailer the writer had to insert.
        let start = if (before as usize % 32768) > 32768 - 7 {
            before.next_multiple_of(32768)
        } else {
            before
        };
        spans.push((start, w.len()));
    }
    w.sync().unwrap();
    spans
}

/// Reads the whole log at [`log_path`].
pub fn read_log(fs: &MemFs) -> (Vec<(u64, Vec<u8>)>, ReadEnd) {
    read_all(fs, &log_path()).unwrap()
}

/// `n` records of distinct, recognisable content and the given sizes.
pub fn records_of_sizes(sizes: &[usize]) -> Vec<Vec<u8>> {
    sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| (0..n).map(|j| (i * 31 + j * 7) as u8 | 0x80).collect())
        .collect()
}

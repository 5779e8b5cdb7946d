//! Helpers shared by the `manifest_*` test files.
#![allow(dead_code)]

use kv_engine::key::{make_internal_key, ValueKind};
use kv_engine::manifest::FileMeta;
use std::path::{Path, PathBuf};

/// The database directory every test uses.
pub fn db_dir() -> PathBuf {
    PathBuf::from("/db")
}

/// Path of manifest `n` in [`db_dir`].
pub fn manifest_path(n: u64) -> PathBuf {
    Path::new("/db").join(kv_engine::filename::manifest_name(n))
}

/// A table `number` holding user keys `lo..=hi`.
pub fn table(number: u64, lo: &str, hi: &str) -> FileMeta {
    FileMeta {
        number,
        size: 1000 + number,
        smallest: make_internal_key(lo.as_bytes(), number * 10 + 5, ValueKind::Put),
        largest: make_internal_key(hi.as_bytes(), number * 10, ValueKind::Delete),
        smallest_seq: number * 10,
        largest_seq: number * 10 + 5,
        entries: 100,
        deletions: 3,
    }
}

use kv_engine::manifest::{Version, VersionEdit, VersionSet};
use std::collections::BTreeMap;

/// Everything a recovery must restore.
#[derive(Debug, PartialEq, Eq)]
pub struct State {
    pub version: Version,
    pub next_file_number: u64,
    pub last_sequence: u64,
    pub log_number: u64,
    pub keyspaces: BTreeMap<u8, String>,
}

/// The observable state of `set`.
pub fn state(set: &VersionSet) -> State {
    State {
        version: (*set.current()).clone(),
        next_file_number: set.next_file_number(),
        last_sequence: set.last_sequence(),
        log_number: set.log_number(),
        keyspaces: set.keyspaces().clone(),
    }
}

/// A flush: a new WAL, then the old memtable lands in L0 as a new table.
pub fn flush_edit(set: &mut VersionSet, lo: &str, hi: &str, last_seq: u64) -> VersionEdit {
    let wal = set.new_file_number();
    let number = set.new_file_number();
    set.set_last_sequence(last_seq);
    VersionEdit {
        log_number: Some(wal),
        new_files: vec![(0, table(number, lo, hi))],
        ..Default::default()
    }
}

/// A compaction: every L0 file into one L1 file spanning `lo..=hi`.
pub fn compact_edit(set: &mut VersionSet, lo: &str, hi: &str) -> VersionEdit {
    let v = set.current();
    let number = set.new_file_number();
    VersionEdit {
        deleted_files: v.levels[0].iter().map(|f| (0, f.number)).collect(),
        new_files: vec![(1, table(number, lo, hi))],
        ..Default::default()
    }
}

/// Applies a mix of flushes, a compaction and a new keyspace.
pub fn apply_some_edits(set: &mut VersionSet, round: u64) {
    let e = flush_edit(set, "a", "m", 100 * round + 10);
    set.log_and_apply(e).unwrap();
    let e = flush_edit(set, "c", "z", 100 * round + 20);
    set.log_and_apply(e).unwrap();
    let lo = format!("{round:04}");
    let hi = format!("{round:04}~");
    let e = compact_edit(set, &lo, &hi);
    // L1 files of different rounds must not overlap: key them by round.
    set.log_and_apply(e).unwrap();
    set.log_and_apply(VersionEdit {
        new_keyspaces: vec![(round as u8 + 1, format!("ks{round}"))],
        ..Default::default()
    })
    .unwrap();
}

//! A torn WAL that is not the newest: recovery must not skip the later WALs' records and
//! then delete them. A power cut cannot produce this state (the memtable switch fsyncs
//! the old WAL before the new one exists), so it is damage: `open` refuses with
//! `Corruption` naming the torn WAL and offset, unless point-in-time recovery is asked
//! for. A later WAL with no record in it (left by a crash during `open`) is not data, so
//! a torn WAL before it is still a normal torn tail.

mod common;

use common::{contents, dir, keys, live_wals, tiny_options, Model};
use kv_engine::fs::{Fs, MemFs};
use kv_engine::wal::{read_all, ReadEnd};
use kv_engine::{Db, Error, FsyncPolicy, Keyspace, Options};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn options(fs: &MemFs) -> Options {
    let mut opts = tiny_options(Arc::new(fs.clone()));
    opts.fsync = FsyncPolicy::Always;
    // Large enough that nothing below switches the memtable by itself.
    opts.memtable_size = 1 << 20;
    opts
}

/// Two live WALs: `old` holds the `a` keys, `new` the later `b` keys.
fn two_live_wals() -> (MemFs, PathBuf, PathBuf, Model, Model) {
    let (a, b) = (keys("a", 20, 20), keys("b", 20, 20));
    let (fs, wals, mut models) = live_wals(options, &[&a, &b]);
    let b = models.pop().unwrap();
    let a = models.pop().unwrap();
    (fs, wals[0].clone(), wals[1].clone(), a, b)
}

/// Cuts the last record of `path` short; returns where the torn record starts.
fn tear(fs: &MemFs, path: &Path) -> u64 {
    let len = fs.len_of(path).unwrap();
    fs.truncate(path, len - 3).unwrap();
    match read_all(fs, path).unwrap().1 {
        ReadEnd::TornTail { offset, .. } => offset,
        other => panic!("expected a torn tail, got {other:?}"),
    }
}

#[test]
fn two_live_wals_recover_both() {
    let (fs, _old, _new, a, b) = two_live_wals();
    let db = Db::open(dir(), options(&fs)).unwrap();
    let mut all = a;
    all.extend(b);
    assert_eq!(contents(&db, Keyspace::DEFAULT), all);
    db.close().unwrap();
}

#[test]
fn torn_older_wal_followed_by_data_refuses_to_open() {
    let (fs, old, new, _a, _b) = two_live_wals();
    let torn_at = tear(&fs, &old);
    match Db::open(dir(), options(&fs)) {
        Err(Error::Corruption { file, offset, what }) => {
            assert_eq!(file, old, "{what}");
            assert_eq!(offset, torn_at, "{what}");
            assert!(
                what.contains(&new.file_name().unwrap().to_string_lossy().to_string()),
                "the message names the later WAL: {what}"
            );
        }
        Err(e) => panic!("expected Corruption, got {e}"),
        Ok(_) => panic!("opened although the later WAL's records would be skipped"),
    }
    // Refusing changed nothing: the later WAL is still there for an operator.
    assert!(fs.exists(&new));
    assert!(fs.exists(&old));
}

/// Opens `fs` and checks it holds every `a` key but the lost last one, and no `b` key:
/// a prefix of history.
fn assert_opens_with_all_but_the_last(fs: &MemFs, a: Model, point_in_time: bool) {
    let mut opts = options(fs);
    opts.wal_point_in_time_recovery = point_in_time;
    let db = Db::open(dir(), opts).unwrap();
    let mut expected = a;
    expected.pop_last();
    assert_eq!(contents(&db, Keyspace::DEFAULT), expected);
    db.close().unwrap();
}

#[test]
fn point_in_time_recovery_keeps_the_prefix_before_the_tear() {
    let (fs, old, _new, a, _b) = two_live_wals();
    tear(&fs, &old);
    assert_opens_with_all_but_the_last(&fs, a, true);
}

#[test]
fn torn_older_wal_before_an_empty_one_is_a_torn_tail() {
    let (fs, old, new, a, _b) = two_live_wals();
    tear(&fs, &old);
    // A crash during open after the fresh WAL was created: it holds nothing.
    fs.write_all_synced(&new, &[]).unwrap();
    assert_opens_with_all_but_the_last(&fs, a, false);
}

/// Cuts `path` just before its last record: the file then ends cleanly, at a record
/// boundary, and only the sequence numbers show that something is missing.
fn cut_before_last_record(fs: &MemFs, path: &Path) {
    let (records, _) = read_all(fs, path).unwrap();
    let (last_start, _) = records.last().unwrap();
    fs.truncate(path, *last_start as usize).unwrap();
    assert_eq!(read_all(fs, path).unwrap().1, ReadEnd::Clean);
}

#[test]
fn older_wal_cut_at_a_record_boundary_refuses_to_open() {
    let (fs, old, new, _a, _b) = two_live_wals();
    cut_before_last_record(&fs, &old);
    match Db::open(dir(), options(&fs)) {
        Err(Error::Corruption { file, offset, what }) => {
            assert_eq!(file, new, "{what}");
            assert_eq!(offset, 0, "{what}");
            assert!(what.contains("sequence"), "{what}");
        }
        Err(e) => panic!("expected Corruption, got {e}"),
        Ok(_) => panic!("opened although records between the WALs are missing"),
    }
}

#[test]
fn point_in_time_recovery_stops_at_a_sequence_gap() {
    let (fs, old, _new, a, _b) = two_live_wals();
    cut_before_last_record(&fs, &old);
    assert_opens_with_all_but_the_last(&fs, a, true);
}

//! A torn WAL that is not the newest: recovery must not skip the later WALs' records and
//! then delete them. A power cut cannot produce this state (the memtable switch fsyncs
//! the old WAL before the new one exists), so it is damage: `open` refuses with
//! `Corruption` naming the torn WAL and offset, unless point-in-time recovery is asked
//! for. A later WAL with no record in it (left by a crash during `open`) is not data, so
//! a torn WAL before it is still a normal torn tail.

mod common;

use common::{contents, dir, tiny_options};
use kv_engine::filename::{self, FileKind};
use kv_engine::fs::{Fs, MemFs};
use kv_engine::wal::{read_all, ReadEnd};
use kv_engine::{Db, Error, FsyncPolicy, Keyspace, Options};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn options(fs: &MemFs) -> Options {
    let mut opts = tiny_options(Arc::new(fs.clone()));
    opts.fsync = FsyncPolicy::Always;
    // Large enough that nothing below switches the memtable by itself.
    opts.memtable_size = 1 << 20;
    opts
}

fn wal_numbers(fs: &MemFs) -> Vec<u64> {
    let mut wals: Vec<u64> = fs
        .list_dir(&dir())
        .unwrap()
        .iter()
        .filter_map(|n| match filename::parse(n) {
            Some(FileKind::Wal(w)) => Some(w),
            _ => None,
        })
        .collect();
    wals.sort_unstable();
    wals
}

fn put_all(db: &Db, model: &mut Model, prefix: &str, n: usize) {
    for i in 0..n {
        let (k, v) = (
            format!("{prefix}{i:03}"),
            format!("value of {prefix}{i:03}"),
        );
        db.put(Keyspace::DEFAULT, k.as_bytes(), v.as_bytes())
            .unwrap();
        model.insert(k.into_bytes(), v.into_bytes());
    }
}

/// The state a crash leaves between a memtable switch and the flush's manifest edit:
/// the manifest still starts recovery at WAL `old` (holding the `a` keys) and WAL
/// `new` holds the later `b` keys. Built from a real Db: a copy taken while only `old`
/// existed, plus the bytes `new` received afterwards.
fn two_live_wals() -> (MemFs, PathBuf, PathBuf, Model, Model) {
    let fs = MemFs::new();
    let db = Db::open(dir(), options(&fs)).unwrap();
    let (mut a, mut b) = (Model::new(), Model::new());
    put_all(&db, &mut a, "a", 20);
    let before_switch = fs.deep_copy();
    let old = filename::wal_path(&dir(), *wal_numbers(&fs).last().unwrap());
    db.flush().unwrap();
    put_all(&db, &mut b, "b", 20);
    let new = filename::wal_path(&dir(), *wal_numbers(&fs).last().unwrap());
    assert!(new > old, "the flush switched to a new WAL");
    drop(db);
    let new_bytes = fs.read_all(&new).unwrap();
    before_switch.write_all_synced(&new, &new_bytes).unwrap();
    (before_switch, old, new, a, b)
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

#[test]
fn point_in_time_recovery_keeps_the_prefix_before_the_tear() {
    let (fs, old, _new, a, _b) = two_live_wals();
    tear(&fs, &old);
    let mut opts = options(&fs);
    opts.wal_point_in_time_recovery = true;
    let db = Db::open(dir(), opts).unwrap();
    let got = contents(&db, Keyspace::DEFAULT);
    // Every `a` key but the torn last one, and no `b` key: a prefix of history.
    let mut expected = a;
    expected.pop_last();
    assert_eq!(got, expected);
    db.close().unwrap();
}

#[test]
fn torn_older_wal_before_an_empty_one_is_a_torn_tail() {
    let (fs, old, new, a, _b) = two_live_wals();
    tear(&fs, &old);
    // A crash during open after the fresh WAL was created: it holds nothing.
    fs.write_all_synced(&new, &[]).unwrap();
    let db = Db::open(dir(), options(&fs)).unwrap();
    let mut expected = a;
    expected.pop_last();
    assert_eq!(contents(&db, Keyspace::DEFAULT), expected);
    db.close().unwrap();
}

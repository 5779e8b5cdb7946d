//! Scenario tests of the public Db API.

mod common;

use common::{contents, dir, mem_fs, tiny_options};
use kv_engine::{CompactionFilter, Db, Error, FilterDecision, Keyspace, Options, WriteBatch};
use std::sync::Arc;

#[test]
fn second_open_of_a_locked_directory_is_busy() {
    let (_m, fs) = mem_fs();
    let db = Db::open(dir(), tiny_options(fs.clone())).unwrap();
    assert!(matches!(
        Db::open(dir(), tiny_options(fs.clone())),
        Err(Error::Busy(_))
    ));
    db.close().unwrap();
    Db::open(dir(), tiny_options(fs)).unwrap();
}

#[test]
fn second_open_on_real_fs_is_busy() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path(), Options::default()).unwrap();
    match Db::open(tmp.path(), Options::default()) {
        Err(Error::Busy(p)) => assert_eq!(p, tmp.path()),
        other => panic!("expected Busy, got {other:?}"),
    }
    db.close().unwrap();
}

#[test]
fn missing_directory_without_create_is_an_error() {
    let (_m, fs) = mem_fs();
    let mut opts = tiny_options(fs);
    opts.create_if_missing = false;
    assert!(matches!(
        Db::open(dir(), opts),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn versions_grow_across_delete_recreate_and_restart() {
    let (_m, fs) = mem_fs();
    let db = Db::open(dir(), tiny_options(fs.clone())).unwrap();
    let v1 = db.put(Keyspace::DEFAULT, b"k", b"a").unwrap();
    let got = db.get(Keyspace::DEFAULT, b"k").unwrap().unwrap();
    assert_eq!(got.seq, v1);
    let d = db.delete(Keyspace::DEFAULT, b"k").unwrap();
    let v2 = db.put(Keyspace::DEFAULT, b"k", b"a").unwrap();
    assert!(v1 < d && d < v2);
    db.close().unwrap();
    let db = Db::open(dir(), tiny_options(fs)).unwrap();
    assert_eq!(
        db.get(Keyspace::DEFAULT, b"k").unwrap().unwrap().seq,
        v2,
        "version survives restart"
    );
    let v3 = db.put(Keyspace::DEFAULT, b"k", b"b").unwrap();
    assert!(v3 > v2);
}

#[test]
fn batch_across_keyspaces_is_atomic_and_keyspaces_persist() {
    let (_m, fs) = mem_fs();
    let db = Db::open(dir(), tiny_options(fs.clone())).unwrap();
    let hints = db.keyspace("hints").unwrap();
    let paxos = db.keyspace("paxos").unwrap();
    assert_ne!(hints, paxos);
    let mut b = WriteBatch::new();
    b.put(Keyspace::DEFAULT, b"k", b"user")
        .put(hints, b"k", b"hint")
        .put(paxos, b"k", b"ballot");
    let first = db.write(b).unwrap();
    assert_eq!(db.get(hints, b"k").unwrap().unwrap().seq, first + 1);
    db.close().unwrap();
    let db = Db::open(dir(), tiny_options(fs)).unwrap();
    assert_eq!(db.keyspace("hints").unwrap(), hints);
    assert_eq!(db.get(paxos, b"k").unwrap().unwrap().value, &b"ballot"[..]);
    assert_eq!(
        contents(&db, Keyspace::DEFAULT).len(),
        1,
        "keyspaces do not leak into each other"
    );
}

#[test]
fn checkpoint_holds_exactly_what_was_written_before_it() {
    let (_m, fs) = mem_fs();
    let db = Db::open(dir(), tiny_options(fs.clone())).unwrap();
    for i in 0..500 {
        db.put(
            Keyspace::DEFAULT,
            format!("k{i:04}").as_bytes(),
            &[i as u8; 50],
        )
        .unwrap();
    }
    let before = contents(&db, Keyspace::DEFAULT);
    let last = db.latest_sequence();
    db.checkpoint("/backup").unwrap();
    for i in 0..100 {
        db.put(Keyspace::DEFAULT, format!("after{i}").as_bytes(), b"x")
            .unwrap();
    }
    db.delete(Keyspace::DEFAULT, b"k0001").unwrap();
    let copy = Db::open("/backup", tiny_options(fs)).unwrap();
    assert_eq!(contents(&copy, Keyspace::DEFAULT), before);
    let v = copy.put(Keyspace::DEFAULT, b"new", b"1").unwrap();
    assert!(v > last, "sequence numbers survive checkpoints");
}

#[test]
fn checkpoint_into_non_empty_directory_is_refused() {
    let (m, fs) = mem_fs();
    let db = Db::open(dir(), tiny_options(fs.clone())).unwrap();
    use kv_engine::fs::Fs;
    m.create_dir_all(std::path::Path::new("/taken")).unwrap();
    m.write_all_synced(std::path::Path::new("/taken/file"), b"x")
        .unwrap();
    assert!(matches!(
        db.checkpoint("/taken"),
        Err(Error::InvalidArgument(_))
    ));
}

struct DropExpired;
impl CompactionFilter for DropExpired {
    fn filter(&self, _ks: u8, key: &[u8], _value: &[u8]) -> FilterDecision {
        if key.starts_with(b"expired") {
            FilterDecision::Remove
        } else {
            FilterDecision::Keep
        }
    }
}

#[test]
fn compaction_filter_removes_without_resurrecting_older_versions() {
    let (_m, fs) = mem_fs();
    let mut opts = tiny_options(fs);
    opts.compaction_filter = Some(Arc::new(DropExpired));
    let db = Db::open(dir(), opts).unwrap();
    db.put(Keyspace::DEFAULT, b"expired-1", b"old").unwrap();
    db.put(Keyspace::DEFAULT, b"keep-1", b"k").unwrap();
    db.compact_range(Keyspace::DEFAULT, None, None).unwrap();
    db.put(Keyspace::DEFAULT, b"expired-1", b"new").unwrap();
    db.flush().unwrap();
    db.compact_range(Keyspace::DEFAULT, None, None).unwrap();
    assert_eq!(db.get(Keyspace::DEFAULT, b"expired-1").unwrap(), None);
    assert_eq!(
        db.get(Keyspace::DEFAULT, b"keep-1").unwrap().unwrap().value,
        &b"k"[..]
    );
}

#[test]
fn snapshot_reads_survive_compaction() {
    let (_m, fs) = mem_fs();
    let db = Db::open(dir(), tiny_options(fs)).unwrap();
    for i in 0..300 {
        db.put(Keyspace::DEFAULT, format!("k{i:03}").as_bytes(), b"old")
            .unwrap();
    }
    let snap = db.snapshot();
    for i in 0..300 {
        if i % 2 == 0 {
            db.delete(Keyspace::DEFAULT, format!("k{i:03}").as_bytes())
                .unwrap();
        } else {
            db.put(Keyspace::DEFAULT, format!("k{i:03}").as_bytes(), b"new")
                .unwrap();
        }
    }
    db.compact_range(Keyspace::DEFAULT, None, None).unwrap();
    for i in 0..300 {
        let k = format!("k{i:03}");
        assert_eq!(
            db.get_at(Keyspace::DEFAULT, k.as_bytes(), &snap)
                .unwrap()
                .unwrap()
                .value,
            &b"old"[..]
        );
    }
    assert_eq!(
        db.iter(Keyspace::DEFAULT, None, None, Some(&snap))
            .unwrap()
            .count(),
        300
    );
    assert_eq!(contents(&db, Keyspace::DEFAULT).len(), 150);
    drop(snap);
    db.compact_range(Keyspace::DEFAULT, None, None).unwrap();
    assert_eq!(contents(&db, Keyspace::DEFAULT).len(), 150);
}

#[test]
fn deletes_are_dropped_at_the_bottom_level() {
    let (_m, fs) = mem_fs();
    let db = Db::open(dir(), tiny_options(fs)).unwrap();
    for i in 0..400 {
        db.put(Keyspace::DEFAULT, format!("k{i:03}").as_bytes(), &[0; 40])
            .unwrap();
    }
    for i in 0..400 {
        db.delete(Keyspace::DEFAULT, format!("k{i:03}").as_bytes())
            .unwrap();
    }
    db.compact_range(Keyspace::DEFAULT, None, None).unwrap();
    let stats = db.stats();
    let files: usize = stats.levels.iter().map(|l| l.files).sum();
    assert_eq!(
        files, 0,
        "all data and tombstones should be gone: {stats:?}"
    );
}

#[test]
fn stats_report_levels_bloom_cache_and_amplification() {
    let (_m, fs) = mem_fs();
    let db = Db::open(dir(), tiny_options(fs)).unwrap();
    for i in 0..2000 {
        db.put(Keyspace::DEFAULT, format!("k{i:05}").as_bytes(), &[7; 64])
            .unwrap();
    }
    db.flush().unwrap();
    for i in 0..2000 {
        db.get(Keyspace::DEFAULT, format!("k{i:05}").as_bytes())
            .unwrap();
        db.get(Keyspace::DEFAULT, format!("k{i:05}-absent").as_bytes())
            .unwrap();
    }
    let s = db.stats();
    assert!(s.levels.iter().map(|l| l.files).sum::<usize>() > 0);
    assert!(s.flushes > 0);
    assert!(s.write_amplification >= 1.0, "{s:?}");
    assert!(s.bloom_checks > 0 && s.bloom_negatives > 0, "{s:?}");
    assert!(s.block_cache_hits + s.block_cache_misses > 0, "{s:?}");
    assert!(s.last_sequence >= 2000);
}

#[test]
fn compactions_read_blocks_without_filling_the_block_cache() {
    let (_m, fs) = mem_fs();
    let db = Db::open(dir(), tiny_options(fs)).unwrap();
    // Overlapping rounds, so every compaction merges tables it must read.
    for round in 0..4 {
        for i in 0..500 {
            db.put(
                Keyspace::DEFAULT,
                format!("k{i:05}").as_bytes(),
                &[round; 64],
            )
            .unwrap();
        }
        db.flush().unwrap();
    }
    db.compact_range(Keyspace::DEFAULT, None, None).unwrap();
    let s = db.stats();
    assert!(s.compactions > 0, "{s:?}");
    assert!(s.block_cache_misses > 0, "compactions read blocks: {s:?}");
    assert_eq!(s.block_cache_bytes, 0, "and left none cached: {s:?}");
    // A user's read fills the cache as before.
    let got = db.get(Keyspace::DEFAULT, b"k00007").unwrap();
    assert_eq!(got.map(|v| v.value.to_vec()), Some(vec![3u8; 64]));
    assert!(db.stats().block_cache_bytes > 0);
}

#[test]
fn prefix_iteration_and_seek() {
    let (_m, fs) = mem_fs();
    let db = Db::open(dir(), tiny_options(fs)).unwrap();
    for k in ["a1", "b1", "b2", "b3", "c1"] {
        db.put(Keyspace::DEFAULT, k.as_bytes(), k.as_bytes())
            .unwrap();
    }
    let keys: Vec<_> = db
        .iter_prefix(Keyspace::DEFAULT, b"b", None)
        .unwrap()
        .map(|e| e.unwrap().key)
        .collect();
    assert_eq!(keys, vec![&b"b1"[..], &b"b2"[..], &b"b3"[..]]);
    let mut it = db.iter(Keyspace::DEFAULT, None, None, None).unwrap();
    it.seek(b"b2");
    assert_eq!(it.next().unwrap().unwrap().key, &b"b2"[..]);
    // Borrowed steps: a seek after one starts at the sought key, not one past it, and
    // owned and borrowed steps mix.
    let mut it = db.iter(Keyspace::DEFAULT, None, None, None).unwrap();
    assert_eq!(it.next_ref().unwrap().unwrap().key, b"a1");
    it.seek(b"b2");
    assert_eq!(it.next_ref().unwrap().unwrap().key, b"b2");
    assert_eq!(it.next().unwrap().unwrap().key, &b"b3"[..]);
    assert_eq!(it.next_ref().unwrap().unwrap().value, b"c1");
    assert!(it.next_ref().is_none());
}

#[test]
fn large_empty_and_binary_values_round_trip() {
    let (_m, fs) = mem_fs();
    let db = Db::open(dir(), tiny_options(fs.clone())).unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 31 % 251) as u8).collect();
    db.put(Keyspace::DEFAULT, b"big", &big).unwrap();
    db.put(Keyspace::DEFAULT, b"", b"").unwrap();
    db.put(Keyspace::DEFAULT, &[0, 255, 0], &[255, 0]).unwrap();
    db.close().unwrap();
    let db = Db::open(dir(), tiny_options(fs)).unwrap();
    assert_eq!(
        db.get(Keyspace::DEFAULT, b"big").unwrap().unwrap().value,
        &big[..]
    );
    assert_eq!(
        db.get(Keyspace::DEFAULT, b"").unwrap().unwrap().value,
        &b""[..]
    );
    assert_eq!(
        db.get(Keyspace::DEFAULT, &[0, 255, 0])
            .unwrap()
            .unwrap()
            .value,
        &[255u8, 0][..]
    );
}

#[test]
fn compaction_deletes_its_input_tables() {
    let (mem, fs) = mem_fs();
    let db = Db::open(dir(), tiny_options(fs)).unwrap();
    for round in 0..3 {
        for i in 0..300 {
            db.put(
                Keyspace::DEFAULT,
                format!("k{i:04}").as_bytes(),
                format!("{round}").as_bytes(),
            )
            .unwrap();
        }
        db.flush().unwrap();
    }
    db.compact_range(Keyspace::DEFAULT, None, None).unwrap();
    let live: usize = db.stats().levels.iter().map(|l| l.files).sum();
    let on_disk = common::files_in(&mem, &dir())
        .iter()
        .filter(|n| n.ends_with(".sst"))
        .count();
    assert_eq!(
        on_disk, live,
        "obsolete tables left behind after compaction"
    );
}

#[test]
fn range_delete_is_atomic_respects_snapshots_and_survives_restart_and_compaction() {
    let (mem, fs) = mem_fs();
    let db = Db::open(dir(), tiny_options(fs.clone())).unwrap();
    for i in 0..500 {
        db.put(Keyspace::DEFAULT, format!("k{i:03}").as_bytes(), b"v")
            .unwrap();
    }
    db.compact_range(Keyspace::DEFAULT, None, None).unwrap();
    let bytes = |db: &Db| db.stats().levels.iter().map(|l| l.bytes).sum::<u64>();
    let full_bytes = bytes(&db);
    let before = db.snapshot();
    db.delete_range(Keyspace::DEFAULT, b"k100", b"k400")
        .unwrap();
    db.put(Keyspace::DEFAULT, b"k200", b"rewritten").unwrap();
    let check = |db: &Db| {
        let live = contents(db, Keyspace::DEFAULT);
        assert_eq!(live.len(), 201, "300 deleted, one rewritten");
        assert!(live.contains_key(&b"k099"[..]) && live.contains_key(&b"k400"[..]));
        assert_eq!(
            live.get(&b"k200"[..]).map(|v| &v[..]),
            Some(&b"rewritten"[..])
        );
        assert_eq!(db.get(Keyspace::DEFAULT, b"k150").unwrap(), None);
    };
    check(&db);
    assert_eq!(
        db.get_at(Keyspace::DEFAULT, b"k150", &before)
            .unwrap()
            .unwrap()
            .value,
        &b"v"[..]
    );
    assert_eq!(
        db.iter(Keyspace::DEFAULT, None, None, Some(&before))
            .unwrap()
            .count(),
        500
    );
    drop(before);
    db.compact_range(Keyspace::DEFAULT, None, None).unwrap();
    check(&db);
    assert!(
        bytes(&db) < full_bytes * 3 / 4,
        "compaction kept the covered entries"
    );
    db.close().unwrap();
    let db = Db::open(dir(), tiny_options(fs)).unwrap();
    check(&db);
    assert_eq!(db.stats().range_tombstones, 1);
    drop(mem);
}

/// Prefetching is a hint: over keys present, absent, deleted and longer than the
/// lookup's stack buffer, across several memtables and tables, every read after it
/// returns what was written.
#[test]
fn prefetching_keys_changes_no_read() {
    let (_m, fs) = mem_fs();
    let db = Db::open(dir(), tiny_options(fs)).unwrap();
    let ks = Keyspace::DEFAULT;
    let long = vec![b'k'; 300];
    let mut keys: Vec<Vec<u8>> = (0..200u32)
        .map(|i| format!("key{i}").into_bytes())
        .collect();
    keys.push(long.clone());
    for (i, k) in keys.iter().enumerate() {
        db.put(ks, k, format!("v{i}").as_bytes()).unwrap(); // 4 KiB memtables: many rotate
    }
    db.delete(ks, b"key7").unwrap();
    let mut asked = keys.clone();
    asked.push(b"absent".to_vec());
    db.prefetch(ks, asked.iter().map(Vec::as_slice));
    for (i, k) in keys.iter().enumerate() {
        let got = db.get(ks, k).unwrap().map(|v| v.value.to_vec());
        let want = (k.as_slice() != b"key7").then(|| format!("v{i}").into_bytes());
        assert_eq!(got, want, "{}", String::from_utf8_lossy(k));
    }
    assert!(db.get(ks, b"absent").unwrap().is_none());
}

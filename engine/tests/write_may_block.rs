//! `Db::write_may_block` predicts every way a write can wait for long (an fsync, a stall, a
//! memtable switch), so kvd can keep such writes off its async worker threads.

mod common;

use common::{dir, mem_fs};
use kv_engine::fs::FaultFs;
use kv_engine::{Db, FsyncPolicy, Keyspace, Options};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn options(fs: Arc<dyn kv_engine::fs::Fs>, fsync: FsyncPolicy) -> Options {
    Options {
        fs,
        fsync,
        memtable_size: 64 * 1024,
        l0_compaction_trigger: 100, // let L0 files pile up
        l0_slowdown_writes_trigger: 3,
        l0_stop_writes_trigger: 100,
        ..Options::default()
    }
}

#[test]
fn predicts_large_writes_full_memtables_and_l0_slowdowns() {
    // Under `no` nothing syncs the WAL ahead of a switch, so a nearly full memtable
    // counts.
    let (_m, fs) = mem_fs();
    let db = Db::open(dir(), options(fs, FsyncPolicy::No)).unwrap();
    assert!(
        !db.write_may_block(100),
        "an empty database appends without waiting"
    );
    assert!(
        db.write_may_block(8 * 1024),
        "a write of 1/8 memtable may switch it"
    );
    let value = vec![b'v'; 1000];
    let mut i = 0u32;
    while !db.write_may_block(100) {
        db.put(Keyspace::DEFAULT, &i.to_be_bytes(), &value).unwrap();
        i += 1;
        assert!(i < 1000, "a nearly full memtable was never reported");
    }
    assert!(i >= 40, "reported after only {i} KB of a 64 KB memtable");
    db.flush().unwrap();
    assert!(
        !db.write_may_block(100),
        "one L0 file and an empty memtable"
    );
    for _ in 0..2 {
        db.put(Keyspace::DEFAULT, b"k", b"v").unwrap();
        db.flush().unwrap();
    }
    assert!(
        db.write_may_block(100),
        "3 L0 files reach the slowdown trigger"
    );
    db.close().unwrap();
}

#[test]
fn under_everysec_a_nearly_full_memtable_switches_inline() {
    let (_m, fs) = mem_fs();
    let db = Db::open(dir(), options(fs, FsyncPolicy::EverySec)).unwrap();
    assert!(
        db.write_may_block(8 * 1024),
        "a write of 1/8 memtable may switch it"
    );
    let value = vec![b'v'; 1000];
    let mut i = 0u32;
    // Through the whole memtable and its switch: the syncer fsynced ahead of it.
    while db.stats().immutable_memtables == 0 && db.stats().flushes == 0 {
        assert!(!db.write_may_block(100), "after {i} KB");
        db.put(Keyspace::DEFAULT, &i.to_be_bytes(), &value).unwrap();
        i += 1;
        assert!(i < 1000, "the memtable never switched");
    }
    assert!(db.stats().wal_syncs_ahead_of_switch >= 1);
    db.close().unwrap();
}

#[test]
fn every_write_may_block_under_fsync_always() {
    let (_m, fs) = mem_fs();
    let db = Db::open(dir(), options(fs, FsyncPolicy::Always)).unwrap();
    assert!(db.write_may_block(1));
    db.close().unwrap();
}

/// Releases held creations when dropped, a failed assertion included.
struct ReleaseOnDrop<'a>(&'a kv_engine::fs::FaultSwitch);

impl Drop for ReleaseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.release_creates();
    }
}

/// Writes keys of 1 KB until the engine holds `frozen` frozen memtables.
fn fill_until_frozen(db: &Db, frozen: usize, next: &mut u32) {
    let value = vec![b'v'; 1000];
    let deadline = Instant::now() + Duration::from_secs(20);
    while db.stats().immutable_memtables < frozen {
        db.put(Keyspace::DEFAULT, &next.to_be_bytes(), &value)
            .unwrap();
        *next += 1;
        assert!(
            Instant::now() < deadline,
            "no memtable switch after {next} writes"
        );
    }
}

#[test]
fn a_flush_in_progress_keeps_writes_inline_until_frozen_memtables_reach_their_limit() {
    let (mem, _) = mem_fs();
    let (faulty, switch) = FaultFs::new(Arc::new(mem));
    let db = Db::open(dir(), options(Arc::new(faulty), FsyncPolicy::EverySec)).unwrap();
    // The flush of the first frozen memtable waits at its table's creation. The guard
    // releases it if an assertion fails, so the test fails instead of hanging in `Db`'s
    // drop (declared after `db`, it is dropped first).
    switch.hold_creates_of(".sst");
    let _release = ReleaseOnDrop(&switch);
    let mut next = 0;
    fill_until_frozen(&db, 1, &mut next);
    assert!(
        !db.write_may_block(100),
        "one memtable being flushed, a fresh one with room: a write only appends"
    );
    fill_until_frozen(&db, 2, &mut next);
    assert!(
        !db.write_may_block(100),
        "frozen memtables at their limit, but the fresh memtable has room: no switch yet"
    );
    // Toward the end of the fresh memtable the next write may switch it, and that switch
    // waits for a flush: reported before the write that would stall (a memtable of
    // 64 KiB holds at most 64 KiB / 1,100 B of these entries).
    let value = vec![b'v'; 1000];
    let mut written = 0;
    while !db.write_may_block(100) {
        assert!(
            written < 64 * 1024 / 1100,
            "never reported before the switch"
        );
        db.put(Keyspace::DEFAULT, &next.to_be_bytes(), &value)
            .unwrap();
        next += 1;
        written += 1;
    }
    switch.release_creates();
    let deadline = Instant::now() + Duration::from_secs(20);
    while db.stats().immutable_memtables > 0 {
        assert!(
            Instant::now() < deadline,
            "the released flushes never finished"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!db.write_may_block(100), "flushed: writes inline again");
    db.close().unwrap();
}

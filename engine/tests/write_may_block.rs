//! `Db::write_may_block` predicts every way a write can wait for long (an fsync, a stall, a
//! memtable switch), so kvd can keep such writes off its async worker threads.

mod common;

use common::{dir, mem_fs};
use kv_engine::{Db, FsyncPolicy, Keyspace, Options};

fn options(fs: std::sync::Arc<dyn kv_engine::fs::Fs>, fsync: FsyncPolicy) -> Options {
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
    let (_m, fs) = mem_fs();
    let db = Db::open(dir(), options(fs, FsyncPolicy::EverySec)).unwrap();
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
fn every_write_may_block_under_fsync_always() {
    let (_m, fs) = mem_fs();
    let db = Db::open(dir(), options(fs, FsyncPolicy::Always)).unwrap();
    assert!(db.write_may_block(1));
    db.close().unwrap();
}

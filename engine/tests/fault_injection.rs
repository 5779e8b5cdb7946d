//! Failed fsyncs and failed writes surface as errors, never as silent success, and the
//! Db stops acknowledging writes after them; what was acknowledged before survives.

mod common;

use common::{dir, tiny_options};
use kv_engine::fs::{CrashMode, FaultFs, MemFs};
use kv_engine::{Db, Error, FsyncPolicy, Keyspace};
use std::sync::Arc;

fn faulty_db(policy: FsyncPolicy) -> (MemFs, Arc<kv_engine::fs::FaultSwitch>, Db) {
    let mem = MemFs::new();
    let (faulty, switch) = FaultFs::new(Arc::new(mem.clone()));
    let mut opts = tiny_options(Arc::new(faulty));
    opts.fsync = policy;
    let db = Db::open(dir(), opts).unwrap();
    (mem, switch, db)
}

fn reopen(mem: &MemFs) -> Db {
    Db::open(dir(), tiny_options(Arc::new(mem.clone()))).unwrap()
}

#[test]
fn failed_fsync_fails_the_write_and_later_writes() {
    let (mem, switch, db) = faulty_db(FsyncPolicy::Always);
    db.put(Keyspace::DEFAULT, b"before", b"1").unwrap();
    switch.fail_syncs(true);
    assert!(
        db.put(Keyspace::DEFAULT, b"during", b"2").is_err(),
        "an unsynced write was acknowledged"
    );
    switch.fail_syncs(false);
    let after = db.put(Keyspace::DEFAULT, b"after", b"3");
    assert!(
        matches!(after, Err(Error::Closed(_))),
        "writes must stop after a WAL failure: {after:?}"
    );
    // Reads still work.
    assert_eq!(
        db.get(Keyspace::DEFAULT, b"before").unwrap().unwrap().value,
        &b"1"[..]
    );
    drop(db);
    mem.crash(CrashMode::DropUnsynced);
    let db = reopen(&mem);
    assert_eq!(
        db.get(Keyspace::DEFAULT, b"before").unwrap().unwrap().value,
        &b"1"[..]
    );
    assert_eq!(db.get(Keyspace::DEFAULT, b"after").unwrap(), None);
}

#[test]
fn failed_write_is_an_error() {
    let (_mem, switch, db) = faulty_db(FsyncPolicy::No);
    db.put(Keyspace::DEFAULT, b"a", b"1").unwrap();
    switch.fail_writes(true);
    let big = vec![7u8; 600 * 1024]; // larger than the user-space write buffer
    assert!(db.put(Keyspace::DEFAULT, b"b", &big).is_err());
}

#[test]
fn torn_write_then_crash_recovers_everything_acknowledged() {
    for budget in [0u64, 1, 7, 100, 3000, 40_000] {
        let (mem, switch, db) = faulty_db(FsyncPolicy::Always);
        let mut acked = Vec::new();
        for i in 0..50 {
            if i == 10 {
                switch.fail_after_bytes(budget);
            }
            let k = format!("key{i:03}");
            match db.put(Keyspace::DEFAULT, k.as_bytes(), &vec![b'v'; 1000]) {
                Ok(_) => acked.push(k),
                Err(_) => break,
            }
        }
        drop(db);
        mem.crash(CrashMode::DropUnsynced);
        let db = reopen(&mem);
        for k in &acked {
            assert!(
                db.get(Keyspace::DEFAULT, k.as_bytes()).unwrap().is_some(),
                "budget {budget}: lost {k}"
            );
        }
        db.close().unwrap();
    }
}

#[test]
fn failed_flush_makes_db_read_only_not_silent() {
    let (mem, switch, db) = faulty_db(FsyncPolicy::Always);
    for i in 0..20 {
        db.put(Keyspace::DEFAULT, format!("k{i}").as_bytes(), &[1; 100])
            .unwrap();
    }
    // WAL appends still succeed (budget large) but the flush's table sync fails.
    switch.fail_syncs(true);
    let mut saw_error = false;
    for i in 20..400 {
        if db
            .put(Keyspace::DEFAULT, format!("k{i}").as_bytes(), &[1; 100])
            .is_err()
        {
            saw_error = true;
            break;
        }
    }
    assert!(saw_error, "writes kept succeeding although fsync fails");
    assert!(db.stats().background_error.is_some() || db.flush().is_err());
    drop(db);
    switch.heal();
    mem.crash(CrashMode::DropUnsynced);
    let db = reopen(&mem);
    for i in 0..20 {
        assert!(db
            .get(Keyspace::DEFAULT, format!("k{i}").as_bytes())
            .unwrap()
            .is_some());
    }
}

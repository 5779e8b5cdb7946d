//! Errors that can pass do not take the Db down for good (issue 7, defect 2): running
//! out of descriptors while a flush creates its table, or while a memtable switch
//! creates the next WAL, suspends writes with an error that says why; auto-resume
//! retries with backoff and, once descriptors are back, clears the error by itself.
//! Nothing acknowledged is lost, before or after. A failed WAL fsync stays fatal.

mod common;

use common::{dir, tiny_options};
use kv_engine::fs::{CrashMode, FaultFs, FaultSwitch, MemFs};
use kv_engine::{Db, Error, FsyncPolicy, Keyspace, Stats};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Only reached if what a test waits for never happens.
const DEADLINE: Duration = Duration::from_secs(60);

fn faulty_db() -> (MemFs, Arc<FaultSwitch>, Db) {
    let mem = MemFs::new();
    let (faulty, switch) = FaultFs::new(Arc::new(mem.clone()));
    let mut opts = tiny_options(Arc::new(faulty));
    opts.fsync = FsyncPolicy::Always;
    opts.bg_error_resume_retry_interval = Duration::from_millis(10);
    opts.max_bg_error_resume_count = 1000;
    let db = Db::open(dir(), opts).unwrap();
    (mem, switch, db)
}

/// Polls `stats` until `done` holds; fails the test after [`DEADLINE`].
fn wait_for(db: &Db, what: &str, done: impl Fn(&Stats) -> bool) -> Stats {
    let start = Instant::now();
    loop {
        let stats = db.stats();
        if done(&stats) {
            return stats;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "still waiting for {what}: {stats:?}"
        );
        std::thread::yield_now();
    }
}

fn key(i: usize) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

fn value(i: usize) -> Vec<u8> {
    let mut v = format!("value {i} ").into_bytes();
    v.resize(200, b'v');
    v
}

fn put(db: &Db, i: usize) -> kv_engine::Result<u64> {
    db.put(Keyspace::DEFAULT, &key(i), &value(i))
}

const EMFILE_TEXT: &str = "Too many open files";

/// Runs out of descriptors for files ending with `suffix`, then gets them back.
fn out_of_descriptors_then_back(suffix: &str) {
    let (mem, switch, db) = faulty_db();
    let mut acked = Vec::new();
    for i in 0..20 {
        put(&db, i).unwrap();
        acked.push(i);
    }

    // Keep writing: the memtable fills, and its switch or flush needs a new file.
    switch.fail_creates_of(suffix, libc::EMFILE);
    let mut next = acked.len();
    let first_failure = loop {
        assert!(
            next < 20_000,
            "writes never failed although no {suffix} can be created"
        );
        match put(&db, next) {
            Ok(_) => acked.push(next),
            Err(e) => break e,
        }
        next += 1;
    };
    assert!(
        first_failure.to_string().contains(EMFILE_TEXT),
        "the error says why: {first_failure}"
    );

    // While descriptors are short, auto-resume keeps trying and failing, and writes
    // fail fast with an error that says why.
    let stats = wait_for(&db, "two failed resume attempts", |s| {
        s.background_error_resume_attempts >= 2
    });
    assert!(stats.background_error_retryable, "{stats:?}");
    assert_eq!(stats.background_error_resumes, 0);
    match put(&db, next) {
        Err(Error::Suspended(why)) => assert!(why.contains(EMFILE_TEXT), "{why}"),
        other => panic!("expected Error::Suspended, got {other:?}"),
    }
    assert!(
        db.get(Keyspace::DEFAULT, &key(0)).unwrap().is_some(),
        "reads work"
    );

    // Descriptors are back: the Db resumes by itself.
    switch.allow_creates();
    let stats = wait_for(&db, "auto-resume", |s| s.background_error.is_none());
    assert!(stats.background_error_resumes >= 1, "{stats:?}");
    for i in next..next + 100 {
        put(&db, i).unwrap();
        acked.push(i);
    }
    db.flush().unwrap();

    // Everything acknowledged survives a power cut.
    drop(db);
    mem.crash(CrashMode::DropUnsynced);
    let db = Db::open(dir(), tiny_options(Arc::new(mem))).unwrap();
    for &i in &acked {
        let got = db.get(Keyspace::DEFAULT, &key(i)).unwrap();
        assert_eq!(
            got.map(|v| v.value.to_vec()),
            Some(value(i)),
            "lost key {i}"
        );
    }
    db.close().unwrap();
}

#[test]
fn out_of_descriptors_in_a_flush_suspends_writes_until_auto_resume() {
    out_of_descriptors_then_back(".sst");
}

#[test]
fn out_of_descriptors_for_a_new_wal_suspends_writes_until_auto_resume() {
    out_of_descriptors_then_back(".log");
}

#[test]
fn a_failed_wal_fsync_is_fatal_and_never_resumed() {
    let (mem, switch, db) = faulty_db();
    put(&db, 0).unwrap();
    switch.fail_syncs(true);
    assert!(put(&db, 1).is_err(), "an unsynced write was acknowledged");
    switch.heal();

    let stats = db.stats();
    assert!(stats.background_error.is_some());
    assert!(!stats.background_error_retryable, "{stats:?}");
    // Asking for a resume, as the auto-resume thread would, is refused and changes
    // nothing: after a failed fsync the WAL's state on disk is unknown.
    assert!(matches!(db.resume(), Err(Error::Closed(_))));
    assert!(matches!(put(&db, 2), Err(Error::Closed(_))));
    let stats = db.stats();
    assert!(stats.background_error.is_some());
    assert_eq!(stats.background_error_resumes, 0);

    drop(db);
    mem.crash(CrashMode::DropUnsynced);
    let db = Db::open(dir(), tiny_options(Arc::new(mem))).unwrap();
    assert!(db.get(Keyspace::DEFAULT, &key(0)).unwrap().is_some());
    db.close().unwrap();
}

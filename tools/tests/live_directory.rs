//! inspect and verify on a directory a running engine is writing, flushing and
//! compacting at the same time: files vanish and appear under them, and they must
//! still succeed (retrying or skipping what the engine deleted), never report damage.

mod common;

use common::{kvtool_json, s};
use kv_engine::{Db, Keyspace};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[test]
fn inspect_and_verify_succeed_while_the_engine_writes() {
    let d = tempfile::tempdir().unwrap();
    common::build(d.path());
    let options = kv_engine::Options {
        fsync: kv_engine::FsyncPolicy::No,
        ..common::tiny_options()
    };
    let db = Db::open(d.path(), options).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let k = format!("live:{:06}", i % 5000);
                db.put(Keyspace::DEFAULT, k.as_bytes(), &[b'v'; 64])
                    .unwrap();
                i += 1;
            }
            i
        })
    };
    // Stop the writer before asserting: a panic here would delete the directory under it.
    let mut failure = None;
    for round in 0..20 {
        for args in [
            vec!["verify", s(d.path())],
            vec!["inspect", "--exact", s(d.path())],
        ] {
            let (v, code) = kvtool_json(&args);
            if code != 0 && failure.is_none() {
                failure = Some(format!(
                    "round {round}: {args:?} failed on a live directory: {v:#}"
                ));
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().unwrap();
    assert_eq!(failure, None);
    let stats = db.stats();
    assert!(
        stats.flushes > 5 && stats.compactions > 0,
        "the writer should have kept flushes and compactions going ({writes} writes, {stats:?})"
    );
    drop(db);
}

//! A panic inside the group-commit leader (here: the WAL append panics) must not leave
//! the write queue headed by a writer that will never finish: the leader and its group
//! get an error, later writers get an error at once, the Db turns read-only with a
//! background error saying a write panicked, and everything acknowledged survives.

mod common;

use common::{dir, tiny_options};
use kv_engine::fs::{FaultFs, MemFs};
use kv_engine::{Db, Error, FsyncPolicy, Keyspace};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

/// How long the writers may take to come back: only reached if they hang.
const HANG_DEADLINE: Duration = Duration::from_secs(60);
const WRITERS: usize = 8;

#[test]
fn a_panicking_leader_fails_its_group_and_later_writers_instead_of_hanging() {
    let mem = MemFs::new();
    let (faulty, switch) = FaultFs::new(Arc::new(mem.clone()));
    let mut opts = tiny_options(Arc::new(faulty));
    opts.fsync = FsyncPolicy::Always;
    // No memtable switch, so the only appends are the leaders' WAL appends.
    opts.memtable_size = 1 << 20;
    let db = Db::open(dir(), opts).unwrap();

    // Each writer writes until a write fails and reports what was acknowledged and how
    // the last write ended. Plain threads, not scoped ones: a hung writer must make the
    // test fail, not hang it.
    let (tx, rx) = mpsc::channel();
    let mut writers = Vec::new();
    for t in 0..WRITERS {
        let (db, tx) = (db.clone(), tx.clone());
        writers.push(std::thread::spawn(move || {
            let mut acked = Vec::new();
            let failure = loop {
                let k = format!("t{t}-{:05}", acked.len());
                match db.put(Keyspace::DEFAULT, k.as_bytes(), k.as_bytes()) {
                    Ok(_) => acked.push(k),
                    Err(e) => break e,
                }
            };
            let _ = tx.send((acked, failure));
        }));
    }
    drop(tx);
    while db.latest_sequence() < 200 {
        std::thread::yield_now();
    }
    switch.panic_on_append(true);

    let mut acked = Vec::new();
    for _ in 0..WRITERS {
        let (mine, failure) = rx.recv_timeout(HANG_DEADLINE).unwrap_or_else(|_| {
            panic!("writers still waiting {HANG_DEADLINE:?} after the leader panicked")
        });
        assert!(
            matches!(failure, Error::Closed(_)),
            "unexpected error: {failure}"
        );
        acked.extend(mine);
    }
    // Every writer has reported, so joining cannot hang; it releases their handles.
    for w in writers {
        w.join().expect("writer thread");
    }
    let bg = db.stats().background_error.expect("a background error");
    assert!(bg.contains("panic"), "background error: {bg}");

    // Read-only now, with or without the fault; reads still work.
    switch.panic_on_append(false);
    let later = db.put(Keyspace::DEFAULT, b"later", b"x");
    assert!(matches!(later, Err(Error::Closed(_))), "{later:?}");
    for k in &acked {
        assert!(db.get(Keyspace::DEFAULT, k.as_bytes()).unwrap().is_some());
    }

    drop(db);
    let db = Db::open(dir(), tiny_options(Arc::new(mem))).unwrap();
    for k in &acked {
        assert!(
            db.get(Keyspace::DEFAULT, k.as_bytes()).unwrap().is_some(),
            "lost {k} across reopen"
        );
    }
    db.close().unwrap();
}

//! Recovery never hands out the number of a WAL it is replaying. WAL numbers are
//! allocated in memory at each memtable switch and reach the manifest only with the
//! next edit, so after a crash a WAL may carry a number at or above the manifest's next
//! file number. If recovery then gave that number to its fresh WAL, creating it would
//! truncate the replayed WAL, and a failure before the manifest records the replay (a
//! second crash, a full disk) would lose the writes in it.

mod common;

use common::{contents, dir, keys, live_wals, tiny_options, wal_numbers, Model};
use kv_engine::fs::{FaultFs, MemFs};
use kv_engine::{Db, FsyncPolicy, Keyspace, Options};
use std::sync::Arc;

fn options(fs: &MemFs) -> Options {
    let mut opts = tiny_options(Arc::new(fs.clone()));
    opts.fsync = FsyncPolicy::Always;
    // No switch but the explicit ones while the WALs are made.
    opts.memtable_size = 1 << 20;
    opts
}

#[test]
fn a_failed_recovery_leaves_every_replayed_wal_intact() {
    // Three live WALs (the first flush's table took a number between the second and
    // the third). Replayed with 3000-byte memtables, a+b and then c each fill one
    // table, so replay allocates two numbers, as many as it takes to reach the third WAL's.
    let (a, b, c) = (keys("a", 2, 1000), keys("b", 1, 1000), keys("c", 3, 1000));
    let (mem, wals, models) = live_wals(options, &[&a, &b, &c]);
    let all: Model = models.into_iter().flatten().collect();
    let replayed = wal_numbers(&mem);

    // Recovery fails when it records its work in a new manifest.
    let (faulty, switch) = FaultFs::new(Arc::new(mem.clone()));
    let mut opts = options(&mem);
    opts.fs = Arc::new(faulty);
    opts.memtable_size = 3000;
    switch.fail_creates_of("MANIFEST", libc::EIO);
    assert!(
        Db::open(dir(), opts).is_err(),
        "the manifest could not be written"
    );
    for wal in &wals {
        assert!(
            mem.len_of(wal).is_some_and(|len| len > 0),
            "{} was truncated by a recovery that did not complete",
            wal.display()
        );
    }

    // The next recovery, with the fault gone, finds everything.
    switch.heal();
    let db = Db::open(dir(), options(&mem)).unwrap();
    assert_eq!(contents(&db, Keyspace::DEFAULT), all);
    let (newest, fresh) = (replayed.last(), wal_numbers(&mem).pop());
    assert!(
        fresh > newest.copied(),
        "the fresh WAL {fresh:?} reuses a number <= {newest:?}"
    );
    db.close().unwrap();
}

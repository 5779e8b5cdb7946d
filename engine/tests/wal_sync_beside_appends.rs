//! Under `everysec` the syncer's fsync runs beside appends: writes are not held up by
//! a slow fsync, `Db::sync_wal` still returns only once the WAL is durable, what the
//! syncer synced survives a power cut, and the syncer is woken early, once per
//! memtable, as the memtable nears full.

mod common;

use common::{dir, tiny_options};
use kv_engine::fs::{CrashMode, FaultFs, FaultSwitch, MemFs};
use kv_engine::{Db, FsyncPolicy, Keyspace, Options};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(20);

fn everysec_db(memtable_size: usize) -> (MemFs, Arc<FaultSwitch>, Db) {
    let mem = MemFs::new();
    let (faulty, switch) = FaultFs::new(Arc::new(mem.clone()));
    let opts = Options {
        fsync: FsyncPolicy::EverySec,
        memtable_size,
        ..tiny_options(Arc::new(faulty))
    };
    let db = Db::open(dir(), opts).unwrap();
    (mem, switch, db)
}

/// Releases held fsyncs when dropped, so a failing assertion fails the test instead
/// of hanging it in the Db's close (which waits for the syncer thread).
struct ReleaseOnDrop(Arc<FaultSwitch>);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        self.0.release_syncs();
    }
}

/// Polls `done` until it holds or the deadline passes.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_slow_everysec_fsync_holds_up_neither_writes_nor_durability() {
    let (mem, switch, db) = everysec_db(1 << 20);
    let db = Arc::new(db);
    // Declared after the Db, so dropped (and the fsyncs released) before it.
    let _release = ReleaseOnDrop(switch.clone());
    db.put(Keyspace::DEFAULT, b"first", b"1").unwrap();
    switch.hold_syncs();
    // The syncer wakes within a second and starts its fsync, which now waits.
    wait_until("the syncer's fsync is held", || switch.held_syncs() == 1);

    // Writes go on meanwhile.
    let (done_tx, done_rx) = mpsc::channel();
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || {
            for i in 0..100 {
                db.put(Keyspace::DEFAULT, format!("k{i}").as_bytes(), b"v")
                    .unwrap();
            }
            done_tx.send(()).unwrap();
        })
    };
    assert!(
        done_rx.recv_timeout(DEADLINE).is_ok(),
        "writes waited for the syncer's fsync"
    );
    assert_eq!(switch.held_syncs(), 1, "the fsync is still held");
    writer.join().unwrap();
    switch.release_syncs();
    // All of it is durable once the Db closes (its last fsync): a power cut loses
    // nothing.
    drop(Arc::into_inner(db).unwrap());
    mem.crash(CrashMode::DropUnsynced);
    let db = Db::open(dir(), tiny_options(Arc::new(mem.clone()))).unwrap();
    assert!(db.get(Keyspace::DEFAULT, b"first").unwrap().is_some());
    assert!(db.get(Keyspace::DEFAULT, b"k99").unwrap().is_some());
}

#[test]
fn sync_wal_does_not_take_the_syncers_unfinished_fsync_as_done() {
    let (mem, switch, db) = everysec_db(1 << 20);
    let db = Arc::new(db);
    // Declared after the Db, so dropped (and the fsyncs released) before it.
    let _release = ReleaseOnDrop(switch.clone());
    switch.hold_syncs();
    db.put(Keyspace::DEFAULT, b"k", b"1").unwrap();
    wait_until("the syncer's fsync is held", || switch.held_syncs() == 1);
    // Nothing was appended since the syncer flushed; still `sync_wal` (which promises
    // durability when it returns) makes its own fsync, which waits too.
    let syncing = {
        let db = db.clone();
        std::thread::spawn(move || db.sync_wal())
    };
    wait_until("sync_wal's own fsync is held", || switch.held_syncs() == 2);
    assert!(!syncing.is_finished());
    switch.release_syncs();
    syncing.join().unwrap().unwrap();
    let image = mem.deep_copy();
    image.crash(CrashMode::DropUnsynced);
    let reopened = Db::open(dir(), tiny_options(Arc::new(image))).unwrap();
    assert!(reopened.get(Keyspace::DEFAULT, b"k").unwrap().is_some());
}

#[test]
fn what_the_syncer_synced_survives_a_power_cut() {
    let (mem, switch, db) = everysec_db(1 << 20);
    // Declared after the Db, so dropped (and the fsyncs released) before it.
    let _release = ReleaseOnDrop(switch.clone());
    switch.hold_syncs();
    db.put(Keyspace::DEFAULT, b"synced", b"1").unwrap();
    wait_until("round 1's fsync is held", || {
        switch.held_syncs_in_total() == 1
    });
    switch.release_syncs();
    wait_until("round 1's fsync left the hold", || switch.held_syncs() == 0);
    switch.hold_syncs();
    db.put(Keyspace::DEFAULT, b"later", b"2").unwrap();
    // The syncer is one thread: its second round began after its first fsync ended.
    wait_until("round 2's fsync is held", || {
        switch.held_syncs_in_total() == 2
    });
    // A power cut now, while round 2's fsync hangs: round 1 covered "synced".
    let image = mem.deep_copy();
    image.crash(CrashMode::DropUnsynced);
    switch.release_syncs();
    let reopened = Db::open(dir(), tiny_options(Arc::new(image))).unwrap();
    assert!(reopened
        .get(Keyspace::DEFAULT, b"synced")
        .unwrap()
        .is_some());
    drop(db);
}

#[test]
fn the_syncer_is_woken_once_as_each_memtable_nears_full() {
    let size = 64 * 1024;
    let (_mem, _switch, db) = everysec_db(size);
    let value = [7u8; 200];
    let ahead = || db.stats().wal_syncs_ahead_of_switch;
    let mut i = 0u32;
    let mut put = || {
        db.put(Keyspace::DEFAULT, &i.to_be_bytes(), &value).unwrap();
        i += 1;
    };
    // Up to 15/16 of the first memtable: not yet.
    while db.stats().memtable_bytes + (size / 16) as u64 + 1024 < size as u64 {
        put();
    }
    assert_eq!(ahead(), 0);
    // Into its last sixteenth: once, however many writes land there.
    while db.stats().flushes == 0 && db.stats().immutable_memtables == 0 {
        put();
    }
    assert_eq!(ahead(), 1);
    // The next memtable gets its own.
    let flushes = db.stats().flushes;
    for _ in 0..2000 {
        put();
    }
    assert!(db.stats().flushes > flushes || db.stats().immutable_memtables > 0);
    assert!(ahead() >= 2, "{}", ahead());
}

#[test]
fn other_policies_never_wake_the_syncer_early() {
    for policy in [FsyncPolicy::Always, FsyncPolicy::No] {
        let mem = MemFs::new();
        let opts = Options {
            fsync: policy,
            memtable_size: 64 * 1024,
            ..tiny_options(Arc::new(mem))
        };
        let db = Db::open(dir(), opts).unwrap();
        for i in 0..2000u32 {
            db.put(Keyspace::DEFAULT, &i.to_be_bytes(), &[7u8; 200])
                .unwrap();
        }
        assert!(db.stats().flushes > 0);
        assert_eq!(db.stats().wal_syncs_ahead_of_switch, 0, "{policy:?}");
    }
}

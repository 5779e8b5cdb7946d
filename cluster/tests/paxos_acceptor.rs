//! The consensus acceptor of each key (docs/consistency.md, "Acceptor"): promises and
//! accepts refuse every ballot not above what the replica has seen, a record repair
//! brought below a promise is never acknowledged as this replica's accept, and promises
//! survive a restart.

mod replica_support;

use kv_cluster::replica_api::{PrepareOutcome, WriteOutcome};
use replica_support::*;

#[test]
fn prepare_promises_only_ballots_above_everything_seen() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let k = key(0, "k");
    assert_eq!(
        store.prepare(&k, version(10)).unwrap(),
        PrepareOutcome::Promised {
            record: None,
            promised_before: kv_cluster::Version::ZERO
        }
    );
    for lower_or_equal in [5, 10] {
        assert_eq!(
            store.prepare(&k, version(lower_or_equal)).unwrap(),
            PrepareOutcome::Rejected { seen: version(10) }
        );
    }
    // A record newer than the promise (brought by repair) raises the bar too.
    assert_eq!(
        store.apply(&[put(&k, 20, "twenty")]).unwrap(),
        [WriteOutcome::Applied]
    );
    assert_eq!(
        store.prepare(&k, version(15)).unwrap(),
        PrepareOutcome::Rejected { seen: version(20) }
    );
    // It was stored above every promise made before it, as an accept of its ballot
    // would have been: the prepare does not report it as held below a promise.
    assert_eq!(
        store.prepare(&k, version(21)).unwrap(),
        PrepareOutcome::Promised {
            record: Some(put(&k, 20, "twenty").record),
            promised_before: kv_cluster::Version::ZERO
        }
    );
    // A promise made after the record was stored does not make it doubtful either
    // (a round that wrote nothing: a losing compare-and-set, a SERIAL read).
    assert_eq!(
        store.prepare(&k, version(22)).unwrap(),
        PrepareOutcome::Promised {
            record: Some(put(&k, 20, "twenty").record),
            promised_before: kv_cluster::Version::ZERO
        }
    );
}

#[test]
fn accept_takes_the_promised_ballot_and_refuses_lower_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let k = key(0, "k");
    store.prepare(&k, version(10)).unwrap();
    assert_eq!(
        store.accept(&put(&k, 9, "old round")).unwrap(),
        WriteOutcome::Stale {
            current: version(10)
        }
    );
    assert_eq!(
        store.accept(&put(&k, 10, "v")).unwrap(),
        WriteOutcome::Applied
    );
    // The same accept again (a retry) is accepted; nothing changes.
    assert_eq!(
        store.accept(&put(&k, 10, "v")).unwrap(),
        WriteOutcome::Applied
    );
    assert_eq!(store.get(&k).unwrap(), Some(put(&k, 10, "v").record));
    // A higher ballot without a prepare is fine: nobody promised anything above it.
    assert_eq!(
        store.accept(&put(&k, 12, "w")).unwrap(),
        WriteOutcome::Applied
    );
}

/// The model check's first counterexample (docs/consistency-model-check.md): a record
/// that reached this replica by repair after it promised a higher ballot must not count
/// as accepted for the round that wrote it, and the next prepare must say it is held
/// below a promise (so no proposer takes it as chosen).
#[test]
fn a_repaired_record_below_a_promise_is_kept_but_never_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let k = key(0, "k");
    store.prepare(&k, version(20)).unwrap();
    // Repair stores it (newer than what is held): replicas converge.
    assert_eq!(
        store.apply(&[put(&k, 10, "from another replica")]).unwrap(),
        [WriteOutcome::Applied]
    );
    // The late accept of that round is refused: a higher ballot is promised.
    assert_eq!(
        store.accept(&put(&k, 10, "from another replica")).unwrap(),
        WriteOutcome::Stale {
            current: version(20)
        }
    );
    assert_eq!(
        store.prepare(&k, version(30)).unwrap(),
        PrepareOutcome::Promised {
            record: Some(put(&k, 10, "from another replica").record),
            promised_before: version(20)
        }
    );
    // An accept at the promised ballot is taken, and acknowledged again when retried.
    assert_eq!(
        store.accept(&put(&k, 30, "the promised round")).unwrap(),
        WriteOutcome::Applied
    );
    assert_eq!(
        store.accept(&put(&k, 30, "the promised round")).unwrap(),
        WriteOutcome::Applied
    );
}

/// A store skips the check for a promise while it has never held one, so a reopened
/// store must know of the promises it holds: a copy below one stored after a restart is
/// still marked (fails if the store forgets its promises at open).
#[test]
fn a_copy_below_a_promise_made_before_a_restart_is_marked() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(0, "k");
    {
        let store = open_store(dir.path());
        store.prepare(&k, version(20)).unwrap();
    }
    let store = open_store(dir.path());
    assert_eq!(
        store.apply(&[put(&k, 10, "copied")]).unwrap(),
        [WriteOutcome::Applied]
    );
    assert_eq!(
        store.prepare(&k, version(30)).unwrap(),
        PrepareOutcome::Promised {
            record: Some(put(&k, 10, "copied").record),
            promised_before: version(20)
        }
    );
}

#[test]
fn promises_and_accepts_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(3, "k");
    {
        let store = open_store(dir.path());
        store.prepare(&k, version(40)).unwrap();
        store.accept(&put(&k, 40, "accepted")).unwrap();
        store.prepare(&k, version(50)).unwrap();
    }
    let store = open_store(dir.path());
    assert_eq!(
        store.prepare(&k, version(45)).unwrap(),
        PrepareOutcome::Rejected { seen: version(50) }
    );
    assert_eq!(store.get(&k).unwrap(), Some(put(&k, 40, "accepted").record));
}

#[test]
fn an_accept_forgets_the_promise_it_fulfils_and_the_record_keeps_the_bar() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let (done, open) = (key(0, "done"), key(0, "open"));
    store.prepare(&done, version(10)).unwrap();
    store.prepare(&open, version(10)).unwrap();
    assert_eq!(store.promises_held().unwrap(), 2);
    assert_eq!(
        store.accept(&put(&done, 10, "v")).unwrap(),
        WriteOutcome::Applied
    );
    // The finished round left its record only; the round that never accepted keeps
    // its promise.
    assert_eq!(store.promises_held().unwrap(), 1);
    // The record still refuses every ballot at or below the forgotten promise.
    assert_eq!(
        store.prepare(&done, version(10)).unwrap(),
        PrepareOutcome::Rejected { seen: version(10) }
    );
    assert_eq!(
        store.accept(&put(&done, 9, "late")).unwrap(),
        WriteOutcome::Stale {
            current: version(10)
        }
    );
    // A promise above the record is kept by an accept below it being refused, and
    // forgotten by the accept that fulfils it.
    store.prepare(&done, version(12)).unwrap();
    assert_eq!(
        store.accept(&put(&done, 11, "lost round")).unwrap(),
        WriteOutcome::Stale {
            current: version(12)
        }
    );
    assert_eq!(store.promises_held().unwrap(), 2);
    assert_eq!(
        store.accept(&put(&done, 12, "w")).unwrap(),
        WriteOutcome::Applied
    );
    assert_eq!(store.promises_held().unwrap(), 1);
}

/// A store on `mem` whose unsynced writes a power cut drops (`appendfsync no`), and the
/// switch that stops its file system (as the power going off does).
fn store_on(
    mem: &kv_engine::fs::MemFs,
) -> (
    std::sync::Arc<kv_cluster::replica_store::ReplicaStore>,
    std::sync::Arc<kv_engine::fs::FaultSwitch>,
) {
    let (fs, switch) = kv_engine::fs::FaultFs::new(std::sync::Arc::new(mem.clone()));
    let options = kv_engine::Options {
        fs: std::sync::Arc::new(fs),
        fsync: kv_engine::FsyncPolicy::No,
        ..kv_engine::Options::default()
    };
    let db = kv_engine::Db::open("/replica", options).unwrap();
    let store = kv_cluster::replica_store::ReplicaStore::open(std::sync::Arc::new(db)).unwrap();
    (std::sync::Arc::new(store), switch)
}

/// Stores a copy of the record accepted at 10 (a hint or read repair of an accept that
/// reached another acceptor first), then, if `accept_after`, the proposer's own late
/// Accept(10); cuts the power; returns what the restarted replica holds.
fn after_a_power_cut(accept_after: bool) -> Option<kv_cluster::Version> {
    let mem = kv_engine::fs::MemFs::new();
    let (store, switch) = store_on(&mem);
    let k = key(0, "k");
    assert_eq!(
        store.apply(&[put(&k, 10, "ten")]).unwrap(),
        [WriteOutcome::Applied]
    );
    if accept_after {
        assert_eq!(
            store.accept(&put(&k, 10, "ten")).unwrap(),
            WriteOutcome::Applied
        );
    }
    switch.kill(true);
    drop(store);
    mem.crash(kv_engine::fs::CrashMode::DropUnsynced);
    let (store, _) = store_on(&mem);
    store.get(&k).unwrap().map(|r| r.version)
}

#[test]
fn an_accept_answered_from_a_copy_survives_a_power_cut() {
    // The round counts this answer toward its majority, so it must be as durable as an
    // accept that wrote the record: a replica restarting after the cut (catching up)
    // still takes part in consensus on that promise (docs/consistency.md, "Acceptor").
    assert_eq!(after_a_power_cut(true), Some(version(10)));
    // The control: the copy alone was not synced, so the cut drops it (the test above
    // would pass without the fsync otherwise).
    assert_eq!(after_a_power_cut(false), None);
}

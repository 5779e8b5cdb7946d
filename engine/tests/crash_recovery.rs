//! Power cuts simulated on the in-memory file system: after a crash that drops (or
//! tears) unsynced data, every acknowledged write under `always` is present, nothing
//! appears half-written, recovered state is a prefix of history, and the Db opens.

mod common;

use common::{dir, tiny_options};
use kv_engine::fs::{CrashMode, FaultFs, Fs, MemFs};
use kv_engine::{Db, FsyncPolicy, Keyspace, WriteBatch};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::sync::Arc;

fn value_for(i: u64) -> Vec<u8> {
    let mut v = format!("value-{i}-").into_bytes();
    v.resize(20 + (i as usize * 13) % 500, b'a' + (i % 26) as u8);
    v
}

/// Writes batches until the "process dies" at a random point, crashes the file system,
/// reopens, and checks the recovered keys against what was acknowledged.
fn crash_once(seed: u64, policy: FsyncPolicy, mode: CrashMode) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mem = MemFs::new();
    let (faulty, switch) = FaultFs::new(Arc::new(mem.clone()));
    let mut opts = tiny_options(Arc::new(faulty));
    opts.fsync = policy;
    let db = Db::open(dir(), opts).unwrap();

    let total = rng.gen_range(1..300u64);
    let die_at = rng.gen_range(0..=total);
    let mut acked = 0u64; // writes 0..acked were acknowledged
    for i in 0..total {
        if i == die_at {
            switch.kill(true);
        }
        let mut b = WriteBatch::new();
        b.put(
            Keyspace::DEFAULT,
            format!("k{i:06}").as_bytes(),
            &value_for(i),
        );
        if i % 7 == 3 && i > 0 {
            b.delete(Keyspace::DEFAULT, format!("k{:06}", i - 1).as_bytes());
        }
        match db.write(b) {
            Ok(_) => acked = i + 1,
            Err(_) => break,
        }
    }
    switch.kill(true);
    drop(db);
    mem.crash(mode);
    switch.heal();

    let mut opts = tiny_options(Arc::new(mem.clone()));
    opts.fsync = policy;
    let db = Db::open(dir(), opts).unwrap_or_else(|e| panic!("seed {seed}: reopen failed: {e}"));
    let recovered: BTreeMap<Vec<u8>, Vec<u8>> = common::contents(&db, Keyspace::DEFAULT);

    // Find how many writes made it: the recovered state must equal the state after
    // exactly `m` writes, for some m (a prefix of history), with m >= acked under `always`.
    let mut model = BTreeMap::new();
    let mut matched = None;
    if recovered == model {
        matched = Some(0);
    }
    for i in 0..total {
        model.insert(format!("k{i:06}").into_bytes(), value_for(i));
        if i % 7 == 3 && i > 0 {
            model.remove(format!("k{:06}", i - 1).as_bytes());
        }
        if recovered == model {
            matched = Some(i + 1);
        }
    }
    let m = matched
        .unwrap_or_else(|| panic!("seed {seed}: recovered state is not a prefix of history"));
    if policy == FsyncPolicy::Always {
        assert!(
            m >= acked,
            "seed {seed}: {acked} writes acknowledged but only {m} recovered"
        );
    }
    db.close().unwrap();
}

#[test]
fn acknowledged_writes_survive_power_cut_with_always() {
    for seed in 0..40 {
        crash_once(seed, FsyncPolicy::Always, CrashMode::DropUnsynced);
    }
}

#[test]
fn torn_tails_recover_to_a_whole_batch() {
    for seed in 100..140 {
        crash_once(seed, FsyncPolicy::Always, CrashMode::TornTail(seed));
        crash_once(seed, FsyncPolicy::No, CrashMode::TornTail(seed));
    }
}

#[test]
fn everysec_and_no_recover_a_prefix_of_history() {
    for seed in 200..220 {
        crash_once(seed, FsyncPolicy::EverySec, CrashMode::DropUnsynced);
        crash_once(seed, FsyncPolicy::No, CrashMode::DropUnsynced);
    }
}

/// Four threads write 200 keys each under `policy` (thread `t` commits key `k` with
/// `write(db, t, k)`, which says whether that key must survive), the "process" dies
/// part-way through, the file system loses what was not synced, and every key that had
/// to survive and was acknowledged must be there after reopening.
fn concurrent_writers_then_power_cut(
    policy: FsyncPolicy,
    seed: u64,
    write: fn(&Db, usize, &str) -> kv_engine::Result<bool>,
) {
    let mem = MemFs::new();
    let (faulty, switch) = FaultFs::new(Arc::new(mem.clone()));
    let mut opts = tiny_options(Arc::new(faulty));
    opts.fsync = policy;
    let db = Db::open(dir(), opts).unwrap();
    // Writes that had to survive and were acknowledged so far: the kill waits for one,
    // or a loaded machine may let the plain writers reach the kill point alone.
    let must_survive = std::sync::atomic::AtomicUsize::new(0);
    let acked: Vec<Vec<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let db = db.clone();
                let must_survive = &must_survive;
                s.spawn(move || {
                    let mut mine = Vec::new();
                    for i in 0..200 {
                        let k = format!("t{t}-{i:04}");
                        match write(&db, t, &k) {
                            Ok(true) => {
                                must_survive.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                mine.push(k)
                            }
                            Ok(false) => {}
                            Err(_) => break,
                        }
                    }
                    mine
                })
            })
            .collect();
        // Kill the "process" part-way through, without sleeping: after some writes.
        while db.latest_sequence() < 100 + seed * 50
            || must_survive.load(std::sync::atomic::Ordering::SeqCst) == 0
        {
            std::thread::yield_now();
        }
        switch.kill(true);
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    drop(db);
    mem.crash(CrashMode::DropUnsynced);
    let db = Db::open(dir(), tiny_options(Arc::new(mem.clone()))).unwrap();
    assert!(
        acked.iter().any(|keys| !keys.is_empty()),
        "seed {seed}: nothing was acknowledged"
    );
    for k in acked.iter().flatten() {
        let got = db.get(Keyspace::DEFAULT, k.as_bytes()).unwrap();
        assert_eq!(
            got.map(|v| v.value.to_vec()),
            Some(k.clone().into_bytes()),
            "seed {seed}: lost {k}"
        );
    }
    db.close().unwrap();
}

#[test]
fn concurrent_writers_acknowledged_under_always_survive() {
    for seed in 0..6u64 {
        concurrent_writers_then_power_cut(FsyncPolicy::Always, seed, |db, _, k| {
            db.put(Keyspace::DEFAULT, k.as_bytes(), k.as_bytes())
                .map(|_| true)
        });
    }
}

#[test]
fn unsynced_directory_entries_are_lost_but_db_still_opens() {
    // Crash right after creation, before anything else is synced.
    let mem = MemFs::new();
    let db = Db::open(dir(), tiny_options(Arc::new(mem.clone()))).unwrap();
    drop(db);
    mem.crash(CrashMode::DropUnsynced);
    let fs: Arc<dyn Fs> = Arc::new(mem);
    let db = Db::open(dir(), tiny_options(fs)).unwrap();
    assert_eq!(db.get(Keyspace::DEFAULT, b"x").unwrap(), None);
}

/// `write_synced` is durable whatever the policy: under `no`, concurrent synced writers
/// (threads 0 and 1), mixed with plain ones sharing their groups (threads 2 and 3, whose
/// writes may be lost), lose nothing acknowledged in a power cut.
#[test]
fn synced_writes_survive_power_cut_under_policy_no() {
    for seed in 0..4u64 {
        concurrent_writers_then_power_cut(FsyncPolicy::No, seed, |db, t, k| {
            let mut b = WriteBatch::new();
            b.put(Keyspace::DEFAULT, k.as_bytes(), k.as_bytes());
            if t < 2 {
                db.write_synced(b).map(|_| true)
            } else {
                db.write(b).map(|_| false)
            }
        });
    }
}

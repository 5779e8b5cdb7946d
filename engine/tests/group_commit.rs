//! Group commit: concurrent writers under `always` share WAL appends and fsyncs, and
//! every one of them is acknowledged with its own sequence number.

use kv_engine::{Db, FsyncPolicy, Keyspace, Options};
use std::collections::HashSet;

#[test]
fn concurrent_writers_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        fsync: FsyncPolicy::Always,
        ..Options::default()
    };
    let db = Db::open(dir.path(), opts.clone()).unwrap();
    let threads = 8;
    let per_thread = 100;
    let seqs: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let db = db.clone();
                s.spawn(move || {
                    (0..per_thread)
                        .map(|i| {
                            db.put(Keyspace::DEFAULT, format!("t{t}-{i}").as_bytes(), b"v")
                                .unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let writes = (threads * per_thread) as u64;
    let unique: HashSet<_> = seqs.iter().collect();
    assert_eq!(
        unique.len() as u64,
        writes,
        "every write gets its own sequence number"
    );
    let stats = db.stats();
    eprintln!(
        "{writes} writes in {} groups, {} fsyncs",
        stats.write_groups, stats.wal_syncs
    );
    assert_eq!(
        stats.wal_syncs, stats.write_groups,
        "with always, one fsync per group"
    );
    assert!(
        stats.write_groups < writes,
        "{writes} concurrent writes took {} WAL appends: no group commit",
        stats.write_groups
    );
    db.close().unwrap();
    let db = Db::open(dir.path(), opts).unwrap();
    for t in 0..threads {
        for i in 0..per_thread {
            assert!(db
                .get(Keyspace::DEFAULT, format!("t{t}-{i}").as_bytes())
                .unwrap()
                .is_some());
        }
    }
}

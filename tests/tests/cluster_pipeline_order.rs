//! The order of a connection's pipelined writes as other clients see it (docs/cluster.md,
//! "Pipelining"), with real kvd processes: by default a pipelined `SET data`, `SET flag`
//! never lets another client see the flag without the data, because each write reaches
//! W replicas before the next is sent and a quorum read overlaps every write quorum.
//! Readers on the other two nodes chase the pair the writer is writing now.

use kv_tests::cluster::Cluster;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the readers saw: flags found, and flags found whose data was missing.
struct Seen {
    flags: usize,
    without_data: usize,
}

/// Writes `pairs` pipelines of (data, flag) (`flag_first`: (flag, data)) through node 1
/// of `c` while a reader on each other node reads the current pair's flag and, when it is
/// set, its data.
fn chase(c: &Cluster, pairs: usize, flag_first: bool) -> Seen {
    let progress = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = c.nodes[1..]
        .iter()
        .map(|node| {
            let mut r = node.client();
            redis::cmd("SELECT").arg(1).query::<()>(&mut r).unwrap();
            let (progress, done) = (progress.clone(), done.clone());
            std::thread::spawn(move || {
                let mut seen = Seen {
                    flags: 0,
                    without_data: 0,
                };
                while !done.load(Ordering::Relaxed) {
                    let i = progress.load(Ordering::Relaxed);
                    let flag: Option<String> = redis::cmd("GET")
                        .arg(format!("f{i}"))
                        .query(&mut r)
                        .unwrap();
                    if flag.is_some() {
                        seen.flags += 1;
                        let data: Option<String> = redis::cmd("GET")
                            .arg(format!("d{i}"))
                            .query(&mut r)
                            .unwrap();
                        if data.is_none() {
                            seen.without_data += 1;
                        }
                    }
                }
                seen
            })
        })
        .collect();
    let mut w = c.nodes[0].client();
    redis::cmd("SELECT").arg(1).query::<()>(&mut w).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in 0..pairs {
        progress.store(i, Ordering::Relaxed);
        let (data, flag) = (format!("d{i}"), format!("f{i}"));
        let order = if flag_first {
            [(&flag, "1"), (&data, "data")]
        } else {
            [(&data, "data"), (&flag, "1")]
        };
        let mut pipe = redis::pipe();
        for (key, value) in order {
            pipe.cmd("SET").arg(key).arg(value).ignore();
        }
        pipe.query::<()>(&mut w).unwrap();
        if Instant::now() > deadline {
            break;
        }
    }
    done.store(true, Ordering::Relaxed);
    let mut total = Seen {
        flags: 0,
        without_data: 0,
    };
    for r in readers {
        let s = r.join().unwrap();
        total.flags += s.flags;
        total.without_data += s.without_data;
    }
    total
}

#[test]
fn another_client_never_sees_a_pipelined_flag_without_its_data() {
    let c = Cluster::start(3, &["--cluster-eventual-databases", "1"]);
    let seen = chase(&c, 3000, false);
    assert_eq!(
        seen.without_data, 0,
        "{} of {} flags seen had no data",
        seen.without_data, seen.flags
    );
    assert!(
        seen.flags > 100,
        "the readers saw only {} flags: the check had nothing to check",
        seen.flags
    );
}

/// The check has teeth: a writer that pipelines the flag before the data (what a server
/// reordering a pipeline's writes would do) is caught. In the run that added this test,
/// 61 of 4,369 flags seen had no data. What it does not catch: with
/// `cluster-group-pipelined-writes yes` (both writes in one round) it saw 0 of 2,627;
/// that anomaly needs a reader to hit the sub-millisecond window between the
/// coordinator's own copy and the others', and is documented rather than tested.
#[test]
fn the_check_catches_a_pipeline_that_writes_the_flag_first() {
    let c = Cluster::start(3, &["--cluster-eventual-databases", "1"]);
    let seen = chase(&c, 3000, true);
    assert!(
        seen.without_data > 0,
        "no flag without data in {} flags seen, though the flag was written first",
        seen.flags
    );
}

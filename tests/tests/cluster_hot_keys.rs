//! Hot keys through every node of a cluster (docs/consistency.md, "One proposer per
//! key").

use kv_tests::cluster::{cluster_info, connect, urls, Cluster};
use std::sync::{Arc, Barrier};

/// Many clients on two hot keys through every node at once (docs/consistency.md, "One
/// proposer per key"): each node sends a key's commands to the key's proposer, which
/// runs them one after another, so every increment is acknowledged, none twice, and
/// both keys end at the number of increments (forwarding is opt-in:
/// `--cluster-forward-consensus yes`). In a file of its own, so that no other
/// cluster of the same test binary loads the machine: with eight clusters at once on two
/// cores, gossip stalled long enough for one node to suspect a peer the others saw up,
/// the nodes then disagreed on a key's proposer and duelled, and some INCRs ended in
/// TIMEOUT (they are then unknown outcomes, never counted twice). With `--cluster-forward-consensus no`
/// the proposers of the three nodes refuse each other's ballots, and most runs of this
/// test end with `TIMEOUT ... may still be applied` or `TRYAGAIN ... kept losing`.
#[test]
fn hot_keys_through_every_node_are_all_acknowledged() {
    const CLIENTS: usize = 18;
    const EACH: usize = 30;
    const KEYS: [&str; 2] = ["hot:a", "hot:b"];
    let c = Cluster::start(3, &["--cluster-forward-consensus", "yes"]);
    c.wait_all_up();
    let urls = urls(&c);
    let start = Arc::new(Barrier::new(CLIENTS));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (url, start) = (urls[i % urls.len()].clone(), start.clone());
            std::thread::spawn(move || {
                let mut conn = connect(&url);
                start.wait();
                (0..EACH)
                    .map(|j| {
                        redis::cmd("INCR")
                            .arg(KEYS[(i + j) % KEYS.len()])
                            .query::<i64>(&mut conn)
                            .map_err(|e| e.to_string())
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let replies: Vec<Result<i64, String>> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("client thread"))
        .collect();
    // Every node sent some commands on and served others: each is the proposer of one
    // key at most, so at least one node forwarded, and the proposers served.
    let count = |field: &str| -> u64 {
        c.nodes
            .iter()
            .map(|n| {
                cluster_info(n, field)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            })
            .sum()
    };
    let (sent, served) = (
        count("kvd_consensus_forwarded"),
        count("kvd_consensus_forwards_served"),
    );
    let failed: Vec<&String> = replies.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} of {} increments failed ({sent} forwarded, {served} served, {} fell back, {} unanswered); the first: {}",
        failed.len(),
        replies.len(),
        count("kvd_consensus_forward_fallbacks"),
        count("kvd_consensus_forward_unanswered"),
        failed[0]
    );
    let mut conn = connect(&urls[0]);
    let total: i64 = KEYS
        .iter()
        .map(|k| {
            redis::cmd("GET")
                .arg(k)
                .query::<i64>(&mut conn)
                .expect("GET")
        })
        .sum();
    assert_eq!(total as usize, CLIENTS * EACH);
    assert!(
        sent > 0,
        "no node forwarded a command to its key's proposer"
    );
    assert_eq!(sent, served, "forwarded and served counts differ");
}

//! Every write of a key in a linearizable database runs through single-key consensus
//! (docs/consistency.md), so plain reads and writes of one key by many concurrent
//! writers stay linearizable, with real processes and faults: clients through all three
//! nodes GET (at SERIAL), SET and DEL a few keys, any
//! client writing any key, while one node is killed with SIGKILL and restarted and
//! another is paused with SIGSTOP; the history every client saw must have a legal
//! sequential order per key (kv-checker, itself tested on known-bad histories).
//!
//! Why this holds: a write is acknowledged once a majority accepted it in a consensus
//! round, and every later round's majority of promises meets it, so it is never ordered
//! before a write acknowledged earlier; a SERIAL read is a consensus round that first
//! makes the value it returns chosen, so no later round discards it.
//!
//! Reads at QUORUM are not in this history: they are not linearizable with respect to a
//! round in progress (docs/consistency.md, "Reads"). This test once ran half its clients
//! at QUORUM and caught exactly that: a QUORUM read returned a value only a minority had
//! accepted (its write's outcome unknown), and a later read returned the older value
//! again, restated by a round that had prepared without it.
//!
//! Before consensus (last-writer-wins with a retry on a stale version) this test failed
//! with concurrent writers of one key: a write refused as stale by one replica was
//! retried with a newer version, and if its first attempt was already visible on another
//! replica, a reader could see it, then a concurrent write, then it again.

use kv_tests::cluster::{cluster_info, Cluster};
use kv_tests::eventually;
use kv_tests::linearizable_workload::Workload;
use std::time::Duration;

/// Keys of the history: few, so that clients contend on each.
const KEYS: u64 = 3;
/// Every client reads and writes every key.
const CLIENTS: u64 = 6;

#[test]
fn concurrent_writers_stay_linearizable_through_kill_9_and_pauses() {
    let mut c = Cluster::start(
        3,
        &[
            "--cluster-anti-entropy-interval-ms",
            "1000",
            "--cluster-request-timeout-ms",
            "1000",
            // Below the clients' read timeout: a contended command ends with the server's
            // answer, not a client-side timeout.
            "--cluster-consensus-timeout-ms",
            "2000",
        ],
    );
    let urls: Vec<String> = c.nodes.iter().map(|n| n.url(false)).collect();
    let keys = (0..KEYS).map(|k| format!("lin{k}")).collect();
    let workload = Workload::start(urls, keys, CLIENTS);

    workload.after_ops(300);
    c.nodes[2].kill9();
    workload.after_ops(1000);
    c.nodes[2].restart();
    eventually(
        "the restarted node rejoins",
        Duration::from_secs(60),
        || cluster_info(&c.nodes[2], "cluster_state").as_deref() == Some("ok"),
    );
    // After the kill -9 it catches up before its reads count; with another node paused
    // meanwhile, quorum reads of its partitions would wait out their timeouts (as
    // docs/cluster.md says), and the pause below would last minutes in operations.
    eventually(
        "the restarted node catches up",
        Duration::from_secs(60),
        || cluster_info(&c.nodes[2], "kvd_catching_up").as_deref() == Some("0"),
    );
    workload.after_ops(300);
    c.nodes[1].pause();
    // Long enough that requests time out against the paused node and the others mark it
    // suspect.
    workload.after_ops(1500);
    c.nodes[1].resume();
    workload.after_ops(500);

    workload.check(|| format!("node 0 log:\n{}", c.nodes[0].log_text()));
}

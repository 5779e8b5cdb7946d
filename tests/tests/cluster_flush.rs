//! FLUSHALL / FLUSHDB on a ring (docs/cluster.md, "Flushing a database"): one versioned
//! flush per database that every node learns, including a node that was down when it
//! happened. No flushed key ever comes back through any node, after hints, anti-entropy
//! and the background purge, while keys written after the flush stay.

use kv_tests::cluster::{cluster_info, merkle_roots, Cluster};
use kv_tests::{eventually, Kvd};
use redis::Commands;
use std::collections::BTreeSet;
use std::time::Duration;

/// Anti-entropy every second so that it runs (and could resurrect) within test time.
const FAST_REPAIR: &[&str] = &["--cluster-anti-entropy-interval-ms", "1000"];

/// Every key of database 0 as the node sees it through a full cluster SCAN.
fn all_keys(node: &Kvd) -> BTreeSet<String> {
    let mut conn = node.client();
    conn.scan::<String>().unwrap().collect()
}

/// Asserts through `node` that no flushed key is readable and every later key is.
fn check_through(node: &Kvd, flushed: &[String], kept: &[String], when: &str) {
    let mut conn = node.client();
    for k in flushed {
        let v: Option<String> = conn.get(k).unwrap();
        assert_eq!(
            v,
            None,
            "{when}: flushed key {k} came back through {}",
            node.url(false)
        );
    }
    for k in kept {
        let v: Option<String> = conn.get(k).unwrap();
        assert_eq!(
            v.as_deref(),
            Some("after"),
            "{when}: key {k} written after the flush lost"
        );
    }
    let expected: BTreeSet<String> = kept.iter().cloned().collect();
    assert_eq!(
        all_keys(node),
        expected,
        "{when}: SCAN through {}",
        node.url(false)
    );
}

#[test]
fn flushall_while_a_node_is_down_never_brings_a_key_back() {
    let mut c = Cluster::start(3, FAST_REPAIR);
    let mut n0 = c.nodes[0].client();
    let mut flushed: Vec<String> = Vec::new();
    for i in 0..150 {
        let k = format!("old{i}");
        let _: () = n0.set(&k, "before").unwrap();
        flushed.push(k);
    }
    c.nodes[2].kill9();
    // Written while node 2 is down: the survivors keep hints for it.
    for i in 150..250 {
        let k = format!("old{i}");
        let _: () = n0.set(&k, "before").unwrap();
        flushed.push(k);
    }
    let pending: u64 = cluster_info(&c.nodes[0], "kvd_hints_pending")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(
        pending > 0,
        "writes with a node down left no hints to replay"
    );
    let _: () = redis::cmd("FLUSHALL").query(&mut n0).unwrap();
    let mut n1 = c.nodes[1].client();
    let mut kept = Vec::new();
    for i in 0..60 {
        let k = format!("new{i}");
        let _: () = n1.set(&k, "after").unwrap();
        kept.push(k);
    }
    check_through(&c.nodes[0], &flushed, &kept, "with node 2 down");
    check_through(&c.nodes[1], &flushed, &kept, "with node 2 down");

    // Node 2 comes back holding every old key and no flush; the survivors replay their
    // hints of old keys to it and anti-entropy compares it with them.
    c.nodes[2].restart();
    c.wait_formed();
    check_through(&c.nodes[2], &flushed, &kept, "once node 2 is back");
    eventually(
        "hints for node 2 drain (dropped below the floor, not re-applied)",
        Duration::from_secs(60),
        || {
            [&c.nodes[0], &c.nodes[1]]
                .iter()
                .all(|n| cluster_info(n, "kvd_hints_pending").as_deref() == Some("0"))
        },
    );
    let mut n2 = c.nodes[2].client();
    let _: String = redis::cmd("CLUSTER").arg("REPAIR").query(&mut n2).unwrap();
    eventually(
        "every node purged the flushed records (equal Merkle roots)",
        Duration::from_secs(60),
        || {
            let roots: Vec<_> = c.nodes.iter().map(merkle_roots).collect();
            roots[0].is_some() && roots.iter().all(|r| r == &roots[0])
        },
    );
    let purged: u64 = cluster_info(&c.nodes[2], "kvd_flush_purged_keys")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // Node 2 held most of the 150 keys written before it was killed (not necessarily
    // all: a write acknowledged by two replicas may not have reached the third before
    // the kill), so its purge must have deleted some; the reads above and the equal
    // roots show none is left anywhere.
    assert!(
        purged > 0,
        "node 2 deleted none of the flushed records it held"
    );
    // More anti-entropy rounds with everything settled bring nothing back either.
    let rounds_before: u64 = cluster_info(&c.nodes[0], "kvd_anti_entropy_rounds")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    eventually(
        "two more anti-entropy rounds",
        Duration::from_secs(30),
        || {
            cluster_info(&c.nodes[0], "kvd_anti_entropy_rounds")
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|r| r >= rounds_before + 2)
        },
    );
    for node in &c.nodes {
        check_through(node, &flushed, &kept, "after hints, repair and purge");
    }
}

#[test]
fn flushdb_flushes_only_its_database_and_checks_its_arguments() {
    let c = Cluster::start(3, &[]);
    let mut n0 = c.nodes[0].client();
    let _: () = n0.set("zero", "before").unwrap();
    let _: () = redis::cmd("SELECT").arg(1).query(&mut n0).unwrap();
    let _: () = n0.set("one", "kept").unwrap();
    let _: () = redis::cmd("SELECT").arg(0).query(&mut n0).unwrap();
    let e = redis::cmd("FLUSHDB")
        .arg("NOW")
        .query::<()>(&mut n0)
        .unwrap_err();
    assert!(e.to_string().contains("syntax error"), "{e}");
    let _: () = redis::cmd("FLUSHDB").arg("ASYNC").query(&mut n0).unwrap();
    let _: () = n0.set("zero2", "after").unwrap();
    let mut n1 = c.nodes[1].client();
    let v: Option<String> = n1.get("zero").unwrap();
    assert_eq!(v, None);
    let v: Option<String> = n1.get("zero2").unwrap();
    assert_eq!(v.as_deref(), Some("after"));
    let _: () = redis::cmd("SELECT").arg(1).query(&mut n1).unwrap();
    let v: Option<String> = n1.get("one").unwrap();
    assert_eq!(v.as_deref(), Some("kept"), "FLUSHDB of db 0 touched db 1");
}

#[test]
fn a_flush_without_a_majority_says_so() {
    let mut c = Cluster::start(3, &[]);
    c.nodes[1].kill9();
    c.nodes[2].kill9();
    let mut n0 = c.nodes[0].client();
    let e = redis::cmd("FLUSHALL").query::<()>(&mut n0).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("reached 1 of 3 nodes") && text.contains("when they are next in contact"),
        "{text}"
    );
}

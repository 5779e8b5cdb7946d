//! A single-node data directory becomes the first node of a cluster without dump and load
//! (issue 8): its keys, values and expiries are readable through every node afterwards.

use kv_tests::cluster::{merkle_roots, Cluster, Plan};
use kv_tests::{eventually, Kvd};
use redis::Commands;
use std::time::Duration;

#[test]
fn a_single_node_directory_becomes_the_first_node_of_a_cluster() {
    let plan = Plan::new(3);
    let mut first = Kvd::start_at(plan.ports[0].0, &[]);
    {
        let mut c = first.client();
        for i in 0..300 {
            let _: () = c.set(format!("old:{i}"), format!("value:{i}")).unwrap();
        }
        let _: () = redis::cmd("SET")
            .arg(&["ttl", "v", "EX", "1000"])
            .query(&mut c)
            .unwrap();
        let _: () = redis::cmd("SELECT").arg(2).query(&mut c).unwrap();
        let _: () = c.set("in-db-2", "x").unwrap();
    }
    // The same directory and port, now as a cluster node beside two new ones.
    let fast = ["--cluster-anti-entropy-interval-ms", "1000"];
    first.args = plan.args(0, &fast);
    first.restart();
    let others: Vec<Kvd> = (1..3)
        .map(|i| {
            let args = plan.args(i, &fast);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Kvd::start_at(plan.ports[i].0, &args)
        })
        .collect();
    let mut nodes = vec![first];
    nodes.extend(others);
    let c = Cluster { nodes };
    c.wait_formed();
    eventually(
        "anti-entropy copies the converted keys to every replica",
        Duration::from_secs(60),
        || {
            let roots: Vec<_> = c.nodes.iter().map(merkle_roots).collect();
            roots[0].is_some() && roots.iter().all(|r| r == &roots[0])
        },
    );
    let mut third = c.nodes[2].client();
    for i in (0..300).step_by(13) {
        let v: Option<String> = third.get(format!("old:{i}")).unwrap();
        assert_eq!(v, Some(format!("value:{i}")));
    }
    let ttl: i64 = third.ttl("ttl").unwrap();
    assert!((1..=1000).contains(&ttl), "the expiry travelled: {ttl}");
    let _: () = redis::cmd("SELECT").arg(2).query(&mut third).unwrap();
    let v: Option<String> = third.get("in-db-2").unwrap();
    assert_eq!(v.as_deref(), Some("x"));
    let size: i64 = redis::cmd("DBSIZE").query(&mut third).unwrap();
    assert_eq!(size, 1);
}

/// A value above the ring's record bound (docs/cluster.md, "Value size") could never
/// reach another replica: the conversion refuses to start the node and names the key,
/// and once the key is gone (deleted on the single kvd) the node starts.
#[test]
fn a_value_too_large_for_the_ring_stops_the_conversion_with_its_name() {
    let plan = Plan::new(3);
    let mut first = Kvd::start_at(plan.ports[0].0, &[]);
    let huge = vec![b'v'; 17 << 20];
    {
        let mut c = first.client();
        let _: () = c.set("small", "v").unwrap();
        let _: () = c.set("huge-value", &huge[..]).unwrap();
    }
    let single = first.args.clone();
    first.args = plan.args(0, &[]);
    assert!(
        !first.try_restart(),
        "a cluster node started with a value no replica can receive"
    );
    let log = first.log_text();
    assert!(
        log.contains("huge-value") && log.contains("Value size"),
        "the refusal names the key and says why: {log}"
    );
    // Back to a single kvd: every key is still there; the huge one is deleted.
    first.args = single;
    first.restart();
    {
        let mut c = first.client();
        let v: Option<String> = c.get("small").unwrap();
        assert_eq!(v.as_deref(), Some("v"));
        let deleted: i64 = c.del("huge-value").unwrap();
        assert_eq!(deleted, 1, "the single kvd still held the huge value");
    }
    first.args = plan.args(0, &[]);
    assert!(first.try_restart(), "{}", first.log_text());
}

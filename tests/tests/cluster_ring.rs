//! A 3-node ring of real kvd processes (docs/cluster.md): any node serves any key, the
//! CLUSTER commands describe it, and commands that would lose updates under
//! last-writer-wins are refused until they run through consensus.

use kv_tests::cluster::{cluster_info, Cluster};
use redis::Commands;

#[test]
fn any_node_serves_any_key() {
    let c = Cluster::start(3, &[]);
    let mut n1 = c.nodes[0].client();
    let mut n2 = c.nodes[1].client();
    let mut n3 = c.nodes[2].client();
    for i in 0..200 {
        let _: () = n1.set(format!("key:{i}"), format!("value:{i}")).unwrap();
    }
    for i in 0..200 {
        let v: Option<String> = n2.get(format!("key:{i}")).unwrap();
        assert_eq!(v.as_deref(), Some(format!("value:{i}").as_str()));
    }
    let _: () = redis::cmd("MSET")
        .arg(&["a", "1", "b", "2", "{t}x", "3"])
        .query(&mut n3)
        .unwrap();
    let got: Vec<Option<String>> = n1.mget(&["a", "b", "missing", "{t}x"]).unwrap();
    assert_eq!(
        got,
        vec![Some("1".into()), Some("2".into()), None, Some("3".into())]
    );
    let deleted: i64 = n2.del(&["a", "missing"]).unwrap();
    assert_eq!(deleted, 1);
    let gone: Option<String> = n3.get("a").unwrap();
    assert_eq!(gone, None);
    let _: () = redis::cmd("SET")
        .arg(&["ttl", "v", "EX", "100"])
        .query(&mut n1)
        .unwrap();
    let ttl: i64 = n3.ttl("ttl").unwrap();
    assert!((1..=100).contains(&ttl), "{ttl}");
    // SCAN through a node returns every key of the ring exactly as KEYS does.
    let mut scanned: Vec<String> = redis::cmd("SCAN")
        .cursor_arg(0)
        .arg("COUNT")
        .arg(7)
        .clone()
        .iter(&mut n2)
        .unwrap()
        .collect();
    scanned.sort();
    scanned.dedup();
    let mut keys: Vec<String> = n3.keys("*").unwrap();
    keys.sort();
    assert_eq!(scanned, keys);
    assert_eq!(keys.len(), 200 + 3); // 200 keys, b, {t}x, ttl
    let size: i64 = redis::cmd("DBSIZE").query(&mut n1).unwrap();
    assert_eq!(size, 203);
    // Every node read from a peer (GET, MGET, TTL through each): without TLS, on a
    // replica link (docs/cluster-protocol.md, "The replica link"), never on the gRPC
    // stream or unary calls. (Database 0's writes go through consensus, whose Prepare
    // and Accept are calls of their own.)
    for (i, node) in c.nodes.iter().enumerate() {
        let count = |f: &str| -> usize {
            cluster_info(node, f)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {f} in node {i}'s CLUSTER INFO"))
        };
        assert!(count("kvd_replica_links") >= 1, "node {i}: links");
        assert_eq!(count("kvd_replica_streams"), 0, "node {i}: streams");
        assert_eq!(count("kvd_replica_unary_peers"), 0, "node {i}: unary peers");
    }
}

#[test]
fn cluster_commands_describe_the_ring() {
    let c = Cluster::start(3, &[]);
    let mut n1 = c.nodes[0].client();
    let slot: i64 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg("foo")
        .query(&mut n1)
        .unwrap();
    assert_eq!(slot, 12182); // redis-server 7.0's answer
    let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(&mut n1).unwrap();
    assert_eq!(nodes.lines().count(), 3, "{nodes}");
    assert_eq!(nodes.lines().filter(|l| l.contains("myself")).count(), 1);
    let myid: String = redis::cmd("CLUSTER").arg("MYID").query(&mut n1).unwrap();
    assert!(nodes
        .lines()
        .any(|l| l.starts_with(&myid) && l.contains("myself")));
    let preflist: Vec<Vec<String>> = redis::cmd("CLUSTER")
        .arg("PREFLIST")
        .arg("foo")
        .query(&mut n1)
        .unwrap();
    assert_eq!(preflist.len(), 3);
    let mut ids: Vec<&String> = preflist.iter().map(|r| &r[0]).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "replicas are distinct nodes");
    for node in &c.nodes {
        assert_eq!(
            cluster_info(node, "cluster_known_nodes").as_deref(),
            Some("3")
        );
        assert_eq!(cluster_info(node, "kvd_replicas").as_deref(), Some("3"));
        assert_eq!(
            cluster_info(node, "kvd_layout_version").as_deref(),
            Some("1")
        );
    }
    let ids: Vec<String> = c
        .nodes
        .iter()
        .map(|n| cluster_info(n, "kvd_cluster_id").unwrap())
        .collect();
    assert!(
        ids.iter().all(|id| id == &ids[0] && id.len() == 32),
        "{ids:?}"
    );
}

#[test]
fn read_modify_write_runs_and_multi_key_read_modify_write_is_refused() {
    let c = Cluster::start(3, &[]);
    let mut n1 = c.nodes[0].client();
    let mut n2 = c.nodes[1].client();
    let n: i64 = redis::cmd("INCR").arg("n").query(&mut n1).unwrap();
    assert_eq!(n, 1);
    let n: i64 = redis::cmd("INCRBY").arg("n").arg(4).query(&mut n2).unwrap();
    assert_eq!(n, 5);
    let set: Option<String> = redis::cmd("SET")
        .arg("k")
        .arg("v1")
        .arg("NX")
        .query(&mut n1)
        .unwrap();
    assert_eq!(set.as_deref(), Some("OK"));
    let again: Option<String> = redis::cmd("SET")
        .arg("k")
        .arg("v2")
        .arg("NX")
        .query(&mut n2)
        .unwrap();
    assert_eq!(
        again, None,
        "SET NX of an existing key through another node"
    );
    let old: String = redis::cmd("GETSET")
        .arg("k")
        .arg("v3")
        .query(&mut n2)
        .unwrap();
    assert_eq!(old, "v1");
    let expiring: i64 = redis::cmd("EXPIRE")
        .arg("k")
        .arg(100)
        .query(&mut n1)
        .unwrap();
    assert_eq!(expiring, 1);
    let ttl: i64 = redis::cmd("TTL").arg("k").query(&mut n2).unwrap();
    assert!((1..=100).contains(&ttl), "TTL {ttl}");
    // Multi-key read-modify-write across slots is refused (in one slot it is a
    // transaction: cluster_transactions.rs), and so is SWAPDB.
    for (cmd, why) in [
        (vec!["MSETNX", "a", "1", "b", "2"], "CROSSSLOT"),
        (vec!["RENAME", "k", "k2"], "CROSSSLOT"),
        (vec!["SWAPDB", "0", "1"], "consistency.md"),
    ] {
        let r: redis::RedisResult<redis::Value> = redis::cmd(cmd[0]).arg(&cmd[1..]).query(&mut n1);
        let e = r.expect_err(&format!("{cmd:?} must be refused"));
        let text = format!("{} {e}", e.code().unwrap_or(""));
        assert!(text.contains(why), "{cmd:?}: {e}");
    }
    let a: Option<String> = n1.get("a").unwrap();
    assert_eq!(a, None, "a refused command wrote nothing");
}

#[test]
fn monitor_shows_the_replica_operations_a_node_serves() {
    let c = Cluster::start(3, &[]);
    // A key whose proposer is not node 2 (docs/consistency.md, "One proposer per key"):
    // node 2 then serves its rounds as a replica.
    let node2 = kv_tests::cluster::my_id(&c.nodes[1]);
    let mut n1 = c.nodes[0].client();
    let key = (0..100)
        .map(|i| format!("followed{i}"))
        .find(|k| {
            let preflist: Vec<Vec<String>> = redis::cmd("CLUSTER")
                .arg("PREFLIST")
                .arg(k)
                .query(&mut n1)
                .expect("CLUSTER PREFLIST");
            preflist[0][0] != node2
        })
        .expect("a key whose first replica is not node 2");
    let mut monitor = c.nodes[1].raw();
    assert_eq!(monitor.cmd(&[b"MONITOR"]), "+OK\r\n");
    let _: () = n1.set(&key, "v").unwrap();
    // Node 2 holds a replica of every key at N = 3: it serves the write for node 1.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let line = String::from_utf8_lossy(&monitor.reply()).into_owned();
        if line.contains("replica]") && line.contains(&format!("\"REPLICA.SET\" \"{key}\"")) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no replica line; last: {line}"
        );
    }
}

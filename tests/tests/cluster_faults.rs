//! Faults with real processes (docs/cluster.md, "Guarantees"): a node killed with
//! SIGKILL under write load loses no acknowledged write, writes and quorum reads keep
//! succeeding through the others, and the node catches up by itself after a restart
//! (hints, then anti-entropy) until every replica holds identical data.

use kv_tests::cluster::{cluster_info, merkle_roots, Cluster};
use kv_tests::eventually;
use redis::Commands;
use std::time::Duration;

/// Anti-entropy every second so that catching up is observable in test time.
const FAST_REPAIR: &[&str] = &["--cluster-anti-entropy-interval-ms", "1000"];

#[test]
fn kill_9_one_node_of_three_under_write_load_loses_nothing_and_it_catches_up() {
    let mut c = Cluster::start(3, FAST_REPAIR);
    let mut writer = c.nodes[0].client();
    let mut acked = Vec::new();
    for i in 0..300 {
        let _: () = writer.set(format!("k{i}"), format!("v{i}")).unwrap();
        acked.push(i);
    }
    c.nodes[2].kill9();
    // W = 2 and R = 2 of N = 3: every write and read keeps succeeding with one node gone.
    let mut reader = c.nodes[1].client();
    for i in 300..900 {
        let r: redis::RedisResult<()> = writer.set(format!("k{i}"), format!("v{i}"));
        r.unwrap_or_else(|e| {
            panic!(
                "write {i} failed with one node down: {e}\nnode 0 log:\n{}\nnode 1 log:\n{}",
                c.nodes[0].log_text(),
                c.nodes[1].log_text()
            )
        });
        acked.push(i);
        if i % 10 == 0 {
            let j = i / 2;
            let v: Option<String> = reader.get(format!("k{j}")).unwrap();
            assert_eq!(
                v,
                Some(format!("v{j}")),
                "acknowledged write k{j} unreadable"
            );
        }
    }
    for node in [&c.nodes[0], &c.nodes[1]] {
        let mut conn = node.client();
        for &i in &acked {
            let v: Option<String> = conn.get(format!("k{i}")).unwrap();
            assert_eq!(v, Some(format!("v{i}")), "acknowledged write k{i} lost");
        }
    }
    // The survivors hold hints for the dead node.
    let pending: u64 = cluster_info(&c.nodes[0], "kvd_hints_pending")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(pending > 0, "writes while a replica was down left no hints");
    c.nodes[2].restart();
    eventually(
        "hints drain to the restarted node",
        Duration::from_secs(60),
        || {
            [&c.nodes[0], &c.nodes[1]]
                .iter()
                .all(|n| cluster_info(n, "kvd_hints_pending").as_deref() == Some("0"))
        },
    );
    eventually(
        "every replica holds identical data (equal Merkle roots)",
        Duration::from_secs(60),
        || {
            let roots: Vec<_> = c.nodes.iter().map(merkle_roots).collect();
            roots[0].is_some() && roots.iter().all(|r| r == &roots[0])
        },
    );
    // Reads through the restarted node see everything.
    let mut back = c.nodes[2].client();
    for &i in acked.iter().step_by(7) {
        let v: Option<String> = back.get(format!("k{i}")).unwrap();
        assert_eq!(v, Some(format!("v{i}")));
    }
}

#[test]
fn a_paused_replica_converges_after_it_resumes() {
    let mut c = Cluster::start(3, FAST_REPAIR);
    // SIGSTOP: the process keeps its sockets but answers nothing, so writes time out on
    // it (or skip it once gossip suspects it) and leave hints; after SIGCONT, hints and
    // anti-entropy bring it level with the others.
    let pid = c.nodes[2].pid();
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
    let mut writer = c.nodes[0].client();
    for i in 0..200 {
        let _: () = writer.set(format!("p{i}"), i).unwrap();
    }
    // SAFETY: as above.
    unsafe { libc::kill(pid as i32, libc::SIGCONT) };
    eventually(
        "the paused replica converges with the others",
        Duration::from_secs(60),
        || {
            let roots: Vec<_> = c.nodes.iter().map(merkle_roots).collect();
            roots[0].is_some() && roots.iter().all(|r| r == &roots[0])
        },
    );
    let mut conn = c.nodes[2].client();
    let v: Option<i64> = conn.get("p199").unwrap();
    assert_eq!(v, Some(199));
    c.nodes[2].kill9();
}

#[test]
fn per_connection_consistency_trades_safety_for_availability() {
    let mut c = Cluster::start(3, &[]);
    let mut n1 = c.nodes[0].client();
    let _: () = n1.set("k", "v").unwrap();
    c.nodes[2].kill9();
    // ALL needs every replica: refused (CLUSTERDOWN) or timed out, never a success.
    let _: () = redis::cmd("CLUSTER")
        .arg(&["CONSISTENCY", "ALL"])
        .query(&mut n1)
        .unwrap();
    let e = n1
        .set::<_, _, ()>("k", "w")
        .expect_err("ALL with a replica down");
    let text = e.to_string();
    assert!(
        text.contains("ClusterDown") || text.contains("TIMEOUT"),
        "{text}"
    );
    c.nodes[1].kill9();
    // QUORUM cannot be met with two of three replicas gone ...
    let _: () = redis::cmd("CLUSTER")
        .arg(&["CONSISTENCY", "QUORUM"])
        .query(&mut n1)
        .unwrap();
    assert!(n1.get::<_, Option<String>>("k").is_err());
    // ... ONE answers from the surviving replica (this node holds every key at N=3).
    let _: () = redis::cmd("CLUSTER")
        .arg(&["CONSISTENCY", "ONE"])
        .query(&mut n1)
        .unwrap();
    let v: Option<String> = n1.get("k").unwrap();
    assert!(v.is_some(), "ONE reads the local replica");
}

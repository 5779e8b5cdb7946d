//! ACL users and cluster-wide CONFIG SET on a ring (docs/cluster.md, "Cluster
//! metadata"; docs/security.md, "Users on a cluster"): a change made through any node
//! applies on every node, a node that was down learns it when it comes back, and
//! node-local parameters stay local.

use kv_tests::cluster::Cluster;
use kv_tests::{eventually, Kvd};
use std::time::Duration;

/// Whether `user` / `pass` authenticate on `node`.
fn auth_ok(node: &Kvd, user: &str, pass: &str) -> bool {
    let mut conn = node.client();
    redis::cmd("AUTH")
        .arg(user)
        .arg(pass)
        .query::<()>(&mut conn)
        .is_ok()
}

fn config_get(node: &Kvd, name: &str) -> String {
    let mut conn = node.client();
    let pair: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query(&mut conn)
        .unwrap();
    pair[1].clone()
}

#[test]
fn acl_users_apply_on_every_node_and_reach_a_node_that_was_down() {
    let mut c = Cluster::start(3, &[]);
    c.nodes[2].kill9();
    let mut n0 = c.nodes[0].client();
    let _: () = redis::cmd("ACL")
        .arg(&[
            "SETUSER", "alice", "on", ">s3cret", "~app:*", "+get", "+set",
        ])
        .query(&mut n0)
        .unwrap();
    assert!(
        auth_ok(&c.nodes[1], "alice", "s3cret"),
        "alice unknown on node 1"
    );
    assert!(!auth_ok(&c.nodes[1], "alice", "wrong"));
    // Her permissions travel too: a key outside ~app:* is refused on node 1.
    let mut as_alice = c.nodes[1].client();
    let _: () = redis::cmd("AUTH")
        .arg(&["alice", "s3cret"])
        .query(&mut as_alice)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(&["app:1", "v"])
        .query(&mut as_alice)
        .unwrap();
    let e = redis::cmd("SET")
        .arg(&["other", "v"])
        .query::<()>(&mut as_alice)
        .unwrap_err();
    assert!(e.to_string().contains("NOPERM"), "{e}");

    // Node 2 was down when alice was made: it learns her when it is back.
    c.nodes[2].restart();
    eventually(
        "the restarted node knows alice",
        Duration::from_secs(30),
        || auth_ok(&c.nodes[2], "alice", "s3cret"),
    );

    // A change of one user through another node replaces her everywhere.
    let mut n2 = c.nodes[2].client();
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "alice", "resetpass", ">n3w"])
        .query(&mut n2)
        .unwrap();
    for node in &c.nodes {
        assert!(
            auth_ok(node, "alice", "n3w"),
            "new password unknown on {}",
            node.url(false)
        );
        assert!(
            !auth_ok(node, "alice", "s3cret"),
            "old password still works on {}",
            node.url(false)
        );
    }
    // ... and so does a deletion, which also closes her connections.
    let deleted: i64 = redis::cmd("ACL")
        .arg(&["DELUSER", "alice"])
        .query(&mut n2)
        .unwrap();
    assert_eq!(deleted, 1);
    for node in &c.nodes {
        assert!(
            !auth_ok(node, "alice", "n3w"),
            "alice still on {}",
            node.url(false)
        );
    }
    eventually(
        "alice's connection on node 1 is closed",
        Duration::from_secs(10),
        || redis::cmd("PING").query::<String>(&mut as_alice).is_err(),
    );
}

#[test]
fn config_set_of_cluster_wide_parameters_applies_everywhere_and_local_ones_stay() {
    let mut c = Cluster::start(3, &[]);
    let mut n0 = c.nodes[0].client();
    let before_hz = config_get(&c.nodes[1], "hz");
    let _: () = redis::cmd("CONFIG")
        .arg(&[
            "SET",
            "slowlog-max-len",
            "77",
            "slowlog-log-slower-than",
            "4321",
            "hz",
            "42",
        ])
        .query(&mut n0)
        .unwrap();
    for node in &c.nodes {
        assert_eq!(config_get(node, "slowlog-max-len"), "77");
        assert_eq!(config_get(node, "slowlog-log-slower-than"), "4321");
    }
    assert_eq!(config_get(&c.nodes[0], "hz"), "42");
    assert_eq!(config_get(&c.nodes[1], "hz"), before_hz, "hz is node-local");

    // A node that was down gets the newer value when it is back, even though its own
    // start-up flags say otherwise.
    c.nodes[2].kill9();
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "slowlog-max-len", "88"])
        .query(&mut n0)
        .unwrap();
    c.nodes[2].restart();
    eventually(
        "the restarted node has the new slowlog-max-len",
        Duration::from_secs(30),
        || config_get(&c.nodes[2], "slowlog-max-len") == "88",
    );

    // requirepass is cluster-wide: set through one node, every node asks for it.
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "requirepass", "ringpass"])
        .query(&mut n0)
        .unwrap();
    for node in &c.nodes {
        let mut conn = node.client();
        let e = redis::cmd("GET")
            .arg("k")
            .query::<Option<String>>(&mut conn)
            .unwrap_err();
        assert!(e.to_string().contains("NOAUTH"), "{}: {e}", node.url(false));
        assert!(auth_ok(node, "default", "ringpass"));
    }
}

//! A node after an unclean restart, and the clock checks, with real processes
//! (docs/cluster.md, "After an unclean restart" and "Placement and clocks"):
//!
//! - a node that lost acknowledged writes in a crash does not count toward R nor W
//!   until it compared its partitions with their other replicas (CLUSTER INFO says
//!   so), and then serves every acknowledged write;
//! - a node whose clock is off from the others refuses to coordinate with a clear error
//!   and reports it, while it still serves as a replica;
//! - a node whose clock floor is ahead of the wall clock after a crash refuses writes
//!   until the wall clock catches up.

use kv_tests::cluster::{cluster_info, merkle_roots, Cluster, Plan};
use kv_tests::copy_dir;
use kv_tests::{eventually, Kvd};
use redis::Commands;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Failing reads and writes (a paused replica) give up after this long; database 1 is
/// eventual: its writes are replicated at W, not by consensus.
const SHORT_TIMEOUT_EVENTUAL_DB1: &[&str] = &[
    "--cluster-request-timeout-ms",
    "1000",
    "--cluster-eventual-databases",
    "1",
];

fn signal(node: &Kvd, sig: i32) {
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(node.pid() as i32, sig) };
}

fn info_u64(node: &Kvd, field: &str) -> Option<u64> {
    cluster_info(node, field).and_then(|v| v.parse().ok())
}

/// Writes `key` through `conn` until one attempt is acknowledged (a replica that was
/// just paused or stopped may make an attempt time out first).
fn set_acknowledged(conn: &mut redis::Connection, key: &str, value: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match conn.set::<_, _, ()>(key, value) {
            Ok(()) => return,
            Err(e) => assert!(
                std::time::Instant::now() < deadline,
                "{key} never acknowledged: {e}"
            ),
        }
    }
}

#[test]
fn a_node_that_lost_acknowledged_writes_does_not_count_until_it_caught_up() {
    let mut c = Cluster::start(3, SHORT_TIMEOUT_EVENTUAL_DB1);
    // Node 1 stops cleanly: it will miss the writes below and restart without catching
    // up (its data is all it acknowledged).
    assert!(c.nodes[1].signal_and_wait(libc::SIGTERM).success());
    // A crash image of node 2 before the writes: what a power cut would leave of it if
    // its last writes were not yet synced (appendfsync everysec).
    let image = tempfile::tempdir().unwrap();
    signal(&c.nodes[2], libc::SIGSTOP);
    copy_dir(c.nodes[2].data_dir(), image.path());
    signal(&c.nodes[2], libc::SIGCONT);
    // Acknowledged by nodes 0 and 2 (W = 2; node 1 is down).
    let mut writer = c.nodes[0].client();
    let keys: Vec<String> = (0..20).map(|i| format!("acked{i}")).collect();
    for k in &keys {
        set_acknowledged(&mut writer, k, &format!("v-{k}"));
    }
    // Node 2 crashes and comes back without them; node 0, the only other holder, pauses.
    c.nodes[2].kill9();
    std::fs::remove_dir_all(c.nodes[2].data_dir()).unwrap();
    copy_dir(image.path(), c.nodes[2].data_dir());
    signal(&c.nodes[0], libc::SIGSTOP);
    c.nodes[1].restart();
    c.nodes[2].restart();
    let roots = merkle_roots(&c.nodes[1]);
    assert!(roots.is_some());
    assert_eq!(
        roots,
        merkle_roots(&c.nodes[2]),
        "nodes 1 and 2 hold the same data: neither has the acknowledged writes"
    );
    assert_eq!(
        cluster_info(&c.nodes[1], "kvd_catching_up").as_deref(),
        Some("0")
    );
    assert_eq!(
        cluster_info(&c.nodes[2], "kvd_catching_up").as_deref(),
        Some("1")
    );
    eventually(
        "node 2 reports the replica it could not compare with",
        Duration::from_secs(60),
        || info_u64(&c.nodes[2], "kvd_catch_up_unreached_peers") == Some(1),
    );
    assert_eq!(
        info_u64(&c.nodes[2], "kvd_catch_up_partitions_left"),
        Some(256),
        "every partition has node 0 as a replica at N = 3"
    );
    // If node 2 counted, nodes 1 and 2 would make a quorum that answers "no such key".
    for node in [&c.nodes[1], &c.nodes[2]] {
        let mut conn = node.client();
        for k in keys.iter().take(5) {
            let got: redis::RedisResult<Option<String>> = conn.get(k);
            assert!(
                got.is_err(),
                "{k} read through port {} while the only current replicas are paused or catching up: {got:?}",
                node.port
            );
        }
    }
    // Nor do its write acknowledgements count: a write in the eventual database through
    // either node has only nodes 1 and 2 to answer, and node 2 stores it without
    // counting toward W = 2, so the client gets an error, never OK.
    for node in [&c.nodes[1], &c.nodes[2]] {
        let mut conn = node.client();
        redis::cmd("SELECT").arg(1).query::<()>(&mut conn).unwrap();
        let got: redis::RedisResult<()> = conn.set("during-catch-up", "x");
        assert!(
            got.is_err(),
            "a write through port {} counted a catching-up replica: {got:?}",
            node.port
        );
    }
    assert_eq!(
        cluster_info(&c.nodes[2], "kvd_catching_up").as_deref(),
        Some("1")
    );
    // Node 0 is back: node 2 compares with it and counts again. Meanwhile every read
    // through it returns the acknowledged value or an error, never an older answer.
    signal(&c.nodes[0], libc::SIGCONT);
    let mut through_2 = c.nodes[2].client();
    eventually("node 2 caught up", Duration::from_secs(60), || {
        for k in &keys {
            if let Ok(got) = through_2.get::<_, Option<String>>(k) {
                assert_eq!(got, Some(format!("v-{k}")), "{k} through node 2");
            }
        }
        cluster_info(&c.nodes[2], "kvd_catching_up").as_deref() == Some("0")
    });
    assert_eq!(
        info_u64(&c.nodes[2], "kvd_catch_up_partitions_left"),
        Some(0)
    );
    // Caught up, it counts toward W again: the same write through it is acknowledged.
    redis::cmd("SELECT")
        .arg(1)
        .query::<()>(&mut through_2)
        .unwrap();
    set_acknowledged(&mut through_2, "after-catch-up", "y");
    for node in &c.nodes {
        let mut conn = node.client();
        for k in &keys {
            let got: Option<String> = conn.get(k).unwrap();
            assert_eq!(
                got,
                Some(format!("v-{k}")),
                "{k} through port {}",
                node.port
            );
        }
    }
}

#[test]
fn a_node_whose_clock_is_off_refuses_to_coordinate_but_serves_as_a_replica() {
    // Node 2's wall clock runs 3 s ahead of the others' (test-only offset); the bound
    // is 500 ms.
    let plan = Plan::new(3);
    let nodes: Vec<Kvd> = (0..3)
        .map(|i| {
            let mut extra = vec!["--cluster-max-clock-offset-ms", "500"];
            if i == 2 {
                extra.extend(["--cluster-test-clock-offset-ms", "3000"]);
            }
            let args = plan.args(i, &extra);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Kvd::start_at(plan.ports[i].0, &args)
        })
        .collect();
    let mut c = Cluster { nodes };
    c.wait_formed();
    eventually(
        "node 2 finds its clock off and the others find theirs fine",
        Duration::from_secs(60),
        || {
            cluster_info(&c.nodes[2], "kvd_clock_state").as_deref() == Some("skewed")
                && c.nodes[..2]
                    .iter()
                    .all(|n| cluster_info(n, "kvd_clock_state").as_deref() == Some("ok"))
        },
    );
    let offset = info_u64(&c.nodes[2], "kvd_max_clock_offset_ms").unwrap();
    assert!(offset > 500, "measured offset {offset} ms");
    let mut skewed = c.nodes[2].client();
    for result in [
        skewed.set::<_, _, ()>("k", "v").map(|_| ()),
        skewed.get::<_, Option<String>>("k").map(|_| ()),
    ] {
        let e = result.expect_err("a skewed node coordinated");
        let text = e.to_string();
        assert_eq!(e.kind(), redis::ErrorKind::TryAgain, "{text}");
        assert!(
            text.contains("clock") && text.contains("more than the 500 ms allowed"),
            "{text}"
        );
    }
    // As a replica it still counts: with node 1 gone, W = 2 and R = 2 need node 2.
    c.nodes[1].kill9();
    let mut writer = c.nodes[0].client();
    set_acknowledged(&mut writer, "k", "through-0");
    let got: Option<String> = writer.get("k").unwrap();
    assert_eq!(got.as_deref(), Some("through-0"));
    assert_eq!(
        cluster_info(&c.nodes[2], "kvd_clock_state").as_deref(),
        Some("skewed")
    );
}

#[test]
fn a_clock_floor_ahead_of_the_wall_clock_stops_writes_until_it_is_reached() {
    let mut c = Cluster::start(3, &[]);
    let mut first = c.nodes[0].client();
    let _: () = first.set("before", "1").unwrap();
    // After a crash, node 0's clock floor says versions up to 20 s from now may have
    // been issued (as after a crash by a node whose system clock was then set back).
    c.nodes[0].kill9();
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let floor = format!("{{\"format\":1,\"floor_ms\":{}}}", now_ms + 20_000);
    std::fs::write(c.nodes[0].data_dir().join("cluster").join("hlc"), floor).unwrap();
    c.nodes[0].restart();
    assert_eq!(
        cluster_info(&c.nodes[0], "kvd_clock_state").as_deref(),
        Some("ahead_after_restart")
    );
    let ahead = info_u64(&c.nodes[0], "kvd_clock_ahead_of_wall_ms").unwrap();
    assert!(ahead > 500, "{ahead} ms ahead");
    let mut conn = c.nodes[0].client();
    let e = conn
        .set::<_, _, ()>("k", "v")
        .expect_err("a write with versions from the future");
    let text = e.to_string();
    assert_eq!(e.kind(), redis::ErrorKind::TryAgain, "{text}");
    assert!(text.contains("ahead of the wall clock"), "{text}");
    // Reads issue no version: served (by the other replicas while it catches up).
    let got: Option<String> = conn.get("before").unwrap();
    assert_eq!(got.as_deref(), Some("1"));
    eventually(
        "the wall clock reaches the floor and writes are taken again",
        Duration::from_secs(90),
        || cluster_info(&c.nodes[0], "kvd_clock_state").as_deref() == Some("ok"),
    );
    let _: () = conn.set("k", "v").unwrap();
    let mut other = c.nodes[1].client();
    let got: Option<String> = other.get("k").unwrap();
    assert_eq!(got.as_deref(), Some("v"));
}

#[test]
fn the_slow_merkle_rebuild_finds_a_leaf_damaged_behind_the_trees_back() {
    // One pass over the 256 partitions per second, so the test sees whole passes.
    let c = Cluster::start(3, &["--cluster-merkle-rebuild-interval-ms", "1000"]);
    let mut nodes = c.nodes;
    let mut conn = nodes[0].client();
    for i in 0..50 {
        set_acknowledged(&mut conn, &format!("k{i}"), "v");
    }
    let passes_done = |node: &Kvd| info_u64(node, "kvd_merkle_rebuilds").unwrap_or(0) >= 256;
    eventually(
        "a first rebuild pass on node 2",
        Duration::from_secs(60),
        || passes_done(&nodes[2]),
    );
    eventually(
        "equal Merkle roots everywhere",
        Duration::from_secs(60),
        || {
            let roots: Vec<_> = nodes.iter().map(merkle_roots).collect();
            roots[0].is_some() && roots.iter().all(|r| *r == roots[0])
        },
    );

    // Stopped cleanly, one leaf of node 2's trees is overwritten with a wrong hash:
    // damage no to-do tells about.
    assert!(nodes[2].signal_and_wait(libc::SIGTERM).success());
    {
        let db = kv_engine::Db::open(nodes[2].data_dir(), kv_engine::Options::default()).unwrap();
        let tree = db.keyspace("merkle").unwrap();
        let leaf = db
            .iter_prefix(tree, b"L", None)
            .unwrap()
            .next()
            .expect("node 2 holds leaves")
            .unwrap()
            .key;
        db.put(tree, &leaf, &[0x55; 16]).unwrap();
        db.close().unwrap();
    }
    nodes[2].restart();
    let fixed = |node: &Kvd| info_u64(node, "kvd_merkle_leaves_fixed");
    eventually(
        "a rebuild pass after the restart",
        Duration::from_secs(60),
        || passes_done(&nodes[2]),
    );
    // Nothing was written since the restart, so the one damaged leaf is all it fixed.
    assert_eq!(fixed(&nodes[2]), Some(1));
    let roots: Vec<_> = nodes.iter().map(merkle_roots).collect();
    assert!(roots[0].is_some() && roots.iter().all(|r| *r == roots[0]));
}

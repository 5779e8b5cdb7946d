//! Streaming partitions to new replicas, as an operator watches it (docs/cluster.md,
//! "Changing the layout" and "Watching a change"), with real kvd processes: PLAN says
//! how many bytes and records will move; while a throttled join streams, CLUSTER INFO
//! and CLUSTER LAYOUT STATUS show bytes streamed, rate and time left; afterwards the new
//! node holds exactly what the others hold (values, tombstones and records written by
//! consensus rounds, compared by Merkle root), and the records it received are counted.
//! A leave then shows which members the departing node waits for.

use kv_tests::cluster::{
    assert_placed_exactly, cluster_info, connect, layout_command as layout, my_id, Cluster, Plan,
};
use kv_tests::layout_change::{moving_partitions, partition_of};
use kv_tests::{eventually, info_field as field, Kvd};
use std::time::Duration;

/// How long one layout change may take on a loaded two-core machine.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(180);

/// Records written before the join: enough that a throttled stream lasts several
/// seconds, few enough to write quickly through consensus.
const KEYS: u64 = 3000;

/// Stream rate of the test nodes (bytes per second). The joiner receives about 3/4 of
/// some 450 KB: at this rate the stream lasts seconds, however fast the machine, so
/// progress can be watched while it runs (the rate is a lower bound on the duration,
/// not a guess about speed).
const STREAM_RATE: &str = "40000";

fn flags() -> Vec<String> {
    [
        "--cluster-bootstrap-expect",
        "3",
        "--cluster-request-timeout-ms",
        "1000",
        "--cluster-consensus-timeout-ms",
        "2000",
        "--cluster-stream-bytes-per-sec",
        STREAM_RATE,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn num(text: &str, name: &str) -> u64 {
    field(text, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no number {name} in:\n{text}"))
}

fn info_num(node: &Kvd, name: &str) -> Option<u64> {
    cluster_info(node, name).and_then(|v| v.parse().ok())
}

/// Runs anti-entropy now on every node of `nodes` (CLUSTER REPAIR), as an operator
/// would before comparing replicas. The layout register needs it: a consensus round is
/// chosen by a majority, and when two nodes end a change at once (both commit the same
/// settled layout, which the register allows) one replica can refuse the last accept
/// for the other round's promise and keep the register's previous version; these nodes
/// run anti-entropy only every ten minutes (the default), which would bring it later.
fn repair_now(nodes: &[&Kvd]) {
    for node in nodes {
        let mut c = connect(&node.url(false));
        eventually("a repair round without failures", CHANGE_TIMEOUT, || {
            redis::cmd("CLUSTER")
                .arg("REPAIR")
                .query::<String>(&mut c)
                .is_ok_and(|report| report.ends_with("failures=0"))
        });
    }
}

/// Waits until every node of `nodes` holds a layout newer than `version` without a
/// transition.
fn wait_ended(nodes: &[&Kvd], version: u64) {
    for node in nodes {
        eventually("the change ended", CHANGE_TIMEOUT, || {
            cluster_info(node, "kvd_layout_transition").as_deref() == Some("none")
                && info_num(node, "kvd_layout_version").is_some_and(|v| v > version)
        });
    }
}

#[test]
fn a_join_streams_its_partitions_and_shows_its_progress() {
    let plan = Plan::new(4);
    let start = |i: usize| {
        let args = plan.args(i, &[]);
        let mut args = args;
        args.extend(flags());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Kvd::start_at(plan.ports[i].0, &args)
    };
    let cluster = Cluster {
        nodes: (0..3).map(start).collect(),
    };
    cluster.wait_formed();

    // Values of 100 bytes, some deleted (tombstones), and counters: every write of a
    // linearizable database goes through a consensus round.
    let mut c = connect(&cluster.nodes[0].url(false));
    let value = "v".repeat(100);
    for i in 0..KEYS {
        let _: () = redis::cmd("SET")
            .arg(format!("key:{i}"))
            .arg(&value)
            .query(&mut c)
            .expect("SET");
    }
    for i in (0..KEYS).step_by(10) {
        let _: () = redis::cmd("DEL")
            .arg(format!("key:{i}"))
            .query(&mut c)
            .expect("DEL");
    }
    for i in 0..20 {
        let _: i64 = redis::cmd("INCRBY")
            .arg(format!("counter:{i}"))
            .arg(i)
            .query(&mut c)
            .expect("INCRBY");
    }
    let keys: Vec<String> = (0..KEYS)
        .map(|i| format!("key:{i}"))
        .chain((0..20).map(|i| format!("counter:{i}")))
        .collect();

    // The joiner; once met, the plan says what moves, in bytes too.
    let joiner = start(3);
    let joiner_bus = format!("127.0.0.1:{}", plan.ports[3].1);
    eventually("node 1 has met the joiner", CHANGE_TIMEOUT, || {
        layout(&cluster.nodes[0], &["SHOW"]).is_ok_and(|s| s.contains(&format!("bus={joiner_bus}")))
    });
    eventually("the join is staged", CHANGE_TIMEOUT, || {
        layout(&cluster.nodes[0], &["ASSIGN", &joiner_bus]).is_ok()
    });
    let shown = layout(&cluster.nodes[0], &["PLAN"]).expect("PLAN");
    assert_eq!(num(&shown, "partitions_unmeasured"), 0, "{shown}");
    assert!(
        !shown
            .lines()
            .any(|l| l.starts_with("partition:") && l.contains("bytes=?")),
        "a partition without a size:\n{shown}"
    );
    let moving = moving_partitions(&shown);
    assert_eq!(
        moving.len() as u64,
        num(&shown, "moved_assignments"),
        "{shown}"
    );
    let ours_moving = keys
        .iter()
        .filter(|k| moving.contains(&partition_of(&mut c, k)))
        .count() as u64;
    assert!(ours_moving > 0);
    // Every record of ours in a moving partition, plus at most the layout register's.
    let to_move = num(&shown, "keys_to_move");
    assert!(
        (ours_moving..=ours_moving + 1).contains(&to_move),
        "keys_to_move {to_move}, ours in moving partitions {ours_moving}:\n{shown}"
    );
    assert!(num(&shown, "bytes_to_move") > to_move * 100, "{shown}");
    let next = num(&shown, "next_version");
    let applied = layout(&cluster.nodes[0], &["APPLY", &next.to_string()]).expect("APPLY");
    assert_eq!(field(&applied, "transition").as_deref(), Some("started"));

    // While the throttled stream runs, the joiner shows it in CLUSTER INFO and CLUSTER
    // LAYOUT STATUS.
    eventually("the joiner shows bytes streaming", CHANGE_TIMEOUT, || {
        let streaming = info_num(&joiner, "kvd_layout_streamed_bytes").is_some_and(|b| b > 0)
            && info_num(&joiner, "kvd_layout_expected_bytes").is_some_and(|b| b > 0)
            && info_num(&joiner, "kvd_layout_stream_bytes_per_sec").is_some_and(|r| r > 0);
        let unfinished = info_num(&joiner, "kvd_layout_copied_partitions")
            < info_num(&joiner, "kvd_layout_incoming_partitions");
        streaming && unfinished
    });
    let status = layout(&joiner, &["STATUS"]).expect("STATUS");
    assert_eq!(
        field(&status, "transition"),
        Some(format!("{}->{next}", next - 1))
    );
    assert!(num(&status, "incoming_partitions") > 0, "{status}");
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("partition:") && l.contains("phase=") && l.contains("eta_sec=")),
        "{status}"
    );
    let eta = cluster_info(&joiner, "kvd_layout_copy_eta_sec").expect("eta");
    assert!(eta.parse::<i64>().is_ok_and(|e| e >= 0), "eta {eta}");

    let all: Vec<&Kvd> = cluster
        .nodes
        .iter()
        .chain(std::iter::once(&joiner))
        .collect();
    wait_ended(&all, next);
    // What the snapshots brought is counted, even where anti-entropy got there first.
    let copied = info_num(&joiner, "kvd_layout_keys_copied").expect("keys copied");
    assert!(
        copied >= ours_moving,
        "keys copied {copied} < {ours_moving}"
    );
    repair_now(&all);
    assert_placed_exactly(&all, 3, CHANGE_TIMEOUT);
    // Every value, tombstone and counter reads back through the joiner.
    let mut j = connect(&joiner.url(false));
    for i in 0..KEYS {
        let got: Option<String> = redis::cmd("GET")
            .arg(format!("key:{i}"))
            .query(&mut j)
            .expect("GET");
        let want = (i % 10 != 0).then(|| value.clone());
        assert_eq!(got, want, "key:{i}");
    }
    for i in 0..20i64 {
        let got: i64 = redis::cmd("GET")
            .arg(format!("counter:{i}"))
            .query(&mut j)
            .expect("GET");
        assert_eq!(got, i);
    }

    // A leave: while members copy node 1's partitions, STATUS says whom it waits for.
    let leaver = my_id(&cluster.nodes[0]);
    let rest: Vec<&Kvd> = vec![&cluster.nodes[1], &cluster.nodes[2], &joiner];
    eventually("the leave is staged", CHANGE_TIMEOUT, || {
        layout(&cluster.nodes[1], &["REMOVE", &leaver]).is_ok()
    });
    let shown = layout(&cluster.nodes[1], &["PLAN"]).expect("PLAN");
    assert!(num(&shown, "bytes_to_move") > 0, "{shown}");
    let next = num(&shown, "next_version");
    layout(&cluster.nodes[1], &["APPLY", &next.to_string()]).expect("APPLY");
    eventually("a member shows the leaver waiting", CHANGE_TIMEOUT, || {
        layout(&cluster.nodes[1], &["STATUS"]).is_ok_and(|s| {
            s.lines()
                .any(|l| l.starts_with(&format!("safe_to_remove:{leaver} no waiting_for=")))
        })
    });
    wait_ended(&rest, next);
    repair_now(&rest);
    assert_placed_exactly(&rest, 3, CHANGE_TIMEOUT);
}

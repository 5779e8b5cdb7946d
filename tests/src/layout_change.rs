//! Driving a layout change of a real-process cluster (docs/cluster.md, "Changing the
//! layout"), for the tests that grow, shrink and heal one: starting a node that waits to
//! be added, staging and applying a change after checking its plan, and waiting until
//! every node holds the layout that ends it.

use crate::cluster::{cluster_info, connect, layout_command};
use crate::{eventually, free_port, info_field, Kvd};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Flags of the nodes of a layout-change test: short request and consensus timeouts,
/// because a node acknowledges a layout once requests started under the previous one
/// are over, which these bound; and anti-entropy every second, the catch-up of a copy.
pub const CHANGE_FLAGS: &[&str] = &[
    "--cluster-request-timeout-ms",
    "1000",
    "--cluster-consensus-timeout-ms",
    "2000",
    "--cluster-anti-entropy-interval-ms",
    "1000",
];

/// A node started to join the cluster whose members listen on `bus_ports` (named as its
/// seeds), with N = 3, W = R = 2 and `extra` flags; returns it and its bus port.
pub fn start_joiner(bus_ports: &[u16], extra: &[&str]) -> (Kvd, u16) {
    let (port, bus) = (free_port(), free_port());
    let seeds: Vec<String> = bus_ports
        .iter()
        .chain(std::iter::once(&bus))
        .map(|b| format!("127.0.0.1:{b}"))
        .collect();
    let bus_text = bus.to_string();
    let seeds = seeds.join(",");
    let mut args: Vec<&str> = vec![
        "--cluster-enabled",
        "yes",
        "--cluster-port",
        &bus_text,
        "--cluster-seeds",
        &seeds,
        "--cluster-replicas",
        "3",
        "--cluster-write-quorum",
        "2",
        "--cluster-read-quorum",
        "2",
    ];
    args.extend_from_slice(extra);
    (Kvd::start_at(port, &args), bus)
}

/// The bus port a node was started with (`--cluster-port`).
pub fn bus_port(node: &Kvd) -> u16 {
    let i = node
        .args
        .iter()
        .position(|a| a == "--cluster-port")
        .expect("--cluster-port");
    node.args[i + 1].parse().expect("bus port")
}

/// Waits until `via` has met the node listening on bus port `bus` (a `candidate:` line
/// of CLUSTER LAYOUT SHOW names it), so that it can be staged.
pub fn wait_met(via: &Kvd, bus: u16, timeout: Duration) {
    let addr = format!("bus=127.0.0.1:{bus}");
    eventually(&format!("the node on {addr} was met"), timeout, || {
        layout_command(via, &["SHOW"]).is_ok_and(|s| s.contains(&addr))
    });
}

/// Stages `change` through `via`, checks the plan (it moves data; a plan applies only to
/// the version it was made for) and applies it; returns the version applied (the one
/// with the transition).
pub fn apply_change(via: &Kvd, change: &[&str], timeout: Duration) -> u64 {
    let next = plan_change(via, change, timeout);
    apply_planned(via, next);
    next
}

/// Stages `change` through `via` and checks its plan moves data; returns the version
/// the plan makes (for [`apply_planned`]).
pub fn plan_change(via: &Kvd, change: &[&str], timeout: Duration) -> u64 {
    eventually("the change is staged", timeout, || {
        layout_command(via, change).is_ok()
    });
    let plan = layout_command(via, &["PLAN"]).expect("PLAN");
    let next: u64 = info_field(&plan, "next_version")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no next_version in {plan}"));
    let moved: usize = info_field(&plan, "moved_assignments")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no moved_assignments in {plan}"));
    assert!(moved > 0, "the change moves data: {plan}");
    next
}

/// Applies the plan that makes version `next` through `via`, after checking that a plan
/// applies only to the version it was made for; the transition starts.
pub fn apply_planned(via: &Kvd, next: u64) {
    let stale = layout_command(via, &["APPLY", &(next + 1).to_string()]).unwrap_err();
    assert!(stale.to_string().contains("review"), "{stale}");
    let applied = layout_command(via, &["APPLY", &next.to_string()]).expect("APPLY");
    assert_eq!(
        info_field(&applied, "transition").as_deref(),
        Some("started"),
        "{applied}"
    );
}

/// The partitions a CLUSTER LAYOUT PLAN reply moves (its `partition:N ...` lines).
pub fn moving_partitions(plan: &str) -> BTreeSet<u64> {
    plan.lines()
        .filter_map(|l| l.strip_prefix("partition:"))
        .map(|l| {
            l.split_whitespace()
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("no partition number in {l}"))
        })
        .collect()
}

/// The partition of `key` (CLUSTER KEYSLOT / 64).
pub fn partition_of(c: &mut redis::Connection, key: &str) -> u64 {
    let slot: u64 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query(c)
        .expect("KEYSLOT");
    slot / 64
}

/// A node's layout version (CLUSTER INFO), 0 if it does not answer.
pub fn layout_version(node: &Kvd) -> u64 {
    cluster_info(node, "kvd_layout_version")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Waits until every node of `nodes` holds a layout newer than `next` without a
/// transition, and returns the newest such version (a change ends two versions after
/// the one applied: reads moved, then settled). On timeout it panics with every node's
/// CLUSTER LAYOUT SHOW and its notable log lines.
pub fn wait_ended(nodes: &[&Kvd], next: u64, timeout: Duration) -> u64 {
    let deadline = Instant::now() + timeout;
    let mut ended_at = next;
    for (i, node) in nodes.iter().enumerate() {
        loop {
            let version = layout_version(node);
            if cluster_info(node, "kvd_layout_transition").as_deref() == Some("none")
                && version > next
            {
                ended_at = ended_at.max(version);
                break;
            }
            if Instant::now() > deadline {
                panic!(
                    "node {i} never held the layout that ends the change to {next}; the nodes show:\n{}",
                    describe(nodes)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    ended_at
}

/// Waits until every node of `nodes` deleted the partitions that layout `version` (one
/// without transition) no longer gives it (CLUSTER INFO `kvd_layout_cleaned`).
pub fn wait_cleaned(nodes: &[&Kvd], version: u64, timeout: Duration) {
    for (i, node) in nodes.iter().enumerate() {
        eventually(
            &format!("node {i} cleaned up after layout {version}"),
            timeout,
            || {
                cluster_info(node, "kvd_layout_cleaned")
                    .and_then(|v| v.parse::<u64>().ok())
                    .is_some_and(|v| v >= version)
            },
        );
    }
}

/// Every node's CLUSTER LAYOUT SHOW and its warnings, errors and layout log lines.
fn describe(nodes: &[&Kvd]) -> String {
    nodes
        .iter()
        .map(|n| {
            let shown = layout_command(n, &["SHOW"]).unwrap_or_else(|e| e.to_string());
            let text = n.log_text();
            let notable: Vec<&str> = text
                .lines()
                .filter(|l| !l.contains("anti-entropy round"))
                .filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("layout"))
                .collect();
            format!("{shown}\nnotable log lines:\n{}", notable.join("\n"))
        })
        .collect::<Vec<_>>()
        .join("\n----\n")
}

/// Writes `key:<i>` = i for i in 0..count through `via`; returns the i acknowledged.
pub fn write_numbered_keys(via: &Kvd, count: u64) -> Vec<u64> {
    let mut c = connect(&via.url(false));
    (0..count)
        .filter(|i| {
            redis::cmd("SET")
                .arg(format!("key:{i}"))
                .arg(*i)
                .query::<()>(&mut c)
                .is_ok()
        })
        .collect()
}

/// Every acknowledged key (`key:<i>` = i, as [`write_numbered_keys`] writes) reads back
/// through every node of `nodes`.
pub fn assert_all_readable(acked: &[u64], nodes: &[&Kvd]) {
    for (n, node) in nodes.iter().enumerate() {
        let mut c = connect(&node.url(false));
        for chunk in acked.chunks(200) {
            let keys: Vec<String> = chunk.iter().map(|i| format!("key:{i}")).collect();
            let got: Vec<Option<u64>> = redis::cmd("MGET").arg(&keys).query(&mut c).expect("MGET");
            for (i, v) in chunk.iter().zip(got) {
                assert_eq!(v, Some(*i), "key:{i} through node {n}");
            }
        }
    }
}

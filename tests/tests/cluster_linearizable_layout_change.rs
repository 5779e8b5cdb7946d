//! Consensus on keys of a moving partition stays linearizable, with real processes: the
//! workload of cluster_linearizable.rs (clients through every node GET at SERIAL, SET
//! and DEL a few keys; kv-checker looks for a legal order per key) runs while a fourth
//! node joins, another node paused with SIGSTOP across the APPLY, and then one of the
//! first three leaves, a remaining node killed with -9 and restarted in the middle of
//! the leave. The keys are chosen in partitions the join
//! moves, and the leaver is the node that holds most of them, so the consensus rounds of
//! the history run while their replica set changes.
//!
//! Why this holds (docs/cluster.md, "Changing the layout", the transition): during a
//! change a round needs a majority of promises and of accepts in the previous replica
//! set and in the next one, so any two rounds meet at an acceptor whichever placement
//! each coordinator used; when the change settles and rounds ask the new replicas only,
//! the copy has brought them every accepted value (snapshots and anti-entropy carry
//! values accepted by rounds unchanged). Rounds planned with one set alone are the
//! failure of CASSANDRA-8346: acknowledged writes lost, reads going back.
//!
//! What it does not show: a sabotaged build whose rounds needed a majority of the new
//! replicas only passed this test and variants of it in all 14 runs tried. Clients
//! write each key dozens of times a second, so a round that missed an older value soon
//! has a newer one to return, and a node restarted after kill -9 answers no round until
//! it caught up (docs/cluster.md, "After an unclean restart"). The deterministic
//! simulation catches that mistake
//! (`the_checker_catches_layout_changes_whose_writes_skip_the_previous_replicas`).

use kv_tests::cluster::{cluster_info, connect, layout_command, merkle_roots, my_id, Cluster};
use kv_tests::layout_change::{
    apply_planned, bus_port, moving_partitions, partition_of, plan_change, start_joiner,
    wait_ended, wait_met, CHANGE_FLAGS,
};
use kv_tests::linearizable_workload::Workload;
use kv_tests::Kvd;
use std::collections::BTreeSet;
use std::time::Duration;

/// How long one layout change may take on a loaded two-core machine.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(120);
/// Keys of the history: few, so that clients contend on each, and four so that the node
/// chosen to leave holds at least three of their partitions (each is on two of the
/// three first nodes after the join).
const KEYS: usize = 4;
/// Every client reads and writes every key.
const CLIENTS: u64 = 6;
/// The node paused before the join is applied and resumed during it (not node 0,
/// through which the join is applied).
const PAUSED_ACROSS_JOIN: usize = 1;
/// Operations between the steps of the scenario: progress, not time, paces it.
const STEP_OPS: u64 = 300;

#[test]
fn consensus_on_moving_partitions_stays_linearizable_through_a_join_and_a_leave() {
    let mut cluster = Cluster::start(3, CHANGE_FLAGS);
    let bus: Vec<u16> = cluster.nodes.iter().map(bus_port).collect();
    let (joiner, joiner_bus) = start_joiner(&bus, CHANGE_FLAGS);
    wait_met(&cluster.nodes[0], joiner_bus, CHANGE_TIMEOUT);
    let join = ["ASSIGN".to_string(), format!("127.0.0.1:{joiner_bus}")];
    let join: Vec<&str> = join.iter().map(String::as_str).collect();
    let next = plan_change(&cluster.nodes[0], &join, CHANGE_TIMEOUT);
    let plan = layout_command(&cluster.nodes[0], &["PLAN"]).expect("PLAN");
    let keys = keys_in(&moving_partitions(&plan), &cluster.nodes[0]);
    let workload = Workload::start(urls(cluster.nodes.iter()), keys.clone(), CLIENTS);

    // The join: the joiner becomes a replica of the keys' partitions. A node is paused
    // across the APPLY and resumes in the middle of the change: it missed writes, and
    // learns the new layout late (its first requests, tagged with the older one, are
    // refused by replicas and run again: docs/cluster.md, "Changing the layout").
    workload.after_ops(STEP_OPS);
    cluster.nodes[PAUSED_ACROSS_JOIN].pause();
    workload.after_ops(STEP_OPS);
    apply_planned(&cluster.nodes[0], next);
    workload.set_urls(urls(cluster.nodes.iter().chain([&joiner])));
    workload.after_ops(STEP_OPS);
    cluster.nodes[PAUSED_ACROSS_JOIN].resume();
    workload.after_ops(STEP_OPS);
    show_phase("join", &cluster.nodes[0]);
    let all: Vec<&Kvd> = cluster.nodes.iter().chain([&joiner]).collect();
    wait_ended(&all, next, CHANGE_TIMEOUT);
    workload.after_ops(STEP_OPS);

    // The leave: the first node holding the most of the keys' partitions.
    let partitions = key_partitions(&keys, &cluster.nodes[0]);
    let leaver = (0..3)
        .max_by_key(|&i| {
            let roots = merkle_roots(&cluster.nodes[i]).expect("CLUSTER MERKLE");
            let held = partitions
                .iter()
                .filter(|&&p| !roots[p as usize].is_empty());
            (held.count(), std::cmp::Reverse(i))
        })
        .expect("three nodes");
    let (bounced, via) = ((leaver + 1) % 3, (leaver + 2) % 3);
    let leaver_id = my_id(&cluster.nodes[leaver]);
    let next = plan_change(&cluster.nodes[via], &["REMOVE", &leaver_id], CHANGE_TIMEOUT);
    let plan = layout_command(&cluster.nodes[via], &["PLAN"]).expect("PLAN");
    let moving = moving_partitions(&plan);
    let moved_keys = partitions.iter().filter(|p| moving.contains(p)).count();
    eprintln!("the leave moves the partitions of {moved_keys} of {KEYS} keys");
    assert!(moved_keys * 4 >= KEYS * 3, "{partitions:?} against {plan}");
    apply_planned(&cluster.nodes[via], next);
    workload.after_ops(STEP_OPS);
    // A remaining node dies in the middle of the leave and comes back: the rounds it
    // accepted are on its disk, and its peers' rounds go on without it meanwhile.
    cluster.nodes[bounced].kill9();
    workload.after_ops(STEP_OPS);
    show_phase("leave, node down", &cluster.nodes[via]);
    cluster.nodes[bounced].restart();
    let rest: Vec<&Kvd> = (0..3)
        .filter(|&i| i != leaver)
        .map(|i| &cluster.nodes[i])
        .chain([&joiner])
        .collect();
    // Its port may have changed; the leaver stays listed until the change ends, so
    // rounds keep starting from a departing coordinator.
    workload.set_urls(urls(rest.iter().copied().chain([&cluster.nodes[leaver]])));
    workload.after_ops(STEP_OPS);
    show_phase("leave, node back", &cluster.nodes[via]);
    wait_ended(&rest, next, CHANGE_TIMEOUT);
    workload.set_urls(urls(rest.iter().copied()));
    workload.after_ops(STEP_OPS);

    workload.check(|| {
        format!(
            "the leaving node's log:\n{}",
            cluster.nodes[leaver].log_text()
        )
    });
}

/// Prints where the change stands as seen by `node` (how much of the history ran during
/// the change: the change may also end before the step's operations do).
fn show_phase(step: &str, node: &Kvd) {
    eprintln!(
        "{step}: layout {:?}, transition {:?}",
        cluster_info(node, "kvd_layout_version"),
        cluster_info(node, "kvd_layout_transition")
    );
}

/// The client URLs of `nodes`.
fn urls<'a>(nodes: impl Iterator<Item = &'a Kvd>) -> Vec<String> {
    nodes.map(|n| n.url(false)).collect()
}

/// [`KEYS`] key names whose partitions are among `moving`, each in a partition of its
/// own (asked of `node`).
fn keys_in(moving: &BTreeSet<u64>, node: &Kvd) -> Vec<String> {
    let mut c = connect(&node.url(false));
    let mut taken = BTreeSet::new();
    let keys: Vec<String> = (0..10_000)
        .map(|i| format!("lin{i}"))
        .filter(|k| {
            let p = partition_of(&mut c, k);
            moving.contains(&p) && taken.insert(p)
        })
        .take(KEYS)
        .collect();
    assert_eq!(keys.len(), KEYS, "moving partitions: {moving:?}");
    keys
}

/// The partitions of `keys` (asked of `node`).
fn key_partitions(keys: &[String], node: &Kvd) -> Vec<u64> {
    let mut c = connect(&node.url(false));
    keys.iter().map(|k| partition_of(&mut c, k)).collect()
}

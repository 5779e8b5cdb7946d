//! The deterministic whole-cluster simulation (kv_cluster::sim, docs/cluster.md
//! "Deterministic simulation"): real node code over a simulated network with
//! partitions, message loss, delays, power cuts and restarts, and skewed clocks, all
//! on a paused clock and one seeded random source.
//!
//! `KVD_SIM_SEED=<n>` replays one seed; `KVD_SIM_SEEDS=<count>` runs seeds 0..count
//! (default [`DEFAULT_SEEDS`]). A failing run prints its seed and the command that
//! replays it.

use kv_cluster::sim::{self, LayoutStep, Sabotage, SimConfig, SimReport, Violation};
use std::collections::BTreeMap;
use std::time::Duration;

/// Seeds a plain `cargo test` runs.
const DEFAULT_SEEDS: u64 = 64;
/// Seeds of the three-node ring (at most; `KVD_SIM_SEEDS` may ask fewer).
const THREE_NODE_SEEDS: usize = 16;
/// Seeds tried to catch each broken component (a seed replays, so this cannot flake).
/// Most show at seed 0; a lost write without fsync needs a whole-ring power cut at the
/// wrong moment, first at seed 34 since the retrying clients joined the runs.
const SABOTAGE_SEEDS: u64 = 48;

fn simulate(seed: u64, config: &SimConfig) -> SimReport {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(sim::run(seed, config))
        .unwrap_or_else(|e| panic!("seed {seed}: the simulation could not be set up: {e}"))
}

fn seeds() -> Vec<u64> {
    let var = |name: &str| {
        std::env::var(name).ok().map(|v| {
            v.parse::<u64>()
                .unwrap_or_else(|_| panic!("{name}={v}: not a number"))
        })
    };
    match (var("KVD_SIM_SEED"), var("KVD_SIM_SEEDS")) {
        (Some(seed), _) => vec![seed],
        (None, count) => (0..count.unwrap_or(DEFAULT_SEEDS)).collect(),
    }
}

/// Runs `seeds` of `config` and fails with every seed that broke a guarantee; over
/// eight seeds or more, also checks that the runs were not vacuous. Returns the totals.
fn check_seeds(config: &SimConfig, seeds: &[u64], test: &str) -> sim::SimStats {
    let mut failures = Vec::new();
    let (mut acked, mut unknown, mut reads) = (0, 0, 0);
    let mut totals = sim::SimStats::default();
    for &seed in seeds {
        let report = simulate(seed, config);
        let (a, u, r) = report.outcome_counts();
        (acked, unknown, reads) = (acked + a, unknown + u, reads + r);
        let s = &report.stats;
        totals.crashes += s.crashes;
        totals.partitions += s.partitions;
        totals.messages_lost += s.messages_lost;
        totals.write_messages_shared += s.write_messages_shared;
        totals.clock_skews += s.clock_skews;
        totals.engine_flushes += s.engine_flushes;
        totals.hints_delivered += s.hints_delivered;
        totals.keys_repaired += s.keys_repaired;
        totals.settle_rounds += s.settle_rounds;
        totals.transfers += s.transfers;
        totals.snapshots += s.snapshots;
        totals.joins += s.joins;
        totals.leaves += s.leaves;
        totals.replacements += s.replacements;
        totals.keys_copied += s.keys_copied;
        totals.keys_dropped += s.keys_dropped;
        if !report.violations.is_empty() {
            // How many of each kind, then the first few in full.
            let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
            for v in &report.violations {
                let text = format!("{v:?}");
                let kind = text.split([' ', '{', '(']).next().unwrap_or("");
                *kinds.entry(kind.to_string()).or_default() += 1;
            }
            failures.push(format!(
                "seed {seed} ({} violations {kinds:?}, replay with KVD_SIM_SEED={seed} cargo test -p kv-cluster --test simulation {test}): {:?}",
                report.violations.len(),
                // KVD_SIM_ALL_VIOLATIONS=1 prints every violation.
                &report.violations[..report.violations.len().min(
                    if std::env::var_os("KVD_SIM_ALL_VIOLATIONS").is_some() {
                        usize::MAX
                    } else {
                        5
                    }
                )]
            ));
        }
    }
    eprintln!(
        "{test}: {} seeds: {acked} writes acknowledged, {unknown} unknown, {reads} reads; {totals:?}",
        seeds.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The runs must not be vacuous: over many seeds every kind of fault and repair
    // happened, and clients saw both successes and indeterminate writes.
    if seeds.len() >= 8 {
        assert!(acked > 0 && unknown > 0 && reads > 0);
        assert!(totals.crashes > 0 && totals.partitions > 0 && totals.messages_lost > 0);
        // Peers' writes went through the batcher and its callbacks, as on a real node.
        assert!(totals.write_messages_shared > 0);
        assert!(totals.clock_skews > 0 && totals.engine_flushes > 0);
        assert!(totals.hints_delivered > 0 && totals.keys_repaired > 0);
        assert!(totals.transfers > 0 && totals.snapshots > 0);
    }
    totals
}

#[test]
fn random_faults_lose_no_acknowledged_write_and_replicas_converge() {
    let _ = check_seeds(
        &SimConfig::default(),
        &seeds(),
        "random_faults_lose_no_acknowledged_write_and_replicas_converge",
    );
}

/// Three nodes, N = 3: every node holds every key, so every fault touches every key.
#[test]
fn a_three_node_ring_under_random_faults_loses_no_acknowledged_write() {
    let config = SimConfig {
        nodes: 3,
        ..SimConfig::default()
    };
    let seeds: Vec<u64> = seeds().into_iter().take(THREE_NODE_SEEDS).collect();
    let _ = check_seeds(
        &config,
        &seeds,
        "a_three_node_ring_under_random_faults_loses_no_acknowledged_write",
    );
}

#[test]
fn a_seed_replays_to_the_same_history_and_trace() {
    let config = SimConfig {
        duration: Duration::from_secs(10),
        ..SimConfig::default()
    };
    let first = simulate(7, &config);
    let again = simulate(7, &config);
    assert_eq!(first.history, again.history);
    assert_eq!(first.stats, again.stats);
    assert_eq!(first.trace_hash, again.trace_hash);
    assert!(!first.history.is_empty());
    // The hash depends on what happened: another seed gives another one.
    assert_ne!(first.trace_hash, simulate(8, &config).trace_hash);
}

/// Runs seeds under `sabotage` until one reports a violation that `wanted` accepts;
/// fails if none does.
fn assert_caught(sabotage: Sabotage, wanted: fn(&Violation) -> bool) {
    let config = SimConfig {
        sabotage,
        ..SimConfig::default()
    };
    assert_caught_in(&config, SABOTAGE_SEEDS, wanted);
}

/// Runs seeds `0..seeds` of `config` until one reports a violation that `wanted`
/// accepts; fails if none does.
fn assert_caught_in(config: &SimConfig, seeds: u64, wanted: fn(&Violation) -> bool) {
    let sabotage = config.sabotage;
    let caught = (0..seeds).find_map(|seed| {
        let report = simulate(seed, config);
        report
            .violations
            .into_iter()
            .find(wanted)
            .map(|v| (seed, v))
    });
    match caught {
        Some((seed, v)) => eprintln!("{sabotage:?} caught at seed {seed}: {v:?}"),
        None => panic!("{sabotage:?} went unnoticed in seeds 0..{seeds}"),
    }
}

fn lost_or_stale(v: &Violation) -> bool {
    matches!(v, Violation::StaleRead { .. } | Violation::LostWrite { .. })
}

#[test]
fn the_checker_catches_a_coordinator_that_acknowledges_after_one_replica() {
    assert_caught(Sabotage::AckAfterOneReplica, lost_or_stale);
}

#[test]
fn the_checker_catches_writes_lost_in_a_power_cut_without_fsync() {
    assert_caught(Sabotage::NoFsync, lost_or_stale);
}

#[test]
fn the_checker_catches_replicas_left_to_diverge_without_hints_or_anti_entropy() {
    assert_caught(Sabotage::NoRepair, |v| {
        matches!(v, Violation::Diverged { .. })
    });
}

#[test]
fn the_checker_catches_replicas_that_ignore_versions() {
    assert_caught(Sabotage::IgnoreVersions, lost_or_stale);
}

#[test]
fn the_checker_catches_acceptors_that_ignore_their_promises() {
    assert_caught(Sabotage::AcceptIgnoresPromises, |v| {
        matches!(v, Violation::Counter { .. })
    });
}

#[test]
fn the_checker_catches_serial_reads_that_skip_consensus() {
    assert_caught(Sabotage::SerialReadsFromOneReplica, |v| {
        matches!(v, Violation::Counter { .. })
    });
}

/// Retries of an INCR under the same request id after an unknown outcome (through
/// another node) count once only because the round finds the request in the key's
/// record: ignoring the record makes some retry count again, and the exactly-once
/// check sees it.
#[test]
fn the_checker_catches_retries_applied_again() {
    assert_caught(
        Sabotage::IgnoreRequestRecords,
        |v| matches!(v, Violation::Counter { key, .. } if key.starts_with(b"ictr")),
    );
}

/// Transfers between accounts are two-key transactions; done as two single-key rounds
/// instead, a snapshot of the accounts falls between the halves and the sum check sees
/// it.
#[test]
fn the_checker_catches_transfers_that_are_not_transactions() {
    assert_caught(Sabotage::TransfersWithoutTransactions, |v| {
        matches!(v, Violation::Transaction { .. })
    });
}
/// Seeds of the runs that change their layout (at most; `KVD_SIM_SEEDS` may ask fewer).
const LAYOUT_SEEDS: usize = 16;
/// Seeds tried to catch a broken layout change (`KVD_SIM_SABOTAGE_SEEDS` overrides).
const LAYOUT_SABOTAGE_SEEDS: u64 = 12;

/// `KVD_SIM_SABOTAGE_SEEDS`, else `default`: how many seeds a sabotage test may try.
fn sabotage_seeds(default: u64) -> u64 {
    match std::env::var("KVD_SIM_SABOTAGE_SEEDS") {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("KVD_SIM_SABOTAGE_SEEDS={v}: not a number")),
        Err(_) => default,
    }
}

/// A ring of four nodes (three replicas per key) that grows to five, shrinks back to
/// four as a member leaves, grows to five again and replaces a member that died for good
/// with an empty node, one change after another during the fault phase, starting from a
/// seeded place in that list, so that every kind of change also comes first. (It
/// started with three nodes, where a leave that comes first is skipped: leaves then
/// only followed a join that had finished, and 16 seeds applied one, or, after an
/// unrelated change to consensus retries moved every run, none.) As far as 60 s get:
/// each step of a change waits
/// for every member to acknowledge it, crashed members first have to restart, and a
/// replacement copies from both surviving replicas. The same clients and faults as the
/// other runs.
fn layout_changes() -> SimConfig {
    SimConfig {
        nodes: 4,
        spares: 3,
        script: vec![
            LayoutStep::Join,
            LayoutStep::Leave,
            LayoutStep::Join,
            LayoutStep::ReplaceDead,
        ],
        duration: Duration::from_secs(60),
        ..SimConfig::default()
    }
}

#[test]
fn joins_leaves_and_replacements_under_random_faults_lose_no_acknowledged_write() {
    // `KVD_SIM_LAYOUT_SEEDS` overrides how many of the seeds run (a longer search).
    let take = std::env::var("KVD_SIM_LAYOUT_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(LAYOUT_SEEDS);
    let seeds: Vec<u64> = seeds().into_iter().take(take).collect();
    let config = layout_changes();
    let totals = check_seeds(
        &config,
        &seeds,
        "joins_leaves_and_replacements_under_random_faults_lose_no_acknowledged_write",
    );
    // Not vacuous: every kind of change was applied, data moved, and old replicas let
    // go of it.
    if seeds.len() >= 8 {
        assert!(totals.joins > 0 && totals.leaves > 0 && totals.replacements > 0);
        assert!(totals.keys_copied > 0 && totals.keys_dropped > 0);
    }
}

/// Writes during a layout change that need a quorum of the new replicas only (reads
/// still asking the previous ones) are what CASSANDRA-8346 describes: the checker must
/// see an acknowledged write that a later read or the final replicas miss.
#[test]
fn the_checker_catches_layout_changes_whose_writes_skip_the_previous_replicas() {
    let config = SimConfig {
        sabotage: Sabotage::TransitionWritesNewSetOnly,
        ..layout_changes()
    };
    assert_caught_in(&config, sabotage_seeds(LAYOUT_SABOTAGE_SEEDS), |v| {
        lost_or_stale(v) || matches!(v, Violation::Counter { .. })
    });
}

/// A run that changes its layout replays too (the layouts, the drivers' steps and the
/// operator's choices are part of the trace).
#[test]
fn a_seed_with_layout_changes_replays_to_the_same_history_and_trace() {
    let config = layout_changes();
    // Which seeds apply a change depends on every rule of the protocol; the first that
    // does is the one replayed.
    let (seed, first) = (0..20)
        .map(|seed| (seed, simulate(seed, &config)))
        .find(|(_, run)| run.stats.joins > 0)
        .expect("one of seeds 0 to 19 applies a layout change");
    let again = simulate(seed, &config);
    assert_eq!(first.history, again.history, "seed {seed}");
    assert_eq!(first.stats, again.stats, "seed {seed}");
    assert_eq!(first.trace_hash, again.trace_hash, "seed {seed}");
}

/// A change that moves reads to the new replicas and stops writing to the previous ones
/// in the same step (as kvd did before this simulation ran layout changes): a node that
/// has not learned that step yet reads the previous replicas, which writes by nodes that
/// learned it no longer reach. The window is one gossip delay, so it shows in few seeds:
/// too many for every CI run; `cargo test -p kv-cluster --test simulation -- --ignored
/// one_step` runs it (docs/cluster.md names the seed).
#[test]
#[ignore = "needs more seeds than a CI run affords"]
fn the_checker_catches_layout_changes_that_move_reads_and_writes_in_one_step() {
    let config = SimConfig {
        sabotage: Sabotage::SettleInOneStep,
        ..layout_changes()
    };
    assert_caught_in(&config, sabotage_seeds(200), lost_or_stale);
}

/// Anti-entropy rounds that write by the layout they began under: one that outlasts a
/// layout change leaves records on a member that already deleted that partition, which
/// nothing reads or deletes again. It shows in few seeds (first at seed 141 of the
/// search that found it), so it is not part of a CI run: `cargo test -p kv-cluster
/// --test simulation -- --ignored keeps_the_layout` runs it.
#[test]
#[ignore = "needs more seeds than a CI run affords"]
fn the_checker_catches_anti_entropy_that_keeps_the_layout_its_round_began_under() {
    let config = SimConfig {
        sabotage: Sabotage::AntiEntropyKeepsItsLayout,
        ..layout_changes()
    };
    assert_caught_in(&config, sabotage_seeds(200), |v| {
        matches!(v, Violation::Misplaced { .. })
    });
}

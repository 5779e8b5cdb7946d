//! The deterministic whole-cluster simulation (docs/cluster.md, "Deterministic
//! simulation"): the real coordinator, replica stores, Merkle trees, hints, hint
//! replay, read repair, anti-entropy and hybrid clocks of several nodes, each over a
//! real engine on the engine's in-memory file system, talking through a simulated
//! network that delays, loses and partitions messages, while nodes lose power and
//! restart and their clocks skew. Everything runs on one thread of a tokio runtime
//! whose clock is paused (timers are virtual), every random choice comes from one
//! seeded generator, and the engine does background work only when the simulator asks,
//! so a seed replays exactly. After the faults the network heals, crashed nodes
//! restart, hints and anti-entropy run, and [`checker`] checks the history and the
//! replicas.
//!
//! [`run`] must be called on a current-thread runtime started paused
//! (`tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true)`,
//! which needs tokio's `test-util` feature: cluster/tests/simulation.rs builds it).

pub mod checker;
mod clients;
pub mod clock;
mod exactly_once;
mod faults;
pub mod history;
pub mod liveness;
mod network;
mod node;
mod operator;
mod retrying_client;
mod transfers;
mod transition;
mod world;

pub use checker::{NodeState, Violation};
pub use history::{Op, OpKind, Outcome};
pub use operator::LayoutStep;

use crate::layout::{Layout, NodeInfo};
use crate::quorum::CoordinatorConfig;
use crate::NodeId;
use bytes::Bytes;
use clock::SimClock;
use history::History;
use node::{anti_entropy_round, replay_hints, Setup, SimNode};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use transition::Layouts;
use world::World;

/// Rounds of hint replay and anti-entropy after the heal before the run is judged
/// (it stops earlier once every hint is delivered and every partition agrees).
const SETTLE_ROUNDS: usize = 20;

/// Clients running multi-key transactions (sim/transfers.rs) beside the others.
const TRANSFER_CLIENTS: usize = 2;
/// The same in a run that changes its layout: a change under way at the heal still has
/// to be acknowledged (the drain time), copied, ended and cleaned up after.
const SETTLE_ROUNDS_WITH_CHANGES: usize = 60;

/// A component broken on purpose, to show that the checker catches what it breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sabotage {
    /// Everything as in a real node.
    #[default]
    None,
    /// The coordinator acknowledges a QUORUM write after one replica (W - 1).
    AckAfterOneReplica,
    /// The engine never fsyncs, so a power cut loses acknowledged writes.
    NoFsync,
    /// No hint replay and no anti-entropy.
    NoRepair,
    /// Replicas store every write as it arrives, older or newer than what they hold.
    IgnoreVersions,
    /// Acceptors take a consensus accept without checking their promise (any version
    /// newer than the record held), as a plain write.
    AcceptIgnoresPromises,
    /// SERIAL reads of counters read one replica instead of running a round.
    SerialReadsFromOneReplica,
    /// Idempotent INCRs never look for their request id in the key's record, so a
    /// retry applies again.
    IgnoreRequestRecords,
    /// Transfer clients move money with two single-key rounds instead of one
    /// transaction, so a snapshot can fall between the two halves.
    TransfersWithoutTransactions,
    /// During a layout change, writes need a quorum of the new replicas only (not of
    /// the previous ones too), while reads still ask the previous replicas.
    TransitionWritesNewSetOnly,
    /// A layout change ends in one step once the new replicas copied their partitions:
    /// reads move to them and writes stop needing the previous replicas at once (kvd
    /// before the simulation ran layout changes), so a node that has not learned that
    /// version yet reads the previous replicas, which writes no longer reach.
    SettleInOneStep,
    /// An anti-entropy round writes by the layout it began under, however long it runs
    /// (kvd before anti-entropy asked the layout at each write): a round that outlasts
    /// a layout change puts records on a node that already deleted the partition.
    AntiEntropyKeepsItsLayout,
}

/// The shape of one simulated run.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Nodes in the ring's first layout.
    pub nodes: usize,
    /// Nodes started outside the layout, waiting to be added (they join or replace
    /// members as `script` says).
    pub spares: usize,
    /// The layout changes an operator applies during the fault phase, in order.
    pub script: Vec<LayoutStep>,
    /// Replicas per key (N); W = R = N/2 + 1.
    pub replicas: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// Keys the clients share.
    pub keys: usize,
    /// Virtual duration of the fault phase.
    pub duration: Duration,
    /// What is broken on purpose.
    pub sabotage: Sabotage,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            nodes: 5,
            spares: 0,
            script: Vec::new(),
            replicas: 3,
            clients: 4,
            keys: 6,
            duration: Duration::from_secs(20),
            sabotage: Sabotage::None,
        }
    }
}

/// Counts of what happened in a run (to show the faults really happened).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Power cuts.
    pub crashes: u64,
    /// Network partitions made.
    pub partitions: u64,
    /// Messages (requests or replies) lost.
    pub messages_lost: u64,
    /// Write messages that carried the records of more than one request (a peer link's
    /// batcher merged writes queued while its messages were in flight).
    pub write_messages_shared: u64,
    /// Clock skews set.
    pub clock_skews: u64,
    /// Engine flushes and compactions the schedule ran.
    pub engine_flushes: u64,
    /// Hints delivered by replay.
    pub hints_delivered: u64,
    /// Keys repaired by anti-entropy.
    pub keys_repaired: u64,
    /// Settle rounds run after the heal.
    pub settle_rounds: u64,
    /// Transfers (two-key transactions) acknowledged.
    pub transfers: u64,
    /// Snapshots of all accounts (three-key transactions) read.
    pub snapshots: u64,
    /// Nodes the operator added to the layout (joins).
    pub joins: u64,
    /// Members the operator removed (leaves).
    pub leaves: u64,
    /// Dead members the operator replaced with empty nodes.
    pub replacements: u64,
    /// Keys new replicas copied in layout changes.
    pub keys_copied: u64,
    /// Keys deleted from nodes that no longer hold their partitions.
    pub keys_dropped: u64,
}

/// The result of one run.
#[derive(Debug, Clone)]
pub struct SimReport {
    /// The seed.
    pub seed: u64,
    /// Every operation the clients ran.
    pub history: Vec<Op>,
    /// The broken guarantees (empty when the run passed).
    pub violations: Vec<Violation>,
    /// A hash of every event of the run, in order: equal for two runs of one seed.
    pub trace_hash: u64,
    /// What happened.
    pub stats: SimStats,
}

impl SimReport {
    /// Acknowledged writes, unknown writes and successful reads in the history.
    pub fn outcome_counts(&self) -> (usize, usize, usize) {
        let count = |f: fn(&Outcome) -> bool| self.history.iter().filter(|o| f(&o.outcome)).count();
        (
            count(|o| matches!(o, Outcome::Written(_))),
            count(|o| matches!(o, Outcome::Unknown(_))),
            count(|o| matches!(o, Outcome::Read(_))),
        )
    }
}

/// The simulated cluster of one run.
pub(crate) struct SimCluster {
    pub(crate) setup: Setup,
    pub(crate) nodes: Vec<SimNode>,
    pub(crate) keys: Vec<Bytes>,
    /// The counter keys (INCR through consensus).
    pub(crate) counters: Vec<Bytes>,
    /// The counters of the retrying clients (INCR under a request id).
    pub(crate) idempotent_counters: Vec<Bytes>,
    pub(crate) history: History,
    restart_failures: parking_lot::Mutex<Vec<Violation>>,
}

impl SimCluster {
    pub(crate) fn node(&self, id: NodeId) -> Option<&SimNode> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// Starts `node`; a failure to open what it kept is a violation.
    pub(crate) fn start_node(&self, node: &SimNode) {
        if let Err(error) = node.start(&self.setup) {
            self.setup
                .world
                .trace(format_args!("{:?} failed to start: {error}", node.id));
            self.restart_failures.lock().push(Violation::RestartFailed {
                node: node.id,
                error,
            });
        }
    }
}

/// A scratch directory for the nodes' clock floor files (the hybrid clock keeps its
/// floor in a real file), removed at the end of the run. In memory (`/dev/shm`) where
/// there is one: the floor is fsynced at every write, and on a disk those waits were
/// three quarters of a run's time.
struct Scratch(PathBuf);

impl Scratch {
    fn new(seed: u64) -> std::io::Result<Scratch> {
        static RUNS: AtomicU64 = AtomicU64::new(0);
        let shm = std::path::Path::new("/dev/shm");
        let base = match shm.is_dir() {
            true => shm.to_path_buf(),
            false => std::env::temp_dir(),
        };
        let dir = base.join(format!(
            "kvd-sim-{}-{seed}-{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A node as the layout records it: its own zone, capacity 1.
pub(crate) fn node_info(id: NodeId) -> NodeInfo {
    NodeInfo {
        id,
        resp_addr: format!("sim:{}", id.0),
        bus_addr: format!("sim:{}", id.0 + 10_000),
        zone: format!("zone{}", id.0),
        capacity: 1,
    }
}

/// The ring's first layout: every node its own zone, equal capacity.
fn sim_layout(nodes: &[NodeId], replicas: usize) -> Result<Layout, String> {
    let infos = nodes.iter().map(|&id| node_info(id)).collect();
    Layout::initial("5e".repeat(16), infos, replicas).map_err(|e| e.to_string())
}

/// Runs one seed. Call it on a paused current-thread runtime (see the module docs).
/// Errors are failures to set the run up, not violations.
pub async fn run(seed: u64, config: &SimConfig) -> Result<SimReport, String> {
    let world = Arc::new(World::new(seed));
    let members: Vec<NodeId> = (1..=config.nodes as u64).map(NodeId).collect();
    let spares: Vec<NodeId> = (0..config.spares as u64)
        .map(|i| NodeId(config.nodes as u64 + 1 + i))
        .collect();
    let ids: Vec<NodeId> = members.iter().chain(&spares).copied().collect();
    let first = sim_layout(&members, config.replicas)?;
    let layouts = Arc::new(Layouts::new(first, &spares, !config.script.is_empty()));
    let quorum = config.replicas / 2 + 1;
    let coordinator = CoordinatorConfig {
        replicas: config.replicas,
        write_quorum: match config.sabotage {
            Sabotage::AckAfterOneReplica => quorum - 1,
            _ => quorum,
        },
        read_quorum: quorum,
        ..CoordinatorConfig::default()
    };
    let scratch = Scratch::new(seed).map_err(|e| format!("scratch directory: {e}"))?;
    let start = Instant::now();
    let cluster = Arc::new(SimCluster {
        setup: Setup {
            world: world.clone(),
            layouts: layouts.clone(),
            nodes: ids.clone(),
            coordinator,
            sabotage: config.sabotage,
        },
        nodes: ids
            .iter()
            .map(|&id| {
                let floor = scratch.0.join(format!("hlc-{}", id.0));
                SimNode::new(id, Arc::new(SimClock::new(start)), floor)
            })
            .collect(),
        keys: clients::key_set(config.keys),
        counters: clients::counter_set(),
        idempotent_counters: retrying_client::counter_set(),
        history: History::default(),
        restart_failures: parking_lot::Mutex::new(Vec::new()),
    });
    for node in &cluster.nodes {
        node.start(&cluster.setup)?;
    }
    let until = start + config.duration;
    let mut clients: Vec<_> = (0..config.clients)
        .map(|c| tokio::spawn(clients::run_client(cluster.clone(), c, until)))
        .collect();
    clients.extend(
        cluster
            .idempotent_counters
            .iter()
            .enumerate()
            .map(|(c, key)| {
                let client = config.clients + c;
                tokio::spawn(retrying_client::run(
                    cluster.clone(),
                    client,
                    key.clone(),
                    until,
                ))
            }),
    );
    let transfer_clients: Vec<_> = (0..TRANSFER_CLIENTS)
        .map(|c| {
            let client = config.clients + cluster.idempotent_counters.len() + c;
            tokio::spawn(transfers::run(cluster.clone(), client, until))
        })
        .collect();
    let faults = tokio::spawn(faults::run_faults(cluster.clone(), until));
    let operator = tokio::spawn(operator::run_operator(
        cluster.clone(),
        config.script.clone(),
        until,
    ));
    for task in clients {
        task.await
            .map_err(|e| format!("a client task failed: {e}"))?;
    }
    faults
        .await
        .map_err(|e| format!("the fault task failed: {e}"))?;
    let unreplaced = operator
        .await
        .map_err(|e| format!("the operator task failed: {e}"))?;
    let mut transfer_violations = Vec::new();
    for task in transfer_clients {
        let report = task
            .await
            .map_err(|e| format!("a transfer client failed: {e}"))?;
        world.count(|s| {
            s.transfers += report.committed;
            s.snapshots += report.snapshots;
        });
        transfer_violations.extend(report.violations);
    }
    settle(&cluster, unreplaced).await;
    transfer_violations.extend(transfers::final_check(&cluster).await);
    // The final snapshot settled locks, which wrote: let repair spread that too.
    settle(&cluster, None).await;
    let states = final_states(&cluster)?;
    let layout = layouts.committed();
    let history = cluster.history.take();
    let mut violations = cluster.restart_failures.lock().clone();
    violations.extend(transfer_violations);
    violations.extend(checker::check(&history, &layout, &cluster.keys, &states));
    if layouts.changes {
        violations.extend(checker::check_layout(&layout, &members_done(&cluster)));
        violations.extend(checker::misplaced(&layout, &states));
    }
    violations.extend(checker::check_counters(
        &history,
        &layout,
        &cluster.counters,
        &states,
    ));
    let idempotent = &cluster.idempotent_counters;
    violations.extend(checker::counter_violations(idempotent, |key, bad| {
        let replicas = checker::replica_counters(&layout, &states, key);
        exactly_once::check_key(&history, key, &replicas, bad)
    }));
    for node in &cluster.nodes {
        node.stop();
    }
    let stats = world.stats.lock().clone();
    drop(scratch);
    Ok(SimReport {
        seed,
        history,
        violations,
        trace_hash: world.trace_hash(),
        stats,
    })
}

/// Heals everything (network, losses, delays, clocks, crashed nodes that did not die
/// for good), then runs hint replay and anti-entropy on every node, round after round,
/// until every hint is delivered, every partition's replicas have equal roots and a
/// layout change under way ended with every member cleaned up (or the rounds run out,
/// which the checker then reports). `unreplaced`, a member the operator powered off for
/// good without replacing it before the fault phase ended, is replaced first.
async fn settle(cluster: &SimCluster, mut unreplaced: Option<NodeId>) {
    let world = &cluster.setup.world;
    world.set_net(|n| {
        n.cuts.clear();
        n.loss_per_mille = 0;
        n.delay_ms = (1, 5);
    });
    for node in &cluster.nodes {
        node.clock.set_skew_ms(0);
        if node.current().is_none() && !node.is_retired() {
            cluster.start_node(node);
        }
    }
    world.trace(format_args!("settle"));
    let rounds = match cluster.setup.layouts.changes {
        true => SETTLE_ROUNDS_WITH_CHANGES,
        false => SETTLE_ROUNDS,
    };
    for _ in 0..rounds {
        // Longer than any gossip interval: every node sees every other up again.
        tokio::time::sleep(Duration::from_secs(1)).await;
        world.count(|s| s.settle_rounds += 1);
        if unreplaced.is_some_and(|dead| operator::replace_dead(cluster, dead)) {
            unreplaced = None;
        }
        let running: Vec<_> = cluster.nodes.iter().filter_map(|n| n.current()).collect();
        if cluster.setup.sabotage != Sabotage::NoRepair {
            for inc in &running {
                replay_hints(&cluster.setup, inc).await;
                anti_entropy_round(&cluster.setup, inc).await;
            }
        }
        // Hints for a node dead for good are never delivered (nor needed: it was
        // replaced, and its replacement copied from the others).
        let deliverable = |target: &NodeId| cluster.node(*target).is_some_and(|n| !n.is_retired());
        let hints_left: u64 = running
            .iter()
            .flat_map(|i| i.hints.targets_with_counts())
            .filter(|(target, _)| deliverable(target))
            .map(|(_, count)| count)
            .sum();
        let layout = cluster.setup.layouts.committed();
        let agree = final_states(cluster)
            .is_ok_and(|states| checker::check(&[], &layout, &[], &states).is_empty());
        let changed = !cluster.setup.layouts.changes
            || (layout.transition.is_none() && members_done(cluster).iter().all(|d| d.1));
        if hints_left == 0 && agree && changed && unreplaced.is_none() {
            return;
        }
    }
}

/// Each member of the committed layout, and whether it runs, holds that layout and
/// deleted the partitions it no longer holds. A member that does not run is not done:
/// it holds none of its partitions (seed 122 ended with a member dead for good and
/// never replaced, which this skipped, so the heal stopped as if the change ended).
fn members_done(cluster: &SimCluster) -> Vec<(NodeId, bool)> {
    let layout = cluster.setup.layouts.committed();
    layout
        .nodes
        .iter()
        .filter_map(|n| cluster.node(n.id))
        .map(|node| {
            let Some(inc) = node.current() else {
                return (node.id, false);
            };
            let holds = cluster
                .setup
                .layouts
                .of(node.id)
                .is_some_and(|l| l.version == layout.version);
            (
                node.id,
                holds && inc.progress.lock().cleaned >= layout.version,
            )
        })
        .collect()
}

/// What every running node holds: roots of all partitions and every record.
fn final_states(cluster: &SimCluster) -> Result<BTreeMap<NodeId, NodeState>, String> {
    let partitions: Vec<u16> = (0..kv_keyspace::PARTITIONS).collect();
    let mut states = BTreeMap::new();
    for node in &cluster.nodes {
        let Some(inc) = node.current() else {
            continue;
        };
        let roots = inc
            .store
            .merkle()
            .roots(&partitions)
            .map_err(|e| format!("{:?}: roots: {e}", node.id))?;
        let mut records = BTreeMap::new();
        for &p in &partitions {
            let all = inc
                .store
                .partition_records(p)
                .map_err(|e| format!("{:?}: records: {e}", node.id))?;
            for entry in all {
                let (key, record) = entry.map_err(|e| format!("{:?}: record: {e}", node.id))?;
                records.insert(key, record);
            }
        }
        states.insert(node.id, NodeState { roots, records });
    }
    Ok(states)
}

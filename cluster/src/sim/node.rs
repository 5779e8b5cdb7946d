//! One simulated node: the real coordinator, replica store, Merkle trees, hint store,
//! hint replay, anti-entropy and hybrid clock, over a real engine `Db` on the engine's
//! in-memory file system. A crash is a power cut: the file system drops what was not
//! synced, and the node's tasks and connections die; a restart opens the engine again
//! from what survived, as `kvd` would.

use super::clock::SimClock;
use super::liveness::SimLiveness;
use super::network::SimReplicas;
use super::transition::{self, Layouts, Progress};
use super::world::{Running, World};
use super::Sabotage;
use crate::anti_entropy::sync_all;
use crate::coordinator::Coordinator;
use crate::hint_replay::{replay_round, ByteBudget, HintReplayConfig};
use crate::hints::{EngineCalls, HintConfig, HintStore, WallClockMs};
use crate::hlc::{Clock, Hlc};
use crate::node::adapters::HlcClock;
use crate::quorum::CoordinatorConfig;
use crate::replica_api::{Liveness, PeerState, ReplicaApi, Replicas};
use crate::replica_store::ReplicaStore;
use crate::NodeId;
use kv_engine::fs::{CrashMode, FaultFs, FaultSwitch, MemFs};
use kv_engine::{Db, FsyncPolicy, Options};
use parking_lot::Mutex;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Where each node's engine lives on its in-memory file system.
const DB_DIR: &str = "/kvd";
/// Merkle to-dos are folded this often, as the node's background folder does.
const MERKLE_FOLD_EVERY: Duration = Duration::from_millis(200);
/// Hint replay rounds, as the node's default.
const HINT_REPLAY_EVERY: Duration = Duration::from_secs(1);
/// Anti-entropy rounds: far more often than a real node's ten minutes, so that repair
/// runs many times within a short simulated run.
const ANTI_ENTROPY_EVERY: Duration = Duration::from_secs(5);

/// What every node of one simulation shares.
#[derive(Clone)]
pub(crate) struct Setup {
    pub(crate) world: Arc<World>,
    /// The committed layout and each node's own.
    pub(crate) layouts: Arc<Layouts>,
    /// Every node, spares included (the network reaches them all).
    pub(crate) nodes: Vec<NodeId>,
    pub(crate) coordinator: CoordinatorConfig,
    pub(crate) sabotage: Sabotage,
}

/// One run of a node, from a start to a crash.
pub(crate) struct Incarnation {
    pub(crate) number: u64,
    pub(crate) db: Arc<Db>,
    pub(crate) store: Arc<ReplicaStore>,
    pub(crate) hints: HintStore,
    pub(crate) coordinator: Coordinator,
    pub(crate) replicas: Arc<SimReplicas>,
    pub(crate) liveness: Arc<SimLiveness>,
    /// Its progress through a layout change (sim/transition.rs).
    pub(crate) progress: Mutex<Progress>,
    switch: Arc<FaultSwitch>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Incarnation {
    fn stop_tasks(&self) {
        for task in self.tasks.lock().drain(..) {
            task.abort();
        }
    }
}

/// A node across its crashes and restarts.
pub(crate) struct SimNode {
    pub(crate) id: NodeId,
    mem: MemFs,
    hlc_floor: PathBuf,
    pub(crate) clock: Arc<SimClock>,
    incarnations: Mutex<u64>,
    current: Mutex<Option<Arc<Incarnation>>>,
    /// Dead for good (a replaced node): never restarted.
    retired: std::sync::atomic::AtomicBool,
}

/// The engine's settings in the simulation: `fsync always` (acknowledged means synced;
/// [`Sabotage::NoFsync`] turns it off), and no automatic background work: the memtable
/// never fills and no level ever asks for compaction, so the engine's own threads stay
/// idle and flushes and compactions happen only when the fault schedule asks for them.
fn engine_options(fs: Arc<FaultFs>, sabotage: Sabotage) -> Options {
    Options {
        fs,
        fsync: match sabotage {
            Sabotage::NoFsync => FsyncPolicy::No,
            _ => FsyncPolicy::Always,
        },
        memtable_size: 1 << 30,
        l0_compaction_trigger: 1 << 20,
        l0_slowdown_writes_trigger: 1 << 21,
        l0_stop_writes_trigger: 1 << 22,
        l1_max_bytes: u64::MAX >> 8,
        block_cache_bytes: 1 << 20,
        ..Options::default()
    }
}

impl SimNode {
    pub(crate) fn new(id: NodeId, clock: Arc<SimClock>, hlc_floor: PathBuf) -> SimNode {
        SimNode {
            id,
            mem: MemFs::new(),
            hlc_floor,
            clock,
            incarnations: Mutex::new(0),
            current: Mutex::new(None),
            retired: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The running incarnation, if the node is up.
    pub(crate) fn current(&self) -> Option<Arc<Incarnation>> {
        self.current.lock().clone()
    }

    /// Starts (or restarts) the node from what its file system holds.
    pub(crate) fn start(&self, setup: &Setup) -> Result<(), String> {
        let number = {
            let mut n = self.incarnations.lock();
            *n += 1;
            *n
        };
        let (fs, switch) = FaultFs::new(Arc::new(self.mem.clone()));
        let opts = engine_options(Arc::new(fs), setup.sabotage);
        let db = Arc::new(Db::open(DB_DIR, opts).map_err(|e| format!("engine: {e}"))?);
        let store =
            Arc::new(ReplicaStore::open(db.clone()).map_err(|e| format!("replica store: {e}"))?);
        let clock = self.clock.clone();
        let wall: WallClockMs = Arc::new(move || clock.now_ms());
        let hints = HintStore::open_with(
            (*db).clone(),
            HintConfig::default(),
            wall,
            EngineCalls::Inline,
        )
        .map_err(|e| format!("hints: {e}"))?;
        let hlc = Hlc::open(&self.hlc_floor, self.clock.clone(), self.id)
            .map_err(|e| format!("clock: {e}"))?;
        let replicas = Arc::new(SimReplicas::new(
            &setup.world,
            self.id,
            number,
            &setup.nodes,
            setup.sabotage,
        ));
        let liveness = Arc::new(SimLiveness::new(self.id));
        let cell = setup
            .layouts
            .cells
            .get(&self.id)
            .cloned()
            .ok_or_else(|| format!("{:?} has no layout cell", self.id))?;
        let coordinator = Coordinator::new(
            self.id,
            transition::placement(cell, setup.sabotage),
            Arc::new(HlcClock(Arc::new(hlc))),
            replicas.clone(),
            liveness.clone(),
            hints.clone(),
            setup.coordinator.clone(),
        );
        let incarnation = Arc::new(Incarnation {
            number,
            db,
            store: store.clone(),
            hints,
            coordinator,
            replicas,
            liveness,
            progress: Mutex::new(Progress::default()),
            switch,
            tasks: Mutex::new(Vec::new()),
        });
        setup.world.set_running(
            self.id,
            Some(Running {
                incarnation: number,
                store,
            }),
        );
        *self.current.lock() = Some(incarnation.clone());
        transition::restarted(setup, self.id);

        spawn_background(setup, &incarnation);
        setup
            .world
            .trace(format_args!("start {:?} incarnation {number}", self.id));
        Ok(())
    }

    /// Cuts the power: the node stops answering, its tasks end, and its file system
    /// keeps only what was synced (`mode`). Returns false if it was not running.
    pub(crate) fn crash(&self, world: &World, mode: CrashMode) -> bool {
        let Some(incarnation) = self.current.lock().take() else {
            return false;
        };
        world.set_running(self.id, None);
        // Requests of the old incarnation still in flight fail from here on: none of
        // them may reach the file system after the cut.
        incarnation.switch.kill(true);
        incarnation.stop_tasks();
        self.mem.crash(mode);
        world.trace(format_args!("crash {:?} {mode:?}", self.id));
        true
    }

    /// Cuts the power for good: the node never restarts (a machine that died, to be
    /// replaced).
    pub(crate) fn retire(&self, world: &World) {
        self.retired
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.crash(world, CrashMode::DropUnsynced);
        world.trace(format_args!("{:?} is dead for good", self.id));
    }

    /// Whether the node died for good.
    pub(crate) fn is_retired(&self) -> bool {
        self.retired.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops the node's tasks at the end of a run (its engine closes once the last
    /// request holding it is gone).
    pub(crate) fn stop(&self) {
        if let Some(incarnation) = self.current.lock().take() {
            incarnation.stop_tasks();
        }
    }
}

/// The node's background loops, as a real node runs them: gossip rounds, Merkle
/// folding, hint replay and anti-entropy (the last two off under
/// [`Sabotage::NoRepair`]).
fn spawn_background(setup: &Setup, inc: &Arc<Incarnation>) {
    let world = setup.world.clone();
    let me = inc.coordinator.node();
    let gossip_every = Duration::from_millis(world.rng(|r| rand::Rng::gen_range(r, 200..=600)));
    let mut tasks = Vec::new();
    let (s, i) = (Arc::new(setup.clone()), inc.clone());
    tasks.push(every(gossip_every, move || {
        i.liveness.round(&s.world, &s.nodes);
        if s.layouts.changes {
            transition::gossip(&s, me, &i);
        }
        async {}
    }));
    let i = inc.clone();
    tasks.push(every(MERKLE_FOLD_EVERY, move || {
        if let Err(e) = i.store.merkle().process_todos(10_000) {
            tracing::warn!(error = %e, "simulated Merkle fold failed");
        }
        async {}
    }));
    if setup.sabotage != Sabotage::NoRepair {
        let (s, i) = (Arc::new(setup.clone()), inc.clone());
        tasks.push(every(HINT_REPLAY_EVERY, move || {
            let (s, i) = (s.clone(), i.clone());
            async move { replay_hints(&s, &i).await }
        }));
        let (s, i) = (Arc::new(setup.clone()), inc.clone());
        tasks.push(every(ANTI_ENTROPY_EVERY, move || {
            let (s, i) = (s.clone(), i.clone());
            async move { anti_entropy_round(&s, &i).await }
        }));
    }
    if setup.layouts.changes {
        let (s, i) = (Arc::new(setup.clone()), inc.clone());
        tasks.push(every(transition::STEP_EVERY, move || {
            let (s, i) = (s.clone(), i.clone());
            async move { transition::step(&s, &i).await }
        }));
    }
    world.trace(format_args!("{me:?} gossips every {gossip_every:?}"));
    *inc.tasks.lock() = tasks;
}

/// Runs `work` every `period` until the task is aborted.
fn every<F, Fut>(period: Duration, mut work: F) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(period).await;
            work().await;
        }
    })
}

/// One hint replay round of a node (the real `replay_round`, unthrottled).
pub(crate) async fn replay_hints(setup: &Setup, inc: &Incarnation) {
    let world = &setup.world;
    let layout = setup.layouts.of(inc.coordinator.node());
    let holds = |node: NodeId, partition: u16| {
        layout
            .as_ref()
            .is_none_or(|l| l.holders(partition).contains(&node))
    };
    let report = replay_round(
        &inc.hints,
        &*inc.replicas,
        &*inc.liveness,
        &ByteBudget::new(0),
        &HintReplayConfig::default(),
        &holds,
    )
    .await;
    world.count(|s| s.hints_delivered += report.delivered);
    world.trace(format_args!(
        "{:?} replayed {} hints",
        inc.coordinator.node(),
        report.delivered
    ));
}

/// One anti-entropy round of a node: each partition it holds (by its own layout; during
/// a change, those it receives and those it still serves) against each other holder
/// that its failure detector does not call down (the real `sync_all`). A node removed
/// from the layout, or not added yet, holds nothing.
pub(crate) async fn anti_entropy_round(setup: &Setup, inc: &Incarnation) {
    let world = &setup.world;
    let me = inc.coordinator.node();
    let Some(layout) = setup.layouts.of(me).filter(|l| l.node(me).is_some()) else {
        return;
    };
    let Some(local) = inc.replicas.replica(me) else {
        return;
    };
    let peers_of = |p: u16| -> Vec<(NodeId, Arc<dyn ReplicaApi>)> {
        layout
            .holders(p)
            .iter()
            .filter(|&&n| n != me && inc.liveness.state(n) != PeerState::Down)
            .filter_map(|&n| inc.replicas.replica(n).map(|api| (n, api)))
            .collect()
    };
    // A round takes its layout once, but runs for as long as its round trips take
    // (under loss, longer than a layout change): each write asks the node's layout as
    // it is then, as the real node's `sync_with_peer` does.
    let layouts = setup.layouts.clone();
    let keeps_its_layout = setup.sabotage == Sabotage::AntiEntropyKeepsItsLayout;
    let still_held = move |p: u16, peer: NodeId| {
        keeps_its_layout
            || layouts.of(me).is_none_or(|l| {
                let holders = l.holders(p);
                holders.contains(&me) && holders.contains(&peer)
            })
    };
    let (stats, failures) =
        sync_all(&layout.partitions_of(me), &*local, peers_of, &still_held).await;
    world.count(|s| s.keys_repaired += stats.keys_repaired);
    world.trace(format_args!(
        "{me:?} anti-entropy repaired {} failed {}",
        stats.keys_repaired,
        failures.len()
    ));
}

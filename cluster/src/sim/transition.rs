//! Layout changes in the simulation (docs/cluster.md, "Changing the layout"): each node
//! holds its own layout (a file in a real node, so it survives power cuts), learns newer
//! ones and its peers' progress by gossip from the peers it can reach, and drives a
//! change with the real driver's decisions (`crate::layout::driver`): acknowledge once
//! requests begun under an older layout are over, copy incoming partitions from the
//! previous replicas through the real anti-entropy, commit the layout that ends the
//! change, and delete partitions no longer held.
//!
//! What differs from a real node: the layout register is a compare-and-set in the
//! simulator (the real one is a consensus round on a key, `node/layout_admin.rs`), and a
//! committed layout reaches the other nodes by gossip only (a real node also pushes it).

use super::node::{Incarnation, Setup};
use super::world::World;
use super::Sabotage;
use crate::anti_entropy::sync_partition_held;
use crate::coordinator::Placement;
use crate::hint_replay::ByteBudget;
use crate::layout::{driver, Layout};
use crate::node::adapters::LayoutCell;
use crate::replica_api::{Liveness, PeerState, Replicas};
use crate::replica_store::DropStep;
use crate::NodeId;
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How often a node's driver looks at its layout (as the real driver's `STEP_EVERY`).
pub(crate) const STEP_EVERY: Duration = Duration::from_millis(250);

/// Records deleted per batch when cleaning up a partition.
const DROP_BATCH: usize = 1000;

/// What a node publishes by gossip about a layout change: the newest versions it
/// acknowledged and whose incoming partitions it copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Reported {
    pub(crate) acked: u64,
    pub(crate) synced: u64,
}

/// The layouts of one run: the register that commits them, each node's own copy, and
/// what each node published.
pub(crate) struct Layouts {
    /// The committed layout (the register a real cluster keeps through consensus).
    register: Mutex<Arc<Layout>>,
    /// Each node's layout: the first layout for the first members, none for a spare
    /// until gossip brings one that names it.
    pub(crate) cells: BTreeMap<NodeId, Arc<LayoutCell>>,
    /// What each running node last published by gossip.
    published: Mutex<BTreeMap<NodeId, Reported>>,
    /// Whether this run changes its layout (the driver runs on every node).
    pub(crate) changes: bool,
}

impl Layouts {
    /// `first` held by its members; `spares` hold nothing yet.
    pub(crate) fn new(first: Layout, spares: &[NodeId], changes: bool) -> Layouts {
        let mut cells = BTreeMap::new();
        for n in &first.nodes {
            let cell = LayoutCell::default();
            cell.set(first.clone());
            cells.insert(n.id, Arc::new(cell));
        }
        for &id in spares {
            cells.insert(id, Arc::new(LayoutCell::default()));
        }
        Layouts {
            register: Mutex::new(Arc::new(first)),
            cells,
            published: Mutex::new(BTreeMap::new()),
            changes,
        }
    }

    /// The layout committed last.
    pub(crate) fn committed(&self) -> Arc<Layout> {
        self.register.lock().clone()
    }

    /// `node`'s own layout.
    pub(crate) fn of(&self, node: NodeId) -> Option<Arc<Layout>> {
        self.cells.get(&node).and_then(|c| c.get())
    }

    /// Whether `node` serves clients: its layout names it (a member, or a departing node
    /// until the change ends). A spare not added yet, or a node removed, refuses.
    pub(crate) fn serves(&self, node: NodeId) -> bool {
        self.of(node).is_some_and(|l| l.node(node).is_some())
    }

    fn publish(&self, node: NodeId, reported: Reported) {
        self.published.lock().insert(node, reported);
    }

    /// Commits `next` if the register holds the version before it (or `next` itself),
    /// and installs it on `node`. Else `node` adopts what the register holds, and the
    /// change is refused.
    pub(crate) fn commit(&self, world: &World, node: NodeId, next: Layout) -> bool {
        let mut register = self.register.lock();
        let ok = register.version + 1 == next.version || **register == next;
        if ok {
            *register = Arc::new(next);
        }
        let held = register.clone();
        drop(register);
        if let Some(cell) = self.cells.get(&node) {
            cell.set((*held).clone());
        }
        world.trace(format_args!(
            "{node:?} commit layout {} ok={ok}",
            held.version
        ));
        ok
    }
}

/// A node's progress through the layout it holds (in memory, as the real driver's
/// `LayoutProgress`: a restart begins again from nothing).
#[derive(Debug, Clone, Default)]
pub(crate) struct Progress {
    version: u64,
    installed_at: Option<Instant>,
    pub(crate) acked: u64,
    pub(crate) synced: u64,
    pub(crate) cleaned: u64,
    copied: BTreeSet<u16>,
    /// When every member was first seen with its partitions copied.
    settle_ready: Option<Instant>,
    /// What peers were last seen to publish (gossip's view of them).
    seen: BTreeMap<NodeId, Reported>,
}

/// The placement a simulated coordinator uses: the node's own layout, or under
/// [`Sabotage::TransitionWritesNewSetOnly`] a broken one whose writes during a change
/// need a quorum of the new replicas only.
pub(crate) fn placement(cell: Arc<LayoutCell>, sabotage: Sabotage) -> Arc<dyn Placement> {
    match sabotage {
        Sabotage::TransitionWritesNewSetOnly => Arc::new(NewSetOnly(cell)),
        _ => cell,
    }
}

struct NewSetOnly(Arc<LayoutCell>);

impl Placement for NewSetOnly {
    fn partition_preflist(&self, partition: u16) -> Vec<crate::NodeId> {
        self.0.partition_preflist(partition)
    }

    fn write_groups(&self, key: &[u8]) -> Vec<Vec<crate::NodeId>> {
        let partition = kv_keyspace::slot::key_partition(key);
        let new = self.0.get().map(|l| l.preflist(partition).to_vec());
        vec![new.unwrap_or_default()]
    }
}

/// The gossip half of a node's round: from each peer it can reach, a newer layout (one
/// that names this node, or any once it holds one: a spare waits to be added) and what
/// the peer published.
pub(crate) fn gossip(setup: &Setup, me: NodeId, inc: &Incarnation) {
    let layouts = &setup.layouts;
    let Some(cell) = layouts.cells.get(&me) else {
        return;
    };
    let published = layouts.published.lock().clone();
    for &peer in setup.nodes.iter().filter(|&&p| p != me) {
        if setup.world.running(peer).is_none() || setup.world.is_cut(me, peer) {
            continue;
        }
        if let Some(theirs) = layouts.of(peer) {
            let mine = cell.get();
            let newer = mine.as_ref().is_none_or(|m| m.version < theirs.version);
            if newer && (mine.is_some() || theirs.node(me).is_some()) {
                setup.world.trace(format_args!(
                    "{me:?} learns layout {} from {peer:?}",
                    theirs.version
                ));
                cell.set((*theirs).clone());
            }
        }
        if let Some(&r) = published.get(&peer) {
            inc.progress.lock().seen.insert(peer, r);
        }
    }
}

/// Forgets what `node` published (it restarts with no progress).
pub(crate) fn restarted(setup: &Setup, node: NodeId) {
    setup.layouts.publish(node, Reported::default());
}

/// One step of a node's driver: `node/transition.rs`'s `transition_step` over the
/// simulated node.
pub(crate) async fn step(setup: &Setup, inc: &Incarnation) {
    let me = inc.coordinator.node();
    let layouts = &setup.layouts;
    let Some(layout) = layouts.of(me) else {
        return;
    };
    if layout.node(me).is_none() {
        return; // removed: it serves nothing and drives nothing
    }
    let c = &setup.coordinator;
    let drain = driver::drain_time(c.request_timeout, c.consensus_timeout);
    let acked_now = {
        let mut p = inc.progress.lock();
        if p.version != layout.version {
            p.version = layout.version;
            p.installed_at = Some(Instant::now());
            p.copied.clear();
            p.settle_ready = None;
        }
        let drained = p.installed_at.is_some_and(|t| t.elapsed() >= drain);
        let ack = p.acked < layout.version && drained;
        if ack {
            p.acked = layout.version;
        }
        ack
    };
    if acked_now {
        publish(setup, me, inc, "acknowledged", layout.version);
    }
    let is_down = |n: NodeId| inc.liveness.state(n) == PeerState::Down;
    let all_acked = {
        let p = inc.progress.lock();
        let reported = |n: NodeId| p.seen.get(&n).map_or(0, |r| r.acked);
        driver::all_report(&layout, me, p.acked, reported, is_down)
    };
    if !all_acked {
        return;
    }
    if layout.transition.is_some() {
        if inc.progress.lock().synced < layout.version {
            copy_incoming(setup, inc, &layout).await;
        }
        let synced = {
            let mut p = inc.progress.lock();
            let seen = |n: NodeId| p.seen.get(&n).map_or(0, |r| r.synced);
            let ready = p.synced >= layout.version && driver::all_members_synced(&layout, me, seen);
            ready.then(|| p.settle_ready.get_or_insert_with(Instant::now).elapsed())
        };
        let settles = synced
            .is_some_and(|ready_for| driver::settles_now(&layout, me, is_down, ready_for, drain));
        if settles {
            if let Ok(mut next) = layout.settled() {
                if setup.sabotage == Sabotage::SettleInOneStep {
                    next.transition = None;
                }
                layouts.commit(&setup.world, me, next);
            }
        }
    } else if inc.progress.lock().cleaned < layout.version {
        clean_up(setup, inc, &layout);
    }
}

fn publish(setup: &Setup, me: NodeId, inc: &Incarnation, what: &str, version: u64) {
    let reported = {
        let p = inc.progress.lock();
        Reported {
            acked: p.acked,
            synced: p.synced,
        }
    };
    setup.layouts.publish(me, reported);
    setup
        .world
        .trace(format_args!("{me:?} {what} layout {version}"));
}

/// The copy step (`node/transition.rs`'s `copy_incoming`): each incoming partition not
/// copied yet, synced with its previous replicas that are not down; copied once
/// N - W + 1 of them synced.
async fn copy_incoming(setup: &Setup, inc: &Incarnation, layout: &Layout) {
    let me = inc.coordinator.node();
    let plan = {
        let p = inc.progress.lock();
        let is_down = |n: NodeId| inc.liveness.state(n) == PeerState::Down;
        driver::copy_plan(layout, me, &p.copied, is_down)
    };
    let Some(local) = inc.replicas.replica(me) else {
        return;
    };
    let c = &setup.coordinator;
    let needed = driver::sources_needed(c.replicas, c.write_quorum);
    let mut synced_by = Vec::new();
    for (source, parts) in plan.sources {
        let Some(peer) = inc.replicas.replica(source) else {
            continue;
        };
        // As the node's `sync_with_peer`: the roots of every partition in one request
        // each way (an unreachable source costs one failure), then a sync of those
        // that differ.
        let roots = tokio::join!(
            local.merkle_roots(parts.clone()),
            peer.merkle_roots(parts.clone())
        );
        let (Ok(ours), Ok(theirs)) = roots else {
            continue;
        };
        for ((&part, a), b) in parts.iter().zip(&ours).zip(&theirs) {
            if a == b {
                synced_by.push(part);
                continue;
            }
            // As anti-entropy: writes only while both still hold the partition by
            // this node's layout (anti_entropy::sync_partition_held).
            let held = || {
                setup.layouts.of(me).is_none_or(|l| {
                    let holders = l.holders(part);
                    holders.contains(&me) && holders.contains(&source)
                })
            };
            let budget = ByteBudget::new(0);
            let sync = sync_partition_held(part, &*local, &*peer, &budget, &held);
            if let Ok(stats) = sync.await {
                setup.world.count(|s| s.keys_copied += stats.keys_repaired);
                synced_by.push(part);
            }
        }
    }
    let finished = {
        let mut p = inc.progress.lock();
        p.copied
            .extend(driver::copied_now(&plan.todo, &synced_by, needed));
        let all = driver::all_copied(layout, me, &p.copied);
        if all {
            p.synced = layout.version;
        }
        all
    };
    if finished {
        publish(setup, me, inc, "copied", layout.version);
    }
}

/// The clean-up step: deletes what `inc` holds of partitions `layout` does not give it.
fn clean_up(setup: &Setup, inc: &Incarnation, layout: &Layout) {
    let me = inc.coordinator.node();
    let mut dropped = 0u64;
    for part in driver::partitions_to_drop(layout, me) {
        loop {
            // The simulation steps a node's clean-up at once: no layout arrives during it.
            match inc.store.drop_partition(part, DROP_BATCH, &|| true) {
                Ok(DropStep::Done) => break,
                Ok(DropStep::Deleted(n)) => dropped += n as u64,
                Ok(DropStep::Stopped) => return,
                Err(e) => {
                    setup
                        .world
                        .trace(format_args!("{me:?} clean-up failed: {e}"));
                    return;
                }
            }
        }
    }
    inc.progress.lock().cleaned = layout.version;
    setup.world.count(|s| s.keys_dropped += dropped);
    setup.world.trace(format_args!(
        "{me:?} cleaned up layout {}: {dropped} keys",
        layout.version
    ));
}

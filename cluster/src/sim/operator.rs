//! The operator of a run that changes its layout: it applies the run's scripted
//! changes one after another through a running member, as `kvtool cluster
//! join|leave|replace` then `apply` do (the real `Layout::plan`, committed on the
//! layout register), while the clients and the fault schedule go on. A change applies
//! once the one before it ended (the plan refuses while a transition is under way).
//! A member it powered off for good is always replaced: if the fault phase ends first,
//! the heal applies the replacement (`replace_dead`), as an operator would finish what
//! they started; a member dead for good and never replaced would hold nothing and keep
//! every other member from cleaning up (seed 122, docs/cluster.md).

use super::{node_info, SimCluster};
use crate::layout::LayoutChange;
use crate::NodeId;
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// One scripted layout change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutStep {
    /// The next spare node joins.
    Join,
    /// A random member leaves (its partitions move to the others).
    Leave,
    /// A random member dies for good (a power cut it never comes back from), and the
    /// next spare, empty, takes its place.
    ReplaceDead,
}

/// How long the operator waits after a node died before replacing it: failure
/// detectors call it down by then, as an operator would notice it.
const NOTICE_DEATH: Duration = Duration::from_secs(3);

/// How often the operator tries again to apply a change (the plan refused: a change is
/// under way, or the node it asked was behind).
const RETRY_EVERY: Duration = Duration::from_millis(500);

/// Applies `script` in order, from a seeded starting point (so that over several
/// seeds every kind of change also comes first, before faults slowed the run down),
/// until `until`. A leave that would leave fewer members than replicas is skipped.
/// Returns the member it powered off for good and had not replaced yet when `until`
/// came: the heal must replace it.
pub(crate) async fn run_operator(
    cluster: Arc<SimCluster>,
    mut script: Vec<LayoutStep>,
    until: Instant,
) -> Option<NodeId> {
    let world = &cluster.setup.world;
    if !script.is_empty() {
        let start = world.rng(|r| r.gen_range(0..script.len()));
        script.rotate_left(start);
    }
    for step in script {
        let committed = cluster.setup.layouts.committed();
        if step == LayoutStep::Leave && committed.nodes.len() <= committed.replicas {
            world.trace(format_args!(
                "leave skipped: only {} members",
                committed.nodes.len()
            ));
            continue;
        }
        let pause = world.rng(|r| r.gen_range(1_000..3_000));
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let mut dead = None;
        if step == LayoutStep::ReplaceDead {
            if next_spare(&cluster).is_none() {
                world.trace(format_args!("replacement skipped: no spare left"));
                continue;
            }
            // No member picked before `until`: none was powered off.
            let victim = wait_for_stable(&cluster, until, pick_member).await?;
            if let Some(node) = cluster.node(victim) {
                node.retire(world);
            }
            dead = Some(victim);
            tokio::time::sleep(NOTICE_DEATH).await;
        }
        loop {
            if Instant::now() >= until {
                return dead;
            }
            if apply(&cluster, step, dead) {
                break;
            }
            tokio::time::sleep(RETRY_EVERY).await;
        }
    }
    None
}

/// Tries once to replace `dead`, a member powered off for good, by the next spare
/// (during the heal); true once committed.
pub(crate) fn replace_dead(cluster: &SimCluster, dead: NodeId) -> bool {
    apply(cluster, LayoutStep::ReplaceDead, Some(dead))
}

/// Waits until the committed layout has no change under way and every running node it
/// names holds it, then returns what `pick` chose (None once `until` passed). Without
/// the second condition the member that committed the layout ending a change could be
/// powered off before anyone learned that layout (seed 12 of `SettleInOneStep`): here a
/// committed layout spreads by gossip only and gossip forgets a dead peer's reports, so
/// the others never got past the version before, whose members included the dead one.
async fn wait_for_stable(
    cluster: &SimCluster,
    until: Instant,
    pick: impl Fn(&SimCluster) -> Option<NodeId>,
) -> Option<NodeId> {
    while Instant::now() < until {
        let committed = cluster.setup.layouts.committed();
        let everywhere = committed.all_nodes().all(|n| {
            cluster
                .node(n.id)
                .is_none_or(|node| node.current().is_none())
                || cluster
                    .setup
                    .layouts
                    .of(n.id)
                    .is_some_and(|l| l.version == committed.version)
        });
        if committed.transition.is_none() && everywhere {
            if let Some(chosen) = pick(cluster) {
                return Some(chosen);
            }
        }
        tokio::time::sleep(RETRY_EVERY).await;
    }
    None
}

/// A random member of the committed layout that is not dead.
fn pick_member(cluster: &SimCluster) -> Option<NodeId> {
    let layout = cluster.setup.layouts.committed();
    let alive: Vec<NodeId> = layout
        .nodes
        .iter()
        .map(|n| n.id)
        .filter(|&id| cluster.node(id).is_some_and(|n| !n.is_retired()))
        .collect();
    if alive.is_empty() {
        return None;
    }
    let world = &cluster.setup.world;
    Some(alive[world.rng(|r| r.gen_range(0..alive.len()))])
}

/// The first spare: a node no layout named yet.
fn next_spare(cluster: &SimCluster) -> Option<NodeId> {
    let layout = cluster.setup.layouts.committed();
    cluster
        .nodes
        .iter()
        .map(|n| n.id)
        .find(|&id| layout.node(id).is_none() && cluster.setup.layouts.of(id).is_none())
}

/// Tries once to apply `step` through a running member that holds the committed
/// layout; true once committed.
fn apply(cluster: &SimCluster, step: LayoutStep, dead: Option<NodeId>) -> bool {
    let layouts = &cluster.setup.layouts;
    let world = &cluster.setup.world;
    let committed = layouts.committed();
    let through: Vec<NodeId> = cluster
        .nodes
        .iter()
        .filter(|n| n.current().is_some() && committed.member(n.id).is_some())
        .map(|n| n.id)
        .collect();
    if through.is_empty() {
        return false;
    }
    let via = through[world.rng(|r| r.gen_range(0..through.len()))];
    let Some(held) = layouts.of(via) else {
        return false;
    };
    let change = match step {
        LayoutStep::Join => next_spare(cluster).map(|id| LayoutChange::Assign {
            node: node_info(id),
        }),
        LayoutStep::Leave => match held.nodes.len() > held.replicas {
            true => pick_member(cluster).map(|node| LayoutChange::Remove { node }),
            false => None,
        },
        LayoutStep::ReplaceDead => {
            dead.zip(next_spare(cluster))
                .map(|(node, with)| LayoutChange::Replace {
                    node,
                    with: node_info(with),
                })
        }
    };
    let Some(change) = change else {
        return false;
    };
    let plan = match held.plan(std::slice::from_ref(&change)) {
        Ok(plan) => plan,
        Err(e) => {
            world.trace(format_args!("plan {change:?} at {via:?} refused: {e}"));
            return false;
        }
    };
    let ok = layouts.commit(world, via, plan.next);
    if ok {
        world.count(|s| match step {
            LayoutStep::Join => s.joins += 1,
            LayoutStep::Leave => s.leaves += 1,
            LayoutStep::ReplaceDead => s.replacements += 1,
        });
        world.trace(format_args!(
            "applied {change:?} through {via:?}, {} assignments move",
            plan.moved
        ));
    }
    ok
}

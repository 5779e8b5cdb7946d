//! The decisions that drive a layout change to its end (docs/cluster.md, "Changing the
//! layout"), as pure functions of the layout, what peers reported and what the failure
//! detector says. The node's driver (`node/transition.rs`) calls them with gossip's
//! reports and its own clocks and network; the deterministic simulation
//! (`sim/transition.rs`) calls the same functions with its simulated ones, so what the
//! simulation checks is the rule the real node follows, not a copy of it.

use super::Layout;
use crate::NodeId;
use std::collections::BTreeSet;
use std::time::Duration;

/// The longest a request started under an older layout may still run: a node
/// acknowledges a layout this long after it installed it.
pub fn drain_time(request_timeout: Duration, consensus_timeout: Duration) -> Duration {
    request_timeout.max(consensus_timeout) + Duration::from_millis(500)
}

/// Whether every node of `layout` reports a progress field (acknowledged or copied
/// version) at least at the layout's version: this node (`me`) from its own value
/// `mine`, the others as `reported` says. A departing node is not waited for when it is
/// down (`is_down`; it coordinates nothing while down) or was replaced (declared dead).
pub fn all_report(
    layout: &Layout,
    me: NodeId,
    mine: u64,
    reported: impl Fn(NodeId) -> u64,
    is_down: impl Fn(NodeId) -> bool,
) -> bool {
    layout.all_nodes().all(|n| {
        if n.id == me {
            return mine >= layout.version;
        }
        let departing = layout.member(n.id).is_none();
        let declared_dead = layout
            .transition
            .as_ref()
            .is_some_and(|t| t.replaced.contains(&n.id));
        reported(n.id) >= layout.version || (departing && (declared_dead || is_down(n.id)))
    })
}

/// Whether every member other than `me` reports its incoming partitions of `layout`
/// copied (`synced` at least the layout's version); the caller checks its own.
pub fn all_members_synced(layout: &Layout, me: NodeId, synced: impl Fn(NodeId) -> u64) -> bool {
    layout
        .nodes
        .iter()
        .all(|n| n.id == me || synced(n.id) >= layout.version)
}

/// Whether `me` commits the layout that ends `layout`'s transition now that every member
/// copied its partitions, the change having been ready to end for `ready_for`. Any node
/// may (the register takes one layout per version), but when every node tried at once
/// their consensus rounds on the register duelled: rounds were refused, one node gave up
/// after its whole consensus timeout, and a replica could keep the register's previous
/// version until anti-entropy (seen in tests/tests/cluster_streaming.rs). So the first
/// member (by id) that is not down settles at once, and the others only once the change
/// has waited `patience` for it (it may be paused, or cut off without being down yet).
pub fn settles_now(
    layout: &Layout,
    me: NodeId,
    is_down: impl Fn(NodeId) -> bool,
    ready_for: Duration,
    patience: Duration,
) -> bool {
    let first = layout
        .nodes
        .iter()
        .map(|n| n.id)
        .filter(|&id| id == me || !is_down(id))
        .min();
    first == Some(me) || ready_for >= patience
}

/// How many previous replicas a new replica must sync a partition with before it counts
/// as copied: N - W + 1, so that every write W of them acknowledged is among what it got.
pub fn sources_needed(replicas: usize, write_quorum: usize) -> usize {
    (replicas + 1).saturating_sub(write_quorum).max(1)
}

/// What a new replica still has to copy, and from whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyPlan {
    /// Incoming partitions not copied yet.
    pub todo: Vec<u16>,
    /// Per source (a previous replica other than `me` that is not down), the partitions
    /// of `todo` to sync with it, sources in increasing id order.
    pub sources: Vec<(NodeId, Vec<u16>)>,
}

/// The copy step's work for `me` under `layout`: its incoming partitions not in `copied`,
/// each from its previous replicas that are not down.
pub fn copy_plan(
    layout: &Layout,
    me: NodeId,
    copied: &BTreeSet<u16>,
    is_down: impl Fn(NodeId) -> bool,
) -> CopyPlan {
    let todo: Vec<u16> = layout
        .incoming(me)
        .into_iter()
        .filter(|part| !copied.contains(part))
        .collect();
    let sources: BTreeSet<NodeId> = todo
        .iter()
        .flat_map(|&p| layout.previous_preflist(p).to_vec())
        .filter(|&n| n != me && !is_down(n))
        .collect();
    let sources = sources
        .into_iter()
        .map(|source| {
            let parts = todo
                .iter()
                .copied()
                .filter(|&p| layout.previous_preflist(p).contains(&source))
                .collect();
            (source, parts)
        })
        .collect();
    CopyPlan { todo, sources }
}

/// The partitions of `todo` that at least `needed` sources synced (`synced_by`: one
/// entry per partition a source synced without error, repeated per source).
pub fn copied_now(todo: &[u16], synced_by: &[u16], needed: usize) -> Vec<u16> {
    todo.iter()
        .copied()
        .filter(|p| synced_by.iter().filter(|&&s| s == *p).count() >= needed)
        .collect()
}

/// Whether every incoming partition of `me` under `layout` is in `copied`.
pub fn all_copied(layout: &Layout, me: NodeId, copied: &BTreeSet<u16>) -> bool {
    layout.incoming(me).iter().all(|part| copied.contains(part))
}

/// The partitions `me` holds records of that `layout` no longer gives it: what clean-up
/// deletes once every node acknowledged a layout without transition.
pub fn partitions_to_drop(layout: &Layout, me: NodeId) -> Vec<u16> {
    let held: BTreeSet<u16> = layout.partitions_of(me).into_iter().collect();
    (0..kv_keyspace::slot::PARTITIONS)
        .filter(|p| !held.contains(p))
        .collect()
}

//! Which nodes hold which partitions: the assignment behind a layout's preference lists.
//!
//! A pure, deterministic function of (nodes, replicas), so every node that computes it
//! gets the same answer (nodes are taken in id order whatever order they are given in).
//! The guarantees, each property-tested below:
//!
//! - every partition has `replicas` distinct nodes;
//! - when there are at least `replicas` distinct zones, a partition's replicas are in
//!   distinct zones (with fewer zones, only nodes are kept distinct);
//! - balance by capacity: node i holds between `floor(share_i)` and `ceil(share_i)`
//!   replica assignments, where `share_i` ([`fair_shares`]) is its capacity's part of the
//!   `256 * replicas` assignments, water-filled so that no node holds more than one
//!   replica of a partition and no zone more than one (when zones are kept distinct);
//!   with equal capacities and no zone limit that is within +-1 of `256 * N / nodes`;
//! - balanced preference order: a node holding `c` assignments is first in the
//!   preference list of between `floor(c / N)` and `ceil(c / N)` partitions, and each
//!   later position is balanced the same way over what is left.
//!
//! How: each balance bound is a flow problem. The assignment is a maximum flow from the
//! partitions (each needing `replicas` units) through (partition, zone) pairs of
//! capacity 1 to the nodes, whose edges to the sink first allow `floor(share)` and are
//! then raised to `ceil(share)` (`replica_sets.rs`). Because a fractional solution
//! meeting every share exactly exists (each partition takes `share_i / 256` of node i),
//! an integral maximum flow saturates the floors and then reaches the full
//! `256 * replicas`. Preference positions are chosen the same way, one position at a
//! time (`order.rs`). Candidates are tried in an order rotated per partition so that a
//! node's partitions are shared with many different nodes, which spreads the load of a
//! failed node.
//!
//! Layout changes use [`rebalance`]: the previous assignments are pushed into the flow
//! first (each node keeping up to its new share), so only what must move moves.

mod flow;
mod order;
mod replica_sets;

use crate::layout::NodeInfo;
use crate::NodeId;
use kv_keyspace::slot::PARTITIONS;
use order::order_preferences;
use replica_sets::replica_sets;
use std::collections::BTreeSet;

/// Why no assignment was made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// `replicas` was 0.
    #[error("the replica count must be at least 1")]
    NoReplicas,
    /// Fewer nodes than replicas: a partition could not have distinct replicas.
    #[error("{replicas} replicas need at least {replicas} nodes, but there are {nodes}")]
    TooFewNodes {
        /// Replicas asked for.
        replicas: usize,
        /// Nodes available.
        nodes: usize,
    },
    /// The same node id twice.
    #[error("node {0} is listed twice")]
    DuplicateNode(NodeId),
    /// A node of capacity 0 (it could hold nothing; leave it out instead).
    #[error("node {0} has capacity 0; every node in a layout must hold data")]
    ZeroCapacity(NodeId),
    /// No assignment met the bounds. Cannot happen for valid inputs (see the module
    /// documentation); reported rather than panicking.
    #[error("placement found no assignment for valid inputs (a bug in kvd)")]
    Infeasible,
}

/// Checks what every placement needs of its inputs: at least one replica, at least as
/// many nodes, distinct ids, non-zero capacities.
pub fn check_nodes(nodes: &[NodeInfo], replicas: usize) -> Result<(), PlacementError> {
    if replicas == 0 {
        return Err(PlacementError::NoReplicas);
    }
    if nodes.len() < replicas {
        return Err(PlacementError::TooFewNodes {
            replicas,
            nodes: nodes.len(),
        });
    }
    let mut seen = BTreeSet::new();
    for node in nodes {
        if !seen.insert(node.id) {
            return Err(PlacementError::DuplicateNode(node.id));
        }
        if node.capacity == 0 {
            return Err(PlacementError::ZeroCapacity(node.id));
        }
    }
    Ok(())
}

/// Whether a partition's replicas must be in distinct zones: only when there are at
/// least `replicas` zones (otherwise it could not be done).
pub fn zones_kept_distinct(nodes: &[NodeInfo], replicas: usize) -> bool {
    distinct_zones(nodes).len() >= replicas
}

fn distinct_zones(nodes: &[NodeInfo]) -> Vec<&str> {
    let zones: BTreeSet<&str> = nodes.iter().map(|n| n.zone.as_str()).collect();
    zones.into_iter().collect()
}

/// Each node's fair number of replica assignments (in the order of `nodes`): its
/// capacity's part of `256 * replicas`, water-filled so that no node gets more than 256
/// (one replica of every partition) and, when zones are kept distinct, no zone more than
/// 256. Assumes [`check_nodes`] passed.
pub fn fair_shares(nodes: &[NodeInfo], replicas: usize) -> Vec<f64> {
    let total = f64::from(PARTITIONS) * replicas as f64;
    let per_node_limit = f64::from(PARTITIONS);
    let capacities: Vec<f64> = nodes.iter().map(|n| f64::from(n.capacity)).collect();
    if !zones_kept_distinct(nodes, replicas) {
        return water_fill(total, &capacities, per_node_limit);
    }
    let zones = distinct_zones(nodes);
    let zone_capacity: Vec<f64> = zones
        .iter()
        .map(|z| {
            nodes
                .iter()
                .filter(|n| n.zone == *z)
                .map(|n| f64::from(n.capacity))
                .sum()
        })
        .collect();
    let zone_share = water_fill(total, &zone_capacity, f64::from(PARTITIONS));
    // Within a zone nothing is capped: the zone's share is at most 256 already.
    nodes
        .iter()
        .map(|n| {
            let z = zones.iter().position(|z| *z == n.zone).unwrap_or(0);
            zone_share[z] * f64::from(n.capacity) / zone_capacity[z]
        })
        .collect()
}

/// Splits `total` in proportion to `weights`, but no part above `limit`: parts that
/// would exceed it are fixed at it and the rest is split again among the others.
fn water_fill(total: f64, weights: &[f64], limit: f64) -> Vec<f64> {
    let mut capped = vec![false; weights.len()];
    loop {
        let capped_count = capped.iter().filter(|&&c| c).count();
        let left = total - limit * capped_count as f64;
        let weight: f64 = weights
            .iter()
            .zip(&capped)
            .filter(|(_, &c)| !c)
            .map(|(w, _)| w)
            .sum();
        let share = |w: f64| if weight > 0.0 { left * w / weight } else { 0.0 };
        let mut changed = false;
        for (i, &w) in weights.iter().enumerate() {
            if !capped[i] && share(w) > limit + ROUNDING_SLACK {
                capped[i] = true;
                changed = true;
            }
        }
        if !changed {
            return weights
                .iter()
                .zip(&capped)
                .map(|(&w, &c)| if c { limit } else { share(w) })
                .collect();
        }
    }
}

/// Floating-point slack when rounding a share: shares are sums and ratios of integers
/// well below 2^40, computed in a fixed order (so identically on every node); this only
/// keeps an exact integer that came out as 191.999999... from rounding down.
const ROUNDING_SLACK: f64 = 1e-6;

fn share_floor(share: f64) -> u32 {
    (share + ROUNDING_SLACK).floor() as u32
}

fn share_ceil(share: f64) -> u32 {
    (share - ROUNDING_SLACK).ceil().max(0.0) as u32
}

/// The preference list of every partition (index = partition), each `replicas`
/// distinct node ids in preference order. Deterministic; see the module documentation
/// for the guarantees.
pub fn assign(nodes: &[NodeInfo], replicas: usize) -> Result<Vec<Vec<NodeId>>, PlacementError> {
    rebalance(&[], nodes, replicas)
}

/// Like [`assign`], with the same guarantees, but moving as few replica assignments
/// away from `previous` (the old preference lists) as the new shares allow: a node
/// keeps its previous assignments up to its new share, and previous preference order is
/// kept where the balance allows. Adding a fifth node to four at N=3, for example,
/// moves only the assignments the new node takes (about a fifth).
pub fn rebalance(
    previous: &[Vec<NodeId>],
    nodes: &[NodeInfo],
    replicas: usize,
) -> Result<Vec<Vec<NodeId>>, PlacementError> {
    check_nodes(nodes, replicas)?;
    let (sorted, shares, zones_distinct, previous) = prepare(previous, nodes, replicas);
    let sets = replica_sets(&sorted, replicas, zones_distinct, &shares, &previous)?;
    let ordered = order_preferences(sets, sorted.len(), replicas)?;
    Ok(ordered
        .into_iter()
        .map(|list| list.into_iter().map(|i| sorted[i].id).collect())
        .collect())
}

/// The problem in the form the solvers take: nodes sorted by id, their shares, whether
/// zones are kept distinct, and the previous lists as node indexes (members only).
type Prepared = (Vec<NodeInfo>, Vec<f64>, bool, Vec<Vec<usize>>);

fn prepare(previous: &[Vec<NodeId>], nodes: &[NodeInfo], replicas: usize) -> Prepared {
    let mut sorted: Vec<NodeInfo> = nodes.to_vec();
    sorted.sort_by_key(|n| n.id);
    let index_of = |id: &NodeId| sorted.binary_search_by_key(id, |n| n.id).ok();
    let previous: Vec<Vec<usize>> = previous
        .iter()
        .map(|list| list.iter().filter_map(index_of).collect())
        .collect();
    let shares = fair_shares(&sorted, replicas);
    let zones_distinct = zones_kept_distinct(&sorted, replicas);
    (sorted, shares, zones_distinct, previous)
}

#[cfg(test)]
mod tests;

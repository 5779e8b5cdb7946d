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
//! then raised to `ceil(share)`. Because a fractional solution meeting every share
//! exactly exists (each partition takes `share_i / 256` of node i), an integral maximum
//! flow saturates the floors and then reaches the full `256 * replicas`. Preference
//! positions are chosen the same way, one position at a time. The candidate order is
//! rotated per partition so that a node's partitions are shared with many different
//! nodes, which spreads the load of a failed node.

mod flow;

use crate::layout::NodeInfo;
use crate::NodeId;
use flow::FlowGraph;
use kv_keyspace::slot::PARTITIONS;
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
    check_nodes(nodes, replicas)?;
    let mut sorted: Vec<NodeInfo> = nodes.to_vec();
    sorted.sort_by_key(|n| n.id);
    let replica_sets = assign_replica_sets(&sorted, replicas)?;
    let ordered = order_preferences(replica_sets, sorted.len(), replicas)?;
    Ok(ordered
        .into_iter()
        .map(|list| list.into_iter().map(|i| sorted[i].id).collect())
        .collect())
}

const SOURCE: usize = 0;
const SINK: usize = 1;
const PARTITION_COUNT: usize = PARTITIONS as usize;

fn partition_vertex(p: usize) -> usize {
    2 + p
}

/// Which node indexes hold each partition (unordered), meeting the share bounds.
fn assign_replica_sets(
    nodes: &[NodeInfo],
    replicas: usize,
) -> Result<Vec<Vec<usize>>, PlacementError> {
    let n = nodes.len();
    let zones = distinct_zones(nodes);
    // With too few zones every node is its own "zone" for the per-partition limit of
    // one, which is just the distinct-nodes rule.
    let zone_of: Vec<usize> = if zones.len() >= replicas {
        nodes
            .iter()
            .map(|node| zones.iter().position(|z| *z == node.zone).unwrap_or(0))
            .collect()
    } else {
        (0..n).collect()
    };
    let zone_count = zone_of.iter().max().map_or(0, |z| z + 1);
    let members: Vec<Vec<usize>> = (0..zone_count)
        .map(|z| (0..n).filter(|&i| zone_of[i] == z).collect())
        .collect();

    let slot_vertex = |p: usize, z: usize| 2 + PARTITION_COUNT + p * zone_count + z;
    let node_vertex = |i: usize| 2 + PARTITION_COUNT * (1 + zone_count) + i;
    let mut graph = FlowGraph::new(2 + PARTITION_COUNT * (1 + zone_count) + n);
    let mut holds: Vec<Vec<(usize, usize)>> = vec![Vec::new(); PARTITION_COUNT];
    for (p, held) in holds.iter_mut().enumerate() {
        graph.add_edge(SOURCE, partition_vertex(p), capacity(replicas)?);
        for zk in 0..zone_count {
            let z = (p + zk) % zone_count;
            graph.add_edge(partition_vertex(p), slot_vertex(p, z), 1);
            let zone_members = &members[z];
            for k in 0..zone_members.len() {
                let i = zone_members[(p + k) % zone_members.len()];
                held.push((i, graph.add_edge(slot_vertex(p, z), node_vertex(i), 1)));
            }
        }
    }
    let shares = fair_shares(nodes, replicas);
    fill_in_two_stages(&mut graph, &shares, node_vertex, PARTITION_COUNT * replicas)?;
    let sets: Vec<Vec<usize>> = holds
        .iter()
        .map(|held| {
            held.iter()
                .filter(|&&(_, e)| graph.flow(e) == 1)
                .map(|&(i, _)| i)
                .collect()
        })
        .collect();
    if sets.iter().any(|s| s.len() != replicas) {
        return Err(PlacementError::Infeasible);
    }
    Ok(sets)
}

fn capacity(units: usize) -> Result<u32, PlacementError> {
    u32::try_from(units).map_err(|_| PlacementError::Infeasible)
}

/// Adds each node's edge to the sink, lets `floor(share)` through, raises it to
/// `ceil(share)`, and checks that `expected` units flowed in all.
fn fill_in_two_stages(
    graph: &mut FlowGraph,
    shares: &[f64],
    node_vertex: impl Fn(usize) -> usize,
    expected: usize,
) -> Result<(), PlacementError> {
    let sink_edges: Vec<usize> = shares
        .iter()
        .enumerate()
        .map(|(i, &s)| graph.add_edge(node_vertex(i), SINK, share_floor(s)))
        .collect();
    let mut total = graph.augment(SOURCE, SINK);
    for (&e, &s) in sink_edges.iter().zip(shares) {
        graph.add_capacity(e, share_ceil(s).saturating_sub(share_floor(s)));
    }
    total += graph.augment(SOURCE, SINK);
    if total != expected as u64 {
        return Err(PlacementError::Infeasible);
    }
    Ok(())
}

/// Orders each partition's replicas: position by position, each partition picks one of
/// its not-yet-placed replicas so that every node takes its fair part of the position.
fn order_preferences(
    mut remaining: Vec<Vec<usize>>,
    n: usize,
    replicas: usize,
) -> Result<Vec<Vec<usize>>, PlacementError> {
    let mut ordered: Vec<Vec<usize>> = vec![Vec::with_capacity(replicas); remaining.len()];
    for position in 0..replicas {
        let left = replicas - position;
        let mut counts = vec![0usize; n];
        for &i in remaining.iter().flatten() {
            counts[i] += 1;
        }
        let shares: Vec<f64> = counts.iter().map(|&c| c as f64 / left as f64).collect();
        let node_vertex = |i: usize| 2 + PARTITION_COUNT + i;
        let mut graph = FlowGraph::new(2 + PARTITION_COUNT + n);
        let mut candidates: Vec<Vec<(usize, usize)>> = Vec::with_capacity(PARTITION_COUNT);
        for (p, set) in remaining.iter().enumerate() {
            graph.add_edge(SOURCE, partition_vertex(p), 1);
            candidates.push(
                set.iter()
                    .map(|&i| (i, graph.add_edge(partition_vertex(p), node_vertex(i), 1)))
                    .collect(),
            );
        }
        fill_in_two_stages(&mut graph, &shares, node_vertex, remaining.len())?;
        for (p, choices) in candidates.iter().enumerate() {
            let chosen = choices
                .iter()
                .find(|&&(_, e)| graph.flow(e) == 1)
                .map(|&(i, _)| i)
                .ok_or(PlacementError::Infeasible)?;
            ordered[p].push(chosen);
            remaining[p].retain(|&i| i != chosen);
        }
    }
    Ok(ordered)
}

#[cfg(test)]
mod tests;

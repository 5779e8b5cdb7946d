//! Which nodes hold each partition (before ordering), as a maximum flow that meets the
//! capacity shares and, when there is a previous assignment, keeps as much of it as
//! the new shares allow.
//!
//! Graph: source -> partition (capacity N) -> (partition, zone) (capacity 1) -> node
//! (capacity 1) -> sink (capacity floor(share), later ceil(share)). When zones cannot be
//! kept distinct, every node is its own zone, which is just the distinct-nodes rule.
//!
//! Keeping: each node first keeps up to floor(share) of its previous assignments,
//! pushed into the flow before augmenting. The ones it must give up are chosen among
//! the partitions that have given up the fewest so far (and the node's later positions
//! first), so the freed places spread over many partitions and a new node can take
//! them without displacing anyone else. After the caps rise to ceil(share), given-up
//! assignments are taken back where room is left, and then the rest is filled.
//!
//! Kept assignments are first fixed (augmenting may not move them), so only the
//! places that were freed are filled and nothing else moves. If that cannot meet every
//! bound, the kept assignments are pushed as ordinary flow instead, which augmenting
//! may reroute: more moves, but the bounds always hold (see the module above).

use super::flow::FlowGraph;
use super::{share_ceil, share_floor, PlacementError};
use crate::layout::NodeInfo;
use kv_keyspace::slot::PARTITIONS;
use std::cmp::Reverse;

const SOURCE: usize = 0;
const SINK: usize = 1;
const PARTITION_COUNT: usize = PARTITIONS as usize;

/// The flow graph of one assignment problem, with the edges needed to read it back and
/// to push kept assignments.
struct SetsGraph {
    graph: FlowGraph,
    zone_of: Vec<usize>,
    source_edges: Vec<usize>,
    /// `slot_edges[p][z]`: partition p -> (p, z).
    slot_edges: Vec<Vec<usize>>,
    /// `holds[p]`: (node, edge (p, zone of node) -> node), in candidate order.
    holds: Vec<Vec<(usize, usize)>>,
    sink_edges: Vec<usize>,
    /// Kept assignments that augmenting may not reroute, per partition.
    fixed: Vec<Vec<usize>>,
    /// How many fixed assignments each node has.
    fixed_count: Vec<u32>,
}

impl SetsGraph {
    fn new(nodes: &[NodeInfo], replicas: usize, zones_distinct: bool, shares: &[f64]) -> SetsGraph {
        let n = nodes.len();
        let zone_of = zone_indexes(nodes, zones_distinct);
        let zone_count = zone_of.iter().max().map_or(0, |z| z + 1);
        let members: Vec<Vec<usize>> = (0..zone_count)
            .map(|z| (0..n).filter(|&i| zone_of[i] == z).collect())
            .collect();
        let partition_vertex = |p: usize| 2 + p;
        let slot_vertex = |p: usize, z: usize| 2 + PARTITION_COUNT + p * zone_count + z;
        let node_vertex = |i: usize| 2 + PARTITION_COUNT * (1 + zone_count) + i;
        let mut graph = FlowGraph::new(2 + PARTITION_COUNT * (1 + zone_count) + n);
        let replicas = u32::try_from(replicas).unwrap_or(u32::MAX);
        let mut source_edges = Vec::with_capacity(PARTITION_COUNT);
        let mut slot_edges = Vec::with_capacity(PARTITION_COUNT);
        let mut holds = Vec::with_capacity(PARTITION_COUNT);
        for p in 0..PARTITION_COUNT {
            source_edges.push(graph.add_edge(SOURCE, partition_vertex(p), replicas));
            let mut slots = vec![0; zone_count];
            let mut held = Vec::new();
            // Rotated per partition so that a node's partitions are shared with many
            // different peers.
            for zk in 0..zone_count {
                let z = (p + zk) % zone_count;
                slots[z] = graph.add_edge(partition_vertex(p), slot_vertex(p, z), 1);
                let zone_members = &members[z];
                for k in 0..zone_members.len() {
                    let i = zone_members[(p + k) % zone_members.len()];
                    held.push((i, graph.add_edge(slot_vertex(p, z), node_vertex(i), 1)));
                }
            }
            slot_edges.push(slots);
            holds.push(held);
        }
        let sink_edges = shares
            .iter()
            .enumerate()
            .map(|(i, &s)| graph.add_edge(node_vertex(i), SINK, share_floor(s)))
            .collect();
        SetsGraph {
            graph,
            zone_of,
            source_edges,
            slot_edges,
            holds,
            sink_edges,
            fixed: vec![Vec::new(); PARTITION_COUNT],
            fixed_count: vec![0; n],
        }
    }

    fn hold_edge(&self, p: usize, i: usize) -> Option<usize> {
        self.holds[p]
            .iter()
            .find(|&&(j, _)| j == i)
            .map(|&(_, e)| e)
    }

    /// Pushes "node i holds partition p" if there is room everywhere on its path,
    /// fixed (never rerouted) or not.
    fn keep(&mut self, p: usize, i: usize, fixed: bool) -> bool {
        let Some(hold) = self.hold_edge(p, i) else {
            return false;
        };
        let path = [
            self.source_edges[p],
            self.slot_edges[p][self.zone_of[i]],
            hold,
            self.sink_edges[i],
        ];
        if !fixed {
            return self.graph.push_unit(&path);
        }
        let done = self.graph.fix_unit(&path);
        if done {
            self.fixed[p].push(i);
            self.fixed_count[i] += 1;
        }
        done
    }

    fn held(&self, i: usize) -> u32 {
        self.graph.flow(self.sink_edges[i]) + self.fixed_count[i]
    }

    fn holds(&self, p: usize, i: usize) -> bool {
        self.fixed[p].contains(&i)
            || self
                .hold_edge(p, i)
                .is_some_and(|e| self.graph.flow(e) == 1)
    }
}

/// For each node, the index of its zone; with `zones_distinct` false every node is its
/// own zone.
fn zone_indexes(nodes: &[NodeInfo], zones_distinct: bool) -> Vec<usize> {
    if !zones_distinct {
        return (0..nodes.len()).collect();
    }
    let zones = super::distinct_zones(nodes);
    nodes
        .iter()
        .map(|node| zones.iter().position(|z| *z == node.zone).unwrap_or(0))
        .collect()
}

/// Node indexes holding each partition: previous holders that were kept first, in their
/// previous order, then new ones. `previous[p]` lists partition p's previous holders
/// (node indexes, preference order; empty when there is none).
pub(super) fn replica_sets(
    nodes: &[NodeInfo],
    replicas: usize,
    zones_distinct: bool,
    shares: &[f64],
    previous: &[Vec<usize>],
) -> Result<Vec<Vec<usize>>, PlacementError> {
    let attempt = |fixed| attempt(nodes, replicas, zones_distinct, shares, previous, fixed);
    attempt(true)
        .or_else(|| attempt(false))
        .ok_or(PlacementError::Infeasible)
}

/// One try; `None` if a bound is not met (only possible with `fixed` kept assignments).
pub(super) fn attempt(
    nodes: &[NodeInfo],
    replicas: usize,
    zones_distinct: bool,
    shares: &[f64],
    previous: &[Vec<usize>],
    fixed: bool,
) -> Option<Vec<Vec<usize>>> {
    let mut g = SetsGraph::new(nodes, replicas, zones_distinct, shares);
    let candidates = keepable(&g.zone_of, replicas, previous);

    // Which previous assignments each node keeps within floor(share), and which it gives up.
    let mut given_up_in = vec![0usize; PARTITION_COUNT];
    let mut given_up: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (i, share) in shares.iter().enumerate() {
        let mut mine: Vec<(usize, usize)> = candidates
            .iter()
            .enumerate()
            .filter_map(|(p, list)| list.iter().position(|&j| j == i).map(|pos| (p, pos)))
            .collect();
        let keep = mine.len().min(share_floor(*share) as usize);
        let release = mine.len() - keep;
        mine.sort_by_key(|&(p, pos)| (given_up_in[p], Reverse(pos), p));
        for &(p, _) in &mine[..release] {
            given_up_in[p] += 1;
            given_up[i].push(p);
        }
        for &(p, _) in &mine[release..] {
            g.keep(p, i, fixed);
        }
    }
    g.graph.augment(SOURCE, SINK);

    for (i, share) in shares.iter().enumerate() {
        let room = share_ceil(*share).saturating_sub(share_floor(*share));
        g.graph.add_capacity(g.sink_edges[i], room);
    }
    for (i, share) in shares.iter().enumerate() {
        for &p in &given_up[i] {
            if g.held(i) < share_ceil(*share) {
                g.keep(p, i, fixed);
            }
        }
    }
    g.graph.augment(SOURCE, SINK);

    let balanced = shares.iter().enumerate().all(|(i, &share)| {
        let held = g.held(i);
        share_floor(share) <= held && held <= share_ceil(share)
    });
    let sets: Vec<Vec<usize>> = (0..PARTITION_COUNT)
        .map(|p| {
            let kept = candidates[p].iter().copied().filter(|&i| g.holds(p, i));
            let new = g.holds[p]
                .iter()
                .map(|&(i, _)| i)
                .filter(|&i| g.holds(p, i) && !candidates[p].contains(&i));
            kept.chain(new).collect()
        })
        .collect();
    (balanced && sets.iter().all(|s| s.len() == replicas)).then_some(sets)
}

/// The previous holders that may stay: at most `replicas` per partition, in preference
/// order, skipping one whose zone (or, without zone rule, node) is already taken.
fn keepable(zone_of: &[usize], replicas: usize, previous: &[Vec<usize>]) -> Vec<Vec<usize>> {
    (0..PARTITION_COUNT)
        .map(|p| {
            let mut kept: Vec<usize> = Vec::new();
            for &i in previous.get(p).map_or(&[][..], Vec::as_slice) {
                if kept.len() < replicas
                    && i < zone_of.len()
                    && kept.iter().all(|&j| zone_of[j] != zone_of[i])
                {
                    kept.push(i);
                }
            }
            kept
        })
        .collect()
}

//! The order of each partition's replicas: position by position, each partition picks
//! one of its not-yet-placed replicas so that every node takes its fair part of the
//! position (between floor and ceil of its remaining count / positions left), as a flow
//! whose node caps are the floors first and the ceilings after. Candidates are tried in
//! the order given (previous holders in their previous order first), so a change keeps
//! preferences where the balance allows.

use super::flow::FlowGraph;
use super::{share_ceil, share_floor, PlacementError};

const SOURCE: usize = 0;
const SINK: usize = 1;

/// Orders every partition's replica set (node indexes, `n` nodes).
pub(super) fn order_preferences(
    mut remaining: Vec<Vec<usize>>,
    n: usize,
    replicas: usize,
) -> Result<Vec<Vec<usize>>, PlacementError> {
    let partitions = remaining.len();
    let mut ordered: Vec<Vec<usize>> = vec![Vec::with_capacity(replicas); partitions];
    for position in 0..replicas {
        let left = replicas - position;
        let mut counts = vec![0usize; n];
        for &i in remaining.iter().flatten() {
            counts[i] += 1;
        }
        let partition_vertex = |p: usize| 2 + p;
        let node_vertex = |i: usize| 2 + partitions + i;
        let mut graph = FlowGraph::new(2 + partitions + n);
        let mut choices: Vec<Vec<(usize, usize)>> = Vec::with_capacity(partitions);
        for (p, set) in remaining.iter().enumerate() {
            graph.add_edge(SOURCE, partition_vertex(p), 1);
            choices.push(
                set.iter()
                    .map(|&i| (i, graph.add_edge(partition_vertex(p), node_vertex(i), 1)))
                    .collect(),
            );
        }
        let shares: Vec<f64> = counts.iter().map(|&c| c as f64 / left as f64).collect();
        let sink_edges: Vec<usize> = shares
            .iter()
            .enumerate()
            .map(|(i, &s)| graph.add_edge(node_vertex(i), SINK, share_floor(s)))
            .collect();
        graph.augment(SOURCE, SINK);
        for (&e, &s) in sink_edges.iter().zip(&shares) {
            graph.add_capacity(e, share_ceil(s).saturating_sub(share_floor(s)));
        }
        graph.augment(SOURCE, SINK);
        for (p, options) in choices.iter().enumerate() {
            let chosen = options
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

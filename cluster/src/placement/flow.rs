//! A small maximum-flow solver (Edmonds-Karp: shortest augmenting paths by BFS) for the
//! placement problems, which are bipartite matchings with capacities: a few hundred
//! partitions against a few dozen nodes. Deterministic: edges are explored in the order
//! they were added, so the same graph always yields the same flow.

use std::collections::VecDeque;

/// A directed graph with integer capacities; each edge has a paired reverse edge (index
/// `e ^ 1`) that holds the flow pushed through it, as residual capacity.
pub(super) struct FlowGraph {
    to: Vec<usize>,
    residual: Vec<u32>,
    edges_from: Vec<Vec<usize>>,
}

impl FlowGraph {
    /// A graph of `vertices` vertices and no edges.
    pub(super) fn new(vertices: usize) -> FlowGraph {
        FlowGraph {
            to: Vec::new(),
            residual: Vec::new(),
            edges_from: vec![Vec::new(); vertices],
        }
    }

    /// Adds an edge and returns its index.
    pub(super) fn add_edge(&mut self, from: usize, to: usize, capacity: u32) -> usize {
        let edge = self.to.len();
        self.to.push(to);
        self.residual.push(capacity);
        self.edges_from[from].push(edge);
        self.to.push(from);
        self.residual.push(0);
        self.edges_from[to].push(edge + 1);
        edge
    }

    /// Raises an edge's capacity by `extra`, keeping the flow already through it.
    pub(super) fn add_capacity(&mut self, edge: usize, extra: u32) {
        self.residual[edge] += extra;
    }

    /// The flow through `edge`.
    pub(super) fn flow(&self, edge: usize) -> u32 {
        self.residual[edge ^ 1]
    }

    /// Pushes one unit along `path` (a chain of edges from the source to the sink) if
    /// every edge has room; returns whether it did. Later augmenting may reroute it.
    pub(super) fn push_unit(&mut self, path: &[usize]) -> bool {
        self.take_unit(path, true)
    }

    /// Like [`FlowGraph::push_unit`], but the unit is fixed: it uses up capacity and no
    /// augmenting path can reroute it (nor does [`FlowGraph::flow`] count it).
    pub(super) fn fix_unit(&mut self, path: &[usize]) -> bool {
        self.take_unit(path, false)
    }

    fn take_unit(&mut self, path: &[usize], reroutable: bool) -> bool {
        if path.iter().any(|&e| self.residual[e] == 0) {
            return false;
        }
        for &e in path {
            self.residual[e] -= 1;
            if reroutable {
                self.residual[e ^ 1] += 1;
            }
        }
        true
    }

    /// Pushes as much more flow from `source` to `sink` as fits and returns how much.
    /// Flow already on the edges into `sink` never decreases (an augmenting path enters
    /// the sink once and never leaves it), which placement relies on to fill quotas in
    /// stages.
    pub(super) fn augment(&mut self, source: usize, sink: usize) -> u64 {
        let mut total = 0u64;
        while let Some(path) = self.shortest_path(source, sink) {
            let bottleneck = path.iter().map(|&e| self.residual[e]).min().unwrap_or(0);
            if bottleneck == 0 {
                break;
            }
            for &e in &path {
                self.residual[e] -= bottleneck;
                self.residual[e ^ 1] += bottleneck;
            }
            total += u64::from(bottleneck);
        }
        total
    }

    /// The edges of a shortest path with spare capacity, if any.
    fn shortest_path(&self, source: usize, sink: usize) -> Option<Vec<usize>> {
        let mut via: Vec<Option<usize>> = vec![None; self.edges_from.len()];
        let mut seen = vec![false; self.edges_from.len()];
        seen[source] = true;
        let mut queue = VecDeque::from([source]);
        while let Some(v) = queue.pop_front() {
            if v == sink {
                break;
            }
            for &e in &self.edges_from[v] {
                let w = self.to[e];
                if self.residual[e] > 0 && !seen[w] {
                    seen[w] = true;
                    via[w] = Some(e);
                    queue.push_back(w);
                }
            }
        }
        if !seen[sink] {
            return None;
        }
        let mut path = Vec::new();
        let mut v = sink;
        while let Some(e) = via[v] {
            path.push(e);
            v = self.to[e ^ 1];
        }
        Some(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_maximum_of_a_small_bipartite_matching() {
        // Two left vertices both like right vertex 0; only one also likes right 1.
        let (s, t, l0, l1, r0, r1) = (0, 1, 2, 3, 4, 5);
        let mut g = FlowGraph::new(6);
        g.add_edge(s, l0, 1);
        g.add_edge(s, l1, 1);
        let a = g.add_edge(l0, r0, 1);
        let b = g.add_edge(l1, r0, 1);
        let c = g.add_edge(l1, r1, 1);
        g.add_edge(r0, t, 1);
        g.add_edge(r1, t, 1);
        assert_eq!(g.augment(s, t), 2);
        assert_eq!(g.flow(a) + g.flow(b), 1);
        assert_eq!(g.flow(c), 1);
        assert_eq!(g.augment(s, t), 0);
    }

    /// l0 may use r0 or r1, l1 only r0. Returns the graph and the edges
    /// (source -> l0, l0 -> r0, l0 -> r1, l1 -> r0, r0 -> sink); source 0, sink 1.
    fn crossing() -> (FlowGraph, [usize; 5]) {
        let (s, t, l0, l1, r0, r1) = (0, 1, 2, 3, 4, 5);
        let mut g = FlowGraph::new(6);
        let s0 = g.add_edge(s, l0, 1);
        g.add_edge(s, l1, 1);
        let a = g.add_edge(l0, r0, 1);
        let b = g.add_edge(l0, r1, 1);
        let c = g.add_edge(l1, r0, 1);
        let t0 = g.add_edge(r0, t, 1);
        g.add_edge(r1, t, 1);
        (g, [s0, a, b, c, t0])
    }

    #[test]
    fn a_pushed_unit_can_be_rerouted_by_augmenting() {
        // l0 is pushed to r0 first; l1 can only use r0, so augmenting moves l0 to r1.
        let (mut g, [s0, a, b, c, t0]) = crossing();
        assert!(g.push_unit(&[s0, a, t0]));
        assert!(!g.push_unit(&[s0, a, t0]), "no room left");
        assert_eq!(g.augment(0, 1), 1);
        assert_eq!((g.flow(a), g.flow(b), g.flow(c)), (0, 1, 1));
    }

    #[test]
    fn a_fixed_unit_is_never_rerouted() {
        let (mut g, [s0, a, _, c, t0]) = crossing();
        assert!(g.fix_unit(&[s0, a, t0]));
        assert_eq!(g.augment(0, 1), 0, "l1 cannot displace the fixed unit");
        assert_eq!(g.flow(c), 0);
    }

    #[test]
    fn raising_a_capacity_lets_more_flow_through() {
        let mut g = FlowGraph::new(2);
        let e = g.add_edge(0, 1, 1);
        assert_eq!(g.augment(0, 1), 1);
        g.add_capacity(e, 2);
        assert_eq!(g.augment(0, 1), 2);
        assert_eq!(g.flow(e), 3);
    }
}

//! The cluster as an operator sees it from one node: every node of the layout with its
//! addresses, state, partitions, hints and last anti-entropy exchange, the partition
//! map, and the node's cluster counters. The server renders it as `GET /cluster/nodes`,
//! the cluster part of `/metrics` and the cluster check of `/ready`
//! (docs/http-api.md). A copy taken at once; CLUSTER INFO reads the same counters.

use crate::coordinator::CoordinatorStats;
use crate::hints::HintStats;
use crate::replica_api::PeerState;
use crate::rpc::RpcLatency;
use crate::NodeId;

/// One anti-entropy exchange (or round) as this node last saw it end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncSeen {
    /// When it ended, Unix ms.
    pub at_ms: u64,
    /// Whether every partition compared without error.
    pub ok: bool,
}

/// One node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    /// The node.
    pub id: NodeId,
    /// Whether it is the node answering.
    pub myself: bool,
    /// Where clients reach it over RESP (`host:port`).
    pub resp_addr: String,
    /// Where peers reach its bus.
    pub bus_addr: String,
    /// Where it serves HTTP, as it publishes by gossip; `None` when it has no HTTP port
    /// or has not been heard from since this node started.
    pub http_addr: Option<String>,
    /// As this node's failure detector sees it (always up for itself).
    pub state: PeerState,
    /// Partitions it holds a replica of.
    pub partitions: Vec<u16>,
    /// Partitions for which it is first in the preference list.
    pub first_partitions: usize,
    /// Hints this node keeps for it.
    pub hints_pending: u64,
    /// For a peer, this node's last anti-entropy exchange with it; for this node, its
    /// last anti-entropy round. `None` until one ended.
    pub anti_entropy: Option<SyncSeen>,
}

impl NodeView {
    /// A node known only by its id, client address and state, holding nothing and owed
    /// nothing: how tests and fakes describe one.
    pub fn bare(id: NodeId, resp_addr: String, state: PeerState) -> NodeView {
        NodeView {
            id,
            myself: false,
            resp_addr,
            bus_addr: String::new(),
            http_addr: None,
            state,
            partitions: Vec::new(),
            first_partitions: 0,
            hints_pending: 0,
            anti_entropy: None,
        }
    }
}

/// The node's cluster counters since start (hints pending are a current count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClusterCounters {
    /// Hinted handoff.
    pub hints: HintStats,
    /// Read repairs, stale retries, consensus rounds and retries.
    pub coordinator: CoordinatorStats,
    /// Anti-entropy rounds run.
    pub anti_entropy_rounds: u64,
    /// Keys anti-entropy found different and repaired.
    pub anti_entropy_keys_repaired: u64,
    /// Peer exchanges or partitions anti-entropy could not compare.
    pub anti_entropy_failures: u64,
    /// Tombstones collected.
    pub tombstones_purged: u64,
    /// Partitions the slow Merkle rebuild from data went over.
    pub merkle_rebuilds: u64,
    /// Leaves that rebuild found wrong and fixed: damage, or writes racing with it.
    pub merkle_leaves_fixed: u64,
    /// Replica requests this node refused for an older layout tag, and the untagged and
    /// newer-tagged ones it served (rpc/layout_tag.rs).
    pub layout_tag: crate::rpc::LayoutTagStats,
    /// Peers counted by how this node's replica requests reach them now.
    pub carriers: crate::rpc::CarrierCounts,
}

/// Everything at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterView {
    /// The node answering.
    pub me: NodeId,
    /// The layout's version, 0 before the first layout.
    pub layout_version: u64,
    /// N.
    pub replicas: usize,
    /// W.
    pub write_quorum: usize,
    /// R.
    pub read_quorum: usize,
    /// Every node of the layout (or, before one exists, every node met), by id.
    pub nodes: Vec<NodeView>,
    /// Each partition's replicas in preference order (index = partition); empty before
    /// the first layout.
    pub partitions: Vec<Vec<NodeId>>,
    /// Counters.
    pub counters: ClusterCounters,
    /// Durations of the bus calls this node made, per RPC kind.
    pub rpc: Vec<RpcLatency>,
}

impl ClusterView {
    /// Up replicas a partition needs for this node to serve both reads and consensus
    /// writes on it: R, W and a majority of N.
    pub fn quorum_needed(&self) -> usize {
        self.read_quorum
            .max(self.write_quorum)
            .max(self.replicas / 2 + 1)
    }

    /// The partitions this node holds whose up replicas (as its failure detector sees
    /// them) are fewer than [`ClusterView::quorum_needed`]. All of them before the first
    /// layout is a `None`: there are no partitions yet.
    pub fn own_partitions_without_quorum(&self) -> Option<Vec<u16>> {
        if self.partitions.is_empty() {
            return None;
        }
        let state = |id: NodeId| {
            self.nodes
                .iter()
                .find(|n| n.id == id)
                .map_or(PeerState::Down, |n| n.state)
        };
        let need = self.quorum_needed();
        Some(
            self.partitions
                .iter()
                .enumerate()
                .filter(|(_, pref)| pref.contains(&self.me))
                .filter(|(_, pref)| {
                    pref.iter().filter(|&&n| state(n) == PeerState::Up).count() < need
                })
                .map(|(p, _)| p as u16)
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u64, state: PeerState) -> NodeView {
        NodeView {
            myself: id == 1,
            ..NodeView::bare(NodeId(id), String::new(), state)
        }
    }

    #[test]
    fn only_this_nodes_partitions_count_toward_readiness() {
        let mut v = ClusterView {
            me: NodeId(1),
            layout_version: 1,
            replicas: 2,
            write_quorum: 2,
            read_quorum: 1,
            nodes: vec![
                node(1, PeerState::Up),
                node(2, PeerState::Up),
                node(3, PeerState::Down),
            ],
            partitions: vec![
                vec![NodeId(1), NodeId(2)],
                vec![NodeId(2), NodeId(3)],
                vec![NodeId(3), NodeId(1)],
            ],
            counters: ClusterCounters::default(),
            rpc: Vec::new(),
        };
        assert_eq!(v.quorum_needed(), 2);
        // Partition 1 lacks a quorum too, but this node holds no replica of it.
        assert_eq!(v.own_partitions_without_quorum(), Some(vec![2]));
        v.nodes[1].state = PeerState::Suspect;
        assert_eq!(v.own_partitions_without_quorum(), Some(vec![0, 2]));
        v.partitions.clear();
        assert_eq!(v.own_partitions_without_quorum(), None);
    }
}

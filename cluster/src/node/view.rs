//! The node's [`ClusterView`] (crate::view) and the counters CLUSTER INFO and
//! `/metrics` both read, so each figure has one source.

use super::ClusterNode;
use crate::replica_api::Liveness;
use crate::view::{ClusterCounters, ClusterView, NodeView, SyncSeen};
use crate::NodeId;
use kv_keyspace::slot::PARTITIONS;
use std::collections::HashMap;
use std::sync::atomic::Ordering;

/// When anti-entropy last ended, for this node's round and per peer.
#[derive(Debug, Default)]
pub(super) struct AntiEntropySeen {
    round: Option<SyncSeen>,
    peers: HashMap<NodeId, SyncSeen>,
}

fn now_ms() -> u64 {
    crate::hints::system_clock_ms()()
}

impl AntiEntropySeen {
    /// An exchange with `peer` ended.
    pub(super) fn peer_synced(&mut self, peer: NodeId, ok: bool) {
        let at_ms = now_ms();
        self.peers.insert(peer, SyncSeen { at_ms, ok });
    }

    /// A round (every peer) ended.
    pub(super) fn round_ended(&mut self, ok: bool) {
        let at_ms = now_ms();
        self.round = Some(SyncSeen { at_ms, ok });
    }
}

impl ClusterNode {
    /// Where this node serves HTTP, if it does.
    pub(super) fn http_addr(&self) -> Option<String> {
        (self.config.http_port != 0)
            .then(|| format!("{}:{}", self.config.announce_ip, self.config.http_port))
    }

    /// The cluster counters since start.
    pub(super) fn counters(&self) -> ClusterCounters {
        let s = &self.stats;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        ClusterCounters {
            hints: self.coordinator.hints().stats(),
            coordinator: self.coordinator.stats(),
            anti_entropy_rounds: load(&s.anti_entropy_rounds),
            anti_entropy_keys_repaired: load(&s.anti_entropy_keys_repaired),
            anti_entropy_failures: load(&s.anti_entropy_failures),
            tombstones_purged: load(&s.tombstones_purged),
            merkle_rebuilds: load(&s.merkle_rebuilds),
            merkle_leaves_fixed: load(&s.merkle_leaves_fixed),
            layout_tag: self.peers.layout_tag().stats(),
            carriers: self.peers.carriers(),
        }
    }

    /// The cluster as this node sees it now.
    pub(super) fn view(&self) -> ClusterView {
        let layout = self.layout.get();
        let infos: Vec<_> = match &layout {
            Some(l) => l.nodes.clone(),
            None => self.met.lock().values().cloned().collect(),
        };
        let gossiped: HashMap<NodeId, String> = self
            .membership
            .lock()
            .as_ref()
            .map(|m| m.members())
            .unwrap_or_default()
            .into_iter()
            .filter(|m| !m.http_addr.is_empty())
            .map(|m| (m.node, m.http_addr))
            .collect();
        let hints: HashMap<NodeId, u64> = self
            .coordinator
            .hints()
            .targets_with_counts()
            .into_iter()
            .collect();
        let seen = self.stats.anti_entropy_seen.lock();
        let partitions: Vec<Vec<NodeId>> = match &layout {
            Some(l) => (0..PARTITIONS).map(|p| l.preflist(p).to_vec()).collect(),
            None => Vec::new(),
        };
        let nodes = infos
            .into_iter()
            .map(|n| {
                let myself = n.id == self.me.id;
                NodeView {
                    id: n.id,
                    myself,
                    http_addr: if myself {
                        self.http_addr()
                    } else {
                        gossiped.get(&n.id).cloned()
                    },
                    resp_addr: n.resp_addr,
                    bus_addr: n.bus_addr,
                    state: self.live.state(n.id),
                    partitions: layout
                        .as_ref()
                        .map_or_else(Vec::new, |l| l.partitions_of(n.id)),
                    first_partitions: partitions
                        .iter()
                        .filter(|pref| pref.first() == Some(&n.id))
                        .count(),
                    hints_pending: hints.get(&n.id).copied().unwrap_or(0),
                    anti_entropy: if myself {
                        seen.round
                    } else {
                        seen.peers.get(&n.id).copied()
                    },
                }
            })
            .collect();
        let c = &self.config.cluster;
        ClusterView {
            me: self.me.id,
            layout_version: layout.as_ref().map_or(0, |l| l.version),
            replicas: c.replicas,
            write_quorum: c.write_quorum,
            read_quorum: c.read_quorum,
            nodes,
            partitions,
            counters: self.counters(),
            rpc: self.peers.latencies().snapshot(),
        }
    }
}

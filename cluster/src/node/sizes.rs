//! Partition sizes for layout plans and streaming progress (crate::partition_size):
//! this node measures what it holds; for the rest it asks a holder over the bus
//! (`PartitionSizes`), trying the next holder when one does not answer.

use super::ClusterNode;
use crate::layout::Layout;
use crate::partition_size::PartitionSize;
use crate::replica_api::{Liveness, PeerState, ReplicaError};
use crate::NodeId;
use std::collections::BTreeMap;

/// Partitions measured per request: each is a counted scan on the peer, and the
/// request must finish within the bus deadline.
const SIZES_PER_REQUEST: usize = 8;

impl ClusterNode {
    /// This node's size of each of `partitions`, in order (a counted scan each).
    pub(super) async fn local_partition_sizes(
        &self,
        partitions: Vec<u16>,
    ) -> Result<Vec<PartitionSize>, ReplicaError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            partitions
                .iter()
                .map(|&p| store.partition_size(p))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| ReplicaError::Failed(format!("measuring partitions failed: {e}")))?
        .map_err(ReplicaError::from)
    }

    /// The size of each of `partitions` on one of its current holders in `layout` (the
    /// replicas reads go to): this node when it holds one, else the first holder that
    /// answers. Partitions no holder measured are left out.
    pub(super) async fn partition_sizes(
        &self,
        layout: &Layout,
        partitions: &[u16],
    ) -> BTreeMap<u16, PartitionSize> {
        let mut sizes = BTreeMap::new();
        let mut left: Vec<u16> = partitions.to_vec();
        // Round r asks each partition's r-th candidate holder.
        for round in 0..layout.replicas {
            if left.is_empty() {
                break;
            }
            let mut by_node: BTreeMap<NodeId, Vec<u16>> = BTreeMap::new();
            for &p in &left {
                if let Some(&n) = self.size_candidates(layout, p).get(round) {
                    by_node.entry(n).or_default().push(p);
                }
            }
            for (node, parts) in by_node {
                for chunk in parts.chunks(SIZES_PER_REQUEST) {
                    if let Ok(got) = self.sizes_from(node, chunk.to_vec()).await {
                        sizes.extend(chunk.iter().copied().zip(got));
                    }
                }
            }
            left.retain(|p| !sizes.contains_key(p));
        }
        sizes
    }

    /// The holders of `partition` to ask, this node first, nodes that are down last.
    fn size_candidates(&self, layout: &Layout, partition: u16) -> Vec<NodeId> {
        let mut holders = layout.read_preflist(partition).to_vec();
        holders.sort_by_key(|&n| (n != self.me.id, self.live.state(n) == PeerState::Down));
        holders
    }

    async fn sizes_from(
        &self,
        node: NodeId,
        partitions: Vec<u16>,
    ) -> Result<Vec<PartitionSize>, ReplicaError> {
        if node == self.me.id {
            return self.local_partition_sizes(partitions).await;
        }
        let peer = self
            .peers
            .peer(node)
            .ok_or_else(|| ReplicaError::Unreachable(format!("no address for node {node}")))?;
        peer.partition_sizes(partitions).await
    }
}

//! The snapshot phase of copying an incoming partition (crate::snapshot_stream) as a
//! node runs it: from one previous replica that is not down, at the stream rate
//! (`--cluster-stream-bytes-per-sec`), recording progress for CLUSTER INFO and CLUSTER
//! LAYOUT STATUS. A failed attempt is retried at the next step from the next previous
//! replica.

use super::copy_progress::{CopyPhase, PartitionCopy};
use super::ClusterNode;
use crate::layout::Layout;
use crate::replica_api::{Liveness, PeerState, Replicas};
use crate::snapshot_stream::stream_partition;
use crate::NodeId;
use std::time::Instant;

impl ClusterNode {
    /// The databases a snapshot covers: the server's, and the layout register's.
    /// (Records of other database numbers, if any, come with the Merkle catch-up.)
    fn streamed_databases(&self) -> Vec<u32> {
        let n = u32::try_from(self.config.databases).unwrap_or(u32::MAX - 1);
        (0..n)
            .chain(std::iter::once(super::LAYOUT_REGISTER_DB))
            .collect()
    }

    /// Streams `partition` of `layout` from a previous replica into this node; true
    /// once the whole snapshot arrived.
    pub(super) async fn stream_in(&self, layout: &Layout, partition: u16) -> bool {
        let sources: Vec<NodeId> = layout
            .read_preflist(partition)
            .iter()
            .copied()
            .filter(|&n| n != self.me.id && self.live.state(n) != PeerState::Down)
            .collect();
        let (attempts, expected) = {
            let p = self.progress.lock();
            (
                p.partitions.get(&partition).map_or(0, |c| c.attempts),
                p.expected.get(&partition).copied(),
            )
        };
        let Some(&source) = sources.get(attempts % sources.len().max(1)) else {
            return false;
        };
        let Some(peer) = self.peers.replica(source) else {
            return false;
        };
        self.progress.lock().partitions.insert(
            partition,
            PartitionCopy::start(source, expected, attempts + 1),
        );
        let dbs = self.streamed_databases();
        let result = stream_partition(
            partition,
            &dbs,
            &*peer,
            &*self.local,
            &self.stream_budget,
            |page| {
                if let Some(c) = self.progress.lock().partitions.get_mut(&partition) {
                    c.streamed.keys += page.keys;
                    c.streamed.bytes += page.bytes;
                }
            },
        )
        .await;
        let mut p = self.progress.lock();
        let ok = result.is_ok();
        match result {
            Ok(done) => p.keys_copied += done.keys,
            Err(e) => tracing::warn!(
                partition,
                source = %source,
                error = %e,
                "streaming a partition failed; trying again from the next previous replica"
            ),
        }
        if let Some(c) = p.partitions.get_mut(&partition) {
            c.phase = if ok {
                CopyPhase::CatchingUp
            } else {
                CopyPhase::Retrying
            };
            c.streamed_at = ok.then(Instant::now);
        }
        ok
    }
}

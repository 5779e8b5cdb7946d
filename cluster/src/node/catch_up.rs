//! The node's catch-up after an unclean restart (crate::catch_up has the state and the
//! rule): once a layout is known, compare every partition this node holds with its other
//! replicas (Merkle roots in one request per peer, then the differing partitions synced
//! both ways) and retry the peers that did not answer, every [`CATCH_UP_RETRY`], until
//! each partition was compared with enough of them. Until then the node's reads do not
//! count; if a needed peer stays away, the node stays catching up and says so (CLUSTER
//! INFO, a warning per round), and never starts counting by itself.

use super::ClusterNode;
use crate::replica_api::{Liveness, PeerState};
use std::sync::Arc;
use std::time::Duration;

/// Pause between rounds while some needed peers did not answer.
const CATCH_UP_RETRY: Duration = Duration::from_secs(1);

/// Runs until the catch-up ends or the node shuts down.
pub(super) async fn run(node: Arc<ClusterNode>) {
    let layout = loop {
        if let Some(layout) = node.layout.get() {
            break layout;
        }
        if !super::background::tick(&node, CATCH_UP_RETRY).await {
            return;
        }
    };
    let me = node.me.id;
    node.catch_up.plan(
        layout.partitions_of(me).into_iter().map(|p| {
            let others = layout
                .preflist(p)
                .iter()
                .copied()
                .filter(|&n| n != me)
                .collect();
            (p, others)
        }),
        node.config.cluster.write_quorum,
    );
    tracing::info!(
        partitions = node.catch_up.partitions_left(),
        "catching up: comparing partitions with their other replicas"
    );
    loop {
        round(&node).await;
        if !node.catch_up.is_active() {
            tracing::info!("caught up: this node's reads count toward quorums again");
            return;
        }
        let unreached = node.catch_up.unreached_peers();
        tracing::warn!(
            partitions_left = node.catch_up.partitions_left(),
            unreached = ?unreached.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
            "still catching up: these replicas must be compared before this node's reads count"
        );
        if !super::background::tick(&node, CATCH_UP_RETRY).await {
            return;
        }
    }
}

/// One comparison with every peer still needed.
async fn round(node: &ClusterNode) {
    for (peer, partitions) in node.catch_up.work() {
        if node.live.state(peer) == PeerState::Down {
            node.catch_up.set_reached(peer, false);
            continue;
        }
        let done = node.sync_with_peer(peer, &partitions).await;
        node.catch_up.set_reached(peer, done.failures == 0);
        for p in done.synced {
            node.catch_up.compared(p, peer);
        }
        let s = &node.stats;
        s.anti_entropy_keys_repaired.fetch_add(
            done.stats.keys_repaired,
            std::sync::atomic::Ordering::Relaxed,
        );
    }
}

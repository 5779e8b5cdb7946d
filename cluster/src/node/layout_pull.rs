//! Fetching a newer layout from one peer: when gossip says the peer publishes it
//! (background.rs), when a replica refused this node's requests for an older layout
//! (the coordinator's [`LayoutSource`]), and when a peer's request carried a newer one
//! (bus.rs). All three end in `adopt`, which checks and persists it.

use super::ClusterNode;
use crate::coordinator::LayoutSource;
use crate::layout::Layout;
use crate::NodeId;
use async_trait::async_trait;
use std::sync::{OnceLock, Weak};

impl ClusterNode {
    /// The version of the layout this node holds (0: none yet).
    pub(super) fn layout_version(&self) -> u64 {
        self.layout.get().map_or(0, |l| l.version)
    }

    /// Fetches `from`'s layout and adopts it if it is newer than ours; true when this
    /// node then holds `at_least` or newer.
    pub(super) async fn pull_layout(&self, from: NodeId, at_least: u64) -> bool {
        if self.layout_version() >= at_least {
            return true;
        }
        let Some(peer) = self.peers.peer(from) else {
            return false;
        };
        match peer.get_layout().await {
            Ok(Some(blob)) => match Layout::from_json(&blob.json) {
                Ok(layout) => {
                    if let Err(e) = self.adopt(layout).await {
                        tracing::warn!(peer = %from, error = %e, "newer layout not adopted");
                    }
                }
                Err(e) => tracing::warn!(peer = %from, error = %e, "damaged layout from peer"),
            },
            Ok(None) => {}
            Err(e) => tracing::debug!(peer = %from, error = %e, "cannot fetch layout"),
        }
        self.layout_version() >= at_least
    }
}

/// The node as the coordinator's source of newer layouts. Bound to the node after it
/// is made (the coordinator is part of the node); one fetch at a time, so a burst of
/// refused requests costs one `GetLayout`, not one each.
#[derive(Default)]
pub(super) struct NodeLayoutSource {
    node: OnceLock<Weak<ClusterNode>>,
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl NodeLayoutSource {
    /// Binds the source to its node (once).
    pub(super) fn bind(&self, node: Weak<ClusterNode>) {
        if self.node.set(node).is_err() {
            tracing::error!("layout source bound twice: ignored");
        }
    }
}

#[async_trait]
impl LayoutSource for NodeLayoutSource {
    async fn catch_up(&self, from: NodeId, version: u64) -> bool {
        let Some(node) = self.node.get().and_then(Weak::upgrade) else {
            return false;
        };
        let _turn = self.one_at_a_time.lock().await;
        node.pull_layout(from, version).await
    }
}

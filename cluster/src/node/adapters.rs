//! The small pieces that connect the coordinator's traits to this node's parts: the
//! layout it holds (placement), its hybrid clock (versions) and gossip (liveness).

use crate::coordinator::{Placement, VersionClock};
use crate::hlc::Hlc;
use crate::layout::Layout;
use crate::replica_api::{Liveness, PeerState};
use crate::{NodeId, Version};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;

/// The layout this node holds; `None` until bootstrap made or fetched the first one.
#[derive(Default)]
pub struct LayoutCell(RwLock<Option<Arc<Layout>>>);

impl LayoutCell {
    /// The current layout.
    pub fn get(&self) -> Option<Arc<Layout>> {
        self.0.read().clone()
    }

    /// Installs `layout`.
    pub fn set(&self, layout: Layout) {
        *self.0.write() = Some(Arc::new(layout));
    }
}

impl Placement for LayoutCell {
    fn partition_preflist(&self, partition: u16) -> Vec<NodeId> {
        self.0
            .read()
            .as_ref()
            .map(|l| l.preflist(partition).to_vec())
            .unwrap_or_default()
    }
}

/// The node's hybrid clock as the coordinator's version source.
pub struct HlcClock(pub Arc<Hlc>);

impl VersionClock for HlcClock {
    fn next(&self) -> Result<Version, String> {
        self.0.next().map_err(|e| format!("cannot persist the clock floor: {e}"))
    }

    fn observe(&self, v: Version) {
        if let Err(e) = self.0.observe(v) {
            tracing::warn!(error = %e, "ignored a version from a peer too far in the future");
        }
    }
}

/// Peer states as gossip last reported them, copied into a map the request path reads
/// without locking gossip itself. A peer gossip has not reported yet counts as up: the
/// request's timeout then decides, as in Dynamo, rather than refusing writes while
/// gossip warms up after a start.
#[derive(Default)]
pub struct LiveView {
    me: RwLock<Option<NodeId>>,
    states: RwLock<HashMap<NodeId, PeerState>>,
}

impl LiveView {
    /// A view for node `me` (always up to itself).
    pub fn new(me: NodeId) -> LiveView {
        LiveView {
            me: RwLock::new(Some(me)),
            states: RwLock::new(HashMap::new()),
        }
    }

    /// Replaces the states with gossip's latest.
    pub fn update(&self, states: impl IntoIterator<Item = (NodeId, PeerState)>) {
        *self.states.write() = states.into_iter().collect();
    }
}

impl Liveness for LiveView {
    fn state(&self, node: NodeId) -> PeerState {
        if *self.me.read() == Some(node) {
            return PeerState::Up;
        }
        self.states
            .read()
            .get(&node)
            .copied()
            .unwrap_or(PeerState::Up)
    }
}

//! The small pieces that connect the coordinator's traits to this node's parts: the
//! layout it holds (placement), its hybrid clock (versions) and gossip (liveness).

use crate::coordinator::{Placement, VersionClock};
use crate::hlc::Hlc;
use crate::layout::Layout;
use crate::node_id::IdMap;
use crate::replica_api::{Liveness, PeerState};
use crate::{NodeId, Version};
use parking_lot::RwLock;
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

/// During a layout change, reads ask the previous replicas and writes need a quorum of
/// both the new and the previous ones (layout/transition.rs).
impl Placement for LayoutCell {
    fn partition_preflist(&self, partition: u16) -> Vec<NodeId> {
        self.0
            .read()
            .as_ref()
            .map(|l| l.read_preflist(partition).to_vec())
            .unwrap_or_default()
    }

    fn write_groups(&self, key: &[u8]) -> Vec<Vec<NodeId>> {
        self.0
            .read()
            .as_ref()
            .map(|l| l.write_groups(kv_keyspace::slot::key_partition(key)))
            .unwrap_or_else(|| vec![Vec::new()])
    }
}

/// A wall clock `offset_ms` away from another: the system clock with offset 0 in
/// production; a skewed node in end-to-end tests (`NodeConfig::test_clock_offset_ms`).
pub struct OffsetClock<C>(pub C, pub i64);

impl<C: crate::hlc::Clock> crate::hlc::Clock for OffsetClock<C> {
    fn now_ms(&self) -> u64 {
        self.0.now_ms().saturating_add_signed(self.1)
    }
}

/// The node's hybrid clock as the coordinator's version source.
pub struct HlcClock(pub Arc<Hlc>);

impl VersionClock for HlcClock {
    fn next(&self) -> Result<Version, String> {
        self.0
            .next()
            .map_err(|e| format!("cannot persist the clock floor: {e}"))
    }

    fn observe(&self, v: Version) {
        if let Err(e) = self.0.observe(v) {
            tracing::warn!(error = %e, "ignored a version from a peer too far in the future");
        }
    }
}

/// Peer states as gossip last reported them, copied into a map the request path reads
/// without locking gossip itself. A peer gossip has not reported yet counts as up (the
/// request's timeout then decides, as in Dynamo), and one gossip has heard of but never
/// seen live yet counts as suspect rather than down: right after a start, failure
/// detection has no samples, and skipping such a peer would refuse requests that it
/// could serve. Suspect peers are still asked when the up ones are not enough.
///
/// A peer gossip still has not reported [`UNREPORTED_GRACE`] after the view was made
/// counts as suspect: a node killed right after the cluster formed may never have
/// reached the failure detector, which then never reports it dead either (found by
/// `kvtool cluster demo`: such a node stayed "up" for minutes).
pub struct LiveView {
    me: RwLock<Option<NodeId>>,
    states: RwLock<IdMap<NodeId, PeerState>>,
    ever_up: RwLock<std::collections::HashSet<NodeId>>,
    made: std::time::Instant,
}

/// How long a peer gossip has not reported counts as up.
pub const UNREPORTED_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

impl Default for LiveView {
    fn default() -> LiveView {
        LiveView {
            me: RwLock::new(None),
            states: RwLock::new(IdMap::default()),
            ever_up: RwLock::new(std::collections::HashSet::new()),
            made: std::time::Instant::now(),
        }
    }
}

impl LiveView {
    /// A view for node `me` (always up to itself).
    pub fn new(me: NodeId) -> LiveView {
        LiveView {
            me: RwLock::new(Some(me)),
            ..LiveView::default()
        }
    }

    /// Peers gossip reports up (not those counted up only because gossip has not
    /// reported them yet, [`UNREPORTED_GRACE`]).
    pub fn reported_up(&self) -> usize {
        self.states
            .read()
            .values()
            .filter(|&&s| s == PeerState::Up)
            .count()
    }

    /// Replaces the states with gossip's latest.
    pub fn update(&self, states: impl IntoIterator<Item = (NodeId, PeerState)>) {
        let mut ever_up = self.ever_up.write();
        let states = states
            .into_iter()
            .map(|(node, state)| {
                if state == PeerState::Up {
                    ever_up.insert(node);
                }
                match state {
                    PeerState::Down if !ever_up.contains(&node) => (node, PeerState::Suspect),
                    s => (node, s),
                }
            })
            .collect();
        *self.states.write() = states;
    }
}

impl Liveness for LiveView {
    fn state(&self, node: NodeId) -> PeerState {
        if *self.me.read() == Some(node) {
            return PeerState::Up;
        }
        match self.states.read().get(&node) {
            Some(&state) => state,
            None if self.made.elapsed() < UNREPORTED_GRACE => PeerState::Up,
            None => PeerState::Suspect,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_clock_moves_both_ways_without_overflow() {
        use crate::hlc::{Clock, ManualClock};
        assert_eq!(OffsetClock(ManualClock::new(1000), 250).now_ms(), 1250);
        assert_eq!(OffsetClock(ManualClock::new(1000), -250).now_ms(), 750);
        assert_eq!(OffsetClock(ManualClock::new(10), -250).now_ms(), 0);
    }

    #[test]
    fn a_peer_never_seen_live_is_suspect_not_down() {
        let view = LiveView::new(NodeId(1));
        assert_eq!(view.state(NodeId(1)), PeerState::Up);
        assert_eq!(
            view.state(NodeId(2)),
            PeerState::Up,
            "unknown peers are tried"
        );
        view.update([(NodeId(2), PeerState::Down)]);
        assert_eq!(view.state(NodeId(2)), PeerState::Suspect);
        // Unreported long after the view was made: suspect, not up forever.
        let old = LiveView {
            made: std::time::Instant::now() - UNREPORTED_GRACE,
            ..LiveView::new(NodeId(1))
        };
        assert_eq!(old.state(NodeId(3)), PeerState::Suspect);
        view.update([(NodeId(2), PeerState::Up)]);
        view.update([(NodeId(2), PeerState::Down)]);
        assert_eq!(
            view.state(NodeId(2)),
            PeerState::Down,
            "down after being up"
        );
    }
}

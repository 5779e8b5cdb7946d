//! What one node's failure detector says of its peers in the simulation. Each gossip
//! round (at the node's own seeded interval, so views lag behind the truth by
//! different amounts) a peer the node can reach is `Up`; one it cannot reach turns
//! `Suspect`, and `Down` after [`MISSES_TO_DOWN`] rounds, as phi-accrual detection
//! does once a peer stays silent. A peer not heard of yet counts as `Up`, as in the
//! node's `LiveView`.

use super::world::World;
use crate::replica_api::{Liveness, PeerState};
use crate::NodeId;
use parking_lot::Mutex;
use std::collections::BTreeMap;

/// Missed rounds after which a silent peer is `Down` rather than `Suspect`.
pub const MISSES_TO_DOWN: u32 = 4;

/// One node's view of the others.
pub struct SimLiveness {
    me: NodeId,
    missed: Mutex<BTreeMap<NodeId, u32>>,
}

impl SimLiveness {
    /// A fresh view (after a start or restart: every peer is up until a round says not).
    pub fn new(me: NodeId) -> SimLiveness {
        SimLiveness {
            me,
            missed: Mutex::new(BTreeMap::new()),
        }
    }

    /// One gossip round: can this node reach each peer now?
    pub(crate) fn round(&self, world: &World, peers: &[NodeId]) {
        let mut missed = self.missed.lock();
        for &peer in peers.iter().filter(|&&p| p != self.me) {
            let reachable = world.running(peer).is_some() && !world.is_cut(self.me, peer);
            let m = missed.entry(peer).or_default();
            *m = if reachable { 0 } else { m.saturating_add(1) };
        }
    }
}

impl Liveness for SimLiveness {
    fn state(&self, node: NodeId) -> PeerState {
        match self.missed.lock().get(&node).copied().unwrap_or(0) {
            0 => PeerState::Up,
            m if m < MISSES_TO_DOWN => PeerState::Suspect,
            _ => PeerState::Down,
        }
    }
}

//! Clock offsets to peers, measured from pings as NTP does, so a node whose clock is
//! too far from the others stops coordinating (its versions would be wrongly ordered)
//! and reports not ready.
//!
//! One ping gives: we sent at `sent` (our clock), the peer stamped `peer` (its clock),
//! we got the answer at `received` (our clock). If the peer stamped halfway through the
//! round trip, its offset is `peer - (sent + received) / 2`; since it may have stamped
//! anywhere in the round trip, the error is at most half the round trip. Of the last
//! [`SAMPLES_PER_PEER`] samples the one with the shortest round trip is used (NTP's clock
//! filter: queueing delays only ever make a sample worse).

use crate::hlc::Hlc;
use crate::NodeId;
use parking_lot::Mutex;
use std::collections::{BTreeMap, VecDeque};

/// Samples kept per peer (NTP keeps 8).
pub const SAMPLES_PER_PEER: usize = 8;

/// Peers tracked at most, so a flood of unknown ids cannot grow memory without bound;
/// far above any cluster kvd is designed for.
pub const MAX_TRACKED_PEERS: usize = 4096;

/// A peer's clock relative to ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerOffset {
    /// Peer clock minus our clock, in ms (positive: the peer is ahead).
    pub offset_ms: i64,
    /// The true offset is within this many ms of `offset_ms` (half the round trip).
    pub uncertainty_ms: u64,
}

impl PeerOffset {
    /// Whether the peer is certainly more than `max_ms` away from our clock (even at
    /// the most favourable end of the uncertainty).
    pub fn certainly_beyond(&self, max_ms: u64) -> bool {
        self.offset_ms
            .unsigned_abs()
            .saturating_sub(self.uncertainty_ms)
            > max_ms
    }
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    offset_ms: i64,
    round_trip_ms: u64,
}

/// Per-peer clock offsets, fed by pings. Shared by `&self`.
#[derive(Debug, Default)]
pub struct SkewTracker {
    peers: Mutex<BTreeMap<NodeId, VecDeque<Sample>>>,
}

impl SkewTracker {
    /// An empty tracker.
    pub fn new() -> SkewTracker {
        SkewTracker::default()
    }

    /// Records one ping: sent at `sent_ms` and answered at `received_ms` by our clock,
    /// stamped `peer_ms` by the peer's. Returns false (and records nothing) for a sample
    /// that cannot be right (answer before the question: our clock stepped back) or a
    /// new peer beyond [`MAX_TRACKED_PEERS`].
    pub fn record(&self, peer: NodeId, sent_ms: u64, peer_ms: u64, received_ms: u64) -> bool {
        let Some(round_trip_ms) = received_ms.checked_sub(sent_ms) else {
            return false;
        };
        // In i128 so that no value a peer sends can overflow.
        let doubled = 2 * i128::from(peer_ms) - i128::from(sent_ms) - i128::from(received_ms);
        let offset_ms =
            i64::try_from(doubled / 2).unwrap_or(if doubled < 0 { i64::MIN } else { i64::MAX });
        let mut peers = self.peers.lock();
        if !peers.contains_key(&peer) && peers.len() >= MAX_TRACKED_PEERS {
            return false;
        }
        let samples = peers.entry(peer).or_default();
        if samples.len() == SAMPLES_PER_PEER {
            samples.pop_front();
        }
        samples.push_back(Sample {
            offset_ms,
            round_trip_ms,
        });
        true
    }

    /// The current estimate for `peer`, if it was measured.
    pub fn offset(&self, peer: NodeId) -> Option<PeerOffset> {
        self.peers.lock().get(&peer).and_then(best_estimate)
    }

    /// Every measured peer's estimate, by id (for status output).
    pub fn offsets(&self) -> Vec<(NodeId, PeerOffset)> {
        self.peers
            .lock()
            .iter()
            .filter_map(|(&id, samples)| best_estimate(samples).map(|o| (id, o)))
            .collect()
    }

    /// Stops tracking `peer` (it left the cluster).
    pub fn forget(&self, peer: NodeId) {
        self.peers.lock().remove(&peer);
    }

    /// The largest absolute estimated offset to any peer, in ms (0 with no peers).
    pub fn max_abs_offset(&self) -> u64 {
        self.offsets()
            .iter()
            .map(|(_, o)| o.offset_ms.unsigned_abs())
            .max()
            .unwrap_or(0)
    }

    /// Whether this node's clock should be taken as out of bounds: true unless a strict
    /// majority of the nodes measured, this one included, are within `max_ms` of our
    /// clock (a peer counts as outside only if it is certainly beyond `max_ms`, given
    /// the uncertainty). So in a cluster of three where one clock runs away, only that
    /// node stops coordinating, and where no majority agrees every node stops.
    pub fn exceeds(&self, max_ms: u64) -> bool {
        let offsets = self.offsets();
        let beyond = offsets
            .iter()
            .filter(|(_, o)| o.certainly_beyond(max_ms))
            .count();
        let nodes = offsets.len() + 1;
        beyond > 0 && 2 * beyond >= nodes
    }
}

/// Why this node's clock does not allow it to coordinate now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClockNotReady {
    /// After an unclean restart the clock resumed from its persisted floor, ahead of the
    /// wall clock; it is ready once the wall clock catches up (at most 10 s).
    #[error("this node's clock resumed {ahead_ms} ms ahead of the wall clock after an unclean restart; it coordinates again once the wall clock catches up")]
    AheadAfterRestart {
        /// How far ahead.
        ahead_ms: u64,
    },
    /// The clock is more than the maximum offset from a majority of the cluster.
    #[error("this node's clock is up to {max_abs_offset_ms} ms from its peers', more than the {max_offset_ms} ms allowed; fix its time synchronisation (NTP)")]
    Skewed {
        /// The largest offset measured to a peer.
        max_abs_offset_ms: u64,
        /// The limit (max clock offset).
        max_offset_ms: u64,
    },
}

/// Whether this node may coordinate requests as far as clocks go: its HLC is not ahead
/// of the wall clock by more than `max_offset_ms` (peers would refuse its versions) and
/// its clock is within `max_offset_ms` of a majority ([`SkewTracker::exceeds`]).
/// A node that is not ready reports it (CLUSTER INFO, errors to clients) and still
/// serves as a replica.
pub fn clock_readiness(
    hlc: &Hlc,
    skew: &SkewTracker,
    max_offset_ms: u64,
) -> Result<(), ClockNotReady> {
    let ahead_ms = hlc.ahead_of_wall_ms();
    if ahead_ms > max_offset_ms {
        return Err(ClockNotReady::AheadAfterRestart { ahead_ms });
    }
    if skew.exceeds(max_offset_ms) {
        return Err(ClockNotReady::Skewed {
            max_abs_offset_ms: skew.max_abs_offset(),
            max_offset_ms,
        });
    }
    Ok(())
}

fn best_estimate(samples: &VecDeque<Sample>) -> Option<PeerOffset> {
    samples
        .iter()
        .min_by_key(|s| s.round_trip_ms)
        .map(|s| PeerOffset {
            offset_ms: s.offset_ms,
            uncertainty_ms: s.round_trip_ms.div_ceil(2),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T: u64 = 1_700_000_000_000;

    #[test]
    fn offset_is_measured_from_the_middle_of_the_round_trip() {
        let s = SkewTracker::new();
        // Sent at T, answered at T+20; the peer stamped T+110: 100 ms ahead, +-10.
        assert!(s.record(NodeId(1), T, T + 110, T + 20));
        assert_eq!(
            s.offset(NodeId(1)),
            Some(PeerOffset {
                offset_ms: 100,
                uncertainty_ms: 10
            })
        );
        assert!(s.record(NodeId(2), T, T - 240, T + 20));
        assert_eq!(s.offset(NodeId(2)).map(|o| o.offset_ms), Some(-250));
        assert_eq!(s.max_abs_offset(), 250);
        assert_eq!(s.offset(NodeId(3)), None);
    }

    #[test]
    fn the_shortest_round_trip_of_recent_samples_wins() {
        let s = SkewTracker::new();
        s.record(NodeId(1), T, T + 500, T + 400); // queued: offset 300 +- 200
        s.record(NodeId(1), T, T + 52, T + 4); // quick: offset 50 +- 2
        s.record(NodeId(1), T, T + 200, T + 100); // offset 150 +- 50
        assert_eq!(s.offset(NodeId(1)).map(|o| o.offset_ms), Some(50));
        // Once it has aged out, the next best counts.
        for _ in 0..SAMPLES_PER_PEER - 1 {
            s.record(NodeId(1), T, T + 200, T + 100);
        }
        assert_eq!(s.offset(NodeId(1)).map(|o| o.offset_ms), Some(150));
    }

    #[test]
    fn impossible_samples_are_ignored() {
        let s = SkewTracker::new();
        assert!(!s.record(NodeId(1), T + 10, T, T));
        assert_eq!(s.offset(NodeId(1)), None);
        // Extreme peer values do not overflow.
        assert!(s.record(NodeId(2), 0, u64::MAX, 0));
        assert!(s.record(NodeId(3), u64::MAX - 1, 0, u64::MAX));
        assert!(s.offset(NodeId(3)).is_some_and(|o| o.offset_ms < 0));
    }

    #[test]
    fn only_the_node_whose_clock_ran_away_stops() {
        // Node A is 2 s ahead of B and C; each node's tracker sees the others.
        let a = SkewTracker::new();
        a.record(NodeId(2), T, T - 2000 + 5, T + 10);
        a.record(NodeId(3), T, T - 2000 + 5, T + 10);
        let b = SkewTracker::new();
        b.record(NodeId(1), T, T + 2000 + 5, T + 10);
        b.record(NodeId(3), T, T + 5, T + 10);
        assert!(a.exceeds(500));
        assert!(!b.exceeds(500));
        assert!(!a.exceeds(3000));
    }

    #[test]
    fn without_a_majority_every_node_stops() {
        // Two nodes that disagree cannot tell whose clock is wrong.
        let s = SkewTracker::new();
        s.record(NodeId(2), T, T + 2000, T);
        assert!(s.exceeds(500));
        assert!(!SkewTracker::new().exceeds(500));
    }

    #[test]
    fn uncertainty_gives_the_benefit_of_the_doubt() {
        let s = SkewTracker::new();
        // 600 ms ahead, but the round trip was 400 ms: maybe only 400 ahead.
        s.record(NodeId(2), T, T + 800, T + 400);
        assert!(!s.exceeds(500));
        s.forget(NodeId(2));
        assert!(s.offsets().is_empty());
    }

    #[test]
    fn tracked_peers_are_bounded() {
        let s = SkewTracker::new();
        for id in 0..MAX_TRACKED_PEERS as u64 {
            assert!(s.record(NodeId(id), T, T, T));
        }
        assert!(!s.record(NodeId(u64::MAX), T, T, T));
        assert!(s.record(NodeId(0), T, T, T), "known peers still update");
    }

    #[test]
    fn readiness_waits_for_the_floor_and_for_agreeing_clocks() {
        use crate::hlc::{Clock, ManualClock, FLOOR_LEAD_MS};
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hlc");
        let clock = Arc::new(ManualClock::new(T));
        let open = || Hlc::open(&path, clock.clone() as Arc<dyn Clock>, NodeId(1)).unwrap();
        // An unclean stop: the reopened clock starts at the floor, 10 s ahead.
        open().next().unwrap();
        let hlc = open();
        let skew = SkewTracker::new();
        assert_eq!(
            clock_readiness(&hlc, &skew, 500),
            Err(ClockNotReady::AheadAfterRestart {
                ahead_ms: FLOOR_LEAD_MS
            })
        );
        clock.advance(FLOOR_LEAD_MS - 500);
        assert_eq!(clock_readiness(&hlc, &skew, 500), Ok(()));
        // Both peers see us 2 s off: not ready, whatever the HLC says.
        let now = clock.now_ms();
        skew.record(NodeId(2), now, now + 2000, now);
        skew.record(NodeId(3), now, now + 2000, now);
        assert!(matches!(
            clock_readiness(&hlc, &skew, 500),
            Err(ClockNotReady::Skewed {
                max_abs_offset_ms: 2000,
                ..
            })
        ));
    }

    proptest! {
        /// With the peer stamping anywhere inside the round trip, the true offset is
        /// within the reported uncertainty.
        #[test]
        fn the_true_offset_is_within_the_uncertainty(
            true_offset in -100_000i64..100_000,
            out_ms in 0u64..1000,
            back_ms in 0u64..1000,
        ) {
            let s = SkewTracker::new();
            let sent = T;
            let stamped_at = sent + out_ms; // our clock when the peer stamped
            let peer = stamped_at.checked_add_signed(true_offset).unwrap();
            let received = stamped_at + back_ms;
            prop_assert!(s.record(NodeId(1), sent, peer, received));
            let o = s.offset(NodeId(1)).unwrap();
            prop_assert!(o.offset_ms.abs_diff(true_offset) <= o.uncertainty_ms);
        }
    }
}

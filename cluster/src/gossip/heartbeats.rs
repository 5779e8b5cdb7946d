//! A hard time bound on failure detection, beside chitchat's phi-accrual detector.
//!
//! Phi accrual declares a peer dead once the time since its last heartbeat exceeds
//! `phi_threshold` times the mean interval it has observed between heartbeats. Under load
//! that mean grows (heartbeats arrive late and in bursts), and so does the detection time,
//! without limit. This watch records when each peer's heartbeat counter last advanced and
//! bounds both sides: a peer whose heartbeat has not advanced for `suspect_after` is
//! suspect and for `down_after` down, whatever phi says; and a peer whose heartbeat
//! advanced within the last two gossip rounds is up even before the detector has the two
//! samples it needs to compute phi (right after a start or a restart).

use crate::replica_api::PeerState;
use crate::NodeId;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// When a peer is suspect and down by silence alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SilenceBounds {
    /// Time between this node's gossip rounds.
    pub interval: Duration,
    /// A peer silent this long is suspect.
    pub suspect_after: Duration,
    /// A peer silent this long is down.
    pub down_after: Duration,
}

impl SilenceBounds {
    /// The bounds for a gossip interval, phi threshold and down time: suspect after twice
    /// what phi takes when heartbeats arrive every round (`2 x phi_threshold x interval`,
    /// 8 s with the defaults), never later than `down_after`.
    pub fn new(interval: Duration, phi_threshold: f64, down_after: Duration) -> SilenceBounds {
        let phi_time = interval.mul_f64(phi_threshold.max(1.0));
        SilenceBounds {
            interval,
            suspect_after: (phi_time * 2).min(down_after),
            down_after,
        }
    }

    /// A peer's state from the detector's verdict (`live`) and its silence.
    /// `advanced`: its heartbeat advanced at least once since this node first saw it.
    pub fn state(&self, live: bool, silent: Duration, advanced: bool) -> PeerState {
        if silent >= self.down_after {
            PeerState::Down
        } else if silent >= self.suspect_after {
            PeerState::Suspect
        } else if live || (advanced && silent < self.interval * 2) {
            PeerState::Up
        } else {
            PeerState::Suspect
        }
    }
}

/// The last heartbeat seen of each peer and when it advanced.
#[derive(Debug, Default)]
pub struct HeartbeatWatch {
    peers: HashMap<NodeId, Seen>,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    /// The peer's generation (a restart starts a new one, with its heartbeat from 0).
    generation: u64,
    heartbeat: u64,
    /// When `heartbeat` was first seen at its value (or the generation first seen).
    since: Instant,
    advanced: bool,
}

impl HeartbeatWatch {
    /// Records the heartbeat gossip holds for `node` now, and returns how long it has not
    /// advanced and whether it ever did since this node first saw that generation.
    pub fn observe(
        &mut self,
        node: NodeId,
        generation: u64,
        heartbeat: u64,
        now: Instant,
    ) -> (Duration, bool) {
        let seen = self.peers.entry(node).or_insert(Seen {
            generation,
            heartbeat,
            since: now,
            advanced: false,
        });
        // Heartbeats compare within a generation only; an older generation's entry (a
        // dead incarnation gossip still remembers) must not look like a live peer.
        let progressed = generation > seen.generation
            || (generation == seen.generation && heartbeat > seen.heartbeat);
        if progressed {
            *seen = Seen {
                generation,
                heartbeat,
                since: now,
                advanced: generation == seen.generation,
            };
        }
        (now.saturating_duration_since(seen.since), seen.advanced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn defaults() -> SilenceBounds {
        SilenceBounds::new(Duration::from_millis(500), 8.0, S(30))
    }

    #[test]
    fn the_default_bounds_are_eight_and_thirty_seconds() {
        let b = defaults();
        assert_eq!((b.suspect_after, b.down_after), (S(8), S(30)));
        // Never suspect later than down.
        let tight = SilenceBounds::new(Duration::from_millis(500), 8.0, S(3));
        assert_eq!(tight.suspect_after, S(3));
    }

    #[test]
    fn silence_bounds_the_detector_whatever_it_says() {
        let b = defaults();
        assert_eq!(b.state(true, S(1), true), PeerState::Up);
        assert_eq!(
            b.state(true, S(8), true),
            PeerState::Suspect,
            "phi says live"
        );
        assert_eq!(b.state(true, S(30), true), PeerState::Down, "phi says live");
        assert_eq!(b.state(false, S(29), true), PeerState::Suspect);
    }

    #[test]
    fn a_heartbeat_that_just_advanced_is_up_before_phi_has_samples() {
        let b = defaults();
        let just = Duration::from_millis(300);
        assert_eq!(b.state(false, just, true), PeerState::Up);
        assert_eq!(
            b.state(false, just, false),
            PeerState::Suspect,
            "never advanced"
        );
        assert_eq!(
            b.state(false, S(1), true),
            PeerState::Suspect,
            "two rounds silent"
        );
    }

    #[test]
    fn the_watch_measures_silence_from_the_last_advance() {
        let mut w = HeartbeatWatch::default();
        let t0 = Instant::now();
        let n = NodeId(2);
        assert_eq!(w.observe(n, 1, 10, t0), (Duration::ZERO, false));
        assert_eq!(w.observe(n, 1, 10, t0 + S(5)), (S(5), false));
        assert_eq!(w.observe(n, 1, 11, t0 + S(6)), (Duration::ZERO, true));
        assert_eq!(w.observe(n, 1, 11, t0 + S(9)), (S(3), true));
        // A lower heartbeat of the same generation (an older copy) is no progress.
        assert_eq!(w.observe(n, 1, 4, t0 + S(10)), (S(4), true));
    }

    #[test]
    fn a_restart_is_seen_but_must_advance_to_count_as_progress() {
        let mut w = HeartbeatWatch::default();
        let t0 = Instant::now();
        let n = NodeId(2);
        w.observe(n, 1, 50, t0);
        w.observe(n, 1, 51, t0 + S(1));
        // The node restarted: a newer generation, heartbeat from the start again.
        assert_eq!(w.observe(n, 2, 1, t0 + S(40)), (Duration::ZERO, false));
        assert_eq!(w.observe(n, 2, 2, t0 + S(41)), (Duration::ZERO, true));
        // The dead generation's entry does not reset the clock.
        assert_eq!(w.observe(n, 1, 60, t0 + S(43)), (S(2), true));
        // Peers are tracked separately.
        assert_eq!(
            w.observe(NodeId(3), 7, 1, t0 + S(43)),
            (Duration::ZERO, false)
        );
    }
}

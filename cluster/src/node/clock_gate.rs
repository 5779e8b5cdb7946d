//! Whether this node's clock lets it coordinate (crate::skew::clock_readiness), computed
//! at start and after each round of clock pings, read by every request as a flag.
//!
//! What each reason stops: a clock beyond the offset bound from a majority
//! ([`ClockNotReady::Skewed`]) stops reads and writes (its versions would be misordered
//! and its expiry checks wrong); a hybrid clock that resumed ahead of the wall clock after
//! an unclean restart ([`ClockNotReady::AheadAfterRestart`]) stops writes only: the wall
//! clock is right, only the versions it would issue are in the future, and a read
//! issues none.

use crate::skew::ClockNotReady;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// What the request path needs to know of the clock.
#[derive(Debug, Default)]
pub struct ClockGate {
    /// Fast path: false while the clock is ready (the common case).
    not_ready: AtomicBool,
    why: Mutex<Option<ClockNotReady>>,
}

impl ClockGate {
    /// Records the latest readiness.
    pub fn set(&self, readiness: Result<(), ClockNotReady>) {
        let mut why = self.why.lock();
        *why = readiness.err();
        self.not_ready.store(why.is_some(), Ordering::Release);
    }

    /// Why the clock does not allow coordinating now, if it does not.
    pub fn not_ready(&self) -> Option<ClockNotReady> {
        if !self.not_ready.load(Ordering::Acquire) {
            return None;
        }
        *self.why.lock()
    }

    /// Why the clock stops an operation that issues versions (`writes`) or not.
    pub fn stops(&self, writes: bool) -> Option<ClockNotReady> {
        match self.not_ready()? {
            ClockNotReady::AheadAfterRestart { .. } if !writes => None,
            why => Some(why),
        }
    }

    /// A short name for CLUSTER INFO: `ok`, `ahead_after_restart` or `skewed`.
    pub fn state_name(&self) -> &'static str {
        match self.not_ready() {
            None => "ok",
            Some(ClockNotReady::AheadAfterRestart { .. }) => "ahead_after_restart",
            Some(ClockNotReady::Skewed { .. }) => "skewed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_ahead_after_restart_stops_writes_only() {
        let gate = ClockGate::default();
        assert_eq!((gate.stops(true), gate.state_name()), (None, "ok"));
        let ahead = ClockNotReady::AheadAfterRestart { ahead_ms: 9000 };
        gate.set(Err(ahead));
        assert_eq!(gate.stops(true), Some(ahead));
        assert_eq!(gate.stops(false), None);
        assert_eq!(gate.state_name(), "ahead_after_restart");
        let skewed = ClockNotReady::Skewed {
            max_abs_offset_ms: 3000,
            max_offset_ms: 500,
        };
        gate.set(Err(skewed));
        assert_eq!(
            (gate.stops(true), gate.stops(false)),
            (Some(skewed), Some(skewed))
        );
        gate.set(Ok(()));
        assert_eq!((gate.stops(true), gate.state_name()), (None, "ok"));
    }
}

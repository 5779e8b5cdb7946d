//! A node's wall clock in the simulation: virtual time (tokio's paused clock) plus a
//! skew the fault schedule sets, forward or back, so the hybrid logical clock meets
//! clocks that disagree and clocks that step backwards.

use crate::hlc::Clock;
use std::sync::atomic::{AtomicI64, Ordering};
use tokio::time::Instant;

/// Unix milliseconds at which every simulation starts (2026-01-01), so versions look
/// like real ones and a seed gives the same versions on every machine.
pub const SIM_EPOCH_MS: u64 = 1_767_225_600_000;

/// Virtual wall time of one node.
pub struct SimClock {
    start: Instant,
    skew_ms: AtomicI64,
}

impl SimClock {
    /// A clock that reads [`SIM_EPOCH_MS`] at the simulation's start (`start`).
    pub fn new(start: Instant) -> SimClock {
        SimClock {
            start,
            skew_ms: AtomicI64::new(0),
        }
    }

    /// Sets how far this clock is ahead (positive) or behind (negative) virtual time.
    pub fn set_skew_ms(&self, skew_ms: i64) {
        self.skew_ms.store(skew_ms, Ordering::Relaxed);
    }
}

impl Clock for SimClock {
    fn now_ms(&self) -> u64 {
        let elapsed = self.start.elapsed().as_millis() as i64;
        let now = SIM_EPOCH_MS as i64 + elapsed + self.skew_ms.load(Ordering::Relaxed);
        now.max(0) as u64
    }
}

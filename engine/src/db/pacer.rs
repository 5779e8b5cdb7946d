//! Background work that gives the CPU back every so often.
//!
//! A flush or a compaction is one long CPU-bound loop. On a machine whose cores the
//! server's workers already fill (kvd pinned to one core, or a small VM), the scheduler
//! lets such a thread run a whole slice (3 ms under EEVDF's default) while commands
//! wait: at 140k INCR/s that slice was the p99 (docs/performance.md, "Background work
//! that yields"). The loop instead yields every [`SLICE`] of its own running time, so a
//! waiting worker runs within that much; with nothing waiting the yield returns at once
//! and costs one system call per slice. The work done is the same and so is the share of
//! the CPU it gets; only its spikes are cut short.

use std::time::{Duration, Instant};

/// Longest stretch between two yields.
const SLICE: Duration = Duration::from_micros(200);
/// Steps between two clock reads (a step is one entry: well under a microsecond).
const STEPS_PER_CHECK: u32 = 64;

/// Counts a loop's steps and yields the thread once [`SLICE`] has passed.
pub(crate) struct Pacer {
    since: Instant,
    steps: u32,
}

impl Pacer {
    pub(crate) fn new() -> Pacer {
        Pacer {
            since: Instant::now(),
            steps: 0,
        }
    }

    /// One step of the loop done; true if the thread yielded.
    pub(crate) fn step(&mut self) -> bool {
        self.steps += 1;
        if self.steps < STEPS_PER_CHECK {
            return false;
        }
        self.steps = 0;
        if self.since.elapsed() < SLICE {
            return false;
        }
        std::thread::yield_now();
        self.since = Instant::now();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yields_once_a_slice_has_passed_and_then_not_until_the_next() {
        let mut pacer = Pacer::new();
        pacer.since = Instant::now() - SLICE; // a slice of work already done
        let yields: Vec<bool> = (0..STEPS_PER_CHECK).map(|_| pacer.step()).collect();
        assert_eq!(yields.iter().filter(|&&y| y).count(), 1, "{yields:?}");
        assert!(
            yields[STEPS_PER_CHECK as usize - 1],
            "the clock is read every {STEPS_PER_CHECK} steps"
        );
        // A fresh slice: the next check finds less than SLICE gone (64 steps take far less).
        assert!(!(0..STEPS_PER_CHECK).any(|_| pacer.step()));
    }
}

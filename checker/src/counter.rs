//! Counters (INCR and friends) under faults: the value read at the end, once all
//! clients stopped, must lie between the sum of the acknowledged increments and that sum
//! plus every increment whose outcome is unknown (each may or may not have landed, but
//! none may land twice, and none acknowledged may be lost). Jepsen's counter check.

use crate::history::{Operation, Outcome};

/// Why a counter's history is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterViolation {
    /// The final value read.
    pub final_value: i64,
    /// The smallest value the history allows.
    pub min: i64,
    /// The largest value the history allows.
    pub max: i64,
}

impl std::fmt::Display for CounterViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the counter ended at {} but acknowledged and unknown increments allow only {}..={}",
            self.final_value, self.min, self.max
        )
    }
}

impl std::error::Error for CounterViolation {}

/// Checks the final value of a counter that started at 0 against the increments
/// (`input` = the delta; a failed one had no effect). Negative deltas are allowed: the
/// bounds take the unknown ones into account on the side they move.
pub fn check_counter<O>(
    increments: &[Operation<i64, O>],
    final_value: i64,
) -> Result<(), CounterViolation> {
    let (mut min, mut max) = (0i64, 0i64);
    for op in increments {
        match op.outcome {
            Outcome::Ok(_) => {
                min = min.saturating_add(op.input);
                max = max.saturating_add(op.input);
            }
            Outcome::Unknown if op.input >= 0 => max = max.saturating_add(op.input),
            Outcome::Unknown => min = min.saturating_add(op.input),
            Outcome::Failed => {}
        }
    }
    if (min..=max).contains(&final_value) {
        Ok(())
    } else {
        Err(CounterViolation {
            final_value,
            min,
            max,
        })
    }
}

//! Checks what clients of a store saw. Tests (real processes, the simulation) record a
//! history: every operation with when it was invoked, when it returned (or that its
//! outcome is unknown) and what it returned; this crate decides whether some legal
//! order explains it.
//!
//! - [`linearizable`]: Wing and Gong's search with Lowe's memoization (the algorithm of
//!   Porcupine and Knossos), per key ([`check_per_key`]), against any sequential
//!   [`Model`]; [`register`] is the model of a key holding a value,
//!   [`counter_register`] of a key that INCR counts with.
//! - [`counter`]: the final value of a counter lies between the acknowledged increments
//!   and the acknowledged plus the unknown ones.
//! - [`fencing`]: fencing tokens seen by a guarded resource grow strictly and no two
//!   holders' critical sections overlap.
//!
//! The spec of the history format and of each check: docs/history-checker.md.

#![deny(clippy::unwrap_used)]
#![warn(missing_docs)]

pub mod counter;
pub mod counter_register;
pub mod fencing;
pub mod history;
pub mod linearizable;
pub mod register;

pub use history::{Operation, Outcome};
pub use linearizable::{check, check_per_key, Model, Verdict};

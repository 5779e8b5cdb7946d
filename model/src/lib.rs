//! A model of kvd's single-key Paxos ("record CASPaxos", issue 9) for the stateright
//! model checker, with the properties the networked protocol must keep.
//!
//! - [`acceptor`]: promise and record, Prepare and Accept.
//! - [`proposer`]: a client's command as a Paxos round, the "already chosen" shortcut.
//! - [`message`]: the network as the set of every message sent (loss, duplication,
//!   reordering).
//! - [`design`]: the variants: as specified, fixed, sabotaged.
//! - [`model`]: the state machine and its properties (linearizability through
//!   stateright's `LinearizabilityTester`, and "no GET result is discarded").
//! - [`check`]: runs a configuration and reports states, time and counterexamples.
//!
//! What is modelled, the bounds, and the results: docs/consistency-model-check.md.

#![deny(clippy::unwrap_used)]
#![warn(missing_docs)]

pub mod acceptor;
pub mod ballot;
pub mod check;
pub mod design;
pub mod message;
pub mod model;
pub mod operation;
pub mod proposer;
pub mod register_spec;
pub mod scenario;
pub mod value;

pub use design::{Design, DuplicateAccept, Repair, Sabotage};
pub use model::{property, Action, PaxosModel, State};
pub use operation::Op;

//! Requests from proposers to acceptors.
//!
//! The network is the set of every request ever sent, and no request ever leaves it
//! (as in Lamport's TLA+ Paxos): a request may be delivered late, never (lost), or
//! more than once (duplicated), in any order, to each acceptor independently. That
//! covers every loss, duplication and reordering a real network can do, for safety
//! properties.

use crate::ballot::Ballot;
use crate::value::Value;

/// A request from a proposer to every acceptor. (Answers travel back in the same step
/// as the request is handled, or are lost: see [`crate::model::Action::Deliver`].)
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Msg {
    /// Phase 1a.
    Prepare {
        /// The proposer's ballot.
        ballot: Ballot,
    },
    /// Phase 2a.
    Accept {
        /// The proposer's ballot.
        ballot: Ballot,
        /// The value to accept.
        value: Value,
    },
}

impl Msg {
    /// The ballot whose round the message belongs to.
    pub fn ballot(&self) -> Ballot {
        match self {
            Msg::Prepare { ballot } | Msg::Accept { ballot, .. } => *ballot,
        }
    }
}

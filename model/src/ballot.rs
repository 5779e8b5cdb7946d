//! Ballots: totally ordered by (counter, proposer id), so two proposers never share one.

use std::fmt;

/// A Paxos ballot. Ordered by `counter` first, then by `proposer`; proposer ids start
/// at 1 so that [`Ballot::ZERO`] (the default) is below every ballot a proposer can pick.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ballot {
    /// Grows with every round a proposer starts.
    pub counter: u8,
    /// The proposer that owns the ballot (1-based).
    pub proposer: u8,
}

impl Ballot {
    /// The version of a record nobody has written, and the initial promise.
    pub const ZERO: Ballot = Ballot {
        counter: 0,
        proposer: 0,
    };
}

// Counterexample paths print thousands of ballots: `b2.1` reads better than a struct.
impl fmt::Debug for Ballot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b{}.{}", self.counter, self.proposer)
    }
}

//! A client and the proposer that runs its commands (one proposer per client, as a
//! client's request is coordinated by the node it reached).
//!
//! Round: send Prepare(b) to all; wait for Q Promised (a Rejected ends the round and
//! a new one starts with a higher ballot); adopt the record with the highest version
//! among the Q promises; apply the command. If it changes the value, Accept(b, new) to
//! all and reply after Q Accepted. If it does not, reply at once when all Q promises
//! carried the same version (the "already chosen" shortcut), else re-accept the
//! adopted value at b first. Fewer than Q Accepted (a Rejected, a timeout, a crash):
//! the outcome is unknown to the client, which may retry as a new invocation.

use crate::acceptor::Record;
use crate::ballot::Ballot;
use crate::design::{Design, Sabotage};
use crate::operation::{Op, Reply};
use crate::value::{OpTag, Value};

/// Where a client's current invocation is.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Round {
    /// No invocation in flight.
    Idle,
    /// Phase 1 at `ballot`; promises in arrival order.
    Preparing {
        /// This round's ballot.
        ballot: Ballot,
        /// (acceptor, its record, whether held below an earlier promise) for each
        /// Promised received.
        promises: Vec<(u8, Record, bool)>,
    },
    /// Phase 2 at `ballot`.
    Accepting {
        /// This round's ballot.
        ballot: Ballot,
        /// The state the command was applied to.
        observed: Value,
        /// The reply to give once Q accepted.
        reply: Reply,
        /// Acceptors that answered Accepted.
        accepted: Vec<u8>,
    },
}

/// One client with its proposer.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Client {
    /// Index of the command being run (or next to run) in the script.
    pub next_op: u8,
    /// Which try of that command.
    pub attempt: u8,
    /// The highest ballot this proposer has picked or been told of.
    pub highest_seen: Ballot,
    /// How many GETs had been acknowledged (to anyone) when this invocation started:
    /// the ones that precede it in real time.
    pub reads_before: usize,
    /// The round in flight.
    pub round: Round,
    /// The ballot of this invocation's first round whose Accept was refused (retried
    /// under [`crate::Design::retry_partial_accepts`]).
    pub partial_since: Option<Ballot>,
    /// This invocation's last refused round: its ballot, the state it observed and its
    /// reply (adopted under [`crate::Design::adopt_own_partial`]).
    pub partial_own: Option<(Ballot, Value, Reply)>,
}

impl Client {
    /// A client that has run nothing yet.
    pub fn new() -> Client {
        Client {
            next_op: 0,
            attempt: 0,
            highest_seen: Ballot::ZERO,
            reads_before: 0,
            round: Round::Idle,
            partial_since: None,
            partial_own: None,
        }
    }

    /// The invocation in flight or about to start.
    pub fn tag(&self, client: usize) -> OpTag {
        OpTag {
            client: client as u8,
            op: self.next_op,
            attempt: self.attempt,
        }
    }

    /// The ballot of the round in flight.
    pub fn ballot(&self) -> Option<Ballot> {
        match &self.round {
            Round::Idle => None,
            Round::Preparing { ballot, .. } | Round::Accepting { ballot, .. } => Some(*ballot),
        }
    }

    /// The next ballot this proposer would pick: above everything it has seen.
    pub fn next_ballot(&self, client: usize) -> Ballot {
        Ballot {
            counter: self.highest_seen.counter.saturating_add(1),
            proposer: client as u8 + 1,
        }
    }
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

/// What the proposer does once it holds Q promises.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Decision {
    /// Reply without phase 2 (the "already chosen" shortcut).
    ReplyNow {
        /// The state the command observed.
        observed: Value,
        /// The reply.
        reply: Reply,
    },
    /// Phase 2 with `value` (a new value, or the adopted one re-accepted).
    Accept {
        /// The value to accept at the round's ballot.
        value: Value,
        /// The state the command observed.
        observed: Value,
        /// The reply once Q accepted.
        reply: Reply,
    },
}

/// Applies `op` (invocation `tag`) to the state Q `promises` reveal.
pub fn decide(op: Op, tag: OpTag, promises: &[(u8, Record, bool)], design: &Design) -> Decision {
    let adopted = adopted_record(promises, design);
    let observed = adopted.value.clone();
    let (new, reply) = op.apply(observed.data);
    if let Some(data) = new {
        let value = observed.written(tag, data);
        return Decision::Accept {
            value,
            observed,
            reply,
        };
    }
    let all_same_version = promises
        .iter()
        .all(|(_, r, _)| r.version == adopted.version);
    let none_below_promise = !design.shortcut_guard || promises.iter().all(|(_, _, b)| !b);
    let shortcut = (design.shortcut && all_same_version && none_below_promise)
        || design.has(Sabotage::ShortcutDespiteDifferentVersions);
    if shortcut {
        Decision::ReplyNow { observed, reply }
    } else {
        Decision::Accept {
            value: observed.clone(),
            observed,
            reply,
        }
    }
}

/// The record with the highest version among the promises (the first promise's
/// under [`Sabotage::FirstPromiseWins`]).
fn adopted_record<'a>(promises: &'a [(u8, Record, bool)], design: &Design) -> &'a Record {
    let first = &promises[0].1;
    if design.has(Sabotage::FirstPromiseWins) {
        return first;
    }
    promises.iter().map(|(_, r, _)| r).fold(
        first,
        |best, r| if r.version > best.version { r } else { best },
    )
}

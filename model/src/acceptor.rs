//! The acceptor of record CASPaxos: a durable promise and a durable record.
//!
//! Prepare(b): if b > promise and b > record.version, promise := b and reply
//! Promised(record); else Rejected(max(promise, record.version)).
//! Accept(b, v): if b >= promise and b > record.version, record := (b, v) and reply
//! Accepted; if b == record.version reply Accepted (a duplicate; see
//! [`DuplicateAccept`]); else Rejected(max(...)).

use crate::ballot::Ballot;
use crate::design::{Design, DuplicateAccept, Repair, Sabotage};
use crate::value::Value;
use std::fmt;

/// The accepted state of a key at one acceptor.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Record {
    /// The ballot that wrote it; [`Ballot::ZERO`] for "never written".
    pub version: Ballot,
    /// The value.
    pub value: Value,
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}@{:?}", self.value, self.version)
    }
}

/// One acceptor's durable state for the key.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Acceptor {
    /// The highest ballot promised.
    pub promise: Ballot,
    /// The accepted (or repaired) record.
    pub record: Record,
    /// The record was stored by repair while a higher ballot was promised.
    pub copied_below_promise: bool,
}

impl fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.copied_below_promise {
            " (copy)"
        } else {
            ""
        };
        write!(f, "{{promise {:?}, {:?}{mark}}}", self.promise, self.record)
    }
}

/// An acceptor's answer to Prepare or Accept.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Answer {
    /// Prepare granted: the record as it was, and whether it was held below a promise
    /// made before this one (a copy repair brought after that promise; kvd's prepare
    /// reports the promise it replaced for this).
    Promised(Record, bool),
    /// Accept taken.
    Accepted,
    /// Refused, with the highest ballot the acceptor knows.
    Rejected(Ballot),
}

impl Acceptor {
    fn highest_ballot(&self) -> Ballot {
        self.promise.max(self.record.version)
    }

    /// Phase 1.
    pub fn prepare(&mut self, ballot: Ballot, design: &Design) -> Answer {
        if ballot > self.promise && ballot > self.record.version {
            let below_promise = if design.guard_marks_copies {
                self.copied_below_promise
            } else {
                self.record.version < self.promise
            };
            self.promise = ballot;
            Answer::Promised(self.record.clone(), below_promise)
        } else {
            Answer::Rejected(self.highest_ballot())
        }
    }

    /// Phase 2.
    pub fn accept(&mut self, ballot: Ballot, value: &Value, design: &Design) -> Answer {
        let not_below_promise = ballot >= self.promise;
        let promise_ok = not_below_promise || design.has(Sabotage::AcceptIgnoresPromise);
        if promise_ok && ballot > self.record.version {
            self.record = Record {
                version: ballot,
                value: value.clone(),
            };
            self.copied_below_promise = false;
            if design.forget_fulfilled_promises && not_below_promise {
                self.promise = Ballot::ZERO;
            }
            return Answer::Accepted;
        }
        let duplicate_ok = match design.duplicate_accept {
            DuplicateAccept::Accepted => true,
            DuplicateAccept::AcceptedIfNotBelowPromise => not_below_promise,
        };
        if ballot == self.record.version && duplicate_ok {
            Answer::Accepted
        } else {
            Answer::Rejected(self.highest_ballot())
        }
    }

    /// Whether background repair would copy `record` here.
    pub fn would_repair(&self, record: &Record, repair: Repair) -> bool {
        let newer = record.version > self.record.version;
        match repair {
            Repair::Off => false,
            Repair::IfNewer => newer,
            Repair::IfNewerAndNotBelowPromise => newer && record.version >= self.promise,
        }
    }

    /// Background repair stores `record` here.
    pub fn store_copy(&mut self, record: Record) {
        self.copied_below_promise = record.version < self.promise;
        self.record = record;
    }

    /// Restart after a crash: the durable state survives; under
    /// [`Sabotage::VolatilePromise`] the promise does not.
    pub fn restart(&mut self, design: &Design) {
        if design.has(Sabotage::VolatilePromise) {
            self.promise = Ballot::ZERO;
        }
    }
}

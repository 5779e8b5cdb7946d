//! The protocol variants the model checks: the design as written, the fixes, and
//! deliberate sabotage that proves the checker can fail.

/// What background repair (read repair, hints, anti-entropy) may do to an acceptor.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Repair {
    /// No repair action at all.
    Off,
    /// As designed: copy a record to an acceptor iff its version is greater than the
    /// one the acceptor holds; promises are not looked at.
    IfNewer,
    /// The fix: copy iff the version is greater than the one held AND not below the
    /// acceptor's promise, i.e. exactly where the Accept of that record would have
    /// been taken. A repair is then indistinguishable from a late duplicate Accept.
    IfNewerAndNotBelowPromise,
}

/// How an acceptor answers an Accept whose ballot equals its record's version.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DuplicateAccept {
    /// As designed: always `Accepted` (it is a duplicate of one it took).
    Accepted,
    /// Fix candidate: `Accepted` only if the ballot is not below the promise.
    AcceptedIfNotBelowPromise,
}

/// Deliberate bugs: each must make the checker report a violation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Sabotage {
    /// The acceptor takes an Accept without checking its promise.
    AcceptIgnoresPromise,
    /// The proposer adopts the record of the first promise that arrived, not the one
    /// with the highest version.
    FirstPromiseWins,
    /// Quorum of N/2 instead of N/2 + 1.
    MinorityQuorum,
    /// A read skips phase 2 even when the promises carried different versions.
    ShortcutDespiteDifferentVersions,
    /// An acceptor restart forgets its promise (not fsynced); the record survives.
    VolatilePromise,
    /// A retry after a refused Accept runs the command again whatever the promises
    /// carry (an INCR can then count twice).
    RetryWhateverWasAccepted,
    /// A retry adopts as its own any record at or above its last refused round's
    /// ballot, not only that round's own value (another INCR's value is then answered
    /// as this one's, and one increment is lost).
    AdoptAnyNewerRecord,
}

/// One variant of the protocol.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Design {
    /// What background repair may do.
    pub repair: Repair,
    /// The "already chosen" shortcut: a command that changes nothing replies without
    /// phase 2 when all Q promises carried the same record version.
    pub shortcut: bool,
    /// The answer to an Accept whose ballot equals the record's version.
    pub duplicate_accept: DuplicateAccept,
    /// The shortcut also requires that no promise carried a record held below a promise
    /// made before it (kvd's `promised_before <= version`).
    pub shortcut_guard: bool,
    /// The guard looks at how the record came rather than at the promise now: only a
    /// record that repair stored while a higher ballot was promised is doubtful, and
    /// promises made after a record was stored (rounds that wrote nothing) are not
    /// (kvd's copy mark, replica_store/acceptor.rs). Without it, every second losing
    /// compare-and-set rewrote the record at a new version.
    pub guard_marks_copies: bool,
    /// An Accept taken at or above the promise clears the promise (kvd deletes a
    /// promise its record's version covers, so finished rounds leave no promise).
    pub forget_fulfilled_promises: bool,
    /// A round whose Accept was refused (some acceptors may have taken it) is retried
    /// by the same invocation with a higher ballot, but only while the retry's Q
    /// promises carry no record at or above the first refused round's ballot (a record
    /// that may derive from its value); otherwise the outcome stays unknown (kvd's
    /// coordinator/paxos.rs `Partial`).
    pub retry_partial_accepts: bool,
    /// A retry whose promises show, as the newest record, the value of this
    /// invocation's last refused round (its ballot is the record's version) re-accepts
    /// that value at the new ballot and, once accepted, gives that round's reply,
    /// instead of giving up (kvd's coordinator/paxos.rs `Own`).
    pub adopt_own_partial: bool,
    /// A deliberate bug, if any.
    pub sabotage: Option<Sabotage>,
}

impl Design {
    /// The protocol exactly as the design note describes it (task brief, issue 9).
    pub const AS_SPECIFIED: Design = Design {
        repair: Repair::IfNewer,
        shortcut: true,
        duplicate_accept: DuplicateAccept::Accepted,
        shortcut_guard: false,
        guard_marks_copies: false,
        forget_fulfilled_promises: false,
        retry_partial_accepts: false,
        adopt_own_partial: false,
        sabotage: None,
    };

    /// What kvd implements (cluster/src/replica_store/acceptor.rs,
    /// cluster/src/coordinator/paxos.rs): repair copies any newer record (so replicas
    /// converge), a duplicate Accept is acknowledged only at or above the promise, and
    /// the shortcut skips records held below an earlier promise, and an accept forgets
    /// the promise it fulfils.
    pub const AS_IMPLEMENTED: Design = Design {
        repair: Repair::IfNewer,
        shortcut: true,
        duplicate_accept: DuplicateAccept::AcceptedIfNotBelowPromise,
        shortcut_guard: true,
        guard_marks_copies: true,
        forget_fulfilled_promises: true,
        retry_partial_accepts: true,
        adopt_own_partial: true,
        sabotage: None,
    };

    /// The design with the smallest fix the model found: repair respects promises.
    pub const FIXED: Design = Design {
        repair: Repair::IfNewerAndNotBelowPromise,
        ..Design::AS_SPECIFIED
    };

    /// `self` with `sabotage` switched on.
    pub fn sabotaged(self, sabotage: Sabotage) -> Design {
        Design {
            sabotage: Some(sabotage),
            ..self
        }
    }

    /// Whether `sabotage` is switched on.
    pub fn has(&self, sabotage: Sabotage) -> bool {
        self.sabotage == Some(sabotage)
    }
}

//! The history the simulated clients record: every operation with when it was invoked
//! and when it completed (in one total order of events), and what the client was told.

use crate::quorum::{ClusterError, Consistency};
use crate::{NodeId, Record, Version};
use bytes::Bytes;
use parking_lot::Mutex;

/// What a client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpKind {
    /// SET key value (every value is unique in a run, so it names its write).
    Put(Bytes),
    /// DEL key (a tombstone).
    Delete,
    /// GET key.
    Get,
    /// INCR of a counter key, through single-key consensus.
    Incr,
    /// A SERIAL read of a counter key: a consensus round that writes nothing.
    SerialRead,
    /// INCR of a counter key under a request id (IDEMPOTENT): the first attempt and
    /// every retry after an unknown outcome carry the same id.
    IdempotentIncr(u64),
}

/// What the client was told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The write was acknowledged with this version.
    Written(Version),
    /// The read answered this record (the newest among those asked; `None`: no record).
    Read(Option<Record>),
    /// Nothing was sent, so nothing may ever be written (CLUSTERDOWN, the coordinator
    /// was down, or its clock refused to issue a version).
    NotSent(String),
    /// The write was sent but not acknowledged (TIMEOUT, TRYAGAIN, or the coordinator
    /// crashed while the client waited): it may or may not land.
    Unknown(String),
    /// A read failed (it changed nothing).
    ReadFailed(String),
    /// The INCR was acknowledged with the counter's new value.
    Counted(u64),
    /// The SERIAL read answered this counter value.
    CounterRead(u64),
}

/// One operation of the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// The client that ran it.
    pub client: usize,
    /// The node that coordinated it.
    pub node: NodeId,
    /// The key.
    pub key: Bytes,
    /// What was asked.
    pub kind: OpKind,
    /// At which level.
    pub consistency: Consistency,
    /// Event number of the invocation.
    pub invoked: u64,
    /// Event number of the completion.
    pub completed: u64,
    /// What the client was told.
    pub outcome: Outcome,
}

impl Op {
    /// True for a write the client was told succeeded.
    pub fn acknowledged(&self) -> Option<Version> {
        match self.outcome {
            Outcome::Written(v) => Some(v),
            _ => None,
        }
    }
}

/// What a write's error tells the client about whether it may land.
pub(crate) fn write_failure(e: &ClusterError) -> Outcome {
    match e {
        ClusterError::Unavailable { .. }
        | ClusterError::Clock(_)
        | ClusterError::InvalidCursor
        | ClusterError::ConsensusContended { .. }
        | ClusterError::TxnAborted(_)
        | ClusterError::Locked
        | ClusterError::Refused(_) => Outcome::NotSent(e.to_string()),
        ClusterError::Timeout { .. }
        | ClusterError::Contended { .. }
        | ClusterError::Protocol(_) => Outcome::Unknown(e.to_string()),
    }
}

/// The history, appended to as operations complete.
#[derive(Default)]
pub(crate) struct History(Mutex<Vec<Op>>);

impl History {
    pub(crate) fn push(&self, op: Op) {
        self.0.lock().push(op);
    }

    pub(crate) fn take(&self) -> Vec<Op> {
        std::mem::take(&mut self.0.lock())
    }
}

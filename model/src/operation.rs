//! The commands a client runs through Paxos and their sequential meaning.
//!
//! [`Op::apply`] is the function `f` of CASPaxos: from the current data it computes
//! the new data ("no change" for reads and failed compare-and-sets) and the reply. The
//! model's proposer and the sequential specification the linearizability checker uses
//! both call it, so the two cannot disagree on what a command means.

use std::fmt;

/// The data a key holds: absent, or a small integer (enough for SET, INCR and CAS).
pub type Data = Option<u8>;

/// A command on the one key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Op {
    /// `SET key x`: plain write, always "changes" (f is a constant).
    Set(u8),
    /// `INCR key`: read, add one (absent counts as 0), write.
    Incr,
    /// `SET key new IFEQ expected`: writes only if the key holds `expected`.
    SetIfEq {
        /// The value the key must hold.
        expected: u8,
        /// The value written when it does.
        new: u8,
    },
    /// `GET key` through Paxos: never changes the value.
    Get,
}

/// What the client is told.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reply {
    /// `+OK` of SET and of a SET IFEQ that wrote.
    Ok,
    /// The nil reply of a SET IFEQ that did not write.
    NotSet,
    /// INCR's new value.
    Int(u8),
    /// GET's value (nil when absent).
    Value(Data),
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Ok => write!(f, "OK"),
            Reply::NotSet => write!(f, "nil"),
            Reply::Int(n) => write!(f, "{n}"),
            Reply::Value(Some(v)) => write!(f, "\"{v}\""),
            Reply::Value(None) => write!(f, "nil"),
        }
    }
}

impl Op {
    /// CASPaxos's `f`: the new data (`None` = no change) and the reply.
    pub fn apply(&self, data: Data) -> (Option<Data>, Reply) {
        match *self {
            Op::Set(x) => (Some(Some(x)), Reply::Ok),
            Op::Incr => {
                // The model's scripts never come near u8::MAX; saturate rather than wrap.
                let n = data.unwrap_or(0).saturating_add(1);
                (Some(Some(n)), Reply::Int(n))
            }
            Op::SetIfEq { expected, new } if data == Some(expected) => (Some(Some(new)), Reply::Ok),
            Op::SetIfEq { .. } => (None, Reply::NotSet),
            Op::Get => (None, Reply::Value(data)),
        }
    }
}

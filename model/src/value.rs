//! What an acceptor's record holds: the data plus its lineage, the invocations whose
//! writes produced it, oldest first.
//!
//! The lineage lets the model decide "is state S derived from value v?" (v's lineage
//! is a prefix of S's), which the property "no read may return a value that a later
//! round discards" needs. It also keeps two writes of equal data distinguishable.

use crate::operation::Data;
use std::fmt;

/// One invocation of a command: a client's `op`-th command, `attempt`-th try (a retry
/// after a timeout is a new invocation, as the client cannot know the first one's fate).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpTag {
    /// The client (0-based).
    pub client: u8,
    /// Index of the command in the client's script.
    pub op: u8,
    /// 0 for the first try, 1 for the first retry, ...
    pub attempt: u8,
}

impl fmt::Debug for OpTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}.{}", self.client, self.op)?;
        if self.attempt > 0 {
            write!(f, "r{}", self.attempt)?;
        }
        Ok(())
    }
}

/// A key's value as Paxos rounds carry it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Value {
    /// What GET returns.
    pub data: Data,
    /// The writes that led here, oldest first.
    pub lineage: Vec<OpTag>,
}

impl Value {
    /// `self` after the write of invocation `tag` produced `data`.
    pub fn written(&self, tag: OpTag, data: Data) -> Value {
        let mut lineage = self.lineage.clone();
        lineage.push(tag);
        Value { data, lineage }
    }

    /// Whether `later` was produced from `self` by zero or more writes.
    pub fn is_ancestor_of(&self, later: &Value) -> bool {
        later.lineage.starts_with(&self.lineage)
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.data {
            Some(d) => write!(f, "{d}")?,
            None => write!(f, "absent")?,
        }
        write!(f, "{:?}", self.lineage)
    }
}

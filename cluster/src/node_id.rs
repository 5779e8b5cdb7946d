//! Node identity: chosen once at random, kept in the data directory, never reused.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

/// A map looked up on every request by an id this cluster makes itself (a node's id, a
/// stream frame's number): hashed with foldhash, a few instructions for a `u64` where
/// std's SipHash took about 140 (five such lookups were 3% of a replicated GET on its
/// coordinator, docs/performance.md). Seeded per process like std's.
pub type IdMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A node's identity. Its 64 bits also break ties between versions made in the same
/// hybrid-clock tick by different coordinators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u64);

impl NodeId {
    /// Parses the 40-hex-digit form that [`fmt::Display`] prints.
    pub fn parse(s: &str) -> Option<NodeId> {
        if s.len() != 40 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let (high, low) = s.split_at(24);
        if high.bytes().any(|b| b != b'0') {
            return None;
        }
        u64::from_str_radix(low, 16).ok().map(NodeId)
    }
}

impl fmt::Display for NodeId {
    /// 40 hex digits, the width of a Redis Cluster node id, so tools that parse
    /// CLUSTER NODES accept it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:040x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        let id = NodeId(0xdead_beef_0123_4567);
        let s = id.to_string();
        assert_eq!(s.len(), 40);
        assert_eq!(NodeId::parse(&s), Some(id));
        assert_eq!(NodeId::parse("xyz"), None);
        assert_eq!(NodeId::parse(&"f".repeat(40)), None);
    }
}

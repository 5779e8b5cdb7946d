//! Cluster-wide versions: (hybrid-logical-clock timestamp, coordinator node id), totally
//! ordered. The coordinator of a write assigns it; last-writer-wins compares these.

use crate::NodeId;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Bytes of an encoded [`Version`].
pub const VERSION_LEN: usize = 16;

/// A write's version. Ordered by timestamp, then by node id, so two coordinators never
/// make equal versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Version {
    /// Hybrid logical clock: Unix milliseconds << 16 | logical counter.
    pub ts: u64,
    /// The coordinator that assigned it.
    pub node: NodeId,
}

impl Version {
    /// Smaller than every version a coordinator assigns.
    pub const ZERO: Version = Version {
        ts: 0,
        node: NodeId(0),
    };

    /// `ts:u64-BE node:u64-BE`: byte order is version order.
    pub fn encode(&self) -> [u8; VERSION_LEN] {
        let mut b = [0u8; VERSION_LEN];
        b[..8].copy_from_slice(&self.ts.to_be_bytes());
        b[8..].copy_from_slice(&self.node.0.to_be_bytes());
        b
    }

    /// Decodes the first [`VERSION_LEN`] bytes of `b`.
    pub fn decode(b: &[u8]) -> Option<Version> {
        let ts = u64::from_be_bytes(b.get(..8)?.try_into().ok()?);
        let node = u64::from_be_bytes(b.get(8..VERSION_LEN)?.try_into().ok()?);
        Some(Version {
            ts,
            node: NodeId(node),
        })
    }

    /// The wall-clock milliseconds part of the timestamp.
    pub fn millis(&self) -> u64 {
        self.ts >> 16
    }
}

impl fmt::Display for Version {
    /// `millis.logical@node`: readable and unique; used as the ETag in cluster mode.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}@{:x}",
            self.ts >> 16,
            self.ts & 0xffff,
            self.node.0
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn byte_order_is_version_order(a in any::<(u64, u64)>(), b in any::<(u64, u64)>()) {
            let va = Version { ts: a.0, node: NodeId(a.1) };
            let vb = Version { ts: b.0, node: NodeId(b.1) };
            prop_assert_eq!(va.cmp(&vb), va.encode().cmp(&vb.encode()));
            prop_assert_eq!(Version::decode(&va.encode()), Some(va));
        }
    }
}

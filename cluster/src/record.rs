//! The replicated record: what every replica stores for a key (spec:
//! docs/format/cluster.md). A value and a delete are both records with a version, so
//! replicas can compare them and a delete is never undone by an older value.
//!
//! ```text
//! record := format:u8 (=1) version:16 expire-at-ms:u64-BE kind:u8 payload
//! kind   := 0 tombstone (no payload) | a kv_keyspace::ValueType tag
//! ```

use crate::version::{Version, VERSION_LEN};
use bytes::Bytes;
use kv_keyspace::ValueType;

const FORMAT: u8 = 1;
const HEADER: usize = 1 + VERSION_LEN + 8 + 1;
const TOMBSTONE: u8 = 0;

/// What a record holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// A live value of a Redis type.
    Value {
        /// The Redis type.
        ty: ValueType,
        /// The encoded value (for strings, the bytes).
        payload: Bytes,
    },
    /// The key was deleted at this version.
    Tombstone,
}

/// One key's replicated state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Assigned by the coordinator of the write.
    pub version: Version,
    /// Absolute expiry in Unix milliseconds, fixed by the coordinator: expiring is a
    /// read-time decision and never makes a new version.
    pub expire_at: Option<i64>,
    /// Value or tombstone.
    pub body: Body,
}

impl Record {
    /// A string value.
    pub fn string(version: Version, payload: Bytes, expire_at: Option<i64>) -> Record {
        Record {
            version,
            expire_at,
            body: Body::Value {
                ty: ValueType::String,
                payload,
            },
        }
    }

    /// A delete.
    pub fn tombstone(version: Version) -> Record {
        Record {
            version,
            expire_at: None,
            body: Body::Tombstone,
        }
    }

    /// The value a reader sees at `now_ms`: none for tombstones and expired values.
    pub fn live_value(&self, now_ms: i64) -> Option<(ValueType, &Bytes)> {
        match &self.body {
            Body::Value { ty, payload } if self.expire_at.is_none_or(|at| at > now_ms) => {
                Some((*ty, payload))
            }
            _ => None,
        }
    }

    /// Encodes the record.
    pub fn encode(&self) -> Vec<u8> {
        let payload: &[u8] = match &self.body {
            Body::Value { payload, .. } => payload,
            Body::Tombstone => &[],
        };
        let mut v = Vec::with_capacity(HEADER + payload.len());
        v.push(FORMAT);
        v.extend_from_slice(&self.version.encode());
        v.extend_from_slice(&(self.expire_at.unwrap_or(0).max(0) as u64).to_be_bytes());
        v.push(match &self.body {
            Body::Value { ty, .. } => *ty as u8,
            Body::Tombstone => TOMBSTONE,
        });
        v.extend_from_slice(payload);
        v
    }

    /// Decodes a record; `None` if the bytes are not one (the caller reports corruption).
    pub fn decode(b: &Bytes) -> Option<Record> {
        if b.len() < HEADER || b[0] != FORMAT {
            return None;
        }
        let version = Version::decode(&b[1..])?;
        let at = u64::from_be_bytes(b[1 + VERSION_LEN..HEADER - 1].try_into().ok()?);
        let expire_at = (at != 0).then(|| at.min(i64::MAX as u64) as i64);
        let body = match b[HEADER - 1] {
            TOMBSTONE if b.len() == HEADER => Body::Tombstone,
            TOMBSTONE => return None,
            tag => Body::Value {
                ty: ValueType::from_u8(tag)?,
                payload: b.slice(HEADER..),
            },
        };
        Some(Record {
            version,
            expire_at,
            body,
        })
    }

    /// Last-writer-wins: the record that survives when replicas disagree. The higher
    /// version wins; equal versions (the same write seen twice) break ties on the
    /// encoding so the merge stays commutative even for damaged input.
    pub fn merge(a: Record, b: Record) -> Record {
        match a.version.cmp(&b.version) {
            std::cmp::Ordering::Greater => a,
            std::cmp::Ordering::Less => b,
            std::cmp::Ordering::Equal => {
                if a.encode() >= b.encode() {
                    a
                } else {
                    b
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeId;
    use proptest::prelude::*;

    fn arb_record() -> impl Strategy<Value = Record> {
        (
            0u64..4,
            0u64..3,
            proptest::option::of(1i64..5),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..4)),
        )
            .prop_map(|(ts, node, exp, val)| {
                let version = Version {
                    ts,
                    node: NodeId(node),
                };
                match val {
                    Some(v) => Record::string(version, Bytes::from(v), exp),
                    None => Record::tombstone(version),
                }
            })
    }

    #[test]
    fn round_trip_and_damage() {
        let v = Version {
            ts: 42 << 16 | 7,
            node: NodeId(9),
        };
        for r in [
            Record::string(v, Bytes::from_static(b"hello"), Some(1_700_000_000_000)),
            Record::string(v, Bytes::new(), None),
            Record::tombstone(v),
        ] {
            assert_eq!(Record::decode(&Bytes::from(r.encode())), Some(r));
        }
        let mut bad = Record::tombstone(v).encode();
        bad.push(1); // a tombstone with a payload
        assert_eq!(Record::decode(&Bytes::from(bad)), None);
        assert_eq!(Record::decode(&Bytes::from_static(b"\x02")), None);
    }

    #[test]
    fn expiry_and_tombstones_hide_values() {
        let v = Version::ZERO;
        let r = Record::string(v, Bytes::from_static(b"x"), Some(100));
        assert!(r.live_value(99).is_some());
        assert!(r.live_value(100).is_none());
        assert!(Record::tombstone(v).live_value(0).is_none());
    }

    proptest! {
        #[test]
        fn merge_is_commutative_associative_idempotent(
            a in arb_record(), b in arb_record(), c in arb_record()
        ) {
            prop_assert_eq!(Record::merge(a.clone(), b.clone()), Record::merge(b.clone(), a.clone()));
            prop_assert_eq!(
                Record::merge(Record::merge(a.clone(), b.clone()), c.clone()),
                Record::merge(a.clone(), Record::merge(b.clone(), c.clone()))
            );
            prop_assert_eq!(Record::merge(a.clone(), a.clone()), a.clone());
            // The newest version always survives.
            let m = Record::merge(a.clone(), b.clone());
            prop_assert_eq!(m.version, a.version.max(b.version));
        }
    }
}

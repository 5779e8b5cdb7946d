//! The replicated record: what every replica stores for a key (spec:
//! docs/format/cluster.md). A value and a delete are both records with a version, so
//! replicas can compare them and a delete is never undone by an older value.
//!
//! ```text
//! record := format:u8 (=1) version:16 expire-at-ms:u64-BE kind:u8 payload
//!         | format:u8 (=2) version:16 expire-at-ms:u64-BE kind:u8 requests payload
//!         | format:u8 (=3) version:16 expire-at-ms:u64-BE kind:u8 requests txn-state payload
//! kind   := 0 tombstone (no payload) | a kv_keyspace::ValueType tag
//!         | 0x80 siblings (payload: crate::dvv's `siblings`; format 1 only)
//!         | 0x81 siblings write in transit (payload: crate::dvv's `write`; never stored)
//! requests := see crate::request_record
//! txn-state := see crate::txn_lock
//! ```
//!
//! Format 2 is written only when the record carries request records, and format 3 only
//! when a transaction left a lock or a commit marker in it, so records of keys never
//! written under IDEMPOTENT or by a transaction stay readable by nodes that know only
//! format 1. The siblings kinds exist only in siblings databases; a node built before
//! them refuses such a record as corrupt (by key), it never misreads it.

use crate::dvv::{Siblings, SiblingsWrite};
use crate::request_record::{self, RequestRecord};
use crate::txn_lock::TxnState;
use crate::version::{Version, VERSION_LEN};
use bytes::Bytes;
use kv_keyspace::ValueType;

/// A record without request records.
const FORMAT: u8 = 1;
/// A record with request records between its kind and its payload.
const FORMAT_WITH_REQUESTS: u8 = 2;
/// A record with request records and a transaction's lock or markers.
const FORMAT_WITH_TXN: u8 = 3;
const HEADER: usize = 1 + VERSION_LEN + 8 + 1;
const TOMBSTONE: u8 = 0;
/// A siblings database's state of a key (crate::dvv). Above every ValueType tag.
const SIBLINGS: u8 = 0x80;
/// A client's siblings write on its way to the replica that gives it a dot.
const SIBLINGS_WRITE: u8 = 0x81;

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
    /// A siblings database's key: concurrent values with their dots and causal context.
    /// Merged by the DVV-set join, not by version.
    Siblings(Siblings),
    /// A client's write to a siblings database, sent to one replica, which turns it into
    /// [`Body::Siblings`] with a dot of its own (replica_store); never stored as such.
    SiblingsWrite(SiblingsWrite),
}

impl Body {
    /// The kind byte of the record format.
    pub fn kind(&self) -> u8 {
        match self {
            Body::Value { ty, .. } => *ty as u8,
            Body::Tombstone => TOMBSTONE,
            Body::Siblings(_) => SIBLINGS,
            Body::SiblingsWrite(_) => SIBLINGS_WRITE,
        }
    }
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
    /// Replies of idempotent requests that wrote this key (oldest first); they travel
    /// with the record so a retry through any node finds them.
    pub requests: Vec<RequestRecord>,
    /// A transaction's lock on the key, and the commit markers of transactions it is
    /// the primary key of (crate::txn_lock); empty for keys no transaction touched.
    pub txn: TxnState,
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
            requests: Vec::new(),
            txn: TxnState::default(),
        }
    }

    /// A delete.
    pub fn tombstone(version: Version) -> Record {
        Record {
            version,
            expire_at: None,
            body: Body::Tombstone,
            requests: Vec::new(),
            txn: TxnState::default(),
        }
    }

    /// The live request record of request `id` at `now_ms`, if this record has one.
    pub fn request(&self, id: &[u8], now_ms: i64) -> Option<&RequestRecord> {
        request_record::find(&self.requests, id, now_ms)
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
        let mut encoded = Vec::new();
        let payload: &[u8] = match &self.body {
            Body::Value { payload, .. } => payload,
            Body::Tombstone => &[],
            Body::Siblings(s) => {
                s.encode_into(&mut encoded);
                &encoded
            }
            Body::SiblingsWrite(w) => {
                w.encode_into(&mut encoded);
                &encoded
            }
        };
        // Siblings carry no request records (IDEMPOTENT is refused there).
        let requests = match &self.body {
            Body::Siblings(_) | Body::SiblingsWrite(_) => &[][..],
            _ => &self.requests[..],
        };
        // Nor transaction state (transactions run in linearizable databases only).
        let no_txn = TxnState::default();
        let txn = match &self.body {
            Body::Siblings(_) | Body::SiblingsWrite(_) => &no_txn,
            _ => &self.txn,
        };
        let mut v = Vec::with_capacity(HEADER + payload.len());
        let format = match (requests.is_empty(), txn.is_empty()) {
            (true, true) => FORMAT,
            (false, true) => FORMAT_WITH_REQUESTS,
            (_, false) => FORMAT_WITH_TXN,
        };
        v.push(format);
        v.extend_from_slice(&self.version.encode());
        v.extend_from_slice(&(self.expire_at.unwrap_or(0).max(0) as u64).to_be_bytes());
        v.push(self.body.kind());
        if format != FORMAT {
            request_record::encode(requests, &mut v);
        }
        if format == FORMAT_WITH_TXN {
            txn.encode(&mut v);
        }
        v.extend_from_slice(payload);
        v
    }

    /// Decodes a record; `None` if the bytes are not one (the caller reports corruption).
    pub fn decode(b: &Bytes) -> Option<Record> {
        if b.len() < HEADER || !matches!(b[0], FORMAT | FORMAT_WITH_REQUESTS | FORMAT_WITH_TXN) {
            return None;
        }
        let version = Version::decode(&b[1..])?;
        let at = u64::from_be_bytes(b[1 + VERSION_LEN..HEADER - 1].try_into().ok()?);
        let expire_at = (at != 0).then(|| at.min(i64::MAX as u64) as i64);
        let (requests, mut payload_at) = match b[0] {
            FORMAT => (Vec::new(), HEADER),
            _ => {
                let (requests, len) = request_record::decode(&b.slice(HEADER..))?;
                (requests, HEADER + len)
            }
        };
        let txn = match b[0] {
            FORMAT_WITH_TXN => {
                let (txn, len) = TxnState::decode(&b.slice(payload_at..))?;
                payload_at += len;
                txn
            }
            _ => TxnState::default(),
        };
        let body = match b[HEADER - 1] {
            TOMBSTONE if b.len() == payload_at => Body::Tombstone,
            TOMBSTONE => return None,
            // Siblings carry neither (see `encode`): a record that says otherwise is not
            // one kvd wrote, and would not encode back to itself.
            SIBLINGS | SIBLINGS_WRITE if !requests.is_empty() || !txn.is_empty() => return None,
            SIBLINGS => Body::Siblings(Siblings::decode(&b.slice(payload_at..))?),
            SIBLINGS_WRITE => Body::SiblingsWrite(SiblingsWrite::decode(&b.slice(payload_at..))?),
            tag => Body::Value {
                ty: ValueType::from_u8(tag)?,
                payload: b.slice(payload_at..),
            },
        };
        Some(Record {
            version,
            expire_at,
            body,
            requests,
            txn,
        })
    }

    /// The record that survives when replicas disagree. Two siblings records join
    /// (crate::dvv: every concurrent value kept, the newer version and expiry); otherwise
    /// a siblings record beats any other (they meet only if a database's mode was
    /// changed), and among the others last-writer-wins: the higher version wins; equal
    /// versions (the same write seen twice) break ties on the encoding so the merge
    /// stays commutative even for damaged input. Each case is a join, and so is their
    /// combination: commutative, associative, idempotent.
    pub fn merge(a: Record, b: Record) -> Record {
        match (&a.body, &b.body) {
            (Body::Siblings(x), Body::Siblings(y)) => {
                return Record {
                    version: a.version.max(b.version),
                    expire_at: a.expire_at.max(b.expire_at),
                    body: Body::Siblings(x.sync(y)),
                    requests: Vec::new(),
                    txn: Default::default(),
                }
            }
            (Body::Siblings(_), _) => return a,
            (_, Body::Siblings(_)) => return b,
            _ => {}
        }
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

    /// Siblings states from one history: replica a (1..=3) wrote counter 1, then counter
    /// 2 superseding it; a state is the join of some of those writes' states.
    fn arb_siblings() -> impl Strategy<Value = Record> {
        (0u64..4, 0u8..64).prop_map(|(ts, mask)| {
            let mut state = Siblings::default();
            for bit in 0..6u8 {
                if mask & (1 << bit) == 0 {
                    continue;
                }
                let (actor, counter) = (NodeId(u64::from(bit / 2) + 1), u64::from(bit % 2) + 1);
                let mut one = Siblings::default();
                if counter == 2 {
                    one.accept(&write_of(None), actor, 1);
                    let context = one.context().clone();
                    one.accept(&write_of(Some(context)), actor, 2);
                } else {
                    one.accept(&write_of(None), actor, 1);
                }
                state = state.sync(&one);
            }
            Record {
                version: Version {
                    ts,
                    node: NodeId(0),
                },
                expire_at: None,
                body: Body::Siblings(state),
                requests: Vec::new(),
                txn: Default::default(),
            }
        })
    }

    fn write_of(context: Option<crate::dvv::Context>) -> SiblingsWrite {
        SiblingsWrite {
            value: Some(Bytes::from(vec![context.is_some() as u8])),
            context: context.unwrap_or_default(),
        }
    }

    fn arb_record() -> impl Strategy<Value = Record> {
        prop_oneof![3 => arb_lww(), 1 => arb_siblings()]
    }

    fn arb_lww() -> impl Strategy<Value = Record> {
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

    /// A value with expiry, an empty value and a tombstone, with their version.
    fn samples() -> (Version, [Record; 3]) {
        let v = Version {
            ts: 42 << 16 | 7,
            node: NodeId(9),
        };
        let records = [
            Record::string(v, Bytes::from_static(b"hello"), Some(1_700_000_000_000)),
            Record::string(v, Bytes::new(), None),
            Record::tombstone(v),
        ];
        (v, records)
    }

    #[test]
    fn round_trip_and_damage() {
        let (v, records) = samples();
        for r in records {
            assert_eq!(Record::decode(&Bytes::from(r.encode())), Some(r));
        }
        let mut bad = Record::tombstone(v).encode();
        bad.push(1); // a tombstone with a payload
        assert_eq!(Record::decode(&Bytes::from(bad)), None);
        assert_eq!(Record::decode(&Bytes::from_static(b"\x02")), None);
    }

    /// Found by the `cluster_records` fuzz target: a siblings record of format 3 whose
    /// transaction state is not empty. `encode` never writes one (siblings carry no
    /// transaction state), so decoding it gave a record that did not encode back to
    /// itself; such bytes are refused as damage.
    #[test]
    fn a_siblings_record_with_transaction_state_is_refused() {
        let found: &[u8] = &[
            3, 0, 0, 0, 0, 0, 9, 0, 9, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 1, 0, 128, 0,
            0, 2, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 1, 0, 43, 0, 0, 0, 2, 2, 0,
            0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(Record::decode(&Bytes::copy_from_slice(found)), None);
        // Every record that does decode encodes back to itself (the fuzz target's check).
        for cut in HEADER..found.len() {
            if let Some(r) = Record::decode(&Bytes::copy_from_slice(&found[..cut])) {
                assert_eq!(
                    Record::decode(&Bytes::from(r.encode())),
                    Some(r),
                    "cut {cut}"
                );
            }
        }
    }

    fn with_requests(mut r: Record) -> Record {
        r.requests = vec![
            RequestRecord {
                id: Bytes::from_static(b"req-1"),
                expire_at: 1_700_000_060_000,
                written_at: Version {
                    ts: 41 << 16,
                    node: NodeId(2),
                },
                reply: Bytes::from_static(b"\x04\0\0\0\0\0\0\0\x05"),
            },
            RequestRecord {
                id: Bytes::from_static(b"req-2"),
                expire_at: 1_700_000_070_000,
                written_at: r.version,
                reply: Bytes::new(),
            },
        ];
        r
    }

    #[test]
    fn records_with_requests_round_trip_and_others_keep_format_1() {
        for r in samples().1 {
            assert_eq!(r.encode()[0], FORMAT, "no requests: the old format");
            let r = with_requests(r);
            let bytes = r.encode();
            assert_eq!(bytes[0], FORMAT_WITH_REQUESTS);
            assert_eq!(Record::decode(&Bytes::from(bytes.clone())), Some(r.clone()));
            // Every cut inside the requests or the header is refused, never misread.
            for cut in 1..bytes.len() - r_payload_len(&r) {
                assert_eq!(
                    Record::decode(&Bytes::from(bytes[..cut].to_vec())),
                    None,
                    "cut at {cut}"
                );
            }
        }
    }

    fn r_payload_len(r: &Record) -> usize {
        match &r.body {
            Body::Value { payload, .. } => payload.len(),
            _ => 0,
        }
    }

    #[test]
    fn a_format_1_record_written_before_request_records_still_reads() {
        // Bytes as format 1 wrote them: format, version (ts, node), expire-at, kind
        // (1 = string), payload.
        let mut old = vec![1u8];
        old.extend_from_slice(&(5u64 << 16).to_be_bytes());
        old.extend_from_slice(&3u64.to_be_bytes());
        old.extend_from_slice(&0u64.to_be_bytes());
        old.push(ValueType::String as u8);
        old.extend_from_slice(b"v1");
        let r = Record::decode(&Bytes::from(old.clone())).expect("format 1 reads");
        assert_eq!(
            r,
            Record::string(
                Version {
                    ts: 5 << 16,
                    node: NodeId(3)
                },
                Bytes::from_static(b"v1"),
                None
            )
        );
        assert!(r.requests.is_empty());
        assert_eq!(r.encode(), old, "and is written back unchanged");
    }

    #[test]
    fn the_worked_example_of_the_spec_encodes_as_written() {
        // docs/format/cluster-storage.md, "Request records".
        let version = Version {
            ts: 1_700_000_000_000 << 16,
            node: NodeId(2),
        };
        let mut r = Record::string(version, Bytes::from_static(b"1"), None);
        r.requests = vec![RequestRecord {
            id: Bytes::from_static(b"r1"),
            expire_at: 1_700_000_060_000,
            written_at: version,
            reply: Bytes::from_static(&[4, 0, 0, 0, 0, 0, 0, 0, 1]),
        }];
        let hex: String = r.encode().iter().map(|b| format!("{b:02x}")).collect();
        let spec = "02 018bcfe568000000 0000000000000002 0000000000000000 01 01 0002 7231 \
                    0000018bcfe65260 018bcfe568000000 0000000000000002 \
                    00000009 04 0000000000000001 31";
        assert_eq!(hex, spec.replace(' ', ""));
    }

    #[test]
    fn the_siblings_example_of_the_spec_encodes_as_written() {
        // docs/format/cluster-storage.md, "Siblings records".
        let version = Version {
            ts: 1_700_000_000_000 << 16,
            node: NodeId(2),
        };
        let mut state = Siblings::default();
        let write = SiblingsWrite {
            context: Default::default(),
            value: Some(Bytes::from_static(b"1")),
        };
        state.accept(&write, NodeId(2), 5);
        let r = Record {
            version,
            expire_at: None,
            body: Body::Siblings(state),
            requests: Vec::new(),
            txn: Default::default(),
        };
        let hex: String = r.encode().iter().map(|b| format!("{b:02x}")).collect();
        let spec = "01 018bcfe568000000 0000000000000002 0000000000000000 80 \
                    0001 0000000000000002 0000000000000005 \
                    0001 0000000000000002 0000000000000005 00000001 31";
        assert_eq!(hex, spec.replace(' ', ""));
        assert_eq!(Record::decode(&Bytes::from(r.encode())), Some(r.clone()));
        // A write in transit round-trips too; neither kind takes request records.
        let w = Record {
            body: Body::SiblingsWrite(write),
            ..r.clone()
        };
        assert_eq!(Record::decode(&Bytes::from(w.encode())), Some(w));
        let mut with_requests = with_requests(Record::tombstone(version)).encode();
        with_requests[HEADER - 1] = SIBLINGS;
        assert_eq!(Record::decode(&Bytes::from(with_requests)), None);
    }

    #[test]
    fn a_request_is_found_by_id_until_it_expires() {
        let r = with_requests(Record::tombstone(Version::ZERO));
        let found = r
            .request(b"req-1", 1_700_000_059_999)
            .map(|q| q.written_at.node);
        assert_eq!(found, Some(NodeId(2)));
        assert!(r.request(b"req-1", 1_700_000_060_000).is_none(), "expired");
        assert!(r.request(b"req-3", 0).is_none());
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
            // The newest version survives, except that siblings beat other kinds.
            let m = Record::merge(a.clone(), b.clone());
            let siblings = |r: &Record| matches!(r.body, Body::Siblings(_));
            if siblings(&a) == siblings(&b) {
                prop_assert_eq!(m.version, a.version.max(b.version));
            }
            prop_assert_eq!(Record::decode(&Bytes::from(m.encode())), Some(m));
        }
    }

    #[test]
    fn a_record_with_a_transaction_lock_is_format_3_and_round_trips() {
        use crate::replica_api::ItemKey;
        use crate::txn_lock::{Intent, TxnLock, TxnMarker};
        let v = Version {
            ts: 9 << 16,
            node: NodeId(1),
        };
        let mut r = Record::string(v, Bytes::from_static(b"committed"), None);
        assert_eq!(r.encode()[0], FORMAT);
        r.txn.lock = Some(Box::new(TxnLock {
            txn: v,
            primary: ItemKey {
                db: 0,
                key: Bytes::from_static(b"{t}a"),
            },
            expires_at: 1234,
            intent: Intent::Write {
                body: Body::Tombstone,
                expire_at: None,
            },
        }));
        r.txn.markers.push(TxnMarker {
            txn: v,
            secondaries: vec![ItemKey {
                db: 0,
                key: Bytes::from_static(b"{t}b"),
            }],
        });
        let encoded = r.encode();
        assert_eq!(encoded[0], FORMAT_WITH_TXN);
        assert_eq!(Record::decode(&Bytes::from(encoded)), Some(r));
    }
}

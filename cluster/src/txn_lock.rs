//! What a multi-key transaction leaves in a key's record (docs/consistency.md,
//! "Transactions on the ring"; format: docs/format/cluster-storage.md).
//!
//! A transaction locks each of its keys with a consensus round, then decides its fate
//! with one more round on its *primary* key (the first in key order): the commit. A
//! lock names the transaction and its primary, and before the commit it is given the
//! key's *intent* (the value the transaction writes there), so that whoever meets the
//! lock later can finish the key the way the primary says: roll the intent forward when
//! the primary holds the transaction's commit marker, drop the lock when the primary
//! no longer holds the transaction's lock and has no marker (aborted). This is
//! Percolator's protocol (Peng and Dabek, OSDI 2010), with every step a linearizable
//! single-key consensus round instead of a Bigtable row transaction.
//!
//! ```text
//! txn-state := lock-flag:u8 [lock] markers:u8 marker*
//! lock      := txn:16 primary expires-at-ms:u64-BE intent
//! primary   := db:u32-BE key-len:u32-BE key
//! intent    := 0 (pending) | 1 (keep) | 2 kind:u8 expire-at-ms:u64-BE len:u32-BE payload
//! marker    := txn:16 count:u16-BE (db:u32-BE key-len:u32-BE key)*
//! ```

use crate::replica_api::ItemKey;
use crate::version::{Version, VERSION_LEN};
use crate::Body;
use bytes::Bytes;
use kv_keyspace::ValueType;

/// Commit markers one primary key keeps at most: each is dropped by its transaction's
/// coordinator once every secondary key is finished, or by the next transaction on the
/// key (which finishes them first); a key with this many unfinished ones refuses new
/// transactions until they are finished.
pub const MAX_MARKERS: usize = 16;

/// Keys one transaction may hold (the marker lists them all).
pub const MAX_TXN_KEYS: usize = 1024;

/// A key's lock by a transaction in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnLock {
    /// The transaction: a version from its coordinator's clock, so unique.
    pub txn: Version,
    /// The key whose record decides the transaction.
    pub primary: ItemKey,
    /// Unix ms after which any node may abort the transaction (only liveness depends on
    /// clocks: aborting and committing are both consensus rounds on the primary).
    pub expires_at: i64,
    /// What the transaction does to this key.
    pub intent: Intent,
}

/// What a transaction writes to one of its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// Locked; the transaction has not decided yet.
    Pending,
    /// The transaction leaves the key as it is (it only read it).
    Keep,
    /// The key's value once the transaction commits.
    Write {
        /// A value or a tombstone.
        body: Body,
        /// Absolute expiry (Unix ms) of a value.
        expire_at: Option<i64>,
    },
}

/// On a primary key: a committed transaction whose other keys may still hold its
/// locks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMarker {
    /// The transaction.
    pub txn: Version,
    /// Its other keys.
    pub secondaries: Vec<ItemKey>,
}

/// The transaction state of a record: none for keys no transaction touched.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxnState {
    /// The lock of a transaction in progress.
    /// (Boxed: most records have none, and a record travels in many messages.)
    pub lock: Option<Box<TxnLock>>,
    /// Committed transactions this key is the primary of, not yet finished everywhere.
    pub markers: Vec<TxnMarker>,
}

impl TxnState {
    /// True when no transaction left anything.
    pub fn is_empty(&self) -> bool {
        self.lock.is_none() && self.markers.is_empty()
    }

    /// Whether this key (a primary) holds the commit marker of `txn`.
    pub fn committed(&self, txn: Version) -> bool {
        self.markers.iter().any(|m| m.txn == txn)
    }

    /// Appends the encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match &self.lock {
            None => out.push(0),
            Some(lock) => {
                out.push(1);
                out.extend_from_slice(&lock.txn.encode());
                put_key(&lock.primary, out);
                out.extend_from_slice(&(lock.expires_at.max(0) as u64).to_be_bytes());
                match &lock.intent {
                    Intent::Pending => out.push(0),
                    Intent::Keep => out.push(1),
                    Intent::Write { body, expire_at } => {
                        out.push(2);
                        let (kind, payload): (u8, &[u8]) = match body {
                            Body::Value { ty, payload } => (*ty as u8, payload),
                            // Siblings never meet a transaction (linearizable databases
                            // only run them).
                            _ => (0, &[]),
                        };
                        out.push(kind);
                        out.extend_from_slice(
                            &(expire_at.unwrap_or(0).max(0) as u64).to_be_bytes(),
                        );
                        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
                        out.extend_from_slice(payload);
                    }
                }
            }
        }
        let count = self.markers.len().min(usize::from(u8::MAX));
        out.push(count as u8);
        for m in &self.markers[..count] {
            out.extend_from_slice(&m.txn.encode());
            let keys = m.secondaries.len().min(usize::from(u16::MAX));
            out.extend_from_slice(&(keys as u16).to_be_bytes());
            for k in &m.secondaries[..keys] {
                put_key(k, out);
            }
        }
    }

    /// Decodes from the front of `b`: the state and how many bytes it took; `None` if
    /// the bytes are not one.
    pub fn decode(b: &Bytes) -> Option<(TxnState, usize)> {
        let mut r = Reader { b, at: 0 };
        let lock = match r.take(1)?[0] {
            0 => None,
            1 => {
                let txn = Version::decode(&r.take(VERSION_LEN)?)?;
                let primary = r.key()?;
                let expires_at = r.u64()?.min(i64::MAX as u64) as i64;
                let intent = match r.take(1)?[0] {
                    0 => Intent::Pending,
                    1 => Intent::Keep,
                    2 => {
                        let kind = r.take(1)?[0];
                        let at = r.u64()?;
                        let len = r.u32()? as usize;
                        let payload = r.take(len)?;
                        let body = match kind {
                            0 if payload.is_empty() => Body::Tombstone,
                            0 => return None,
                            tag => Body::Value {
                                ty: ValueType::from_u8(tag)?,
                                payload,
                            },
                        };
                        let expire_at = (at != 0).then(|| at.min(i64::MAX as u64) as i64);
                        Intent::Write { body, expire_at }
                    }
                    _ => return None,
                };
                Some(Box::new(TxnLock {
                    txn,
                    primary,
                    expires_at,
                    intent,
                }))
            }
            _ => return None,
        };
        let count = r.take(1)?[0];
        let mut markers = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let txn = Version::decode(&r.take(VERSION_LEN)?)?;
            let keys = u16::from_be_bytes(r.take(2)?[..].try_into().ok()?);
            let mut secondaries = Vec::with_capacity(usize::from(keys));
            for _ in 0..keys {
                secondaries.push(r.key()?);
            }
            markers.push(TxnMarker { txn, secondaries });
        }
        Some((TxnState { lock, markers }, r.at))
    }
}

fn put_key(k: &ItemKey, out: &mut Vec<u8>) {
    out.extend_from_slice(&k.db.to_be_bytes());
    out.extend_from_slice(&(k.key.len() as u32).to_be_bytes());
    out.extend_from_slice(&k.key);
}

/// Bounds-checked reads from the front of a buffer.
struct Reader<'a> {
    b: &'a Bytes,
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<Bytes> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len())?;
        let s = self.b.slice(self.at..end);
        self.at = end;
        Some(s)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?[..].try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?[..].try_into().ok()?))
    }

    fn key(&mut self) -> Option<ItemKey> {
        let db = self.u32()?;
        let len = self.u32()? as usize;
        Some(ItemKey {
            db,
            key: self.take(len)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeId;

    fn key(db: u32, k: &'static str) -> ItemKey {
        ItemKey {
            db,
            key: Bytes::from_static(k.as_bytes()),
        }
    }

    fn round_trip(s: &TxnState) {
        let mut out = Vec::new();
        s.encode(&mut out);
        out.extend_from_slice(b"payload after");
        let (back, len) = TxnState::decode(&Bytes::from(out.clone())).expect("decodes");
        assert_eq!(&back, s);
        assert_eq!(&out[len..], b"payload after");
        // Every truncation is refused, never misread.
        for cut in 0..len {
            let short = Bytes::copy_from_slice(&out[..cut]);
            assert!(TxnState::decode(&short).is_none(), "cut at {cut}");
        }
    }

    #[test]
    fn every_kind_of_state_round_trips_and_truncations_are_refused() {
        let txn = Version {
            ts: 77 << 16,
            node: NodeId(3),
        };
        round_trip(&TxnState::default());
        for intent in [
            Intent::Pending,
            Intent::Keep,
            Intent::Write {
                body: Body::Tombstone,
                expire_at: None,
            },
            Intent::Write {
                body: Body::Value {
                    ty: ValueType::String,
                    payload: Bytes::from_static(b"v"),
                },
                expire_at: Some(123),
            },
        ] {
            round_trip(&TxnState {
                lock: Some(Box::new(TxnLock {
                    txn,
                    primary: key(2, "{a}x"),
                    expires_at: 99,
                    intent,
                })),
                markers: vec![TxnMarker {
                    txn,
                    secondaries: vec![key(0, "{a}y"), key(5, "{a}z")],
                }],
            });
        }
    }
}

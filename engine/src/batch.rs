//! Atomic write batches. A batch's encoding is also the payload of one WAL record.
//!
//! ```text
//! batch := sequence:fixed64-LE count:fixed32-LE op{count}
//! op    := kind:u8 keyspace:u8 key:bytes [value:bytes]
//!          ; value for Put (the value) and RangeDelete (the exclusive end key)
//! bytes := length:varint data
//! ```
//! The i-th op gets sequence number `sequence + i`.

use crate::coding::{put_length_prefixed, Decoder};
use crate::key::{SeqNo, ValueKind};

const HEADER: usize = 12;

/// A keyspace (column family): an independent key space inside one Db. All keyspaces
/// share the WAL, so one batch may write several atomically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Keyspace(pub(crate) u8);

impl Keyspace {
    /// The keyspace every Db has: id 0, named "default".
    pub const DEFAULT: Keyspace = Keyspace(0);

    /// The on-disk id: the first byte of every stored key of this keyspace.
    pub fn id(self) -> u8 {
        self.0
    }
}

/// One decoded operation of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOp<'a> {
    /// Put, Delete or RangeDelete.
    pub kind: ValueKind,
    /// Target keyspace id.
    pub keyspace: u8,
    /// The key (the start key for RangeDelete), without keyspace prefix.
    pub key: &'a [u8],
    /// The value (the exclusive end key for RangeDelete; empty for Delete).
    pub value: &'a [u8],
}

/// A set of writes applied atomically, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteBatch {
    rep: Vec<u8>,
    count: u32,
}

impl Default for WriteBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        WriteBatch {
            rep: vec![0; HEADER],
            count: 0,
        }
    }

    /// Sets `key` to `value` in `ks`.
    pub fn put(&mut self, ks: Keyspace, key: &[u8], value: &[u8]) -> &mut Self {
        self.push(ValueKind::Put, ks, key, Some(value))
    }

    /// Deletes `key` from `ks`.
    pub fn delete(&mut self, ks: Keyspace, key: &[u8]) -> &mut Self {
        self.push(ValueKind::Delete, ks, key, None)
    }

    /// Deletes every key of `ks` in `[start, end)`, as of this op's sequence number, in
    /// O(1): later writes into the range are unaffected.
    pub fn delete_range(&mut self, ks: Keyspace, start: &[u8], end: &[u8]) -> &mut Self {
        self.push(ValueKind::RangeDelete, ks, start, Some(end))
    }

    fn push(
        &mut self,
        kind: ValueKind,
        ks: Keyspace,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> &mut Self {
        // Room for the whole op at once (kind, keyspace, two varint lengths of at most
        // five bytes, key, value): pushed piece by piece, a small batch grew its buffer
        // three or four times per op.
        self.rep
            .reserve(2 + 5 + key.len() + value.map_or(0, |v| 5 + v.len()));
        self.rep.push(kind as u8);
        self.rep.push(ks.0);
        put_length_prefixed(&mut self.rep, key);
        if let Some(v) = value {
            put_length_prefixed(&mut self.rep, v);
        }
        self.count += 1;
        self.rep[8..12].copy_from_slice(&self.count.to_le_bytes());
        self
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True if the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Encoded size in bytes.
    pub fn encoded_len(&self) -> usize {
        self.rep.len()
    }

    /// Appends all of `other`'s operations to this batch.
    pub fn append(&mut self, other: &WriteBatch) {
        self.rep.extend_from_slice(&other.rep[HEADER..]);
        self.count += other.count;
        self.rep[8..12].copy_from_slice(&self.count.to_le_bytes());
    }

    /// Stamps the first sequence number (done by the commit path).
    #[allow(dead_code)] // used by the commit path
    pub(crate) fn set_sequence(&mut self, seq: SeqNo) {
        self.rep[..8].copy_from_slice(&seq.to_le_bytes());
    }

    /// The first sequence number stamped on this batch.
    pub fn sequence(&self) -> SeqNo {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.rep[..8]);
        u64::from_le_bytes(b)
    }

    /// The encoded bytes (the WAL payload).
    pub fn encoded(&self) -> &[u8] {
        &self.rep
    }

    /// Decodes a WAL payload, checking its whole grammar; `Err` says what is wrong and at
    /// which byte of the payload.
    pub fn decode(payload: &[u8]) -> Result<WriteBatch, (usize, String)> {
        let batch = {
            let mut d = Decoder::new(payload);
            let _seq = d
                .fixed64()
                .ok_or((0, "batch header truncated".to_string()))?;
            let count = d
                .fixed32()
                .ok_or((8, "batch header truncated".to_string()))?;
            WriteBatch {
                rep: payload.to_vec(),
                count,
            }
        };
        let mut seen = 0u32;
        let mut iter = batch.ops_checked();
        for op in &mut iter {
            op?;
            seen += 1;
        }
        if seen != batch.count {
            return Err((
                payload.len(),
                format!("batch claims {} ops but holds {seen}", batch.count),
            ));
        }
        Ok(batch)
    }

    /// The operations in order. Panics never; a batch built by this type or accepted by
    /// `decode` always decodes.
    pub fn ops(&self) -> impl Iterator<Item = BatchOp<'_>> {
        self.ops_checked().map_while(|op| op.ok())
    }

    fn ops_checked(&self) -> OpIter<'_> {
        OpIter {
            dec: Decoder::new(&self.rep[HEADER..]),
        }
    }
}

struct OpIter<'a> {
    dec: Decoder<'a>,
}

impl<'a> Iterator for OpIter<'a> {
    type Item = Result<BatchOp<'a>, (usize, String)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.dec.is_empty() {
            return None;
        }
        let at = HEADER + self.dec.position();
        let bad = |what: &str| Some(Err((at, what.to_string())));
        let Some(kind_byte) = self.dec.u8() else {
            return bad("truncated op");
        };
        let Some(kind) = ValueKind::from_u8(kind_byte) else {
            return bad(&format!("unknown op kind {kind_byte}"));
        };
        let Some(keyspace) = self.dec.u8() else {
            return bad("truncated op");
        };
        let Some(key) = self.dec.length_prefixed() else {
            return bad("truncated key");
        };
        let value: &[u8] = if kind != ValueKind::Delete {
            match self.dec.length_prefixed() {
                Some(v) => v,
                None => return bad("truncated value"),
            }
        } else {
            &[]
        };
        Some(Ok(BatchOp {
            kind,
            keyspace,
            key,
            value,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        let mut b = WriteBatch::new();
        b.put(Keyspace::DEFAULT, b"k1", b"v1")
            .delete(Keyspace(3), b"k2")
            .put(Keyspace(1), b"", b"");
        b.set_sequence(77);
        let d = WriteBatch::decode(b.encoded()).unwrap();
        assert_eq!(d.sequence(), 77);
        let ops: Vec<_> = d.ops().collect();
        assert_eq!(ops.len(), 3);
        assert_eq!(ops[1].kind, ValueKind::Delete);
        assert_eq!((ops[1].keyspace, ops[1].key), (3, &b"k2"[..]));
        assert_eq!(ops[2].value, b"");
    }

    #[test]
    fn truncated_payload_is_rejected_with_offset() {
        let mut b = WriteBatch::new();
        b.put(Keyspace::DEFAULT, b"key", b"value");
        let enc = b.encoded();
        for cut in 0..enc.len() {
            assert!(WriteBatch::decode(&enc[..cut]).is_err(), "cut at {cut}");
        }
    }
}

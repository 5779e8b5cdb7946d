//! Idempotency records: the first reply to a write tagged with a request id, kept in the
//! engine keyspace `kvd-idempotency` and written in the same batch as the write itself, so
//! either both survive a crash or neither does.
//!
//! ```text
//! key    := request-id
//! record := created-ms:u64-BE record-op:u32-BE reply
//! reply  := tag:u8 body     ; tags below; versions are stored as batch indexes and
//!                           ; resolved with the record's own sequence - record-op
//! ```

use crate::protocol::{Reply, Version};
use bytes::Bytes;

const T_OK: u8 = 1;
const T_STATUS: u8 = 2;
const T_ERROR: u8 = 3;
const T_INT: u8 = 4;
const T_BULK: u8 = 5;
const T_NIL: u8 = 6;
const T_NILARRAY: u8 = 7;
const T_ARRAY: u8 = 8;
const T_MAP: u8 = 9;
const T_SET: u8 = 10;
const T_DOUBLE: u8 = 11;
const T_BOOL: u8 = 12;
const T_VERBATIM: u8 = 13;
const T_VERSION_COMMITTED: u8 = 14;
const T_VERSION_PENDING: u8 = 15;
const T_BIG_NUMBER: u8 = 16;

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

fn serialize(r: &Reply, out: &mut Vec<u8>) {
    match r {
        Reply::Ok => out.push(T_OK),
        Reply::Status(s) => {
            out.push(T_STATUS);
            put_bytes(out, s.as_bytes())
        }
        Reply::Error(s) => {
            out.push(T_ERROR);
            put_bytes(out, s.as_bytes())
        }
        Reply::Int(n) => {
            out.push(T_INT);
            out.extend_from_slice(&n.to_be_bytes())
        }
        Reply::Bulk(b) => {
            out.push(T_BULK);
            put_bytes(out, b)
        }
        Reply::Nil => out.push(T_NIL),
        Reply::NilArray => out.push(T_NILARRAY),
        // Pushes and frames only come from pub/sub commands; stored as an array (the
        // record format has no tag for them, and a replay of SUBSCRIBE is not meaningful).
        Reply::Array(items) | Reply::Set(items) | Reply::Push(items) | Reply::Frames(items) => {
            out.push(if matches!(r, Reply::Set(_)) {
                T_SET
            } else {
                T_ARRAY
            });
            out.extend_from_slice(&(items.len() as u32).to_be_bytes());
            items.iter().for_each(|i| serialize(i, out));
        }
        Reply::Map(pairs) => {
            out.push(T_MAP);
            out.extend_from_slice(&(pairs.len() as u32).to_be_bytes());
            for (k, v) in pairs {
                serialize(k, out);
                serialize(v, out);
            }
        }
        Reply::Double(d) => {
            out.push(T_DOUBLE);
            out.extend_from_slice(&d.to_bits().to_be_bytes())
        }
        Reply::Bool(b) => {
            out.push(T_BOOL);
            out.push(*b as u8)
        }
        Reply::Verbatim(s) => {
            out.push(T_VERBATIM);
            put_bytes(out, s.as_bytes())
        }
        Reply::BigNumber(s) => {
            out.push(T_BIG_NUMBER);
            put_bytes(out, s.as_bytes())
        }
        Reply::Version(Version::Committed(s)) => {
            out.push(T_VERSION_COMMITTED);
            out.extend_from_slice(&s.to_be_bytes())
        }
        Reply::Version(Version::Pending(i)) => {
            out.push(T_VERSION_PENDING);
            out.extend_from_slice(&(*i as u64).to_be_bytes())
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Option<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(u64::from_be_bytes(a))
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = self.u32()? as usize;
        self.take(n).map(|b| b.to_vec())
    }
    fn text(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?).ok()
    }
    fn reply(&mut self, first_seq: Option<u64>, depth: usize) -> Option<Reply> {
        if depth > 16 {
            return None;
        }
        Some(match self.u8()? {
            T_OK => Reply::Ok,
            T_STATUS => Reply::status(self.text()?),
            T_ERROR => Reply::error(self.text()?),
            T_INT => Reply::Int(self.u64()? as i64),
            T_BULK => Reply::bulk(Bytes::from(self.bytes()?)),
            T_NIL => Reply::Nil,
            T_NILARRAY => Reply::NilArray,
            t @ (T_ARRAY | T_SET) => {
                let n = self.u32()? as usize;
                let mut v = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    v.push(self.reply(first_seq, depth + 1)?);
                }
                if t == T_SET {
                    Reply::Set(v)
                } else {
                    Reply::Array(v)
                }
            }
            T_MAP => {
                let n = self.u32()? as usize;
                let mut v = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    v.push((
                        self.reply(first_seq, depth + 1)?,
                        self.reply(first_seq, depth + 1)?,
                    ));
                }
                Reply::Map(v)
            }
            T_DOUBLE => Reply::Double(f64::from_bits(self.u64()?)),
            T_BOOL => Reply::Bool(self.u8()? != 0),
            T_VERBATIM => Reply::Verbatim(self.text()?),
            T_BIG_NUMBER => Reply::BigNumber(self.text()?),
            T_VERSION_COMMITTED => Reply::Version(Version::Committed(self.u64()?)),
            T_VERSION_PENDING => {
                let i = self.u64()?;
                match first_seq {
                    Some(first) => Reply::Version(Version::Committed(first + i)),
                    None => Reply::Version(Version::Pending(i as usize)),
                }
            }
            _ => return None,
        })
    }
}

/// Encodes a record for a reply produced by a batch whose record op is `record_op`.
pub fn encode_record(created_ms: i64, record_op: usize, reply: &Reply) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&(created_ms.max(0) as u64).to_be_bytes());
    out.extend_from_slice(&(record_op as u32).to_be_bytes());
    serialize(reply, &mut out);
    out
}

/// Decodes a record: (created ms, reply). `record_version` is the record's own version:
/// committed (versions in the reply resolve against it) or still pending in the current
/// batch (they stay pending and resolve when it commits).
pub fn decode_record(record: &[u8], record_version: Version) -> Option<(i64, Reply)> {
    let mut r = Reader(record);
    let created = r.u64()? as i64;
    let op = r.u32()? as u64;
    let first = match record_version {
        Version::Committed(seq) => Some(seq.checked_sub(op)?),
        Version::Pending(_) => None,
    };
    let reply = r.reply(first, 0)?;
    Some((created, reply))
}

/// Encodes a reply alone (`reply` above, versions still pending): what a cluster keeps
/// in a key's request record (kv_cluster::request_record), where the version a pending
/// one resolves to is the record's `written-at`.
pub fn encode_reply(reply: &Reply) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    serialize(reply, &mut out);
    out
}

/// Decodes a reply made by [`encode_reply`]; its versions stay pending. `None` if the
/// bytes are not a whole reply.
pub fn decode_reply(bytes: &[u8]) -> Option<Reply> {
    let mut r = Reader(bytes);
    let reply = r.reply(None, 0)?;
    r.0.is_empty().then_some(reply)
}

/// Longest accepted `idempotency-window-ms`: ten years. Larger values would overflow the
/// millisecond arithmetic below and mean "forever" in practice, which the sweep cannot bound.
pub const MAX_WINDOW_MS: u64 = 10 * 365 * 24 * 3600 * 1000;

/// Whether a record created at `created_ms` still answers retries at `now_ms`.
pub fn is_live(created_ms: i64, window_ms: u64, now_ms: i64) -> bool {
    let window = window_ms.min(MAX_WINDOW_MS) as i64;
    created_ms.saturating_add(window) > now_ms
}

/// Creation time of an encoded record (for the compaction filter).
pub fn created_at(record: &[u8]) -> Option<i64> {
    Reader(record).u64().map(|c| c as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip_resolves_versions_against_its_own_sequence() {
        let reply = Reply::Array(vec![
            Reply::Version(Version::Pending(0)),
            Reply::bulk_from(b"v"),
            Reply::Map(vec![(Reply::status("a"), Reply::Double(1.5))]),
            Reply::Nil,
            Reply::error("ERR x"),
        ]);
        // Write at index 0, record at index 1; the batch starts at sequence 500.
        let rec = encode_record(1234, 1, &reply);
        let (created, back) = decode_record(&rec, Version::Committed(501)).unwrap();
        assert_eq!(created, 1234);
        let Reply::Array(items) = back else { panic!() };
        assert_eq!(items[0], Reply::Version(Version::Committed(500)));
        assert_eq!(items[1], Reply::bulk_from(b"v"));
        assert_eq!(created_at(&rec), Some(1234));
        assert!(decode_record(&rec[..rec.len() - 1], Version::Committed(501)).is_none());
    }

    #[test]
    fn a_reply_alone_round_trips_with_its_versions_pending() {
        let reply = Reply::Array(vec![Reply::Version(Version::Pending(0)), Reply::Nil]);
        let bytes = encode_reply(&reply);
        assert_eq!(decode_reply(&bytes), Some(reply));
        assert_eq!(decode_reply(&bytes[..bytes.len() - 1]), None);
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode_reply(&longer), None, "trailing bytes");
    }

    #[test]
    fn window_arithmetic_cannot_overflow() {
        assert!(is_live(1000, 10, 1009));
        assert!(!is_live(1000, 10, 1010));
        // A huge window saturates instead of wrapping to a negative window (which made
        // every record look expired) or overflowing the addition.
        assert!(is_live(i64::MAX - 5, u64::MAX, i64::MAX - 1));
        assert!(is_live(1000, u64::MAX, 1000 + MAX_WINDOW_MS as i64 - 1));
        assert!(!is_live(1000, u64::MAX, 1000 + MAX_WINDOW_MS as i64));
    }
}

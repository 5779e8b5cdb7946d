//! Request records: the remembered replies of idempotent requests (IDEMPOTENT, HTTP
//! `Idempotency-Key`) of one key, carried inside the key's replicated record (spec:
//! docs/format/cluster-storage.md, "Request records"). Because they travel with the
//! record, whichever replicas or coordinator handle a retry see them: the retry's
//! consensus round reads the record, finds the request id and answers the stored reply
//! without applying the command again (docs/consistency.md, "Idempotent retries").
//!
//! ```text
//! requests := count:u8 request*              ; oldest first
//! request  := id-len:u16-BE id expire-at-ms:u64-BE written-at:16 reply-len:u32-BE reply
//! ```

use crate::version::{Version, VERSION_LEN};
use bytes::Bytes;

/// Most request records one key keeps; the oldest is forgotten first. Every write, read
/// and repair of the key copies its whole record, so the records must stay few; 16 still
/// covers the retries of many clients writing one key at once. A retry of a request
/// forgotten this way runs again (docs/consistency.md says so).
pub const MAX_REQUESTS_PER_KEY: usize = 16;

/// Most bytes of stored replies one key keeps (the newest request is kept whatever its
/// size): replies such as GETSET's old value can be as large as the value, and 16 of
/// them would multiply the size of every copy of the record.
pub const MAX_REPLY_BYTES_PER_KEY: usize = 64 * 1024;

/// One remembered request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// The client's request id.
    pub id: Bytes,
    /// Unix ms from which it no longer answers retries (and is dropped on rewrite).
    pub expire_at: i64,
    /// Version of the write that recorded it: versions in the reply are this one.
    pub written_at: Version,
    /// The first reply, in the server's reply encoding (opaque here).
    pub reply: Bytes,
}

/// A request a consensus round records with its write; the round's ballot becomes its
/// `written_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRequest {
    /// The client's request id.
    pub id: Bytes,
    /// Unix ms from which it no longer answers retries.
    pub expire_at: i64,
    /// The reply to remember.
    pub reply: Bytes,
}

impl RequestRecord {
    /// Whether it still answers retries at `now_ms`.
    pub fn is_live(&self, now_ms: i64) -> bool {
        self.expire_at > now_ms
    }
}

/// The live record of request `id` among `requests` at `now_ms`.
pub fn find<'a>(
    requests: &'a [RequestRecord],
    id: &[u8],
    now_ms: i64,
) -> Option<&'a RequestRecord> {
    requests
        .iter()
        .rev()
        .find(|r| r.id == id && r.is_live(now_ms))
}

/// The requests a key's next record, written at `version`, carries: the live ones of
/// the record it replaces (oldest first), then `new`; past [`MAX_REQUESTS_PER_KEY`] or
/// [`MAX_REPLY_BYTES_PER_KEY`] the oldest are forgotten. Expiry is judged at the
/// version's own time, so every replica storing the record holds the same list.
pub fn carried(
    previous: &[RequestRecord],
    new: Option<NewRequest>,
    version: Version,
) -> Vec<RequestRecord> {
    let now = i64::try_from(version.millis()).unwrap_or(i64::MAX);
    let new = new.map(|n| RequestRecord {
        id: n.id,
        expire_at: n.expire_at,
        written_at: version,
        reply: n.reply,
    });
    let replaced = new.as_ref().map(|n| n.id.clone());
    let mut kept: Vec<RequestRecord> = previous
        .iter()
        .filter(|r| r.is_live(now) && replaced.as_ref() != Some(&r.id))
        .cloned()
        .chain(new)
        .collect();
    let over = kept.len().saturating_sub(MAX_REQUESTS_PER_KEY);
    kept.drain(..over);
    let mut bytes: usize = kept.iter().map(|r| r.reply.len()).sum();
    while bytes > MAX_REPLY_BYTES_PER_KEY && kept.len() > 1 {
        bytes -= kept.remove(0).reply.len();
    }
    kept
}

/// Appends `requests` in the format above.
pub fn encode(requests: &[RequestRecord], out: &mut Vec<u8>) {
    // carried() keeps at most MAX_REQUESTS_PER_KEY (< 256) records.
    let count = requests.len().min(usize::from(u8::MAX));
    out.push(count as u8);
    for r in &requests[..count] {
        // Request ids are at most 256 bytes (IDEMPOTENT refuses longer ones).
        let id = &r.id[..r.id.len().min(usize::from(u16::MAX))];
        out.extend_from_slice(&(id.len() as u16).to_be_bytes());
        out.extend_from_slice(id);
        out.extend_from_slice(&(r.expire_at.max(0) as u64).to_be_bytes());
        out.extend_from_slice(&r.written_at.encode());
        out.extend_from_slice(&(r.reply.len() as u32).to_be_bytes());
        out.extend_from_slice(&r.reply);
    }
}

/// Decodes requests from the front of `b`: the records and how many bytes they took;
/// `None` if the bytes are not requests.
pub fn decode(b: &Bytes) -> Option<(Vec<RequestRecord>, usize)> {
    let mut at: usize = 0;
    let mut take = |n: usize| -> Option<Bytes> {
        let end = at.checked_add(n).filter(|&e| e <= b.len())?;
        let s = b.slice(at..end);
        at = end;
        Some(s)
    };
    let count = take(1)?[0];
    let mut requests = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let id_len = u16::from_be_bytes(take(2)?[..].try_into().ok()?);
        let id = take(usize::from(id_len))?;
        let expire_at = u64::from_be_bytes(take(8)?[..].try_into().ok()?);
        let written_at = Version::decode(&take(VERSION_LEN)?)?;
        let reply_len = u32::from_be_bytes(take(4)?[..].try_into().ok()?);
        let reply = take(reply_len as usize)?;
        requests.push(RequestRecord {
            id,
            expire_at: expire_at.min(i64::MAX as u64) as i64,
            written_at,
            reply,
        });
    }
    Some((requests, at))
}

#[cfg(test)]
mod tests;

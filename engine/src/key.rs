//! Internal keys: how the engine orders every version of every key.
//!
//! ```text
//! internal_key := user_key trailer
//! trailer      := fixed64-LE( sequence << 8 | kind )
//! ```
//!
//! Ordering is user key ascending (bytewise), then trailer *descending*, so the newest
//! version of a key comes first and a seek to `(key, snapshot_seq)` lands on the newest
//! version that snapshot may see. This is LevelDB's `InternalKeyComparator`.
//!
//! The user key seen here already carries the keyspace prefix (one byte, see
//! [`crate::keyspace`]); the ordering does not care.

use std::cmp::Ordering;

/// A global, monotonic, never reused sequence number. Every write in a batch gets its own.
pub type SeqNo = u64;

/// Largest sequence number that fits beside the kind byte in the trailer.
pub const MAX_SEQUENCE: SeqNo = (1 << 56) - 1;

/// Length of the trailer appended to every user key.
pub const TRAILER_LEN: usize = 8;

/// What an entry does to its key. The values are on disk: never change or reuse one.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ValueKind {
    /// A tombstone: the key has no value as of this sequence.
    Delete = 0,
    /// A value.
    Put = 1,
    /// A range tombstone: the entry's user key is the inclusive start and its value is
    /// the exclusive end of a deleted range.
    RangeDelete = 2,
}

/// Kind used in lookup keys. Larger than every real kind so that, at an equal sequence,
/// the lookup key sorts before (is "newer" than) every real entry.
pub const KIND_FOR_SEEK: u8 = 0xff;

impl ValueKind {
    /// Decodes an on-disk kind byte.
    pub fn from_u8(b: u8) -> Option<ValueKind> {
        match b {
            0 => Some(ValueKind::Delete),
            1 => Some(ValueKind::Put),
            2 => Some(ValueKind::RangeDelete),
            _ => None,
        }
    }
}

/// Packs a sequence and a kind byte into a trailer value.
pub fn pack_trailer(seq: SeqNo, kind: u8) -> u64 {
    debug_assert!(seq <= MAX_SEQUENCE);
    (seq << 8) | kind as u64
}

/// Appends `user_key` and its trailer to `out`.
pub fn append_internal_key(out: &mut Vec<u8>, user_key: &[u8], seq: SeqNo, kind: u8) {
    out.extend_from_slice(user_key);
    out.extend_from_slice(&pack_trailer(seq, kind).to_le_bytes());
}

/// Builds an internal key.
pub fn make_internal_key(user_key: &[u8], seq: SeqNo, kind: ValueKind) -> Vec<u8> {
    let mut out = Vec::with_capacity(user_key.len() + TRAILER_LEN);
    append_internal_key(&mut out, user_key, seq, kind as u8);
    out
}

/// The key to seek to for the newest version of `user_key` visible at `seq`.
pub fn lookup_key(user_key: &[u8], seq: SeqNo) -> Vec<u8> {
    let mut out = Vec::with_capacity(user_key.len() + TRAILER_LEN);
    append_internal_key(&mut out, user_key, seq, KIND_FOR_SEEK);
    out
}

/// A borrowed, decoded internal key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedKey<'a> {
    /// The user key (with its keyspace prefix).
    pub user_key: &'a [u8],
    /// Sequence number of the write.
    pub seq: SeqNo,
    /// Kind byte, raw (see [`ValueKind`]).
    pub kind: u8,
}

impl<'a> ParsedKey<'a> {
    /// Decodes an internal key; `None` if it is shorter than a trailer.
    pub fn parse(internal_key: &'a [u8]) -> Option<ParsedKey<'a>> {
        let split = internal_key.len().checked_sub(TRAILER_LEN)?;
        let (user_key, trailer) = internal_key.split_at(split);
        let packed = u64::from_le_bytes(trailer.try_into().ok()?);
        Some(ParsedKey {
            user_key,
            seq: packed >> 8,
            kind: (packed & 0xff) as u8,
        })
    }

    /// The kind, if it is one the engine knows.
    pub fn value_kind(&self) -> Option<ValueKind> {
        ValueKind::from_u8(self.kind)
    }
}

/// User-key part of an internal key (the whole slice if it is too short to have a trailer,
/// so comparisons on malformed keys stay total instead of panicking).
pub fn user_key(internal_key: &[u8]) -> &[u8] {
    &internal_key[..internal_key.len().saturating_sub(TRAILER_LEN)]
}

/// The packed trailer of an internal key (0 if it is too short to have one, matching
/// [`user_key`]).
pub(crate) fn trailer(internal_key: &[u8]) -> u64 {
    let n = internal_key.len();
    if n < TRAILER_LEN {
        return 0;
    }
    let mut t = [0u8; TRAILER_LEN];
    t.copy_from_slice(&internal_key[n - TRAILER_LEN..]);
    u64::from_le_bytes(t)
}

/// Total order of internal keys: user key ascending, then trailer descending.
pub fn compare_internal_keys(a: &[u8], b: &[u8]) -> Ordering {
    user_key(a)
        .cmp(user_key(b))
        .then_with(|| trailer(b).cmp(&trailer(a)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_versions_sort_first() {
        let old = make_internal_key(b"k", 5, ValueKind::Put);
        let new = make_internal_key(b"k", 9, ValueKind::Delete);
        assert_eq!(compare_internal_keys(&new, &old), Ordering::Less);
        let lk = lookup_key(b"k", 9);
        assert_eq!(compare_internal_keys(&lk, &new), Ordering::Less);
        let lk7 = lookup_key(b"k", 7);
        assert_eq!(compare_internal_keys(&lk7, &new), Ordering::Greater);
        assert_eq!(compare_internal_keys(&lk7, &old), Ordering::Less);
    }

    #[test]
    fn user_key_order_dominates() {
        let a = make_internal_key(b"a", 1, ValueKind::Put);
        let b = make_internal_key(b"b", 100, ValueKind::Put);
        assert_eq!(compare_internal_keys(&a, &b), Ordering::Less);
        let p = ParsedKey::parse(&b).expect("parse");
        assert_eq!(
            (p.user_key, p.seq, p.value_kind()),
            (&b"b"[..], 100, Some(ValueKind::Put))
        );
    }
}

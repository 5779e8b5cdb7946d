//! How Redis keys and values are laid out in the engine (spec: docs/server.md, "Keyspace
//! encoding").
//!
//! ```text
//! data key   := namespace:u32-BE redis-key            ; engine keyspace "default"
//! data value := type:u8 expire-at-ms:u64-BE payload   ; expire-at 0 = no expiry
//! ```
//! A logical database (SELECT n) maps to a namespace id; FLUSHDB gives the database a
//! fresh, never used namespace (O(1)) and the compaction filter drops the old one's keys.
//! The version of a key is the engine sequence number of its last write.

use bytes::Bytes;

/// On-disk type tags. Explicit values, never reused.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// A Redis string.
    String = 1,
    /// Reserved for collections (Kvrocks-style metadata records).
    List = 2,
    /// Reserved.
    Hash = 3,
    /// Reserved.
    Set = 4,
    /// Reserved.
    ZSet = 5,
}

impl ValueType {
    /// Decodes a tag.
    pub fn from_u8(b: u8) -> Option<ValueType> {
        Some(match b {
            1 => ValueType::String,
            2 => ValueType::List,
            3 => ValueType::Hash,
            4 => ValueType::Set,
            5 => ValueType::ZSet,
            _ => return None,
        })
    }

    /// The name TYPE and SCAN TYPE use.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::List => "list",
            ValueType::Hash => "hash",
            ValueType::Set => "set",
            ValueType::ZSet => "zset",
        }
    }
}

/// Bytes before the payload in a data value.
pub const VALUE_HEADER: usize = 9;
/// Bytes of namespace before the Redis key in a data key.
pub const NAMESPACE_LEN: usize = 4;

/// Engine key of `key` in namespace `ns`.
pub fn data_key(ns: u32, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(NAMESPACE_LEN + key.len());
    k.extend_from_slice(&ns.to_be_bytes());
    k.extend_from_slice(key);
    k
}

/// Splits an engine data key into namespace and Redis key.
pub fn split_data_key(k: &[u8]) -> Option<(u32, &[u8])> {
    if k.len() < NAMESPACE_LEN {
        return None;
    }
    let mut ns = [0u8; 4];
    ns.copy_from_slice(&k[..4]);
    Some((u32::from_be_bytes(ns), &k[4..]))
}

/// Encodes a data value. `expire_at` is absolute Unix time in milliseconds.
pub fn encode_value(ty: ValueType, expire_at: Option<i64>, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(VALUE_HEADER + payload.len());
    v.push(ty as u8);
    v.extend_from_slice(&(expire_at.unwrap_or(0).max(0) as u64).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// A decoded data value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Type tag.
    pub ty: ValueType,
    /// Absolute expiry in Unix milliseconds.
    pub expire_at: Option<i64>,
    /// The payload (for strings: the value).
    pub payload: Bytes,
}

/// Decodes a data value; `None` if it is not one (corruption).
pub fn decode_value(v: &Bytes) -> Option<Decoded> {
    if v.len() < VALUE_HEADER {
        return None;
    }
    let ty = ValueType::from_u8(v[0])?;
    let exp = expire_at_of(v);
    Some(Decoded {
        ty,
        expire_at: exp,
        payload: v.slice(VALUE_HEADER..),
    })
}

/// The expiry field of an encoded value without decoding the rest.
pub fn expire_at_of(v: &[u8]) -> Option<i64> {
    if v.len() < VALUE_HEADER {
        return None;
    }
    let mut e = [0u8; 8];
    e.copy_from_slice(&v[1..9]);
    match u64::from_be_bytes(e) {
        0 => None,
        ms => Some(ms.min(i64::MAX as u64) as i64),
    }
}

/// The smallest engine key after every key with prefix `p` (None if unbounded).
pub fn prefix_end(p: &[u8]) -> Option<Vec<u8>> {
    let mut end = p.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_round_trip_with_and_without_expiry() {
        for exp in [None, Some(1_700_000_000_123)] {
            let v = Bytes::from(encode_value(ValueType::String, exp, b"hello"));
            let d = decode_value(&v).unwrap();
            assert_eq!(
                (d.ty, d.expire_at, &d.payload[..]),
                (ValueType::String, exp, &b"hello"[..])
            );
        }
        assert!(decode_value(&Bytes::from_static(b"\x01abc")).is_none());
        assert!(decode_value(&Bytes::from_static(b"\x09\0\0\0\0\0\0\0\0")).is_none());
    }

    #[test]
    fn data_keys_sort_by_namespace_then_key() {
        let a = data_key(1, b"zzz");
        let b = data_key(2, b"");
        assert!(a < b);
        assert_eq!(split_data_key(&a), Some((1, &b"zzz"[..])));
        assert_eq!(prefix_end(&[0, 0, 0, 1]), Some(vec![0, 0, 0, 2]));
        assert_eq!(prefix_end(&[0, 0xff]), Some(vec![1]));
        assert_eq!(prefix_end(&[0xff]), None);
    }
}

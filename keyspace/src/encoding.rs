//! How Redis values are laid out in the engine (spec: docs/format/keyspace.md). The data
//! key of a Redis key is in data_key.rs.
//!
//! ```text
//! data value := type:u8 expire-at-ms:u64-BE payload   ; expire-at 0 = no expiry
//! ```
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
}

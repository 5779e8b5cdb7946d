//! The hint store's on-disk layout (spec: docs/cluster-replication.md, "Hinted
//! handoff").
//!
//! ```text
//! keyspace `hints`
//! key    := target:u64-BE seq:u64-BE          (seq: one counter for all targets)
//! value  := format:u8 (=1) stored-at-ms:u64-BE db:u32-BE key-len:u32-BE key record
//! record := crate::Record::encode()
//! ```
//! Keys group a target's hints in the order they were stored, so replay reads them
//! oldest first with one prefix scan.

use crate::replica_api::{ItemKey, WriteItem};
use crate::{NodeId, Record};
use bytes::Bytes;

const FORMAT: u8 = 1;
/// Bytes of a hint key.
pub(crate) const KEY_LEN: usize = 16;
const VALUE_HEADER: usize = 1 + 8 + 4 + 4;

pub(crate) fn hint_key(target: NodeId, seq: u64) -> [u8; KEY_LEN] {
    let mut k = [0u8; KEY_LEN];
    k[..8].copy_from_slice(&target.0.to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

pub(crate) fn split_hint_key(k: &[u8]) -> Option<(NodeId, u64)> {
    let target = u64::from_be_bytes(k.get(..8)?.try_into().ok()?);
    let seq = u64::from_be_bytes(k.get(8..KEY_LEN)?.try_into().ok()?);
    (k.len() == KEY_LEN).then_some((NodeId(target), seq))
}

/// Encodes a hint's value.
pub fn encode_hint(stored_at_ms: u64, item: &WriteItem) -> Vec<u8> {
    let record = item.record.encode();
    let mut v = Vec::with_capacity(VALUE_HEADER + item.key.key.len() + record.len());
    v.push(FORMAT);
    v.extend_from_slice(&stored_at_ms.to_be_bytes());
    v.extend_from_slice(&item.key.db.to_be_bytes());
    v.extend_from_slice(&(item.key.key.len() as u32).to_be_bytes());
    v.extend_from_slice(&item.key.key);
    v.extend_from_slice(&record);
    v
}

/// Decodes a hint's value into (stored-at ms, write); `None` if damaged.
pub fn decode_hint(v: &Bytes) -> Option<(u64, WriteItem)> {
    if v.len() < VALUE_HEADER || v[0] != FORMAT {
        return None;
    }
    let stored_at_ms = u64::from_be_bytes(v[1..9].try_into().ok()?);
    let db = u32::from_be_bytes(v[9..13].try_into().ok()?);
    let key_len = u32::from_be_bytes(v[13..17].try_into().ok()?) as usize;
    let key_end = VALUE_HEADER
        .checked_add(key_len)
        .filter(|&e| e <= v.len())?;
    let record = Record::decode(&v.slice(key_end..))?;
    let key = ItemKey {
        db,
        key: v.slice(VALUE_HEADER..key_end),
    };
    Some((stored_at_ms, WriteItem { key, record }))
}

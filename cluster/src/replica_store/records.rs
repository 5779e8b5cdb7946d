//! Reading and decoding the `replicated` keyspace: engine key = `data_key(db, key)`,
//! value = `Record::encode()` (docs/format/cluster-storage.md).

use super::error::StoreError;
use crate::replica_api::ItemKey;
use crate::Record;
use bytes::Bytes;
use kv_engine::{Db, Keyspace};
use kv_keyspace::data_key::{data_key, split_data_key, ScanPosition, DATA_KEY_PREFIX};
use kv_keyspace::PARTITIONS;

/// The engine key of `key` in the `replicated` keyspace.
pub fn engine_key(key: &ItemKey) -> Vec<u8> {
    data_key(key.db, &key.key)
}

/// The record held for `key`, if any.
pub fn read_record(db: &Db, data: Keyspace, key: &ItemKey) -> Result<Option<Record>, StoreError> {
    read_record_at(db, data, key, &engine_key(key))
}

/// [`read_record`] for a caller that built `key`'s engine key already (a write uses it
/// three times: a slot CRC, a hash and an allocation each).
pub fn read_record_at(
    db: &Db,
    data: Keyspace,
    key: &ItemKey,
    engine_key: &[u8],
) -> Result<Option<Record>, StoreError> {
    match db.get(data, engine_key)? {
        None => Ok(None),
        Some(v) => decode_value(key, &v.value).map(Some),
    }
}

/// Decodes the stored value of `key`.
pub fn decode_value(key: &ItemKey, value: &Bytes) -> Result<Record, StoreError> {
    Record::decode(value).ok_or_else(|| StoreError::corrupt_record(key, "does not decode"))
}

/// The item key and scan position of an engine key of the `replicated` keyspace.
pub fn decode_engine_key(engine_key: &Bytes) -> Result<(ItemKey, ScanPosition), StoreError> {
    let split = split_data_key(engine_key).ok_or_else(|| StoreError::Corrupt {
        key: format!("engine key \"{}\"", engine_key.escape_ascii()),
        what: "replicated key (slot or hash does not match the key)".into(),
    })?;
    let key = ItemKey {
        db: split.ns,
        key: engine_key.slice(DATA_KEY_PREFIX..),
    };
    Ok((key, split.position()))
}

/// Decodes one engine entry of the `replicated` keyspace.
pub fn decode_entry(engine_key: &Bytes, value: &Bytes) -> Result<(ItemKey, Record), StoreError> {
    let (key, _) = decode_engine_key(engine_key)?;
    let record = decode_value(&key, value)?;
    Ok((key, record))
}

/// Refuses partition numbers that do not exist (they may come from a peer).
pub fn check_partition(partition: u16) -> Result<(), StoreError> {
    if partition < PARTITIONS {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "partition {partition} does not exist (there are {PARTITIONS})"
        )))
    }
}

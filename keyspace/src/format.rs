//! The keyspace format record: which data-key layout a directory holds, so that a kvd
//! never reads a layout it does not know (spec: docs/format/keyspace.md).
//!
//! ```text
//! record (engine keyspace "kvd-meta", key "keyspace-format") := version:u32-BE
//! ```
//! No record means format 1 (the namespace-first layout of legacy.rs, written by kvd
//! before the record existed); format 2 is the slot-first layout of data_key.rs.

use kv_engine::{Db, Error, Keyspace};

/// Key of the format record in the meta keyspace.
pub const META_FORMAT: &[u8] = b"keyspace-format";
/// The format this code writes and reads.
pub const FORMAT_VERSION: u32 = 2;
/// The format of a directory without a format record.
pub const LEGACY_FORMAT: u32 = 1;

/// The encoded format record of `version`.
pub fn encode_format(version: u32) -> [u8; 4] {
    version.to_be_bytes()
}

/// The format of the directory `db` (meta keyspace `meta`): [`LEGACY_FORMAT`] without a
/// record. A malformed record is corruption; a format newer than [`FORMAT_VERSION`] is
/// refused, since reading a layout this code does not know could misread or drop data.
pub fn stored_format(db: &Db, meta: Keyspace) -> kv_engine::Result<u32> {
    let Some(record) = db.get(meta, META_FORMAT)? else {
        return Ok(LEGACY_FORMAT);
    };
    let malformed = |why: String| {
        Error::corruption(
            db.path(),
            0,
            format!(
                "kvd keyspace format record (keyspace kvd-meta, key \"keyspace-format\") \
                 is malformed: {why}"
            ),
        )
    };
    let version = match <[u8; 4]>::try_from(&record.value[..]) {
        Ok(b) => u32::from_be_bytes(b),
        Err(_) => {
            let len = record.value.len();
            return Err(malformed(format!("{len} bytes, expected 4")));
        }
    };
    if version < LEGACY_FORMAT {
        return Err(malformed(format!("version {version}")));
    }
    if version > FORMAT_VERSION {
        return Err(Error::InvalidArgument(format!(
            "{} holds keyspace format {version}, which this kvd does not know (it reads \
             formats {LEGACY_FORMAT} to {FORMAT_VERSION}); it was written by a newer kvd: \
             run that version, or restore a backup made with this one",
            db.path().display()
        )));
    }
    Ok(version)
}

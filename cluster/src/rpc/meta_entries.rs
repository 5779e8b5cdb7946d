//! Cluster metadata entries <-> protobuf (docs/cluster-protocol.md, `SyncMetadata`).
//! A malformed entry from a peer is an error naming what is wrong, never a panic; the
//! store checks the size limits.

use super::convert::BadMessage;
use super::pb;
use crate::metadata::MetaEntry;
use crate::version::{Version, VERSION_LEN};

pub(crate) fn to_pb(entries: Vec<MetaEntry>) -> Vec<pb::MetaEntry> {
    entries
        .into_iter()
        .map(|e| pb::MetaEntry {
            name: e.name,
            version: bytes::Bytes::copy_from_slice(&e.version.encode()),
            value: e.value,
        })
        .collect()
}

pub(crate) fn from_pb(entries: Vec<pb::MetaEntry>) -> Result<Vec<MetaEntry>, BadMessage> {
    entries
        .into_iter()
        .map(|e| {
            let version = (e.version.len() == VERSION_LEN)
                .then(|| Version::decode(&e.version))
                .flatten()
                .ok_or_else(|| format!("metadata entry \"{}\": malformed version", e.name))?;
            Ok(MetaEntry {
                name: e.name,
                version,
                value: e.value,
            })
        })
        .collect()
}

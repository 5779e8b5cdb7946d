//! Protobuf messages <-> the crate's Rust types. Everything a peer sends is checked
//! here: a malformed message is an error naming the field, never a panic.

use super::handler::{Hello, LayoutBlob, PeerAddr};
use super::pb;
use crate::replica_api::{
    Hash16, ItemKey, MerkleLeaf, PrepareOutcome, ScanPage, WriteItem, WriteOutcome,
};
use crate::{NodeId, Record, Version};
use bytes::Bytes;
use kv_keyspace::data_key::ScanPosition;
use kv_keyspace::slot::SLOTS;

/// Why a message could not be converted.
pub(crate) type BadMessage = String;

pub(crate) fn key_to_pb(k: ItemKey) -> pb::ItemKey {
    pb::ItemKey {
        db: k.db,
        key: k.key,
    }
}

pub(crate) fn key_from_pb(k: Option<pb::ItemKey>) -> Result<ItemKey, BadMessage> {
    let k = k.ok_or("missing item key")?;
    Ok(ItemKey {
        db: k.db,
        key: k.key,
    })
}

pub(crate) fn record_from_pb(b: &Bytes) -> Result<Record, BadMessage> {
    Record::decode(b).ok_or_else(|| "malformed record".to_string())
}

pub(crate) fn record_to_pb(r: &Record) -> Bytes {
    Bytes::from(r.encode())
}

pub(crate) fn write_item_to_pb(w: WriteItem) -> pb::WriteItem {
    pb::WriteItem {
        record: record_to_pb(&w.record),
        key: Some(key_to_pb(w.key)),
    }
}

pub(crate) fn write_item_from_pb(w: pb::WriteItem) -> Result<WriteItem, BadMessage> {
    Ok(WriteItem {
        key: key_from_pb(w.key)?,
        record: record_from_pb(&w.record)?,
    })
}

/// An outcome on the wire. `StoredNotCounted` must only reach a sender that takes it
/// (rpc/not_counted.rs): an older build reads the message as applied.
pub(crate) fn outcome_to_pb(o: WriteOutcome) -> pb::WriteOutcome {
    match o {
        WriteOutcome::Applied => pb::WriteOutcome::default(),
        WriteOutcome::Stale { current } => pb::WriteOutcome {
            stale: true,
            stale_current: version_to_pb(current),
            ..Default::default()
        },
        WriteOutcome::StoredNotCounted => pb::WriteOutcome {
            stored_not_counted: true,
            ..Default::default()
        },
    }
}

pub(crate) fn outcome_from_pb(o: pb::WriteOutcome) -> Result<WriteOutcome, BadMessage> {
    match (o.stale, o.stored_not_counted) {
        (false, false) => Ok(WriteOutcome::Applied),
        (false, true) => Ok(WriteOutcome::StoredNotCounted),
        (true, false) => {
            let current = version_from_pb(&o.stale_current, "stale version")?;
            Ok(WriteOutcome::Stale { current })
        }
        (true, true) => Err("write outcome both stale and stored-not-counted".into()),
    }
}

pub(crate) fn version_to_pb(v: Version) -> Bytes {
    Bytes::copy_from_slice(&v.encode())
}

/// A version of exactly [`crate::version::VERSION_LEN`] bytes; `what` names the field.
pub(crate) fn version_from_pb(b: &Bytes, what: &str) -> Result<Version, BadMessage> {
    (b.len() == crate::version::VERSION_LEN)
        .then(|| Version::decode(b))
        .flatten()
        .ok_or_else(|| format!("malformed {what}"))
}

pub(crate) fn prepare_to_pb(o: PrepareOutcome) -> pb::PrepareResponse {
    match o {
        PrepareOutcome::Promised {
            record,
            promised_before,
        } => pb::PrepareResponse {
            record: Some(maybe_record_to_pb(record)),
            promised_before: version_to_pb(promised_before),
            ..Default::default()
        },
        PrepareOutcome::Rejected { seen } => pb::PrepareResponse {
            rejected: true,
            seen: version_to_pb(seen),
            ..Default::default()
        },
    }
}

pub(crate) fn prepare_from_pb(o: pb::PrepareResponse) -> Result<PrepareOutcome, BadMessage> {
    if o.rejected {
        let seen = version_from_pb(&o.seen, "rejecting ballot")?;
        return Ok(PrepareOutcome::Rejected { seen });
    }
    let record = maybe_record_from_pb(o.record.ok_or("promise without its record")?)?;
    let promised_before = version_from_pb(&o.promised_before, "previous promise")?;
    Ok(PrepareOutcome::Promised {
        record,
        promised_before,
    })
}

pub(crate) fn maybe_record_to_pb(r: Option<Record>) -> pb::MaybeRecord {
    match r {
        Some(r) => pb::MaybeRecord {
            present: true,
            record: record_to_pb(&r),
        },
        None => pb::MaybeRecord::default(),
    }
}

pub(crate) fn maybe_record_from_pb(r: pb::MaybeRecord) -> Result<Option<Record>, BadMessage> {
    r.present.then(|| record_from_pb(&r.record)).transpose()
}

pub(crate) fn hash_from_pb(b: &Bytes) -> Result<Hash16, BadMessage> {
    b.as_ref()
        .try_into()
        .map_err(|_| format!("hash of {} bytes, not 16", b.len()))
}

pub(crate) fn hash_to_pb(h: &Hash16) -> Bytes {
    Bytes::copy_from_slice(h)
}

pub(crate) fn leaf_to_pb(l: MerkleLeaf) -> pb::MerkleLeaf {
    pb::MerkleLeaf {
        hash: hash_to_pb(&l.hash),
        key: Some(key_to_pb(l.key)),
    }
}

pub(crate) fn leaf_from_pb(l: pb::MerkleLeaf) -> Result<MerkleLeaf, BadMessage> {
    Ok(MerkleLeaf {
        key: key_from_pb(l.key)?,
        hash: hash_from_pb(&l.hash)?,
    })
}

pub(crate) fn partition_from_pb(p: u32) -> Result<u16, BadMessage> {
    u16::try_from(p)
        .ok()
        .filter(|p| *p < kv_keyspace::slot::PARTITIONS)
        .ok_or_else(|| format!("partition {p} out of range"))
}

pub(crate) fn bucket_from_pb(b: u32) -> Result<u8, BadMessage> {
    u8::try_from(b).map_err(|_| format!("bucket {b} out of range"))
}

pub(crate) fn position_to_pb(p: ScanPosition) -> pb::ScanPosition {
    pb::ScanPosition {
        slot: p.slot as u32,
        hash: p.hash,
    }
}

pub(crate) fn position_from_pb(p: pb::ScanPosition) -> Result<ScanPosition, BadMessage> {
    let slot = u16::try_from(p.slot)
        .ok()
        .filter(|s| *s < SLOTS)
        .ok_or_else(|| format!("slot {} out of range", p.slot))?;
    Ok(ScanPosition { slot, hash: p.hash })
}

pub(crate) fn page_to_pb(p: ScanPage) -> pb::ScanResponse {
    pb::ScanResponse {
        items: p
            .items
            .into_iter()
            .map(|(key, r)| pb::ScanItem {
                key,
                record: record_to_pb(&r),
            })
            .collect(),
        next: p.next.map(position_to_pb),
    }
}

pub(crate) fn page_from_pb(p: pb::ScanResponse) -> Result<ScanPage, BadMessage> {
    Ok(ScanPage {
        items: p
            .items
            .into_iter()
            .map(|i| Ok((i.key, record_from_pb(&i.record)?)))
            .collect::<Result<_, BadMessage>>()?,
        next: p.next.map(position_from_pb).transpose()?,
    })
}

pub(crate) fn hello_to_pb(h: Hello) -> pb::HelloRequest {
    pb::HelloRequest {
        node_id: h.node.0,
        cluster_id: h.cluster_id.unwrap_or_default(),
        resp_addr: h.resp_addr,
        bus_addr: h.bus_addr,
        layout: h.layout.unwrap_or_default(),
        peers: h
            .peers
            .into_iter()
            .map(|p| pb::PeerInfo {
                node_id: p.node.0,
                bus_addr: p.bus_addr,
            })
            .collect(),
        bus_version: super::bus_version::BUS_VERSION,
        min_bus_version: super::bus_version::MIN_BUS_VERSION,
    }
}

pub(crate) fn hello_from_pb(h: pb::HelloRequest) -> Hello {
    Hello {
        node: NodeId(h.node_id),
        cluster_id: (!h.cluster_id.is_empty()).then_some(h.cluster_id),
        resp_addr: h.resp_addr,
        bus_addr: h.bus_addr,
        layout: (!h.layout.is_empty()).then_some(h.layout),
        peers: h
            .peers
            .into_iter()
            .map(|p| PeerAddr {
                node: NodeId(p.node_id),
                bus_addr: p.bus_addr,
            })
            .collect(),
    }
}

pub(crate) fn layout_to_pb(l: Option<LayoutBlob>) -> pb::LayoutMessage {
    match l {
        Some(l) => pb::LayoutMessage {
            version: l.version,
            layout: l.json,
        },
        None => pb::LayoutMessage::default(),
    }
}

pub(crate) fn layout_from_pb(l: pb::LayoutMessage) -> Option<LayoutBlob> {
    (!l.layout.is_empty()).then_some(LayoutBlob {
        version: l.version,
        json: l.layout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_fields_are_errors() {
        assert!(record_from_pb(&Bytes::from_static(b"\x09junk")).is_err());
        assert!(hash_from_pb(&Bytes::from_static(b"short")).is_err());
        assert!(partition_from_pb(256).is_err());
        assert!(partition_from_pb(255).is_ok());
        assert!(bucket_from_pb(256).is_err());
        assert!(position_from_pb(pb::ScanPosition {
            slot: 16384,
            hash: 0
        })
        .is_err());
        assert!(key_from_pb(None).is_err());
        let bad_stale = pb::WriteOutcome {
            stale: true,
            stale_current: Bytes::from_static(b"1"),
            ..Default::default()
        };
        assert!(outcome_from_pb(bad_stale).is_err());
        assert!(maybe_record_from_pb(pb::MaybeRecord {
            present: true,
            record: Bytes::new()
        })
        .is_err());
    }

    #[test]
    fn outcomes_round_trip() {
        let current = Version {
            ts: 99 << 16,
            node: NodeId(3),
        };
        for o in [
            WriteOutcome::Applied,
            WriteOutcome::Stale { current },
            WriteOutcome::StoredNotCounted,
        ] {
            assert_eq!(outcome_from_pb(outcome_to_pb(o)), Ok(o));
        }
    }
}

//! Turning a single-node data directory into the first node of a cluster without dump
//! and load (issue 8): the first time a node starts on a directory that holds
//! single-node keys (engine keyspace `default`, layout docs/format/keyspace.md), every
//! live key becomes a replicated record on this node, stamped with a fresh version of
//! the node's clock and keeping its absolute expiry. Anti-entropy then copies the records
//! to the other replicas of their partitions. The single-node keys stay where they are
//! (a cluster node never reads them), so going back to a single kvd remains possible; a
//! marker file makes the conversion happen once. A crash before the marker is written
//! makes the next start convert again, which only restamps the same values. A key whose
//! value is above the ring's record bound (crate::record_size) stops the conversion and
//! the start with an error that names it: the operator deletes or shrinks it on a single
//! kvd and starts again (the records written before it are restamped, as after a crash).

use crate::hlc::Hlc;
use crate::record::{Body, Record};
use crate::record_size::{record_bytes, MAX_RECORD_BYTES};
use crate::replica_api::{ItemKey, WriteItem};
use crate::replica_store::ReplicaStore;
use bytes::Bytes;
use kv_engine::{Db, Keyspace};
use kv_keyspace::data_key::{split_data_key, ScanPosition};
use kv_keyspace::encoding::decode_value;
use kv_keyspace::namespace_iter::NamespaceIter;
use kv_keyspace::namespaces::{Namespaces, META_KEYSPACE, META_NAMESPACES};
use std::path::Path;

/// Up to 64 bytes of `key` (invalid UTF-8 replaced), for an error message.
fn printable(key: &[u8]) -> String {
    let shown = String::from_utf8_lossy(&key[..key.len().min(64)]).into_owned();
    if key.len() > 64 {
        format!("{shown}...")
    } else {
        shown
    }
}

/// Name of the marker file in `<dir>/cluster/`.
pub const MARKER: &str = "converted-from-single-node";
/// Records written per engine batch.
const BATCH: usize = 512;

/// What a conversion did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Conversion {
    /// Live keys turned into replicated records.
    pub keys: u64,
    /// Expired keys left behind.
    pub expired: u64,
}

/// Converts the single-node keys of `db` (with `databases` logical databases) once (see
/// the module comment); `None` when it was done before.
pub fn convert_once(
    db: &Db,
    store: &ReplicaStore,
    hlc: &Hlc,
    cluster_dir: &Path,
    databases: usize,
    now_ms: i64,
) -> Result<Option<Conversion>, String> {
    let marker = cluster_dir.join(MARKER);
    if marker.exists() {
        return Ok(None);
    }
    let meta = db.keyspace(META_KEYSPACE).map_err(|e| e.to_string())?;
    // A directory whose databases were never flushed has no map record: database i is
    // namespace i (the Store's own rule).
    let map = match db.get(meta, META_NAMESPACES).map_err(|e| e.to_string())? {
        Some(v) => Namespaces::decode(&v.value).ok_or("damaged namespace map")?,
        None => Namespaces::fresh(databases),
    };
    let mut done = Conversion::default();
    let mut batch = Vec::with_capacity(BATCH);
    for (index, &ns) in map.map.iter().enumerate() {
        let entries = NamespaceIter::new(db, Keyspace::DEFAULT, ns, ScanPosition::START, None)
            .map_err(|e| e.to_string())?;
        for entry in entries {
            let entry = entry.map_err(|e| e.to_string())?;
            let (Some(key), Some(value)) = (split_data_key(&entry.key), decode_value(&entry.value))
            else {
                return Err(format!("damaged single-node key in database {index}"));
            };
            if value.expire_at.is_some_and(|at| at <= now_ms) {
                done.expired += 1;
                continue;
            }
            let version = hlc.next().map_err(|e| e.to_string())?;
            let item = WriteItem {
                key: ItemKey {
                    db: index as u32,
                    key: Bytes::copy_from_slice(key.key),
                },
                record: Record {
                    version,
                    expire_at: value.expire_at,
                    body: Body::Value {
                        ty: value.ty,
                        payload: value.payload,
                    },
                    requests: Vec::new(),
                    txn: Default::default(),
                },
            };
            // A single kvd keeps Redis's 512 MB; a record above the ring's bound could
            // never reach another replica (docs/cluster.md, "Value size").
            let bytes = record_bytes(&item.key.key, &item.record);
            if bytes > MAX_RECORD_BYTES {
                return Err(format!(
                    "key {:?} of database {index} holds {bytes} bytes (key and value), above \
                     the {MAX_RECORD_BYTES} a record may hold on a ring, which no other \
                     replica could receive (docs/cluster.md, \"Value size\"). Delete or \
                     shrink it with kvd started on this directory without the cluster flags, \
                     then start the cluster node again",
                    printable(key.key)
                ));
            }
            batch.push(item);
            if batch.len() == BATCH {
                store.apply(&batch).map_err(|e| e.to_string())?;
                done.keys += batch.len() as u64;
                batch.clear();
            }
        }
    }
    if !batch.is_empty() {
        store.apply(&batch).map_err(|e| e.to_string())?;
        done.keys += batch.len() as u64;
    }
    db.sync_wal().map_err(|e| e.to_string())?;
    crate::atomic_file::write_atomically(
        &marker,
        format!("{} keys converted\n", done.keys).as_bytes(),
    )
    .map_err(|e| e.to_string())?;
    Ok(Some(done))
}

//! The wipe rule. A node keeps, inside its engine (so every checkpoint and backup carries
//! it), the time its last anti-entropy round with every reachable replica began and
//! ended without a failure: its *synced-at* stamp. At start, a node whose stamp is older
//! than [`ClusterConfig::stale_after`] (the grace minus how late a tombstone can first
//! reach a replica) refuses to join: other replicas may have collected tombstones of
//! deletes it never saw, so the values it still holds for those keys would come back.
//! That happens when a node was away too long or its directory was restored from an old
//! backup. `--cluster-wipe-stale-data yes` deletes its replica data (its identity,
//! layout, clock floor and hints stay) and lets anti-entropy refill it.
//!
//! ```text
//! keyspace node_state:  "synced-at" -> unix-ms:u64-BE
//! ```
//! (docs/format/cluster-storage.md)

use crate::config::ClusterConfig;
use crate::replica_store::{MERKLE_KEYSPACE, REPLICATED_KEYSPACE};
use kv_engine::{Db, WriteBatch};

/// Engine keyspace of this node's own bookkeeping.
pub const NODE_STATE_KEYSPACE: &str = "node_state";
const SYNCED_AT: &[u8] = b"synced-at";
/// Above every key of the replicated keyspace (slot-first keys begin 0x00-0x3F) and of
/// the Merkle keyspace ('B', 'L', 'T'): one range delete empties each.
const PAST_EVERY_KEY: &[u8] = &[0xFF];

/// What the start-up check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartCheck {
    /// No stamp yet (a new node, or data from before stamps existed): one is written now.
    NoStamp,
    /// In sync recently enough.
    Recent {
        /// Age of the stamp.
        age_ms: u64,
    },
    /// Stale, and wiped as the operator asked.
    Wiped {
        /// Age of the stamp.
        age_ms: u64,
    },
}

/// The stamp held, if any.
pub fn synced_at(db: &Db) -> Result<Option<u64>, String> {
    let ks = db
        .keyspace(NODE_STATE_KEYSPACE)
        .map_err(|e| e.to_string())?;
    let Some(v) = db.get(ks, SYNCED_AT).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let bytes: [u8; 8] = v.value.as_ref().try_into().map_err(|_| {
        format!(
            "the {NODE_STATE_KEYSPACE} record \"synced-at\" is damaged ({} bytes, not 8)",
            v.value.len()
        )
    })?;
    Ok(Some(u64::from_be_bytes(bytes)))
}

/// Records that this node was in sync with its replicas at `at_ms` (never moves back).
pub fn record_synced_at(db: &Db, at_ms: u64) -> Result<(), String> {
    if synced_at(db)?.is_some_and(|held| held >= at_ms) {
        return Ok(());
    }
    let ks = db
        .keyspace(NODE_STATE_KEYSPACE)
        .map_err(|e| e.to_string())?;
    let mut batch = WriteBatch::new();
    batch.put(ks, SYNCED_AT, &at_ms.to_be_bytes());
    db.write(batch).map_err(|e| e.to_string())?;
    Ok(())
}

/// The start-up check; runs before the replica store opens. An error is the message
/// kvd stops with.
pub fn check_at_start(db: &Db, config: &ClusterConfig, now_ms: u64) -> Result<StartCheck, String> {
    let Some(stamp) = synced_at(db)? else {
        record_synced_at(db, now_ms)?;
        return Ok(StartCheck::NoStamp);
    };
    let age_ms = now_ms.saturating_sub(stamp);
    let limit = config.stale_after();
    if u128::from(age_ms) <= limit.as_millis() {
        return Ok(StartCheck::Recent { age_ms });
    }
    if !config.wipe_stale_data {
        return Err(format!(
            "this node's data was last in sync with its replicas {} ago, longer than the \
             {} that --cluster-tombstone-grace-ms allows (the grace minus the hint window, \
             request timeout and clock offset): other replicas may have collected the \
             tombstones of keys deleted since, and this node would bring those keys back. \
             It was away too long, or its directory was restored from an old backup. To \
             rejoin, start it once with --cluster-wipe-stale-data yes: that deletes this \
             node's replica data (its identity and layout in the cluster/ directory stay, so \
             it rejoins as the same node) and lets anti-entropy copy everything back from \
             the other replicas",
            human(age_ms),
            human(limit.as_millis() as u64)
        ));
    }
    wipe_replica_data(db)?;
    record_synced_at(db, now_ms)?;
    Ok(StartCheck::Wiped { age_ms })
}

/// Deletes every replicated record and the Merkle trees over them, in one batch.
fn wipe_replica_data(db: &Db) -> Result<(), String> {
    let mut batch = WriteBatch::new();
    for name in [REPLICATED_KEYSPACE, MERKLE_KEYSPACE] {
        let ks = db.keyspace(name).map_err(|e| e.to_string())?;
        batch.delete_range(ks, &[], PAST_EVERY_KEY);
    }
    db.write(batch).map_err(|e| e.to_string())?;
    Ok(())
}

/// `3d 4h`, `2h 5m`, `12s` style.
fn human(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{}.{:03}s", s, ms % 1000),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replica_api::{ItemKey, WriteItem};
    use crate::replica_store::ReplicaStore;
    use crate::{NodeId, Record, Version};
    use bytes::Bytes;
    use std::sync::Arc;

    const DAY_MS: u64 = 24 * 3600 * 1000;

    fn config(wipe: bool) -> ClusterConfig {
        ClusterConfig {
            wipe_stale_data: wipe,
            ..ClusterConfig::default()
        }
    }

    /// A Db holding one replicated record, its tree folded.
    fn db_with_a_record(dir: &std::path::Path) -> Db {
        let db = Db::open(dir, kv_engine::Options::default()).unwrap();
        let store = ReplicaStore::open(Arc::new(db.clone())).unwrap();
        let item = WriteItem {
            key: ItemKey {
                db: 0,
                key: Bytes::from_static(b"k"),
            },
            record: Record::string(
                Version {
                    ts: 1 << 16,
                    node: NodeId(1),
                },
                Bytes::from_static(b"v"),
                None,
            ),
        };
        store.apply(&[item]).unwrap();
        store.merkle().catch_up().unwrap();
        db
    }

    #[test]
    fn a_node_without_a_stamp_gets_one_and_a_recent_one_passes() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_with_a_record(dir.path());
        let now = 100 * DAY_MS;
        assert_eq!(
            check_at_start(&db, &config(false), now),
            Ok(StartCheck::NoStamp)
        );
        assert_eq!(synced_at(&db), Ok(Some(now)));
        let later = now + config(false).stale_after().as_millis() as u64;
        assert_eq!(
            check_at_start(&db, &config(false), later),
            Ok(StartCheck::Recent {
                age_ms: later - now
            })
        );
        record_synced_at(&db, now - 5).unwrap();
        assert_eq!(synced_at(&db), Ok(Some(now)), "the stamp never moves back");
    }

    #[test]
    fn a_stale_node_is_refused_and_wiped_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_with_a_record(dir.path());
        record_synced_at(&db, DAY_MS).unwrap();
        let now = DAY_MS + config(false).stale_after().as_millis() as u64 + 1;
        let err = check_at_start(&db, &config(false), now).unwrap_err();
        assert!(err.contains("--cluster-wipe-stale-data yes"), "{err}");
        assert!(err.contains("old backup"), "{err}");
        let data = db.keyspace(REPLICATED_KEYSPACE).unwrap();
        assert_eq!(db.iter(data, None, None, None).unwrap().count(), 1);

        let wiped = check_at_start(&db, &config(true), now);
        assert_eq!(
            wiped,
            Ok(StartCheck::Wiped {
                age_ms: now - DAY_MS
            })
        );
        assert_eq!(db.iter(data, None, None, None).unwrap().count(), 0);
        let store = ReplicaStore::open(Arc::new(db.clone())).unwrap();
        let empty_dir = tempfile::tempdir().unwrap();
        let empty_db = Db::open(empty_dir.path(), kv_engine::Options::default()).unwrap();
        let empty = ReplicaStore::open(Arc::new(empty_db)).unwrap();
        assert_eq!(
            store.merkle().roots(&[0, 1, 2]).unwrap(),
            empty.merkle().roots(&[0, 1, 2]).unwrap()
        );
        assert_eq!(
            check_at_start(&db, &config(false), now),
            Ok(StartCheck::Recent { age_ms: 0 })
        );
    }
}

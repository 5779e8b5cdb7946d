//! Streaming between two real replica stores: everything of the partition arrives
//! exactly as the source holds it, and nothing of another partition does; from a source
//! without whole-partition scans, database by database.

use super::*;
use crate::local_replica::LocalReplica;
use crate::replica_store::ReplicaStore;
use crate::{NodeId, Version};
use kv_engine::Db;
use kv_keyspace::slot::key_partition;
use std::sync::Arc;

fn store(dir: &std::path::Path) -> Arc<ReplicaStore> {
    let db = Arc::new(Db::open(dir, kv_engine::Options::default()).unwrap());
    Arc::new(ReplicaStore::open(db).unwrap())
}

fn v(ts: u64) -> Version {
    Version {
        ts: ts << 16,
        node: NodeId(1),
    }
}

fn item(db: u32, key: &str, record: Record) -> WriteItem {
    WriteItem {
        key: ItemKey {
            db,
            key: Bytes::from(key.to_string()),
        },
        record,
    }
}

/// Every record of `partition` in `store`, in engine order.
fn records_of(store: &ReplicaStore, partition: u16) -> Vec<(ItemKey, Record)> {
    store
        .partition_records(partition)
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

#[tokio::test]
async fn a_stream_carries_values_tombstones_expiries_and_consensus_records() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (source, dest) = (store(a.path()), store(b.path()));
    // Keys of one hash tag share a slot, so the partition spans several pages of each
    // database; the other keys land elsewhere and must stay behind.
    let mut items = Vec::new();
    for i in 0..9_000u64 {
        let key = format!("{{t}}k{i}");
        let record = match i % 4 {
            0 => Record::tombstone(v(i + 1)),
            1 => Record::string(
                v(i + 1),
                Bytes::from(format!("value{i}")),
                Some(4_000_000_000_000),
            ),
            _ => Record::string(v(i + 1), Bytes::from(format!("value{i}")), None),
        };
        items.push(item((i % 3) as u32, &key, record));
        items.push(item(
            0,
            &format!("elsewhere{i}"),
            Record::string(v(1), Bytes::from("x"), None),
        ));
    }
    source.apply(&items).unwrap();
    let p = key_partition(b"{t}k0");
    // A value chosen by a consensus round (prepare, then accept at the ballot), and the
    // layout register's database.
    let ballot = v(1_000_000);
    let accepted = item(
        0,
        "{t}k0",
        Record::string(ballot, Bytes::from("by consensus"), None),
    );
    source.prepare(&accepted.key, ballot).unwrap();
    assert_eq!(
        source.accept(&accepted).unwrap(),
        crate::replica_api::WriteOutcome::Applied
    );
    let register_key = (0..)
        .map(|i| format!("reg{i}"))
        .find(|k| key_partition(k.as_bytes()) == p)
        .unwrap();
    source
        .apply(&[item(
            u32::MAX,
            &register_key,
            Record::string(v(7), Bytes::from("layout"), None),
        )])
        .unwrap();
    // The new replica already took a newer write of one key during the transition.
    let newer_key = records_of(&source, p)
        .into_iter()
        .find(|(k, _)| k.db == 1)
        .unwrap()
        .0;
    let newer = Record::string(v(2_000_000), Bytes::from("newer"), None);
    dest.apply(&[WriteItem {
        key: newer_key.clone(),
        record: newer.clone(),
    }])
    .unwrap();

    let (src, dst) = (
        LocalReplica::new(source.clone()),
        LocalReplica::new(dest.clone()),
    );
    let mut pages = Vec::new();
    let done = stream_partition(
        p,
        &[0, 1, 2, u32::MAX],
        &src,
        &dst,
        &ByteBudget::new(0),
        |s| pages.push(s),
    )
    .await
    .unwrap();

    let mut want = records_of(&source, p);
    for (k, r) in &mut want {
        if *k == newer_key {
            *r = newer.clone();
        }
    }
    assert_eq!(records_of(&dest, p), want);
    assert!(want
        .iter()
        .any(|(k, r)| k.key == "{t}k0" && r.version == ballot));
    assert!(want.iter().any(|(k, _)| k.db == u32::MAX));
    assert!(want.iter().any(|(_, r)| r.body == crate::Body::Tombstone));
    assert!(want.iter().any(|(_, r)| r.expire_at.is_some()));
    // Pages span databases: as many as the partition's records fill, however many
    // databases hold them (and none for the empty ones).
    assert_eq!(pages.len(), want.len().div_ceil(STREAM_PAGE), "{pages:?}");
    // Progress adds up to the total, which matches what the source measures.
    assert_eq!(pages.iter().map(|s| s.keys).sum::<u64>(), done.keys);
    assert_eq!(done.keys, want.len() as u64);
    assert_eq!(done.bytes, source.partition_size(p).unwrap().bytes);
    // Nothing of another partition travelled.
    let others: usize = (0..256u16)
        .filter(|&q| q != p)
        .map(|q| records_of(&dest, q).len())
        .sum();
    assert_eq!(others, 0);
}

#[tokio::test]
async fn a_stream_spends_its_bytes_from_the_rate_budget() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (source, dest) = (store(a.path()), store(b.path()));
    let items: Vec<WriteItem> = (0..3000)
        .map(|i| {
            item(
                0,
                &format!("{{t}}k{i}"),
                Record::string(v(1), Bytes::from(vec![b'x'; 100]), None),
            )
        })
        .collect();
    source.apply(&items).unwrap();
    let p = key_partition(b"{t}k0");
    // The budget's rate itself is ByteBudget's (hint_replay.rs); what matters here is
    // that every byte streamed is spent from it, page by page.
    let budget = ByteBudget::new(1 << 40);
    let (src, dst) = (
        LocalReplica::new(source.clone()),
        LocalReplica::new(dest.clone()),
    );
    let done = stream_partition(p, &[0], &src, &dst, &budget, |_| {})
        .await
        .unwrap();
    assert_eq!(done.keys, 3000);
    assert_eq!(budget.spent(), done.bytes);
    assert_eq!(done.bytes, source.partition_size(p).unwrap().bytes);
}

#[tokio::test]
async fn a_source_without_partition_scans_is_streamed_database_by_database() {
    // FakeReplica has only the per-database Scan, as a peer built before ScanPartition.
    let source = crate::fake_replica::FakeReplica::new();
    let b = tempfile::tempdir().unwrap();
    let dest = store(b.path());
    let items: Vec<WriteItem> = (0..5000u64)
        .map(|i| {
            let record = Record::string(v(i + 1), Bytes::from(format!("value{i}")), None);
            item((i % 3) as u32, &format!("{{t}}k{i}"), record)
        })
        .collect();
    source.write(items).await.unwrap();
    let p = key_partition(b"{t}k0");
    let dst = LocalReplica::new(dest.clone());
    let mut pages = 0;
    let done = stream_partition(p, &[0, 1, 2], &*source, &dst, &ByteBudget::new(0), |_| {
        pages += 1
    })
    .await
    .unwrap();
    assert_eq!(done.keys, 5000);
    assert_eq!(records_of(&dest, p).len(), 5000);
    // Each database's 1667 or so records in one page of its own.
    assert_eq!(pages, 3);
}

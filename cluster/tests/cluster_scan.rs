//! Cluster SCAN keeps Redis's guarantee with a stateless cursor: every key present for
//! the whole scan is returned, even when each replica misses some keys (W = 2 of N = 3,
//! R = 2) and keys are written and deleted between pages.

mod support;

use bytes::Bytes;
use kv_cluster::partition_set::PartitionSet;
use kv_cluster::quorum::{ClusterError, Consistency};
use kv_cluster::replica_api::ItemKey;
use kv_cluster::{NodeId, Record, Version};
use kv_keyspace::data_key::ScanPosition;
use kv_keyspace::slot::{key_partition, PARTITIONS, SLOTS_PER_PARTITION};
use proptest::prelude::*;
use std::collections::HashSet;
use support::{config, Ring};

const NOW_MS: i64 = 1_000_000;

/// Writes `record` to the two replicas other than `skip` (a W = 2 write).
fn write_two(ring: &Ring, skip: usize, key: &str, record: Record) {
    let k = support::key(key);
    for (i, f) in ring.fakes.iter().enumerate() {
        if i != skip % 3 {
            f.put_raw(&k, record.clone());
        }
    }
}

fn version(ts: &mut u64) -> Version {
    *ts += 1;
    Version {
        ts: *ts,
        node: NodeId(1),
    }
}

fn value(ts: &mut u64, expire_at: Option<i64>) -> Record {
    Record::string(version(ts), Bytes::from_static(b"v"), expire_at)
}

/// Stable keys, half crowded into one slot (a hash tag) so pages cut inside it.
fn stable_key(i: usize) -> String {
    if i & 1 == 0 {
        format!("{{crowd}}s{i}")
    } else {
        format!("s{i}")
    }
}

fn run_scan(skips: Vec<usize>, count: usize, churn: Vec<usize>) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ring = Ring::new(3);
    let c = ring.coordinator(config(5_000));
    let mut ts = 0;
    let mut skip = skips.into_iter().cycle();
    let stable: Vec<String> = (0..40).map(stable_key).collect();
    for k in &stable {
        write_two(&ring, skip.next().unwrap_or(0), k, value(&mut ts, None));
    }
    // Deleted or expired before the scan starts: never returned. A stale value stays
    // on the replica the tombstone missed.
    let mut gone = Vec::new();
    for i in 0..10 {
        let k = format!("{{crowd}}gone{i}");
        let s = skip.next().unwrap_or(0);
        ring.fakes[s % 3].put_raw(&support::key(&k), value(&mut ts, None));
        write_two(&ring, s, &k, Record::tombstone(version(&mut ts)));
        let e = format!("expired{i}");
        write_two(&ring, s + 1, &e, value(&mut ts, Some(NOW_MS - 1)));
        gone.extend([k, e]);
    }
    // Present at the start, deleted during the scan: may or may not be returned.
    let doomed: Vec<String> = (0..10).map(|i| format!("{{crowd}}doomed{i}")).collect();
    for k in &doomed {
        write_two(&ring, skip.next().unwrap_or(0), k, value(&mut ts, None));
    }

    let mut seen = Vec::new();
    let mut cursor = 0;
    let mut page = 0;
    loop {
        let (next, keys) = rt
            .block_on(c.scan(
                &PartitionSet::ALL,
                0,
                cursor,
                count,
                NOW_MS,
                Consistency::Quorum,
            ))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        seen.extend(
            keys.into_iter()
                .map(|k| String::from_utf8(k.to_vec()).unwrap()),
        );
        if next == 0 {
            break;
        }
        cursor = next;
        // Between pages, other coordinators delete and create keys.
        let s = churn.get(page % churn.len().max(1)).copied().unwrap_or(0);
        if let Some(k) = doomed.get(page) {
            write_two(&ring, s, k, Record::tombstone(version(&mut ts)));
        }
        write_two(
            &ring,
            s + 1,
            &format!("{{crowd}}new{page}"),
            value(&mut ts, None),
        );
        page += 1;
        prop_assert!(page < 10_000, "the scan must end");
    }

    let unique: HashSet<&String> = seen.iter().collect();
    prop_assert_eq!(unique.len(), seen.len(), "no key is returned twice");
    for k in &stable {
        prop_assert!(unique.contains(k), "stable key {} missed", k);
    }
    for k in &gone {
        prop_assert!(!unique.contains(k), "deleted or expired key {} returned", k);
    }
    for k in &unique {
        let known = stable.contains(k) || doomed.contains(k) || k.starts_with("{crowd}new");
        prop_assert!(known, "unknown key {}", k);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn every_key_present_for_the_whole_scan_is_returned(
        skips in proptest::collection::vec(0usize..3, 1..20),
        count in 1usize..12,
        churn in proptest::collection::vec(0usize..3, 1..8),
    ) {
        run_scan(skips, count, churn)?;
    }
}

#[tokio::test]
async fn other_databases_are_not_scanned_and_bad_cursors_are_refused() {
    let ring = Ring::new(3);
    let c = ring.coordinator(config(5_000));
    let mut ts = 0;
    for f in &ring.fakes {
        f.put_raw(
            &ItemKey {
                db: 1,
                key: Bytes::from_static(b"other"),
            },
            value(&mut ts, None),
        );
    }
    let (next, keys) = c
        .scan(&PartitionSet::ALL, 0, 0, 100, NOW_MS, Consistency::Quorum)
        .await
        .unwrap();
    assert!(keys.is_empty());
    // 16 empty partitions a call at most: the cursor moves on without a key.
    assert_ne!(next, 0);
    let mut all = Vec::new();
    let mut cursor = 0;
    loop {
        let (next, keys) = c
            .scan(
                &PartitionSet::ALL,
                1,
                cursor,
                100,
                NOW_MS,
                Consistency::Quorum,
            )
            .await
            .unwrap();
        all.extend(keys);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert_eq!(all, vec![Bytes::from_static(b"other")]);
    assert_eq!(
        c.scan(
            &PartitionSet::ALL,
            0,
            u64::MAX,
            10,
            NOW_MS,
            Consistency::Quorum
        )
        .await,
        Err(ClusterError::InvalidCursor)
    );
}

#[tokio::test]
async fn dbsize_counts_every_partition_exactly_and_samples_approximately() {
    let ring = Ring::new(3);
    let c = ring.coordinator(config(5_000));
    let mut ts = 0;
    for i in 0..300 {
        write_two(&ring, i, &format!("key{i}"), value(&mut ts, None));
    }
    write_two(&ring, 0, "deleted", Record::tombstone(version(&mut ts)));
    let exact = c
        .dbsize_estimate(0, 256, NOW_MS, Consistency::Quorum)
        .await
        .unwrap();
    assert_eq!(exact, 300);
    let sampled = c
        .dbsize_estimate(0, 64, NOW_MS, Consistency::Quorum)
        .await
        .unwrap();
    // A quarter of the partitions, scaled by four.
    assert_eq!(sampled % 4, 0);
    assert!(sampled > 0);
}

/// Every key of `scope`, scanned page by page.
async fn scan_all_within(
    c: &kv_cluster::coordinator::Coordinator,
    scope: &PartitionSet,
    count: usize,
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor = 0;
    loop {
        let (next, keys) = c
            .scan(scope, 0, cursor, count, NOW_MS, Consistency::Quorum)
            .await
            .unwrap();
        seen.extend(keys.iter().map(|k| String::from_utf8_lossy(k).into_owned()));
        if next == 0 {
            return seen;
        }
        cursor = next;
    }
}

#[tokio::test]
async fn scans_of_disjoint_partition_sets_return_each_key_once_between_them() {
    let ring = Ring::new(3);
    let c = ring.coordinator(config(5_000));
    let mut ts = 0;
    let all: Vec<String> = (0..300).map(|i| format!("key{i}")).collect();
    for (i, k) in all.iter().enumerate() {
        write_two(&ring, i, k, value(&mut ts, None));
    }
    // Three interleaved scopes, as three nodes in compatibility mode advertise them.
    let scopes: Vec<PartitionSet> = (0..3u16)
        .map(|n| (0..PARTITIONS).filter(|p| p % 3 == n).collect())
        .collect();
    let mut union = Vec::new();
    for (n, scope) in scopes.iter().enumerate() {
        let seen = scan_all_within(&c, scope, 7).await;
        for k in &seen {
            assert_eq!(
                key_partition(k.as_bytes()) % 3,
                n as u16,
                "{k} is outside scope {n}"
            );
        }
        union.extend(seen);
    }
    union.sort();
    let mut expected = all.clone();
    expected.sort();
    assert_eq!(union, expected, "each key exactly once over the scopes");
    assert!(scan_all_within(&c, &PartitionSet::NONE, 7).await.is_empty());
    // A cursor inside a partition outside the scope continues at the scope's next one.
    let outside = ScanPosition {
        slot: SLOTS_PER_PARTITION, // partition 1, outside scope 0
        hash: 0,
    };
    let (_, keys) = c
        .scan(
            &scopes[0],
            0,
            outside.cursor(),
            1000,
            NOW_MS,
            Consistency::Quorum,
        )
        .await
        .unwrap();
    assert!(keys
        .iter()
        .all(|k| key_partition(k).is_multiple_of(3) && key_partition(k) >= 3));
}

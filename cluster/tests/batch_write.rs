//! Several keys written in one round (coordinator/batch_write.rs): one request per
//! replica carries all of its keys, each key keeps its own version, tally and outcome,
//! a key that meets a newer version is written again alone, and a replica that misses
//! the round gets a hint for every key it missed.

mod support;

use kv_cluster::fake_replica::Fault;
use kv_cluster::quorum::{ClusterError, Consistency};
use kv_cluster::{Record, Version};
use std::sync::Arc;
use support::{config, key, record, string, Ring};

fn writes(keys: &[&str]) -> Vec<kv_cluster::coordinator::KeyWrite> {
    keys.iter().map(|k| (key(k), string(k), None)).collect()
}

#[tokio::test]
async fn each_replica_gets_one_request_for_all_keys_and_each_key_its_own_version() {
    let ring = Ring::new(3);
    let c = ring.coordinator(config(5_000));
    let keys = ["a", "b", "c", "d", "e", "f", "g", "h"];
    let results = c.put_batch(writes(&keys), Consistency::All).await;
    let versions: Vec<Version> = results.into_iter().map(|r| r.unwrap()).collect();
    for fake in &ring.fakes {
        assert_eq!(fake.writes_served(), 1, "one request per replica");
        for (k, v) in keys.iter().zip(&versions) {
            assert_eq!(fake.get(&key(k)).map(|r| r.version), Some(*v), "key {k}");
        }
    }
    let mut distinct = versions.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), keys.len(), "every key has its own version");
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]),
        "versions follow the order of the writes"
    );
}

#[tokio::test]
async fn a_key_that_meets_a_newer_version_is_written_again_alone() {
    let ring = Ring::new(3);
    let c = ring.coordinator(config(5_000));
    // Replica 2 holds "b" at a version from a clock 1000 s ahead of the coordinator's.
    let ahead: Record = record(2_000_000 << 16, "theirs");
    ring.fakes[1].put_raw(&key("b"), ahead.clone());
    let results = c
        .put_batch(writes(&["a", "b", "c"]), Consistency::Quorum)
        .await;
    let b = results[1]
        .clone()
        .expect("b is written again with a newer version");
    assert!(b > ahead.version, "{b:?} must be past {:?}", ahead.version);
    assert_eq!(ring.fakes[1].get(&key("b")).map(|r| r.version), Some(b));
    assert!(results[0].is_ok() && results[2].is_ok());
    assert!(
        results[0].as_ref().unwrap() < &b,
        "a kept its first version"
    );
    assert_eq!(c.stats().stale_retries, 1);
    // The first round (one request) and b's retry alone (one more).
    assert_eq!(ring.fakes[1].writes_served(), 2);
}

#[tokio::test]
async fn a_replica_that_misses_the_round_gets_a_hint_for_each_key() {
    let ring = Ring::new(3);
    ring.fakes[2].set_fault(Fault::Down);
    let c = ring.coordinator(config(5_000));
    let results = c
        .put_batch(writes(&["a", "b", "c", "d"]), Consistency::Quorum)
        .await;
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    ring.wait_hints(4).await;
    assert_eq!(ring.hints.targets(), vec![ring.nodes[2]]);
}

#[tokio::test]
async fn each_key_fails_on_its_own_quorum() {
    let ring = Ring::new(3);
    ring.fakes[1].set_fault(Fault::BlackHole);
    ring.fakes[2].set_fault(Fault::BlackHole);
    let c = ring.coordinator(config(200));
    let results = c.put_batch(writes(&["a", "b"]), Consistency::Quorum).await;
    for r in &results {
        assert_eq!(
            r,
            &Err(ClusterError::Timeout {
                acked: 1,
                needed: 2
            })
        );
    }
    // At ONE the same round succeeds on the coordinator's own copy.
    let results = c.put_batch(writes(&["a", "b"]), Consistency::One).await;
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
}

/// Three of four nodes per partition, starting at a node that moves with the
/// partition: each replica of a round holds only some of its keys.
struct ThreeOfFour;

impl kv_cluster::coordinator::Placement for ThreeOfFour {
    fn partition_preflist(&self, partition: u16) -> Vec<kv_cluster::NodeId> {
        (0..3u64)
            .map(|i| kv_cluster::NodeId(1 + (u64::from(partition) + i) % 4))
            .collect()
    }
}

#[tokio::test]
async fn a_replica_that_holds_some_keys_of_a_round_gets_hints_for_exactly_those() {
    use kv_cluster::coordinator::Placement;
    let ring = Ring::new(4);
    let down = ring.nodes[3];
    ring.fakes[3].set_fault(Fault::Down);
    let c = ring.coordinator_placed(
        Arc::new(ThreeOfFour),
        kv_cluster::fake_replica::ManualClock::new(ring.nodes[0], 1_000_000),
        config(5_000),
    );
    let names: Vec<String> = (0..40).map(|i| format!("key:{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let results = c.put_batch(writes(&refs), Consistency::Quorum).await;
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    let mut missed: Vec<&str> = refs
        .iter()
        .copied()
        .filter(|k| ThreeOfFour.preflist(k.as_bytes()).contains(&down))
        .collect();
    assert!(!missed.is_empty() && missed.len() < refs.len());
    ring.wait_hints(missed.len() as u64).await;
    let hints = ring.hints.pending(down, 1000).await.unwrap();
    let mut hinted: Vec<&str> = Vec::new();
    for h in &hints {
        let name = std::str::from_utf8(&h.item.key.key).unwrap();
        let i = refs
            .iter()
            .position(|k| *k == name)
            .expect("a key of the round");
        // Each hint carries its own key's record: the version that key was given, and
        // its value (the key's name).
        assert_eq!(
            Ok(h.item.record.version),
            results[i].clone().map_err(|_| ())
        );
        match &h.item.record.body {
            kv_cluster::Body::Value { payload, .. } => assert_eq!(&payload[..], name.as_bytes()),
            other => panic!("{name}: {other:?}"),
        }
        hinted.push(refs[i]);
    }
    hinted.sort();
    missed.sort();
    assert_eq!(hinted, missed);
}

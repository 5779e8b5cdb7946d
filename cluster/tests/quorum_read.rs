//! The read path: R answers in preference order with fallback, the newest record wins,
//! read repair fixes the replicas that answered something older before the reply, and
//! multi-key requests report per key.

mod support;

use kv_cluster::coordinator::Placement;
use kv_cluster::fake_replica::{Fault, ManualClock};
use kv_cluster::quorum::{ClusterError, Consistency};
use kv_cluster::replica_api::PeerState;
use kv_cluster::{NodeId, Record};
use std::sync::Arc;
use support::{config, key, put, record, string, Ring};

#[tokio::test]
async fn read_repair_fixes_stale_and_missing_replicas_before_the_read_returns() {
    let ring = Ring::new(3);
    ring.fakes[0].put_raw(&key("k"), record(10, "old"));
    ring.fakes[1].put_raw(&key("k"), record(20, "new"));
    let c = ring.coordinator(config(5_000));
    let got = c.get(key("k"), Consistency::Quorum).await.unwrap();
    assert_eq!(got, Some(record(20, "new")));
    // No waiting: the repair was done before the reply.
    assert_eq!(ring.fakes[0].get(&key("k")), Some(record(20, "new")));
    assert_eq!(
        ring.fakes[2].get(&key("k")),
        None,
        "not asked, not repaired"
    );
    assert_eq!(c.stats().read_repairs, 1);

    // ALL asks the third replica too, and repairs the missing record.
    c.get(key("k"), Consistency::All).await.unwrap();
    assert_eq!(ring.fakes[2].get(&key("k")), Some(record(20, "new")));
    assert_eq!(c.stats().read_repairs, 2);
    // Replicas that agree are left alone.
    c.get(key("k"), Consistency::All).await.unwrap();
    assert_eq!(c.stats().read_repairs, 2);
}

#[tokio::test]
async fn a_failed_repair_is_counted_and_does_not_fail_the_read() {
    let ring = Ring::new(3);
    ring.fakes[0].put_raw(&key("k"), record(10, "old"));
    ring.fakes[1].put_raw(&key("k"), record(20, "new"));
    // Answers reads, loses the answers to writes.
    ring.fakes[0].set_fault(Fault::DropAfterApply);
    let c = ring.coordinator(config(5_000));
    let got = c.get(key("k"), Consistency::Quorum).await.unwrap();
    assert_eq!(got, Some(record(20, "new")));
    assert_eq!(
        (c.stats().read_repairs, c.stats().read_repair_failures),
        (0, 1)
    );
}

#[tokio::test]
async fn reads_fall_back_to_the_next_replica_and_fail_clearly_when_too_few_answer() {
    let ring = Ring::new(3);
    let c = ring.coordinator(config(200));
    put(&c, "k", "v", Consistency::All).await.unwrap();
    ring.fakes[0].set_fault(Fault::Down);
    assert!(c
        .get(key("k"), Consistency::Quorum)
        .await
        .unwrap()
        .is_some());
    ring.fakes[1].set_fault(Fault::BlackHole);
    let err = c.get(key("k"), Consistency::Quorum).await;
    assert_eq!(
        err,
        Err(ClusterError::Timeout {
            acked: 1,
            needed: 2
        })
    );
    // ONE is satisfied by the healthy replica.
    assert!(c.get(key("k"), Consistency::One).await.unwrap().is_some());

    // A suspect replica is still asked when the up ones are not enough (failure
    // detectors flap under load); only down ones are skipped.
    ring.fakes[0].set_fault(Fault::None);
    ring.fakes[1].set_fault(Fault::None);
    ring.liveness.set(ring.nodes[1], PeerState::Down);
    ring.liveness.set(ring.nodes[2], PeerState::Suspect);
    assert!(c
        .get(key("k"), Consistency::Quorum)
        .await
        .unwrap()
        .is_some());
    ring.liveness.set(ring.nodes[2], PeerState::Down);
    let err = c.get(key("k"), Consistency::Quorum).await;
    assert_eq!(
        err,
        Err(ClusterError::Unavailable {
            needed: 2,
            alive: 1
        })
    );
}

#[tokio::test]
async fn reads_return_tombstones_for_the_caller_to_judge() {
    let ring = Ring::new(3);
    let c = ring.coordinator(config(5_000));
    put(&c, "k", "v", Consistency::All).await.unwrap();
    let deleted = c
        .put(key("k"), None, None, Consistency::Quorum)
        .await
        .unwrap();
    let got = c.get(key("k"), Consistency::All).await.unwrap().unwrap();
    assert_eq!(got, Record::tombstone(deleted));
    assert!(c
        .get(key("never"), Consistency::Quorum)
        .await
        .unwrap()
        .is_none());
}

/// Keys starting with `a` live on nodes 1-3, the others on nodes 4-6.
struct TwoGroups;

impl Placement for TwoGroups {
    fn partition_preflist(&self, _partition: u16) -> Vec<NodeId> {
        unreachable!("placed by key")
    }

    fn preflist(&self, key: &[u8]) -> Vec<NodeId> {
        let base = if key.starts_with(b"a") { 1 } else { 4 };
        (base..base + 3).map(NodeId).collect()
    }
}

#[tokio::test]
async fn multi_key_requests_report_each_key() {
    let ring = Ring::new(6);
    ring.liveness.set(NodeId(4), PeerState::Down);
    ring.liveness.set(NodeId(5), PeerState::Down);
    let clock = ManualClock::new(NodeId(1), 1_000_000);
    let c = ring.coordinator_placed(Arc::new(TwoGroups), clock, config(5_000));
    let results = c
        .mput(
            vec![
                (key("a1"), string("x"), None),
                (key("b1"), string("y"), None),
                (key("a2"), string("z"), None),
            ],
            Consistency::Quorum,
        )
        .await;
    assert!(results[0].is_ok() && results[2].is_ok());
    assert_eq!(
        results[1],
        Err(ClusterError::Unavailable {
            needed: 2,
            alive: 1
        })
    );

    let got = c
        .mget(vec![key("a2"), key("b1"), key("a9")], Consistency::Quorum)
        .await;
    assert_eq!(
        got[0].as_ref().map(|r| r.as_ref().map(|r| r.version)),
        Ok(results[2].clone().ok())
    );
    assert!(got[1].is_err());
    assert_eq!(got[2], Ok(None));

    let deleted = c
        .mdel(vec![key("a1"), key("b1")], Consistency::Quorum)
        .await;
    assert!(deleted[0].is_ok() && deleted[1].is_err());
    let a1 = ring.fakes[0].get(&key("a1")).unwrap();
    assert_eq!(a1, Record::tombstone(*deleted[0].as_ref().unwrap()));
}

#[tokio::test]
async fn a_key_named_twice_in_one_mset_keeps_its_last_value() {
    let ring = Ring::new(3);
    let c = ring.coordinator(config(5_000));
    let results = c
        .mput(
            vec![
                (key("k"), string("first"), None),
                (key("other"), string("x"), None),
                (key("k"), string("last"), None),
            ],
            Consistency::Quorum,
        )
        .await;
    assert_eq!(results[0], results[2]);
    let got = c.get(key("k"), Consistency::All).await.unwrap().unwrap();
    assert_eq!(
        got.live_value(0).map(|(_, v)| v.clone()),
        Some(bytes::Bytes::from_static(b"last"))
    );
    assert_eq!(Ok(got.version), results[0]);
}

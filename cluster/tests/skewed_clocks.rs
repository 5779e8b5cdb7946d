//! A coordinator whose clock is behind must still order its write after a write another
//! coordinator already acknowledged: replicas answer Stale with their version, and the
//! coordinator moves its clock past it and retries.

mod support;

use kv_cluster::fake_replica::ManualClock;
use kv_cluster::quorum::{ClusterError, Consistency, CoordinatorConfig};
use kv_cluster::replica_api::PeerState;
use kv_cluster::NodeId;
use kv_keyspace::ValueType;
use support::{config, key, put, Ring};

fn value_of(r: Option<kv_cluster::Record>) -> Option<Vec<u8>> {
    r.and_then(|r| {
        r.live_value(0).map(|(ty, v)| {
            assert_eq!(ty, ValueType::String);
            v.to_vec()
        })
    })
}

#[tokio::test]
async fn a_coordinator_behind_orders_its_write_after_an_acknowledged_one() {
    let ring = Ring::new(3);
    // A's clock is ten minutes ahead of B's.
    let ahead = ring.coordinator_with(ManualClock::new(NodeId(1), 2_000_000), config(5_000));
    let behind = ring.coordinator_with(ManualClock::new(NodeId(2), 1_400_000), config(5_000));
    let first = put(&ahead, "k", "first", Consistency::Quorum)
        .await
        .unwrap();
    let second = put(&behind, "k", "second", Consistency::Quorum)
        .await
        .unwrap();
    assert!(second > first, "{second} must be ordered after {first}");
    assert_eq!(behind.stats().stale_retries, 1);
    // Whoever reads, through whichever coordinator, sees the later write.
    for c in [&ahead, &behind] {
        let got = c.get(key("k"), Consistency::Quorum).await.unwrap();
        assert_eq!(value_of(got), Some(b"second".to_vec()));
    }
    for f in &ring.fakes {
        assert_eq!(f.get(&key("k")).map(|r| r.version), Some(second));
    }
}

#[tokio::test]
async fn the_retry_happens_even_when_only_the_overlapping_replica_knows() {
    // W + W > N: the two quorums share a replica, and that one refuses.
    let ring = Ring::new(3);
    let ahead = ring.coordinator_with(ManualClock::new(NodeId(1), 2_000_000), config(5_000));
    let behind = ring.coordinator_with(ManualClock::new(NodeId(2), 1_000_000), config(5_000));
    ring.liveness.set(ring.nodes[2], PeerState::Down);
    let first = put(&ahead, "k", "first", Consistency::Quorum)
        .await
        .unwrap();
    ring.liveness.set(ring.nodes[2], PeerState::Up);
    ring.liveness.set(ring.nodes[0], PeerState::Down);
    let second = put(&behind, "k", "second", Consistency::Quorum)
        .await
        .unwrap();
    assert!(second > first);
    assert_eq!(
        ring.fakes[1].get(&key("k")).map(|r| r.version),
        Some(second)
    );
}

#[tokio::test]
async fn retries_are_bounded_and_the_failure_says_so() {
    let ring = Ring::new(3);
    let ahead = ring.coordinator_with(ManualClock::new(NodeId(1), 2_000_000), config(5_000));
    let no_retries = CoordinatorConfig {
        max_stale_retries: 0,
        ..config(5_000)
    };
    let behind = ring.coordinator_with(ManualClock::new(NodeId(2), 1_000_000), no_retries);
    put(&ahead, "k", "first", Consistency::Quorum)
        .await
        .unwrap();
    let err = put(&behind, "k", "second", Consistency::Quorum).await;
    assert_eq!(err, Err(ClusterError::Contended { attempts: 1 }));
    // The clock did move: the next attempt wins without a retry.
    put(&behind, "k", "third", Consistency::Quorum)
        .await
        .unwrap();
    let got = ahead.get(key("k"), Consistency::All).await.unwrap();
    assert_eq!(value_of(got), Some(b"third".to_vec()));
}

#[tokio::test]
async fn a_read_moves_the_clock_past_what_it_saw() {
    let ring = Ring::new(3);
    let ahead = ring.coordinator_with(ManualClock::new(NodeId(1), 2_000_000), config(5_000));
    let clock = ManualClock::new(NodeId(2), 1_000_000);
    let behind = ring.coordinator_with(clock.clone(), config(5_000));
    let first = put(&ahead, "k", "first", Consistency::Quorum)
        .await
        .unwrap();
    behind.get(key("k"), Consistency::Quorum).await.unwrap();
    use kv_cluster::coordinator::VersionClock;
    assert!(clock.next().unwrap() > first);
    // So its next write needs no retry.
    put(&behind, "k", "second", Consistency::Quorum)
        .await
        .unwrap();
    assert_eq!(behind.stats().stale_retries, 0);
}

/// A clock that issues `ok` versions, then refuses (its floor could not be persisted).
struct FailsAfter {
    inner: std::sync::Arc<ManualClock>,
    ok: std::sync::atomic::AtomicUsize,
}

impl kv_cluster::coordinator::VersionClock for FailsAfter {
    fn next(&self) -> Result<kv_cluster::Version, String> {
        let left = self.ok.load(std::sync::atomic::Ordering::Relaxed);
        if left == 0 {
            return Err("floor not persisted".into());
        }
        self.ok
            .store(left - 1, std::sync::atomic::Ordering::Relaxed);
        self.inner.next()
    }
    fn observe(&self, v: kv_cluster::Version) {
        self.inner.observe(v)
    }
}

#[tokio::test]
async fn a_retry_the_clock_cannot_stamp_says_the_write_may_have_landed_and_hints_it() {
    let ring = Ring::new(3);
    let ahead = ring.coordinator_with(ManualClock::new(NodeId(1), 2_000_000), config(5_000));
    put(&ahead, "k", "first", Consistency::Quorum)
        .await
        .unwrap();
    // The behind coordinator skips node 3 (down), so its write leaves a hint for it.
    ring.liveness.set(ring.nodes[2], PeerState::Down);
    let clock = std::sync::Arc::new(FailsAfter {
        inner: ManualClock::new(NodeId(2), 1_000_000),
        ok: 1.into(),
    });
    let behind = ring.coordinator_with(clock, config(5_000));
    let hints_before = ring.hints.stats().count;
    let err = put(&behind, "k", "second", Consistency::Quorum)
        .await
        .unwrap_err();
    // The first attempt was sent (and refused as stale here, but it may have landed on
    // a replica that lacked the newer version): not "nothing was written".
    assert!(
        matches!(err, ClusterError::Contended { attempts: 1 }),
        "{err:?}"
    );
    support::eventually("a hint for the skipped replica", || {
        ring.hints.stats().count > hints_before
    })
    .await;
}

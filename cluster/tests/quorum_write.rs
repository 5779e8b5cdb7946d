//! The write path: W acknowledgements, hints for the missing replica and their replay,
//! and the two errors (unavailable before sending, timeout after).

mod support;

use kv_cluster::fake_replica::Fault;
use kv_cluster::hint_replay::{spawn_hint_replay, ByteBudget, HintReplayConfig};
use kv_cluster::quorum::{ClusterError, Consistency};
use kv_cluster::replica_api::PeerState;
use kv_cluster::Body;
use std::sync::Arc;
use std::time::Duration;
use support::{config, eventually, key, put, string, Ring};

/// A replica request that panics (a bug on its path) counts as a failed replica and is
/// hinted, as a timeout is: without the round's `catch_unwind`, its task ended before
/// writing the hint, and the replica missed the write until anti-entropy.
#[tokio::test]
async fn a_replica_request_that_panics_counts_as_failed_and_is_hinted() {
    let ring = Ring::new(3);
    ring.fakes[2].set_fault(Fault::Panic);
    let c = ring.coordinator(config(5_000));
    let v = put(&c, "k", "v", Consistency::Quorum).await.unwrap();
    assert_eq!(ring.fakes[0].get(&key("k")).map(|r| r.version), Some(v));
    assert_eq!(ring.fakes[1].get(&key("k")).map(|r| r.version), Some(v));
    ring.wait_hints(1).await;
    assert_eq!(ring.hints.targets(), vec![ring.nodes[2]]);
    let all = put(&c, "k2", "v", Consistency::All).await;
    assert!(
        matches!(
            all,
            Err(ClusterError::Timeout { .. }) | Err(ClusterError::Unavailable { .. })
        ),
        "ALL cannot be met with a replica that panics: {all:?}"
    );
}

#[tokio::test]
async fn w_acks_reply_with_one_replica_black_holed_and_its_hint_replays_when_it_is_back() {
    let ring = Ring::new(3);
    ring.fakes[2].set_fault(Fault::BlackHole);
    let c = ring.coordinator(config(200));
    let v = put(&c, "k", "v", Consistency::Quorum).await.unwrap();
    assert_eq!(ring.fakes[0].get(&key("k")).map(|r| r.version), Some(v));
    assert_eq!(ring.fakes[1].get(&key("k")).map(|r| r.version), Some(v));
    // The black hole's timeout fires after the reply and leaves a hint.
    ring.wait_hints(1).await;
    assert_eq!(ring.hints.targets(), vec![ring.nodes[2]]);
    assert!(ring.fakes[2].get(&key("k")).is_none());

    ring.fakes[2].set_fault(Fault::None);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let replay = spawn_hint_replay(
        ring.hints.clone(),
        ring.replicas.clone(),
        ring.liveness.clone(),
        ByteBudget::new(1 << 20),
        HintReplayConfig {
            interval: Duration::from_millis(10),
            ..HintReplayConfig::default()
        },
        Arc::new(|_, _| true),
        stopped,
    );
    eventually("the hint delivered", || {
        ring.fakes[2].get(&key("k")).is_some()
    })
    .await;
    assert_eq!(ring.fakes[2].get(&key("k")).map(|r| r.version), Some(v));
    ring.wait_hints(0).await;
    assert_eq!(ring.hints.stats().delivered, 1);
    stop.send(true).unwrap();
    replay.await.unwrap();
}

#[tokio::test]
async fn a_down_replica_is_skipped_and_hinted_and_replay_waits_until_it_is_up() {
    let ring = Ring::new(3);
    ring.liveness.set(ring.nodes[1], PeerState::Down);
    let c = ring.coordinator(config(5_000));
    let v = put(&c, "k", "v", Consistency::Quorum).await.unwrap();
    assert_eq!(
        ring.fakes[1].writes_served(),
        0,
        "a Down replica is not sent to"
    );
    ring.wait_hints(1).await;

    let r = ring.replay_hints().await;
    assert_eq!(
        r.delivered, 0,
        "replay waits for gossip to see the target Up"
    );
    assert!(ring.fakes[1].get(&key("k")).is_none());

    ring.liveness.set(ring.nodes[1], PeerState::Up);
    let r = ring.replay_hints().await;
    assert_eq!(r.delivered, 1);
    assert_eq!(ring.fakes[1].get(&key("k")).map(|r| r.version), Some(v));
    assert_eq!(ring.hints.stats().count, 0);
}

#[tokio::test]
async fn replay_stops_on_error_and_keeps_the_hint() {
    let ring = Ring::new(3);
    ring.liveness.set(ring.nodes[2], PeerState::Down);
    let c = ring.coordinator(config(5_000));
    put(&c, "k", "v", Consistency::Quorum).await.unwrap();
    ring.wait_hints(1).await;
    // Gossip says Up, but the replica still refuses.
    ring.liveness.set(ring.nodes[2], PeerState::Up);
    ring.fakes[2].set_fault(Fault::Down);
    let r = ring.replay_hints().await;
    assert_eq!((r.delivered, r.stopped), (0, 1));
    assert_eq!(ring.hints.stats().count, 1);
}

#[tokio::test]
async fn a_replica_holding_something_newer_answers_stale_and_the_hint_is_deleted() {
    let ring = Ring::new(3);
    ring.liveness.set(ring.nodes[2], PeerState::Down);
    let c = ring.coordinator(config(5_000));
    put(&c, "k", "old", Consistency::Quorum).await.unwrap();
    ring.wait_hints(1).await;
    ring.liveness.set(ring.nodes[2], PeerState::Up);
    let newer = put(&c, "k", "new", Consistency::All).await.unwrap();
    let r = ring.replay_hints().await;
    assert_eq!(r.delivered, 1);
    assert_eq!(ring.hints.stats().count, 0);
    // The old hint did not undo the newer write.
    assert_eq!(ring.fakes[2].get(&key("k")).map(|r| r.version), Some(newer));
}

#[tokio::test]
async fn fewer_than_w_live_replicas_is_unavailable_and_nothing_is_written() {
    let ring = Ring::new(3);
    ring.liveness.set(ring.nodes[0], PeerState::Down);
    ring.liveness.set(ring.nodes[2], PeerState::Down);
    let c = ring.coordinator(config(5_000));
    let err = put(&c, "k", "v", Consistency::Quorum).await;
    assert_eq!(
        err,
        Err(ClusterError::Unavailable {
            needed: 2,
            alive: 1
        })
    );
    let err = put(&c, "k", "v", Consistency::All).await;
    assert_eq!(
        err,
        Err(ClusterError::Unavailable {
            needed: 3,
            alive: 1
        })
    );
    // ONE needs only the live replica.
    put(&c, "one", "v", Consistency::One).await.unwrap();
    for f in &ring.fakes {
        assert!(f.get(&key("k")).is_none());
    }
    assert!(ring.fakes[1].get(&key("one")).is_some());
    ring.wait_hints(2).await;
}

#[tokio::test]
async fn too_few_answers_is_a_timeout_and_the_write_may_still_land() {
    let ring = Ring::new(3);
    ring.fakes[1].set_fault(Fault::BlackHole);
    // Applies, then loses its answer: the write landed though it was not acknowledged.
    ring.fakes[2].set_fault(Fault::DropAfterApply);
    let c = ring.coordinator(config(200));
    let err = put(&c, "k", "v", Consistency::Quorum).await;
    assert_eq!(
        err,
        Err(ClusterError::Timeout {
            acked: 1,
            needed: 2
        })
    );
    assert!(ring.fakes[2].get(&key("k")).is_some());
    ring.wait_hints(2).await;
}

#[tokio::test]
async fn unreachable_replicas_fail_the_write_without_waiting_for_the_timeout() {
    let ring = Ring::new(3);
    ring.fakes[0].set_fault(Fault::Down);
    ring.fakes[1].set_fault(Fault::Down);
    let c = ring.coordinator(config(60_000));
    let err = put(&c, "k", "v", Consistency::Quorum).await;
    assert_eq!(
        err,
        Err(ClusterError::Timeout {
            acked: 1,
            needed: 2
        })
    );
}

#[tokio::test]
async fn deletes_write_tombstones_and_expiry_travels_with_the_value() {
    let ring = Ring::new(3);
    let c = ring.coordinator(config(5_000));
    let v1 = c
        .put(
            key("k"),
            string("v"),
            Some(1_900_000_000_000),
            Consistency::All,
        )
        .await
        .unwrap();
    assert_eq!(
        ring.fakes[2].get(&key("k")).and_then(|r| r.expire_at),
        Some(1_900_000_000_000)
    );
    let v2 = c
        .put(key("k"), None, Some(5), Consistency::All)
        .await
        .unwrap();
    assert!(v2 > v1);
    for f in &ring.fakes {
        let r = f.get(&key("k")).unwrap();
        assert_eq!(
            (r.version, r.body, r.expire_at),
            (v2, Body::Tombstone, None)
        );
    }
}

#[tokio::test]
async fn a_slow_replica_applies_after_the_reply_by_itself_and_needs_no_hint() {
    let ring = Ring::new(3);
    ring.fakes[0].set_fault(Fault::Slow(Duration::from_millis(300)));
    let c = ring.coordinator(config(60_000));
    let v = put(&c, "k", "v", Consistency::Quorum).await.unwrap();
    // Acknowledged by the two fast replicas; the slow one applies in the background.
    eventually("the slow replica applied", || {
        ring.fakes[0].get(&key("k")).map(|r| r.version) == Some(v)
    })
    .await;
    assert_eq!(ring.hints.stats().count, 0);
}

#[tokio::test]
async fn a_suspect_replica_is_still_written_when_the_up_ones_are_too_few() {
    let ring = Ring::new(3);
    ring.liveness.set(ring.nodes[0], PeerState::Down);
    ring.liveness.set(ring.nodes[2], PeerState::Suspect);
    let c = ring.coordinator(config(5_000));
    let v = put(&c, "k", "v", Consistency::Quorum).await.unwrap();
    assert_eq!(ring.fakes[2].get(&key("k")).map(|r| r.version), Some(v));
    assert_eq!(ring.fakes[0].get(&key("k")), None);
    ring.wait_hints(1).await; // for the down one
}

/// The coordinator's own replica (node 1 here) is asked inside the round's task, not in
/// a task of its own: when the peers make the quorum first, its request must still run
/// to its end in a task of its own and hint itself if it fails. Without that hand-off
/// the black-holed own request was dropped with the round and left no hint.
#[tokio::test]
async fn the_coordinators_own_replica_failing_after_the_reply_is_hinted() {
    let ring = Ring::new(3);
    ring.fakes[0].set_fault(Fault::BlackHole);
    let c = ring.coordinator(config(200));
    let v = put(&c, "k", "v", Consistency::Quorum).await.unwrap();
    assert_eq!(ring.fakes[1].get(&key("k")).map(|r| r.version), Some(v));
    assert_eq!(ring.fakes[2].get(&key("k")).map(|r| r.version), Some(v));
    ring.wait_hints(1).await;
    assert_eq!(ring.hints.targets(), vec![ring.nodes[0]]);
}

/// A client that gives up during the round (its future dropped, as when the connection
/// closes) does not take the coordinator's own copy with it: the request goes on in a
/// task of its own and applies, as the peers' requests do.
#[tokio::test]
async fn the_coordinators_own_copy_lands_when_the_caller_gives_up_mid_round() {
    let ring = Ring::new(3);
    ring.fakes[0].set_fault(Fault::Slow(Duration::from_millis(100)));
    ring.fakes[1].set_fault(Fault::BlackHole);
    ring.fakes[2].set_fault(Fault::BlackHole);
    let c = ring.coordinator(config(60_000));
    // No quorum can come (two black holes), so the round is still waiting when the
    // caller's future is dropped here.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(20),
        put(&c, "k", "v", Consistency::Quorum),
    )
    .await;
    assert!(
        gave_up.is_err(),
        "the write cannot have finished: {gave_up:?}"
    );
    eventually("the own replica applied after the caller left", || {
        ring.fakes[0].get(&key("k")).is_some()
    })
    .await;
}

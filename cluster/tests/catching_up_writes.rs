//! A replica catching up after an unclean restart (cluster/src/catch_up.rs) may have
//! lost writes it acknowledged, so it may take a version older than one it lost: its
//! acknowledgements must not count toward W, or a write from a coordinator whose clock
//! is behind could be acknowledged by it and a replica that missed the newer write, and
//! be ordered before an acknowledged write (docs/cluster.md, "After an unclean
//! restart"). It still stores every write. The coordinator here is node 1 and the
//! catching-up replica is its own local one, first in preference order.

mod support;

use kv_cluster::catch_up::{CatchUp, CatchingUpReplica};
use kv_cluster::fake_replica::Fault;
use kv_cluster::quorum::{ClusterError, Consistency};
use kv_cluster::{NodeId, Version};
use kv_keyspace::slot::key_partition;
use std::sync::Arc;
use support::{config, key, put, record, Ring};

/// The version of the write node 1 lost: above anything the coordinator's clock (at
/// 1 000 000 ms) makes, as when its clock is behind the writer's within the offset bound.
const LOST_TS: u64 = 2_000_000 << 16;

/// Node 1 behind a catch-up gate in state `state`. Node 3 alone holds the newest value
/// of `k` (an acknowledged write node 1 lost in a crash and node 2 missed) and is
/// unreachable now; nodes 1 and 2 hold an older one.
fn ring_where_the_only_holder_is_down(k: &str, state: Arc<CatchUp>) -> Ring {
    let ring = Ring::new(3);
    let gated = CatchingUpReplica::new(ring.fakes[0].clone(), state);
    ring.replicas.insert(ring.nodes[0], Arc::new(gated));
    ring.fakes[0].put_raw(&key(k), record(10, "old"));
    ring.fakes[1].put_raw(&key(k), record(10, "old"));
    ring.fakes[2].put_raw(&key(k), record(LOST_TS, "acknowledged"));
    ring.fakes[2].set_fault(Fault::Down);
    ring
}

/// Node 1 catches up `k`'s partition (its other replicas: nodes 2 and 3).
fn catching_up(k: &str) -> Arc<CatchUp> {
    let state = CatchUp::needed();
    state.plan(
        [(key_partition(k.as_bytes()), vec![NodeId(2), NodeId(3)])],
        2,
    );
    state
}

fn version_of(ring: &Ring, node: usize, k: &str) -> Option<Version> {
    ring.fakes[node].get(&key(k)).map(|r| r.version)
}

#[tokio::test]
async fn a_write_that_needs_the_catching_up_replica_to_reach_w_is_not_acknowledged() {
    let ring = ring_where_the_only_holder_is_down("k", catching_up("k"));
    let c = ring.coordinator(config(5_000));
    // Nodes 1 and 2 take it (older than node 3's); only node 2 counts.
    let got = put(&c, "k", "mine", Consistency::Quorum).await;
    assert!(
        matches!(
            got,
            Err(ClusterError::Timeout {
                acked: 1,
                needed: 2
            })
        ),
        "{got:?}"
    );
    // Stored all the same (a TIMEOUT says it may land): applied, not counted.
    let stored = version_of(&ring, 0, "k").expect("node 1 holds it");
    assert!(stored.ts < LOST_TS);
    assert_eq!(version_of(&ring, 1, "k"), Some(stored));
}

#[tokio::test]
async fn the_same_write_is_acknowledged_then_lost_when_the_replica_counts() {
    // The control: without catching up, nodes 1 and 2 make W and the write is
    // acknowledged with a version below the acknowledged write node 3 holds, so once
    // node 3 is back the client's acknowledged write is gone. The test above would
    // fail if the gate let node 1 count.
    let ring = ring_where_the_only_holder_is_down("k", CatchUp::done());
    let c = ring.coordinator(config(5_000));
    let v = put(&c, "k", "mine", Consistency::Quorum).await.unwrap();
    assert!(v.ts < LOST_TS, "ordered before an acknowledged write");
    ring.fakes[2].set_fault(Fault::None);
    let read = c.get(key("k"), Consistency::All).await.unwrap();
    assert_eq!(read, Some(record(LOST_TS, "acknowledged")));
}

#[tokio::test]
async fn a_write_with_two_counted_replicas_succeeds_and_the_catching_up_one_stores_it() {
    let ring = ring_where_the_only_holder_is_down("w", catching_up("w"));
    ring.fakes[2].set_fault(Fault::None);
    let c = ring.coordinator(config(5_000));
    let v = put(&c, "w", "x", Consistency::Quorum).await.unwrap();
    // The catching-up replica answers too: it stores the write without counting.
    support::eventually("node 1 stores the write", || {
        version_of(&ring, 0, "w") == Some(v)
    })
    .await;
    assert_eq!(version_of(&ring, 1, "w"), Some(v));
}

#[tokio::test]
async fn all_cannot_be_met_while_it_catches_up_but_every_replica_stores_the_write() {
    let ring = ring_where_the_only_holder_is_down("w", catching_up("w"));
    ring.fakes[2].set_fault(Fault::None);
    let c = ring.coordinator(config(5_000));
    let got = put(&c, "w", "x", Consistency::All).await;
    assert!(
        matches!(
            got,
            Err(ClusterError::Timeout {
                acked: 2,
                needed: 3
            })
        ),
        "{got:?}"
    );
    let v = version_of(&ring, 1, "w").expect("node 2 holds it");
    for node in [0, 2] {
        assert_eq!(version_of(&ring, node, "w"), Some(v));
    }
}

#[tokio::test]
async fn it_counts_again_once_its_partitions_were_compared() {
    let state = catching_up("k");
    let ring = ring_where_the_only_holder_is_down("k", state.clone());
    let c = ring.coordinator(config(5_000));
    assert!(put(&c, "k", "mine", Consistency::Quorum).await.is_err());
    // Compared (and synced) with both others: node 1 now holds everything they had.
    ring.fakes[0].put_raw(&key("k"), record(LOST_TS, "acknowledged"));
    state.compared(key_partition(b"k"), NodeId(2));
    state.compared(key_partition(b"k"), NodeId(3));
    assert!(!state.is_active());
    // Node 1 refuses the old version now (Stale): the coordinator retries above it.
    let v = put(&c, "k", "mine", Consistency::Quorum).await.unwrap();
    assert!(v.ts > LOST_TS);
}

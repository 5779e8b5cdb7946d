//! A replica catching up after an unclean restart (cluster/src/catch_up.rs) may lack
//! acknowledged writes: its read answers must not count toward R, and once its
//! partitions were compared it counts again (its writes: catching_up_writes.rs). The
//! coordinator here is node 1 and the catching-up replica is its own local one, first in
//! preference order.

mod support;

use kv_cluster::catch_up::{CatchUp, CatchingUpReplica};
use kv_cluster::quorum::{ClusterError, Consistency};
use kv_cluster::replica_api::{ReplicaApi, ReplicaError};
use kv_cluster::NodeId;
use kv_keyspace::data_key::ScanPosition;
use kv_keyspace::slot::key_partition;
use std::sync::Arc;
use support::{config, key, record, Ring};

/// Node 1 behind a catch-up gate in state `state`; nodes 1 and 2 hold an old value of
/// `k`, node 3 alone the newest (as after node 1 lost it in a crash and node 2 missed it).
fn ring_where_only_node_3_is_current(k: &str, state: Arc<CatchUp>) -> Ring {
    let ring = Ring::new(3);
    let gated = CatchingUpReplica::new(ring.fakes[0].clone(), state);
    ring.replicas.insert(ring.nodes[0], Arc::new(gated));
    ring.fakes[0].put_raw(&key(k), record(10, "old"));
    ring.fakes[1].put_raw(&key(k), record(10, "old"));
    ring.fakes[2].put_raw(&key(k), record(20, "new"));
    ring
}

/// Node 1 catches up partition `partition` (its other replicas: nodes 2 and 3).
fn catching_up(partition: u16) -> Arc<CatchUp> {
    let state = CatchUp::needed();
    state.plan([(partition, vec![NodeId(2), NodeId(3)])], 2);
    state
}

#[tokio::test]
async fn a_catching_up_replica_is_not_counted_toward_r() {
    let state = catching_up(key_partition(b"k"));
    let ring = ring_where_only_node_3_is_current("k", state.clone());
    let c = ring.coordinator(config(5_000));
    // Nodes 1 and 2 are asked first; counting node 1 would return "old".
    let got = c.get(key("k"), Consistency::Quorum).await.unwrap();
    assert_eq!(got, Some(record(20, "new")));
    // ALL cannot be met while it catches up: an error, not an answer without it.
    assert!(matches!(
        c.get(key("k"), Consistency::All).await,
        Err(ClusterError::Timeout {
            acked: 2,
            needed: 3
        })
    ));
}

#[tokio::test]
async fn the_same_read_is_stale_when_the_replica_counts() {
    // The control: without catching up, the first two replicas answer and the read
    // returns the old value. The test above would fail if the gate let node 1 count.
    let ring = ring_where_only_node_3_is_current("k", CatchUp::done());
    let c = ring.coordinator(config(5_000));
    let got = c.get(key("k"), Consistency::Quorum).await.unwrap();
    assert_eq!(got, Some(record(10, "old")));
}

#[tokio::test]
async fn it_counts_again_once_its_partitions_were_compared() {
    let p = key_partition(b"k");
    let state = catching_up(p);
    let ring = ring_where_only_node_3_is_current("k", state.clone());
    let gated = CatchingUpReplica::new(ring.fakes[0].clone(), state.clone());
    assert_eq!(
        gated.read(vec![key("k")]).await,
        Err(ReplicaError::CatchingUp)
    );
    assert!(matches!(
        gated.scan(p, 0, ScanPosition::START, 10).await,
        Err(ReplicaError::CatchingUp)
    ));
    // Another partition, already compared (here: not held), is served.
    let other = (0..u16::MAX)
        .map(|i| format!("o{i}"))
        .find(|k| key_partition(k.as_bytes()) != p)
        .unwrap();
    assert_eq!(gated.read(vec![key(&other)]).await, Ok(vec![None]));
    state.compared(p, NodeId(2));
    assert!(state.is_active(), "node 3 may be the only other holder");
    state.compared(p, NodeId(3));
    assert!(!state.is_active());
    assert_eq!(
        gated.read(vec![key("k")]).await,
        Ok(vec![Some(record(10, "old"))])
    );
}

//! A consensus round writes a version whose timestamp is above the timestamp of the
//! state it read, not only above its (timestamp, node) pair: clients see the timestamp
//! alone (a fencing token is the lock key's version's timestamp, docs/versions-and-locks.md),
//! and two nodes' clocks can give the same timestamp. Found by the partition nemesis
//! (tests/tests/cluster_partition_nemesis.rs): a fencing token granted twice.

mod replica_support;
mod support;

use bytes::Bytes;
use kv_cluster::coordinator::Change;
use kv_cluster::fake_replica::ManualClock;
use kv_cluster::local_replica::LocalReplica;
use kv_cluster::quorum::Consistency;
use kv_cluster::{Body, NodeId, Version};
use kv_keyspace::ValueType;
use replica_support::open_store;
use std::sync::Arc;
use support::{config, key, Ring};

fn grant(owner: &'static str) -> Change {
    Change::Write {
        body: Body::Value {
            ty: ValueType::String,
            payload: Bytes::from_static(owner.as_bytes()),
        },
        expire_at: None,
        request: None,
    }
}

#[tokio::test]
async fn two_proposers_whose_clocks_read_the_same_millisecond_write_growing_timestamps() {
    let ring = Ring::new(3);
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    for (node, dir) in ring.nodes.iter().zip(&dirs) {
        let replica = Arc::new(LocalReplica::new(open_store(dir.path())));
        ring.replicas.insert(*node, replica);
    }
    // Both clocks read the same wall millisecond and have issued nothing yet, so both
    // would start their ballots at the same timestamp; node 2's ballot is the higher
    // pair, so its round is not refused for it.
    let first = ring.coordinator_with(ManualClock::new(NodeId(1), 2_000_000), config(5_000));
    let second = ring.coordinator_with(ManualClock::new(NodeId(2), 2_000_000), config(5_000));
    let mut tokens: Vec<Version> = Vec::new();
    for (coordinator, owner) in [(&first, "a"), (&second, "b"), (&first, "c")] {
        let mut seen = None;
        let version = coordinator
            .consensus(key("lock"), Consistency::Quorum, &mut |state| {
                seen = state.map(|r| r.version);
                grant(owner)
            })
            .await
            .expect("a round on three live replicas")
            .expect("a write");
        assert_eq!(
            seen,
            tokens.last().copied(),
            "each round reads the one before"
        );
        if let Some(before) = tokens.last() {
            assert!(
                version.ts > before.ts,
                "{owner}'s version {version} has the timestamp of {before}, the state it \
                 replaced: two fencing tokens would be equal"
            );
        }
        tokens.push(version);
    }
}

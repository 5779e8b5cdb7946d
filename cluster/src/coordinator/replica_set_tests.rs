//! The replicas a request picks for a key alone and as one key of a batch that shares
//! its node lookups (`NodeLookups`): the same, with each node looked up once.

use super::*;
use crate::fake_replica::{FakeLiveness, FakeReplica, FakeReplicas, ManualClock};
use crate::hints::{HintConfig, HintStore};

/// Three of five nodes per partition, starting at a node that moves with the
/// partition, so a batch's keys have different replicas; during a layout change
/// (`moving`) writes also need the next node's group.
struct Rotating {
    moving: bool,
}

impl Placement for Rotating {
    fn partition_preflist(&self, partition: u16) -> Vec<NodeId> {
        (0..3u64)
            .map(|i| NodeId(1 + (u64::from(partition) + i) % 5))
            .collect()
    }

    fn write_groups(&self, key: &[u8]) -> Vec<Vec<NodeId>> {
        let now = self.preflist(key);
        match self.moving {
            true => vec![
                now.clone(),
                now.iter().map(|n| NodeId(1 + n.0 % 5)).collect(),
            ],
            false => vec![now],
        }
    }
}

/// Failure detection that counts the questions asked of it.
struct Counted {
    states: Arc<FakeLiveness>,
    asked: AtomicU64,
}

impl Liveness for Counted {
    fn state(&self, node: NodeId) -> PeerState {
        self.asked.fetch_add(1, Ordering::Relaxed);
        self.states.state(node)
    }
}

/// What a request does with its replica set, in a comparable form.
fn shape(set: &ReplicaSet) -> (Vec<NodeId>, Vec<NodeId>, usize, Vec<Vec<NodeId>>) {
    let live = set.live.iter().map(|t| t.node).collect();
    (live, set.skipped.clone(), set.n, set.groups.clone())
}

#[test]
fn a_batch_looks_each_node_up_once_and_picks_what_each_key_alone_would() {
    let dir = tempfile::tempdir().unwrap();
    let db = kv_engine::Db::open(dir.path(), kv_engine::Options::default()).unwrap();
    let hints = HintStore::open(db, HintConfig::default()).unwrap();
    // Node 1 (this one) and 5 up, 2 suspect, 3 down, 4 without an endpoint.
    let replicas = FakeReplicas::new();
    for n in [1, 2, 3, 5] {
        replicas.insert(NodeId(n), FakeReplica::new());
    }
    let states = FakeLiveness::new();
    states.set(NodeId(2), PeerState::Suspect);
    states.set(NodeId(3), PeerState::Down);
    let keys: Vec<Vec<u8>> = (0..200).map(|i| format!("key:{i}").into_bytes()).collect();
    for moving in [false, true] {
        let liveness = Arc::new(Counted {
            states: states.clone(),
            asked: AtomicU64::new(0),
        });
        let coordinator = Coordinator::new(
            NodeId(1),
            Arc::new(Rotating { moving }),
            ManualClock::new(NodeId(1), 1_000_000),
            replicas.clone(),
            liveness.clone(),
            hints.clone(),
            CoordinatorConfig::default(),
        );
        let alone: Vec<_> = keys
            .iter()
            .map(|k| shape(&coordinator.key_replicas(k)))
            .collect();
        let writes_alone: Vec<_> = keys
            .iter()
            .map(|k| shape(&coordinator.key_write_set(k)))
            .collect();
        let asked_alone = liveness.asked.swap(0, Ordering::Relaxed);
        assert!(asked_alone >= 2 * 3 * keys.len() as u64);

        let mut seen = NodeLookups::default();
        let batched: Vec<_> = keys
            .iter()
            .map(|k| shape(&coordinator.key_replicas_among(k, Some(&mut seen))))
            .collect();
        let mut seen = NodeLookups::default();
        let writes_batched: Vec<_> = keys
            .iter()
            .map(|k| shape(&coordinator.key_write_set_among(k, Some(&mut seen))))
            .collect();
        assert_eq!(batched, alone);
        assert_eq!(writes_batched, writes_alone);
        // Every node once per batch (the sets above cover all five).
        assert_eq!(liveness.asked.load(Ordering::Relaxed), 2 * 5);
        // The cases the ring above holds: this node first, a suspect one after the up
        // ones, down and endpoint-less ones skipped.
        assert!(alone.contains(&(
            vec![NodeId(1), NodeId(2)],
            vec![NodeId(3)],
            3,
            vec![vec![NodeId(1), NodeId(2), NodeId(3)]]
        )));
        assert!(alone.iter().any(
            |(live, skipped, _, _)| live == &[NodeId(1), NodeId(5)] && skipped == &[NodeId(4)]
        ));
    }
}

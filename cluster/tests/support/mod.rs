//! A ring of in-memory replicas with one coordinator's hint store, shared by the
//! coordinator scenario tests.
#![allow(dead_code)]

use bytes::Bytes;
use kv_cluster::coordinator::{Coordinator, Placement, VersionClock};
use kv_cluster::fake_replica::{
    FakeLiveness, FakeReplica, FakeReplicas, ManualClock, StaticPlacement,
};
use kv_cluster::hints::{HintConfig, HintStore};
use kv_cluster::quorum::CoordinatorConfig;
use kv_cluster::replica_api::ItemKey;
use kv_cluster::NodeId;
use kv_engine::{Db, Options};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Three (or more) fake replicas, nodes 1..=n, every key on all of them in node order.
pub struct Ring {
    pub nodes: Vec<NodeId>,
    pub fakes: Vec<Arc<FakeReplica>>,
    pub replicas: Arc<FakeReplicas>,
    pub liveness: Arc<FakeLiveness>,
    pub hints: HintStore,
    pub db: Db,
    _dir: tempfile::TempDir,
}

impl Ring {
    pub fn new(n: u64) -> Ring {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), Options::default()).unwrap();
        let hints = HintStore::open(db.clone(), HintConfig::default()).unwrap();
        let replicas = FakeReplicas::new();
        let nodes: Vec<NodeId> = (1..=n).map(NodeId).collect();
        let fakes: Vec<Arc<FakeReplica>> = nodes.iter().map(|_| FakeReplica::new()).collect();
        for (node, fake) in nodes.iter().zip(&fakes) {
            replicas.insert(*node, fake.clone());
        }
        Ring {
            nodes,
            fakes,
            replicas,
            liveness: FakeLiveness::new(),
            hints,
            db,
            _dir: dir,
        }
    }

    /// A coordinator on node 1 with its own clock at wall time `wall_ms`.
    pub fn coordinator(&self, config: CoordinatorConfig) -> Coordinator {
        self.coordinator_with(ManualClock::new(self.nodes[0], 1_000_000), config)
    }

    pub fn coordinator_with(
        &self,
        clock: Arc<dyn VersionClock>,
        config: CoordinatorConfig,
    ) -> Coordinator {
        self.coordinator_placed(Arc::new(StaticPlacement(self.nodes.clone())), clock, config)
    }

    pub fn coordinator_placed(
        &self,
        placement: Arc<dyn Placement>,
        clock: Arc<dyn VersionClock>,
        config: CoordinatorConfig,
    ) -> Coordinator {
        Coordinator::new(
            self.nodes[0],
            placement,
            clock,
            self.replicas.clone(),
            self.liveness.clone(),
            self.hints.clone(),
            config,
        )
    }
}

/// Settings with a request timeout short enough for black holes to time out quickly
/// (no assertion depends on how long anything takes).
pub fn config(timeout_ms: u64) -> CoordinatorConfig {
    CoordinatorConfig {
        request_timeout: Duration::from_millis(timeout_ms),
        ..CoordinatorConfig::default()
    }
}

pub fn key(k: &str) -> ItemKey {
    ItemKey {
        db: 0,
        key: Bytes::copy_from_slice(k.as_bytes()),
    }
}

pub fn string(v: &str) -> Option<(kv_keyspace::ValueType, Bytes)> {
    Some((
        kv_keyspace::ValueType::String,
        Bytes::copy_from_slice(v.as_bytes()),
    ))
}

/// Polls `cond` until it holds; fails the test after a generous deadline.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A string record of `v` at timestamp `ts` from coordinator node 9, without expiry.
pub fn record(ts: u64, v: &'static str) -> kv_cluster::Record {
    kv_cluster::Record::string(
        kv_cluster::Version {
            ts,
            node: NodeId(9),
        },
        Bytes::from_static(v.as_bytes()),
        None,
    )
}

/// Writes string `v` to key `k` without expiry.
pub async fn put(
    c: &Coordinator,
    k: &str,
    v: &str,
    consistency: kv_cluster::quorum::Consistency,
) -> Result<kv_cluster::Version, kv_cluster::quorum::ClusterError> {
    c.put(key(k), string(v), None, consistency).await
}

impl Ring {
    /// Waits until exactly `n` hints are pending.
    pub async fn wait_hints(&self, n: u64) {
        eventually(&format!("{n} hints pending"), || {
            self.hints.stats().count == n
        })
        .await;
    }

    /// One hint replay round, unthrottled, with this ring's one fixed placement (every
    /// replica keeps its partitions).
    pub async fn replay_hints(&self) -> kv_cluster::hint_replay::ReplayReport {
        kv_cluster::hint_replay::replay_round(
            &self.hints,
            &*self.replicas,
            &*self.liveness,
            &kv_cluster::hint_replay::ByteBudget::new(0),
            &kv_cluster::hint_replay::HintReplayConfig::default(),
            &|_, _| true,
        )
        .await
    }
}

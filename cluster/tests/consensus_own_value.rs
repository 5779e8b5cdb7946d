//! A consensus round whose accept a rival's prepare outbid on some replicas leaves the
//! command's value on a minority. When the retry's majority shows exactly that value as
//! the newest record, the retry finishes it (re-accepts it at its own ballot) and the
//! command succeeds once, instead of ending in `TIMEOUT ... may still be applied`
//! (cluster/src/coordinator/paxos.rs `Own`; model/src/design.rs `adopt_own_partial`).
//! CI met the unknown outcome as an UNLOCK that a waiting LOCK on another node outbid.

mod replica_support;
mod support;

use async_trait::async_trait;
use bytes::Bytes;
use kv_cluster::coordinator::Change;
use kv_cluster::fake_replica::ManualClock;
use kv_cluster::local_replica::LocalReplica;
use kv_cluster::quorum::Consistency;
use kv_cluster::replica_api::{ItemKey, PrepareOutcome, ReplicaApi, ReplicaError, WriteItem};
use kv_cluster::{Body, NodeId, Version};
use kv_keyspace::ValueType;
use replica_support::open_store;
use replica_support::watched::{Watch, Watched};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use support::{config, key, Ring};

/// A replica's first accept is preceded by a rival proposer's prepare at a higher ballot
/// (so the replica refuses that accept); with `then_unreachable`, the replica is cut off
/// after that first accept.
#[derive(Default)]
struct Outbid {
    accepts: AtomicUsize,
    then_unreachable: bool,
}

impl Outbid {
    fn cut_off(&self) -> Result<(), ReplicaError> {
        match self.then_unreachable && self.accepts.load(Ordering::SeqCst) > 0 {
            true => Err(ReplicaError::Unreachable("cut off after the rival".into())),
            false => Ok(()),
        }
    }
}

#[async_trait]
impl Watch for Outbid {
    async fn before_prepare(&self, _: &LocalReplica, _: &ItemKey) -> Result<(), ReplicaError> {
        self.cut_off()
    }
    async fn before_accept(
        &self,
        replica: &LocalReplica,
        item: &WriteItem,
    ) -> Result<(), ReplicaError> {
        self.cut_off()?;
        if self.accepts.fetch_add(1, Ordering::SeqCst) == 0 {
            let rival = Version {
                ts: item.record.version.ts + 1,
                node: NodeId(9),
            };
            let promised = replica.prepare(item.key.clone(), rival).await?;
            assert!(matches!(promised, PrepareOutcome::Promised { .. }));
        }
        Ok(())
    }
}

fn counter(n: u64) -> Change {
    Change::Write {
        body: Body::Value {
            ty: ValueType::String,
            payload: Bytes::from(n.to_string()),
        },
        expire_at: None,
        request: None,
    }
}

fn value(record: Option<&kv_cluster::Record>) -> u64 {
    record
        .and_then(|r| r.live_value(0))
        .map(|(_, v)| std::str::from_utf8(v).unwrap().parse().unwrap())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_retry_that_finds_its_own_value_newest_finishes_it_once() {
    let ring = Ring::new(3);
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    // Node 1 accepts; nodes 2 and 3 are outbid; node 3 is then cut off, so the retry's
    // majority is nodes 1 and 2 and its newest record is node 1's copy of the value.
    for (i, (node, dir)) in ring.nodes.iter().zip(&dirs).enumerate() {
        let inner = LocalReplica::new(open_store(dir.path()));
        let replica: Arc<dyn ReplicaApi> = match i {
            0 => Arc::new(inner),
            _ => Arc::new(Watched {
                replica: inner,
                watch: Outbid {
                    then_unreachable: i == 2,
                    ..Outbid::default()
                },
            }),
        };
        ring.replicas.insert(*node, replica);
    }
    let coordinator = ring.coordinator_with(ManualClock::new(NodeId(1), 2_000_000), config(5_000));
    let mut calls = 0;
    let version = coordinator
        .consensus(key("counter"), Consistency::Quorum, &mut |state| {
            calls += 1;
            counter(value(state) + 1)
        })
        .await
        .expect("the retry finishes the command's own value")
        .expect("a write");
    assert_eq!(
        calls, 1,
        "the command ran once: its value was finished, not recomputed"
    );
    let chosen = coordinator
        .consensus(key("counter"), Consistency::Quorum, &mut |state| {
            assert_eq!(state.map(|r| r.version), Some(version));
            assert_eq!(value(state), 1, "counted once");
            Change::Keep
        })
        .await;
    assert_eq!(chosen, Ok(None));
}

//! A record above the ring's bound (kv_cluster::record_size) is refused by the
//! coordinator on every write path (a write, a batch, a consensus round, a transaction)
//! with an error that says so, and no replica ever holds its value: before the bound, a
//! blind write landed on the replicas that could take the message and timed out on the
//! others, and anti-entropy could never copy it.

mod replica_support;
mod support;

use bytes::Bytes;
use kv_cluster::coordinator::{Change, Coordinator, TxnDecision};
use kv_cluster::local_replica::LocalReplica;
use kv_cluster::quorum::{ClusterError, Consistency};
use kv_cluster::record_size::MAX_RECORD_BYTES;
use kv_cluster::replica_api::{ItemKey, ReplicaApi};
use kv_cluster::txn_lock::Intent;
use kv_cluster::{Body, Record};
use kv_keyspace::ValueType;
use replica_support::open_store;
use std::sync::Arc;
use support::{config, key, string, Ring};

fn oversized() -> Body {
    Body::Value {
        ty: ValueType::String,
        payload: Bytes::from(vec![b'v'; MAX_RECORD_BYTES]),
    }
}

fn assert_refused<T: std::fmt::Debug>(result: Result<T, ClusterError>, path: &str) {
    match result {
        Err(e @ ClusterError::Refused(_)) => assert!(
            e.to_string().contains("too large for a kvd cluster"),
            "{path}: {e}"
        ),
        other => panic!("{path}: an oversized record gave {other:?}"),
    }
}

/// No replica holds a value of `k` (a transaction's released locks may leave an empty
/// record).
fn assert_no_value(ring: &Ring, k: &str) {
    for fake in &ring.fakes {
        let value = fake
            .get(&key(k))
            .filter(|r: &Record| matches!(r.body, Body::Value { .. }));
        assert!(value.is_none(), "{k} holds a value on a replica");
    }
}

/// Three replica stores (the fakes take no part in consensus) and a coordinator of them.
struct StoreRing {
    coordinator: Coordinator,
    replicas: Vec<Arc<LocalReplica>>,
    _ring: Ring,
    _dirs: Vec<tempfile::TempDir>,
}

impl StoreRing {
    fn new() -> StoreRing {
        let ring = Ring::new(3);
        let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let replicas: Vec<Arc<LocalReplica>> = dirs
            .iter()
            .map(|d| Arc::new(LocalReplica::new(open_store(d.path()))))
            .collect();
        for (node, replica) in ring.nodes.iter().zip(&replicas) {
            ring.replicas.insert(*node, replica.clone());
        }
        StoreRing {
            coordinator: ring.coordinator(config(5_000)),
            replicas,
            _ring: ring,
            _dirs: dirs,
        }
    }

    /// The record of `k` on each replica.
    async fn records(&self, k: &ItemKey) -> Vec<Option<Record>> {
        let mut records = Vec::new();
        for r in &self.replicas {
            records.extend(r.read(vec![k.clone()]).await.expect("a local read"));
        }
        records
    }

    /// No replica holds a value of `k`, nor a lock on it.
    async fn assert_no_value_nor_lock(&self, k: &ItemKey) {
        for record in self.records(k).await.into_iter().flatten() {
            assert!(
                !matches!(record.body, Body::Value { .. }),
                "{:?} holds a value on a replica",
                k.key
            );
            let lock = record.txn.lock;
            assert!(lock.is_none(), "{:?} is still locked: {lock:?}", k.key);
        }
    }
}

#[tokio::test]
async fn a_write_and_a_batch_of_an_oversized_value_send_nothing() {
    let ring = Ring::new(3);
    let c = ring.coordinator(config(5_000));
    let Body::Value { ty, payload } = oversized() else {
        unreachable!()
    };
    let put = c
        .put(
            key("big"),
            Some((ty, payload.clone())),
            None,
            Consistency::All,
        )
        .await;
    assert_refused(put, "put");
    let results = c
        .put_batch(
            vec![
                (key("small"), string("v"), None),
                (key("big"), Some((ty, payload)), None),
            ],
            Consistency::All,
        )
        .await;
    assert!(results[0].is_ok(), "the batch's other key is written");
    assert_refused(results[1].clone(), "put_batch");
    assert_no_value(&ring, "big");
    // A value one key byte below the bound still passes (record_size's unit test has
    // the exact arithmetic).
    let fits = Bytes::from(vec![b'v'; MAX_RECORD_BYTES - "fits".len()]);
    c.put(
        key("fits"),
        Some((ValueType::String, fits)),
        None,
        Consistency::All,
    )
    .await
    .expect("a record at the bound");
}

#[tokio::test]
async fn a_consensus_round_refuses_an_oversized_value_before_any_accept() {
    let ring = StoreRing::new();
    let round = ring
        .coordinator
        .consensus(key("big"), Consistency::Quorum, &mut |_| Change::Write {
            body: oversized(),
            expire_at: None,
            request: None,
        })
        .await;
    assert_refused(round, "consensus");
    ring.assert_no_value_nor_lock(&key("big")).await;
}

#[tokio::test]
async fn a_transaction_with_an_oversized_intent_aborts_before_its_commit() {
    let ring = StoreRing::new();
    let keys = [key("{t}a"), key("{t}b")];
    let small = Body::Value {
        ty: ValueType::String,
        payload: Bytes::from_static(b"small"),
    };
    let committed = ring
        .coordinator
        .transaction(&keys, Consistency::All, &mut |_| {
            let write = |body| Intent::Write {
                body,
                expire_at: None,
            };
            TxnDecision::Commit(
                [
                    (key("{t}a"), write(small.clone())),
                    (key("{t}b"), write(oversized())),
                ]
                .into(),
            )
        })
        .await;
    assert_refused(committed, "transaction");
    // Nothing written, and its locks released before it returned.
    for k in &keys {
        ring.assert_no_value_nor_lock(k).await;
    }
}

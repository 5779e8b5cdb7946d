//! Writes to a replica catching up, over a real loopback bus (rpc/not_counted.rs): this
//! build's client reads `StoredNotCounted` back; a sender that does not say it takes
//! that answer (a build from before it) gets `FAILED_PRECONDITION` rather than an
//! outcome it would count as applied, and the write is stored either way.

use super::tests::{client, key, raw_client, signed_write, start, FakeReplica};
use super::*;
use crate::catch_up::CatchUp;
use crate::replica_api::{ReplicaApi, WriteItem, WriteOutcome};
use crate::{NodeId, Record, Version};
use bytes::Bytes;
use kv_keyspace::slot::key_partition;

fn item(k: &'static str, ts: u64) -> WriteItem {
    let version = Version {
        ts: ts << 16,
        node: NodeId(9),
    };
    WriteItem {
        key: key(k),
        record: Record::string(version, Bytes::from_static(b"v"), None),
    }
}

/// Catching up the partition of `k` only (its other replicas: nodes 2 and 3).
fn catching_up(k: &str) -> std::sync::Arc<CatchUp> {
    let state = CatchUp::needed();
    state.plan(
        [(key_partition(k.as_bytes()), vec![NodeId(2), NodeId(3)])],
        2,
    );
    state
}

/// A key in another partition than `k`'s.
fn elsewhere(k: &str) -> &'static str {
    ["b", "c", "d", "e", "f", "g"]
        .into_iter()
        .find(|o| key_partition(o.as_bytes()) != key_partition(k.as_bytes()))
        .expect("some key in another partition")
}

#[tokio::test]
async fn this_builds_client_reads_stored_not_counted_per_partition() {
    let s = start(FakeReplica::default(), None, None).await;
    *s.catch_up.lock() = Some(catching_up("a"));
    let other = elsewhere("a");
    let out = client(&s, None, None)
        .write(vec![item("a", 10), item(other, 10)])
        .await;
    assert_eq!(
        out,
        Ok(vec![WriteOutcome::StoredNotCounted, WriteOutcome::Applied]),
        "only the partition still catching up is not counted"
    );
    assert_eq!(s.replica.data.lock().len(), 2, "both stored");
    // A stale answer stays stale: the replica holds something newer, a fact.
    let out = client(&s, None, None).write(vec![item("a", 5)]).await;
    assert!(matches!(out.as_deref(), Ok([WriteOutcome::Stale { .. }])));
}

#[tokio::test]
async fn a_sender_from_before_the_field_is_refused_but_the_write_is_stored() {
    let s = start(FakeReplica::default(), None, None).await;
    *s.catch_up.lock() = Some(catching_up("a"));
    let auth = BusAuth::new(NodeId(2), None, None);
    let mut raw = raw_client(&s).await;
    let older = |items: Vec<WriteItem>| {
        // What an older build sends: no `takes_not_counted`.
        let msg = pb::WriteRequest {
            items: items.into_iter().map(convert::write_item_to_pb).collect(),
            ..Default::default()
        };
        signed_write(&auth, msg)
    };
    let err = raw.write(older(vec![item("a", 10)])).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    assert_eq!(s.replica.data.lock().len(), 1, "stored all the same");
    // Nothing to hide in a partition that counts: answered as before.
    let other = elsewhere("a");
    let ok = raw.write(older(vec![item(other, 10)])).await.unwrap();
    assert_eq!(ok.into_inner().outcomes, vec![pb::WriteOutcome::default()]);
    // Once caught up, the same sender's writes are answered applied again.
    let state = s.catch_up.lock().clone().unwrap();
    state.compared(key_partition(b"a"), NodeId(2));
    state.compared(key_partition(b"a"), NodeId(3));
    let ok = raw.write(older(vec![item("a", 11)])).await.unwrap();
    assert_eq!(ok.into_inner().outcomes, vec![pb::WriteOutcome::default()]);
}

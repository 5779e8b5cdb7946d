//! The `Publish` RPC over a real loopback bus: messages arrive in order with the
//! receiver's delivery count, a peer without the cluster secret is refused like on every
//! other call, and an oversized batch is refused before it reaches the node.

use super::tests::{client, start, FakeReplica};
use super::*;
use crate::pubsub_fanout::PubSubMessage;
use crate::replica_api::ReplicaError;
use bytes::Bytes;

fn message(i: usize) -> PubSubMessage {
    PubSubMessage {
        channel: Bytes::from_static(b"news"),
        message: Bytes::from(format!("m{i}")),
        sharded: i % 2 == 1,
    }
}

#[tokio::test]
async fn published_messages_arrive_in_order_and_strangers_are_refused() {
    let s = start(FakeReplica::default(), Some(b"s3cret"), Some("c1")).await;
    let batch: Vec<_> = (0..100).map(message).collect();
    let receivers = client(&s, Some(b"s3cret"), Some("c1"))
        .publish(batch.clone())
        .await
        .expect("the right secret passes");
    assert_eq!(receivers, 200);
    assert_eq!(*s.published.lock(), batch);

    for (secret, why) in [
        (Some(&b"other"[..]), "wrong cluster MAC"),
        (None, "no cluster MAC"),
    ] {
        match client(&s, secret, Some("c1"))
            .publish(vec![message(0)])
            .await
        {
            Err(ReplicaError::Failed(m)) => assert!(m.contains(why), "{m:?} lacks {why:?}"),
            other => panic!("a peer with {secret:?} was not refused: {other:?}"),
        }
    }
    assert_eq!(
        s.published.lock().len(),
        100,
        "refused messages are not delivered"
    );
}

#[tokio::test]
async fn a_batch_above_the_item_bound_is_refused_whole() {
    let s = start(FakeReplica::default(), None, None).await;
    let too_many = BusLimits::default().max_items + 1;
    let r = client(&s, None, None)
        .publish((0..too_many).map(message).collect())
        .await;
    match r {
        Err(ReplicaError::Failed(m)) => assert!(m.contains("items in one request"), "{m}"),
        other => panic!("an oversized batch was not refused: {other:?}"),
    }
    assert!(s.published.lock().is_empty());
}

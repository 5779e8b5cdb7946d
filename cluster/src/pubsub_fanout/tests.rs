//! The fan-out's laws without a network: bounded queues that drop and count, publish
//! order kept per peer, down peers and failed RPCs counted, never retried.

use super::*;
use std::time::{Duration, Instant};

fn msg(i: usize, payload_len: usize) -> PubSubMessage {
    let mut payload = format!("m{i}:").into_bytes();
    payload.resize(payload_len.max(payload.len()), b'x');
    PubSubMessage {
        channel: Bytes::from_static(b"news"),
        message: Bytes::from(payload),
        sharded: false,
    }
}

/// Every peer up.
struct AllUp;
impl Liveness for AllUp {
    fn state(&self, _: NodeId) -> PeerState {
        PeerState::Up
    }
}

/// These peers down, the others up.
struct Down(Vec<NodeId>);
impl Liveness for Down {
    fn state(&self, n: NodeId) -> PeerState {
        if self.0.contains(&n) {
            PeerState::Down
        } else {
            PeerState::Up
        }
    }
}

/// A sender that records each batch per peer; peers in `failing` fail every RPC, and
/// with `hang` no RPC ever completes.
#[derive(Default)]
struct Recorder {
    batches: Mutex<Vec<(NodeId, Vec<PubSubMessage>)>>,
    failing: Vec<NodeId>,
    hang: bool,
}

fn sender(r: &Arc<Recorder>) -> BatchSender {
    let r = r.clone();
    Arc::new(
        move |peer: NodeId, batch: Vec<PubSubMessage>| -> SendFuture {
            let r = r.clone();
            Box::pin(async move {
                if r.hang {
                    std::future::pending::<()>().await;
                }
                if r.failing.contains(&peer) {
                    return Err("peer refused".to_string());
                }
                r.batches.lock().push((peer, batch));
                Ok(())
            })
        },
    )
}

fn received_by(r: &Recorder, peer: NodeId) -> Vec<PubSubMessage> {
    r.batches
        .lock()
        .iter()
        .filter(|(p, _)| *p == peer)
        .flat_map(|(_, b)| b.iter().cloned())
        .collect()
}

async fn poll_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

const ME: NodeId = NodeId(1);
const PEERS: [NodeId; 3] = [NodeId(1), NodeId(2), NodeId(3)];

#[test]
fn a_full_queue_drops_what_does_not_fit_and_takes_again_once_drained() {
    let limit = 64 << 10;
    let q = PeerQueue::new(limit);
    let size = msg(0, 1000).queued_bytes();
    let accepted = (0..10_000).filter(|&i| q.push(msg(i, 1000))).count();
    assert_eq!(accepted, limit / size, "exactly what fits is kept");
    let (n, bytes) = q.queued();
    assert_eq!(n, accepted);
    assert!(
        bytes <= limit,
        "{bytes} bytes queued past the {limit} bound"
    );
    // Draining makes room again, and the oldest messages leave first.
    let batch = q.take_batch();
    assert_eq!(batch.len(), accepted);
    assert_eq!(batch[0], msg(0, 1000));
    assert_eq!(q.queued(), (0, 0));
    assert!(q.push(msg(1, 1000)));
}

#[test]
fn batches_respect_the_message_and_byte_bounds_and_a_large_message_goes_alone() {
    let q = PeerQueue::new(usize::MAX);
    for i in 0..(BATCH_MESSAGES + 10) {
        assert!(q.push(msg(i, 10)));
    }
    assert_eq!(q.take_batch().len(), BATCH_MESSAGES);
    assert_eq!(q.take_batch().len(), 10);
    assert!(q.push(msg(0, BATCH_BYTES * 2)));
    assert!(q.push(msg(1, 10)));
    assert_eq!(
        q.take_batch().len(),
        1,
        "a message above BATCH_BYTES travels alone"
    );
    assert_eq!(q.take_batch().len(), 1);
    assert!(q.take_batch().is_empty());
}

#[tokio::test]
async fn each_peer_gets_every_message_in_publish_order() {
    let (_stop, stopped) = watch::channel(false);
    let r = Arc::new(Recorder::default());
    let fanout = PubSubFanout::new(ME, sender(&r), PEER_QUEUE_BYTES, stopped);
    let total = 5000;
    for i in 0..total {
        fanout.broadcast(&msg(i, 20), &PEERS, &AllUp);
    }
    poll_until("both peers got every message", || {
        fanout.stats().sent == 2 * total as u64
    })
    .await;
    for peer in [NodeId(2), NodeId(3)] {
        let got = received_by(&r, peer);
        let want: Vec<_> = (0..total).map(|i| msg(i, 20)).collect();
        assert!(got == want, "node {peer} got the messages out of order");
    }
    assert!(
        received_by(&r, ME).is_empty(),
        "a node does not send to itself"
    );
    let s = fanout.stats();
    assert_eq!((s.dropped, s.queued, s.queued_bytes), (0, 0, 0));
}

#[tokio::test]
async fn a_peer_that_never_answers_costs_a_bounded_queue_and_counted_drops() {
    let (_stop, stopped) = watch::channel(false);
    let r = Arc::new(Recorder {
        hang: true,
        ..Recorder::default()
    });
    let limit = 1 << 20;
    let fanout = PubSubFanout::new(ME, sender(&r), limit, stopped);
    let total = 20_000u64;
    for i in 0..total as usize {
        fanout.broadcast(&msg(i, 1000), &[ME, NodeId(2)], &AllUp);
        // The sender takes its first batch and then hangs on it.
        if i == 0 {
            poll_until("the sender took the first batch", || {
                fanout.stats().queued == 0
            })
            .await;
        }
    }
    let s = fanout.stats();
    assert!(
        s.queued_bytes <= limit as u64,
        "{} bytes queued past the bound",
        s.queued_bytes
    );
    assert!(s.dropped > 0, "a full queue must drop");
    assert_eq!(
        s.dropped + s.queued + 1,
        total,
        "every message is queued, in the hung RPC, or counted as dropped"
    );
    assert_eq!(s.sent, 0);
}

#[tokio::test]
async fn down_peers_failed_rpcs_and_oversized_messages_are_dropped_and_counted() {
    let (_stop, stopped) = watch::channel(false);
    let r = Arc::new(Recorder {
        failing: vec![NodeId(3)],
        ..Recorder::default()
    });
    let fanout = PubSubFanout::new(ME, sender(&r), PEER_QUEUE_BYTES, stopped);
    let peers = [ME, NodeId(2), NodeId(3), NodeId(4)];
    let down = Down(vec![NodeId(4)]);
    for i in 0..100 {
        fanout.broadcast(&msg(i, 10), &peers, &down);
    }
    poll_until("node 2 got everything, node 3's RPCs failed", || {
        let s = fanout.stats();
        s.sent == 100 && s.dropped == 200
    })
    .await;
    assert_eq!(received_by(&r, NodeId(2)).len(), 100);
    let huge = PubSubMessage {
        channel: Bytes::from_static(b"c"),
        message: Bytes::from(vec![0u8; MAX_MESSAGE_BYTES]),
        sharded: false,
    };
    fanout.broadcast(&huge, &peers, &AllUp);
    assert_eq!(
        fanout.stats().dropped,
        203,
        "too large for the bus: dropped for each of the three peers"
    );
}

#[tokio::test]
async fn senders_stop_at_shutdown() {
    let (stop, stopped) = watch::channel(false);
    let r = Arc::new(Recorder::default());
    let fanout = PubSubFanout::new(ME, sender(&r), PEER_QUEUE_BYTES, stopped);
    fanout.broadcast(&msg(0, 1), &PEERS, &AllUp);
    poll_until("sent", || fanout.stats().sent == 2).await;
    stop.send(true).expect("the fan-out holds a receiver");
    // Let the senders see the shutdown, then nothing more leaves.
    tokio::task::yield_now().await;
    poll_until("the senders ended", || Arc::strong_count(&fanout.send) == 1).await;
    fanout.broadcast(&msg(1, 1), &PEERS, &AllUp);
    assert_eq!(fanout.stats().sent, 2);
    assert_eq!(
        fanout.stats().queued,
        2,
        "queued, never sent after shutdown"
    );
}

#[test]
fn messages_from_peers_reach_the_listener_in_order() {
    let (_stop, stopped) = watch::channel(false);
    let r = Arc::new(Recorder::default());
    let fanout = PubSubFanout::new(ME, sender(&r), PEER_QUEUE_BYTES, stopped);
    assert_eq!(fanout.deliver(&[msg(0, 1)]), 0, "nobody listens yet");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    fanout.listen(Arc::new(move |m: &PubSubMessage| {
        s.lock().push(m.clone());
        2
    }));
    let batch: Vec<_> = (0..10).map(|i| msg(i, 1)).collect();
    assert_eq!(fanout.deliver(&batch), 20);
    assert_eq!(*seen.lock(), batch);
    assert_eq!(fanout.stats().received, 11);
}

//! The replica stream between a real bus server and client (rpc/replica_stream/).

use super::server::Serves;
use super::tests::{client_with, key, launch, poll_until, version, FakeReplica, Server};
use super::{BusLimits, ClientConfig, PeerClient};
use crate::replica_api::{ReplicaApi, ReplicaError, WriteItem, WriteOutcome};
use crate::Record;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// A write of a tombstone at `ts` for `k`.
pub(super) fn tombstone(k: &'static str, ts: u64) -> Vec<WriteItem> {
    vec![WriteItem {
        key: key(k),
        record: Record::tombstone(version(ts)),
    }]
}

/// A fake replica served on a new port (with the replica protocols of `serves`, under
/// `limits`) and a client of it.
pub(super) async fn serving(serves: Serves, limits: BusLimits) -> (Server, PeerClient) {
    serving_with(serves, limits, ClientConfig::default()).await
}

/// [`serving`] with a client of settings `config`.
pub(super) async fn serving_with(
    serves: Serves,
    limits: BusLimits,
    config: ClientConfig,
) -> (Server, PeerClient) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let s = launch(
        listener,
        FakeReplica::default(),
        None,
        None,
        None,
        serves,
        limits,
    );
    let c = client_with(&s, None, None, config);
    (s, c)
}

/// The carriers of frames: the gRPC stream (a peer of the build before the link) and
/// the link.
const CARRIERS: [Serves; 2] = [Serves::Streams, Serves::StreamsAndLinks];

#[tokio::test]
async fn writes_and_reads_share_one_stream() {
    for serves in CARRIERS {
        writes_and_reads_share_one(serves).await;
    }
}

async fn writes_and_reads_share_one(serves: Serves) {
    let (_s, c) = serving(serves, BusLimits::default()).await;
    for ts in 1..=20 {
        assert_eq!(
            c.write(tombstone("k", ts)).await,
            Ok(vec![WriteOutcome::Applied])
        );
        assert_eq!(
            c.read(vec![key("k")]).await,
            Ok(vec![Some(Record::tombstone(version(ts)))])
        );
    }
    assert_eq!(
        c.write(tombstone("k", 3)).await,
        Ok(vec![WriteOutcome::Stale {
            current: version(20)
        }]),
        "a replica's answer travels in the frame as it does in the unary reply"
    );
    assert_eq!(c.streams_opened(), 1, "forty requests, one stream");
    let links = u64::from(serves == Serves::StreamsAndLinks);
    assert_eq!(c.links_opened(), links, "{serves:?}");
}

#[tokio::test]
async fn a_peer_without_the_stream_is_served_by_unary_calls() {
    let (_s, c) = serving(Serves::Unary, BusLimits::default()).await;
    assert_eq!(
        c.write(tombstone("k", 1)).await,
        Ok(vec![WriteOutcome::Applied])
    );
    assert_eq!(
        c.read(vec![key("k")]).await,
        Ok(vec![Some(Record::tombstone(version(1)))])
    );
    assert_eq!(c.streams_opened(), 0);
}

#[tokio::test]
async fn shutdown_answers_frames_in_flight_then_ends_the_stream_and_the_client_reopens() {
    shutdown_answers_frames_in_flight(Serves::Streams).await;
}

#[tokio::test]
async fn shutdown_answers_frames_in_flight_then_ends_the_link_and_the_client_reopens() {
    shutdown_answers_frames_in_flight(Serves::StreamsAndLinks).await;
}

async fn shutdown_answers_frames_in_flight(serves: Serves) {
    let gate = Arc::new(Semaphore::new(0));
    let fake = FakeReplica {
        gate: Some(gate.clone()),
        ..FakeReplica::default()
    };
    let first = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = first.local_addr().unwrap();
    let s = launch(first, fake, None, None, None, serves, BusLimits::default());
    let config = ClientConfig {
        timeout: Duration::from_secs(30),
        ..ClientConfig::default()
    };
    let c = Arc::new(client_with(&s, None, None, config));
    let held = tokio::spawn({
        let c = c.clone();
        async move { c.write(tombstone("held", 1)).await }
    });
    let replica = s.replica.clone();
    poll_until("the write to reach the replica", || {
        replica.entered.load(Ordering::SeqCst) == 1
    })
    .await;
    // A graceful shutdown waits for open HTTP/2 streams: the replica stream must end by
    // itself, after answering the frame in flight.
    drop(s.stop);
    gate.add_permits(1);
    assert_eq!(held.await.unwrap(), Ok(vec![WriteOutcome::Applied]));
    let served = tokio::time::timeout(Duration::from_secs(10), s.served).await;
    assert!(
        matches!(served, Ok(Ok(Ok(())))),
        "the server shut down with a replica stream open: {served:?}"
    );
    // Another server on the same address: the client's next requests open a new
    // stream (one request may find the old one closing and fail as unreachable).
    let again = TcpListener::bind(addr).await.unwrap();
    let s2 = launch(
        again,
        FakeReplica::default(),
        None,
        None,
        None,
        serves,
        BusLimits::default(),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match c.write(tombstone("after", 2)).await {
            Ok(outcomes) => {
                assert_eq!(outcomes, vec![WriteOutcome::Applied]);
                break;
            }
            Err(ReplicaError::Unreachable(_)) if tokio::time::Instant::now() < deadline => {
                tokio::task::yield_now().await;
            }
            Err(e) => panic!("write after the restart: {e:?}"),
        }
    }
    assert_eq!(s2.replica.data.lock().len(), 1);
    assert_eq!(c.streams_opened(), 2);
    let links = u64::from(serves == Serves::StreamsAndLinks);
    assert_eq!(c.links_opened(), 2 * links);
}

#[tokio::test]
async fn a_stream_outlives_the_servers_request_timeout() {
    // tonic's server timeout bounds a call until its response headers, not a stream's
    // body; if it ended streams, frames in flight at that moment would fail.
    let limits = BusLimits {
        request_timeout: Duration::from_millis(100),
        ..BusLimits::default()
    };
    for serves in CARRIERS {
        stream_outlives_request_timeout(serves, limits).await;
    }
}

async fn stream_outlives_request_timeout(serves: Serves, limits: BusLimits) {
    let (_s, c) = serving(serves, limits).await;
    assert_eq!(
        c.write(tombstone("k", 1)).await,
        Ok(vec![WriteOutcome::Applied])
    );
    // Time passing is what is tested here: three request timeouts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        c.write(tombstone("k", 2)).await,
        Ok(vec![WriteOutcome::Applied])
    );
    assert_eq!(c.streams_opened(), 1, "the first stream still serves");
}

#[tokio::test]
async fn malformed_frames_get_errors_and_the_stream_keeps_serving_and_unsigned_streams_are_refused()
{
    use super::pb;
    use super::replica_stream::{FrameReply, FrameRequest};
    let (s, _c) = serving(Serves::StreamsAndLinks, BusLimits::default()).await;
    let mut raw = super::tests::raw_client(&s).await;
    // Unsigned: refused before any frame is read.
    let (_unsigned_frames, unsigned) = tokio::sync::mpsc::channel::<pb::ReplicaFrame>(1);
    let refused = raw
        .replica_stream(tonic::Request::new(
            tokio_stream::wrappers::ReceiverStream::new(unsigned),
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    // Signed: a frame without a request, one with too many items, one whose record does
    // not decode, then a good one; each gets its own answer.
    let auth = crate::rpc::BusAuth::new(crate::NodeId(2), None, None);
    let (frames, outgoing) = tokio::sync::mpsc::channel::<pb::ReplicaFrame>(8);
    let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(outgoing));
    let creds = auth.sign("ReplicaStream", super::auth::unix_ms());
    super::metadata::write_credentials(request.metadata_mut(), "ReplicaStream", &creds);
    let mut replies = raw.replica_stream(request).await.unwrap().into_inner();
    let too_many = pb::ReadRequest {
        keys: vec![pb::ItemKey::default(); BusLimits::default().max_items + 1],
        layout_version: 0,
    };
    let junk = pb::WriteRequest {
        items: vec![pb::WriteItem {
            key: Some(pb::ItemKey {
                db: 0,
                key: bytes::Bytes::from_static(b"k"),
            }),
            record: bytes::Bytes::from_static(b"\x01garbage"),
        }],
        ..Default::default()
    };
    let good = pb::ReadRequest {
        keys: vec![pb::ItemKey {
            db: 0,
            key: bytes::Bytes::from_static(b"k"),
        }],
        layout_version: 0,
    };
    let sent = [
        (1, None),
        (2, Some(FrameRequest::Read(too_many))),
        (3, Some(FrameRequest::Write(junk))),
        (4, Some(FrameRequest::Read(good))),
    ];
    for (id, request) in sent {
        frames.send(pb::ReplicaFrame { id, request }).await.unwrap();
    }
    let mut answers = std::collections::BTreeMap::new();
    while answers.len() < 4 {
        let reply = replies.message().await.unwrap().expect("a reply per frame");
        answers.insert(reply.id, reply.reply);
    }
    for id in [1, 2, 3] {
        match &answers[&id] {
            Some(FrameReply::Error(e)) => assert_eq!(
                tonic::Code::from_i32(e.code),
                tonic::Code::InvalidArgument,
                "frame {id}: {}",
                e.message
            ),
            other => panic!("frame {id} answered {other:?}"),
        }
    }
    match &answers[&4] {
        Some(FrameReply::Read(r)) => assert_eq!(r.records.len(), 1),
        other => panic!("the good frame answered {other:?}"),
    }
}

#[tokio::test]
async fn a_request_larger_than_a_frame_goes_as_a_unary_call() {
    let (s, c) = serving(Serves::StreamsAndLinks, BusLimits::default()).await;
    let big = vec![WriteItem {
        key: key("big"),
        record: Record::string(
            version(1),
            bytes::Bytes::from(vec![7u8; super::client::MAX_FRAME_BYTES + 1]),
            None,
        ),
    }];
    assert_eq!(c.write(big).await, Ok(vec![WriteOutcome::Applied]));
    assert_eq!(
        c.streams_opened(),
        0,
        "the bulk write did not use the stream"
    );
    assert_eq!(
        c.write(tombstone("small", 1)).await,
        Ok(vec![WriteOutcome::Applied])
    );
    assert_eq!(c.streams_opened(), 1, "a small one did");
    assert_eq!(s.replica.data.lock().len(), 2);
}

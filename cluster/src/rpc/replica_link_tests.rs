//! The replica link between a real bus server and client (rpc/replica_link/), and
//! what the bus port does with connections that are neither a link nor gRPC.

use super::pb;
use super::replica_stream_tests::{serving, tombstone};
use super::server::Serves;
use super::tests::{client_with, key, launch, version, FakeReplica};
use super::{BusLimits, ClientConfig};
use crate::replica_api::{ReplicaApi, ReplicaError, WriteOutcome};
use crate::Record;
use prost::Message;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// `m` with its 4-byte length, as the link writes it.
fn framed(m: &impl Message) -> Vec<u8> {
    let body = m.encode_to_vec();
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

#[tokio::test]
async fn a_peer_of_the_build_before_the_link_is_served_on_the_grpc_stream() {
    let (s, c) = serving(Serves::Streams, BusLimits::default()).await;
    for ts in 1..=3 {
        assert_eq!(
            c.write(tombstone("k", ts)).await,
            Ok(vec![WriteOutcome::Applied])
        );
    }
    assert_eq!(
        c.read(vec![key("k")]).await,
        Ok(vec![Some(Record::tombstone(version(3)))])
    );
    assert_eq!(c.streams_opened(), 1, "one gRPC stream");
    assert_eq!(
        c.links_opened(),
        0,
        "the link's magic was answered as HTTP/2"
    );
    assert_eq!(s.replica.data.lock().len(), 1);
}

#[tokio::test]
async fn a_link_is_authenticated_both_ways_with_the_cluster_secret() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let s = launch(
        listener,
        FakeReplica::default(),
        Some(b"right".as_slice()),
        None,
        None,
        Serves::StreamsAndLinks,
        BusLimits::default(),
    );
    let good = client_with(&s, Some(b"right".as_slice()), None, ClientConfig::default());
    assert_eq!(
        good.write(tombstone("k", 1)).await,
        Ok(vec![WriteOutcome::Applied])
    );
    assert_eq!(good.links_opened(), 1);
    for (secret, why) in [
        (Some(b"wrong".as_slice()), "wrong cluster MAC"),
        (None, "sent no cluster MAC"),
    ] {
        let bad = client_with(&s, secret, None, ClientConfig::default());
        match bad.write(tombstone("k", 2)).await {
            Err(ReplicaError::Failed(m)) => assert!(m.contains(why), "{m}"),
            other => panic!("a link without the secret answered {other:?}"),
        }
        assert_eq!(bad.links_opened(), 0);
    }
    assert_eq!(
        s.replica.data.lock().len(),
        1,
        "nothing written by outsiders"
    );
}

/// A bus port that completes the link's handshake and then never says anything again
/// (a peer stopped with SIGSTOP, or cut off, looks like this from the dialer).
async fn silent_link_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut tcp, _)) = listener.accept().await {
            let mut magic = [0u8; 8];
            tcp.read_exact(&mut magic).await.unwrap();
            let len = tcp.read_u32().await.unwrap();
            let mut hello = vec![0; len as usize];
            tcp.read_exact(&mut hello).await.unwrap();
            let mut answer = b"KVDLINK1".to_vec();
            answer.extend(framed(&pb::LinkWelcome::default()));
            tcp.write_all(&answer).await.unwrap();
            held.push(tcp);
        }
    });
    addr
}

#[tokio::test]
async fn a_link_that_hears_nothing_is_closed_and_its_requests_fail_as_unreachable() {
    let addr = silent_link_server().await;
    let config = ClientConfig {
        // Far longer than the link's two seconds of silence.
        timeout: Duration::from_secs(60),
        ..ClientConfig::default()
    };
    let auth = super::BusAuth::new(crate::NodeId(2), None, None);
    let c = super::PeerClient::new(&addr, auth, config).unwrap();
    let started = std::time::Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(20), c.write(tombstone("k", 1)))
        .await
        .expect("the write ended with the link, not with its 60 s deadline");
    match answer {
        Err(ReplicaError::Unreachable(m)) => assert!(m.contains("sent nothing"), "{m}"),
        other => panic!("a write on a silent link answered {other:?}"),
    }
    assert_eq!(c.links_opened(), 1);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "closed after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_bad_frame_or_handshake_closes_only_its_own_connection() {
    let (s, c) = serving(Serves::StreamsAndLinks, BusLimits::default()).await;
    let auth = super::BusAuth::new(crate::NodeId(2), None, None);
    let hello = super::replica_link::hello_for_tests(&auth);
    let mut attempts: Vec<(&str, Vec<u8>)> = vec![
        ("a magic that is not the link's", b"KVDLINKX".to_vec()),
        ("a hello longer than a handshake may be", {
            let mut v = b"KVDLINK1".to_vec();
            v.extend_from_slice(&u32::MAX.to_be_bytes());
            v
        }),
        ("a hello that is not protobuf", {
            let mut v = b"KVDLINK1".to_vec();
            v.extend_from_slice(&3u32.to_be_bytes());
            v.extend_from_slice(b"\xff\xff\xff");
            v
        }),
    ];
    // A good handshake, then a frame claiming 4 GiB: the connection closes without the
    // server reserving the claimed length.
    let mut huge = b"KVDLINK1".to_vec();
    huge.extend(framed(&hello));
    huge.extend_from_slice(&u32::MAX.to_be_bytes());
    attempts.push(("a frame above the message bound", huge));
    for (what, bytes) in attempts {
        let mut tcp = TcpStream::connect(&s.addr).await.unwrap();
        tcp.write_all(&bytes).await.unwrap();
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut rest))
            .await
            .unwrap_or_else(|_| panic!("{what}: the server kept the connection open"));
        // Closed (EOF) or reset: either way, nothing more is served on it.
        let _ = closed;
    }
    // The node still serves everyone else, on both carriers.
    assert_eq!(
        c.write(tombstone("k", 1)).await,
        Ok(vec![WriteOutcome::Applied])
    );
    assert_eq!(c.links_opened(), 1);
    let mut raw = super::tests::raw_client(&s).await;
    let refused = raw
        .read(tonic::Request::new(pb::ReadRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::Unauthenticated,
        "gRPC still served"
    );
}

#[tokio::test]
async fn a_connection_that_sends_nothing_does_not_hold_up_the_others() {
    let (s, c) = serving(Serves::StreamsAndLinks, BusLimits::default()).await;
    let _silent: Vec<TcpStream> = {
        let mut v = Vec::new();
        for _ in 0..8 {
            v.push(TcpStream::connect(&s.addr).await.unwrap());
        }
        v
    };
    assert_eq!(
        c.write(tombstone("k", 1)).await,
        Ok(vec![WriteOutcome::Applied])
    );
    let mut raw = super::tests::raw_client(&s).await;
    let refused = raw
        .read(tonic::Request::new(pb::ReadRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
}

#[tokio::test]
async fn a_client_reports_how_its_replica_requests_travel() {
    use super::Carrier;
    for (serves, carrier) in [
        (Serves::StreamsAndLinks, Carrier::Link),
        (Serves::Streams, Carrier::Stream),
        (Serves::Unary, Carrier::Unary),
    ] {
        let (_s, c) = serving(serves, BusLimits::default()).await;
        assert_eq!(c.carrier(), Carrier::None, "{serves:?}: nothing sent yet");
        assert_eq!(
            c.write(tombstone("k", 1)).await,
            Ok(vec![WriteOutcome::Applied])
        );
        assert_eq!(c.carrier(), carrier, "{serves:?}");
    }
}

#[tokio::test]
async fn an_answer_above_the_message_bound_is_refused_alone_and_the_link_keeps_serving() {
    let limits = BusLimits {
        max_message_bytes: 4096,
        ..BusLimits::default()
    };
    let (s, _) = serving(Serves::StreamsAndLinks, limits).await;
    let big = Record::string(version(1), bytes::Bytes::from(vec![7u8; 8192]), None);
    s.replica.data.lock().insert(key("big"), big);
    let config = ClientConfig {
        timeout: Duration::from_millis(500),
        ..ClientConfig::default()
    };
    let c = client_with(&s, None, None, config);
    assert_eq!(
        c.write(tombstone("small", 1)).await,
        Ok(vec![WriteOutcome::Applied])
    );
    // Refused by the server (rpc/server.rs `serve_read`), at once: before, the carrier
    // dropped the answer and the read timed out.
    let big_read = c.read(vec![key("big")]).await;
    assert!(
        matches!(big_read, Err(ReplicaError::TooLarge(_))),
        "an answer the server may not send: {big_read:?}"
    );
    // The same link still carries the frames after it, both ways.
    for ts in 2..=4 {
        assert_eq!(
            c.write(tombstone("small", ts)).await,
            Ok(vec![WriteOutcome::Applied])
        );
    }
    assert_eq!(
        c.read(vec![key("small")]).await,
        Ok(vec![Some(Record::tombstone(version(4)))])
    );
    assert_eq!(c.links_opened(), 1, "one link throughout");
}

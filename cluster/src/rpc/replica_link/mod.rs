//! The replica link: the replica stream's frames on a plain TCP connection of the bus
//! port, without HTTP/2 (docs/cluster-protocol.md, "The replica link").
//!
//! On the gRPC stream every frame still went through HTTP/2 (h2's stream state, flow
//! control and framing, hyper's connection task) and tonic's body encoding on both
//! sides: measured, the larger part of a remote replica request's CPU
//! (docs/performance.md, "The replica link"). The link carries the same protobuf
//! frames, each behind a 4-byte length, after a handshake that authenticates the
//! dialing node as a gRPC call does (the same HMAC credentials, signed for
//! [`METHOD`]). It serves only Write and Read frames; everything else stays on gRPC.
//!
//! A connection whose first byte is [`MAGIC`]'s first is a link; any other is handed
//! to the gRPC server (an HTTP/2 client's preface starts with `P`). A build without
//! the link answers the magic as HTTP/2 does any bad preface (SETTINGS, GOAWAY, a
//! close), never with the magic, and the dialer falls back to the gRPC stream. Under
//! TLS on the bus the link is not used (its frames would travel unencrypted beside
//! TLS-protected gRPC): the gRPC stream carries them.
//!
//! Liveness: the dialer sends an empty frame (a heartbeat) every
//! [`HEARTBEAT_INTERVAL`] and the server answers each with one; a dialer that hears
//! nothing for [`DEAD_AFTER_SILENT_BEATS`] intervals closes the link (as HTTP/2
//! keepalive closed the gRPC connection), and a server that hears nothing for
//! [`SERVER_IDLE`] closes its side.

// Frames end in tonic's `Status`, by value, as the gRPC stream's do.
#![allow(clippy::result_large_err)]

mod accept;
mod codec;
mod dial;

pub(crate) use accept::{accept_loop, Serves};
pub(crate) use dial::{dial, Dialed};

use super::pb;
use std::time::Duration;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;
use tokio_util::codec::{Encoder, FramedWrite};

/// What a dialer sends first, and the server answers with before its welcome.
pub(crate) const MAGIC: &[u8; 8] = b"KVDLINK1";

/// The method a link's credentials are signed for.
pub(crate) const METHOD: &str = "ReplicaLink";

/// Largest handshake message (a hello or a welcome), either way.
const MAX_HANDSHAKE_BYTES: usize = 4096;

/// How long a connection may take to send its first byte, and a handshake to finish.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a dialer sends a heartbeat (and checks that it heard from the peer).
pub(crate) const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);

/// Heartbeat intervals in a row with nothing heard after which a dialer closes its
/// link: about two seconds, as the gRPC connection's keepalive (a one-second ping
/// unanswered for one second).
const DEAD_AFTER_SILENT_BEATS: u32 = 2;

/// A server closes a link it heard nothing on (not even a heartbeat) for this long.
const SERVER_IDLE: Duration = Duration::from_secs(10);

/// Counts what a side of a link has heard, for its liveness watch.
#[derive(Default)]
struct Heard(std::sync::atomic::AtomicU64);

impl Heard {
    fn tick(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn count(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Returns once `heard` has not moved for `silent_ticks` checks `every` apart, sending
/// a heartbeat on `beat` (when given) at each check; that is the link's death.
async fn silence(heard: &Heard, every: Duration, silent_ticks: u32, beat: Option<&BeatSender>) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate.
    ticker.tick().await;
    let mut last = heard.count();
    let mut silent = 0;
    loop {
        if let Some(beat) = beat {
            // Full: a heartbeat is already waiting to be written.
            let _ = beat.try_send(());
        }
        ticker.tick().await;
        let now = heard.count();
        if now == last {
            silent += 1;
            if silent >= silent_ticks {
                return;
            }
        } else {
            silent = 0;
            last = now;
        }
    }
}

/// Where heartbeats to be written are queued (capacity one: they carry nothing).
type BeatSender = tokio::sync::mpsc::Sender<()>;

/// Writes what is queued on `queued` (as `frame` makes it a frame; `None`: nothing to
/// write) and heartbeats, every frame waiting when the writer wakes in one write, until
/// `queued` is closed and drained or the connection breaks.
async fn write_frames<T, Out: prost::Message>(
    mut out: FramedWrite<OwnedWriteHalf, impl Encoder<Option<Out>, Error = std::io::Error>>,
    mut queued: mpsc::Receiver<T>,
    mut beats: mpsc::Receiver<()>,
    frame: fn(T) -> Option<Out>,
) {
    use futures::SinkExt;
    loop {
        let first = tokio::select! {
            biased;
            item = queued.recv() => match item {
                Some(item) => match frame(item) {
                    Some(f) => Some(f),
                    None => continue,
                },
                None => break,
            },
            Some(()) = beats.recv() => None,
        };
        if first.is_some() {
            // Let the other ready tasks run first, so the frames they queue go out in
            // this write: woken by the first sender, this task would otherwise run
            // right after it (tokio's LIFO slot) and write one frame per syscall, while
            // 50 clients' requests each become ready in the same turn. With nothing
            // else ready it is polled again at once. The client connections do the
            // same with their replies (docs/performance.md, "Replies in bursts").
            tokio::task::yield_now().await;
        }
        let mut fed = feed_or_skip(&mut out, first).await;
        while fed.is_ok() {
            match queued.try_recv() {
                Ok(item) => {
                    if let Some(f) = frame(item) {
                        fed = feed_or_skip(&mut out, Some(f)).await;
                    }
                }
                Err(_) => break,
            }
        }
        if let Err(e) = fed.and(out.flush().await) {
            tracing::debug!(error = %e, "replica link write failed");
            break;
        }
    }
}

/// Queues `frame` for writing. A frame above the message bound (a Read answer of large
/// values) is dropped, and its caller times out as on a lost reply: the codec refuses it
/// before writing a byte, so the frames before and after it still travel (on the gRPC
/// stream, too, only that message fails).
async fn feed_or_skip<Out>(
    out: &mut FramedWrite<OwnedWriteHalf, impl Encoder<Option<Out>, Error = std::io::Error>>,
    frame: Option<Out>,
) -> std::io::Result<()> {
    use futures::SinkExt;
    match out.feed(frame).await {
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            tracing::warn!(error = %e, "replica link frame not sent");
            Ok(())
        }
        fed => fed,
    }
}

/// The credentials of a hello, as the gRPC metadata carries them.
fn hello_to_pb(c: &super::auth::Credentials) -> pb::LinkHello {
    pb::LinkHello {
        node: c.node.to_string(),
        cluster_id: c.cluster_id.clone().unwrap_or_default(),
        ts_ms: c.ts_ms,
        mac: c.mac.map(|m| m.to_vec()).unwrap_or_default().into(),
    }
}

/// A hello's credentials back; an error names what is malformed.
fn hello_from_pb(h: pb::LinkHello) -> Result<super::auth::Credentials, String> {
    let node = crate::NodeId::parse(&h.node).ok_or("malformed node id")?;
    let mac = match h.mac.len() {
        0 => None,
        n if n == super::auth::MAC_LEN => {
            let mut m = [0; super::auth::MAC_LEN];
            m.copy_from_slice(&h.mac);
            Some(m)
        }
        n => return Err(format!("a MAC of {n} bytes")),
    };
    Ok(super::auth::Credentials {
        node,
        cluster_id: (!h.cluster_id.is_empty()).then_some(h.cluster_id),
        ts_ms: h.ts_ms,
        mac,
    })
}

/// A signed hello of `auth`'s, as a dialer sends it (tests that play dialers).
#[cfg(test)]
pub(crate) fn hello_for_tests(auth: &super::auth::BusAuth) -> pb::LinkHello {
    hello_to_pb(&auth.sign(METHOD, super::auth::unix_ms()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::auth::BusAuth;
    use crate::NodeId;

    #[test]
    fn a_hello_carries_the_credentials_unchanged() {
        for auth in [
            BusAuth::new(NodeId(7), Some(b"s3cret"), Some("c-1".into())),
            BusAuth::new(NodeId(8), None, None),
        ] {
            let creds = auth.sign(METHOD, 1_700_000_000_000);
            assert_eq!(hello_from_pb(hello_to_pb(&creds)), Ok(creds));
        }
    }

    #[test]
    fn a_hello_with_a_short_mac_or_no_node_is_malformed() {
        let auth = BusAuth::new(NodeId(7), Some(b"s3cret"), None);
        let mut h = hello_to_pb(&auth.sign(METHOD, 1));
        h.mac = bytes::Bytes::from_static(b"short");
        assert!(hello_from_pb(h.clone()).is_err());
        h.node = String::new();
        assert!(hello_from_pb(h).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn silence_returns_only_after_the_silent_ticks_in_a_row() {
        let heard = std::sync::Arc::new(Heard::default());
        let (beat, mut beats) = tokio::sync::mpsc::channel(1);
        let watch = tokio::spawn({
            let heard = heard.clone();
            async move { silence(&heard, Duration::from_secs(1), 2, Some(&beat)).await }
        });
        // Something heard every second: alive for as long as that lasts.
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(900)).await;
            heard.tick();
            assert!(beats.try_recv().is_ok(), "a heartbeat each interval");
        }
        assert!(!watch.is_finished());
        // Then nothing: dead two intervals later, not before.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!watch.is_finished());
        tokio::time::timeout(Duration::from_secs(2), watch)
            .await
            .expect("silence noticed")
            .unwrap();
    }
}

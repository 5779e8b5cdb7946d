//! The serving side: the bus port's accept loop, which hands each connection to the
//! link or to the gRPC server by its first byte, and the link's handshake and frames
//! (served by the gRPC stream's own frame loop: the same admission, limits, deadlines
//! and handler).

use super::super::auth::{unix_ms, AuthError, BusAuth};
use super::super::pb;
use super::super::replica_stream::{error_to_pb, read_frames};
use super::super::server::{refused, Admitted, Service};
use super::codec::{encode_one, read_one, FrameCodec};
use super::{
    hello_from_pb, silence, write_frames, Heard, HANDSHAKE_TIMEOUT, MAGIC, MAX_HANDSHAKE_BYTES,
    METHOD, SERVER_IDLE,
};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite};
use tonic::Status;

/// Which of the replica protocols a bus server serves (tests play older builds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Serves {
    /// Unary Write and Read only (a build from before the replica stream).
    Unary,
    /// The gRPC replica stream too (a build from before the link).
    // Only tests play such a build.
    #[cfg_attr(not(test), allow(dead_code))]
    Streams,
    /// The link too (this build).
    StreamsAndLinks,
}

type Incoming = FrameCodec<pb::ReplicaFrame, pb::ReplicaFrameReply>;

/// A connection for the gRPC server.
pub(crate) type ForGrpc = std::io::Result<TcpStream>;

/// Accepts connections on `listener` until the server stops: links are served here,
/// every other connection is sent on `grpc`.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    service: Service,
    auth: BusAuth,
    grpc: mpsc::Sender<ForGrpc>,
) {
    let mut stopping = service.stopping.clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopping.wait_for(|stop| *stop) => return,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // Out of file descriptors and the like: the next accept may succeed;
                // waiting a little keeps this loop from spinning meanwhile.
                tracing::warn!(error = %e, "bus accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // A connection that keeps Nagle is slower, not wrong: serve it anyway (gRPC
        // replies written in pieces waited for the peer's delayed ACK without it).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "bus connection keeps Nagle's algorithm");
        }
        let (service, auth, grpc) = (service.clone(), auth.clone(), grpc.clone());
        tokio::spawn(async move {
            let mut first = [0u8; 1];
            let peeked = tokio::time::timeout(HANDSHAKE_TIMEOUT, tcp.peek(&mut first)).await;
            match peeked {
                Ok(Ok(1)) if first[0] == MAGIC[0] => serve_link(service, auth, tcp).await,
                // Closed, silent or broken before a byte: nothing to serve.
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => {}
                // The gRPC server gone (shutting down): the connection closes.
                Ok(Ok(_)) => {
                    let _ = grpc.send(Ok(tcp)).await;
                }
            }
        });
    }
}

/// Serves one link: handshake, then frames until the peer closes it, it goes silent
/// for [`SERVER_IDLE`] or the server stops (frames in flight are answered first).
async fn serve_link(service: Service, auth: BusAuth, mut tcp: TcpStream) {
    let admitted = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&auth, &mut tcp)).await {
        Ok(Ok(admitted)) => admitted,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "replica link handshake failed");
            return;
        }
        Err(_) => return,
    };
    let at_once = service.limits.max_concurrent_per_connection.max(1);
    let (read, write) = tcp.into_split();
    let (replies, answered) = mpsc::channel(at_once);
    let (beat, beats) = mpsc::channel(1);
    let heard = Arc::new(Heard::default());
    let codec = || Incoming::new(service.limits.max_message_bytes);
    let frames = FramedRead::new(read, codec()).filter_map({
        let heard = heard.clone();
        move |frame| {
            heard.tick();
            std::future::ready(match frame {
                Ok(Some(frame)) => Some(Ok(frame)),
                Ok(None) => {
                    // Full: a heartbeat is already waiting to be written.
                    let _ = beat.try_send(());
                    None
                }
                Err(e) => Some(Err(Status::unavailable(e.to_string()))),
            })
        }
    });
    let writer = tokio::spawn(write_frames(
        FramedWrite::new(write, codec()),
        answered,
        beats,
        Result::ok,
    ));
    tokio::select! {
        _ = read_frames(service, admitted, Box::pin(frames), replies, at_once) => {}
        _ = silence(&heard, SERVER_IDLE, 1, None) => {
            writer.abort();
            return;
        }
    }
    // The frames still being served hold senders of `replies`: the writer answers them
    // and ends after the last.
    let _ = writer.await;
}

/// Reads and checks the dialer's magic and hello, answers with the magic and a
/// welcome (or the refusal), and admits the link.
async fn handshake(auth: &BusAuth, tcp: &mut TcpStream) -> std::io::Result<Admitted> {
    let mut magic = [0u8; 8];
    tcp.read_exact(&mut magic).await?;
    if &magic != MAGIC {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a replica link",
        ));
    }
    let hello: pb::LinkHello = read_one(tcp, MAX_HANDSHAKE_BYTES).await?;
    let checked = hello_from_pb(hello)
        .map_err(AuthError::Malformed)
        .and_then(|creds| auth.verify(METHOD, &creds, unix_ms()).map(|()| creds));
    let mut answer = MAGIC.to_vec();
    let admitted = match checked {
        Ok(creds) => {
            let reply_mac = creds.mac.as_ref().and_then(|m| auth.reply_mac(m));
            let welcome = pb::LinkWelcome {
                reply_mac: reply_mac.map(|m| m.to_vec()).unwrap_or_default().into(),
                refused: None,
            };
            encode_one(&welcome, &mut answer);
            Ok(Admitted::new(METHOD, creds.node, reply_mac))
        }
        Err(e) => {
            let welcome = pb::LinkWelcome {
                reply_mac: Default::default(),
                refused: Some(error_to_pb(&refused(e.clone()))),
            };
            encode_one(&welcome, &mut answer);
            Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                e.to_string(),
            ))
        }
    };
    tcp.write_all(&answer).await?;
    admitted
}

//! The dialing side of a link: connect, say hello, check the welcome, then three tasks
//! (docs/cluster-protocol.md, "The replica link"): the writer (frames and heartbeats,
//! each batch of queued frames in one write), the reader (answers to their waiters)
//! and the watch (heartbeats and the silence that ends the link).

use super::super::auth::{unix_ms, BusAuth};
use super::super::client::ClientConfig;
use super::super::pb;
use super::super::replica_stream::{error_from_pb, OpenStream, Pending};
use super::codec::{encode_one, read_one, FrameCodec};
use super::{
    hello_to_pb, silence, write_frames, Heard, DEAD_AFTER_SILENT_BEATS, HEARTBEAT_INTERVAL, MAGIC,
    MAX_HANDSHAKE_BYTES, METHOD,
};
use futures::StreamExt;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite};
use tonic::Status;

/// What dialing found.
pub(crate) enum Dialed {
    /// A link, authenticated both ways.
    Open(Arc<OpenStream>),
    /// The peer's build has no link (it answered as HTTP/2 does): use the gRPC stream.
    Unsupported,
}

type Outgoing = FrameCodec<pb::ReplicaFrameReply, pb::ReplicaFrame>;

/// Opens a link to the bus at `addr`.
pub(crate) async fn dial(
    addr: &str,
    auth: &BusAuth,
    config: &ClientConfig,
) -> Result<Dialed, Status> {
    let mut tcp = tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| Status::unavailable(format!("connecting to {addr} timed out")))?
        .map_err(|e| Status::unavailable(format!("connecting to {addr}: {e}")))?;
    // Without it, a frame written in two pieces waits for the peer's delayed ACK.
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "replica link keeps Nagle's algorithm");
    }
    let creds = auth.sign(METHOD, unix_ms());
    let welcome = tokio::time::timeout(config.timeout, async {
        let mut hello = MAGIC.to_vec();
        encode_one(&hello_to_pb(&creds), &mut hello);
        tcp.write_all(&hello).await?;
        let mut magic = [0u8; 8];
        // A build without the link closes the connection or answers HTTP/2 frames.
        match tcp.read_exact(&mut magic).await {
            Ok(_) if &magic == MAGIC => {}
            _ => return Ok(None),
        }
        read_one::<pb::LinkWelcome>(&mut tcp, MAX_HANDSHAKE_BYTES)
            .await
            .map(Some)
    })
    .await
    .map_err(|_| Status::deadline_exceeded("opening the replica link timed out"))?
    .map_err(|e| Status::unavailable(format!("opening the replica link to {addr}: {e}")))?;
    let Some(welcome) = welcome else {
        return Ok(Dialed::Unsupported);
    };
    if let Some(refused) = welcome.refused {
        return Err(error_from_pb(refused));
    }
    let reply_mac = (!welcome.reply_mac.is_empty()).then_some(&welcome.reply_mac[..]);
    auth.verify_reply(&creds, reply_mac)
        .map_err(|e| Status::unauthenticated(format!("unauthenticated reply: {e}")))?;
    Ok(Dialed::Open(Arc::new(start(tcp, config))))
}

/// Starts the tasks of an authenticated link.
fn start(tcp: TcpStream, config: &ClientConfig) -> OpenStream {
    let (read, write) = tcp.into_split();
    let (frames, outgoing) = mpsc::channel(super::super::replica_stream::FRAMES_QUEUED);
    let (beat, beats) = mpsc::channel(1);
    let pending = Arc::new(Pending::default());
    let heard = Arc::new(Heard::default());
    let writer = tokio::spawn(write_frames(
        FramedWrite::new(write, Outgoing::new(config.max_message_bytes)),
        outgoing,
        beats,
        Some,
    ));
    let reader = tokio::spawn(read_answers(
        FramedRead::new(read, Outgoing::new(config.max_message_bytes)),
        pending.clone(),
        heard.clone(),
    ));
    tokio::spawn({
        let pending = pending.clone();
        async move {
            tokio::select! {
                // Ended by itself (the peer closed it, or every user dropped it).
                _ = pending.until_closed() => {}
                _ = silence(&heard, HEARTBEAT_INTERVAL, DEAD_AFTER_SILENT_BEATS, Some(&beat)) => {
                    pending.close(Status::unavailable(
                        "replica link: the peer sent nothing for two seconds",
                    ));
                }
            }
            writer.abort();
            reader.abort();
        }
    });
    OpenStream::new(frames, pending)
}

/// Hands each answer to its waiter until the link ends, then fails those still waiting.
async fn read_answers(
    mut answers: FramedRead<OwnedReadHalf, Outgoing>,
    pending: Arc<Pending>,
    heard: Arc<Heard>,
) {
    let end = loop {
        match answers.next().await {
            Some(Ok(answer)) => {
                heard.tick();
                if let Some(answer) = answer {
                    pending.answer(answer);
                }
            }
            None => break "the peer closed it".to_string(),
            Some(Err(e)) => break e.to_string(),
        }
    };
    pending.close(Status::unavailable(format!("replica link ended: {end}")));
}

//! The server side of the replica stream: each frame is served in a task of its own, at
//! most `max_concurrent_per_connection` at once per stream (the bound a connection's
//! unary calls have), each within the server's request timeout, with the same admission
//! (layout tag, item count) and handler as the unary Write and Read.

use super::super::pb;
use super::super::server::{Admitted, Service};
use super::{error_to_pb, FrameReply, FrameRequest};
use std::sync::Arc;
use tokio::sync::{mpsc, Semaphore};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Status, Streaming};

/// The answers of one stream, in the order they are ready.
pub(crate) type ReplyStream = ReceiverStream<Result<pb::ReplicaFrameReply, Status>>;

/// Serves the frames of an admitted stream until the peer closes it, it breaks, or the
/// server shuts down; frames already being served are answered first.
pub(crate) fn serve(
    service: Service,
    admitted: Admitted,
    frames: Streaming<pb::ReplicaFrame>,
) -> ReplyStream {
    let at_once = service.limits.max_concurrent_per_connection.max(1);
    let (replies, out) = mpsc::channel(at_once);
    tokio::spawn(read_frames(service, admitted, frames, replies, at_once));
    ReceiverStream::new(out)
}

/// Serves each frame of `frames` in a task of its own and sends its answer on
/// `replies`, until `frames` ends or breaks or the server stops (the gRPC stream's and
/// the replica link's frames alike).
pub(crate) async fn read_frames(
    service: Service,
    admitted: Admitted,
    mut frames: impl Stream<Item = Result<pb::ReplicaFrame, Status>> + Unpin,
    replies: mpsc::Sender<Result<pb::ReplicaFrameReply, Status>>,
    at_once: usize,
) {
    let slots = Arc::new(Semaphore::new(at_once));
    let mut stopping = service.stopping.clone();
    loop {
        let next = tokio::select! {
            next = frames.next() => next,
            // Shutting down (or the server gone): stop reading; the peer's next frame
            // finds the stream closed and reopens on another server or fails.
            _ = stopping.wait_for(|stop| *stop) => break,
        };
        let frame = match next {
            Some(Ok(frame)) => frame,
            None => break,
            Some(Err(status)) => {
                tracing::debug!(%status, "replica stream from a peer broke");
                break;
            }
        };
        // Waiting here leaves further frames in HTTP/2's flow-control window (or the
        // link's socket buffer): the peer is slowed down, this node's memory is not spent.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let (service, admitted, replies) = (service.clone(), admitted.clone(), replies.clone());
        tokio::spawn(async move {
            let reply = answer(&service, &admitted, frame.request).await;
            // The peer gone: nobody to tell.
            let _ = replies
                .send(Ok(pb::ReplicaFrameReply {
                    id: frame.id,
                    reply: Some(reply),
                }))
                .await;
            drop(slot);
        });
    }
}

async fn answer(
    service: &Service,
    admitted: &Admitted,
    request: Option<FrameRequest>,
) -> FrameReply {
    let served = async {
        match request {
            Some(FrameRequest::Write(w)) => service
                .serve_write(admitted, w)
                .await
                .map(FrameReply::Write),
            Some(FrameRequest::Read(r)) => {
                service.serve_read(admitted, r).await.map(FrameReply::Read)
            }
            None => Err(Status::invalid_argument(
                "a replica frame without a request",
            )),
        }
    };
    match tokio::time::timeout(service.limits.request_timeout, served).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(status)) => FrameReply::Error(error_to_pb(&status)),
        // What tonic's server timeout answers a unary call.
        Err(_) => FrameReply::Error(error_to_pb(&Status::cancelled("Timeout expired"))),
    }
}

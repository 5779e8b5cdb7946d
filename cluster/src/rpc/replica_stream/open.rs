//! The client side of the replica stream: one stream per peer, opened by the first
//! request that needs it and again by the first after it ends (the peer restarted, the
//! connection broke: HTTP/2 keepalive notices a dead one within about two seconds).
//! Requests waiting when it ends fail as unreachable, as a unary call on a broken
//! connection does: the write may or may not have landed.

use super::super::auth::{unix_ms, BusAuth};
use super::super::client::ClientConfig;
use super::super::metadata;
use super::super::pb;
use super::super::pb::cluster_bus_client::ClusterBusClient;
use super::{error_from_pb, FrameReply, FrameRequest};
use crate::node_id::IdMap;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};

/// The method name a stream's credentials are signed for.
const METHOD: &str = "ReplicaStream";

/// Frames queued for the connection before a sender waits (the in-flight bound of the
/// peer client limits them first).
pub(crate) const FRAMES_QUEUED: usize = 256;

/// How long a peer that answered Unimplemented (a build from before the stream) is
/// served by unary calls before the stream is tried again: it may have been upgraded.
const RETRY_UNSUPPORTED: Duration = Duration::from_secs(30);

#[derive(Clone)]
enum Slot {
    None,
    /// An open stream, and whether it is a replica link.
    Open(Arc<OpenStream>, bool),
    Unsupported {
        since: Instant,
    },
}

/// How a peer's replica requests travel now (CLUSTER INFO counts peers by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// Nothing open yet (no request since start, or the last one ended).
    None,
    /// A replica link (rpc/replica_link/).
    Link,
    /// The gRPC replica stream (TLS on the bus, or a peer of a build without links).
    Stream,
    /// Unary calls (a peer of a build without the stream).
    Unary,
}

/// A peer's replica stream, if open: a replica link (rpc/replica_link/) where the peer
/// serves one, the gRPC stream otherwise.
pub(crate) struct StreamSlot {
    slot: Mutex<Slot>,
    /// One opener at a time; the others wait for its stream.
    opening: tokio::sync::Mutex<()>,
    opened: AtomicU64,
    /// The peer's bus address, to dial links at; `None`: no links (TLS on the bus).
    link_addr: Option<String>,
    /// When the peer last answered a link's magic as a build without links does.
    link_unsupported: Mutex<Option<Instant>>,
    links_opened: AtomicU64,
}

impl StreamSlot {
    /// A slot that dials links at `link_addr` first, when given.
    pub(crate) fn new(link_addr: Option<String>) -> Self {
        StreamSlot {
            slot: Mutex::new(Slot::None),
            opening: tokio::sync::Mutex::new(()),
            opened: AtomicU64::new(0),
            link_addr,
            link_unsupported: Mutex::new(None),
            links_opened: AtomicU64::new(0),
        }
    }

    /// The open stream, opening one when there is none; `Ok(None)` when the peer does
    /// not serve streams (the caller uses the unary call).
    pub(crate) async fn get(
        &self,
        channel: &Channel,
        auth: &BusAuth,
        config: &ClientConfig,
    ) -> Result<Option<Arc<OpenStream>>, Status> {
        if let Some(ready) = self.ready() {
            return Ok(ready);
        }
        let _one = self.opening.lock().await;
        if let Some(ready) = self.ready() {
            return Ok(ready);
        }
        if let Some(link) = self.dial_link(auth, config).await? {
            self.opened.fetch_add(1, Ordering::Relaxed);
            self.links_opened.fetch_add(1, Ordering::Relaxed);
            *self.slot.lock() = Slot::Open(link.clone(), true);
            return Ok(Some(link));
        }
        match open(channel, auth, config).await {
            Ok(stream) => {
                self.opened.fetch_add(1, Ordering::Relaxed);
                *self.slot.lock() = Slot::Open(stream.clone(), false);
                Ok(Some(stream))
            }
            Err(s) if s.code() == Code::Unimplemented => {
                *self.slot.lock() = Slot::Unsupported {
                    since: Instant::now(),
                };
                Ok(None)
            }
            Err(s) => Err(s),
        }
    }

    /// A new link, unless the slot has no address for links or the peer answered
    /// the last dial as a build without them within [`RETRY_UNSUPPORTED`].
    async fn dial_link(
        &self,
        auth: &BusAuth,
        config: &ClientConfig,
    ) -> Result<Option<Arc<OpenStream>>, Status> {
        let Some(addr) = &self.link_addr else {
            return Ok(None);
        };
        if matches!(*self.link_unsupported.lock(), Some(since) if since.elapsed() < RETRY_UNSUPPORTED)
        {
            return Ok(None);
        }
        match super::super::replica_link::dial(addr, auth, config).await? {
            super::super::replica_link::Dialed::Open(link) => Ok(Some(link)),
            super::super::replica_link::Dialed::Unsupported => {
                *self.link_unsupported.lock() = Some(Instant::now());
                Ok(None)
            }
        }
    }

    /// `Some` when no opening is needed.
    pub(crate) fn ready(&self) -> Option<Option<Arc<OpenStream>>> {
        match &*self.slot.lock() {
            Slot::Open(s, _) if !s.pending.is_closed() => Some(Some(s.clone())),
            Slot::Unsupported { since } if since.elapsed() < RETRY_UNSUPPORTED => Some(None),
            _ => None,
        }
    }

    /// How replica requests to the peer travel now.
    pub(crate) fn carrier(&self) -> Carrier {
        match &*self.slot.lock() {
            Slot::Open(s, link) if !s.pending.is_closed() => {
                if *link {
                    Carrier::Link
                } else {
                    Carrier::Stream
                }
            }
            Slot::Unsupported { since } if since.elapsed() < RETRY_UNSUPPORTED => Carrier::Unary,
            _ => Carrier::None,
        }
    }

    /// Streams opened so far (tests).
    #[cfg(test)]
    pub(crate) fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// Of those, links (tests).
    #[cfg(test)]
    pub(crate) fn links_opened(&self) -> u64 {
        self.links_opened.load(Ordering::Relaxed)
    }
}

/// Opens a stream: signed as a unary call is, the reply's MAC checked on its headers.
async fn open(
    channel: &Channel,
    auth: &BusAuth,
    config: &ClientConfig,
) -> Result<Arc<OpenStream>, Status> {
    let creds = auth.sign(METHOD, unix_ms());
    let (frames, outgoing) = mpsc::channel(FRAMES_QUEUED);
    let mut request = tonic::Request::new(ReceiverStream::new(outgoing));
    metadata::write_credentials(request.metadata_mut(), METHOD, &creds);
    let mut client = ClusterBusClient::new(channel.clone())
        .max_decoding_message_size(config.max_message_bytes)
        .max_encoding_message_size(config.max_message_bytes);
    let response = tokio::time::timeout(config.timeout, client.replica_stream(request))
        .await
        .map_err(|_| Status::deadline_exceeded("opening the replica stream timed out"))??;
    let reply_mac = metadata::read_reply_mac(response.metadata());
    auth.verify_reply(&creds, reply_mac.as_ref().map(|m| &m[..]))
        .map_err(|e| Status::unauthenticated(format!("unauthenticated reply: {e}")))?;
    let pending = Arc::new(Pending::default());
    tokio::spawn(read_replies(response.into_inner(), pending.clone()));
    Ok(Arc::new(OpenStream::new(frames, pending)))
}

/// Hands each reply to its waiter until the stream ends, then fails those still waiting.
/// Holds no sender of frames: when every client of the peer is gone the stream closes.
async fn read_replies(mut replies: Streaming<pb::ReplicaFrameReply>, pending: Arc<Pending>) {
    let end = loop {
        match replies.message().await {
            Ok(Some(reply)) => pending.answer(reply),
            Ok(None) => break "the peer closed it".to_string(),
            Err(status) => break status.to_string(),
        }
    };
    pending.close(Status::unavailable(format!("replica stream ended: {end}")));
}

type Waiter = oneshot::Sender<Result<FrameReply, Status>>;

/// The frames of a stream (or link) waiting for their answers.
#[derive(Default)]
pub(crate) struct Pending {
    state: Mutex<PendingState>,
    /// Woken when the stream ends.
    ended: tokio::sync::Notify,
}

#[derive(Default)]
struct PendingState {
    waiting: IdMap<u64, Waiter>,
    /// Why the stream ended, once it has.
    closed: Option<Status>,
}

impl Pending {
    fn is_closed(&self) -> bool {
        self.state.lock().closed.is_some()
    }

    fn register(&self, id: u64, waiter: Waiter) -> Result<(), Status> {
        let mut st = self.state.lock();
        if let Some(why) = &st.closed {
            return Err(why.clone());
        }
        st.waiting.insert(id, waiter);
        Ok(())
    }

    fn forget(&self, id: u64) {
        self.state.lock().waiting.remove(&id);
    }

    /// Hands `reply` to the frame it answers.
    pub(crate) fn answer(&self, reply: pb::ReplicaFrameReply) {
        // An id nobody waits for: its caller gave up (timed out).
        let Some(waiter) = self.state.lock().waiting.remove(&reply.id) else {
            return;
        };
        let answer = match reply.reply {
            Some(FrameReply::Error(e)) => Err(error_from_pb(e)),
            Some(reply) => Ok(reply),
            None => Err(Status::internal("a reply frame without a reply")),
        };
        let _ = waiter.send(answer);
    }

    /// Ends the stream: its waiting frames and every later one fail with `why`.
    pub(crate) fn close(&self, why: Status) {
        let waiting = {
            let mut st = self.state.lock();
            st.closed = Some(why.clone());
            std::mem::take(&mut st.waiting)
        };
        self.ended.notify_waiters();
        for (_, waiter) in waiting {
            let _ = waiter.send(Err(why.clone()));
        }
    }

    /// Returns once the stream has ended.
    pub(crate) async fn until_closed(&self) {
        loop {
            let ended = self.ended.notified();
            tokio::pin!(ended);
            // Registered before the check, so a close between the two still wakes it.
            ended.as_mut().enable();
            if self.is_closed() {
                return;
            }
            ended.await;
        }
    }

    fn closed_status(&self) -> Status {
        self.state
            .lock()
            .closed
            .clone()
            .unwrap_or_else(|| Status::unavailable("replica stream ended"))
    }
}

/// An open replica stream to one peer.
pub(crate) struct OpenStream {
    frames: mpsc::Sender<pb::ReplicaFrame>,
    pending: Arc<Pending>,
    next_id: AtomicU64,
}

/// Forgets a frame whose caller stopped waiting (timeout, cancellation).
struct Forget<'a> {
    pending: &'a Pending,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.pending.forget(self.id);
    }
}

impl OpenStream {
    /// A stream whose frames are written from `frames` and answered through `pending`.
    pub(crate) fn new(frames: mpsc::Sender<pb::ReplicaFrame>, pending: Arc<Pending>) -> Self {
        OpenStream {
            frames,
            pending,
            next_id: AtomicU64::new(0),
        }
    }

    /// Sends `request` and waits for its answer (no deadline: the caller has one).
    pub(crate) async fn exchange(&self, request: FrameRequest) -> Result<FrameReply, Status> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (waiter, answer) = oneshot::channel();
        self.pending.register(id, waiter)?;
        let _forget = Forget {
            pending: &self.pending,
            id,
        };
        let frame = pb::ReplicaFrame {
            id,
            request: Some(request),
        };
        if self.frames.send(frame).await.is_err() {
            return Err(self.pending.closed_status());
        }
        answer.await.map_err(|_| self.pending.closed_status())?
    }
}

//! Pub/sub across the cluster (docs/pubsub.md, "Cluster mode"): a message PUBLISHed
//! through this node goes to every other node over the bus, as Redis Cluster broadcasts
//! PUBLISH over its bus. At most once and never persisted.
//!
//! Each peer has one [`PeerQueue`], bounded in bytes, and one sender task that sends
//! what is queued as one `Publish` RPC at a time, oldest first: messages a publisher
//! sent through this node reach each peer in publish order. A peer that failure
//! detection reports down, a full queue (a slow or unreachable peer) and a failed RPC
//! lose messages; each lost message is counted once per peer (CLUSTER INFO
//! `kvd_pubsub_dropped`). Nothing is retried: a retry could deliver twice.

use crate::replica_api::{Liveness, PeerState};
use crate::NodeId;
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{watch, Notify};

/// Bytes queued for one peer at most: Redis's hard `client-output-buffer-limit` of the
/// pubsub class (32mb), since a peer is to this node what a subscriber is to Redis.
pub const PEER_QUEUE_BYTES: usize = 32 << 20;
/// Messages in one `Publish` RPC at most: within the bus's `max_items` (4096), and
/// enough that a fast publisher needs few RPCs.
pub const BATCH_MESSAGES: usize = 1024;
/// Bytes in one `Publish` RPC at most (a larger single message goes alone): well under
/// the bus's 16 MiB message limit.
pub const BATCH_BYTES: usize = 4 << 20;
/// The largest message broadcast: one alone must fit in a bus message (16 MiB, less
/// room for framing). Larger ones reach this node's subscribers only, and are counted
/// as dropped for every peer.
pub const MAX_MESSAGE_BYTES: usize = (16 << 20) - (64 << 10);
/// What a queued message costs besides its channel and payload (the struct, its two
/// `Bytes` handles, the deque slot): a flood of empty messages is bounded too.
const MESSAGE_OVERHEAD: usize = 64;

/// A PUBLISHed (or SPUBLISHed) message as it travels between nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubSubMessage {
    /// The channel (or shard channel).
    pub channel: Bytes,
    /// The payload.
    pub message: Bytes,
    /// SPUBLISH (a shard channel) rather than PUBLISH.
    pub sharded: bool,
}

impl PubSubMessage {
    /// What the message costs in a queue.
    pub fn queued_bytes(&self) -> usize {
        self.channel.len() + self.message.len() + MESSAGE_OVERHEAD
    }
}

/// Hands a message from another node to this node's subscribers; returns the number of
/// deliveries made.
pub type PubSubListener = Arc<dyn Fn(&PubSubMessage) -> u64 + Send + Sync>;

/// The future of one batch sent to a peer.
pub type SendFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// Sends one batch, in order, to a peer (the bus's `Publish` RPC; fakes in tests).
pub type BatchSender = Arc<dyn Fn(NodeId, Vec<PubSubMessage>) -> SendFuture + Send + Sync>;

/// One peer's messages waiting to be sent, oldest first, bounded in bytes.
pub struct PeerQueue {
    state: Mutex<Queued>,
    wake: Notify,
    limit_bytes: usize,
}

#[derive(Default)]
struct Queued {
    messages: VecDeque<PubSubMessage>,
    bytes: usize,
}

impl PeerQueue {
    /// An empty queue holding at most `limit_bytes` ([`PubSubMessage::queued_bytes`]).
    pub fn new(limit_bytes: usize) -> PeerQueue {
        PeerQueue {
            state: Mutex::new(Queued::default()),
            wake: Notify::new(),
            limit_bytes,
        }
    }

    /// Appends `m`, or returns false (dropped) when it would pass the bound.
    pub fn push(&self, m: PubSubMessage) -> bool {
        let size = m.queued_bytes();
        {
            let mut q = self.state.lock();
            if q.bytes + size > self.limit_bytes {
                return false;
            }
            q.bytes += size;
            q.messages.push_back(m);
        }
        // Stores a wake-up if the sender is busy: it looks again before it waits.
        self.wake.notify_one();
        true
    }

    /// Takes the oldest messages, up to [`BATCH_MESSAGES`] and [`BATCH_BYTES`] (at
    /// least one if any is queued).
    pub fn take_batch(&self) -> Vec<PubSubMessage> {
        let mut q = self.state.lock();
        let (mut batch, mut bytes) = (Vec::new(), 0);
        while let Some(next) = q.messages.front() {
            let size = next.queued_bytes();
            if batch.len() == BATCH_MESSAGES || (!batch.is_empty() && bytes + size > BATCH_BYTES) {
                break;
            }
            bytes += size;
            if let Some(m) = q.messages.pop_front() {
                batch.push(m);
            }
        }
        q.bytes -= bytes;
        batch
    }

    /// Messages and bytes queued now.
    pub fn queued(&self) -> (usize, usize) {
        let q = self.state.lock();
        (q.messages.len(), q.bytes)
    }

    /// Waits for the next batch.
    async fn next_batch(&self) -> Vec<PubSubMessage> {
        loop {
            let batch = self.take_batch();
            if !batch.is_empty() {
                return batch;
            }
            self.wake.notified().await;
        }
    }
}

/// Counters of the fan-out (CLUSTER INFO).
#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    dropped: AtomicU64,
    received: AtomicU64,
}

/// What the fan-out did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FanoutStats {
    /// Messages sent to a peer (one per message per peer).
    pub sent: u64,
    /// Messages lost for a peer (down, queue full, too large, RPC failed).
    pub dropped: u64,
    /// Messages received from other nodes.
    pub received: u64,
    /// Messages waiting in the peers' queues now.
    pub queued: u64,
    /// Bytes waiting in the peers' queues now.
    pub queued_bytes: u64,
}

/// This node's side of cluster pub/sub: the peers' queues and senders, and the listener
/// that hands messages from other nodes to the server.
pub struct PubSubFanout {
    me: NodeId,
    send: BatchSender,
    queue_bytes: usize,
    queues: Mutex<HashMap<NodeId, Arc<PeerQueue>>>,
    listener: RwLock<Option<PubSubListener>>,
    counters: Arc<Counters>,
    shutdown: watch::Receiver<bool>,
}

impl PubSubFanout {
    /// A fan-out for node `me` sending with `send`, `queue_bytes` per peer; its senders
    /// stop when `shutdown` turns true.
    pub fn new(
        me: NodeId,
        send: BatchSender,
        queue_bytes: usize,
        shutdown: watch::Receiver<bool>,
    ) -> PubSubFanout {
        PubSubFanout {
            me,
            send,
            queue_bytes,
            queues: Mutex::new(HashMap::new()),
            listener: RwLock::new(None),
            counters: Arc::new(Counters::default()),
            shutdown,
        }
    }

    /// Queues `m` for each of `peers` (this node is skipped) without waiting. A peer
    /// that `live` reports down, a full queue, or a message larger than
    /// [`MAX_MESSAGE_BYTES`] count as dropped for that peer.
    pub fn broadcast(&self, m: &PubSubMessage, peers: &[NodeId], live: &dyn Liveness) {
        let too_large = m.channel.len() + m.message.len() > MAX_MESSAGE_BYTES;
        for &peer in peers.iter().filter(|&&p| p != self.me) {
            let queued = !too_large
                && live.state(peer) != PeerState::Down
                && self.queue(peer).is_some_and(|q| q.push(m.clone()));
            if !queued {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The queue of `peer`, made (with its sender task) on first use. `None` outside a
    /// tokio runtime, where no sender could run.
    fn queue(&self, peer: NodeId) -> Option<Arc<PeerQueue>> {
        let mut queues = self.queues.lock();
        if let Some(q) = queues.get(&peer) {
            return Some(q.clone());
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let q = Arc::new(PeerQueue::new(self.queue_bytes));
        runtime.spawn(drain(
            peer,
            q.clone(),
            self.send.clone(),
            self.counters.clone(),
            self.shutdown.clone(),
        ));
        queues.insert(peer, q.clone());
        Some(q)
    }

    /// Sets who receives messages from other nodes (the server's registry).
    pub fn listen(&self, listener: PubSubListener) {
        *self.listener.write() = Some(listener);
    }

    /// Messages another node sent, in its order, handed to the listener; returns the
    /// deliveries made (0 while nobody listens).
    pub fn deliver(&self, messages: &[PubSubMessage]) -> u64 {
        self.counters
            .received
            .fetch_add(messages.len() as u64, Ordering::Relaxed);
        let listener = self.listener.read().clone();
        listener.map_or(0, |l| messages.iter().map(|m| l(m)).sum())
    }

    /// The counters and what is queued now.
    pub fn stats(&self) -> FanoutStats {
        let (queued, queued_bytes) = self
            .queues
            .lock()
            .values()
            .map(|q| q.queued())
            .fold((0, 0), |(m, b), (qm, qb)| (m + qm, b + qb));
        FanoutStats {
            sent: self.counters.sent.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            received: self.counters.received.load(Ordering::Relaxed),
            queued: queued as u64,
            queued_bytes: queued_bytes as u64,
        }
    }
}

/// A peer's sender: one batch at a time, oldest first, until shutdown. A failed batch
/// is dropped, not retried (at most once).
async fn drain(
    peer: NodeId,
    queue: Arc<PeerQueue>,
    send: BatchSender,
    counters: Arc<Counters>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let batch = tokio::select! {
            b = queue.next_batch() => b,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let n = batch.len() as u64;
        match send(peer, batch).await {
            Ok(()) => counters.sent.fetch_add(n, Ordering::Relaxed),
            Err(e) => {
                tracing::debug!(node = %peer, error = %e, messages = n, "pub/sub messages to a peer dropped");
                counters.dropped.fetch_add(n, Ordering::Relaxed)
            }
        };
    }
}

#[cfg(test)]
mod tests;

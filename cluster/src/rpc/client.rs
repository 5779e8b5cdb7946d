//! A remote node's [`ReplicaApi`] over the bus: one lazily connected tonic channel per
//! peer, reused by every call (HTTP/2 multiplexes them), a deadline on every call and a
//! bound on calls in flight, so a slow peer costs a clear error, never a growing queue.

use super::auth::{unix_ms, BusAuth, Credentials};
use super::batcher::{spawn_flusher, Batcher};
use super::convert as cv;
use super::handler::{Hello, LayoutBlob, PushLayoutReply};
use super::latency::RpcLatencies;
use super::layout_tag::LayoutTag;
use super::metadata;
use super::pb;
use super::pb::cluster_bus_client::ClusterBusClient;
use super::replica_stream::{FrameReply, FrameRequest, OpenStream, StreamSlot};
use super::server::answer_bound;
use super::tls::BusTls;
use crate::replica_api::{
    Hash16, ItemKey, MerkleLeaf, PartitionPage, PrepareOutcome, QueuedWrites, ReplicaApi,
    ReplicaError, ScanPage, WriteDone, WriteItem, WriteOutcome,
};
use crate::{Record, Version};
use async_trait::async_trait;
use bytes::Bytes;
use kv_keyspace::data_key::ScanPosition;
use prost::Message as _;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Response, Status};

/// Default deadline of one call, connection included: a replica that has not answered
/// by then counts as timed out and the coordinator hints for it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Largest request sent as a frame of the replica stream. The frames of one stream
/// travel one after another, so a bulk write (a snapshot page, a repair batch of large
/// values) on it would hold up every small read and write queued behind it; as its own
/// unary call it shares the connection frame by frame with them instead.
pub const MAX_FRAME_BYTES: usize = 256 << 10;

/// Interval of HTTP/2 keepalive pings on a peer connection.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);
/// A ping unanswered this long closes the connection (the next call reconnects).
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(1);

/// How a node talks to its peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientConfig {
    /// Deadline of one call ([`DEFAULT_TIMEOUT`]).
    pub timeout: Duration,
    /// Deadline of establishing the connection.
    pub connect_timeout: Duration,
    /// Most calls in flight to one peer; one more fails at once with `Overloaded`.
    pub max_in_flight: usize,
    /// Largest message accepted or sent.
    pub max_message_bytes: usize,
    /// Most write RPCs in flight to one peer; writes beyond wait and leave together in
    /// the next RPC (batching under load).
    pub max_write_rpcs: usize,
    /// Most write items waiting for an RPC; one more fails at once with `Overloaded`.
    pub max_queued_writes: usize,
    /// Most read RPCs in flight to one peer; reads beyond wait and leave together in the
    /// next RPC, as writes do.
    pub max_read_rpcs: usize,
    /// Most keys waiting for a read RPC; one more fails at once with `Overloaded`.
    pub max_queued_reads: usize,
    /// Most items (writes or keys) in one batched RPC (within the server's `max_items`).
    pub max_batch_items: usize,
}

impl ClientConfig {
    /// A peer's batcher of write requests under these bounds.
    pub(crate) fn write_batcher(&self) -> Batcher<WriteItem, WriteOutcome> {
        Batcher::new(
            self.max_write_rpcs,
            self.max_queued_writes,
            self.max_batch_items,
        )
    }

    /// A peer's batcher of read requests under these bounds.
    pub(crate) fn read_batcher(&self) -> Batcher<ItemKey, Option<Record>> {
        Batcher::new(
            self.max_read_rpcs,
            self.max_queued_reads,
            self.max_batch_items,
        )
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: Duration::from_secs(1),
            max_in_flight: 256,
            max_message_bytes: crate::record_size::MAX_BUS_MESSAGE_BYTES,
            // Two, not more: fewer RPCs in flight make larger batches, and on the
            // cluster benchmark 2 cost 10-25% less CPU per operation than 4 at about
            // the same throughput (docs/performance.md); 1 cut GET throughput by half.
            max_write_rpcs: 2,
            max_queued_writes: 4096,
            max_read_rpcs: 2,
            max_queued_reads: 4096,
            max_batch_items: 1024,
        }
    }
}

/// A clock ping's result: three wall clocks in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingReply {
    /// This node's clock when it sent the ping.
    pub sent_ms: i64,
    /// The peer's clock when it answered.
    pub peer_ms: i64,
    /// This node's clock when the answer came back.
    pub received_ms: i64,
}

impl PingReply {
    /// The peer's clock minus ours, assuming the answer was made halfway through the
    /// round trip (error at most half the round trip).
    pub fn offset_ms(&self) -> i64 {
        self.peer_ms - (self.sent_ms + (self.received_ms - self.sent_ms) / 2)
    }

    /// The round-trip time.
    pub fn round_trip_ms(&self) -> i64 {
        self.received_ms - self.sent_ms
    }
}

/// One peer's bus endpoint. Clones share the connection, the in-flight bound and the
/// write and read queues.
#[derive(Clone)]
pub struct PeerClient {
    addr: String,
    channel: Channel,
    auth: BusAuth,
    config: ClientConfig,
    in_flight: Arc<Semaphore>,
    writes: Arc<Batcher<WriteItem, WriteOutcome>>,
    reads: Arc<Batcher<ItemKey, Option<Record>>>,
    /// Where each call's duration is counted (shared with the node's other peers).
    latencies: Arc<RpcLatencies>,
    /// The layout version replica requests carry (rpc/layout_tag.rs); none: untagged.
    layout: Option<Arc<LayoutTag>>,
    /// Where Write and Read requests go (rpc/replica_stream/).
    stream: Arc<StreamSlot>,
}

impl std::fmt::Debug for PeerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerClient")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// `send` of each half of `items`, both at once, with the answers in the items' order;
/// either half failing fails the whole.
async fn in_halves<I, O, F, Fut>(mut items: Vec<I>, send: F) -> Result<Vec<O>, ReplicaError>
where
    F: Fn(Vec<I>) -> Fut,
    Fut: Future<Output = Result<Vec<O>, ReplicaError>>,
{
    let second = items.split_off(items.len() / 2);
    let (first, second) = futures::join!(send(items), send(second));
    let mut answers = first?;
    answers.extend(second?);
    Ok(answers)
}

/// The replica error a call's status means.
fn error_of(s: Status) -> ReplicaError {
    match s.code() {
        Code::DeadlineExceeded | Code::Cancelled => ReplicaError::Timeout,
        // Connection refused or reset: tonic cannot always tell "not sent" from "lost
        // on the way back", so a coordinator treats it as it treats a timeout for hints.
        Code::Unavailable => ReplicaError::Unreachable(s.message().to_string()),
        Code::ResourceExhausted => ReplicaError::Overloaded,
        // gRPC's own refusal of a message above the bound, and the server's of an answer
        // that would be (`Service::serve_read`).
        Code::OutOfRange => ReplicaError::TooLarge(s.message().to_string()),
        Code::FailedPrecondition => ReplicaError::CatchingUp,
        Code::Aborted => match stale_layout_version(&s) {
            Some(version) => ReplicaError::StaleLayout { version },
            None => ReplicaError::Failed(format!("{:?}: {}", s.code(), s.message())),
        },
        _ => ReplicaError::Failed(format!("{:?}: {}", s.code(), s.message())),
    }
}

/// The refusing replica's layout version in a stale-layout refusal.
fn stale_layout_version(s: &Status) -> Option<u64> {
    s.metadata()
        .get(super::LAYOUT_VERSION_HEADER)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn bad_reply(e: String) -> ReplicaError {
    ReplicaError::Failed(format!("malformed reply from peer: {e}"))
}

impl PeerClient {
    /// A client for the bus at `addr` (`host:port`). Nothing is connected until the
    /// first call; a broken connection is re-established by a later call. Must be
    /// called within a tokio runtime (an error otherwise).
    pub fn new(addr: &str, auth: BusAuth, config: ClientConfig) -> Result<PeerClient, String> {
        Self::with_tls(addr, auth, config, None)
    }

    /// [`PeerClient::new`], over mutual TLS when `tls` is given.
    pub fn with_tls(
        addr: &str,
        auth: BusAuth,
        config: ClientConfig,
        tls: Option<&BusTls>,
    ) -> Result<PeerClient, String> {
        // The channel's worker is a tokio task: outside a runtime tonic would panic.
        tokio::runtime::Handle::try_current()
            .map_err(|_| format!("bus client for {addr} made outside a tokio runtime"))?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))
            .map_err(|e| format!("bad bus address {addr}: {e}"))?
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .tcp_nodelay(true)
            // HTTP/2 pings find a connection that silently died (a partition, a peer
            // killed without a FIN) within about two seconds, so the channel reconnects
            // instead of waiting for TCP's retransmission timeout (found by the
            // network-partition tests: reads timed out for ~15 s after a heal).
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true);
        if let Some(tls) = tls {
            endpoint = endpoint
                .tls_config(tls.client())
                .map_err(|e| format!("bus TLS for {addr}: {e}"))?;
        }
        Ok(PeerClient {
            addr: addr.to_string(),
            channel: endpoint.connect_lazy(),
            auth,
            config,
            in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
            writes: Arc::new(config.write_batcher()),
            reads: Arc::new(config.read_batcher()),
            latencies: Arc::new(RpcLatencies::default()),
            layout: None,
            // No links under TLS: their frames would travel unencrypted
            // (rpc/replica_link/).
            stream: Arc::new(StreamSlot::new(tls.is_none().then(|| addr.to_string()))),
        })
    }

    /// Tags replica requests with the layout version `layout` holds when each leaves (a
    /// node shares one among its peers and its bus server).
    pub fn with_layout_tag(mut self, layout: Arc<LayoutTag>) -> PeerClient {
        self.layout = Some(layout);
        self
    }

    /// The layout version a replica request leaving now carries (0: untagged).
    fn layout_version(&self) -> u64 {
        self.layout.as_ref().map_or(0, |l| l.current())
    }

    /// Counts call durations in `latencies` (a node shares one among its peers).
    pub fn with_latencies(mut self, latencies: Arc<RpcLatencies>) -> PeerClient {
        self.latencies = latencies;
        self
    }

    /// The peer's bus address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Calls `method`: admission (in-flight bound), signing, deadline, reply check.
    pub(super) async fn call<Req, Resp, F, Fut>(
        &self,
        method: &'static str,
        msg: Req,
        f: F,
    ) -> Result<Resp, ReplicaError>
    where
        F: FnOnce(ClusterBusClient<Channel>, Request<Req>) -> Fut,
        Fut: Future<Output = Result<Response<Resp>, Status>>,
    {
        self.call_within(self.config.timeout, method, msg, f).await
    }

    /// [`PeerClient::call`] with its own deadline (a forwarded consensus command waits
    /// for its whole consensus timeout, not a replica request's).
    pub(super) async fn call_within<Req, Resp, F, Fut>(
        &self,
        timeout: std::time::Duration,
        method: &'static str,
        msg: Req,
        f: F,
    ) -> Result<Resp, ReplicaError>
    where
        F: FnOnce(ClusterBusClient<Channel>, Request<Req>) -> Fut,
        Fut: Future<Output = Result<Response<Resp>, Status>>,
    {
        let creds: Credentials = self.auth.sign(method, unix_ms());
        let mut request = Request::new(msg);
        metadata::write_credentials(request.metadata_mut(), method, &creds);
        request.set_timeout(timeout);
        let client = ClusterBusClient::new(self.channel.clone())
            .max_decoding_message_size(self.config.max_message_bytes)
            .max_encoding_message_size(self.config.max_message_bytes);
        let response = self.measured(method, timeout, f(client, request)).await?;
        let reply_mac = metadata::read_reply_mac(response.metadata());
        self.auth
            .verify_reply(&creds, reply_mac.as_ref().map(|m| &m[..]))
            .map_err(|e| ReplicaError::Failed(format!("unauthenticated reply: {e}")))?;
        Ok(response.into_inner())
    }

    /// Runs one request: admission (in-flight bound), deadline, and its duration counted
    /// under `method`.
    async fn measured<T>(
        &self,
        method: &'static str,
        timeout: Duration,
        request: impl Future<Output = Result<T, Status>>,
    ) -> Result<T, ReplicaError> {
        let _permit = self
            .in_flight
            .clone()
            .try_acquire_owned()
            .map_err(|_| ReplicaError::Overloaded)?;
        let started = std::time::Instant::now();
        let answer = tokio::time::timeout(timeout, request).await;
        self.latencies
            .record(method, started.elapsed(), matches!(answer, Ok(Ok(_))));
        answer.map_err(|_| ReplicaError::Timeout)?.map_err(error_of)
    }

    /// The replica stream to the peer (rpc/replica_stream/), opened if need be; `None`
    /// when the peer does not serve it, for the caller to make the unary call instead.
    async fn replica_stream(&self) -> Result<Option<Arc<OpenStream>>, ReplicaError> {
        if let Some(ready) = self.stream.ready() {
            return Ok(ready);
        }
        // Boxed: opening is rare, and its future (a tonic streaming call) is large enough
        // that every request's future would carry its size, copied on every move (into a
        // task, a timeout, async_trait's box): docs/performance.md, "Smaller request
        // futures".
        let opening = Box::pin(self.stream.get(&self.channel, &self.auth, &self.config));
        opening.await.map_err(error_of)
    }

    /// How replica requests to the peer travel now (CLUSTER INFO).
    pub fn carrier(&self) -> super::replica_stream::Carrier {
        self.stream.carrier()
    }

    /// Replica streams opened so far (tests).
    #[cfg(test)]
    pub(crate) fn streams_opened(&self) -> u64 {
        self.stream.opened()
    }

    /// Of those, replica links (tests).
    #[cfg(test)]
    pub(crate) fn links_opened(&self) -> u64 {
        self.stream.links_opened()
    }

    /// Introduces this node; the answer is the peer's introduction.
    pub async fn hello(&self, me: Hello) -> Result<Hello, ReplicaError> {
        let r = self
            .call("Hello", cv::hello_to_pb(me), |mut c, r| async move {
                c.hello(r).await
            })
            .await?;
        let me =
            r.me.ok_or_else(|| bad_reply("hello without introduction".into()))?;
        super::bus_version::check_peer(me.bus_version, me.min_bus_version)
            .map_err(ReplicaError::Failed)?;
        Ok(cv::hello_from_pb(me))
    }

    /// The peer's layout, if it has one.
    pub async fn get_layout(&self) -> Result<Option<LayoutBlob>, ReplicaError> {
        let r = self
            .call(
                "GetLayout",
                pb::GetLayoutRequest {},
                |mut c, r| async move { c.get_layout(r).await },
            )
            .await?;
        Ok(cv::layout_from_pb(r))
    }

    /// Offers a layout to the peer.
    pub async fn push_layout(&self, layout: LayoutBlob) -> Result<PushLayoutReply, ReplicaError> {
        let r = self
            .call(
                "PushLayout",
                cv::layout_to_pb(Some(layout)),
                |mut c, r| async move { c.push_layout(r).await },
            )
            .await?;
        Ok(PushLayoutReply {
            accepted: r.accepted,
            current_version: r.current_version,
        })
    }

    /// Sends cluster metadata entries for the peer to merge; the answer is every entry
    /// it holds.
    pub async fn sync_metadata(
        &self,
        entries: Vec<crate::metadata::MetaEntry>,
    ) -> Result<Vec<crate::metadata::MetaEntry>, ReplicaError> {
        let msg = pb::SyncMetadataRequest {
            entries: super::meta_entries::to_pb(entries),
        };
        let r = self
            .call("SyncMetadata", msg, |mut c, r| async move {
                c.sync_metadata(r).await
            })
            .await?;
        super::meta_entries::from_pb(r.entries).map_err(|e| bad_reply(e.to_string()))
    }

    /// Reads the peer's wall clock.
    pub async fn ping(&self) -> Result<PingReply, ReplicaError> {
        let sent_ms = unix_ms();
        let r = self
            .call(
                "Ping",
                pb::PingRequest {
                    sender_wall_ms: sent_ms,
                },
                |mut c, r| async move { c.ping(r).await },
            )
            .await?;
        Ok(PingReply {
            sent_ms,
            peer_ms: r.receiver_wall_ms,
            received_ms: unix_ms(),
        })
    }
}

/// Checks that a reply has one answer per item asked.
fn expect_len<T>(v: Vec<T>, asked: usize) -> Result<Vec<T>, ReplicaError> {
    if v.len() != asked {
        return Err(bad_reply(format!("{} answers for {asked} items", v.len())));
    }
    Ok(v)
}

/// Decodes a reply's answers, one per item asked, in order.
fn decode_answers<P, T>(
    v: Vec<P>,
    asked: usize,
    decode: impl Fn(P) -> Result<T, String>,
) -> Result<Vec<T>, ReplicaError> {
    expect_len(v, asked)?
        .into_iter()
        .map(decode)
        .collect::<Result<_, _>>()
        .map_err(bad_reply)
}

impl PeerClient {
    /// One write request, unbatched; when the items would make a message above the bus
    /// bound (a batch of large values), one per half of them, both sent at once (and so
    /// on down). One failed part fails the whole (the other part's items may be
    /// applied, as after a timeout).
    /// (Not itself async: a future around the next one's would be one more copy per
    /// write.)
    fn send_write(
        &self,
        items: Vec<WriteItem>,
    ) -> impl Future<Output = Result<Vec<WriteOutcome>, ReplicaError>> + Send + '_ {
        self.send_write_pb(items.into_iter().map(cv::write_item_to_pb).collect())
    }

    async fn send_write_pb(
        &self,
        items: Vec<pb::WriteItem>,
    ) -> Result<Vec<WriteOutcome>, ReplicaError> {
        let n = items.len();
        let msg = pb::WriteRequest {
            items,
            layout_version: self.layout_version(),
            // This build counts StoredNotCounted answers correctly (rpc/not_counted.rs).
            takes_not_counted: true,
        };
        if n > 1 && msg.encoded_len() > answer_bound(self.config.max_message_bytes) {
            return self.send_write_halves(msg.items).await;
        }
        let r = self
            .replica_request(
                "Write",
                msg,
                FrameRequest::Write,
                |reply| match reply {
                    FrameReply::Write(r) => Some(r),
                    _ => None,
                },
                |mut c, r| async move { c.write(r).await },
            )
            .await?;
        decode_answers(r.outcomes, n, cv::outcome_from_pb)
    }

    /// [`PeerClient::send_write_pb`] of each half of `items`, boxed to recurse.
    fn send_write_halves(
        &self,
        items: Vec<pb::WriteItem>,
    ) -> futures::future::BoxFuture<'_, Result<Vec<WriteOutcome>, ReplicaError>> {
        Box::pin(in_halves(items, |half| self.send_write_pb(half)))
    }

    /// One read request, unbatched; when the replica refuses to answer it whole (its
    /// records would make a message above the bus bound), one per half of the keys,
    /// both at once, and so on down to one key per request.
    async fn send_read(&self, keys: Vec<ItemKey>) -> Result<Vec<Option<Record>>, ReplicaError> {
        let n = keys.len();
        // Kept for asking again in halves; a single key's answer has none.
        let (sent, kept) = if n > 1 {
            (keys.clone(), Some(keys))
        } else {
            (keys, None)
        };
        let msg = pb::ReadRequest {
            keys: sent.into_iter().map(cv::key_to_pb).collect(),
            layout_version: self.layout_version(),
        };
        let answered = self
            .replica_request(
                "Read",
                msg,
                FrameRequest::Read,
                |reply| match reply {
                    FrameReply::Read(r) => Some(r),
                    _ => None,
                },
                |mut c, r| async move { c.read(r).await },
            )
            .await;
        match (answered, kept) {
            (Err(ReplicaError::TooLarge(_)), Some(keys)) => self.send_read_halves(keys).await,
            (answered, _) => decode_answers(answered?.records, n, cv::maybe_record_from_pb),
        }
    }

    /// [`PeerClient::send_read`] of each half of `keys`, boxed to recurse.
    fn send_read_halves(
        &self,
        keys: Vec<ItemKey>,
    ) -> futures::future::BoxFuture<'_, Result<Vec<Option<Record>>, ReplicaError>> {
        Box::pin(in_halves(keys, |half| self.send_read(half)))
    }

    /// Sends a replica request as a frame of the replica stream (`frame` wraps it,
    /// `answer` unwraps the reply), or as the unary call `unary` when it is larger than
    /// [`MAX_FRAME_BYTES`] or the peer has no stream.
    async fn replica_request<Req, Resp, F, Fut>(
        &self,
        method: &'static str,
        msg: Req,
        frame: fn(Req) -> FrameRequest,
        answer: fn(FrameReply) -> Option<Resp>,
        unary: F,
    ) -> Result<Resp, ReplicaError>
    where
        Req: prost::Message,
        F: FnOnce(ClusterBusClient<Channel>, Request<Req>) -> Fut,
        Fut: Future<Output = Result<Response<Resp>, Status>>,
    {
        let stream = if msg.encoded_len() > MAX_FRAME_BYTES {
            None
        } else {
            self.replica_stream().await?
        };
        let Some(stream) = stream else {
            // Boxed for the same reason as the opening of a stream (`replica_stream`).
            return Box::pin(self.call(method, msg, unary)).await;
        };
        let reply = self
            .measured(method, self.config.timeout, stream.exchange(frame(msg)))
            .await?;
        answer(reply).ok_or_else(|| bad_reply(format!("a {method} answered as another request")))
    }

    /// Queues `items` on `batcher` and waits for their answers; one deadline covers the
    /// wait and the RPC. The caller that finds no RPC of this kind running (or fewer than
    /// the maximum) starts a flusher task that sends queued items with `send` until the
    /// queue is empty: in its own task, so a caller that gives up (timeout, cancellation)
    /// never strands the queue.
    async fn batched<I, O, F, Fut>(
        &self,
        batcher: &Arc<Batcher<I, O>>,
        items: Vec<I>,
        send: F,
    ) -> Result<Vec<O>, ReplicaError>
    where
        I: Send + 'static,
        O: Send + 'static,
        F: Fn(PeerClient, Vec<I>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<O>, ReplicaError>> + Send,
    {
        batcher
            .call(items, self.config.timeout, || {
                self.start_flusher(batcher, send)
            })
            .await
    }

    /// Starts a task that sends `batcher`'s queued items with `send` until the queue is
    /// empty, answering each batch's waiters.
    fn start_flusher<I, O, F, Fut>(&self, batcher: &Arc<Batcher<I, O>>, send: F)
    where
        I: Send + 'static,
        O: Send + 'static,
        F: Fn(PeerClient, Vec<I>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<O>, ReplicaError>> + Send,
    {
        let client = self.clone();
        spawn_flusher(batcher.clone(), move |items, _| send(client.clone(), items));
    }

    /// A batch of writes as the flusher sends it.
    async fn send_writes(
        client: PeerClient,
        items: Vec<WriteItem>,
    ) -> Result<Vec<WriteOutcome>, ReplicaError> {
        client.send_write(items).await
    }

    /// Write items waiting for an RPC (tests).
    #[cfg(test)]
    pub(crate) fn queued_writes(&self) -> usize {
        self.writes.queued_items()
    }

    /// Keys waiting for a read RPC (tests).
    #[cfg(test)]
    pub(crate) fn queued_reads(&self) -> usize {
        self.reads.queued_items()
    }
}

/// The same batcher as [`ReplicaApi::write`]: the callback is a waiter of the batch
/// its items leave in, run by the flusher when that RPC answers or fails (its own
/// timeout bounds it).
impl QueuedWrites for PeerClient {
    fn write_then(&self, items: Vec<WriteItem>, done: WriteDone) {
        self.writes.call_then(items, done, || {
            self.start_flusher(&self.writes, PeerClient::send_writes)
        });
    }
}

#[async_trait]
impl ReplicaApi for PeerClient {
    /// Batched under load (see [`ClientConfig::max_write_rpcs`]); one deadline covers
    /// the wait and the RPC.
    async fn write(&self, items: Vec<WriteItem>) -> Result<Vec<WriteOutcome>, ReplicaError> {
        self.batched(&self.writes, items, PeerClient::send_writes)
            .await
    }

    fn write_queue(&self) -> Option<&dyn QueuedWrites> {
        Some(self)
    }

    /// Batched under load like writes (see [`ClientConfig::max_read_rpcs`]).
    async fn read(&self, keys: Vec<ItemKey>) -> Result<Vec<Option<Record>>, ReplicaError> {
        self.batched(&self.reads, keys, |c, keys| async move {
            c.send_read(keys).await
        })
        .await
    }

    /// Unbatched: a consensus round is latency-bound, one key at a time.
    async fn prepare(&self, key: ItemKey, ballot: Version) -> Result<PrepareOutcome, ReplicaError> {
        let msg = pb::PrepareRequest {
            key: Some(cv::key_to_pb(key)),
            ballot: cv::version_to_pb(ballot),
            layout_version: self.layout_version(),
        };
        let r = self
            .call("Prepare", msg, |mut c, r| async move { c.prepare(r).await })
            .await?;
        cv::prepare_from_pb(r).map_err(bad_reply)
    }

    async fn accept(&self, item: WriteItem) -> Result<WriteOutcome, ReplicaError> {
        let msg = pb::AcceptRequest {
            item: Some(cv::write_item_to_pb(item)),
            layout_version: self.layout_version(),
        };
        let r = self
            .call("Accept", msg, |mut c, r| async move { c.accept(r).await })
            .await?;
        cv::outcome_from_pb(r).map_err(bad_reply)
    }

    async fn merkle_roots(&self, partitions: Vec<u16>) -> Result<Vec<Hash16>, ReplicaError> {
        let n = partitions.len();
        let msg = pb::MerkleRootsRequest {
            partitions: partitions.into_iter().map(u32::from).collect(),
        };
        let r = self
            .call("MerkleRoots", msg, |mut c, r| async move {
                c.merkle_roots(r).await
            })
            .await?;
        expect_len(r.roots, n)?
            .iter()
            .map(cv::hash_from_pb)
            .collect::<Result<_, _>>()
            .map_err(bad_reply)
    }

    async fn merkle_buckets(&self, partition: u16) -> Result<Vec<Hash16>, ReplicaError> {
        let msg = pb::MerkleBucketsRequest {
            partition: partition.into(),
        };
        let r = self
            .call("MerkleBuckets", msg, |mut c, r| async move {
                c.merkle_buckets(r).await
            })
            .await?;
        expect_len(r.buckets, 256)?
            .iter()
            .map(cv::hash_from_pb)
            .collect::<Result<_, _>>()
            .map_err(bad_reply)
    }

    async fn merkle_leaves(
        &self,
        partition: u16,
        bucket: u8,
    ) -> Result<Vec<MerkleLeaf>, ReplicaError> {
        // Page by page (rpc/leaves_page.rs): a bucket's leaves may pass the bus bound.
        let mut leaves: Vec<MerkleLeaf> = Vec::new();
        loop {
            let after = leaves.last().map(|l| l.key.clone());
            let msg = pb::MerkleLeavesRequest {
                partition: partition.into(),
                bucket: bucket.into(),
                after: after.clone().map(cv::key_to_pb),
            };
            let r = self
                .call("MerkleLeaves", msg, |mut c, r| async move {
                    c.merkle_leaves(r).await
                })
                .await?;
            let more = r.more;
            for leaf in r.leaves {
                leaves.push(cv::leaf_from_pb(leaf).map_err(bad_reply)?);
            }
            if !more {
                return Ok(leaves);
            }
            // A page with more after it must end past where it started, or a peer that
            // answered otherwise would have this loop ask forever. (A node built before
            // paging answers one page in its own order: only pages are checked.)
            let last = leaves.last().map(|l| &l.key);
            if last.is_none() || last <= after.as_ref() {
                return Err(bad_reply(
                    "a page of Merkle leaves that does not move past the last".to_string(),
                ));
            }
        }
    }

    async fn scan(
        &self,
        partition: u16,
        db: u32,
        from: ScanPosition,
        limit: usize,
    ) -> Result<ScanPage, ReplicaError> {
        let msg = pb::ScanRequest {
            partition: partition.into(),
            db,
            from: Some(cv::position_to_pb(from)),
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
        };
        let r = self
            .call("Scan", msg, |mut c, r| async move { c.scan(r).await })
            .await?;
        cv::page_from_pb(r).map_err(bad_reply)
    }

    async fn scan_partition(
        &self,
        partition: u16,
        from: Option<Bytes>,
        limit: usize,
    ) -> Result<PartitionPage, ReplicaError> {
        self.partition_page(partition, from, limit).await
    }
}

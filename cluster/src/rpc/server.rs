//! The bus server: authenticates every request, bounds what a peer can make this node
//! allocate, converts messages and calls the [`BusHandler`].

// tonic's service trait returns `Status` by value; the helpers here feed it directly.
#![allow(clippy::result_large_err)]

use super::auth::{unix_ms, AuthError, BusAuth};
use super::convert::{self as cv, BadMessage};
use super::handler::BusHandler;
use super::layout_tag::Admission;
use super::metadata;
use super::not_counted;
use super::pb;
use super::pb::cluster_bus_server::{ClusterBus, ClusterBusServer};
use super::replica_link::accept_loop;
pub(crate) use super::replica_link::Serves;
use super::tls::BusTls;
use crate::replica_api::ReplicaError;
use futures::future::Either;
use prost::Message as _;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tonic::service::interceptor::{InterceptedService, Interceptor};
use tonic::{Request, Response, Status};

/// The largest answer message that leaves room, under the bus bound `max_message_bytes`,
/// for the frame around it on a stream or link.
pub(crate) fn answer_bound(max_message_bytes: usize) -> usize {
    max_message_bytes.saturating_sub(FRAME_ENVELOPE_BYTES)
}

/// What a replica frame adds around its request or answer (id, tags), with room to spare.
const FRAME_ENVELOPE_BYTES: usize = 1024;

/// What one peer may ask of this node at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusLimits {
    /// Largest encoded message, either direction (gRPC refuses bigger ones before
    /// allocating them).
    pub max_message_bytes: usize,
    /// Most items (writes, keys, partitions) in one request.
    pub max_items: usize,
    /// Most records one scan page returns (larger `limit`s are clamped).
    pub max_scan_limit: usize,
    /// Most requests served at once on one connection.
    pub max_concurrent_per_connection: usize,
    /// A request still running after this is cancelled.
    pub request_timeout: Duration,
}

impl Default for BusLimits {
    fn default() -> Self {
        BusLimits {
            max_message_bytes: crate::record_size::MAX_BUS_MESSAGE_BYTES,
            max_items: 4096,
            max_scan_limit: 4096,
            max_concurrent_per_connection: 256,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Serves the bus on `listener` until `shutdown` completes, over mutual TLS when `tls`
/// is given. The caller binds the listener (so it reports bind errors and tests can use
/// port 0); gossip uses UDP on the same port number.
pub async fn serve(
    listener: TcpListener,
    handler: Arc<dyn BusHandler>,
    auth: BusAuth,
    limits: BusLimits,
    tls: Option<BusTls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    serve_with_streams(
        listener,
        handler,
        auth,
        limits,
        tls,
        shutdown,
        Serves::StreamsAndLinks,
    )
    .await
}

/// [`serve`], with only the replica protocols in `serves` (tests play peers of older
/// builds with it): ReplicaStream is answered Unimplemented under [`Serves::Unary`], and
/// replica links (rpc/replica_link/) are served only under [`Serves::StreamsAndLinks`]
/// and without TLS.
pub(super) async fn serve_with_streams(
    listener: TcpListener,
    handler: Arc<dyn BusHandler>,
    auth: BusAuth,
    limits: BusLimits,
    tls: Option<BusTls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    serves: Serves,
) -> Result<(), tonic::transport::Error> {
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        shutdown.await;
        // Nobody listening is fine: no stream is open.
        let _ = stop.send(true);
    };
    let service = Service {
        handler,
        limits,
        stopping,
        streams: serves != Serves::Unary,
    };
    let links = serves == Serves::StreamsAndLinks && tls.is_none();
    let incoming = if links {
        // The links' accept loop hands every other connection to tonic.
        let (grpc, incoming) = tokio::sync::mpsc::channel(64);
        tokio::spawn(accept_loop(listener, service.clone(), auth.clone(), grpc));
        Either::Left(tokio_stream::wrappers::ReceiverStream::new(incoming))
    } else {
        Either::Right(without_nagle(listener))
    };
    let service = ClusterBusServer::new(service)
        .max_decoding_message_size(limits.max_message_bytes)
        .max_encoding_message_size(limits.max_message_bytes);
    // Authentication runs on the headers, before the body is decoded: an outsider
    // cannot make this node allocate a message.
    let service = InterceptedService::new(service, Authenticator { auth });
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &tls {
        builder = builder.tls_config(tls.server())?;
    }
    builder
        .concurrency_limit_per_connection(limits.max_concurrent_per_connection)
        .timeout(limits.request_timeout)
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}

/// The accepted connections of `listener` with Nagle's algorithm off. tonic sets
/// TCP_NODELAY only on listeners it binds itself; without it, a reply written in more
/// than one piece (a promise carrying a record of some hundred bytes, such as one with
/// request records) waited for the peer's delayed ACK: about 40 ms per consensus round.
fn without_nagle(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    tokio_stream::wrappers::TcpListenerStream::new(listener).map(|accepted| {
        // A connection that keeps Nagle is slower, not wrong: serve it anyway.
        if let Some(Err(e)) = accepted.as_ref().ok().map(|s| s.set_nodelay(true)) {
            tracing::debug!(error = %e, "bus connection keeps Nagle's algorithm");
        }
        accepted
    })
}

/// Clones share the handler: a replica stream's frames are served in tasks of their own.
#[derive(Clone)]
pub(crate) struct Service {
    handler: Arc<dyn BusHandler>,
    pub(crate) limits: BusLimits,
    /// Becomes true when the server shuts down: replica streams end then, so a graceful
    /// shutdown does not wait for a peer to close its stream.
    pub(crate) stopping: tokio::sync::watch::Receiver<bool>,
    /// Whether ReplicaStream is served (false only in tests, to play a build from
    /// before it).
    streams: bool,
}

/// Checks every request's credentials and leaves an [`Admitted`] in its extensions.
#[derive(Clone)]
struct Authenticator {
    auth: BusAuth,
}

impl Interceptor for Authenticator {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        let (method, creds) = metadata::read_credentials(req.metadata())
            .map_err(|e| refused(AuthError::Malformed(e)))?;
        self.auth
            .verify(&method, &creds, unix_ms())
            .map_err(refused)?;
        let reply_mac = creds.mac.as_ref().and_then(|m| self.auth.reply_mac(m));
        req.extensions_mut().insert(Admitted {
            method,
            node: creds.node,
            reply_mac,
        });
        Ok(req)
    }
}

/// A request that passed authentication: the method it was signed for and what the
/// reply must carry.
#[derive(Clone)]
pub(crate) struct Admitted {
    method: String,
    node: crate::NodeId,
    reply_mac: Option<[u8; super::auth::MAC_LEN]>,
}

impl Admitted {
    /// A request of `node`'s signed for `method`, whose reply carries `reply_mac`.
    pub(crate) fn new(
        method: &str,
        node: crate::NodeId,
        reply_mac: Option<[u8; super::auth::MAC_LEN]>,
    ) -> Self {
        Admitted {
            method: method.to_string(),
            node,
            reply_mac,
        }
    }

    fn reply<T>(&self, msg: T) -> Result<Response<T>, Status> {
        let mut r = Response::new(msg);
        if let Some(mac) = &self.reply_mac {
            metadata::write_reply_mac(r.metadata_mut(), mac);
        }
        Ok(r)
    }
}

/// The status a refused request gets.
pub(crate) fn refused(e: AuthError) -> Status {
    let msg = format!("kvd bus refused the request: {e}");
    match e {
        AuthError::MissingMac | AuthError::BadMac | AuthError::Malformed(_) => {
            Status::unauthenticated(msg)
        }
        AuthError::UnexpectedMac | AuthError::Stale { .. } | AuthError::OtherCluster { .. } => {
            Status::permission_denied(msg)
        }
    }
}

fn bad(e: BadMessage) -> Status {
    Status::invalid_argument(e)
}

/// The status a replica error travels as; the client maps it back.
pub(crate) fn status_of(e: ReplicaError) -> Status {
    match e {
        ReplicaError::Timeout => Status::deadline_exceeded("replica timed out"),
        ReplicaError::Unreachable(m) => Status::unavailable(m),
        ReplicaError::Overloaded => Status::resource_exhausted("replica overloaded"),
        ReplicaError::CatchingUp => {
            Status::failed_precondition("replica catching up after an unclean restart")
        }
        ReplicaError::StaleLayout { version } => stale_layout(0, version),
        ReplicaError::TooLarge(m) => Status::out_of_range(m),
        ReplicaError::Failed(m) => Status::internal(m),
    }
}

/// The refusal of a request tagged with layout `tag` by a replica holding `mine`:
/// `ABORTED`, with `mine` in the `kvd-layout-version` metadata for the client to read.
fn stale_layout(tag: u64, mine: u64) -> Status {
    let mut md = tonic::metadata::MetadataMap::new();
    if let Ok(v) = mine.to_string().parse() {
        md.insert(super::LAYOUT_VERSION_HEADER, v);
    }
    Status::with_metadata(
        tonic::Code::Aborted,
        format!(
            "stale layout: the request carries layout version {tag}, this replica holds {mine}"
        ),
        md,
    )
}

impl Service {
    /// The admission the authenticator left, checked against the method called.
    fn admit<T>(&self, req: &Request<T>, method: &str) -> Result<Admitted, Status> {
        match req.extensions().get::<Admitted>() {
            Some(a) if a.method == method => Ok(a.clone()),
            Some(a) => Err(Status::permission_denied(format!(
                "kvd bus refused the request: signed for {}, sent to {method}",
                a.method
            ))),
            None => Err(Status::unauthenticated(
                "kvd bus refused the request: not authenticated",
            )),
        }
    }

    /// Admits a replica request tagged with layout version `tag` (rpc/layout_tag.rs):
    /// refused when this node holds a newer layout; served otherwise, fetching the
    /// sender's layout when the tag is newer than ours.
    fn check_layout(&self, ok: &Admitted, tag: u64) -> Result<(), Status> {
        let Some(layout) = self.handler.layout_tag() else {
            return Ok(());
        };
        match layout.admit(tag) {
            Admission::Serve => Ok(()),
            Admission::ServeAndPull(version) => {
                self.handler.pull_layout(ok.node, version);
                Ok(())
            }
            Admission::Refuse(mine) => Err(stale_layout(tag, mine)),
        }
    }

    fn check_count(&self, n: usize) -> Result<(), Status> {
        if n > self.limits.max_items {
            return Err(Status::invalid_argument(format!(
                "{n} items in one request, at most {}",
                self.limits.max_items
            )));
        }
        Ok(())
    }

    /// A Write, unary or a frame of the replica stream (rpc/replica_stream.rs).
    pub(super) async fn serve_write(
        &self,
        ok: &Admitted,
        req: pb::WriteRequest,
    ) -> Result<pb::WriteResponse, Status> {
        self.check_layout(ok, req.layout_version)?;
        self.check_count(req.items.len())?;
        let items = req
            .items
            .into_iter()
            .map(cv::write_item_from_pb)
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?;
        let outcomes = self
            .handler
            .replica()
            .write(items)
            .await
            .map_err(status_of)?;
        Ok(not_counted::write_reply(outcomes, req.takes_not_counted)?)
    }

    /// A Read, unary or a frame of the replica stream.
    pub(super) async fn serve_read(
        &self,
        ok: &Admitted,
        req: pb::ReadRequest,
    ) -> Result<pb::ReadResponse, Status> {
        self.check_layout(ok, req.layout_version)?;
        self.check_count(req.keys.len())?;
        let keys = req
            .keys
            .into_iter()
            .map(|k| cv::key_from_pb(Some(k)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?;
        let records = self.handler.replica().read(keys).await.map_err(status_of)?;
        let reply = pb::ReadResponse {
            records: records.into_iter().map(cv::maybe_record_to_pb).collect(),
        };
        // Refused here rather than dropped by the carrier's encoder: the asker splits
        // its keys and asks again (rpc/client.rs) instead of waiting for a lost answer.
        // One record alone above the bound (written by a build before the bound, or
        // not by kvd) cannot travel at all: the asker gets this error at once, not a
        // timeout.
        let bytes = reply.encoded_len();
        let bound = answer_bound(self.limits.max_message_bytes);
        if bytes > bound {
            return Err(status_of(ReplicaError::TooLarge(format!(
                "an answer of {} records and {bytes} bytes, above {bound}: ask for fewer keys \
                 (one record that large cannot leave this node)",
                reply.records.len()
            ))));
        }
        Ok(reply)
    }
}

#[tonic::async_trait]
impl ClusterBus for Service {
    async fn write(
        &self,
        req: Request<pb::WriteRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let ok = self.admit(&req, "Write")?;
        let reply = self.serve_write(&ok, req.into_inner()).await?;
        ok.reply(reply)
    }

    async fn read(
        &self,
        req: Request<pb::ReadRequest>,
    ) -> Result<Response<pb::ReadResponse>, Status> {
        let ok = self.admit(&req, "Read")?;
        let reply = self.serve_read(&ok, req.into_inner()).await?;
        ok.reply(reply)
    }

    async fn prepare(
        &self,
        req: Request<pb::PrepareRequest>,
    ) -> Result<Response<pb::PrepareResponse>, Status> {
        let ok = self.admit(&req, "Prepare")?;
        let req = req.into_inner();
        self.check_layout(&ok, req.layout_version)?;
        let key = cv::key_from_pb(req.key).map_err(bad)?;
        let ballot = cv::version_from_pb(&req.ballot, "ballot").map_err(bad)?;
        let outcome = self
            .handler
            .replica()
            .prepare(key, ballot)
            .await
            .map_err(status_of)?;
        ok.reply(cv::prepare_to_pb(outcome))
    }

    async fn accept(
        &self,
        req: Request<pb::AcceptRequest>,
    ) -> Result<Response<pb::WriteOutcome>, Status> {
        let ok = self.admit(&req, "Accept")?;
        let req = req.into_inner();
        self.check_layout(&ok, req.layout_version)?;
        let item = req
            .item
            .ok_or_else(|| "accept without its item".to_string());
        let item = item.and_then(cv::write_item_from_pb).map_err(bad)?;
        let outcome = self
            .handler
            .replica()
            .accept(item)
            .await
            .map_err(status_of)?;
        ok.reply(not_counted::accept_reply(outcome)?)
    }

    async fn merkle_roots(
        &self,
        req: Request<pb::MerkleRootsRequest>,
    ) -> Result<Response<pb::MerkleRootsResponse>, Status> {
        let ok = self.admit(&req, "MerkleRoots")?;
        let req = req.into_inner();
        self.check_count(req.partitions.len())?;
        let partitions = req
            .partitions
            .into_iter()
            .map(cv::partition_from_pb)
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?;
        let roots = self
            .handler
            .replica()
            .merkle_roots(partitions)
            .await
            .map_err(status_of)?;
        ok.reply(pb::MerkleRootsResponse {
            roots: roots.iter().map(cv::hash_to_pb).collect(),
        })
    }

    async fn merkle_buckets(
        &self,
        req: Request<pb::MerkleBucketsRequest>,
    ) -> Result<Response<pb::MerkleBucketsResponse>, Status> {
        let ok = self.admit(&req, "MerkleBuckets")?;
        let partition = cv::partition_from_pb(req.into_inner().partition).map_err(bad)?;
        let buckets = self
            .handler
            .replica()
            .merkle_buckets(partition)
            .await
            .map_err(status_of)?;
        ok.reply(pb::MerkleBucketsResponse {
            buckets: buckets.iter().map(cv::hash_to_pb).collect(),
        })
    }

    async fn merkle_leaves(
        &self,
        req: Request<pb::MerkleLeavesRequest>,
    ) -> Result<Response<pb::MerkleLeavesResponse>, Status> {
        let ok = self.admit(&req, "MerkleLeaves")?;
        let req = req.into_inner();
        let partition = cv::partition_from_pb(req.partition).map_err(bad)?;
        let bucket = cv::bucket_from_pb(req.bucket).map_err(bad)?;
        let after = req
            .after
            .map(|k| cv::key_from_pb(Some(k)))
            .transpose()
            .map_err(bad)?;
        let leaves = self
            .handler
            .replica()
            .merkle_leaves(partition, bucket)
            .await
            .map_err(status_of)?;
        let bound = answer_bound(self.limits.max_message_bytes);
        ok.reply(super::leaves_page::page(leaves, after.as_ref(), bound))
    }

    async fn scan(
        &self,
        req: Request<pb::ScanRequest>,
    ) -> Result<Response<pb::ScanResponse>, Status> {
        let ok = self.admit(&req, "Scan")?;
        let req = req.into_inner();
        let partition = cv::partition_from_pb(req.partition).map_err(bad)?;
        let from = req
            .from
            .map(cv::position_from_pb)
            .transpose()
            .map_err(bad)?
            .unwrap_or(kv_keyspace::data_key::ScanPosition::START);
        let limit = (req.limit as usize).min(self.limits.max_scan_limit);
        let page = self
            .handler
            .replica()
            .scan(partition, req.db, from, limit)
            .await
            .map_err(status_of)?;
        ok.reply(cv::page_to_pb(page))
    }

    async fn hello(
        &self,
        req: Request<pb::HelloRequest>,
    ) -> Result<Response<pb::HelloResponse>, Status> {
        let ok = self.admit(&req, "Hello")?;
        let req = req.into_inner();
        super::bus_version::check_peer(req.bus_version, req.min_bus_version)
            .map_err(Status::unimplemented)?;
        self.check_count(req.peers.len())?;
        if req.node_id != ok.node.0 {
            return Err(Status::invalid_argument(format!(
                "hello from node {} signed by node {}",
                crate::NodeId(req.node_id),
                ok.node
            )));
        }
        let me = self
            .handler
            .hello(cv::hello_from_pb(req))
            .await
            .map_err(status_of)?;
        ok.reply(pb::HelloResponse {
            me: Some(cv::hello_to_pb(me)),
        })
    }

    async fn get_layout(
        &self,
        req: Request<pb::GetLayoutRequest>,
    ) -> Result<Response<pb::LayoutMessage>, Status> {
        let ok = self.admit(&req, "GetLayout")?;
        let layout = self.handler.get_layout().await.map_err(status_of)?;
        ok.reply(cv::layout_to_pb(layout))
    }

    async fn push_layout(
        &self,
        req: Request<pb::LayoutMessage>,
    ) -> Result<Response<pb::PushLayoutResponse>, Status> {
        let ok = self.admit(&req, "PushLayout")?;
        let layout = cv::layout_from_pb(req.into_inner())
            .ok_or_else(|| Status::invalid_argument("empty layout"))?;
        let r = self.handler.push_layout(layout).await.map_err(status_of)?;
        ok.reply(pb::PushLayoutResponse {
            accepted: r.accepted,
            current_version: r.current_version,
        })
    }

    async fn ping(
        &self,
        req: Request<pb::PingRequest>,
    ) -> Result<Response<pb::PingResponse>, Status> {
        let ok = self.admit(&req, "Ping")?;
        let sender_wall_ms = req.into_inner().sender_wall_ms;
        ok.reply(pb::PingResponse {
            sender_wall_ms,
            receiver_wall_ms: self.handler.wall_clock_ms(),
        })
    }

    async fn sync_metadata(
        &self,
        req: Request<pb::SyncMetadataRequest>,
    ) -> Result<Response<pb::SyncMetadataResponse>, Status> {
        let ok = self.admit(&req, "SyncMetadata")?;
        let req = req.into_inner();
        self.check_count(req.entries.len())?;
        let entries = super::meta_entries::from_pb(req.entries).map_err(bad)?;
        let held = self
            .handler
            .sync_metadata(entries)
            .await
            .map_err(status_of)?;
        ok.reply(pb::SyncMetadataResponse {
            entries: super::meta_entries::to_pb(held),
        })
    }

    async fn publish(
        &self,
        req: Request<pb::PublishRequest>,
    ) -> Result<Response<pb::PublishResponse>, Status> {
        let ok = self.admit(&req, "Publish")?;
        let req = req.into_inner();
        self.check_count(req.messages.len())?;
        ok.reply(super::publish::serve(self.handler.as_ref(), req.messages).await?)
    }

    async fn propose(
        &self,
        req: Request<pb::ProposeRequest>,
    ) -> Result<Response<pb::ProposeResponse>, Status> {
        let ok = self.admit(&req, "Propose")?;
        let req = req.into_inner();
        self.check_count(req.args.len())?;
        ok.reply(super::propose::serve(self.handler.as_ref(), req).await?)
    }

    async fn partition_sizes(
        &self,
        req: Request<pb::PartitionSizesRequest>,
    ) -> Result<Response<pb::PartitionSizesResponse>, Status> {
        let ok = self.admit(&req, "PartitionSizes")?;
        let req = req.into_inner();
        self.check_count(req.partitions.len())?;
        ok.reply(super::partition_sizes::serve(self.handler.as_ref(), req.partitions).await?)
    }

    async fn scan_partition(
        &self,
        req: Request<pb::ScanPartitionRequest>,
    ) -> Result<Response<pb::ScanPartitionResponse>, Status> {
        let ok = self.admit(&req, "ScanPartition")?;
        let req = req.into_inner();
        let max = self.limits.max_scan_limit;
        ok.reply(super::partition_scan::serve(self.handler.as_ref(), req, max).await?)
    }

    type ReplicaStreamStream = super::replica_stream::ReplyStream;

    async fn replica_stream(
        &self,
        req: Request<tonic::Streaming<pb::ReplicaFrame>>,
    ) -> Result<Response<Self::ReplicaStreamStream>, Status> {
        let ok = self.admit(&req, "ReplicaStream")?;
        if !self.streams {
            return Err(Status::unimplemented("ReplicaStream"));
        }
        let replies = super::replica_stream::serve(self.clone(), ok.clone(), req.into_inner());
        ok.reply(replies)
    }
}

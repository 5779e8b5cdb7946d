//! The bus end to end over a real loopback server, with an in-test fake replica.

use super::server::Serves;
use super::*;
use crate::pubsub_fanout::PubSubMessage;
use crate::replica_api::{
    Hash16, ItemKey, MerkleLeaf, ReplicaApi, ReplicaError, ScanPage, WriteItem, WriteOutcome,
};
use crate::{NodeId, Record, Version};
use async_trait::async_trait;
use bytes::Bytes;
use kv_keyspace::data_key::ScanPosition;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Semaphore};

/// A replica in memory with the replica semantics (newer applies, older is stale).
/// `gate` makes writes wait for a permit, `read_gate` reads; `hang` makes reads never
/// answer. `entered` and `reads_entered` count the write and read calls served.
#[derive(Default)]
pub(crate) struct FakeReplica {
    pub(super) data: Mutex<HashMap<ItemKey, Record>>,
    pub(super) gate: Option<Arc<Semaphore>>,
    pub(super) read_gate: Option<Arc<Semaphore>>,
    pub(super) entered: AtomicUsize,
    pub(super) reads_entered: AtomicUsize,
    pub(super) hang: bool,
}

/// Waits for a permit of `gate`, if there is one.
async fn pass(gate: &Option<Arc<Semaphore>>) -> Result<(), ReplicaError> {
    if let Some(gate) = gate {
        // Released on return: a permit lets requests through until it is taken back.
        let _permit = gate
            .acquire()
            .await
            .map_err(|e| ReplicaError::Failed(e.to_string()))?;
    }
    Ok(())
}

#[async_trait]
impl ReplicaApi for FakeReplica {
    async fn write(&self, items: Vec<WriteItem>) -> Result<Vec<WriteOutcome>, ReplicaError> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        pass(&self.gate).await?;
        let mut data = self.data.lock();
        Ok(items
            .into_iter()
            .map(|w| match data.get(&w.key) {
                Some(cur) if cur.version > w.record.version => WriteOutcome::Stale {
                    current: cur.version,
                },
                _ => {
                    data.insert(w.key, w.record);
                    WriteOutcome::Applied
                }
            })
            .collect())
    }

    async fn read(&self, keys: Vec<ItemKey>) -> Result<Vec<Option<Record>>, ReplicaError> {
        self.reads_entered.fetch_add(1, Ordering::SeqCst);
        if self.hang {
            std::future::pending::<()>().await;
        }
        pass(&self.read_gate).await?;
        let data = self.data.lock();
        Ok(keys.iter().map(|k| data.get(k).cloned()).collect())
    }

    async fn merkle_roots(&self, partitions: Vec<u16>) -> Result<Vec<Hash16>, ReplicaError> {
        Ok(partitions.iter().map(|p| [*p as u8; 16]).collect())
    }

    async fn merkle_buckets(&self, partition: u16) -> Result<Vec<Hash16>, ReplicaError> {
        Ok((0..256)
            .map(|b| [(b as u8) ^ (partition as u8); 16])
            .collect())
    }

    /// A leaf named "leaf", then one per key held (any partition or bucket, in the
    /// map's order).
    async fn merkle_leaves(
        &self,
        _partition: u16,
        bucket: u8,
    ) -> Result<Vec<MerkleLeaf>, ReplicaError> {
        let fixed = ItemKey {
            db: 1,
            key: Bytes::from_static(b"leaf"),
        };
        let held: Vec<ItemKey> = self.data.lock().keys().cloned().collect();
        Ok(std::iter::once(fixed)
            .chain(held)
            .map(|key| MerkleLeaf {
                key,
                hash: [bucket; 16],
            })
            .collect())
    }

    async fn scan(
        &self,
        _partition: u16,
        db: u32,
        from: ScanPosition,
        limit: usize,
    ) -> Result<ScanPage, ReplicaError> {
        let data = self.data.lock();
        let mut items: Vec<_> = data
            .iter()
            .filter(|(k, _)| k.db == db)
            .map(|(k, r)| (k.key.clone(), r.clone()))
            .collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        items.truncate(limit);
        Ok(ScanPage {
            items,
            next: from.next(),
        })
    }

    /// Every record in one page, sorted, then `RESUME` as the next page's start; from
    /// `RESUME`, an empty last page.
    async fn scan_partition(
        &self,
        _partition: u16,
        from: Option<Bytes>,
        limit: usize,
    ) -> Result<crate::replica_api::PartitionPage, ReplicaError> {
        if from.as_deref() == Some(RESUME) {
            return Ok(crate::replica_api::PartitionPage::default());
        }
        let mut items: Vec<WriteItem> = self
            .data
            .lock()
            .iter()
            .map(|(key, record)| WriteItem {
                key: key.clone(),
                record: record.clone(),
            })
            .collect();
        items.sort_by(|a, b| a.key.cmp(&b.key));
        items.truncate(limit);
        Ok(crate::replica_api::PartitionPage {
            items,
            bytes: 0, // the client counts what arrives
            next: Some(Bytes::from_static(RESUME)),
        })
    }
}

/// Where [`FakeReplica::scan_partition`]'s second page starts.
pub(super) const RESUME: &[u8] = b"resume-here";

struct TestHandler {
    replica: Arc<FakeReplica>,
    catch_up: CatchUpGate,
    layout: Mutex<Option<LayoutBlob>>,
    published: Arc<Mutex<Vec<PubSubMessage>>>,
}

#[async_trait]
impl BusHandler for TestHandler {
    fn replica(&self) -> Arc<dyn ReplicaApi> {
        match &*self.catch_up.lock() {
            Some(state) => Arc::new(crate::catch_up::CatchingUpReplica::new(
                self.replica.clone(),
                state.clone(),
            )),
            None => self.replica.clone(),
        }
    }

    async fn hello(&self, from: Hello) -> Result<Hello, ReplicaError> {
        Ok(Hello {
            node: NodeId(1),
            cluster_id: None,
            resp_addr: "127.0.0.1:7001".into(),
            bus_addr: "127.0.0.1:17001".into(),
            layout: self.layout.lock().as_ref().map(|l| l.json.clone()),
            peers: vec![PeerAddr {
                node: from.node,
                bus_addr: from.bus_addr,
            }],
        })
    }

    async fn get_layout(&self) -> Result<Option<LayoutBlob>, ReplicaError> {
        Ok(self.layout.lock().clone())
    }

    async fn push_layout(&self, layout: LayoutBlob) -> Result<PushLayoutReply, ReplicaError> {
        let mut cur = self.layout.lock();
        let held = cur.as_ref().map_or(0, |l| l.version);
        let accepted = layout.version > held;
        if accepted {
            *cur = Some(layout);
        }
        Ok(PushLayoutReply {
            accepted,
            current_version: cur.as_ref().map_or(0, |l| l.version),
        })
    }

    fn wall_clock_ms(&self) -> i64 {
        42
    }

    /// Records the messages; answers two deliveries per message.
    async fn publish(&self, messages: Vec<PubSubMessage>) -> Result<u64, ReplicaError> {
        let n = messages.len() as u64;
        self.published.lock().extend(messages);
        Ok(2 * n)
    }
}

/// The catch-up state the test server's replica is served behind (none: served as is).
pub(super) type CatchUpGate = Arc<Mutex<Option<Arc<crate::catch_up::CatchUp>>>>;

/// A running bus server; dropping it stops the server.
pub(super) struct Server {
    pub(super) addr: String,
    pub(super) replica: Arc<FakeReplica>,
    /// Set to serve the replica as a node catching up would (cluster/src/catch_up.rs).
    pub(super) catch_up: CatchUpGate,
    /// What peers published to this server, in arrival order.
    pub(super) published: Arc<Mutex<Vec<PubSubMessage>>>,
    /// Dropping it shuts the server down gracefully.
    pub(super) stop: oneshot::Sender<()>,
    /// The server's task: done when it has shut down.
    pub(super) served: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

pub(super) async fn start(
    replica: FakeReplica,
    secret: Option<&[u8]>,
    cluster: Option<&str>,
) -> Server {
    start_with(replica, secret, cluster, None).await
}

pub(super) async fn start_with(
    replica: FakeReplica,
    secret: Option<&[u8]>,
    cluster: Option<&str>,
    tls: Option<BusTls>,
) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    launch(
        listener,
        replica,
        secret,
        cluster,
        tls,
        Serves::StreamsAndLinks,
        BusLimits::default(),
    )
}

/// Serves `replica` on `listener` with the replica protocols of `serves` (older builds
/// serve fewer).
pub(super) fn launch(
    listener: TcpListener,
    replica: FakeReplica,
    secret: Option<&[u8]>,
    cluster: Option<&str>,
    tls: Option<BusTls>,
    serves: Serves,
    limits: BusLimits,
) -> Server {
    let addr = listener.local_addr().unwrap().to_string();
    let replica = Arc::new(replica);
    let published = Arc::new(Mutex::new(Vec::new()));
    let catch_up = CatchUpGate::default();
    let handler = Arc::new(TestHandler {
        replica: replica.clone(),
        catch_up: catch_up.clone(),
        layout: Mutex::new(None),
        published: published.clone(),
    });
    let auth = BusAuth::new(NodeId(1), secret, cluster.map(String::from));
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(super::server::serve_with_streams(
        listener,
        handler,
        auth,
        limits,
        tls,
        async {
            let _ = stopped.await;
        },
        serves,
    ));
    Server {
        addr,
        replica,
        catch_up,
        published,
        stop,
        served,
    }
}

/// A bare generated client of `s`, to send messages as they are on the wire.
pub(super) async fn raw_client(
    s: &Server,
) -> pb::cluster_bus_client::ClusterBusClient<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", s.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    pb::cluster_bus_client::ClusterBusClient::new(channel)
}

/// `msg` with `auth`'s credentials for the Write RPC.
pub(super) fn signed_write(
    auth: &BusAuth,
    msg: pb::WriteRequest,
) -> tonic::Request<pb::WriteRequest> {
    let mut r = tonic::Request::new(msg);
    let c = auth.sign("Write", auth::unix_ms());
    metadata::write_credentials(r.metadata_mut(), "Write", &c);
    r
}

pub(super) fn client(s: &Server, secret: Option<&[u8]>, cluster: Option<&str>) -> PeerClient {
    client_with(s, secret, cluster, ClientConfig::default())
}

pub(super) fn client_with(
    s: &Server,
    secret: Option<&[u8]>,
    cluster: Option<&str>,
    config: ClientConfig,
) -> PeerClient {
    let auth = BusAuth::new(NodeId(2), secret, cluster.map(String::from));
    PeerClient::new(&s.addr, auth, config).unwrap()
}

pub(super) fn key(k: &'static str) -> ItemKey {
    ItemKey {
        db: 0,
        key: Bytes::from_static(k.as_bytes()),
    }
}

pub(super) fn version(ts: u64) -> Version {
    Version {
        ts: ts << 16,
        node: NodeId(9),
    }
}

pub(super) async fn poll_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn write_read_round_trip_with_stale_outcome() {
    let s = start(FakeReplica::default(), Some(b"s3cret"), Some("c1")).await;
    let c = client(&s, Some(b"s3cret"), Some("c1"));
    let value = Record::string(
        version(10),
        Bytes::from_static(b"v"),
        Some(1_900_000_000_000),
    );
    let gone = Record::tombstone(version(11));
    let out = c
        .write(vec![
            WriteItem {
                key: key("a"),
                record: value.clone(),
            },
            WriteItem {
                key: key("b"),
                record: gone.clone(),
            },
        ])
        .await
        .unwrap();
    assert_eq!(out, vec![WriteOutcome::Applied, WriteOutcome::Applied]);
    let older = Record::string(version(5), Bytes::from_static(b"old"), None);
    let out = c
        .write(vec![WriteItem {
            key: key("a"),
            record: older,
        }])
        .await
        .unwrap();
    assert_eq!(
        out,
        vec![WriteOutcome::Stale {
            current: version(10)
        }]
    );
    let got = c.read(vec![key("a"), key("b"), key("zz")]).await.unwrap();
    assert_eq!(got, vec![Some(value.clone()), Some(gone), None]);
    let page = c.scan(3, 0, ScanPosition::START, 1).await.unwrap();
    assert_eq!(page.items, vec![(Bytes::from_static(b"a"), value)]);
    assert_eq!(page.next, ScanPosition::START.next());
    assert_eq!(
        c.merkle_roots(vec![1, 2]).await.unwrap(),
        vec![[1; 16], [2; 16]]
    );
    let buckets = c.merkle_buckets(3).await.unwrap();
    assert_eq!(buckets.len(), 256);
    assert_eq!(buckets[5], [5 ^ 3; 16]);
    let leaves = c.merkle_leaves(3, 7).await.unwrap();
    assert_eq!(leaves[0].hash, [7; 16]);
}

#[tokio::test]
async fn hello_layout_and_ping() {
    let s = start(FakeReplica::default(), None, None).await;
    let c = client(&s, None, None);
    let me = Hello {
        node: NodeId(2),
        cluster_id: None,
        resp_addr: "127.0.0.1:7002".into(),
        bus_addr: "127.0.0.1:17002".into(),
        layout: None,
        peers: vec![],
    };
    let them = c.hello(me).await.unwrap();
    assert_eq!(them.node, NodeId(1));
    assert_eq!(
        them.peers,
        vec![PeerAddr {
            node: NodeId(2),
            bus_addr: "127.0.0.1:17002".into()
        }]
    );
    assert_eq!(them.layout, None);
    assert_eq!(c.get_layout().await.unwrap(), None);
    let l = LayoutBlob {
        version: 3,
        json: Bytes::from_static(b"{\"version\":3}"),
    };
    let r = c.push_layout(l.clone()).await.unwrap();
    assert_eq!(
        r,
        PushLayoutReply {
            accepted: true,
            current_version: 3
        }
    );
    assert_eq!(c.get_layout().await.unwrap(), Some(l));
    let impostor = Hello {
        node: NodeId(77),
        cluster_id: None,
        resp_addr: String::new(),
        bus_addr: String::new(),
        layout: None,
        peers: vec![],
    };
    match c.hello(impostor).await {
        Err(ReplicaError::Failed(m)) => assert!(m.contains("signed by node"), "{m}"),
        other => panic!("a hello for another node must be refused: {other:?}"),
    }
    let ping = c.ping().await.unwrap();
    assert_eq!(ping.peer_ms, 42);
    assert!(ping.received_ms >= ping.sent_ms);
}

fn refused_with(r: Result<Vec<Option<Record>>, ReplicaError>, needle: &str) {
    match r {
        Err(ReplicaError::Failed(m)) => assert!(m.contains(needle), "{m:?} lacks {needle:?}"),
        other => panic!("expected a refusal with {needle:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn wrong_or_missing_secret_is_refused() {
    let s = start(FakeReplica::default(), Some(b"s3cret"), None).await;
    refused_with(
        client(&s, Some(b"other"), None).read(vec![key("a")]).await,
        "wrong cluster MAC",
    );
    refused_with(
        client(&s, None, None).read(vec![key("a")]).await,
        "no cluster MAC",
    );
    let open = start(FakeReplica::default(), None, None).await;
    refused_with(
        client(&open, Some(b"s3cret"), None)
            .read(vec![key("a")])
            .await,
        "has no --cluster-secret",
    );
    // The right secret passes.
    assert!(client(&s, Some(b"s3cret"), None)
        .read(vec![key("a")])
        .await
        .is_ok());
}

#[tokio::test]
async fn other_cluster_is_refused() {
    let s = start(FakeReplica::default(), Some(b"s"), Some("cluster-a")).await;
    refused_with(
        client(&s, Some(b"s"), Some("cluster-b"))
            .read(vec![key("a")])
            .await,
        "cluster-b",
    );
    assert!(client(&s, Some(b"s"), Some("cluster-a"))
        .read(vec![key("a")])
        .await
        .is_ok());
}

/// A server whose writes wait for permits of the returned gate, and a client to it
/// (with a deadline long enough never to fire in these tests).
async fn gated(config: ClientConfig) -> (Server, Arc<Semaphore>, Arc<PeerClient>) {
    let gate = Arc::new(Semaphore::new(0));
    let fake = FakeReplica {
        gate: Some(gate.clone()),
        ..FakeReplica::default()
    };
    let s = start(fake, None, None).await;
    let config = ClientConfig {
        timeout: Duration::from_secs(30),
        ..config
    };
    let c = Arc::new(client_with(&s, None, None, config));
    (s, gate, c)
}

#[tokio::test]
async fn in_flight_bound_gives_overloaded() {
    let (s, gate, c) = gated(ClientConfig {
        max_in_flight: 1,
        ..ClientConfig::default()
    })
    .await;
    let item = || {
        vec![WriteItem {
            key: key("k"),
            record: Record::tombstone(version(1)),
        }]
    };
    let first = tokio::spawn({
        let c = c.clone();
        let items = item();
        async move { c.write(items).await }
    });
    let replica = s.replica.clone();
    poll_until("the first write to reach the replica", || {
        replica.entered.load(Ordering::SeqCst) == 1
    })
    .await;
    assert_eq!(c.write(item()).await, Err(ReplicaError::Overloaded));
    gate.add_permits(1);
    assert_eq!(first.await.unwrap(), Ok(vec![WriteOutcome::Applied]));
    // The slot is free again.
    gate.add_permits(1);
    assert_eq!(c.write(item()).await, Ok(vec![WriteOutcome::Applied]));
}

#[tokio::test]
async fn concurrent_writes_under_load_leave_in_one_rpc() {
    let (s, gate, c) = gated(ClientConfig {
        max_write_rpcs: 1,
        ..ClientConfig::default()
    })
    .await;
    let write = |k: &'static str| {
        let c = c.clone();
        tokio::spawn(async move {
            c.write(vec![WriteItem {
                key: key(k),
                record: Record::tombstone(version(1)),
            }])
            .await
        })
    };
    let first = write("first");
    let replica = s.replica.clone();
    poll_until("the first write RPC to reach the replica", || {
        replica.entered.load(Ordering::SeqCst) == 1
    })
    .await;
    let keys = ["a", "b", "c", "d", "e", "f", "g", "h"];
    let rest: Vec<_> = keys.iter().map(|k| write(k)).collect();
    poll_until("the other writes to queue", || {
        c.queued_writes() == keys.len()
    })
    .await;
    gate.add_permits(2);
    assert_eq!(first.await.unwrap(), Ok(vec![WriteOutcome::Applied]));
    for r in rest {
        assert_eq!(r.await.unwrap(), Ok(vec![WriteOutcome::Applied]));
    }
    assert_eq!(
        s.replica.entered.load(Ordering::SeqCst),
        2,
        "eight queued writes leave in one RPC"
    );
    assert_eq!(s.replica.data.lock().len(), keys.len() + 1);
}

#[tokio::test]
async fn concurrent_reads_under_load_leave_in_one_rpc() {
    let gate = Arc::new(Semaphore::new(0));
    let fake = FakeReplica {
        read_gate: Some(gate.clone()),
        ..FakeReplica::default()
    };
    fake.data
        .lock()
        .insert(key("b"), Record::tombstone(version(7)));
    let s = start(fake, None, None).await;
    let config = ClientConfig {
        timeout: Duration::from_secs(30),
        max_read_rpcs: 1,
        ..ClientConfig::default()
    };
    let c = Arc::new(client_with(&s, None, None, config));
    let read = |k: &'static str| {
        let c = c.clone();
        tokio::spawn(async move { c.read(vec![key(k)]).await })
    };
    let first = read("first");
    let replica = s.replica.clone();
    poll_until("the first read RPC to reach the replica", || {
        replica.reads_entered.load(Ordering::SeqCst) == 1
    })
    .await;
    let keys = ["a", "b", "c", "d", "e", "f", "g", "h"];
    let rest: Vec<_> = keys.iter().map(|k| read(k)).collect();
    poll_until("the other reads to queue", || {
        c.queued_reads() == keys.len()
    })
    .await;
    gate.add_permits(2);
    assert_eq!(first.await.unwrap(), Ok(vec![None]));
    for (k, r) in keys.iter().zip(rest) {
        let want = (*k == "b").then(|| Record::tombstone(version(7)));
        assert_eq!(
            r.await.unwrap(),
            Ok(vec![want]),
            "each caller gets its own key"
        );
    }
    assert_eq!(
        s.replica.reads_entered.load(Ordering::SeqCst),
        2,
        "eight queued reads leave in one RPC"
    );
}

#[tokio::test]
async fn handler_that_never_answers_times_out() {
    let fake = FakeReplica {
        hang: true,
        gate: Some(Arc::new(Semaphore::new(0))),
        ..FakeReplica::default()
    };
    let s = start(fake, None, None).await;
    let config = ClientConfig {
        timeout: Duration::from_millis(200),
        ..ClientConfig::default()
    };
    let c = client_with(&s, None, None, config);
    assert_eq!(c.read(vec![key("a")]).await, Err(ReplicaError::Timeout));
    let write = vec![WriteItem {
        key: key("a"),
        record: Record::tombstone(version(1)),
    }];
    assert_eq!(c.write(write).await, Err(ReplicaError::Timeout));
}

#[tokio::test]
async fn unreachable_address_is_unreachable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let c = PeerClient::new(
        &addr,
        BusAuth::new(NodeId(2), None, None),
        ClientConfig::default(),
    )
    .unwrap();
    assert!(matches!(
        c.read(vec![key("a")]).await,
        Err(ReplicaError::Unreachable(_))
    ));
}

#[tokio::test]
async fn malformed_records_and_oversized_requests_are_invalid_argument() {
    let s = start(FakeReplica::default(), None, None).await;
    let auth = BusAuth::new(NodeId(2), None, None);
    let mut raw = raw_client(&s).await;
    let signed = |msg| signed_write(&auth, msg);
    let junk = pb::WriteRequest {
        items: vec![pb::WriteItem {
            key: Some(pb::ItemKey {
                db: 0,
                key: Bytes::from_static(b"k"),
            }),
            record: Bytes::from_static(b"\x01garbage"),
        }],
        ..Default::default()
    };
    let err = raw.write(signed(junk)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let too_many = pb::WriteRequest {
        items: vec![pb::WriteItem::default(); BusLimits::default().max_items + 1],
        ..Default::default()
    };
    let err = raw.write(signed(too_many)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("items"));
    // Credentials signed for one method do not admit another.
    let mut r = tonic::Request::new(pb::WriteRequest::default());
    let c = auth.sign("Read", auth::unix_ms());
    metadata::write_credentials(r.metadata_mut(), "Read", &c);
    let err = raw.write(r).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    assert!(
        err.message().contains("signed for Read"),
        "{}",
        err.message()
    );
    // Unsigned requests are malformed, not served.
    let err = raw
        .write(tonic::Request::new(pb::WriteRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
}

#[tokio::test]
async fn peer_clients_map_local_and_remote_nodes() {
    use crate::replica_api::Replicas;
    let s = start(FakeReplica::default(), None, None).await;
    let local: Arc<dyn ReplicaApi> = Arc::new(FakeReplica::default());
    let book = PeerClients::new(
        NodeId(2),
        local.clone(),
        BusAuth::new(NodeId(2), None, None),
        ClientConfig::default(),
    );
    assert!(Arc::ptr_eq(&book.replica(NodeId(2)).unwrap(), &local));
    assert!(book.replica(NodeId(1)).is_none());
    book.set_address(NodeId(1), &s.addr).unwrap();
    let first = book.peer(NodeId(1)).unwrap();
    book.set_address(NodeId(1), &s.addr).unwrap();
    assert!(
        Arc::ptr_eq(&first, &book.peer(NodeId(1)).unwrap()),
        "same address keeps its client"
    );
    let remote = book.replica(NodeId(1)).unwrap();
    remote
        .write(vec![WriteItem {
            key: key("x"),
            record: Record::tombstone(version(2)),
        }])
        .await
        .unwrap();
    assert_eq!(s.replica.data.lock().len(), 1);
    assert_eq!(book.addresses(), vec![(NodeId(1), s.addr.clone())]);
    book.remove(NodeId(1));
    assert!(book.replica(NodeId(1)).is_none());
}

#[test]
fn a_client_made_outside_a_runtime_is_an_error_not_a_panic() {
    let auth = BusAuth::new(NodeId(2), None, None);
    let err = PeerClient::new("127.0.0.1:1", auth, ClientConfig::default()).unwrap_err();
    assert!(err.contains("tokio runtime"), "{err}");
}

#[tokio::test]
async fn a_hello_from_a_peer_that_needs_a_future_bus_version_is_refused_clearly() {
    let s = start(FakeReplica::default(), None, None).await;
    let auth = BusAuth::new(NodeId(2), None, None);
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", s.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut raw = pb::cluster_bus_client::ClusterBusClient::new(channel);
    let hello = |bus_version, min_bus_version| {
        let mut r = tonic::Request::new(pb::HelloRequest {
            node_id: 2,
            bus_version,
            min_bus_version,
            ..pb::HelloRequest::default()
        });
        let c = auth.sign("Hello", auth::unix_ms());
        metadata::write_credentials(r.metadata_mut(), "Hello", &c);
        r
    };
    let future = bus_version::BUS_VERSION + 1;
    let err = raw.hello(hello(future, future)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unimplemented);
    assert!(
        err.message().contains("upgrade this node"),
        "{}",
        err.message()
    );
    // A build from before the version fields (both 0) is served, and told ours.
    let them = raw
        .hello(hello(0, 0))
        .await
        .unwrap()
        .into_inner()
        .me
        .unwrap();
    assert_eq!(them.bus_version, bus_version::BUS_VERSION);
    assert_eq!(them.min_bus_version, bus_version::MIN_BUS_VERSION);
}

/// A write round's requests to a peer (`QueuedWrites::write_then`) ride the same batcher
/// as waited-for writes: queued behind a busy RPC they leave together in the next one,
/// and each callback gets its own answers from the flusher, once.
#[tokio::test]
async fn queued_writes_answer_through_their_callbacks_in_the_next_rpc() {
    use crate::replica_api::QueuedWrites;
    let (s, gate, c) = gated(ClientConfig {
        max_write_rpcs: 1,
        ..ClientConfig::default()
    })
    .await;
    let (answers_tx, mut answers) = tokio::sync::mpsc::unbounded_channel();
    let write_then = |k: &'static str, ts: u64| {
        let tx = answers_tx.clone();
        c.write_then(
            vec![WriteItem {
                key: key(k),
                record: Record::tombstone(version(ts)),
            }],
            Box::new(move |reply| tx.send((k, reply)).expect("receiver")),
        );
    };
    write_then("first", 1);
    let replica = s.replica.clone();
    poll_until("the first write RPC to reach the replica", || {
        replica.entered.load(Ordering::SeqCst) == 1
    })
    .await;
    write_then("a", 2);
    write_then("b", 3);
    assert_eq!(c.queued_writes(), 2, "queued behind the busy RPC");
    assert!(
        answers.try_recv().is_err(),
        "no answer before the replica's"
    );
    gate.add_permits(2);
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(answers.recv().await.expect("an answer per callback"));
    }
    got.sort_by_key(|(k, _)| *k);
    let applied = || Ok(vec![WriteOutcome::Applied]);
    assert_eq!(
        got,
        vec![("a", applied()), ("b", applied()), ("first", applied())]
    );
    assert_eq!(
        replica.entered.load(Ordering::SeqCst),
        2,
        "the two queued writes left in one RPC"
    );
    drop(answers_tx);
    assert!(answers.recv().await.is_none(), "each callback ran once");
}

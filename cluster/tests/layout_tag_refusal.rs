//! Layout tags on replica requests (docs/cluster-protocol.md, "Layout tags"): a replica
//! holding layout 2 refuses requests tagged with layout 1, and a coordinator still on
//! layout 1 fetches layout 2 from the refusing replica and runs the request again where
//! layout 2 places the key. Real bus servers on loopback and replica stores on disk;
//! the coordinator's node (node 1) is an owner under layout 1 only.
//!
//! Layout 1 places every key on nodes 1, 2, 3; layout 2 on nodes 2, 3, 4.

mod replica_support;

use async_trait::async_trait;
use bytes::Bytes;
use kv_cluster::coordinator::{Change, Coordinator, LayoutSource, Placement};
use kv_cluster::fake_replica::{FakeLiveness, ManualClock};
use kv_cluster::hints::{HintConfig, HintStore};
use kv_cluster::local_replica::LocalReplica;
use kv_cluster::quorum::{Consistency, CoordinatorConfig};
use kv_cluster::replica_api::{ItemKey, ReplicaApi, ReplicaError, WriteItem, WriteOutcome};
use kv_cluster::rpc::{
    serve, BusAuth, BusHandler, BusLimits, ClientConfig, Hello, LayoutBlob, LayoutTag, PeerClient,
    PeerClients, PushLayoutReply,
};
use kv_cluster::{Body, NodeId, Record, Version};
use kv_engine::{Db, Options};
use kv_keyspace::ValueType;
use parking_lot::Mutex;
use replica_support::open_store;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const OLD: [u64; 3] = [1, 2, 3];
const NEW: [u64; 3] = [2, 3, 4];

/// A replica's bus: its store, its layout tag, the layout it hands out, and the fetches
/// a newer tag asked for.
struct Handler {
    replica: Arc<LocalReplica>,
    tag: Arc<LayoutTag>,
    layout: LayoutBlob,
    pulls: Mutex<Vec<(NodeId, u64)>>,
}

#[async_trait]
impl BusHandler for Handler {
    fn replica(&self) -> Arc<dyn ReplicaApi> {
        self.replica.clone()
    }

    async fn hello(&self, _from: Hello) -> Result<Hello, ReplicaError> {
        Err(ReplicaError::Failed("not in this test".into()))
    }

    async fn get_layout(&self) -> Result<Option<LayoutBlob>, ReplicaError> {
        Ok(Some(self.layout.clone()))
    }

    async fn push_layout(&self, _layout: LayoutBlob) -> Result<PushLayoutReply, ReplicaError> {
        Err(ReplicaError::Failed("not in this test".into()))
    }

    fn layout_tag(&self) -> Option<Arc<LayoutTag>> {
        Some(self.tag.clone())
    }

    fn pull_layout(&self, from: NodeId, version: u64) {
        self.pulls.lock().push((from, version));
    }
}

/// A replica node serving its bus at layout 2.
struct Peer {
    addr: String,
    handler: Arc<Handler>,
    _stop: oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

async fn peer(id: u64) -> Peer {
    let dir = tempfile::tempdir().unwrap();
    let tag = Arc::new(LayoutTag::default());
    tag.set(2);
    let handler = Arc::new(Handler {
        replica: Arc::new(LocalReplica::new(open_store(dir.path()))),
        tag,
        layout: LayoutBlob {
            version: 2,
            json: Bytes::from_static(b"{\"layout\": 2}"),
        },
        pulls: Mutex::new(Vec::new()),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(
        listener,
        handler.clone(),
        BusAuth::new(NodeId(id), None, None),
        BusLimits::default(),
        None,
        async {
            let _ = stopped.await;
        },
    ));
    Peer {
        addr,
        handler,
        _stop: stop,
        _dir: dir,
    }
}

/// The coordinator node's placement: layout 1 or 2.
struct Versioned(AtomicU64);

impl Placement for Versioned {
    fn partition_preflist(&self, _partition: u16) -> Vec<NodeId> {
        let nodes = if self.0.load(Ordering::SeqCst) >= 2 {
            NEW
        } else {
            OLD
        };
        nodes.into_iter().map(NodeId).collect()
    }
}

/// The coordinator node's layout source: `GetLayout` from the refusing peer, then the
/// new placement and tag (what the real node's `adopt` does).
struct Source {
    peers: Arc<PeerClients>,
    placement: Arc<Versioned>,
    fetched: AtomicUsize,
}

#[async_trait]
impl LayoutSource for Source {
    async fn catch_up(&self, from: NodeId, version: u64) -> bool {
        self.fetched.fetch_add(1, Ordering::SeqCst);
        let Some(peer) = self.peers.peer(from) else {
            return false;
        };
        match peer.get_layout().await {
            Ok(Some(blob)) if blob.version >= version => {
                self.placement.0.store(blob.version, Ordering::SeqCst);
                self.peers.layout_tag().set(blob.version);
                true
            }
            _ => false,
        }
    }
}

/// Node 1 on layout 1 (its own replica local), nodes 2..4 on layout 2 over the bus.
struct Cluster {
    coordinator: Coordinator,
    local: Arc<LocalReplica>,
    peers: Vec<Peer>,
    source: Arc<Source>,
    _dirs: [tempfile::TempDir; 2],
}

impl Cluster {
    async fn new() -> Cluster {
        let (local_dir, hints_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let local = Arc::new(LocalReplica::new(open_store(local_dir.path())));
        let mut peers = Vec::new();
        for id in 2..=4 {
            peers.push(peer(id).await);
        }
        let clients = PeerClients::new(
            NodeId(1),
            local.clone(),
            BusAuth::new(NodeId(1), None, None),
            ClientConfig::default(),
        );
        clients.layout_tag().set(1);
        for (id, p) in (2..=4).zip(&peers) {
            clients.set_address(NodeId(id), &p.addr).unwrap();
        }
        let clients = Arc::new(clients);
        let placement = Arc::new(Versioned(AtomicU64::new(1)));
        let source = Arc::new(Source {
            peers: clients.clone(),
            placement: placement.clone(),
            fetched: AtomicUsize::new(0),
        });
        let db = Db::open(hints_dir.path(), Options::default()).unwrap();
        let hints = HintStore::open(db, HintConfig::default()).unwrap();
        let coordinator = Coordinator::new(
            NodeId(1),
            placement,
            ManualClock::new(NodeId(1), 1_000_000),
            clients,
            FakeLiveness::new(),
            hints,
            CoordinatorConfig::default(),
        )
        .with_layout_source(source.clone());
        Cluster {
            coordinator,
            local,
            peers,
            source,
            _dirs: [local_dir, hints_dir],
        }
    }

    /// Node `id`'s replica store.
    fn replica(&self, id: u64) -> Arc<LocalReplica> {
        match id {
            1 => self.local.clone(),
            _ => self.peers[id as usize - 2].handler.replica.clone(),
        }
    }

    async fn record(&self, id: u64, key: &ItemKey) -> Option<Record> {
        let mut held = self.replica(id).read(vec![key.clone()]).await.unwrap();
        held.pop().flatten()
    }

    /// Writes `value` straight into the stores of the layout-2 replicas, as a write
    /// made under layout 2 would have.
    async fn seed_new_replicas(&self, key: &ItemKey, value: &'static str) -> Version {
        let version = Version {
            ts: 500_000 << 16,
            node: NodeId(2),
        };
        let item = WriteItem {
            key: key.clone(),
            record: Record::string(version, Bytes::from_static(value.as_bytes()), None),
        };
        for id in NEW {
            let outcome = self.replica(id).write(vec![item.clone()]).await.unwrap();
            assert_eq!(outcome, vec![WriteOutcome::Applied]);
        }
        version
    }

    fn refused_by(&self, id: u64) -> u64 {
        self.peers[id as usize - 2].handler.tag.stats().refused
    }
}

fn key(name: &'static str) -> ItemKey {
    ItemKey {
        db: 0,
        key: Bytes::from_static(name.as_bytes()),
    }
}

fn payload(r: &Option<Record>) -> Option<Bytes> {
    match r.as_ref().map(|r| &r.body) {
        Some(Body::Value { payload, .. }) => Some(payload.clone()),
        _ => None,
    }
}

/// Polls `f` until it holds, for at most ten seconds.
async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_write_from_a_coordinator_on_an_old_layout_lands_on_the_new_replicas() {
    let c = Cluster::new().await;
    let k = key("moved");
    let value = (ValueType::String, Bytes::from_static(b"v"));
    let version = c
        .coordinator
        .put(k.clone(), Some(value), None, Consistency::Quorum)
        .await
        .expect("the retry under layout 2 succeeds");

    // Nodes 2 and 3 refused the attempt tagged 1; node 4 was not asked under layout 1.
    assert_eq!(
        (c.refused_by(2), c.refused_by(3), c.refused_by(4)),
        (1, 1, 0)
    );
    assert_eq!(c.source.fetched.load(Ordering::SeqCst), 1, "one GetLayout");
    assert_eq!(c.coordinator.stats().layout_retries, 1);
    // The acknowledged version is on every layout-2 replica (W of them before the
    // reply, the last one as its send lands).
    for id in NEW {
        eventually(&format!("node {id} to hold the write"), || async {
            c.record(id, &k).await.map(|r| r.version) == Some(version)
        })
        .await;
    }
    // Node 1 applied only the refused attempt, an older version the new one replaces.
    let old = c
        .record(1, &k)
        .await
        .expect("node 1 applied the first attempt");
    assert!(
        old.version < version,
        "node 1 never got the acknowledged write"
    );
}

#[tokio::test]
async fn a_consensus_round_refused_for_its_layout_restarts_under_the_new_one() {
    let c = Cluster::new().await;
    let k = key("counter");
    c.seed_new_replicas(&k, "5").await;
    let mut seen = Vec::new();
    let written = c
        .coordinator
        .consensus(k.clone(), Consistency::Quorum, &mut |state| {
            let n: u64 = payload(&state.cloned())
                .and_then(|p| std::str::from_utf8(&p).ok()?.parse().ok())
                .unwrap_or(0);
            seen.push(n);
            Change::Write {
                body: Body::Value {
                    ty: ValueType::String,
                    payload: Bytes::from((n + 1).to_string()),
                },
                expire_at: None,
                request: None,
            }
        })
        .await
        .expect("the round under layout 2 succeeds")
        .expect("it wrote");
    // Phase 1 under layout 1 was refused before any change was computed, and the round
    // under layout 2 read 5 from the new replicas: incremented once.
    assert_eq!(seen, vec![5]);
    assert_eq!(c.coordinator.stats().layout_retries, 1);
    assert!(c.refused_by(2) >= 1 && c.refused_by(3) >= 1);
    for id in NEW {
        eventually(&format!("node {id} to hold 6"), || async {
            let r = c.record(id, &k).await;
            r.as_ref().map(|r| r.version) == Some(written)
                && payload(&r) == Some(Bytes::from_static(b"6"))
        })
        .await;
    }
    assert_eq!(c.record(1, &k).await, None, "nothing accepted on node 1");
}

#[tokio::test]
async fn a_read_refused_for_its_layout_reads_the_new_replicas() {
    let c = Cluster::new().await;
    let k = key("read-me");
    c.seed_new_replicas(&k, "held by the new owners").await;
    // Under layout 1, node 1 answers nothing and nodes 2 and 3 refuse.
    let read = c
        .coordinator
        .get(k.clone(), Consistency::Quorum)
        .await
        .expect("the read under layout 2 succeeds");
    assert_eq!(
        payload(&read),
        Some(Bytes::from_static(b"held by the new owners"))
    );
    assert_eq!(c.coordinator.stats().layout_retries, 1);
}

#[tokio::test]
async fn the_bus_refuses_older_tags_and_serves_untagged_and_newer_ones() {
    let p = peer(2).await;
    let write = |ts: u64| {
        vec![WriteItem {
            key: key("k"),
            record: Record::tombstone(Version {
                ts,
                node: NodeId(7),
            }),
        }]
    };
    let client = |tag: Option<u64>| {
        let c = PeerClient::new(
            &p.addr,
            BusAuth::new(NodeId(7), None, None),
            ClientConfig::default(),
        )
        .unwrap();
        match tag {
            None => c,
            Some(v) => {
                let t = Arc::new(LayoutTag::default());
                t.set(v);
                c.with_layout_tag(t)
            }
        }
    };
    let older = client(Some(1));
    assert_eq!(
        older.write(write(1)).await,
        Err(ReplicaError::StaleLayout { version: 2 })
    );
    assert_eq!(
        older.read(vec![key("k")]).await,
        Err(ReplicaError::StaleLayout { version: 2 })
    );
    assert_eq!(p.handler.tag.stats().refused, 2);
    assert_eq!(
        p.handler.replica.read(vec![key("k")]).await.unwrap(),
        vec![None],
        "a refused write applied nothing"
    );

    let untagged = client(None);
    assert_eq!(
        untagged.write(write(2)).await,
        Ok(vec![WriteOutcome::Applied])
    );
    assert_eq!(p.handler.tag.stats().untagged, 1);

    let newer = client(Some(3));
    assert_eq!(newer.write(write(3)).await, Ok(vec![WriteOutcome::Applied]));
    assert_eq!(newer.write(write(4)).await, Ok(vec![WriteOutcome::Applied]));
    assert_eq!(
        *p.handler.pulls.lock(),
        vec![(NodeId(7), 3)],
        "a newer tag makes the replica fetch the sender's layout, once per version"
    );
}

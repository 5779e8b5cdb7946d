//! A cluster node: this process's part of the ring (docs/cluster.md). It owns the replica
//! store in the node's engine, the hint store, the hybrid clock, the bus (gRPC server and
//! peer clients), gossip, the layout, and the coordinator, and runs the background work:
//! bootstrap until a layout exists, Merkle folding, anti-entropy, hint replay, clock
//! pings and following newer layouts.

mod adapters;
mod background;
mod bootstrap;
mod bus;
pub mod convert;
pub mod identity;
mod info;
mod metadata;
mod observed;
mod ring_impl;

use crate::config::ClusterConfig;
use crate::coordinator::Coordinator;
use crate::gossip::Membership;
use crate::hints::{HintConfig, HintStore};
use crate::hlc::{Hlc, SystemClock};
use crate::layout::{Layout, NodeInfo};
use crate::local_replica::LocalReplica;
use crate::metadata::MetadataStore;
use crate::quorum::CoordinatorConfig;
use crate::replica_api::ReplicaApi;
use crate::replica_store::ReplicaStore;
use crate::rpc::{BusAuth, ClientConfig, Hello, PeerClients};
use crate::skew::SkewTracker;
use crate::NodeId;
use adapters::{HlcClock, LayoutCell, LiveView};
use identity::{cluster_dir, Identity};
use kv_engine::Db;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How to start a node (the server maps its `cluster-*` parameters onto this).
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The data directory (cluster files go to `<dir>/cluster/`).
    pub data_dir: PathBuf,
    /// Addresses the bus listens on (the server's `bind`).
    pub bind: Vec<String>,
    /// The address peers and clients reach this node at.
    pub announce_ip: String,
    /// The RESP port.
    pub resp_port: u16,
    /// The bus port (gRPC on TCP, gossip on UDP).
    pub bus_port: u16,
    /// Bus addresses to introduce ourselves to.
    pub seeds: Vec<String>,
    /// Nodes that must meet before the first layout.
    pub expect: usize,
    /// The shared secret.
    pub secret: Option<String>,
    /// Replication settings.
    pub cluster: ClusterConfig,
    /// Mutual TLS on the bus (`tls-cluster yes`), if enabled.
    pub tls: Option<crate::rpc::BusTls>,
    /// Logical databases of the server (for converting single-node keys).
    pub databases: usize,
}

#[derive(Default)]
struct NodeStats {
    anti_entropy_rounds: AtomicU64,
    anti_entropy_keys_repaired: AtomicU64,
    anti_entropy_failures: AtomicU64,
    flush_purged_keys: AtomicU64,
}

/// A running node. Implements [`crate::ring::Ring`] for the server.
pub struct ClusterNode {
    me: NodeInfo,
    config: NodeConfig,
    dir: PathBuf,
    identity: Mutex<Identity>,
    layout: Arc<LayoutCell>,
    met: Mutex<BTreeMap<NodeId, NodeInfo>>,
    store: Arc<ReplicaStore>,
    /// Cluster-wide entries: flushes, ACL users, cluster-wide config.
    metadata: Arc<MetadataStore>,
    /// Wakes the purge of flushed records when a floor rises.
    purge_wanted: Arc<tokio::sync::Notify>,
    local: Arc<dyn ReplicaApi>,
    peers: Arc<PeerClients>,
    auth: BusAuth,
    hlc: Arc<Hlc>,
    live: Arc<LiveView>,
    coordinator: Coordinator,
    membership: Mutex<Option<Arc<Membership>>>,
    skew: SkewTracker,
    /// Whether the clock is beyond the offset bound from a majority; computed after each
    /// round of pings, read by every request.
    clock_skewed: std::sync::atomic::AtomicBool,
    stats: NodeStats,
    observer: Arc<parking_lot::RwLock<Option<crate::ring::ReplicaObserver>>>,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl ClusterNode {
    /// Opens the node's stores in `db` (the server's engine) and starts the bus, gossip
    /// and background work. Returns once it listens; the first layout may come later.
    pub async fn start(config: NodeConfig, db: Db) -> Result<Arc<ClusterNode>, String> {
        let dir = cluster_dir(&config.data_dir);
        let (identity, id, store, metadata, hints, hlc, layout) = {
            let (config, dir) = (config.clone(), dir.clone());
            tokio::task::spawn_blocking(move || open_stores(&config, &dir, db))
                .await
                .map_err(|e| format!("cluster start-up failed: {e}"))??
        };
        let me = NodeInfo {
            id,
            resp_addr: format!("{}:{}", config.announce_ip, config.resp_port),
            bus_addr: format!("{}:{}", config.announce_ip, config.bus_port),
            zone: String::new(),
            capacity: 1,
        };
        let cluster_id = layout
            .as_ref()
            .map(|l| l.cluster_id.clone())
            .or(identity.cluster_id.clone());
        let auth = BusAuth::new(id, config.secret.as_deref().map(str::as_bytes), cluster_id);
        let local: Arc<dyn ReplicaApi> = Arc::new(LocalReplica::new(store.clone()));
        let c = &config.cluster;
        let client = ClientConfig {
            timeout: c.request_timeout,
            max_in_flight: c.max_in_flight_per_peer,
            ..ClientConfig::default()
        };
        let mut peers = PeerClients::new(id, local.clone(), auth.clone(), client);
        if let Some(tls) = &config.tls {
            peers = peers.with_tls(tls.clone());
        }
        let peers = Arc::new(peers);
        let live = Arc::new(LiveView::new(id));
        let cell = Arc::new(LayoutCell::default());
        let coordinator = Coordinator::new(
            id,
            cell.clone(),
            Arc::new(HlcClock(hlc.clone())),
            peers.clone(),
            live.clone(),
            hints,
            CoordinatorConfig {
                replicas: c.replicas,
                write_quorum: c.write_quorum,
                read_quorum: c.read_quorum,
                request_timeout: c.request_timeout,
                ..CoordinatorConfig::default()
            },
        )
        .with_flush_floors(store.floors().clone());
        let (shutdown, _) = watch::channel(false);
        let node = Arc::new(ClusterNode {
            me,
            config,
            dir,
            identity: Mutex::new(identity),
            layout: cell,
            met: Mutex::new(BTreeMap::new()),
            store,
            metadata,
            purge_wanted: Arc::new(tokio::sync::Notify::new()),
            local,
            peers,
            auth,
            hlc,
            live,
            coordinator,
            membership: Mutex::new(None),
            skew: SkewTracker::new(),
            clock_skewed: std::sync::atomic::AtomicBool::new(false),
            stats: NodeStats::default(),
            observer: Arc::new(parking_lot::RwLock::new(None)),
            shutdown,
            tasks: Mutex::new(Vec::new()),
        });
        node.meet(node.me.clone());
        node.follow_metadata();
        background::start_bus(&node).await?;
        background::start_gossip(&node).await?;
        if let Some(layout) = layout {
            node.install(layout).await;
            node.catch_up_metadata().await;
        } else {
            node.spawn(bootstrap::run(node.clone()));
        }
        background::spawn_all(&node);
        Ok(node)
    }

    /// This node as the layout describes it.
    pub fn me(&self) -> &NodeInfo {
        &self.me
    }

    /// Stops background work, gossip and the bus; the engine is the server's to close.
    pub async fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        let membership = self.membership.lock().take();
        if let Some(m) = membership {
            m.shutdown().await;
        }
        for t in self.tasks.lock().drain(..) {
            t.abort();
        }
        if let Err(e) = self.hlc.shutdown() {
            tracing::warn!(error = %e, "could not persist the clock floor at shutdown");
        }
    }

    fn spawn(&self, fut: impl std::future::Future<Output = ()> + Send + 'static) {
        self.tasks.lock().push(tokio::spawn(fut));
    }

    /// Records a node met during bootstrap (or introduced by one).
    fn meet(&self, info: NodeInfo) {
        if info.id != self.me.id {
            if let Err(e) = self.peers.set_address(info.id, &info.bus_addr) {
                tracing::warn!(node = %info.id, error = %e, "bad bus address");
                return;
            }
        }
        self.met.lock().insert(info.id, info);
    }

    /// This node's introduction.
    fn hello(&self) -> Hello {
        let met: Vec<NodeInfo> = self.met.lock().values().cloned().collect();
        Hello {
            node: self.me.id,
            cluster_id: self.auth.cluster_id(),
            resp_addr: self.me.resp_addr.clone(),
            bus_addr: self.me.bus_addr.clone(),
            layout: self.layout.get().map(|l| bus::blob(&l).json),
            peers: bus::peer_addrs(&met),
        }
    }

    /// Takes `layout` if it is this cluster's and newer than the one held (or the first),
    /// persisting it before use.
    async fn adopt(&self, layout: Layout) -> Result<(), String> {
        layout.validate().map_err(|e| e.to_string())?;
        if layout.node(self.me.id).is_none() {
            return Err("the layout does not include this node".into());
        }
        if let Some(cur) = self.layout.get() {
            if cur.cluster_id != layout.cluster_id {
                return Err(format!(
                    "layout of cluster {} refused: this node belongs to {}",
                    layout.cluster_id, cur.cluster_id
                ));
            }
            if layout.version <= cur.version {
                return if *cur == layout {
                    Ok(())
                } else {
                    Err("not newer than the layout held".into())
                };
            }
        }
        let (dir, saved) = (self.dir.clone(), layout.clone());
        let mut identity = self.identity.lock().clone();
        identity.cluster_id = Some(layout.cluster_id.clone());
        tokio::task::spawn_blocking(move || -> Result<(), String> {
            saved
                .save(&dir.join("layout.json"))
                .map_err(|e| e.to_string())?;
            identity.save(&dir).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())??;
        self.identity.lock().cluster_id = Some(layout.cluster_id.clone());
        tracing::info!(version = layout.version, cluster = %layout.cluster_id, nodes = layout.nodes.len(), "cluster layout installed");
        self.install(layout).await;
        Ok(())
    }

    /// Makes `layout` current: addresses, authentication and gossip follow it.
    async fn install(&self, layout: Layout) {
        self.auth.set_cluster_id(layout.cluster_id.clone());
        for n in &layout.nodes {
            self.meet(n.clone());
        }
        let membership = self.membership.lock().clone();
        if let Some(m) = membership {
            m.set_cluster_id(layout.cluster_id.clone()).await;
            m.set_layout_version(layout.version).await;
        }
        self.layout.set(layout);
    }
}

type Opened = (
    Identity,
    NodeId,
    Arc<ReplicaStore>,
    Arc<MetadataStore>,
    HintStore,
    Arc<Hlc>,
    Option<Layout>,
);

fn open_stores(config: &NodeConfig, dir: &std::path::Path, db: Db) -> Result<Opened, String> {
    let (identity, id) =
        Identity::load_or_create(dir).map_err(|e| format!("cannot read the node identity: {e}"))?;
    let store = ReplicaStore::open(Arc::new(db.clone()))
        .map_err(|e| format!("cannot open the replica store: {e}"))?;
    let metadata = MetadataStore::open(Arc::new(db.clone()))
        .map_err(|e| format!("cannot open the cluster metadata: {e}"))?;
    let c = &config.cluster;
    let hints = HintStore::open(
        db,
        HintConfig {
            max_bytes: c.hint_max_bytes,
            max_age: c.hint_max_age,
        },
    )
    .map_err(|e| format!("cannot open the hint store: {e}"))?;
    let hlc = Hlc::open(&dir.join("hlc"), Arc::new(SystemClock), id)
        .map_err(|e| format!("cannot open the clock floor: {e}"))?
        .with_max_offset_ms(c.max_clock_offset.as_millis() as u64);
    let layout = Layout::load(&dir.join("layout.json")).map_err(|e| e.to_string())?;
    let now = crate::hints::system_clock_ms()() as i64;
    if let Some(done) = convert::convert_once(store.db(), &store, &hlc, dir, config.databases, now)
        .map_err(|e| format!("cannot convert the single-node keys: {e}"))?
    {
        tracing::info!(
            keys = done.keys,
            expired_skipped = done.expired,
            "single-node keys converted into this node's replicas; anti-entropy copies them to the other replicas"
        );
    }
    Ok((
        identity,
        id,
        Arc::new(store),
        Arc::new(metadata),
        hints,
        Arc::new(hlc),
        layout,
    ))
}

//! A cluster node: this process's part of the ring (docs/cluster.md). It owns the replica
//! store in the node's engine, the hint store, the hybrid clock, the bus (gRPC server and
//! peer clients), gossip, the layout, and the coordinator, and runs the background work:
//! bootstrap until a layout exists, Merkle folding, anti-entropy, hint replay, clock
//! pings and following newer layouts.

pub(crate) mod adapters;
mod background;
mod bootstrap;
mod bus;
mod catch_up;
mod clean_stop;
mod clock_gate;
pub mod convert;
mod copy_progress;
mod forward;
pub mod identity;
mod info;
mod layout_admin;
mod layout_pull;
mod layout_staging;
mod layout_status;
mod metadata;
mod observed;
mod pubsub;
mod ring_impl;
mod sizes;
mod stream_in;
mod transition;
mod view;

pub use copy_progress::{CopyPhase, CopySummary, PartitionCopy};
pub use layout_admin::LAYOUT_REGISTER_DB;
pub use transition::LayoutProgress;

use crate::catch_up::{CatchUp, CatchingUpReplica};
use crate::config::ClusterConfig;
use crate::coordinator::Coordinator;
use crate::gossip::Membership;
use crate::hints::{HintConfig, HintStore};
use crate::hlc::{Clock, Hlc, SystemClock};
use crate::layout::{Layout, NodeInfo};
use crate::local_replica::LocalReplica;
use crate::metadata::MetadataStore;
use crate::quorum::CoordinatorConfig;
use crate::replica_api::ReplicaApi;
use crate::replica_store::ReplicaStore;
use crate::rpc::{BusAuth, ClientConfig, Hello, PeerClients};
use crate::skew::{clock_readiness, SkewTracker};
use crate::NodeId;
use adapters::{HlcClock, LayoutCell, LiveView, OffsetClock};
pub use clean_stop::mark_clean_stop;
use clock_gate::ClockGate;
use identity::{cluster_dir, Identity};
use kv_engine::Db;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// The server's HTTP port (`--http-port`), published by gossip so that every node
    /// can list every other's HTTP address (`GET /cluster/nodes`); 0 = none.
    pub http_port: u16,
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
    /// Whether the engine fsyncs every write before it is acknowledged (`appendfsync
    /// always`): then an unclean stop loses nothing acknowledged and the node need not
    /// catch up before its reads count (crate::catch_up).
    pub fsync_always: bool,
    /// TEST ONLY: milliseconds added to this node's wall clock (its versions and clock
    /// pings), so that end-to-end tests can run one node with a skewed clock. Always 0
    /// in production; the server sets it only from the hidden test flag
    /// `cluster-test-clock-offset-ms`.
    pub test_clock_offset_ms: i64,
}

#[derive(Default)]
struct NodeStats {
    anti_entropy_rounds: AtomicU64,
    anti_entropy_keys_repaired: AtomicU64,
    anti_entropy_failures: AtomicU64,
    tombstones_purged: AtomicU64,
    flush_purged_keys: AtomicU64,
    /// Partitions the slow Merkle rebuild went over, and the leaves it found wrong.
    merkle_rebuilds: AtomicU64,
    merkle_leaves_fixed: AtomicU64,
    /// When this node's last anti-entropy round ended, and how each peer's part of it
    /// went (`GET /cluster/nodes`).
    anti_entropy_seen: Mutex<view::AntiEntropySeen>,
}

/// A running node. Implements [`crate::ring::Ring`] for the server.
pub struct ClusterNode {
    me: NodeInfo,
    config: NodeConfig,
    dir: PathBuf,
    identity: Mutex<Identity>,
    layout: Arc<LayoutCell>,
    /// One [`ClusterNode::adopt`] at a time. Two at once (this node's own commit and the
    /// same layout pushed by another node that committed it too, or a push and a pull)
    /// both wrote `layout.json` through the same temporary file, so one failed with
    /// ENOENT and its APPLY reported an error for a committed layout
    /// (tests/tests/cluster_concurrent_apply.rs found it); and each checked "newer than
    /// the layout held" before the other installed, so an older layout could be
    /// installed after a newer one.
    adopting: tokio::sync::Mutex<()>,
    met: Mutex<BTreeMap<NodeId, NodeInfo>>,
    store: Arc<ReplicaStore>,
    /// Cluster-wide entries: flushes, ACL users, cluster-wide config.
    metadata: Arc<MetadataStore>,
    /// Wakes the purge of flushed records when a floor rises.
    purge_wanted: Arc<tokio::sync::Notify>,
    local: Arc<dyn ReplicaApi>,
    /// `local` as coordinators see it: reads refused while catching up.
    gated: Arc<dyn ReplicaApi>,
    peers: Arc<PeerClients>,
    auth: BusAuth,
    hlc: Arc<Hlc>,
    live: Arc<LiveView>,
    coordinator: Coordinator,
    membership: Mutex<Option<Arc<Membership>>>,
    skew: SkewTracker,
    /// This node's wall clock (the system clock, offset only in tests).
    wall: Arc<dyn Clock>,
    /// Whether the clock lets this node coordinate; computed at start and after each
    /// round of pings, read by every request.
    clock: ClockGate,
    /// Set after an unclean restart until the partitions were compared with their peers.
    catch_up: Arc<CatchUp>,
    /// Bytes per second that hint replay and anti-entropy share (`background_bytes_per_sec`).
    background_budget: Arc<crate::hint_replay::ByteBudget>,
    /// Bytes per second that snapshots of incoming partitions may use
    /// (`stream_bytes_per_sec`, node/stream_in.rs).
    stream_budget: Arc<crate::hint_replay::ByteBudget>,
    stats: NodeStats,
    observer: Arc<parking_lot::RwLock<Option<crate::ring::ReplicaObserver>>>,
    /// PUBLISH to the other nodes, and from them to the server's subscribers.
    pubsub: crate::pubsub_fanout::PubSubFanout,
    /// Consensus commands sent to their key's proposer and run for others (node/forward.rs).
    forwarding: forward::Forwarding,
    /// This node's progress through a layout change (node/transition.rs).
    progress: Mutex<LayoutProgress>,
    /// The layout version that removed this node from the cluster (0: a member). A
    /// removed node serves no client request; `<dir>/cluster/removed` keeps it.
    removed: AtomicU64,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl ClusterNode {
    /// Opens the node's stores in `db` (the server's engine) and starts the bus, gossip
    /// and background work. Returns once it listens; the first layout may come later.
    pub async fn start(config: NodeConfig, db: Db) -> Result<Arc<ClusterNode>, String> {
        let dir = cluster_dir(&config.data_dir);
        let wall: Arc<dyn Clock> = Arc::new(OffsetClock(SystemClock, config.test_clock_offset_ms));
        let (identity, id, store, metadata, hints, hlc, layout, unclean) = {
            let (config, dir, wall) = (config.clone(), dir.clone(), wall.clone());
            tokio::task::spawn_blocking(move || open_stores(&config, &dir, db, wall))
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
        let catch_up = if unclean && !config.fsync_always {
            tracing::warn!("the last stop was unclean: this node may lack up to a second of acknowledged writes (appendfsync everysec or no) and does not count toward read quorums until it has compared its partitions with their other replicas");
            CatchUp::needed()
        } else {
            CatchUp::done()
        };
        // Coordinators (this node's and, over the bus, its peers') see the gated replica;
        // anti-entropy uses `local` itself.
        let gated: Arc<dyn ReplicaApi> =
            Arc::new(CatchingUpReplica::new(local.clone(), catch_up.clone()));
        let client = ClientConfig {
            timeout: c.request_timeout,
            max_in_flight: c.max_in_flight_per_peer,
            ..ClientConfig::default()
        };
        let mut peers = PeerClients::new(id, gated.clone(), auth.clone(), client);
        if let Some(tls) = &config.tls {
            peers = peers.with_tls(tls.clone());
        }
        let peers = Arc::new(peers);
        let live = Arc::new(LiveView::new(id));
        let cell = Arc::new(LayoutCell::default());
        let layout_source = Arc::new(layout_pull::NodeLayoutSource::default());
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
                consensus_timeout: c.consensus_timeout,
                ..CoordinatorConfig::default()
            },
        )
        .with_flush_floors(store.floors().clone())
        .with_layout_source(layout_source.clone());
        let (shutdown, _) = watch::channel(false);
        let pubsub = pubsub::fanout(id, peers.clone(), shutdown.subscribe());
        let background_budget =
            crate::hint_replay::ByteBudget::new(config.cluster.background_bytes_per_sec);
        let stream_budget =
            crate::hint_replay::ByteBudget::new(config.cluster.stream_bytes_per_sec);
        let removed = std::fs::read_to_string(dir.join(REMOVED_FILE))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let node = Arc::new(ClusterNode {
            me,
            config,
            dir,
            identity: Mutex::new(identity),
            layout: cell,
            adopting: tokio::sync::Mutex::new(()),
            met: Mutex::new(BTreeMap::new()),
            store,
            metadata,
            purge_wanted: Arc::new(tokio::sync::Notify::new()),
            local,
            gated,
            peers,
            auth,
            hlc,
            live,
            coordinator,
            membership: Mutex::new(None),
            skew: SkewTracker::new(),
            wall,
            clock: ClockGate::default(),
            catch_up,
            background_budget,
            stream_budget,
            stats: NodeStats::default(),
            observer: Arc::new(parking_lot::RwLock::new(None)),
            pubsub,
            forwarding: forward::Forwarding::default(),
            progress: Mutex::new(LayoutProgress::default()),
            removed: AtomicU64::new(removed),
            shutdown,
            tasks: Mutex::new(Vec::new()),
        });
        layout_source.bind(Arc::downgrade(&node));
        node.meet(node.me.clone());
        // Before anything is served: a clock that resumed ahead refuses writes at once.
        node.clock
            .set(clock_readiness(&node.hlc, &node.skew, node.max_offset_ms()));
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

    /// The largest clock offset allowed, in ms.
    fn max_offset_ms(&self) -> u64 {
        self.config.cluster.max_clock_offset.as_millis() as u64
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
        let _one_at_a_time = self.adopting.lock().await;
        if layout.node(self.me.id).is_none() {
            self.note_removal(&layout).await;
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
        for n in layout.all_nodes() {
            self.meet(n.clone());
        }
        let membership = self.membership.lock().clone();
        if let Some(m) = membership {
            m.set_cluster_id(layout.cluster_id.clone()).await;
            m.set_layout_version(layout.version).await;
        }
        let version = layout.version;
        self.layout.set(layout);
        // Replica requests leave tagged with it from now on (rpc/layout_tag.rs).
        self.peers.layout_tag().set(version);
    }
}

/// The file that marks a node removed from its cluster (holds the layout version).
const REMOVED_FILE: &str = "removed";

impl ClusterNode {
    /// A newer layout of this node's cluster that no longer names it, after one that
    /// did: the node was removed (it left, or was replaced). It records that, durably,
    /// and from then on refuses client requests (ring_impl.rs `ready`).
    async fn note_removal(&self, newer: &Layout) {
        let Some(cur) = self.layout.get() else {
            return; // A node waiting to join: not removed, just not added yet.
        };
        if cur.cluster_id != newer.cluster_id
            || newer.version <= cur.version
            || self.removed.load(Ordering::Relaxed) != 0
        {
            return;
        }
        let path = self.dir.join(REMOVED_FILE);
        let version = newer.version;
        let saved = tokio::task::spawn_blocking(move || {
            crate::atomic_file::write_atomically(&path, version.to_string().as_bytes())
        })
        .await;
        if !matches!(saved, Ok(Ok(()))) {
            tracing::error!(
                "cannot record that this node was removed; it stops serving all the same"
            );
        }
        self.removed.store(version, Ordering::Relaxed);
        tracing::warn!(version, "this node was removed from the cluster layout: it serves no requests; wipe its data directory to use it again");
    }

    /// The layout version that removed this node, if it was removed.
    pub fn removed_in(&self) -> Option<u64> {
        match self.removed.load(Ordering::Relaxed) {
            0 => None,
            v => Some(v),
        }
    }

    /// This node's progress through the layout it holds.
    pub fn layout_progress(&self) -> LayoutProgress {
        self.progress.lock().clone()
    }
}

/// What start-up opened, and whether the last stop was unclean.
type Opened = (
    Identity,
    NodeId,
    Arc<ReplicaStore>,
    Arc<MetadataStore>,
    HintStore,
    Arc<Hlc>,
    Option<Layout>,
    bool,
);

fn open_stores(
    config: &NodeConfig,
    dir: &std::path::Path,
    db: Db,
    wall: Arc<dyn Clock>,
) -> Result<Opened, String> {
    // A node that starts for the first time has nothing to lose; any other start without
    // the clean-stop marker follows a crash. The marker goes before anything is served.
    let existed = dir.join("node.json").exists();
    let clean = clean_stop::take_clean_stop(dir)
        .map_err(|e| format!("cannot read the clean-stop marker: {e}"))?;
    let unclean = existed && !clean;
    let (identity, id) =
        Identity::load_or_create(dir).map_err(|e| format!("cannot read the node identity: {e}"))?;
    // Before the store opens: a wipe must not pull data from under it.
    let now = crate::hints::system_clock_ms()();
    let stamp = crate::tombstone_gc::check_at_start(&db, &config.cluster, now)?;
    tracing::info!(?stamp, "replica data checked against the tombstone grace");
    let store = ReplicaStore::open(Arc::new(db.clone()))
        .map_err(|e| format!("cannot open the replica store: {e}"))?;
    store.set_actor(id);
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
    let hlc = Hlc::open(&dir.join("hlc"), wall, id)
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
        unclean,
    ))
}

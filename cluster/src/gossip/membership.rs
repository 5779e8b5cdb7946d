//! This node's membership view: who is in the cluster, where they listen, which layout
//! version they hold and whether they are up. chitchat gossips the state; a refresher
//! task turns it into a snapshot that [`Liveness::state`] reads without waiting.

use super::frame::{GossipKey, GossipStats};
use super::heartbeats::{HeartbeatWatch, SilenceBounds};
use super::transport::SealedUdpTransport;
use crate::replica_api::{Liveness, PeerState};
use crate::NodeId;
use chitchat::FailureDetectorConfig;
use chitchat::{spawn_chitchat, Chitchat, ChitchatConfig, ChitchatHandle, ChitchatId};
use parking_lot::RwLock;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{watch, Mutex};

const KEY_RESP: &str = "resp_addr";
const KEY_BUS: &str = "bus_addr";
/// Published only by a node with an HTTP port; nodes that predate it publish nothing,
/// and their HTTP address reads as unknown.
const KEY_HTTP: &str = "http_addr";
const KEY_CLUSTER: &str = "cluster_id";
const KEY_LAYOUT: &str = "layout_version";
const KEY_META: &str = "meta_digest";
/// Layout-change progress (layout/transition.rs): the newest layout version whose
/// requests under older layouts this node has drained, and the newest whose incoming
/// partitions it has copied. Nodes that predate them publish neither (read as 0).
const KEY_ACKED: &str = "layout_acked";
const KEY_SYNCED: &str = "layout_synced";

/// chitchat's own cluster name: constant, because kvd's cluster id is learned after
/// gossip starts and is checked on every packet instead ([`GossipKey`]).
const CHITCHAT_CLUSTER: &str = "kvd";

/// How to start gossip.
#[derive(Debug, Clone)]
pub struct GossipConfig {
    /// This node.
    pub node: NodeId,
    /// UDP address to bind: the bus address (same port number as the gRPC TCP port).
    pub listen: SocketAddr,
    /// Address peers reach this node at; defaults to the bound address.
    pub advertise: Option<SocketAddr>,
    /// Seeds (`host:port`, the bus addresses of `--cluster-seeds`).
    pub seeds: Vec<String>,
    /// The cluster secret; `None` disables packet MACs.
    pub secret: Option<Vec<u8>>,
    /// The cluster id, if known.
    pub cluster_id: Option<String>,
    /// Published: where this node serves RESP.
    pub resp_addr: String,
    /// Published: where this node serves the bus.
    pub bus_addr: String,
    /// Published: where this node serves HTTP (`--http-port`); empty = no HTTP port.
    pub http_addr: String,
    /// Published: the layout version this node holds (0 = none).
    pub layout_version: u64,
    /// Published: the digest of the cluster metadata this node holds.
    pub meta_digest: String,
    /// Time between gossip rounds (default 500 ms).
    pub gossip_interval: Duration,
    /// Phi-accrual threshold above which a peer is suspect (default 8).
    pub phi_threshold: f64,
    /// A suspect peer not heard from for this long is down (default 30 s).
    pub down_after: Duration,
}

impl GossipConfig {
    /// A configuration with the defaults for everything but identity and addresses.
    pub fn new(node: NodeId, listen: SocketAddr, resp_addr: String, bus_addr: String) -> Self {
        GossipConfig {
            node,
            listen,
            advertise: None,
            seeds: Vec::new(),
            secret: None,
            cluster_id: None,
            resp_addr,
            bus_addr,
            http_addr: String::new(),
            layout_version: 0,
            meta_digest: String::new(),
            gossip_interval: Duration::from_millis(500),
            phi_threshold: 8.0,
            down_after: Duration::from_secs(30),
        }
    }
}

/// A member as gossip sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The node.
    pub node: NodeId,
    /// Its gossip (UDP) address.
    pub gossip_addr: SocketAddr,
    /// Where it serves RESP.
    pub resp_addr: String,
    /// Where it serves the bus.
    pub bus_addr: String,
    /// Where it serves HTTP; empty when it has no HTTP port (or does not publish it).
    pub http_addr: String,
    /// Its cluster id, if it has one.
    pub cluster_id: Option<String>,
    /// The layout version it holds.
    pub layout_version: u64,
    /// The newest layout version it acknowledged: it coordinates no request under an
    /// older one any more.
    pub layout_acked: u64,
    /// The newest layout version whose incoming partitions it has copied.
    pub layout_synced: u64,
    /// The digest of the cluster metadata it holds (empty if it publishes none).
    pub meta_digest: String,
    /// Up, suspect or down.
    pub state: PeerState,
}

/// The highest layout version a peer publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayoutSeen {
    /// The peer that publishes it.
    pub node: NodeId,
    /// The version.
    pub version: u64,
}

/// Peer states by node, for [`Liveness::state`] (a map read without waiting).
type States = HashMap<NodeId, PeerState>;

/// What the refresher publishes.
struct Published {
    states: Arc<RwLock<States>>,
    members: watch::Sender<Vec<Member>>,
    layout_seen: watch::Sender<Option<LayoutSeen>>,
}

/// A running gossip membership. Dropping it stops nothing: call [`Membership::shutdown`].
pub struct Membership {
    node: NodeId,
    local_addr: SocketAddr,
    chitchat: Arc<Mutex<Chitchat>>,
    handle: Mutex<Option<ChitchatHandle>>,
    states: Arc<RwLock<States>>,
    key: Arc<GossipKey>,
    stats: Arc<GossipStats>,
    members: watch::Receiver<Vec<Member>>,
    layout_seen: watch::Receiver<Option<LayoutSeen>>,
    refresher: tokio::task::JoinHandle<()>,
}

/// Why gossip could not start.
#[derive(Debug, thiserror::Error)]
#[error("gossip: {0}")]
pub struct GossipError(String);

impl Membership {
    /// Binds the UDP socket and starts gossiping.
    pub async fn start(config: GossipConfig) -> Result<Membership, GossipError> {
        let socket = tokio::net::UdpSocket::bind(config.listen)
            .await
            .map_err(|e| GossipError(format!("cannot bind UDP {}: {e}", config.listen)))?;
        let local_addr = socket
            .local_addr()
            .map_err(|e| GossipError(e.to_string()))?;
        let advertise = config.advertise.unwrap_or(local_addr);
        let key = Arc::new(GossipKey::new(
            config.secret.as_deref(),
            config.cluster_id.clone(),
        ));
        let stats = Arc::new(GossipStats::default());
        let transport = SealedUdpTransport::new(socket, key.clone(), stats.clone());
        // A restarted node is a new generation, so peers do not confuse it with the
        // state of its previous life.
        let generation = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let chitchat_config = ChitchatConfig {
            chitchat_id: ChitchatId::new(config.node.to_string(), generation, advertise),
            cluster_id: CHITCHAT_CLUSTER.to_string(),
            gossip_interval: config.gossip_interval,
            listen_addr: local_addr,
            // Every node may be started with the same seed list, its own address
            // included: gossiping with itself would only waste rounds.
            seed_nodes: config
                .seeds
                .iter()
                .filter(|s| {
                    s.parse::<SocketAddr>()
                        .map_or(true, |a| a != advertise && a != local_addr)
                })
                .cloned()
                .collect(),
            failure_detector_config: FailureDetectorConfig {
                phi_threshold: config.phi_threshold,
                sampling_window_size: 1000,
                max_interval: config.down_after,
                initial_interval: config.gossip_interval,
                dead_node_grace_period: Duration::from_secs(3600),
            },
            marked_for_deletion_grace_period: Duration::from_secs(3600),
            catchup_callback: None,
            extra_liveness_predicate: None,
        };
        let mut initial = vec![
            (KEY_RESP.to_string(), config.resp_addr.clone()),
            (KEY_BUS.to_string(), config.bus_addr.clone()),
            (KEY_LAYOUT.to_string(), config.layout_version.to_string()),
            (KEY_META.to_string(), config.meta_digest.clone()),
        ];
        if !config.http_addr.is_empty() {
            initial.push((KEY_HTTP.to_string(), config.http_addr.clone()));
        }
        if let Some(id) = &config.cluster_id {
            initial.push((KEY_CLUSTER.to_string(), id.clone()));
        }
        let handle = spawn_chitchat(chitchat_config, initial, &transport)
            .await
            .map_err(|e| GossipError(format!("{e:#}")))?;
        let chitchat = handle.chitchat();
        let states = Arc::new(RwLock::new(States::new()));
        let (members_tx, members) = watch::channel(Vec::new());
        let (seen_tx, layout_seen) = watch::channel(None);
        let published = Published {
            states: states.clone(),
            members: members_tx,
            layout_seen: seen_tx,
        };
        let refresher = tokio::spawn(refresh_loop(
            config.node,
            chitchat.clone(),
            key.clone(),
            published,
            config.gossip_interval,
            SilenceBounds::new(
                config.gossip_interval,
                config.phi_threshold,
                config.down_after,
            ),
        ));
        Ok(Membership {
            node: config.node,
            local_addr,
            chitchat,
            handle: Mutex::new(Some(handle)),
            states,
            key,
            stats,
            members,
            layout_seen,
            refresher,
        })
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The peers gossip knows (not this node), with their published state, by node id.
    /// Peers that publish another cluster id are left out.
    pub fn members(&self) -> Vec<Member> {
        self.members.borrow().clone()
    }

    /// Watches [`Membership::members`]: changes when a peer joins, leaves, changes
    /// state or publishes new values (to keep the bus address book current).
    pub fn watch_members(&self) -> watch::Receiver<Vec<Member>> {
        self.members.clone()
    }

    /// Puts every member's bus address into `book`; returns how many it holds. Call it
    /// when [`Membership::watch_members`] changes.
    pub fn update_address_book(&self, book: &crate::rpc::PeerClients) -> usize {
        let members = self.members();
        for m in members.iter().filter(|m| !m.bus_addr.is_empty()) {
            if let Err(e) = book.set_address(m.node, &m.bus_addr) {
                tracing::warn!(node = %m.node, error = %e, "bad bus address gossiped");
            }
        }
        book.addresses().len()
    }

    /// Publishes the layout version this node now holds.
    pub async fn set_layout_version(&self, version: u64) {
        self.chitchat
            .lock()
            .await
            .self_node_state()
            .set(KEY_LAYOUT, version);
    }

    /// Publishes this node's layout-change progress (see [`Member::layout_acked`] and
    /// [`Member::layout_synced`]).
    pub async fn set_layout_progress(&self, acked: u64, synced: u64) {
        let mut cc = self.chitchat.lock().await;
        let state = cc.self_node_state();
        state.set(KEY_ACKED, acked);
        state.set(KEY_SYNCED, synced);
    }

    /// Publishes the digest of the cluster metadata this node now holds: a peer with
    /// another digest syncs with it.
    pub async fn set_meta_digest(&self, digest: String) {
        self.chitchat
            .lock()
            .await
            .self_node_state()
            .set(KEY_META, digest);
    }

    /// Records and publishes the cluster id; from now on packets and members of
    /// another cluster are dropped.
    pub async fn set_cluster_id(&self, id: String) {
        self.key.set_cluster_id(id.clone());
        self.chitchat
            .lock()
            .await
            .self_node_state()
            .set(KEY_CLUSTER, id);
    }

    /// Watches the highest layout version published by any peer (`None` until a peer
    /// publishes one above 0). The node compares it with its own and fetches the newer
    /// layout over the bus.
    pub fn watch_layout(&self) -> watch::Receiver<Option<LayoutSeen>> {
        self.layout_seen.clone()
    }

    /// Traffic and drop counters.
    pub fn stats(&self) -> &GossipStats {
        &self.stats
    }

    /// Stops gossiping (peers will see this node suspect, then down).
    pub async fn shutdown(&self) {
        self.refresher.abort();
        if let Some(handle) = self.handle.lock().await.take() {
            if let Err(e) = handle.shutdown().await {
                tracing::warn!(error = %e, "gossip stopped with an error");
            }
        }
    }
}

impl Liveness for Membership {
    fn state(&self, node: NodeId) -> PeerState {
        if node == self.node {
            return PeerState::Up;
        }
        self.states
            .read()
            .get(&node)
            .copied()
            .unwrap_or(PeerState::Down)
    }
}

/// Rebuilds the view every gossip interval.
async fn refresh_loop(
    me: NodeId,
    chitchat: Arc<Mutex<Chitchat>>,
    key: Arc<GossipKey>,
    out: Published,
    interval: Duration,
    bounds: SilenceBounds,
) {
    let mut heartbeats = HeartbeatWatch::default();
    let mut tick = tokio::time::interval(interval.max(Duration::from_millis(10)));
    loop {
        tick.tick().await;
        let now = Instant::now();
        let candidates = {
            let cc = chitchat.lock().await;
            let live: HashSet<&ChitchatId> = cc.live_nodes().collect();
            cc.node_states()
                .iter()
                .filter_map(|(id, st)| {
                    let node = NodeId::parse(&id.node_id)?;
                    (node != me).then(|| {
                        let get = |k: &str| st.get(k).map(str::to_owned);
                        (
                            node,
                            (id.generation_id, u64::from(st.heartbeat())),
                            live.contains(id),
                            Member {
                                node,
                                gossip_addr: id.gossip_advertise_addr,
                                resp_addr: get(KEY_RESP).unwrap_or_default(),
                                bus_addr: get(KEY_BUS).unwrap_or_default(),
                                http_addr: get(KEY_HTTP).unwrap_or_default(),
                                cluster_id: get(KEY_CLUSTER),
                                layout_version: get(KEY_LAYOUT)
                                    .and_then(|v| v.parse().ok())
                                    .unwrap_or(0),
                                layout_acked: get(KEY_ACKED)
                                    .and_then(|v| v.parse().ok())
                                    .unwrap_or(0),
                                layout_synced: get(KEY_SYNCED)
                                    .and_then(|v| v.parse().ok())
                                    .unwrap_or(0),
                                meta_digest: get(KEY_META).unwrap_or_default(),
                                state: PeerState::Down,
                            },
                        )
                    })
                })
                .collect::<Vec<_>>()
        };
        let ours = key.cluster_id();
        // One entry per node: a live generation beats a dead one, then the newest.
        let mut best: HashMap<NodeId, (bool, (u64, u64), Member)> = HashMap::new();
        for (node, (generation, heartbeat), live, member) in candidates {
            if let (Some(o), Some(t)) = (&ours, &member.cluster_id) {
                if o != t {
                    continue;
                }
            }
            let better = best
                .get(&node)
                .is_none_or(|(l, (g, _), _)| (live, generation) > (*l, *g));
            if better {
                best.insert(node, (live, (generation, heartbeat), member));
            }
        }
        let mut members: Vec<Member> = best
            .into_values()
            .map(|(live, (generation, heartbeat), mut m)| {
                let (silent, advanced) = heartbeats.observe(m.node, generation, heartbeat, now);
                m.state = bounds.state(live, silent, advanced);
                m
            })
            .collect();
        members.sort_by_key(|m| m.node);
        let highest = members
            .iter()
            .filter(|m| m.layout_version > 0)
            .max_by_key(|m| (m.layout_version, m.node))
            .map(|m| LayoutSeen {
                node: m.node,
                version: m.layout_version,
            });
        out.layout_seen.send_if_modified(|cur| {
            let newer = highest.is_some_and(|h| cur.is_none_or(|c| h.version > c.version));
            if newer {
                *cur = highest;
            }
            newer
        });
        *out.states.write() = members.iter().map(|m| (m.node, m.state)).collect();
        out.members.send_if_modified(|cur| {
            let changed = *cur != members;
            if changed {
                *cur = members;
            }
            changed
        });
    }
}

//! A node's listeners and background loops. Every loop ends when the node shuts down.

use super::{bus::NodeBus, ClusterNode};
use crate::gossip::{GossipConfig, Membership};
use crate::hint_replay::{spawn_hint_replay, HintReplayConfig};
use crate::rpc::{serve, BusLimits};
use crate::skew::clock_readiness;
use crate::NodeId;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Gossip states are copied into the request path's view this often.
const LIVENESS_REFRESH: Duration = Duration::from_millis(250);
/// Merkle to-dos are folded this often (queries fold what is left first anyway).
const MERKLE_FOLD: Duration = Duration::from_millis(200);
/// To-dos folded per round, bounding one blocking call.
const MERKLE_FOLD_BATCH: usize = 20_000;
/// Clock pings to each peer.
const PING_EVERY: Duration = Duration::from_secs(2);

/// Listens on the bus port at every bind address.
pub async fn start_bus(node: &Arc<ClusterNode>) -> Result<(), String> {
    // Peers get the observed replica: MONITOR shows what this node serves for them.
    let served: Arc<dyn crate::replica_api::ReplicaApi> = Arc::new(
        super::observed::ObservedReplica::new(node.gated.clone(), node.observer.clone()),
    );
    let handler = Arc::new(NodeBus(Arc::downgrade(node), served));
    for host in &node.config.bind {
        let addr = format!("{}:{}", host.trim_start_matches('-'), node.config.bus_port);
        let listener = TcpListener::bind(&addr)
            .await
            .map_err(|e| format!("cannot listen on the cluster bus {addr}: {e}"))?;
        let mut stop = node.shutdown.subscribe();
        let (handler, auth) = (handler.clone(), node.auth.clone());
        let tls = node.config.tls.clone();
        node.spawn(async move {
            let shutdown = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(e) =
                serve(listener, handler, auth, BusLimits::default(), tls, shutdown).await
            {
                tracing::error!(error = %e, "cluster bus stopped");
            }
        });
    }
    Ok(())
}

/// Starts gossip on UDP at the first bind address and the bus port.
pub async fn start_gossip(node: &Arc<ClusterNode>) -> Result<(), String> {
    let host = node
        .config
        .bind
        .first()
        .map(|b| b.trim_start_matches('-').to_string())
        .unwrap_or_else(|| "127.0.0.1".into());
    let listen: SocketAddr = format!("{host}:{}", node.config.bus_port)
        .parse()
        .map_err(|e| format!("cannot gossip on {host}: {e}"))?;
    let mut g = GossipConfig::new(
        node.me.id,
        listen,
        node.me.resp_addr.clone(),
        node.me.bus_addr.clone(),
    );
    g.advertise = node.me.bus_addr.parse().ok();
    g.http_addr = node.http_addr().unwrap_or_default();
    g.down_after = node.config.cluster.down_after;
    g.phi_threshold = f64::from(node.config.cluster.phi_threshold);
    g.seeds = node.config.seeds.clone();
    g.secret = node.config.secret.as_ref().map(|s| s.as_bytes().to_vec());
    g.cluster_id = node.auth.cluster_id();
    g.layout_version = node.layout.get().map_or(0, |l| l.version);
    let membership = Membership::start(g).await.map_err(|e| e.to_string())?;
    *node.membership.lock() = Some(Arc::new(membership));
    Ok(())
}

/// Starts the loops.
pub fn spawn_all(node: &Arc<ClusterNode>) {
    node.spawn(liveness(node.clone()));
    node.spawn(follow_layouts(node.clone()));
    node.spawn(super::transition::drive(node.clone()));
    node.spawn(fold_merkle(node.clone()));
    node.spawn(rebuild_merkle(node.clone()));
    node.spawn(anti_entropy(node.clone()));
    node.spawn(collect_tombstones(node.clone()));
    node.spawn(pings(node.clone()));
    if node.catch_up.is_active() {
        node.spawn(super::catch_up::run(node.clone()));
    }
    node.spawn(super::metadata::gossip_digests(node.clone()));
    node.spawn(super::metadata::purge_flushed(node.clone()));
    let c = &node.config.cluster;
    let layout = node.layout.clone();
    let holds = Arc::new(move |target: NodeId, partition: u16| {
        layout
            .get()
            .is_none_or(|l| l.holders(partition).contains(&target))
    });
    let replay = spawn_hint_replay(
        node.coordinator.hints().clone(),
        node.peers.clone(),
        node.live.clone(),
        node.background_budget.clone(),
        HintReplayConfig {
            request_timeout: c.request_timeout,
            ..HintReplayConfig::default()
        },
        holds,
        node.shutdown.subscribe(),
    );
    node.tasks.lock().push(replay);
}

/// Sleeps `every`, or returns false once the node shuts down.
pub(super) async fn tick(node: &ClusterNode, every: Duration) -> bool {
    let mut stop = node.shutdown.subscribe();
    tokio::select! {
        _ = tokio::time::sleep(every) => {}
        _ = stop.wait_for(|s| *s) => return false,
    }
    !*node.shutdown.borrow()
}

async fn liveness(node: Arc<ClusterNode>) {
    while tick(&node, LIVENESS_REFRESH).await {
        let membership = node.membership.lock().clone();
        if let Some(m) = membership {
            node.live
                .update(m.members().into_iter().map(|m| (m.node, m.state)));
        }
    }
}

/// Fetches and adopts a newer layout that a peer publishes by gossip.
async fn follow_layouts(node: Arc<ClusterNode>) {
    let Some(mut seen) = node.membership.lock().as_ref().map(|m| m.watch_layout()) else {
        return;
    };
    loop {
        if seen.changed().await.is_err() {
            return;
        }
        let Some(s) = *seen.borrow() else {
            continue;
        };
        node.pull_layout(s.node, s.version).await;
    }
}

async fn fold_merkle(node: Arc<ClusterNode>) {
    while tick(&node, MERKLE_FOLD).await {
        let store = node.store.clone();
        let folded =
            tokio::task::spawn_blocking(move || store.merkle().process_todos(MERKLE_FOLD_BATCH))
                .await;
        if let Ok(Err(e)) = folded {
            tracing::error!(error = %e, "Merkle folding failed");
        }
    }
}

/// The slow rebuild from data (merkle/rebuild.rs), one partition at a time so that it
/// never holds up folding for long: every partition once per
/// `merkle_rebuild_interval`, as Riak's active anti-entropy rebuilds its trees. What it
/// fixes, anti-entropy then compares and repairs.
async fn rebuild_merkle(node: Arc<ClusterNode>) {
    let pass = node.config.cluster.merkle_rebuild_interval;
    if pass.is_zero() {
        return;
    }
    let step = pass / u32::from(kv_keyspace::slot::PARTITIONS);
    let mut partition = 0;
    while tick(&node, step).await {
        let store = node.store.clone();
        let rebuilt =
            tokio::task::spawn_blocking(move || store.merkle().rebuild_partition(partition)).await;
        match rebuilt {
            Ok(Ok(wrong)) => {
                node.stats.merkle_rebuilds.fetch_add(1, Ordering::Relaxed);
                if wrong > 0 {
                    node.stats
                        .merkle_leaves_fixed
                        .fetch_add(wrong as u64, Ordering::Relaxed);
                    tracing::warn!(
                        partition,
                        wrong,
                        "Merkle rebuild from data fixed leaves (damage, or writes racing with it)"
                    );
                }
            }
            Ok(Err(e)) => tracing::error!(partition, error = %e, "Merkle rebuild failed"),
            Err(e) => tracing::error!(partition, error = %e, "Merkle rebuild task failed"),
        }
        partition = (partition + 1) % kv_keyspace::slot::PARTITIONS;
    }
}

async fn anti_entropy(node: Arc<ClusterNode>) {
    let every = node.config.cluster.anti_entropy_interval;
    tracing::info!(?every, "anti-entropy loop starts");
    while tick(&node, every).await {
        if node.layout.get().is_some() {
            tracing::info!("anti-entropy round");
            let started = crate::hints::system_clock_ms()();
            let round = node.repair_now(None).await;
            // The wipe rule's stamp: only a round without failures proves this node
            // holds what its replicas held when it began.
            if round.is_ok_and(|r| r.failures == 0) {
                let db = node.store.db().clone();
                let stamped = tokio::task::spawn_blocking(move || {
                    crate::tombstone_gc::record_synced_at(&db, started)
                })
                .await;
                if let Ok(Err(e)) = stamped {
                    tracing::error!(error = %e, "cannot record the synced-at stamp");
                }
            }
        }
    }
    tracing::info!("anti-entropy loop ended");
}

/// Tombstone collection, as often as anti-entropy (both walk the partitions).
async fn collect_tombstones(node: Arc<ClusterNode>) {
    let every = node.config.cluster.anti_entropy_interval;
    let grace_ms = node.config.cluster.tombstone_grace.as_millis() as u64;
    while tick(&node, every).await {
        let Some(layout) = node.layout.get() else {
            continue;
        };
        let now = crate::hints::system_clock_ms()();
        let round = crate::tombstone_gc::collect_round(
            &node.store,
            &layout,
            node.me.id,
            &*node.peers,
            &*node.live,
            now,
            grace_ms,
        )
        .await;
        tracing::debug!(?round, "tombstone collection round");
        node.stats
            .tombstones_purged
            .fetch_add(round.purged, Ordering::Relaxed);
    }
}

async fn pings(node: Arc<ClusterNode>) {
    // The pinger reads the system clock; a test-skewed node shifts its own readings.
    let offset = node.config.test_clock_offset_ms;
    let ours = |ms: i64| ms.saturating_add(offset).max(0) as u64;
    while tick(&node, PING_EVERY).await {
        if let Some(layout) = node.layout.get() {
            for n in &layout.nodes {
                if n.id == node.me.id {
                    continue;
                }
                if let Some(peer) = node.peers.peer(n.id) {
                    if let Ok(p) = peer.ping().await {
                        let peer_ms = p.peer_ms.max(0) as u64;
                        node.skew
                            .record(n.id, ours(p.sent_ms), peer_ms, ours(p.received_ms));
                    }
                }
            }
        }
        // Once per round, not per request: the request path reads the flag. Also without
        // a layout: a clock that resumed ahead becomes ready as the wall clock catches up.
        let readiness = clock_readiness(&node.hlc, &node.skew, node.max_offset_ms());
        if let Err(why) = &readiness {
            tracing::warn!(reason = %why, "this node does not coordinate");
        }
        node.clock.set(readiness);
    }
}

impl ClusterNode {
    /// Anti-entropy now for `partition` or every partition this node holds, with every
    /// other replica that is not down. Per peer, one request compares the roots of all
    /// the partitions both hold; only partitions whose roots differ are synced, and a
    /// peer that does not answer costs one failure, not one per partition.
    pub(super) async fn repair_now(
        &self,
        partition: Option<u16>,
    ) -> Result<crate::ring::RepairReport, crate::ring::RingError> {
        use crate::replica_api::{Liveness, PeerState};
        let layout = self.layout.get().ok_or(crate::ring::RingError::NoLayout {
            expected: self.config.expect,
        })?;
        let mine: Vec<u16> = match partition {
            Some(p) => vec![p],
            None => layout.partitions_of(self.me.id),
        };
        let mut stats = crate::anti_entropy::SyncStats::default();
        let mut failures = 0usize;
        // During a layout change, every holder: the new replicas and the previous ones.
        for peer_info in layout.all_nodes() {
            let peer_id = peer_info.id;
            if peer_id == self.me.id || self.live.state(peer_id) == PeerState::Down {
                continue;
            }
            let shared: Vec<u16> = mine
                .iter()
                .copied()
                .filter(|&p| layout.holders(p).contains(&peer_id))
                .collect();
            if shared.is_empty() {
                continue;
            }
            let done = self.sync_with_peer(peer_id, &shared).await;
            self.stats
                .anti_entropy_seen
                .lock()
                .peer_synced(peer_id, done.failures == 0);
            stats.add(done.stats);
            failures += done.failures;
        }
        let s = &self.stats;
        s.anti_entropy_seen.lock().round_ended(failures == 0);
        s.anti_entropy_rounds.fetch_add(1, Ordering::Relaxed);
        s.anti_entropy_keys_repaired
            .fetch_add(stats.keys_repaired, Ordering::Relaxed);
        s.anti_entropy_failures
            .fetch_add(failures as u64, Ordering::Relaxed);
        Ok(crate::ring::RepairReport {
            partitions: mine.len(),
            keys_repaired: stats.keys_repaired,
            failures,
        })
    }
}

/// What syncing some partitions with one peer did.
pub(super) struct PeerSync {
    /// Partitions now compared (equal roots, or synced without error).
    pub synced: Vec<u16>,
    /// Keys moved.
    pub stats: crate::anti_entropy::SyncStats,
    /// One for an unreachable peer, else one per partition whose sync failed.
    pub failures: usize,
}

impl ClusterNode {
    /// Compares the roots of `partitions` with `peer` in one request and syncs those that
    /// differ (both ways, last writer wins).
    pub(super) async fn sync_with_peer(
        &self,
        peer_id: crate::NodeId,
        partitions: &[u16],
    ) -> PeerSync {
        use crate::replica_api::Replicas;
        let mut done = PeerSync {
            synced: Vec::new(),
            stats: crate::anti_entropy::SyncStats::default(),
            failures: 0,
        };
        let Some(peer) = self.peers.replica(peer_id) else {
            done.failures = 1;
            return done;
        };
        let (ours, theirs) = futures_roots(&*self.local, &*peer, partitions).await;
        let (Ok(ours), Ok(theirs)) = (ours, theirs) else {
            done.failures = 1;
            return done;
        };
        let mut first_failure = None;
        for ((&p, a), b) in partitions.iter().zip(&ours).zip(&theirs) {
            if a == b {
                done.synced.push(p);
                continue;
            }
            let budget = &self.background_budget;
            // Writes only while this node and the peer hold the partition by this
            // node's layout as it is when each write leaves: a sync can outlast a
            // layout change, and the peer (or this node) may have deleted it since.
            let (layout, me) = (&self.layout, self.me.id);
            let held = || {
                layout.get().is_none_or(|l| {
                    let holders = l.holders(p);
                    holders.contains(&me) && holders.contains(&peer_id)
                })
            };
            let sync =
                crate::anti_entropy::sync_partition_held(p, &*self.local, &*peer, budget, &held);
            match sync.await {
                Ok(s) => {
                    done.stats.add(s);
                    done.synced.push(p);
                }
                Err(e) => {
                    first_failure.get_or_insert((p, e));
                    done.failures += 1
                }
            }
        }
        // One line per peer and round, not per partition: a peer that refuses every
        // partition (catching up after a restart) would fill the log.
        if let Some((partition, error)) = first_failure {
            tracing::warn!(
                peer = %peer_id,
                failed_partitions = done.failures,
                first_partition = partition,
                first_error = %error,
                "anti-entropy syncs with a peer failed"
            );
        }
        done
    }
}

type Roots = Result<Vec<crate::replica_api::Hash16>, crate::replica_api::ReplicaError>;

/// Both sides' roots of `partitions`, asked at once.
async fn futures_roots(
    a: &dyn crate::replica_api::ReplicaApi,
    b: &dyn crate::replica_api::ReplicaApi,
    partitions: &[u16],
) -> (Roots, Roots) {
    tokio::join!(
        a.merkle_roots(partitions.to_vec()),
        b.merkle_roots(partitions.to_vec())
    )
}

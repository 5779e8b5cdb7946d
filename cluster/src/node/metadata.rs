//! This node's part in the cluster metadata (docs/cluster.md, "Cluster metadata"):
//! publishing entries, catching up at start and on contact (gossiped digests), and the
//! flush floors with their background purge.

use super::ClusterNode;
use crate::metadata::spread::{self, MetadataPeer};
use crate::metadata::{flushed_db, MetaEntry, MetadataListener};
use crate::replica_api::{Liveness, PeerState, ReplicaError};
use crate::ring::RingError;
use crate::rpc::PeerClient;
use crate::Version;
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// Peers whose gossiped digest differs from ours are synced with this often.
const CATCH_UP_EVERY: Duration = Duration::from_secs(1);
/// Flushed data left below a floor (a purge that failed) is looked at again this often.
const PURGE_RETRY: Duration = Duration::from_secs(10);

#[async_trait]
impl MetadataPeer for PeerClient {
    async fn sync_metadata(&self, entries: Vec<MetaEntry>) -> Result<Vec<MetaEntry>, ReplicaError> {
        PeerClient::sync_metadata(self, entries).await
    }
}

impl ClusterNode {
    /// The flush floors follow the metadata; the clock moves past every entry seen, so
    /// this node's writes are ordered after a flush it knows of.
    pub(super) fn follow_metadata(&self) {
        let floors = self.store.floors().clone();
        let hlc = self.hlc.clone();
        let purge = self.purge_wanted.clone();
        self.metadata.listen(Arc::new(move |e: &MetaEntry| {
            if let Err(err) = hlc.observe(e.version) {
                tracing::warn!(entry = %e.name, error = %err, "metadata version ahead of the clock bound");
            }
            if let Some(db) = flushed_db(&e.name) {
                if floors.raise(db, e.version) {
                    tracing::info!(db, floor = %e.version, "database flushed on the ring");
                    purge.notify_one();
                }
            }
        }));
    }

    /// Stamps `entries` with one new version and stores them on every node it can
    /// reach; succeeds once a majority of the layout's nodes hold them.
    pub(super) async fn publish(
        &self,
        entries: Vec<(String, Bytes)>,
    ) -> Result<Version, RingError> {
        let layout = self.layout.get().ok_or(RingError::NoLayout {
            expected: self.config.expect,
        })?;
        let version = self
            .hlc
            .next()
            .map_err(|e| RingError::Other(format!("ERR cannot persist the clock floor: {e}")))?;
        let entries: Vec<MetaEntry> = entries
            .into_iter()
            .map(|(name, value)| MetaEntry {
                name,
                version,
                value,
            })
            .collect();
        let peers = self.metadata_peers(false);
        spread::publish(
            &self.metadata,
            entries,
            peers,
            layout.nodes.len(),
            self.config.cluster.request_timeout,
        )
        .await
        .map_err(|e| RingError::Other(e.to_string()))?;
        Ok(version)
    }

    /// The other nodes of the layout (only those not known down, if `live_only`).
    fn metadata_peers(&self, live_only: bool) -> Vec<Arc<dyn MetadataPeer>> {
        let Some(layout) = self.layout.get() else {
            return Vec::new();
        };
        layout
            .nodes
            .iter()
            .filter(|n| n.id != self.me.id)
            .filter(|n| !live_only || self.live.state(n.id) != PeerState::Down)
            .filter_map(|n| self.peers.peer(n.id))
            .map(|p| p as Arc<dyn MetadataPeer>)
            .collect()
    }

    /// Syncs with every other node at once, each bounded by the request timeout: at
    /// start, so a node that missed a flush or a user while it was down learns it before
    /// it serves clients.
    pub(super) async fn catch_up_metadata(&self) {
        let timeout = self.config.cluster.request_timeout;
        let mut syncs = JoinSet::new();
        for peer in self.metadata_peers(false) {
            let store = self.metadata.clone();
            syncs.spawn(async move {
                tokio::time::timeout(timeout, async { spread::sync_with(&store, &*peer).await })
                    .await
            });
        }
        let mut reached = 0;
        while let Some(done) = syncs.join_next().await {
            reached += matches!(done, Ok(Ok(Ok(_)))) as usize;
        }
        tracing::info!(reached, "cluster metadata synced at start");
    }

    /// Registers a listener of the metadata (the server's ACL and CONFIG).
    pub(super) fn listen_metadata(&self, listener: MetadataListener) {
        self.metadata.listen(listener);
    }
}

/// Publishes this node's digest in gossip and syncs with peers that publish another.
pub(super) async fn gossip_digests(node: Arc<ClusterNode>) {
    let mut digest = node.metadata.watch_digest();
    let mut published = String::new();
    while super::background::tick(&node, CATCH_UP_EVERY).await {
        let Some(m) = node.membership.lock().clone() else {
            continue;
        };
        let mine = digest.borrow_and_update().clone();
        if mine != published {
            m.set_meta_digest(mine.clone()).await;
            published = mine.clone();
        }
        for member in m.members() {
            let differs = !member.meta_digest.is_empty() && member.meta_digest != mine;
            if !differs || node.live.state(member.node) != PeerState::Up {
                continue;
            }
            let Some(peer) = node.peers.peer(member.node) else {
                continue;
            };
            match spread::sync_with(&node.metadata, &*peer).await {
                Ok(changed) if !changed.is_empty() => {
                    tracing::info!(peer = %member.node, entries = changed.len(), "cluster metadata caught up")
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(peer = %member.node, error = %e, "metadata sync failed"),
            }
        }
    }
}

/// Deletes each flushed database's records below its floor, once per floor (a marker
/// in the metadata keyspace remembers the work done, across restarts).
pub(super) async fn purge_flushed(node: Arc<ClusterNode>) {
    loop {
        for (db, floor) in node.store.floors().all() {
            let (store, meta) = (node.store.clone(), node.metadata.clone());
            let done = tokio::task::spawn_blocking(move || -> Result<u64, String> {
                if meta.purged_floor(db).map_err(|e| e.to_string())? >= floor {
                    return Ok(0);
                }
                let n = store.purge_below(db, floor).map_err(|e| e.to_string())?;
                meta.set_purged_floor(db, floor)
                    .map_err(|e| e.to_string())?;
                Ok(n)
            })
            .await;
            match done {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => {
                    node.stats.flush_purged_keys.fetch_add(n, Ordering::Relaxed);
                    tracing::info!(db, floor = %floor, records = n, "flushed records deleted");
                }
                Ok(Err(e)) => tracing::error!(db, error = %e, "flushed records not deleted yet"),
                Err(e) => tracing::error!(db, error = %e, "flush purge task failed"),
            }
        }
        let mut stop = node.shutdown.subscribe();
        tokio::select! {
            _ = node.purge_wanted.notified() => {}
            _ = tokio::time::sleep(PURGE_RETRY) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

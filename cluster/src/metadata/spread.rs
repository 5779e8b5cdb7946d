//! How metadata reaches every node (docs/cluster-protocol.md, "Cluster metadata"): the
//! writer merges its entries, pushes them to every other node at once and succeeds once
//! a majority of the layout's nodes hold them; any two nodes whose gossiped digests
//! differ sync whole stores, so a node that was down or cut off catches up on contact.
//! Generic over [`MetadataPeer`] so the rules are tested with in-memory peers.

use super::{MetaEntry, MetadataStore};
use crate::replica_api::ReplicaError;
use crate::replica_store::StoreError;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// A node that holds the metadata (the bus client of a peer, or a test fake).
#[async_trait]
pub trait MetadataPeer: Send + Sync + 'static {
    /// The peer merges `entries` (last writer wins) and answers with every entry it
    /// holds afterwards.
    async fn sync_metadata(&self, entries: Vec<MetaEntry>) -> Result<Vec<MetaEntry>, ReplicaError>;
}

/// How far a published change got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reach {
    /// Nodes known to hold the change (this one included).
    pub held_by: usize,
    /// Nodes in the layout.
    pub nodes: usize,
}

impl Reach {
    /// Whether a majority of the nodes hold it.
    pub fn majority(&self) -> bool {
        self.held_by >= majority_of(self.nodes)
    }
}

/// The smallest majority of `nodes`.
pub fn majority_of(nodes: usize) -> usize {
    nodes / 2 + 1
}

/// Why a publish failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// This node could not store the change: nothing was sent.
    #[error("ERR cluster metadata could not be stored on this node: {0}")]
    Storage(String),
    /// Stored here and on some nodes, but not on a majority in time. It is not undone:
    /// it reaches the other nodes when they are next in contact.
    #[error("CLUSTERDOWN the change reached {} of {} nodes, fewer than a majority ({}); it stays on those and reaches the others when they are next in contact (retry to confirm)", .0.held_by, .0.nodes, majority_of(.0.nodes))]
    NoMajority(Reach),
}

/// Merges `entries` here, pushes them to `peers` (every other node of the layout, each
/// given `timeout`) and reports how many hold them. `nodes` counts the layout's nodes,
/// this one included. Answers from peers are merged back, so the writer also learns
/// what they hold.
pub async fn publish(
    store: &Arc<MetadataStore>,
    entries: Vec<MetaEntry>,
    peers: Vec<Arc<dyn MetadataPeer>>,
    nodes: usize,
    timeout: Duration,
) -> Result<Reach, PublishError> {
    merge_blocking(store, entries.clone())
        .await
        .map_err(|e| PublishError::Storage(e.to_string()))?;
    let mut pushes = JoinSet::new();
    for peer in peers {
        let entries = entries.clone();
        pushes.spawn(async move {
            tokio::time::timeout(timeout, peer.sync_metadata(entries))
                .await
                .ok()
                .and_then(Result::ok)
        });
    }
    let mut held_by = 1;
    while let Some(done) = pushes.join_next().await {
        let Ok(Some(theirs)) = done else {
            continue;
        };
        if holds_all(&theirs, &entries) {
            held_by += 1;
        }
        if let Err(e) = merge_blocking(store, theirs).await {
            tracing::warn!(error = %e, "metadata from a peer not merged");
        }
    }
    let reach = Reach { held_by, nodes };
    if reach.majority() {
        Ok(reach)
    } else {
        Err(PublishError::NoMajority(reach))
    }
}

/// Two-way sync with one peer: sends every entry held here, merges every entry it holds.
/// Returns the entries that changed here.
pub async fn sync_with(
    store: &Arc<MetadataStore>,
    peer: &dyn MetadataPeer,
) -> Result<Vec<MetaEntry>, ReplicaError> {
    let theirs = peer.sync_metadata(store.entries()).await?;
    merge_blocking(store, theirs)
        .await
        .map_err(|e| ReplicaError::Failed(e.to_string()))
}

/// What a node answers to a peer's sync: merges the peer's entries, returns its own.
pub async fn serve_sync(
    store: &Arc<MetadataStore>,
    entries: Vec<MetaEntry>,
) -> Result<Vec<MetaEntry>, ReplicaError> {
    merge_blocking(store, entries)
        .await
        .map_err(ReplicaError::from)?;
    Ok(store.entries())
}

/// Whether `held` has every entry of `wanted` at its version or a newer one.
fn holds_all(held: &[MetaEntry], wanted: &[MetaEntry]) -> bool {
    wanted.iter().all(|w| {
        held.iter()
            .any(|h| h.name == w.name && h.version >= w.version)
    })
}

async fn merge_blocking(
    store: &Arc<MetadataStore>,
    entries: Vec<MetaEntry>,
) -> Result<Vec<MetaEntry>, StoreError> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let store = store.clone();
    tokio::task::spawn_blocking(move || store.merge(entries))
        .await
        .map_err(|e| StoreError::Invalid(format!("metadata task failed: {e}")))?
}

//! One collection round: find the tombstones this node holds past the grace, ask every
//! other replica of their partition what it holds for those keys, and drop the ones the
//! rule allows (rule.rs) with "delete if equal" (ReplicaStore::purge_tombstones).
//!
//! Every replica runs its own rounds; none waits for the others. A replica that purged
//! while another still holds the tombstone may get it back from anti-entropy or read
//! repair (absence and a tombstone hash differently), and purges it again in its next
//! round; once the last replica purged, nothing re-sends it, so the trees converge on
//! "no key" everywhere.

use super::rule::{may_purge, old_enough, ReplicaAnswer};
use crate::layout::Layout;
use crate::replica_api::{ItemKey, Liveness, PeerState, ReplicaApi, ReplicaError, Replicas};
use crate::replica_store::ReplicaStore;
use crate::{NodeId, Record};
use std::sync::Arc;

/// Keys asked of the other replicas in one request (one read per replica per chunk).
const CHUNK: usize = 256;
/// Candidates taken from one partition per round, bounding the memory of a round; the
/// rest waits for the next round.
const MAX_CANDIDATES_PER_PARTITION: usize = 65_536;

/// What a round (or one partition of it) did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcStats {
    /// Tombstones past the grace that were checked with the other replicas.
    pub candidates: u64,
    /// Tombstones dropped.
    pub purged: u64,
    /// Partitions skipped or cut short because a replica was down or did not answer.
    pub partitions_blocked: u64,
}

impl GcStats {
    fn add(&mut self, other: GcStats) {
        self.candidates += other.candidates;
        self.purged += other.purged;
        self.partitions_blocked += other.partitions_blocked;
    }
}

/// Collects in every partition `me` holds under `layout`. A partition with a replica
/// that is down, unknown or silent keeps all its tombstones this round.
pub async fn collect_round(
    store: &Arc<ReplicaStore>,
    layout: &Layout,
    me: NodeId,
    replicas: &dyn Replicas,
    live: &dyn Liveness,
    now_ms: u64,
    grace_ms: u64,
) -> GcStats {
    let mut stats = GcStats::default();
    for partition in layout.partitions_of(me) {
        // Every holder, the previous replicas of a layout change included: a tombstone
        // purged before a new replica copied it would let an older value come back.
        let others: Option<Vec<Arc<dyn ReplicaApi>>> = layout
            .holders(partition)
            .iter()
            .filter(|&&n| n != me)
            .map(|&n| match live.state(n) {
                // A down replica cannot answer; asking would only cost a timeout.
                PeerState::Down => None,
                _ => replicas.replica(n),
            })
            .collect();
        let Some(others) = others else {
            stats.partitions_blocked += 1;
            continue;
        };
        match collect_partition(store, partition, &others, now_ms, grace_ms).await {
            Ok(s) => stats.add(s),
            Err(e) => {
                tracing::debug!(partition, error = %e, "tombstone collection cut short");
                stats.partitions_blocked += 1;
            }
        }
    }
    stats
}

/// Collects in one partition, asking `others` (every other replica of it).
pub async fn collect_partition(
    store: &Arc<ReplicaStore>,
    partition: u16,
    others: &[Arc<dyn ReplicaApi>],
    now_ms: u64,
    grace_ms: u64,
) -> Result<GcStats, ReplicaError> {
    let candidates = {
        let store = store.clone();
        blocking(move || old_tombstones(&store, partition, now_ms, grace_ms)).await?
    };
    let mut stats = GcStats {
        candidates: candidates.len() as u64,
        ..GcStats::default()
    };
    for chunk in candidates.chunks(CHUNK) {
        let keys: Vec<ItemKey> = chunk.iter().map(|(k, _)| k.clone()).collect();
        let answers = ask_all(others, &keys).await?;
        let doomed: Vec<_> = chunk
            .iter()
            .enumerate()
            .filter(|(i, (_, held))| {
                let theirs: Vec<ReplicaAnswer> =
                    answers.iter().map(|a| Some(a[*i].clone())).collect();
                may_purge(held, now_ms, grace_ms, &theirs)
            })
            .map(|(_, (key, held))| (key.clone(), held.version))
            .collect();
        if doomed.is_empty() {
            continue;
        }
        let store = store.clone();
        let purged = blocking(move || store.purge_tombstones(&doomed)).await?;
        stats.purged += purged as u64;
    }
    Ok(stats)
}

/// The tombstones of `partition` past the grace (at most
/// [`MAX_CANDIDATES_PER_PARTITION`]). Corrupt records are skipped: they are reported by
/// reads and repaired by anti-entropy, not collected.
fn old_tombstones(
    store: &ReplicaStore,
    partition: u16,
    now_ms: u64,
    grace_ms: u64,
) -> Result<Vec<(ItemKey, Record)>, crate::replica_store::StoreError> {
    Ok(store
        .partition_records(partition)?
        .filter_map(Result::ok)
        .filter(|(_, r)| old_enough(r, now_ms, grace_ms))
        .take(MAX_CANDIDATES_PER_PARTITION)
        .collect())
}

/// Every replica's records for `keys`, asked at once; the first failure fails all (the
/// rule needs every answer).
async fn ask_all(
    others: &[Arc<dyn ReplicaApi>],
    keys: &[ItemKey],
) -> Result<Vec<Vec<Option<Record>>>, ReplicaError> {
    let asks: Vec<_> = others
        .iter()
        .map(|replica| {
            let (replica, keys) = (replica.clone(), keys.to_vec());
            tokio::spawn(async move { replica.read(keys).await })
        })
        .collect();
    let mut answers = Vec::with_capacity(asks.len());
    for ask in asks {
        let records = ask
            .await
            .map_err(|e| ReplicaError::Failed(format!("read task failed: {e}")))??;
        if records.len() != keys.len() {
            return Err(ReplicaError::Failed(format!(
                "a replica answered {} records for {} keys",
                records.len(),
                keys.len()
            )));
        }
        answers.push(records);
    }
    Ok(answers)
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, crate::replica_store::StoreError> + Send + 'static,
) -> Result<T, ReplicaError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ReplicaError::Failed(format!("collection task failed: {e}")))?
        .map_err(|e| ReplicaError::Failed(e.to_string()))
}

//! Anti-entropy between two replicas of a partition: compare Merkle roots, then the 256
//! bucket hashes, then the leaves of the buckets that differ; read both sides' records
//! of exactly the keys whose leaves differ, merge them (last writer wins) and write the
//! winner to the side that lacks it. Only differing keys travel.

use crate::hint_replay::ByteBudget;
use crate::merkle::{diff_leaves, BUCKETS};
use crate::replica_api::{ItemKey, MerkleLeaf, ReplicaApi, ReplicaError, WriteItem};
use crate::{NodeId, Record};
use kv_keyspace::slot::key_partition;
use std::sync::Arc;

/// Differing keys gathered (across buckets) before one read and one write per side: few
/// round trips when replicas differ a lot, and no huge message when one bucket holds
/// many.
const REPAIR_CHUNK: usize = 256;

/// What one sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Keys whose leaves were compared (the union of both sides' leaves in differing
    /// buckets).
    pub keys_compared: u64,
    /// Differing keys for which a record was sent to at least one side.
    pub keys_repaired: u64,
    /// Buckets whose hashes differed.
    pub buckets_differing: u64,
}

impl SyncStats {
    /// Adds another sync's counts to these.
    pub fn add(&mut self, other: SyncStats) {
        self.keys_compared += other.keys_compared;
        self.keys_repaired += other.keys_repaired;
        self.buckets_differing += other.buckets_differing;
    }
}

/// Makes `a` and `b` hold the same newest records for `partition`, with no limit on
/// the bytes sent.
pub async fn sync_partition(
    partition: u16,
    a: &dyn ReplicaApi,
    b: &dyn ReplicaApi,
) -> Result<SyncStats, ReplicaError> {
    sync_partition_within(partition, a, b, &ByteBudget::new(0)).await
}

/// Makes `a` and `b` hold the same newest records for `partition`, spending the bytes
/// of the records it copies from `budget` (the node's background budget, shared with
/// hint replay) so that repairing a replica that missed much does not starve clients.
pub async fn sync_partition_within(
    partition: u16,
    a: &dyn ReplicaApi,
    b: &dyn ReplicaApi,
    budget: &ByteBudget,
) -> Result<SyncStats, ReplicaError> {
    sync_partition_held(partition, a, b, budget, &|| true).await
}

/// Whether both sides of a sync still hold (or receive) its partition, by the syncing
/// node's layout as it is now (`Layout::holders`).
pub type StillHeld<'a> = &'a (dyn Fn() -> bool + Send + Sync);

/// The error of a sync stopped because a side no longer holds the partition.
pub const MOVED: &str = "the partition moved: a side no longer holds it by this node's layout";

/// [`sync_partition_within`] that asks `still_held` right before each write and stops
/// (an error, nothing written) once it says no. A sync runs for as long as its round
/// trips and the budget take, which can outlast a layout change: a write that a round
/// decided under the layout before it, sent after the receiving side deleted the
/// partition, would leave a record there that nothing reads or deletes again. Asked
/// at the last moment, only a write already in flight can arrive after the change, and
/// the acknowledgement's drain time (`layout::driver::drain_time`, longer than a
/// request's deadline) keeps the clean-up after it.
pub async fn sync_partition_held(
    partition: u16,
    a: &dyn ReplicaApi,
    b: &dyn ReplicaApi,
    budget: &ByteBudget,
    still_held: StillHeld<'_>,
) -> Result<SyncStats, ReplicaError> {
    let mut stats = SyncStats::default();
    // Both sides are asked at once: with a remote peer that halves the round trips.
    let (root_a, root_b) = tokio::try_join!(
        a.merkle_roots(vec![partition]),
        b.merkle_roots(vec![partition])
    )?;
    if root_a == root_b {
        return Ok(stats);
    }
    let (buckets_a, buckets_b) =
        tokio::try_join!(a.merkle_buckets(partition), b.merkle_buckets(partition))?;
    if buckets_a.len() != BUCKETS || buckets_b.len() != BUCKETS {
        return Err(ReplicaError::Failed(format!(
            "a replica answered {} and {} bucket hashes for partition {partition}, not {BUCKETS}",
            buckets_a.len(),
            buckets_b.len()
        )));
    }
    let mut pending: Vec<ItemKey> = Vec::new();
    for (bucket, (ha, hb)) in buckets_a.iter().zip(&buckets_b).enumerate() {
        if ha == hb {
            continue;
        }
        stats.buckets_differing += 1;
        let bucket = u8::try_from(bucket)
            .map_err(|_| ReplicaError::Failed(format!("bucket {bucket} out of range")))?;
        let (leaves_a, leaves_b) = tokio::try_join!(
            a.merkle_leaves(partition, bucket),
            b.merkle_leaves(partition, bucket)
        )?;
        let mut differing = diff_leaves(&leaves_a, &leaves_b);
        // A leaf of another partition (a confused or damaged peer) is not ours to copy.
        differing.retain(|k| key_partition(&k.key) == partition);
        stats.keys_compared += count_union(&leaves_a, &leaves_b) as u64;
        // Keys of several buckets share one read and one write per side.
        pending.extend(differing);
        if pending.len() >= REPAIR_CHUNK {
            stats.keys_repaired += repair_in_chunks(&pending, a, b, budget, still_held).await?;
            pending.clear();
        }
    }
    stats.keys_repaired += repair_in_chunks(&pending, a, b, budget, still_held).await?;
    Ok(stats)
}

/// Distinct keys among both sides' leaves.
fn count_union(a: &[MerkleLeaf], b: &[MerkleLeaf]) -> usize {
    let mut keys: Vec<&ItemKey> = a.iter().chain(b).map(|l| &l.key).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.len()
}

async fn repair_in_chunks(
    keys: &[ItemKey],
    a: &dyn ReplicaApi,
    b: &dyn ReplicaApi,
    budget: &ByteBudget,
    still_held: StillHeld<'_>,
) -> Result<u64, ReplicaError> {
    let mut repaired = 0;
    for chunk in keys.chunks(REPAIR_CHUNK) {
        repaired += repair_keys(chunk, a, b, budget, still_held).await?;
    }
    Ok(repaired)
}

/// Reads `keys` on both sides and writes each merged winner where it is missing;
/// returns how many keys needed a write. A `Stale` answer means that side already
/// holds something newer, which the next round will carry the other way.
async fn repair_keys(
    keys: &[ItemKey],
    a: &dyn ReplicaApi,
    b: &dyn ReplicaApi,
    budget: &ByteBudget,
    still_held: StillHeld<'_>,
) -> Result<u64, ReplicaError> {
    let (records_a, records_b) = tokio::try_join!(a.read(keys.to_vec()), b.read(keys.to_vec()))?;
    if records_a.len() != keys.len() || records_b.len() != keys.len() {
        return Err(ReplicaError::Failed(
            "a replica answered a read with the wrong number of records".into(),
        ));
    }
    let (mut to_a, mut to_b) = (Vec::new(), Vec::new());
    let mut repaired = 0;
    for ((key, ra), rb) in keys.iter().zip(records_a).zip(records_b) {
        let winner = match (ra.clone(), rb.clone()) {
            (None, None) => continue,
            (Some(x), None) | (None, Some(x)) => x,
            (Some(x), Some(y)) => Record::merge(x, y),
        };
        let (needs_a, needs_b) = (ra.as_ref() != Some(&winner), rb.as_ref() != Some(&winner));
        if needs_a || needs_b {
            repaired += 1;
        }
        let item = || WriteItem {
            key: key.clone(),
            record: winner.clone(),
        };
        if needs_a {
            to_a.push(item());
        }
        if needs_b {
            to_b.push(item());
        }
    }
    budget.spend(items_bytes(&to_a) + items_bytes(&to_b)).await;
    // After the budget's wait, the last moment before sending (sync_partition_held).
    if (!to_a.is_empty() || !to_b.is_empty()) && !still_held() {
        return Err(ReplicaError::Failed(MOVED.into()));
    }
    tokio::try_join!(write_if_any(a, to_a), write_if_any(b, to_b))?;
    Ok(repaired)
}

/// What copying `items` costs the background budget: keys and encoded records.
fn items_bytes(items: &[WriteItem]) -> u64 {
    items
        .iter()
        .map(|i| (i.key.key.len() + i.record.encode().len()) as u64)
        .sum()
}

async fn write_if_any(side: &dyn ReplicaApi, items: Vec<WriteItem>) -> Result<(), ReplicaError> {
    if !items.is_empty() {
        side.write(items).await?;
    }
    Ok(())
}

/// Syncs each partition in turn between `me` and each of its peers (`peers_of`, with
/// their ids); a sync writes only while `still_held(partition, peer)` says both sides
/// still hold the partition ([`sync_partition_held`]). Returns the summed stats and the
/// failures, one per (partition, failed sync), so one unreachable peer does not stop
/// the round.
pub async fn sync_all(
    partitions: &[u16],
    me: &dyn ReplicaApi,
    peers_of: impl Fn(u16) -> Vec<(NodeId, Arc<dyn ReplicaApi>)>,
    still_held: &(dyn Fn(u16, NodeId) -> bool + Send + Sync),
) -> (SyncStats, Vec<(u16, ReplicaError)>) {
    let mut total = SyncStats::default();
    let mut failures = Vec::new();
    let budget = ByteBudget::new(0);
    for &partition in partitions {
        for (id, peer) in peers_of(partition) {
            let held = || still_held(partition, id);
            match sync_partition_held(partition, me, peer.as_ref(), &budget, &held).await {
                Ok(stats) => total.add(stats),
                Err(e) => failures.push((partition, e)),
            }
        }
    }
    (total, failures)
}

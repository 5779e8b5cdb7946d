//! Cluster-wide SCAN of one database with a stateless cursor. The cursor is a
//! [`ScanPosition`] (slot, key hash): its slot names the partition, whose R replicas
//! are asked for a page from that position. Each replica returns every key it holds
//! from the position up to its own `next`, so the merged page is complete only below
//! the SMALLEST `next`: items at or beyond it are dropped and come in the next page.
//! With W + R > N, a key present for the whole scan is held by at least one of the R
//! replicas asked, below that cut or in a later page, so it is returned (Redis's SCAN
//! guarantee); keys may be returned twice only if a client restarts from an old cursor.
//! A scan may be limited to a [`PartitionSet`]: it then skips the other partitions, so
//! nodes scanning disjoint sets return each key once between them.

use crate::coordinator::Coordinator;
use crate::partition_set::PartitionSet;
use crate::quorum::{ask_in_order, ClusterError, Consistency};
use crate::Record;
use bytes::Bytes;
use kv_keyspace::data_key::{key_hash, ScanPosition};
use kv_keyspace::slot::{key_slot, slot_partition, PARTITIONS, SLOTS_PER_PARTITION};
use std::collections::BTreeMap;

/// Partitions one SCAN call may visit, bounding its latency when many are empty.
pub const MAX_PARTITIONS_PER_CALL: usize = 16;
/// The largest COUNT honoured: a page's memory is bounded whatever the client asks.
pub const MAX_SCAN_COUNT: usize = 10_000;

/// Keys asked of each replica per page when counting for DBSIZE.
const COUNT_PAGE: usize = 1_000;

/// A merged page of one partition.
struct PartitionPage {
    /// Live keys, in scan order.
    keys: Vec<Bytes>,
    /// Where this partition continues; `None` when it is done.
    next: Option<ScanPosition>,
}

fn position_of(key: &[u8]) -> ScanPosition {
    ScanPosition {
        slot: key_slot(key),
        hash: key_hash(key),
    }
}

/// The first position of the first partition of `scope` at or after `partition`, `None`
/// past the last.
fn partition_start(scope: &PartitionSet, partition: u16) -> Option<ScanPosition> {
    let first = scope.first_from(partition)?;
    Some(ScanPosition {
        slot: first * SLOTS_PER_PARTITION,
        hash: 0,
    })
}

/// Where a scan of `scope` continues from `pos`: `pos` itself inside a partition of the
/// scope, else the start of the scope's next partition (the scope may have changed
/// since the cursor was given); `None` when nothing is left.
fn in_scope(scope: &PartitionSet, pos: ScanPosition) -> Option<ScanPosition> {
    let partition = slot_partition(pos.slot);
    if scope.contains(partition) {
        Some(pos)
    } else {
        partition_start(scope, partition)
    }
}

impl Coordinator {
    /// One SCAN call over database `db` in the partitions of `scope` (usually
    /// [`PartitionSet::ALL`]) from `cursor` (0 starts): about `count` live keys
    /// (tombstones and values expired at `now_ms` hidden) and the cursor to continue
    /// from, 0 when the scan is complete.
    pub async fn scan(
        &self,
        scope: &PartitionSet,
        db: u32,
        cursor: u64,
        count: usize,
        now_ms: i64,
        consistency: Consistency,
    ) -> Result<(u64, Vec<Bytes>), ClusterError> {
        let from = ScanPosition::from_cursor(cursor).ok_or(ClusterError::InvalidCursor)?;
        let Some(mut pos) = in_scope(scope, from) else {
            return Ok((0, Vec::new()));
        };
        let count = count.clamp(1, MAX_SCAN_COUNT);
        let mut keys = Vec::new();
        for _ in 0..MAX_PARTITIONS_PER_CALL {
            let partition = slot_partition(pos.slot);
            let limit = count - keys.len();
            let page = self
                .scan_partition(partition, db, pos, limit, now_ms, consistency)
                .await?;
            keys.extend(page.keys);
            pos = match page.next.or_else(|| partition_start(scope, partition + 1)) {
                Some(p) => p,
                None => return Ok((0, keys)),
            };
            if keys.len() >= count {
                break;
            }
        }
        Ok((pos.cursor(), keys))
    }

    /// An estimate of the live keys of database `db`: the live keys of `sample`
    /// partitions spread evenly over the ring, counted with a cluster scan, scaled to
    /// all 256. Keys hash uniformly over partitions, so the estimate is unbiased, but
    /// hash tags that crowd keys into few partitions skew it; `sample` = 256 counts
    /// every partition (exact for keys that do not change meanwhile, and slowest).
    pub async fn dbsize_estimate(
        &self,
        db: u32,
        sample: usize,
        now_ms: i64,
        consistency: Consistency,
    ) -> Result<u64, ClusterError> {
        let sample = sample.clamp(1, PARTITIONS as usize);
        let step = PARTITIONS as usize / sample;
        let mut live = 0u64;
        let mut counted = 0u64;
        for partition in (0..PARTITIONS).step_by(step).take(sample) {
            let mut from = ScanPosition {
                slot: partition * SLOTS_PER_PARTITION,
                hash: 0,
            };
            loop {
                let page = self
                    .scan_partition(partition, db, from, COUNT_PAGE, now_ms, consistency)
                    .await?;
                live += page.keys.len() as u64;
                match page.next {
                    Some(next) => from = next,
                    None => break,
                }
            }
            counted += 1;
        }
        Ok(live * PARTITIONS as u64 / counted.max(1))
    }

    /// Merges one page of `partition` from R replicas, cut at the smallest `next`.
    async fn scan_partition(
        &self,
        partition: u16,
        db: u32,
        from: ScanPosition,
        limit: usize,
        now_ms: i64,
        consistency: Consistency,
    ) -> Result<PartitionPage, ClusterError> {
        let inner = &self.inner;
        let set = self.partition_replicas(partition);
        let needed = consistency.required(set.n, inner.config.read_quorum);
        let answers = ask_in_order(
            &set.live,
            needed,
            inner.config.request_timeout,
            |api| async move { api.scan(partition, db, from, limit).await },
        )
        .await?;
        // None (partition done) is later than every position.
        let cut = answers.iter().filter_map(|(_, page)| page.next).min();
        if cut.is_some_and(|c| c <= from) {
            return Err(ClusterError::Protocol("scan page made no progress".into()));
        }
        let mut merged: BTreeMap<(ScanPosition, Bytes), Record> = BTreeMap::new();
        for (_, page) in answers {
            for (key, record) in page.items {
                let at = position_of(&key);
                if at < from
                    || cut.is_some_and(|c| at >= c)
                    || inner.floors.flushed(db, record.version)
                {
                    continue;
                }
                let newest = match merged.remove(&(at, key.clone())) {
                    Some(held) => Record::merge(held, record),
                    None => record,
                };
                merged.insert((at, key), newest);
            }
        }
        let keys = merged
            .into_iter()
            .filter(|(_, r)| r.live_value(now_ms).is_some())
            .map(|((_, key), _)| key)
            .collect();
        Ok(PartitionPage { keys, next: cut })
    }
}

//! The write path: assign a version, send to every live replica at once (round.rs),
//! reply after W Applied; a Stale answer moves the clock past the replica's version and
//! retries.

use super::layout_retry::LayoutRetry;
use super::round::{write_round, RoundEnd};
use super::tally::Tally;
use super::{Coordinator, ReplicaSet};
use crate::hints::HintStore;
use crate::quorum::{ClusterError, Consistency};
use crate::record_size::check_body;
use crate::replica_api::{ItemKey, WriteItem};
use crate::{Body, NodeId, Record, Version};
use bytes::Bytes;
use kv_keyspace::ValueType;
use std::sync::atomic::Ordering;
use tokio::time::Instant;

impl Coordinator {
    /// Writes `value` (`None` deletes: a tombstone) to `key` with absolute expiry
    /// `expire_at` (Unix ms); returns the version once the consistency level's
    /// acknowledgements arrived.
    pub async fn put(
        &self,
        key: ItemKey,
        value: Option<(ValueType, Bytes)>,
        expire_at: Option<i64>,
        consistency: Consistency,
    ) -> Result<Version, ClusterError> {
        let inner = &self.inner;
        let (body, expire_at) = body_of(value, expire_at);
        check_body(&key.key, &body)?;
        let mut set = self.key_write_set(&key.key);
        let mut layout_retry = LayoutRetry::default();
        let quorum = |n| consistency.required(n, inner.config.write_quorum);
        if let Some((needed, alive)) = Tally::new(&set, quorum).unavailable() {
            return Err(ClusterError::Unavailable { needed, alive });
        }
        self.observe_flush_floor(key.db);
        let max_attempts = inner.config.max_stale_retries + 1;
        // One deadline for every attempt: the client waits at most the request timeout.
        let deadline = Instant::now() + inner.config.request_timeout;
        let mut attempt = 0;
        let mut sent: Option<WriteItem> = None;
        loop {
            attempt += 1;
            let version = match inner.clock.next() {
                Ok(v) => v,
                // Before anything was sent: nothing was written.
                Err(e) if sent.is_none() => return Err(ClusterError::Clock(e)),
                // A retry the clock cannot stamp: the earlier attempt may have landed, so
                // it is reported as such, and its skipped replicas get their hints.
                Err(e) => {
                    tracing::warn!(error = %e, "the clock refused a version for a retry");
                    if let Some(prev) = &sent {
                        hint_skipped(&set, prev, &inner.hints);
                    }
                    return Err(ClusterError::Contended {
                        attempts: attempt - 1,
                    });
                }
            };
            let item = blind_write(&key, version, &body, expire_at);
            let tally = Tally::new(&set, quorum);
            let needed = tally.needed();
            let end = write_round(&set, &item, tally, deadline, &inner.hints, inner.me).await;
            sent = Some(item.clone());
            let result = match end {
                RoundEnd::Acked => Ok(item.record.version),
                RoundEnd::Stale(current) if attempt < max_attempts => {
                    inner.clock.observe(current);
                    inner.counters.stale_retries.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                RoundEnd::Stale(current) => {
                    inner.clock.observe(current);
                    Err(ClusterError::Contended { attempts: attempt })
                }
                // A replica on a newer layout refused: once, fetch it and write where
                // it places the key, with a newer version (coordinator/layout_retry.rs).
                RoundEnd::Short { .. } if layout_retry.after(self, &set).await => {
                    set = self.key_write_set(&key.key);
                    if Tally::new(&set, quorum).unavailable().is_none() {
                        continue;
                    }
                    Err(ClusterError::Timeout { acked: 0, needed })
                }
                RoundEnd::Short { acked } => Err(ClusterError::Timeout { acked, needed }),
            };
            // Sent: the write may land, so the skipped replicas get it too.
            hint_skipped(&set, &item, &inner.hints);
            return result;
        }
    }
}

impl Coordinator {
    /// Moves the clock past database `db`'s flush floor: a write after a flush is
    /// ordered after it, even from a clock that is behind.
    pub(super) fn observe_flush_floor(&self, db: u32) {
        let floor = self.inner.floors.floor(db);
        if floor > Version::ZERO {
            self.inner.clock.observe(floor);
        }
    }
}

/// The record body of a write of `value` (`None`: a tombstone) and its expiry. A
/// tombstone never expires: expiring it would bring back older values.
pub(super) fn body_of(
    value: Option<(ValueType, Bytes)>,
    expire_at: Option<i64>,
) -> (Body, Option<i64>) {
    match value {
        Some((ty, payload)) => (Body::Value { ty, payload }, expire_at),
        None => (Body::Tombstone, None),
    }
}

/// The record of a blind write (an eventual database): it replaces the record whole, so
/// it carries no request records (IDEMPOTENT is refused there, docs/consistency.md).
pub(super) fn blind_write(
    key: &ItemKey,
    version: Version,
    body: &Body,
    expire_at: Option<i64>,
) -> WriteItem {
    WriteItem {
        key: key.clone(),
        record: Record {
            version,
            expire_at,
            body: body.clone(),
            requests: Vec::new(),
            txn: Default::default(),
        },
    }
}

/// Hints the final version of a write for the replicas it skipped, in the background.
pub(super) fn hint_skipped(set: &ReplicaSet, item: &WriteItem, hints: &HintStore) {
    for &node in &set.skipped {
        spawn_hint(hints.clone(), node, item.clone());
    }
}

pub(super) fn spawn_hint(hints: HintStore, node: NodeId, item: WriteItem) {
    // A peer's failure may be taken outside any runtime (a batch's callback run as the
    // batch is dropped at shutdown): nothing can store the hint there, and a panic in a
    // drop would abort; anti-entropy repairs the replica instead.
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(target_node = %node, "no runtime to store a hint (shutting down)");
        return;
    };
    runtime.spawn(async move {
        if let Err(e) = hints.store(node, item).await {
            tracing::warn!(target_node = %node, error = %e, "could not store a hint");
        }
    });
}

//! The write path: assign a version, send to every live replica at once, reply after W
//! Applied; a Stale answer moves the clock past the replica's version and retries;
//! replicas skipped, failing or answering late get a hint (which never counts toward W),
//! and a replica catching up after an unclean restart stores the write without counting
//! toward W either (cluster/src/catch_up.rs).

use super::layout_retry::LayoutRetry;
use super::tally::Tally;
use super::{Coordinator, ReplicaSet};
use crate::hints::HintStore;
use crate::quorum::{ClusterError, Consistency};
use crate::replica_api::{ItemKey, ReplicaError, WriteItem, WriteOutcome};
use crate::{Body, NodeId, Record, Version};
use bytes::Bytes;
use kv_keyspace::ValueType;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How one round (one version sent to every live replica) ended.
pub(super) enum RoundEnd {
    /// W replicas applied it.
    Acked,
    /// A replica holds a newer version.
    Stale(Version),
    /// Fewer than W answered Applied before the deadline.
    Short { acked: usize },
}

/// One replica's answer, as the round counts it: only `Applied` counts toward W.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Applied,
    Stale(Version),
    /// Held by the replica but not counted (catching up): like a hint, durable
    /// somewhere and not toward W, so it needs no hint of its own.
    StoredNotCounted,
    /// No usable answer; `hint` unless nothing was applied (a stale-layout refusal).
    Failed {
        hint: bool,
    },
}

/// How a round takes one replica's reply to a one-item write (`None`: none before the
/// deadline). `refused_layout` says whether an error is a stale-layout refusal.
fn answer_of(
    reply: Option<Result<Vec<WriteOutcome>, ReplicaError>>,
    refused_layout: impl FnOnce(&ReplicaError) -> bool,
) -> Answer {
    match reply.map(|r| r.map(|mut o| o.pop())) {
        Some(Ok(Some(WriteOutcome::Applied))) => Answer::Applied,
        Some(Ok(Some(WriteOutcome::Stale { current }))) => Answer::Stale(current),
        Some(Ok(Some(WriteOutcome::StoredNotCounted))) => Answer::StoredNotCounted,
        // Refused for a stale layout: nothing applied, no hint.
        Some(Err(e)) if refused_layout(&e) => Answer::Failed { hint: false },
        // Failed, timed out (it may have applied), or answered nonsense.
        _ => Answer::Failed { hint: true },
    }
}

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
        let mut set = self.key_write_set(&key.key);
        let mut layout_retry = LayoutRetry::default();
        let quorum = |n| consistency.required(n, inner.config.write_quorum);
        if let Some((needed, alive)) = Tally::new(&set, quorum).unavailable() {
            return Err(ClusterError::Unavailable { needed, alive });
        }
        // A tombstone never expires: expiring it would bring back older values.
        let (body, expire_at) = match value {
            Some((ty, payload)) => (Body::Value { ty, payload }, expire_at),
            None => (Body::Tombstone, None),
        };
        // A write after a flush is ordered after it, even from a clock that is behind.
        let floor = inner.floors.floor(key.db);
        if floor > Version::ZERO {
            inner.clock.observe(floor);
        }
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
            // A blind write (an eventual database) replaces the record whole: no
            // request records there, IDEMPOTENT is refused (docs/consistency.md).
            let record = Record {
                version,
                expire_at,
                body: body.clone(),
                requests: Vec::new(),
                txn: Default::default(),
            };
            let item = WriteItem {
                key: key.clone(),
                record,
            };
            let tally = Tally::new(&set, quorum);
            let needed = tally.needed();
            let end = write_round(&set, &item, tally, deadline, &inner.hints).await;
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

/// Hints the final version of a write for the replicas it skipped, in the background.
pub(super) fn hint_skipped(set: &ReplicaSet, item: &WriteItem, hints: &HintStore) {
    for &node in &set.skipped {
        spawn_hint(hints.clone(), node, item.clone());
    }
}

pub(super) fn spawn_hint(hints: HintStore, node: NodeId, item: WriteItem) {
    tokio::spawn(async move {
        if let Err(e) = hints.store(node, item).await {
            tracing::warn!(target_node = %node, error = %e, "could not store a hint");
        }
    });
}

/// Sends `item` to every target at once and counts answers until every group has its
/// quorum of Applied, a Stale, or the end. Each send runs in its own task that outlives
/// the round, so a replica that fails after the reply still gets its hint.
pub(super) async fn write_round(
    set: &ReplicaSet,
    item: &WriteItem,
    mut tally: Tally,
    deadline: Instant,
    hints: &HintStore,
) -> RoundEnd {
    // Bounded by the number of targets: each task sends exactly one answer.
    let (tx, mut rx) = mpsc::unbounded_channel();
    for t in &set.live {
        let (tx, t, item, hints) = (tx.clone(), t.clone(), item.clone(), hints.clone());
        let refusals = set.refusals.clone();
        tokio::spawn(async move {
            let sent = tokio::time::timeout_at(deadline, t.api.write(vec![item.clone()])).await;
            let answer = answer_of(sent.ok(), |e| refusals.note(t.node, e));
            if answer == (Answer::Failed { hint: true }) {
                spawn_hint(hints, t.node, item);
            }
            // The round may have ended already; nobody needs this answer then.
            let _ = tx.send((t.node, answer));
        });
    }
    drop(tx);
    while let Some((node, answer)) = rx.recv().await {
        match answer {
            Answer::Applied => {
                if tally.yes(node) {
                    return RoundEnd::Acked;
                }
            }
            Answer::Stale(current) => return RoundEnd::Stale(current),
            Answer::StoredNotCounted | Answer::Failed { .. } => {}
        }
    }
    RoundEnd::Short {
        acked: tally.yes_count(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeId;

    fn one(o: WriteOutcome) -> Option<Result<Vec<WriteOutcome>, ReplicaError>> {
        Some(Ok(vec![o]))
    }

    #[test]
    fn only_applied_counts_and_stored_not_counted_needs_no_hint() {
        let never = |_: &ReplicaError| false;
        let current = Version {
            ts: 5 << 16,
            node: NodeId(2),
        };
        assert_eq!(
            answer_of(one(WriteOutcome::Applied), never),
            Answer::Applied
        );
        assert_eq!(
            answer_of(one(WriteOutcome::Stale { current }), never),
            Answer::Stale(current)
        );
        // A catching-up replica holds the write: not counted, and no hint either.
        assert_eq!(
            answer_of(one(WriteOutcome::StoredNotCounted), never),
            Answer::StoredNotCounted
        );
        // An older replica refusing for the same reason (FAILED_PRECONDITION), a lost
        // reply or a wrong count: not counted, hinted (it may lack the write).
        let failed = Answer::Failed { hint: true };
        assert_eq!(
            answer_of(Some(Err(ReplicaError::CatchingUp)), never),
            failed
        );
        assert_eq!(answer_of(None, never), failed);
        assert_eq!(answer_of(Some(Ok(vec![])), never), failed);
        let layout = Some(Err(ReplicaError::StaleLayout { version: 4 }));
        assert_eq!(answer_of(layout, |_| true), Answer::Failed { hint: false });
    }
}

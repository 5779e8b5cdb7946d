//! Read repair: after a quorum read, the replicas that answered an older record (or
//! none) are sent the merged newest one BEFORE the coordinator replies, so a client that
//! read a value never later reads an older one from those replicas. Awaited with the
//! request timeout; a failed repair does not fail the read, it is counted (anti-entropy
//! finishes the job).

use crate::coordinator::Coordinator;
use crate::quorum::Target;
use crate::replica_api::{ItemKey, WriteItem, WriteOutcome};
use crate::{NodeId, Record};
use std::sync::atomic::Ordering;
use tokio::task::JoinSet;

/// Whether a replica in `answers` holds something other than `newest` (older, or
/// nothing): the replicas [`repair_replicas`] writes to.
pub fn needs_repair(answers: &[(NodeId, Option<Record>)], newest: &Record) -> bool {
    answers.iter().any(|(_, held)| !holds(held, newest))
}

fn holds(held: &Option<Record>, newest: &Record) -> bool {
    held.as_ref().is_some_and(|r| r == newest)
}

/// Writes `newest` to each replica in `answers` whose record is older or missing, and
/// waits (at most the request timeout) for them. Returns how many were repaired.
pub async fn repair_replicas(
    coordinator: &Coordinator,
    targets: &[Target],
    key: &ItemKey,
    answers: &[(NodeId, Option<Record>)],
    newest: &Record,
) -> usize {
    let inner = &coordinator.inner;
    let mut repairs = JoinSet::new();
    for (node, held) in answers {
        if holds(held, newest) {
            continue;
        }
        let Some(t) = targets.iter().find(|t| t.node == *node) else {
            continue;
        };
        let item = WriteItem {
            key: key.clone(),
            record: newest.clone(),
        };
        let api = t.api.clone();
        repairs.spawn(tokio::time::timeout(
            inner.config.request_timeout,
            async move { api.write(vec![item]).await },
        ));
    }
    let mut repaired = 0;
    while let Some(done) = repairs.join_next().await {
        // Stale: the replica got something newer meanwhile, which is as good. Stored
        // but not counted (a catching-up replica): it holds the record, which is all a
        // repair needs.
        let ok = matches!(
            done.as_ref()
                .map(|r| r.as_ref().map(|w| w.as_ref().map(|o| o.first()))),
            Ok(Ok(Ok(Some(
                WriteOutcome::Applied | WriteOutcome::Stale { .. } | WriteOutcome::StoredNotCounted
            ))))
        );
        let counter = match ok {
            true => &inner.counters.read_repairs,
            false => &inner.counters.read_repair_failures,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        repaired += ok as usize;
    }
    repaired
}

//! One write round: versioned records sent to every live replica of their keys at once,
//! answers counted per record until each has its quorum of Applied, a Stale, or the end.
//! A round carries one record (a SET) or many (an MSET, a pipelined run of writes): each
//! replica gets all of its records in one request, so it applies them in one engine
//! batch (one WAL record) and the per-peer batching sends them in one RPC; each record
//! still has its own tally and its own outcome. Replicas skipped, failing or answering
//! late get a hint (which never counts toward W), and a replica catching up after an
//! unclean restart stores a write without counting toward W either
//! (cluster/src/catch_up.rs).

use super::layout_retry::Refusals;
use super::tally::Tally;
use super::write::spawn_hint;
use super::ReplicaSet;
use crate::hints::HintStore;
use crate::quorum::Target;
use crate::replica_api::{ReplicaError, WriteItem, WriteOutcome};
use crate::{NodeId, Version};
use futures::FutureExt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Context;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How one record's round ended.
pub(super) enum RoundEnd {
    /// W replicas applied it.
    Acked,
    /// A replica holds a newer version.
    Stale(Version),
    /// Fewer than W answered Applied before the deadline.
    Short { acked: usize },
}

/// One replica's answer about one record, as the round counts it: only `Applied` counts
/// toward W.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

impl From<WriteOutcome> for Answer {
    fn from(o: WriteOutcome) -> Answer {
        match o {
            WriteOutcome::Applied => Answer::Applied,
            WriteOutcome::Stale { current } => Answer::Stale(current),
            WriteOutcome::StoredNotCounted => Answer::StoredNotCounted,
        }
    }
}

/// How a round takes one replica's reply to a write of `asked` records (`None`: none
/// before the deadline): one answer per record. `refused_layout` says whether an error
/// is a stale-layout refusal.
fn answers_of(
    reply: Option<Result<Vec<WriteOutcome>, ReplicaError>>,
    asked: usize,
    refused_layout: impl FnOnce(&ReplicaError) -> bool,
) -> Vec<Answer> {
    let all = |a| vec![a; asked];
    match reply {
        Some(Ok(outcomes)) if outcomes.len() == asked => {
            outcomes.into_iter().map(Answer::from).collect()
        }
        // Refused for a stale layout: nothing applied, no hint.
        Some(Err(e)) if refused_layout(&e) => all(Answer::Failed { hint: false }),
        // Failed, timed out (it may have applied), or answered nonsense.
        _ => all(Answer::Failed { hint: true }),
    }
}

/// One record of a round: where it goes (its key's replica set) and how its answers
/// are counted.
pub(super) struct RoundItem<'a> {
    pub(super) set: &'a ReplicaSet,
    pub(super) item: WriteItem,
    pub(super) tally: Tally,
}

/// Sends every record to every live replica of its set at once, one request per
/// replica, and counts answers until every record has its quorum, a Stale, or the end
/// (one `RoundEnd` per record, in order). Every request outlives the round, so a
/// replica that fails after the reply still gets its hints: a peer's client takes it
/// onto its batcher with a callback ([`QueuedWrites`], no task per request), any other
/// replica's runs in a task of its own, and this node's own (`me`) in the round's task,
/// handed to a task of its own only if the round ends first ([`OwnRequest`]).
///
/// [`QueuedWrites`]: crate::replica_api::QueuedWrites
pub(super) async fn batch_round(
    items: Vec<RoundItem<'_>>,
    deadline: Instant,
    hints: &HintStore,
    me: NodeId,
) -> Vec<RoundEnd> {
    // Each replica with the records it holds, in order.
    let mut per_node: Vec<(Target, Vec<usize>)> = Vec::new();
    for (i, it) in items.iter().enumerate() {
        for t in &it.set.live {
            match per_node.iter_mut().find(|(p, _)| p.node == t.node) {
                Some((_, mine)) => mine.push(i),
                None => per_node.push((t.clone(), vec![i])),
            }
        }
    }
    let refusals_of: Vec<Vec<Arc<Refusals>>> = per_node
        .iter()
        .map(|(_, mine)| {
            mine.iter()
                .map(|&i| items[i].set.refusals.clone())
                .collect()
        })
        .collect();
    // The round's records, kept once for every replica's hints (a replica that fails
    // gets those of its records as hints); each replica's request is sent its own copy.
    let mut tallies: Vec<Tally> = Vec::with_capacity(items.len());
    let all: Arc<[WriteItem]> = items
        .into_iter()
        .map(|it| {
            tallies.push(it.tally);
            it.item
        })
        .collect();
    // Bounded by the number of replicas: each request sends exactly one message.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut own = OwnRequest(None);
    for ((t, mine), refusals) in per_node.into_iter().zip(refusals_of) {
        let records: Vec<WriteItem> = mine.iter().map(|&i| all[i].clone()).collect();
        let answer_to = (tx.clone(), hints.clone());
        let kept = Kept(all.clone(), mine);
        if t.node != me {
            if let Some(queue) = t.api.write_queue() {
                // A peer's client: the answer comes through a callback of its batcher,
                // no task of ours waits for it.
                let node = t.node;
                queue.write_then(
                    records,
                    Box::new(move |reply| {
                        take_answers(node, kept, refusals, answer_to, Some(reply))
                    }),
                );
                continue;
            }
        }
        let local = t.node == me && own.0.is_none();
        // The caller's mark, so this node's own replica may defer its WAL write.
        let request = crate::wal_deferral::carry(ask_replica(
            t, records, kept, refusals, answer_to, deadline,
        ));
        match local {
            true => own.0 = Some(Box::pin(request)),
            false => {
                tokio::spawn(request);
            }
        }
    }
    drop(tx);
    let mut ends: Vec<Option<RoundEnd>> = tallies.iter().map(|_| None).collect();
    let mut open = ends.len();
    while open > 0 {
        let next = std::future::poll_fn(|cx| {
            own.poll_here(cx);
            rx.poll_recv(cx)
        });
        // A peer's queued request answers within its client's own timeout, which may
        // end after this round's deadline: the round ends at its deadline regardless.
        let Ok(Some((node, mine, answers))) = tokio::time::timeout_at(deadline, next).await else {
            break;
        };
        for (i, answer) in mine.into_iter().zip(answers) {
            let end = match answer {
                _ if ends[i].is_some() => continue,
                Answer::Applied if tallies[i].yes(node) => RoundEnd::Acked,
                Answer::Stale(current) => RoundEnd::Stale(current),
                Answer::Applied | Answer::StoredNotCounted | Answer::Failed { .. } => continue,
            };
            ends[i] = Some(end);
            open -= 1;
        }
    }
    ends.into_iter()
        .zip(tallies)
        .map(|(end, tally)| {
            end.unwrap_or(RoundEnd::Short {
                acked: tally.yes_count(),
            })
        })
        .collect()
}

/// Where a replica's answers go: the round's channel, and the hints for a replica that
/// failed.
type AnswerTo = (
    mpsc::UnboundedSender<(NodeId, Vec<usize>, Vec<Answer>)>,
    HintStore,
);

/// A replica's records in a round: the round's records, and the indexes of this
/// replica's among them (the order its request sent them in).
struct Kept(Arc<[WriteItem]>, Vec<usize>);

/// One replica's request of a round, in a task (or, for this node's own replica, the
/// round's task): sends `records` (the round's records `kept`) and takes the reply, or
/// its absence at the deadline ([`take_answers`]).
async fn ask_replica(
    t: Target,
    records: Vec<WriteItem>,
    kept: Kept,
    refusals: Vec<Arc<Refusals>>,
    answer_to: AnswerTo,
    deadline: Instant,
) {
    // A request that panics counts as failed (it may have applied: hinted) instead of
    // ending the request before the hints below are written.
    let request = AssertUnwindSafe(t.api.write(records)).catch_unwind();
    let reply = match tokio::time::timeout_at(deadline, request).await {
        Ok(Ok(reply)) => Some(reply),
        Ok(Err(_)) | Err(_) => None,
    };
    take_answers(t.node, kept, refusals, answer_to, reply);
}

/// Takes `node`'s reply to a write of the records `kept` (`None`: none before the
/// deadline): notes a stale-layout refusal, hints each record the replica failed, and
/// sends the answers to the round (which may have ended: nobody needs them then).
fn take_answers(
    node: NodeId,
    Kept(all, mine): Kept,
    refusals: Vec<Arc<Refusals>>,
    (tx, hints): AnswerTo,
    reply: Option<Result<Vec<WriteOutcome>, ReplicaError>>,
) {
    let answers = answers_of(reply, mine.len(), |e| {
        // Every record's request notes the refusal (for its layout retry).
        refusals
            .iter()
            .fold(false, |seen, r| r.note(node, e) | seen)
    });
    for (&i, answer) in mine.iter().zip(&answers) {
        if *answer == (Answer::Failed { hint: true }) {
            spawn_hint(hints.clone(), node, all[i].clone());
        }
    }
    let _ = tx.send((node, mine, answers));
}

/// This node's own request of a round, polled by the round's task rather than spawned:
/// the local apply usually finishes on its first poll, and a task of its own cost a
/// spawn, the task's polls and one more wake-up of the round's task per write
/// (docs/performance.md, "The coordinator's own copy in the round's task"). A request
/// still running when the round ends (its quorum came from the peers) or is dropped
/// (the client went away) finishes in a task of its own, as a peer's does, so it
/// still applies or hints.
struct OwnRequest(Option<Pin<Box<dyn Future<Output = ()> + Send>>>);

impl OwnRequest {
    /// Polls the request, if it is still running, with the round's context.
    fn poll_here(&mut self, cx: &mut Context<'_>) {
        if let Some(request) = &mut self.0 {
            if request.as_mut().poll(cx).is_ready() {
                self.0 = None;
            }
        }
    }
}

impl Drop for OwnRequest {
    fn drop(&mut self) {
        if let Some(request) = self.0.take() {
            // Outside a runtime (shutting down) nothing could run it anyway.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(request);
            }
        }
    }
}

/// [`batch_round`] of one record.
pub(super) async fn write_round(
    set: &ReplicaSet,
    item: &WriteItem,
    tally: Tally,
    deadline: Instant,
    hints: &HintStore,
    me: NodeId,
) -> RoundEnd {
    let one = RoundItem {
        set,
        item: item.clone(),
        tally,
    };
    let mut ends = batch_round(vec![one], deadline, hints, me).await;
    ends.pop().unwrap_or(RoundEnd::Short { acked: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(o: WriteOutcome) -> Option<Result<Vec<WriteOutcome>, ReplicaError>> {
        Some(Ok(vec![o]))
    }

    fn answer_of(
        reply: Option<Result<Vec<WriteOutcome>, ReplicaError>>,
        refused_layout: impl FnOnce(&ReplicaError) -> bool,
    ) -> Answer {
        answers_of(reply, 1, refused_layout)[0]
    }

    /// A peer's answer can be taken outside any runtime: a batch's callback runs when
    /// the batch is dropped unanswered, which at shutdown may be on a thread the runtime
    /// has left. Taking a failure there must not panic (hint writing spawns a task).
    #[test]
    fn a_failure_taken_outside_a_runtime_is_answered_without_a_panic() {
        use crate::hints::{HintConfig, HintStore};
        let dir = tempfile::tempdir().unwrap();
        let db = kv_engine::Db::open(dir.path(), kv_engine::Options::default()).unwrap();
        let hints = HintStore::open(db, HintConfig::default()).unwrap();
        let item = WriteItem {
            key: crate::replica_api::ItemKey {
                db: 0,
                key: bytes::Bytes::from_static(b"k"),
            },
            record: crate::Record::tombstone(Version {
                ts: 1 << 16,
                node: NodeId(1),
            }),
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let kept = Kept(Arc::from(vec![item]), vec![0]);
        take_answers(NodeId(2), kept, vec![], (tx, hints), None);
        let (node, mine, answers) = rx.try_recv().expect("the round is answered");
        assert_eq!((node, mine), (NodeId(2), vec![0]));
        assert_eq!(answers, vec![Answer::Failed { hint: true }]);
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

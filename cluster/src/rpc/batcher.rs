//! Batching of replica requests to one peer under load (group commit on the wire). Up
//! to `max_rpcs` RPCs of one kind (writes, or reads) run at once per peer; requests that
//! arrive while they are all busy wait in a bounded queue and leave together in the next
//! RPC, so a loaded coordinator sends fewer, larger requests instead of one RPC per key.
//! An idle peer sees no added latency: the first request starts an RPC at once.
//!
//! Generic over the item (`WriteItem`, `ItemKey`) and its answer (`WriteOutcome`,
//! `Option<Record>`): the peer answers one per item, in order, and each caller gets
//! back the answers to its own items: on a channel it waits on ([`Batcher::enqueue`]),
//! or through a callback the flusher runs ([`Batcher::enqueue_then`]), for a caller
//! that does not wait (a write round's request to a peer, which needed a task of its
//! own to wait on the channel).

use crate::replica_api::ReplicaError;
use futures::FutureExt;
use parking_lot::Mutex;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// A callback for a waiter's answers.
pub(crate) type Done<O> = Box<dyn FnOnce(Result<Vec<O>, ReplicaError>) + Send>;

/// Where a waiter's answers go.
enum Reply<O> {
    /// A caller waiting on the channel's receiver.
    Waiting(oneshot::Sender<Result<Vec<O>, ReplicaError>>),
    /// A callback, run once.
    Then(Then<O>),
}

/// A callback that is run exactly once: with the answers, or, if its batch is dropped
/// unanswered (its flusher task dropped, as at runtime shutdown), with an error, as a
/// waiting caller sees its channel closed.
struct Then<O>(Option<Done<O>>);

impl<O> Drop for Then<O> {
    fn drop(&mut self) {
        if let Some(done) = self.0.take() {
            done(Err(abandoned()));
        }
    }
}

/// The error of a request whose batch was dropped unanswered.
fn abandoned() -> ReplicaError {
    ReplicaError::Failed("request batch abandoned".into())
}

impl<O> Reply<O> {
    fn send(self, result: Result<Vec<O>, ReplicaError>) {
        match self {
            // A waiter that gave up (timed out) is gone: nothing to tell.
            Reply::Waiting(tx) => {
                let _ = tx.send(result);
            }
            Reply::Then(mut then) => {
                if let Some(done) = then.0.take() {
                    done(result);
                }
            }
        }
    }
}

struct Waiter<I, O> {
    items: Vec<I>,
    reply: Reply<O>,
}

struct State<I, O> {
    queue: Vec<Waiter<I, O>>,
    queued_items: usize,
    rpcs: usize,
}

/// The queue and the count of RPCs in flight for one kind of request to one peer.
pub(crate) struct Batcher<I, O> {
    state: Mutex<State<I, O>>,
    max_rpcs: usize,
    max_queued: usize,
    max_batch: usize,
}

/// What [`Batcher::enqueue`] tells the caller.
pub(crate) struct Enqueued<O> {
    /// The answers to the caller's items, when their RPC is done.
    pub(crate) reply: oneshot::Receiver<Result<Vec<O>, ReplicaError>>,
    /// Whether the caller must start a flusher ([`Batcher::next_batch`] loop).
    pub(crate) start_flusher: bool,
}

/// One RPC's worth of items and, per waiter, how many are its own.
pub(crate) struct Batch<I, O> {
    pub(crate) items: Vec<I>,
    waiters: Vec<(usize, Reply<O>)>,
}

impl<I, O> Batcher<I, O> {
    /// At most `max_rpcs` RPCs at once, `max_queued` items waiting, `max_batch` items in
    /// one RPC (a single larger request still goes alone).
    pub(crate) fn new(max_rpcs: usize, max_queued: usize, max_batch: usize) -> Batcher<I, O> {
        Batcher {
            state: Mutex::new(State {
                queue: Vec::new(),
                queued_items: 0,
                rpcs: 0,
            }),
            max_rpcs: max_rpcs.max(1),
            max_queued,
            max_batch: max_batch.max(1),
        }
    }

    /// Queues a request; `Overloaded` when the queue is full (never a growing queue).
    pub(crate) fn enqueue(&self, items: Vec<I>) -> Result<Enqueued<O>, ReplicaError> {
        let (tx, rx) = oneshot::channel();
        match self.push(items, Reply::Waiting(tx)) {
            Ok(start_flusher) => Ok(Enqueued {
                reply: rx,
                start_flusher,
            }),
            Err((e, _)) => Err(e),
        }
    }

    /// Queues a request whose answers go to `done`, which a flusher runs (or this call,
    /// with `Overloaded`, when the queue is full). Returns whether the caller must start
    /// a flusher.
    pub(crate) fn enqueue_then(&self, items: Vec<I>, done: Done<O>) -> bool {
        match self.push(items, Reply::Then(Then(Some(done)))) {
            Ok(start_flusher) => start_flusher,
            Err((e, reply)) => {
                reply.send(Err(e));
                false
            }
        }
    }

    /// Queues `items` and waits for their answers, `timeout` covering the wait and the
    /// RPC; runs `start_flusher` when this caller must start one ([`spawn_flusher`]: in
    /// a task of its own, so a caller that gives up never strands the queue).
    pub(crate) async fn call(
        &self,
        items: Vec<I>,
        timeout: Duration,
        start_flusher: impl FnOnce(),
    ) -> Result<Vec<O>, ReplicaError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let queued = self.enqueue(items)?;
        if queued.start_flusher {
            start_flusher();
        }
        match tokio::time::timeout(timeout, queued.reply).await {
            Err(_) => Err(ReplicaError::Timeout),
            Ok(Err(_)) => Err(abandoned()),
            Ok(Ok(result)) => result,
        }
    }

    /// Queues `items` with `done` for their answers ([`Batcher::enqueue_then`]; no items:
    /// answered at once) and runs `start_flusher` when this caller must start one.
    pub(crate) fn call_then(&self, items: Vec<I>, done: Done<O>, start_flusher: impl FnOnce()) {
        if items.is_empty() {
            return done(Ok(Vec::new()));
        }
        if self.enqueue_then(items, done) {
            start_flusher();
        }
    }

    /// Queues a waiter; whether to start a flusher, or the refusal and the reply back.
    fn push(&self, items: Vec<I>, reply: Reply<O>) -> Result<bool, (ReplicaError, Reply<O>)> {
        let mut st = self.state.lock();
        if st.queued_items + items.len() > self.max_queued && !st.queue.is_empty() {
            return Err((ReplicaError::Overloaded, reply));
        }
        st.queued_items += items.len();
        st.queue.push(Waiter { items, reply });
        let start_flusher = st.rpcs < self.max_rpcs;
        if start_flusher {
            st.rpcs += 1;
        }
        Ok(start_flusher)
    }

    /// The next batch for a flusher, or `None` (and the flusher ends) when the queue is
    /// empty.
    pub(crate) fn next_batch(&self) -> Option<Batch<I, O>> {
        let mut st = self.state.lock();
        if st.queue.is_empty() {
            st.rpcs -= 1;
            return None;
        }
        let mut taken = 0;
        let mut n = 0;
        for w in &st.queue {
            if n > 0 && taken + w.items.len() > self.max_batch {
                break;
            }
            taken += w.items.len();
            n += 1;
        }
        st.queued_items -= taken;
        let mut items = Vec::with_capacity(taken);
        let mut waiters = Vec::with_capacity(n);
        for w in st.queue.drain(..n) {
            waiters.push((w.items.len(), w.reply));
            items.extend(w.items);
        }
        Some(Batch { items, waiters })
    }

    /// Items waiting (tests).
    #[cfg(test)]
    pub(crate) fn queued_items(&self) -> usize {
        self.state.lock().queued_items
    }
}

/// Starts a flusher, as [`Batcher::enqueue`] or [`Batcher::enqueue_then`] asked: a task
/// that sends `batcher`'s queued items until the queue is empty, one batch at a time,
/// each with `send(items, requests)` (`requests`: how many callers' items the batch
/// carries), and hands each waiter its answers. A send that panics fails its batch's
/// waiters and the flusher goes on: a flusher that died would keep its slot among the
/// `max_rpcs` for good, and after that many the queue would fill and never drain.
pub(crate) fn spawn_flusher<I, O, F, Fut>(batcher: Arc<Batcher<I, O>>, send: F)
where
    I: Send + 'static,
    O: Send + 'static,
    F: Fn(Vec<I>, usize) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Vec<O>, ReplicaError>> + Send,
{
    tokio::spawn(async move {
        while let Some(mut batch) = batcher.next_batch() {
            let items = std::mem::take(&mut batch.items);
            let requests = batch.waiters.len();
            let sent = AssertUnwindSafe(send(items, requests)).catch_unwind().await;
            batch.answer(sent.unwrap_or_else(|_| Err(send_panicked())));
        }
    });
}

/// The error of a request whose batch's send panicked.
fn send_panicked() -> ReplicaError {
    ReplicaError::Failed("request batch send panicked".into())
}

impl<I, O> Batch<I, O> {
    /// Hands each waiter its share of the answers (or the error).
    pub(crate) fn answer(self, result: Result<Vec<O>, ReplicaError>) {
        match result {
            Ok(answers) => {
                let mut rest = answers.into_iter();
                for (n, reply) in self.waiters {
                    reply.send(Ok(rest.by_ref().take(n).collect()));
                }
            }
            Err(e) => {
                for (_, reply) in self.waiters {
                    reply.send(Err(e.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replica_api::{ItemKey, WriteItem, WriteOutcome};
    use crate::{NodeId, Record, Version};
    use bytes::Bytes;
    use std::sync::Arc;

    fn items(n: usize) -> Vec<WriteItem> {
        (0..n)
            .map(|i| WriteItem {
                key: ItemKey {
                    db: 0,
                    key: Bytes::from(format!("k{i}")),
                },
                record: Record::tombstone(Version {
                    ts: i as u64,
                    node: NodeId(1),
                }),
            })
            .collect()
    }

    type WriteBatcher = Batcher<WriteItem, WriteOutcome>;

    #[test]
    fn batches_split_outcomes_back_in_order() {
        let b = WriteBatcher::new(1, 100, 100);
        let first = b.enqueue(items(1)).unwrap();
        assert!(first.start_flusher);
        let second = b.enqueue(items(2)).unwrap();
        let third = b.enqueue(items(3)).unwrap();
        assert!(
            !second.start_flusher && !third.start_flusher,
            "one RPC at most"
        );
        let batch = b.next_batch().unwrap();
        assert_eq!(batch.items.len(), 6);
        let current = Version::ZERO;
        let outcomes: Vec<_> = (0..6)
            .map(|i| {
                if i % 2 == 0 {
                    WriteOutcome::Applied
                } else {
                    WriteOutcome::Stale { current }
                }
            })
            .collect();
        batch.answer(Ok(outcomes.clone()));
        let mut r1 = first.reply;
        let mut r2 = second.reply;
        let mut r3 = third.reply;
        assert_eq!(r1.try_recv().unwrap().unwrap(), outcomes[..1]);
        assert_eq!(r2.try_recv().unwrap().unwrap(), outcomes[1..3]);
        assert_eq!(r3.try_recv().unwrap().unwrap(), outcomes[3..]);
        assert!(
            b.next_batch().is_none(),
            "the flusher ends on an empty queue"
        );
        assert!(
            b.enqueue(items(1)).unwrap().start_flusher,
            "and a new one starts"
        );
    }

    #[test]
    fn bounds_batch_size_and_queue() {
        let b = WriteBatcher::new(1, 5, 3);
        let _a = b.enqueue(items(2)).unwrap();
        let _b = b.enqueue(items(2)).unwrap();
        assert_eq!(b.enqueue(items(2)).err(), Some(ReplicaError::Overloaded));
        let batch = b.next_batch().unwrap();
        assert_eq!(batch.items.len(), 2, "a batch stays within max_batch");
        batch.answer(Err(ReplicaError::Timeout));
        assert_eq!(b.queued_items(), 2);
        // A single write larger than a batch still goes, alone.
        let b = WriteBatcher::new(1, 100, 3);
        let _big = b.enqueue(items(10)).unwrap();
        assert_eq!(b.next_batch().unwrap().items.len(), 10);
    }

    /// What a recording callback was given, in order.
    type Seen = Arc<Mutex<Vec<Result<Vec<WriteOutcome>, ReplicaError>>>>;

    /// A callback that stores what it was given.
    fn recorder() -> (Done<WriteOutcome>, Seen) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let into = seen.clone();
        (Box::new(move |r| into.lock().push(r)), seen)
    }

    #[test]
    fn callbacks_get_their_share_beside_waiters() {
        let b = WriteBatcher::new(1, 100, 100);
        let (done, seen) = recorder();
        assert!(b.enqueue_then(items(2), done), "the first starts a flusher");
        let waiting = b.enqueue(items(1)).unwrap();
        assert!(!waiting.start_flusher);
        assert!(seen.lock().is_empty(), "nothing runs before the answer");
        let batch = b.next_batch().unwrap();
        let stale = WriteOutcome::Stale {
            current: Version::ZERO,
        };
        batch.answer(Ok(vec![
            WriteOutcome::Applied,
            stale,
            WriteOutcome::Applied,
        ]));
        assert_eq!(
            *seen.lock(),
            vec![Ok(vec![WriteOutcome::Applied, stale])],
            "run once, with its own two answers"
        );
        let mut r = waiting.reply;
        assert_eq!(r.try_recv().unwrap().unwrap(), vec![WriteOutcome::Applied]);
    }

    #[test]
    fn a_callback_runs_once_when_refused_or_abandoned() {
        let b = WriteBatcher::new(1, 2, 100);
        let _queued = b.enqueue(items(2)).unwrap();
        let (done, seen) = recorder();
        assert!(!b.enqueue_then(items(1), done));
        assert_eq!(
            *seen.lock(),
            vec![Err(ReplicaError::Overloaded)],
            "a full queue answers at once"
        );
        let b = WriteBatcher::new(1, 100, 100);
        let (done, seen) = recorder();
        b.enqueue_then(items(1), done);
        drop(b.next_batch().unwrap());
        assert_eq!(
            *seen.lock(),
            vec![Err(abandoned())],
            "a batch dropped unanswered (a flusher that panicked) still answers"
        );
        drop(b);
        assert_eq!(seen.lock().len(), 1, "and only once");
    }

    #[test]
    fn errors_reach_every_waiter() {
        let b = WriteBatcher::new(1, 100, 100);
        let mut x = b.enqueue(items(1)).unwrap().reply;
        let mut y = b.enqueue(items(1)).unwrap().reply;
        b.next_batch().unwrap().answer(Err(ReplicaError::Timeout));
        assert_eq!(x.try_recv().unwrap(), Err(ReplicaError::Timeout));
        assert_eq!(y.try_recv().unwrap(), Err(ReplicaError::Timeout));
    }

    /// `call` starts the flusher it is told to start and gets its answers from it, with
    /// how many requests the batch carried; an empty call or `call_then` starts nothing and
    /// answers at once; a call nobody flushes ends at its timeout (virtual time).
    #[tokio::test(start_paused = true)]
    async fn a_call_waits_on_the_flusher_it_starts_and_an_empty_one_starts_none() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let b = Arc::new(WriteBatcher::new(1, 100, 100));
        let requests_seen = Arc::new(AtomicUsize::new(0));
        let started = AtomicUsize::new(0);
        let into = requests_seen.clone();
        let answers = b
            .call(items(2), Duration::from_secs(5), || {
                started.fetch_add(1, Ordering::Relaxed);
                spawn_flusher(b.clone(), move |items, requests| {
                    into.fetch_add(requests, Ordering::Relaxed);
                    async move { Ok(vec![WriteOutcome::Applied; items.len()]) }
                });
            })
            .await;
        assert_eq!(answers, Ok(vec![WriteOutcome::Applied; 2]));
        assert_eq!(started.load(Ordering::Relaxed), 1);
        assert_eq!(requests_seen.load(Ordering::Relaxed), 1);

        let empty = b
            .call(Vec::new(), Duration::from_secs(5), || {
                panic!("a flusher for nothing")
            })
            .await;
        assert_eq!(empty, Ok(Vec::new()));
        let (done, seen) = recorder();
        b.call_then(Vec::new(), done, || panic!("a flusher for nothing"));
        assert_eq!(*seen.lock(), vec![Ok(Vec::new())]);

        let unflushed = WriteBatcher::new(1, 100, 100);
        let timed_out = unflushed
            .call(items(1), Duration::from_secs(2), || {})
            .await;
        assert_eq!(timed_out, Err(ReplicaError::Timeout));
    }

    /// A flusher whose send panics answers that batch's waiters with an error and keeps
    /// its slot working: with one RPC at a time, a later call still gets its answers.
    /// (Before, the panic ended the flusher with its slot taken, and every later call
    /// queued behind it until its timeout.)
    #[tokio::test(start_paused = true)]
    async fn a_send_that_panics_fails_its_batch_and_the_queue_still_drains() {
        let b = Arc::new(WriteBatcher::new(1, 100, 100));
        let start = |b: &Arc<WriteBatcher>| {
            spawn_flusher(b.clone(), |items: Vec<WriteItem>, _| async move {
                assert!(items.len() != 3, "a send that panics on three items");
                Ok(vec![WriteOutcome::Applied; items.len()])
            })
        };
        let failed = b.call(items(3), Duration::from_secs(5), || start(&b)).await;
        assert_eq!(failed, Err(send_panicked()));
        let answered = b.call(items(2), Duration::from_secs(5), || start(&b)).await;
        assert_eq!(answered, Ok(vec![WriteOutcome::Applied; 2]));
    }
}

//! Reads of many keys at once (a pipeline's run of reads, a multi-key read): per key the
//! rules of [`Coordinator::get`] (R answers in preference order, the next replica for
//! each one that fails or times out, the newest record wins, read repair before the
//! reply), but one request per replica node carries every key that node is asked for,
//! all under one deadline, instead of one request and one timer per key and replica.
//! A pipeline of 16 GETs thus costs two or three replica requests, not 32 (the
//! batcher, rpc/batcher.rs, already put the remote ones in one frame, but each still
//! had its own future, timer and answer to route).

use super::{Coordinator, NodeLookups, ReplicaSet};
use crate::quorum::{ClusterError, Consistency};
use crate::read_repair::{needs_repair, repair_replicas};
use crate::replica_api::{ItemKey, ReplicaApi};
use crate::{NodeId, Record};
use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use tokio::time::Instant;

/// Keys one request carries at most: the bound the per-peer batcher puts on a frame of
/// single reads (`max_batch_items` is 1024) is not lowered, and an MGET of many keys
/// does not become one huge frame per node.
const KEYS_PER_REQUEST: usize = 256;

/// One key's progress through its replicas.
struct KeyRead {
    /// Answers wanted (R for QUORUM).
    needed: usize,
    /// The next replica of the key's set to ask.
    next: usize,
    /// Requests asked and not answered yet.
    in_flight: usize,
    answers: Vec<(NodeId, Option<Record>)>,
}

impl KeyRead {
    fn complete(&self) -> bool {
        self.answers.len() >= self.needed
    }
}

/// What is left of a key's read once its answers are in.
enum Finish {
    /// A replica refused for a newer layout: read the key again by `get`.
    ReadAgain,
    /// Replicas answered something older than the newest (these answers): write it back
    /// to them before the reply.
    Repair(Vec<(NodeId, Option<Record>)>, Record),
}

/// Keys (by index) to ask each node for, with its endpoint.
type Asks = BTreeMap<NodeId, (Arc<dyn ReplicaApi>, Vec<usize>)>;

impl Coordinator {
    /// The newest record of each of `keys` (in order), as [`Coordinator::get`] would
    /// answer for each. A key whose replicas refused for a newer layout is read again
    /// alone, by `get`, which follows the newer layout.
    pub async fn get_many(
        &self,
        keys: &[ItemKey],
        consistency: Consistency,
    ) -> Vec<Result<Option<Record>, ClusterError>> {
        match keys {
            [] => return Vec::new(),
            // One key (a GET outside a pipeline): the single read's path, without this
            // one's per-node maps and index vectors.
            [key] => return vec![self.get(key.clone(), consistency).await],
            _ => {}
        }
        let mut seen = NodeLookups::default();
        let sets: Vec<ReplicaSet> = keys
            .iter()
            .map(|k| self.key_replicas_among(&k.key, Some(&mut seen)))
            .collect();
        let answered = self.ask_many(keys, &sets, consistency).await;
        // Most keys are done once their answers are merged; only those that need a
        // repair, or a read on a newer layout, are awaited (together), so a pipeline of
        // reads of settled keys builds no future per key.
        let mut results = Vec::with_capacity(keys.len());
        let mut unfinished = Vec::new();
        for (i, ((key, set), answered)) in keys.iter().zip(&sets).zip(answered).enumerate() {
            if set.refusals.seen() {
                unfinished.push((i, Finish::ReadAgain));
                results.push(Ok(None));
                continue;
            }
            let answers = match answered {
                Ok(answers) => answers,
                Err(e) => {
                    results.push(Err(e));
                    continue;
                }
            };
            let (answers, newest) = self.merge_answers(key, answers);
            if let Some(newest) = &newest {
                if needs_repair(&answers, newest) {
                    unfinished.push((i, Finish::Repair(answers, newest.clone())));
                }
            }
            results.push(Ok(newest));
        }
        if unfinished.is_empty() {
            return results;
        }
        let finishing = unfinished.into_iter().map(|(i, finish)| {
            let (key, set) = (&keys[i], &sets[i]);
            async move {
                match finish {
                    Finish::ReadAgain => Some((i, self.get(key.clone(), consistency).await)),
                    Finish::Repair(answers, newest) => {
                        repair_replicas(self, &set.live, key, &answers, &newest).await;
                        None
                    }
                }
            }
        });
        for (i, read) in futures::future::join_all(finishing)
            .await
            .into_iter()
            .flatten()
        {
            results[i] = read;
        }
        results
    }

    /// Asks each key's replicas in preference order, `needed` at a time, the next one
    /// for each that fails or times out; the requests of one round go one per node.
    /// Per key: its answers, or why it has too few.
    async fn ask_many(
        &self,
        keys: &[ItemKey],
        sets: &[ReplicaSet],
        consistency: Consistency,
    ) -> Vec<Result<Vec<(NodeId, Option<Record>)>, ClusterError>> {
        let inner = &self.inner;
        let deadline = Instant::now() + inner.config.request_timeout;
        let mut reads: Vec<KeyRead> = sets
            .iter()
            .map(|set| KeyRead {
                needed: consistency.required(set.n, inner.config.read_quorum),
                next: 0,
                in_flight: 0,
                answers: Vec::new(),
            })
            .collect();
        let mut asks = Asks::new();
        let mut open = 0;
        for (i, read) in reads.iter_mut().enumerate() {
            if sets[i].live.len() < read.needed {
                continue; // Unavailable, below
            }
            open += 1;
            for _ in 0..read.needed {
                ask_next(&mut asks, read, &sets[i], i);
            }
        }
        let mut in_flight = FuturesUnordered::new();
        let send = |in_flight: &mut FuturesUnordered<_>, asks: &mut Asks| {
            for (node, (api, idxs)) in std::mem::take(asks) {
                for idxs in idxs.chunks(KEYS_PER_REQUEST) {
                    let idxs = idxs.to_vec();
                    let batch: Vec<ItemKey> = idxs.iter().map(|&i| keys[i].clone()).collect();
                    let api = api.clone();
                    let read =
                        AssertUnwindSafe(async move { api.read(batch).await }).catch_unwind();
                    in_flight.push(async move {
                        (node, idxs, tokio::time::timeout_at(deadline, read).await)
                    });
                }
            }
        };
        send(&mut in_flight, &mut asks);
        while open > 0 {
            let Some((node, idxs, answer)) = in_flight.next().await else {
                break;
            };
            let mut records = match answer {
                Ok(Ok(Ok(records))) if records.len() == idxs.len() => Some(records),
                Ok(Ok(Err(e))) => {
                    for &i in &idxs {
                        sets[i].refusals.note(node, &e);
                    }
                    None
                }
                // Timed out, panicked, or the wrong number of records.
                _ => None,
            };
            for (pos, &i) in idxs.iter().enumerate() {
                let read = &mut reads[i];
                read.in_flight -= 1;
                let was_complete = read.complete();
                // `None`: this node failed for the key (`Some(None)`: it holds nothing).
                let answer = records.as_mut().map(|r| r[pos].take());
                match answer {
                    Some(record) if !was_complete => read.answers.push((node, record)),
                    Some(_) => {}
                    // Its next replica in preference order.
                    None if !was_complete && read.next < sets[i].live.len() => {
                        ask_next(&mut asks, read, &sets[i], i)
                    }
                    None => {}
                }
                // Done: answered, or no request of it is left to answer.
                if !was_complete && (read.complete() || read.in_flight == 0) {
                    open -= 1;
                }
            }
            send(&mut in_flight, &mut asks);
        }
        reads
            .into_iter()
            .zip(sets)
            .map(|(read, set)| {
                if set.live.len() < read.needed {
                    Err(ClusterError::Unavailable {
                        needed: read.needed,
                        alive: set.live.len(),
                    })
                } else if read.complete() {
                    Ok(read.answers)
                } else {
                    Err(ClusterError::Timeout {
                        acked: read.answers.len(),
                        needed: read.needed,
                    })
                }
            })
            .collect()
    }
}

/// Adds key `i`'s next replica to this round's requests.
fn ask_next(asks: &mut Asks, read: &mut KeyRead, set: &ReplicaSet, i: usize) {
    let target = &set.live[read.next];
    read.next += 1;
    read.in_flight += 1;
    asks.entry(target.node)
        .or_insert_with(|| (target.api.clone(), Vec::new()))
        .1
        .push(i);
}

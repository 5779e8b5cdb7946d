//! Several blind writes in one round (an MSET, a DEL of many keys, a pipelined run of
//! SETs): every key gets its own version, tally and outcome, as with one
//! [`Coordinator::put`] per key, but each replica gets all of its records in one request
//! (round.rs), so it applies them in one engine batch and the per-peer batching sends
//! them in one RPC, and this node writes its own copies with one WAL record. A key whose
//! round ends Stale (a replica holds a newer version) or refused for a stale layout is
//! written again alone by [`Coordinator::put`], which retries both; the others' outcomes
//! stand. No atomicity across keys: each key succeeds or fails on its own.

use super::multi::{last_per_key, KeyWrite};
use super::round::{batch_round, RoundEnd, RoundItem};
use super::tally::Tally;
use super::write::{blind_write, body_of, hint_skipped};
use super::{Coordinator, NodeLookups};
use crate::quorum::{ClusterError, Consistency};
use crate::record_size::check_body;
use crate::replica_api::WriteItem;
use crate::Version;
use futures::future::join_all;
use std::sync::atomic::Ordering;
use tokio::time::Instant;

/// Keys of one round at most: a larger request runs as several rounds, one after
/// another, so one client's huge MSET bounds what it holds in flight.
pub const MAX_KEYS_PER_ROUND: usize = 512;

impl Coordinator {
    /// Writes each key (`None` deletes) with its own version in as few rounds as it
    /// can; one result per write, in order. A key named twice is written once with its
    /// last value, and both positions report that write's result.
    pub async fn put_batch(
        &self,
        writes: Vec<KeyWrite>,
        consistency: Consistency,
    ) -> Vec<Result<Version, ClusterError>> {
        let (unique, result_of) = last_per_key(writes, |w| &w.0);
        let mut results = Vec::with_capacity(unique.len());
        let mut rest = unique.into_iter();
        loop {
            let chunk: Vec<KeyWrite> = rest.by_ref().take(MAX_KEYS_PER_ROUND).collect();
            if chunk.is_empty() {
                break;
            }
            results.extend(self.put_distinct(chunk, consistency).await);
        }
        result_of.into_iter().map(|i| results[i].clone()).collect()
    }

    /// [`Coordinator::put_batch`] of distinct keys, one round.
    async fn put_distinct(
        &self,
        writes: Vec<KeyWrite>,
        consistency: Consistency,
    ) -> Vec<Result<Version, ClusterError>> {
        let inner = &self.inner;
        let quorum = |n| consistency.required(n, inner.config.write_quorum);
        let deadline = Instant::now() + inner.config.request_timeout;
        let mut seen = NodeLookups::default();
        let sets: Vec<_> = writes
            .iter()
            .map(|w| self.key_write_set_among(&w.0.key, Some(&mut seen)))
            .collect();
        let mut results: Vec<Option<Result<Version, ClusterError>>> =
            writes.iter().map(|_| None).collect();
        let mut round = Vec::with_capacity(writes.len());
        let mut sent: Vec<(usize, WriteItem, usize)> = Vec::with_capacity(writes.len());
        for (i, (key, value, expire_at)) in writes.iter().enumerate() {
            let (body, expire_at) = body_of(value.clone(), *expire_at);
            if let Err(e) = check_body(&key.key, &body) {
                results[i] = Some(Err(e));
                continue;
            }
            let tally = Tally::new(&sets[i], quorum);
            if let Some((needed, alive)) = tally.unavailable() {
                results[i] = Some(Err(ClusterError::Unavailable { needed, alive }));
                continue;
            }
            self.observe_flush_floor(key.db);
            let version = match inner.clock.next() {
                Ok(v) => v,
                Err(e) => {
                    results[i] = Some(Err(ClusterError::Clock(e)));
                    continue;
                }
            };
            let item = blind_write(key, version, &body, expire_at);
            sent.push((i, item.clone(), tally.needed()));
            round.push(RoundItem {
                set: &sets[i],
                item,
                tally,
            });
        }
        let ends = batch_round(round, deadline, &inner.hints, inner.me).await;
        let mut again = Vec::new();
        for ((i, item, needed), end) in sent.into_iter().zip(ends) {
            let result = match end {
                RoundEnd::Acked => Ok(item.record.version),
                // Written again alone: put() moves past the newer version (or fetches the
                // newer layout) and hints the skipped replicas with its final version.
                RoundEnd::Stale(current) => {
                    inner.clock.observe(current);
                    inner.counters.stale_retries.fetch_add(1, Ordering::Relaxed);
                    again.push(i);
                    continue;
                }
                RoundEnd::Short { .. } if sets[i].refusals.seen() => {
                    again.push(i);
                    continue;
                }
                RoundEnd::Short { acked } => Err(ClusterError::Timeout { acked, needed }),
            };
            // Sent: the write may land, so the skipped replicas get it too.
            hint_skipped(&sets[i], &item, &inner.hints);
            results[i] = Some(result);
        }
        let retried = join_all(again.iter().map(|&i| {
            let (key, value, expire_at) = writes[i].clone();
            self.put(key, value, expire_at, consistency)
        }))
        .await;
        for (i, result) in again.into_iter().zip(retried) {
            results[i] = Some(result);
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(ClusterError::Protocol("write not run".into()))))
            .collect()
    }
}

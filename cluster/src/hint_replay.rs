//! Hint replay: a background task that, each round, drops hints past their age bound
//! and sends every `Up` target its hints oldest first, in batches, through the ordinary
//! replica write. A hint is deleted once the target answers Applied or Stale (Stale: it
//! already holds something at least as new). The first failure stops that target until
//! the next round. Traffic is throttled by the byte budget shared with anti-entropy.

use crate::hints::{Hint, HintError, HintStore, Removal};
use crate::replica_api::{Liveness, PeerState, ReplicaApi, Replicas};
use crate::NodeId;
use kv_keyspace::slot::key_partition;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Hint replay settings.
#[derive(Debug, Clone)]
pub struct HintReplayConfig {
    /// Pause between rounds.
    pub interval: Duration,
    /// Hints sent in one replica write.
    pub batch_items: usize,
    /// Deadline of one batch.
    pub request_timeout: Duration,
}

impl Default for HintReplayConfig {
    fn default() -> Self {
        HintReplayConfig {
            // Gossip marks a peer Up within about a second; replay follows soon after.
            interval: Duration::from_secs(1),
            batch_items: 64,
            request_timeout: Duration::from_secs(2),
        }
    }
}

/// A token bucket of bytes per second for all background traffic (hint replay,
/// anti-entropy): one shared instance per node. A spender may overdraw by one batch;
/// the next waits until the bucket is positive again, so big batches still progress.
pub struct ByteBudget {
    bytes_per_sec: u64,
    state: Mutex<(f64, Instant)>,
    spent: std::sync::atomic::AtomicU64,
}

impl ByteBudget {
    /// A budget of `bytes_per_sec` (0 = unlimited), starting with one second's worth.
    pub fn new(bytes_per_sec: u64) -> Arc<ByteBudget> {
        Arc::new(ByteBudget {
            bytes_per_sec,
            state: Mutex::new((bytes_per_sec as f64, Instant::now())),
            spent: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Bytes spent so far (also when unlimited): what background traffic has cost.
    pub fn spent(&self) -> u64 {
        self.spent.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits until `bytes` may be sent, then takes them from the bucket.
    pub async fn spend(&self, bytes: u64) {
        self.spent
            .fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
        if self.bytes_per_sec == 0 {
            return;
        }
        let rate = self.bytes_per_sec as f64;
        loop {
            let wait = {
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                let refill = now.duration_since(state.1).as_secs_f64() * rate;
                // At most one second of burst.
                state.0 = (state.0 + refill).min(rate);
                state.1 = now;
                if state.0 > 0.0 {
                    state.0 -= bytes as f64;
                    return;
                }
                Duration::from_secs_f64(-state.0 / rate)
            };
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }
}

/// What one replay round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplayReport {
    /// Hints delivered (and deleted).
    pub delivered: u64,
    /// Targets whose replay stopped on an error (retried next round).
    pub stopped: u64,
}

/// Whether a node holds (or is receiving) a partition, by the replaying node's layout:
/// `Layout::holders`. Without a layout, every node holds everything.
pub type Holds<'a> = &'a (dyn Fn(NodeId, u16) -> bool + Send + Sync);

/// Runs one round: expire old hints, then deliver to every target that is `Up`. Hints
/// of a partition their target no longer holds (`holds`) are dropped, not delivered: a
/// layout change moved the partition to replicas that received it by streaming and by
/// the writes of the change, and a delivered hint would leave a record on a node that
/// already deleted that partition and never reads or deletes it again.
pub async fn replay_round(
    hints: &HintStore,
    replicas: &dyn Replicas,
    liveness: &dyn Liveness,
    budget: &ByteBudget,
    config: &HintReplayConfig,
    holds: Holds<'_>,
) -> ReplayReport {
    let mut report = ReplayReport::default();
    if let Err(e) = hints.expire().await {
        tracing::warn!(error = %e, "could not expire hints");
    }
    for target in hints.targets() {
        if liveness.state(target) != PeerState::Up {
            continue;
        }
        let Some(api) = replicas.replica(target) else {
            continue;
        };
        match deliver(hints, target, api.as_ref(), budget, config, holds).await {
            Ok(n) => report.delivered += n,
            Err(n) => {
                report.delivered += n;
                report.stopped += 1;
            }
        }
    }
    report
}

/// Sends `target` its hints, oldest first, until none is left (`Ok`) or one batch
/// fails (`Err`); either way the count delivered.
async fn deliver(
    hints: &HintStore,
    target: NodeId,
    api: &dyn ReplicaApi,
    budget: &ByteBudget,
    config: &HintReplayConfig,
    holds: Holds<'_>,
) -> Result<u64, u64> {
    let mut delivered = 0;
    loop {
        let batch = hints
            .pending(target, config.batch_items.max(1))
            .await
            .map_err(|e| log_stop(target, &e, delivered))?;
        if batch.is_empty() {
            return Ok(delivered);
        }
        let (batch, obsolete): (Vec<Hint>, Vec<Hint>) = batch
            .into_iter()
            .partition(|h| holds(target, key_partition(&h.item.key.key)));
        if !obsolete.is_empty() {
            let seqs = obsolete.iter().map(|h| h.seq).collect();
            hints
                .remove(target, seqs, Removal::Obsolete)
                .await
                .map_err(|e| log_stop(target, &e, delivered))?;
            continue;
        }
        budget.spend(batch.iter().map(|h| h.bytes).sum()).await;
        let seqs: Vec<u64> = batch.iter().map(|h| h.seq).collect();
        let items = batch.into_iter().map(|h| h.item).collect();
        let sent = tokio::time::timeout(config.request_timeout, api.write(items)).await;
        // Every outcome (Applied or Stale) means the target holds the write or newer.
        match sent {
            Ok(Ok(outcomes)) if outcomes.len() == seqs.len() => {}
            _ => {
                tracing::debug!(target_node = %target, "hint replay stopped until next round");
                return Err(delivered);
            }
        }
        let n = seqs.len() as u64;
        hints
            .remove(target, seqs, Removal::Delivered)
            .await
            .map_err(|e| log_stop(target, &e, delivered))?;
        delivered += n;
    }
}

fn log_stop(target: NodeId, e: &HintError, delivered: u64) -> u64 {
    tracing::warn!(target_node = %target, error = %e, "hint replay stopped");
    delivered
}

/// Runs [`replay_round`] every `config.interval` until `shutdown` turns true.
pub fn spawn_hint_replay(
    hints: HintStore,
    replicas: Arc<dyn Replicas>,
    liveness: Arc<dyn Liveness>,
    budget: Arc<ByteBudget>,
    config: HintReplayConfig,
    holds: Arc<dyn Fn(NodeId, u16) -> bool + Send + Sync>,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while !*shutdown.borrow() {
            replay_round(&hints, &*replicas, &*liveness, &budget, &config, &*holds).await;
            tokio::select! {
                _ = tokio::time::sleep(config.interval) => {}
                changed = shutdown.changed() => if changed.is_err() { return },
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_budget_lets_one_second_through_then_waits_for_the_overdraft() {
        let budget = ByteBudget::new(10_000);
        let start = Instant::now();
        budget.spend(10_000).await; // the initial burst
        budget.spend(5_000).await; // overdraws what refilled meanwhile
        budget.spend(1).await; // waits until the bucket is positive again
                               // A lower bound only: sleeping never ends early, so this cannot flake.
        assert!(start.elapsed() >= Duration::from_millis(450));
        // Unlimited never waits (a wait here would take about forever).
        let unlimited = ByteBudget::new(0);
        unlimited.spend(u64::MAX).await;
        unlimited.spend(u64::MAX).await;
    }
}

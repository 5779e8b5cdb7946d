//! Quorum arithmetic and the coordinator's errors: how many replicas must answer
//! (per-request consistency ONE / QUORUM / ALL), the few settings the coordinator
//! reads, and the fan-out that asks replicas in preference order until enough answered.

use crate::replica_api::{ReplicaApi, ReplicaError};
use crate::NodeId;
use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

pub use crate::config::Consistency;

/// The coordinator's settings (the lead maps them from `config::ClusterConfig`).
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// N: replicas of every key.
    pub replicas: usize,
    /// W: acknowledgements a QUORUM write waits for.
    pub write_quorum: usize,
    /// R: answers a QUORUM read waits for.
    pub read_quorum: usize,
    /// Deadline of one client request: a write's attempts (Stale retries included) and
    /// a read's answers must all arrive within it; read repair then gets its own.
    pub request_timeout: Duration,
    /// Times a write is retried with a newer version after a replica answered Stale.
    pub max_stale_retries: usize,
    /// How long a consensus command may take, contended rounds and their backoff
    /// included, before the client gets TRYAGAIN.
    pub consensus_timeout: Duration,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            replicas: 3,
            write_quorum: 2,
            read_quorum: 2,
            request_timeout: Duration::from_secs(2),
            // One retry suffices unless writers race on one key; three bounds the work.
            max_stale_retries: 3,
            consensus_timeout: Duration::from_secs(5),
        }
    }
}

/// Why a coordinated request failed. Every variant says whether anything was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// Fewer live replicas than required: nothing was sent, nothing was written.
    #[error("CLUSTERDOWN not enough replicas alive: needed {needed}, alive {alive}")]
    Unavailable {
        /// Replicas the request needed.
        needed: usize,
        /// Replicas the coordinator believed alive.
        alive: usize,
    },
    /// Sent, but fewer than required answered within the request timeout. A write may
    /// still land on some replicas (and hints may deliver it later), as in Cassandra.
    #[error(
        "TIMEOUT only {acked} of {needed} required replicas answered; a write may still be applied"
    )]
    Timeout {
        /// Replicas that answered in time.
        acked: usize,
        /// Replicas the request needed.
        needed: usize,
    },
    /// Replicas kept holding newer versions than the ones this coordinator assigned
    /// (writers racing on the key); the write may have landed on some replicas.
    #[error("TRYAGAIN write kept losing to newer versions after {attempts} attempts")]
    Contended {
        /// Versions tried.
        attempts: usize,
    },
    /// Consensus rounds on the key kept losing to concurrent commands until the
    /// consensus timeout; no round this command ran left its value on any replica.
    #[error("TRYAGAIN consensus on the key kept losing to concurrent commands ({rounds} rounds); nothing was written")]
    ConsensusContended {
        /// Rounds tried.
        rounds: usize,
    },
    /// A multi-key transaction gave up before its commit: nothing it wrote is visible,
    /// its locks are released (or expire).
    #[error("TRYAGAIN the transaction was aborted: {0}; nothing was written")]
    TxnAborted(String),
    /// The key stayed locked by another node's transaction in progress until the
    /// consensus timeout; nothing was written.
    #[error("TRYAGAIN the key is locked by a transaction in progress; nothing was written")]
    Locked,
    /// A SCAN cursor no reply ever gave.
    #[error("ERR invalid cursor")]
    InvalidCursor,
    /// The node's clock cannot issue a version it can guarantee newer than every one it
    /// issued (its floor could not be persisted): nothing was written.
    #[error("TRYAGAIN this node cannot issue versions now: {0}")]
    Clock(String),
    /// Replicas answered something the coordinator cannot use.
    #[error("ERR replica protocol: {0}")]
    Protocol(String),
    /// The replica refused the write for what it is (too many siblings, for example);
    /// the text is a complete error line. Nothing was written.
    #[error("{0}")]
    Refused(String),
}

/// A replica the coordinator may send to.
#[derive(Clone)]
pub struct Target {
    /// Its node.
    pub node: NodeId,
    /// Its endpoint.
    pub api: Arc<dyn ReplicaApi>,
}

/// Asks `targets` in order, `needed` at a time, replacing each one that fails or times
/// out by the next, until `needed` answered or none is left; all within `timeout`.
/// Returns the answers in arrival order; unanswered requests are dropped (cancelled).
///
/// The requests run inside the caller's task, not as tasks of their own: a read of the
/// local replica finishes on its first poll and a remote one only waits for its stream's
/// reply, so a task per request bought nothing but its spawn and a cross-thread wakeup
/// (docs/performance.md, "A quorum read's requests inside the caller's task"). A request that panics counts as failed, as it did
/// when it was a task.
pub async fn ask_in_order<T, F, Fut>(
    targets: &[Target],
    needed: usize,
    timeout: Duration,
    ask: F,
) -> Result<Vec<(NodeId, T)>, ClusterError>
where
    T: Send + 'static,
    F: Fn(Arc<dyn ReplicaApi>) -> Fut,
    Fut: Future<Output = Result<T, ReplicaError>> + Send + 'static,
{
    if targets.len() < needed {
        return Err(ClusterError::Unavailable {
            needed,
            alive: targets.len(),
        });
    }
    let deadline = Instant::now() + timeout;
    let mut pending = targets.iter();
    let mut in_flight = FuturesUnordered::new();
    let launch = |set: &mut FuturesUnordered<_>, t: &Target| {
        let fut = AssertUnwindSafe(ask(t.api.clone())).catch_unwind();
        let node = t.node;
        set.push(async move { (node, tokio::time::timeout_at(deadline, fut).await) });
    };
    for t in pending.by_ref().take(needed) {
        launch(&mut in_flight, t);
    }
    let mut answers = Vec::with_capacity(needed);
    while let Some(joined) = in_flight.next().await {
        match joined {
            (node, Ok(Ok(Ok(answer)))) => {
                answers.push((node, answer));
                if answers.len() == needed {
                    return Ok(answers);
                }
            }
            // Failed, timed out or panicked: try the next replica in preference order.
            _ => {
                if let Some(t) = pending.next() {
                    launch(&mut in_flight, t);
                }
            }
        }
    }
    Err(ClusterError::Timeout {
        acked: answers.len(),
        needed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_replica::FakeReplica;

    /// The requests run in the caller's task now; one that panics must still only
    /// count as a failed replica (as a panicked task did), and the next one is asked.
    #[tokio::test]
    async fn a_request_that_panics_is_replaced_by_the_next_replica() {
        let targets: Vec<Target> = (1..=3)
            .map(|n| Target {
                node: NodeId(n),
                api: FakeReplica::new(),
            })
            .collect();
        let first = targets[0].api.clone();
        let answers = ask_in_order(&targets, 2, Duration::from_secs(10), |api| {
            let panics = Arc::ptr_eq(&api, &first);
            async move {
                assert!(!panics, "this replica's request panics");
                Ok(())
            }
        })
        .await
        .unwrap();
        let mut nodes: Vec<NodeId> = answers.into_iter().map(|(n, ())| n).collect();
        nodes.sort();
        assert_eq!(nodes, vec![NodeId(2), NodeId(3)]);
    }

    #[test]
    fn required_is_clamped_to_the_replica_count() {
        assert_eq!(Consistency::One.required(3, 2), 1);
        assert_eq!(Consistency::Quorum.required(3, 2), 2);
        assert_eq!(Consistency::All.required(3, 2), 3);
        assert_eq!(Consistency::Quorum.required(1, 2), 1);
        assert_eq!(Consistency::Quorum.required(3, 0), 1);
    }
}

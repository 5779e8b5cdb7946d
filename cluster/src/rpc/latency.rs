//! How long the bus calls this node makes take, per RPC kind (`Write`, `Read`,
//! `Prepare`, ...): one fixed-bucket histogram each, bumped by [`super::PeerClient`]
//! on every call that was sent (answered, failed or timed out), read by `/metrics` as
//! `kvd_cluster_rpc_duration_seconds{rpc}`. Lock-free on the request path once a kind
//! has been seen.

use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Upper bounds of the buckets, in µs: from a loopback round trip (~100 µs) to the
/// default request timeout (2 s); a slower call lands in the last, unbounded bucket.
pub const RPC_LATENCY_BUCKETS_MICROS: [u64; 12] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 250_000, 1_000_000, 2_000_000,
];

/// One RPC kind's figures.
#[derive(Debug, Default)]
struct Histogram {
    /// Calls per bucket (not cumulative); the last counts those above every bound.
    buckets: [AtomicU64; RPC_LATENCY_BUCKETS_MICROS.len() + 1],
    /// Sum of the durations, µs.
    micros: AtomicU64,
    /// Calls that ended in an error (timeouts included).
    errors: AtomicU64,
}

/// A copy of one RPC kind's histogram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcLatency {
    /// The RPC (the gRPC method name).
    pub rpc: &'static str,
    /// Calls per bucket of [`RPC_LATENCY_BUCKETS_MICROS`] (not cumulative), plus one for
    /// those above the last bound.
    pub buckets: Vec<u64>,
    /// Sum of the durations, µs.
    pub micros: u64,
    /// Calls that ended in an error.
    pub errors: u64,
}

impl RpcLatency {
    /// Calls in all.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }
}

/// Every RPC kind's histogram. Shared by all the peer clients of a node.
#[derive(Debug, Default)]
pub struct RpcLatencies {
    by_rpc: RwLock<BTreeMap<&'static str, Arc<Histogram>>>,
}

impl RpcLatencies {
    /// Counts one call of `rpc` that took `elapsed`.
    pub fn record(&self, rpc: &'static str, elapsed: Duration, ok: bool) {
        let h = self.histogram(rpc);
        let micros = elapsed.as_micros().min(u128::from(u64::MAX)) as u64;
        let bucket = RPC_LATENCY_BUCKETS_MICROS
            .iter()
            .position(|&b| micros <= b)
            .unwrap_or(RPC_LATENCY_BUCKETS_MICROS.len());
        h.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        h.micros.fetch_add(micros, Ordering::Relaxed);
        if !ok {
            h.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn histogram(&self, rpc: &'static str) -> Arc<Histogram> {
        if let Some(h) = self.by_rpc.read().get(rpc) {
            return h.clone();
        }
        self.by_rpc.write().entry(rpc).or_default().clone()
    }

    /// Every RPC kind called so far, by name.
    pub fn snapshot(&self) -> Vec<RpcLatency> {
        self.by_rpc
            .read()
            .iter()
            .map(|(&rpc, h)| RpcLatency {
                rpc,
                buckets: h
                    .buckets
                    .iter()
                    .map(|b| b.load(Ordering::Relaxed))
                    .collect(),
                micros: h.micros.load(Ordering::Relaxed),
                errors: h.errors.load(Ordering::Relaxed),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_land_in_the_first_bucket_that_holds_them() {
        let l = RpcLatencies::default();
        l.record("Write", Duration::from_micros(100), true);
        l.record("Write", Duration::from_micros(101), false);
        l.record("Write", Duration::from_secs(5), true);
        l.record("Read", Duration::ZERO, true);
        let s = l.snapshot();
        assert_eq!(
            s.iter().map(|h| h.rpc).collect::<Vec<_>>(),
            ["Read", "Write"]
        );
        let w = &s[1];
        assert_eq!((w.buckets[0], w.buckets[1]), (1, 1));
        assert_eq!(w.buckets[RPC_LATENCY_BUCKETS_MICROS.len()], 1);
        assert_eq!((w.count(), w.errors, w.micros), (3, 1, 5_000_201));
    }
}

//! Per-command calls, failures and latency histograms (`/metrics`, docs/http-api.md):
//! lock-free counters, one set per command of the table (ids from the ACL command
//! index), bumped after every command by `commands::after_command`.

use crate::acl::categories::index;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, microseconds: from a cached read to a command
/// that waited a second on the disk.
pub const LATENCY_BUCKETS_MICROS: [u64; 12] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 10_000, 50_000, 250_000, 1_000_000,
];

/// One command's figures.
#[derive(Default)]
pub struct CommandStat {
    /// Times it ran.
    pub calls: AtomicU64,
    /// Times it replied with an error.
    pub failed: AtomicU64,
    /// Total time, microseconds.
    pub micros: AtomicU64,
    /// Runs per latency bucket (not cumulative; the last slot is above every bound).
    pub buckets: [AtomicU64; LATENCY_BUCKETS_MICROS.len() + 1],
}

/// Every command's figures, indexed like the ACL command index.
pub struct CommandMetrics {
    stats: Vec<CommandStat>,
}

impl Default for CommandMetrics {
    fn default() -> Self {
        CommandMetrics {
            stats: index().all.iter().map(|_| CommandStat::default()).collect(),
        }
    }
}

impl CommandMetrics {
    /// Records one run of the command with index id `id` (`index().id(spec)`).
    pub fn record(&self, id: Option<usize>, elapsed: Duration, failed: bool) {
        let Some(stat) = id.and_then(|id| self.stats.get(id)) else {
            return;
        };
        let micros = elapsed.as_micros().min(u128::from(u64::MAX)) as u64;
        stat.calls.fetch_add(1, Ordering::Relaxed);
        stat.micros.fetch_add(micros, Ordering::Relaxed);
        if failed {
            stat.failed.fetch_add(1, Ordering::Relaxed);
        }
        let bucket = LATENCY_BUCKETS_MICROS
            .iter()
            .position(|&b| micros <= b)
            .unwrap_or(LATENCY_BUCKETS_MICROS.len());
        stat.buckets[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// Commands that ran at least once, with their full names (`client|list`).
    pub fn used(&self) -> impl Iterator<Item = (String, &CommandStat)> {
        let ix = index();
        self.stats
            .iter()
            .enumerate()
            .filter(|(_, s)| s.calls.load(Ordering::Relaxed) > 0)
            .filter_map(move |(id, s)| ix.all.get(id).map(|c| (c.full_name(), s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::table::lookup;

    #[test]
    fn records_calls_failures_and_buckets() {
        let m = CommandMetrics::default();
        let get = index().id(lookup(b"get").unwrap());
        m.record(get, Duration::from_micros(7), false);
        m.record(get, Duration::from_secs(5), true);
        let used: Vec<_> = m.used().collect();
        assert_eq!(used.len(), 1);
        let (name, s) = &used[0];
        assert_eq!(name, "get");
        assert_eq!(s.calls.load(Ordering::Relaxed), 2);
        assert_eq!(s.failed.load(Ordering::Relaxed), 1);
        assert_eq!(s.buckets[0].load(Ordering::Relaxed), 1);
        assert_eq!(
            s.buckets[LATENCY_BUCKETS_MICROS.len()].load(Ordering::Relaxed),
            1
        );
    }
}

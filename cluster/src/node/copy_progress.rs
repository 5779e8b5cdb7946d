//! What an operator sees of a layout change in progress (docs/cluster.md, "Watching a
//! change"): per incoming partition, the snapshot streamed so far against the size its
//! source reported, the rate and the time left; and which departing nodes may be
//! switched off. Pure functions of the progress records, so the arithmetic is tested
//! apart from the node.

use crate::layout::Layout;
use crate::partition_size::PartitionSize;
use crate::snapshot_stream::Streamed;
use crate::NodeId;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Where one incoming partition stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyPhase {
    /// The snapshot is being streamed from the source.
    Streaming,
    /// The snapshot failed (the source went away, an error): tried again next step,
    /// from the next previous replica.
    Retrying,
    /// Streamed; the Merkle catch-up against N - W + 1 previous replicas runs.
    CatchingUp,
    /// Streamed and caught up.
    Copied,
}

impl CopyPhase {
    /// As CLUSTER LAYOUT STATUS prints it.
    pub fn name(self) -> &'static str {
        match self {
            CopyPhase::Streaming => "streaming",
            CopyPhase::Retrying => "retrying",
            CopyPhase::CatchingUp => "catching_up",
            CopyPhase::Copied => "copied",
        }
    }
}

/// One incoming partition's copy.
#[derive(Debug, Clone)]
pub struct PartitionCopy {
    /// The previous replica the snapshot comes from (the latest attempt's).
    pub source: NodeId,
    /// Snapshot attempts so far (each failure moves to the next previous replica).
    pub attempts: usize,
    /// Its size on the source, if the source reported it.
    pub expected: Option<PartitionSize>,
    /// What the current attempt streamed.
    pub streamed: Streamed,
    /// When the current attempt began, and when its stream ended.
    pub started: Instant,
    /// When the snapshot was complete.
    pub streamed_at: Option<Instant>,
    /// Where it stands.
    pub phase: CopyPhase,
}

impl PartitionCopy {
    /// A copy starting now from `source`.
    pub fn start(source: NodeId, expected: Option<PartitionSize>, attempts: usize) -> Self {
        PartitionCopy {
            source,
            attempts,
            expected,
            streamed: Streamed::default(),
            started: Instant::now(),
            streamed_at: None,
            phase: CopyPhase::Streaming,
        }
    }

    /// How long the stream has run (or ran).
    pub fn stream_time(&self, now: Instant) -> Duration {
        self.streamed_at
            .unwrap_or(now)
            .saturating_duration_since(self.started)
    }
}

/// Progress summed over partitions, with a rate and an estimate of the time left.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CopySummary {
    /// Incoming partitions of the change.
    pub incoming: usize,
    /// Of them, streamed and caught up.
    pub copied: usize,
    /// Records and bytes streamed.
    pub streamed: Streamed,
    /// Bytes the sources reported for the incoming partitions (those that answered).
    pub expected_bytes: u64,
    /// Bytes streamed per second since copying began.
    pub bytes_per_sec: f64,
    /// Seconds left at that rate; `None` before anything was streamed.
    pub eta_secs: Option<f64>,
}

/// Sums `copies` of the `incoming` partitions, streaming since `elapsed`.
pub fn summarize(
    incoming: &[u16],
    copies: &BTreeMap<u16, PartitionCopy>,
    elapsed: Duration,
) -> CopySummary {
    let mut s = CopySummary {
        incoming: incoming.len(),
        ..CopySummary::default()
    };
    for p in incoming {
        let Some(c) = copies.get(p) else {
            continue;
        };
        s.streamed.keys += c.streamed.keys;
        s.streamed.bytes += c.streamed.bytes;
        s.expected_bytes += c.expected.map_or(0, |e| e.bytes);
        if c.phase == CopyPhase::Copied {
            s.copied += 1;
        }
    }
    s.bytes_per_sec = rate(s.streamed.bytes, elapsed);
    let left = s.expected_bytes.saturating_sub(s.streamed.bytes);
    s.eta_secs = if s.copied == s.incoming {
        Some(0.0)
    } else {
        eta(left, s.bytes_per_sec)
    };
    s
}

/// Bytes per second.
pub fn rate(bytes: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        bytes as f64 / secs
    } else {
        0.0
    }
}

/// Seconds to send `left` bytes at `bytes_per_sec`; `None` with no rate yet.
pub fn eta(left: u64, bytes_per_sec: f64) -> Option<f64> {
    (bytes_per_sec > 0.0).then(|| left as f64 / bytes_per_sec)
}

/// For each node departing in `layout`'s transition: the members still copying a
/// partition it held (empty: every partition it held is synced on its new replicas,
/// so it may be switched off). `synced` tells whether a member reported its incoming
/// partitions copied.
pub fn removal_waits(
    layout: &Layout,
    synced: impl Fn(NodeId) -> bool,
) -> Vec<(NodeId, Vec<NodeId>)> {
    let Some(t) = &layout.transition else {
        return Vec::new();
    };
    t.departing
        .iter()
        .map(|d| {
            let waiting: Vec<NodeId> = layout
                .nodes
                .iter()
                .map(|n| n.id)
                .filter(|&n| !synced(n))
                .filter(|&n| {
                    layout
                        .incoming(n)
                        .iter()
                        .any(|&p| layout.read_preflist(p).contains(&d.id))
                })
                .collect();
            (d.id, waiting)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::LayoutChange;
    use crate::partition_size::tests::node;

    fn copy(phase: CopyPhase, streamed: u64, expected: u64) -> PartitionCopy {
        let mut c = PartitionCopy::start(
            NodeId(1),
            Some(PartitionSize {
                keys: expected / 10,
                bytes: expected,
            }),
            1,
        );
        c.streamed = Streamed {
            keys: streamed / 10,
            bytes: streamed,
        };
        c.phase = phase;
        c
    }

    #[test]
    fn the_summary_adds_up_and_estimates_the_time_left_from_the_rate() {
        let copies: BTreeMap<u16, PartitionCopy> = [
            (1, copy(CopyPhase::Copied, 1000, 1000)),
            (2, copy(CopyPhase::Streaming, 500, 2000)),
            // Not incoming in this change: left out.
            (9, copy(CopyPhase::Streaming, 7777, 7777)),
        ]
        .into_iter()
        .collect();
        let s = summarize(&[1, 2, 3], &copies, Duration::from_secs(3));
        assert_eq!(s.incoming, 3);
        assert_eq!(s.copied, 1);
        assert_eq!(s.streamed.bytes, 1500);
        assert_eq!(s.streamed.keys, 150);
        assert_eq!(s.expected_bytes, 3000);
        assert_eq!(s.bytes_per_sec, 500.0);
        assert_eq!(s.eta_secs, Some(3.0));
        let done = summarize(&[1], &copies, Duration::from_secs(3));
        assert_eq!(done.eta_secs, Some(0.0));
        let idle = summarize(&[3], &copies, Duration::ZERO);
        assert_eq!((idle.bytes_per_sec, idle.eta_secs), (0.0, None));
    }

    #[test]
    fn a_departing_node_may_go_once_the_members_receiving_its_partitions_synced() {
        let three = Layout::initial(
            crate::layout::new_cluster_id(),
            vec![node(1), node(2), node(3), node(4)],
            3,
        )
        .unwrap();
        let plan = three
            .plan(&[LayoutChange::Remove { node: NodeId(4) }])
            .unwrap();
        let layout = plan.next;
        let receivers: Vec<NodeId> = (1..=3)
            .map(NodeId)
            .filter(|&n| !layout.incoming(n).is_empty())
            .collect();
        assert!(!receivers.is_empty());
        let waits = removal_waits(&layout, |_| false);
        assert_eq!(waits, vec![(NodeId(4), receivers.clone())]);
        let first = receivers[0];
        let waits = removal_waits(&layout, |n| n == first);
        assert_eq!(waits[0].1, receivers[1..].to_vec());
        assert_eq!(removal_waits(&layout, |_| true), vec![(NodeId(4), vec![])]);
        // Without a change under way, nobody is departing.
        assert!(removal_waits(&three, |_| false).is_empty());
    }
}

//! CLUSTER LAYOUT STATUS (docs/cluster.md, "Watching a change"): this node's copy of
//! its incoming partitions (snapshot bytes and records streamed against the size the
//! source reported, rate, time left, phase), and which departing nodes every member
//! already copied away from, so they may be switched off.

use super::copy_progress::{removal_waits, summarize, CopySummary};
use super::ClusterNode;
use crate::layout::Layout;
use crate::NodeId;
use std::fmt::Write as _;
use std::time::Instant;

impl ClusterNode {
    /// This node's copy progress summed over the incoming partitions of `layout`.
    pub(super) fn copy_summary(&self, layout: Option<&Layout>) -> CopySummary {
        let incoming = layout.map_or_else(Vec::new, |l| l.incoming(self.me.id));
        let p = self.progress.lock();
        let elapsed = p
            .copy_started
            .map_or(std::time::Duration::ZERO, |t| t.elapsed());
        summarize(&incoming, &p.partitions, elapsed)
    }

    /// Whether `node` reported the incoming partitions of `layout` copied (this node
    /// from its own progress, the others by gossip).
    fn reported_synced(&self, layout: &Layout, node: NodeId) -> bool {
        if node == self.me.id {
            return self.progress.lock().synced >= layout.version;
        }
        self.gossip_members()
            .iter()
            .any(|m| m.node == node && m.layout_synced >= layout.version)
    }

    /// The departing nodes of `layout`'s change, each with the members still copying a
    /// partition it held.
    pub(super) fn removal_waits(&self, layout: &Layout) -> Vec<(NodeId, Vec<NodeId>)> {
        removal_waits(layout, |n| self.reported_synced(layout, n))
    }

    pub(super) fn layout_status(&self, layout: &Layout) -> String {
        let mut out = String::new();
        let s = self.copy_summary(Some(layout));
        let transition = layout.transition.as_ref().map_or("none".to_string(), |t| {
            format!("{}->{}", t.from_version, layout.version)
        });
        let _ = writeln!(out, "layout_version:{}", layout.version);
        let _ = writeln!(out, "transition:{transition}");
        let _ = writeln!(out, "node:{}", self.me.id);
        let _ = writeln!(out, "incoming_partitions:{}", s.incoming);
        let _ = writeln!(out, "copied_partitions:{}", s.copied);
        let _ = writeln!(out, "streamed_keys:{}", s.streamed.keys);
        let _ = writeln!(out, "streamed_bytes:{}", s.streamed.bytes);
        let _ = writeln!(out, "expected_bytes:{}", s.expected_bytes);
        let _ = writeln!(out, "stream_bytes_per_sec:{:.0}", s.bytes_per_sec);
        let _ = writeln!(out, "eta_sec:{}", eta_text(s.eta_secs));
        let now = Instant::now();
        let copies = self.progress.lock().partitions.clone();
        for p in layout.incoming(self.me.id) {
            let Some(c) = copies.get(&p) else {
                let _ = writeln!(out, "partition:{p} phase=waiting");
                continue;
            };
            let expected = c.expected.map_or("?".to_string(), |e| e.bytes.to_string());
            let rate = super::copy_progress::rate(c.streamed.bytes, c.stream_time(now));
            let left = c
                .expected
                .map_or(0, |e| e.bytes.saturating_sub(c.streamed.bytes));
            let eta = match c.phase {
                super::CopyPhase::Streaming => super::copy_progress::eta(left, rate),
                _ => Some(0.0),
            };
            let _ = writeln!(
                out,
                "partition:{p} phase={} from={} attempt={} keys={} bytes={}/{expected} bytes_per_sec={rate:.0} eta_sec={}",
                c.phase.name(),
                c.source,
                c.attempts,
                c.streamed.keys,
                c.streamed.bytes,
                eta_text(eta)
            );
        }
        for (node, waiting) in self.removal_waits(layout) {
            if waiting.is_empty() {
                let _ = writeln!(out, "safe_to_remove:{node} yes");
            } else {
                let ids: Vec<String> = waiting.iter().map(|n| n.to_string()).collect();
                let _ = writeln!(
                    out,
                    "safe_to_remove:{node} no waiting_for={}",
                    ids.join(",")
                );
            }
        }
        out
    }
}

/// Seconds, rounded up; `unknown` before anything was streamed.
pub(super) fn eta_text(eta: Option<f64>) -> String {
    eta.map_or("unknown".to_string(), |s| format!("{:.0}", s.ceil()))
}

//! CLUSTER INFO: Redis's fields (so tools that read cluster_state work), then kvd's.

use super::ClusterNode;
use crate::replica_api::{Liveness, PeerState};
use kv_keyspace::slot::{PARTITIONS, SLOTS_PER_PARTITION};
use std::sync::atomic::Ordering;

/// The fields in order.
pub fn fields(node: &ClusterNode) -> Vec<(String, String)> {
    let layout = node.layout.get();
    let c = &node.config.cluster;
    let ids: Vec<_> = match &layout {
        Some(l) => l.nodes.iter().map(|n| n.id).collect(),
        None => node.met.lock().keys().copied().collect(),
    };
    let count = |s: PeerState| ids.iter().filter(|&&n| node.live.state(n) == s).count();
    // A partition is ok while enough of its replicas are up for both quorums.
    let need = c.write_quorum.max(c.read_quorum);
    let ok_partitions = layout.as_ref().map_or(0, |l| {
        (0..PARTITIONS)
            .filter(|&p| {
                l.read_preflist(p)
                    .iter()
                    .filter(|&&n| node.live.state(n) == PeerState::Up)
                    .count()
                    >= need
            })
            .count()
    });
    let assigned = if layout.is_some() {
        PARTITIONS as usize
    } else {
        0
    };
    let state = if layout.is_some() && ok_partitions == PARTITIONS as usize {
        "ok"
    } else {
        "fail"
    };
    let slots = |p: usize| (p * SLOTS_PER_PARTITION as usize).to_string();
    let counters = node.counters();
    let (hints, co) = (counters.hints, counters.coordinator);
    let s = &node.stats;
    let version = layout.as_ref().map_or(0, |l| l.version);
    let pubsub = node.pubsub.stats();
    let tag = counters.layout_tag;
    let carriers = node.peers.carriers();
    let mut f: Vec<(&str, String)> = vec![
        ("cluster_state", state.into()),
        ("cluster_slots_assigned", slots(assigned)),
        ("cluster_slots_ok", slots(ok_partitions)),
        ("cluster_slots_pfail", slots(assigned - ok_partitions)),
        ("cluster_slots_fail", "0".into()),
        ("cluster_known_nodes", ids.len().to_string()),
        ("cluster_size", ids.len().to_string()),
        ("cluster_current_epoch", version.to_string()),
        ("cluster_my_epoch", version.to_string()),
        ("kvd_cluster_id", node.auth.cluster_id().unwrap_or_default()),
        ("kvd_layout_version", version.to_string()),
        ("kvd_replicas", c.replicas.to_string()),
        ("kvd_write_quorum", c.write_quorum.to_string()),
        ("kvd_read_quorum", c.read_quorum.to_string()),
        ("kvd_nodes_up", count(PeerState::Up).to_string()),
        ("kvd_nodes_suspect", count(PeerState::Suspect).to_string()),
        ("kvd_nodes_down", count(PeerState::Down).to_string()),
        ("kvd_peers_reported_up", node.live.reported_up().to_string()),
        ("kvd_replica_links", carriers.links.to_string()),
        ("kvd_replica_streams", carriers.streams.to_string()),
        ("kvd_replica_unary_peers", carriers.unary.to_string()),
        ("kvd_hints_pending", hints.count.to_string()),
        ("kvd_hints_bytes", hints.bytes.to_string()),
        ("kvd_hints_dropped", hints.dropped.to_string()),
        ("kvd_hints_delivered", hints.delivered.to_string()),
        ("kvd_hints_written", hints.written.to_string()),
        (
            "kvd_anti_entropy_rounds",
            counters.anti_entropy_rounds.to_string(),
        ),
        (
            "kvd_anti_entropy_keys_repaired",
            counters.anti_entropy_keys_repaired.to_string(),
        ),
        (
            "kvd_anti_entropy_failures",
            counters.anti_entropy_failures.to_string(),
        ),
        (
            "kvd_tombstones_purged",
            counters.tombstones_purged.to_string(),
        ),
        ("kvd_merkle_rebuilds", counters.merkle_rebuilds.to_string()),
        (
            "kvd_merkle_leaves_fixed",
            counters.merkle_leaves_fixed.to_string(),
        ),
        ("kvd_read_repairs", co.read_repairs.to_string()),
        ("kvd_stale_retries", co.stale_retries.to_string()),
        ("kvd_consensus_retries", co.consensus_retries.to_string()),
        ("kvd_consensus_rounds", co.consensus_rounds.to_string()),
        ("kvd_txn_committed", co.transactions_committed.to_string()),
        ("kvd_txn_aborted", co.transactions_aborted.to_string()),
        (
            "kvd_txn_aborted_expired",
            co.transactions_aborted_expired.to_string(),
        ),
        ("kvd_txn_locks_resolved", co.locks_resolved.to_string()),
        ("kvd_layout_stale_retries", co.layout_retries.to_string()),
        ("kvd_layout_stale_refusals", tag.refused.to_string()),
        ("kvd_layout_newer_seen", tag.newer_seen.to_string()),
        ("kvd_layout_untagged_requests", tag.untagged.to_string()),
        ("kvd_siblings_warnings", co.siblings_warnings.to_string()),
        ("kvd_metadata_digest", node.metadata.digest()),
        (
            "kvd_metadata_entries",
            node.metadata.entries().len().to_string(),
        ),
        (
            "kvd_flush_purged_keys",
            s.flush_purged_keys.load(Ordering::Relaxed).to_string(),
        ),
        (
            "kvd_max_clock_offset_ms",
            node.skew.max_abs_offset().to_string(),
        ),
        ("kvd_clock_state", node.clock.state_name().into()),
        (
            "kvd_clock_ahead_of_wall_ms",
            node.hlc.ahead_of_wall_ms().to_string(),
        ),
        (
            "kvd_catching_up",
            u8::from(node.catch_up.is_active()).to_string(),
        ),
        (
            "kvd_catch_up_partitions_left",
            node.catch_up.partitions_left().to_string(),
        ),
        (
            "kvd_catch_up_unreached_peers",
            node.catch_up.unreached_peers().len().to_string(),
        ),
        ("kvd_pubsub_sent", pubsub.sent.to_string()),
        ("kvd_pubsub_received", pubsub.received.to_string()),
        ("kvd_pubsub_dropped", pubsub.dropped.to_string()),
        ("kvd_pubsub_queued", pubsub.queued.to_string()),
        ("kvd_pubsub_queued_bytes", pubsub.queued_bytes.to_string()),
    ];
    f.extend(layout_change_fields(node, layout.as_deref()));
    let mut fields: Vec<(String, String)> = f.drain(..).map(|(k, v)| (k.to_string(), v)).collect();
    fields.extend(node.forwarding.info());
    fields
}

/// The layout change under way as this node sees it (docs/cluster.md, "Watching a
/// change"): its acknowledgement and copy progress, the snapshot bytes streamed
/// against the sizes the sources reported, the rate and the time left at that rate,
/// and the departing nodes that may be switched off.
fn layout_change_fields(
    node: &ClusterNode,
    layout: Option<&crate::layout::Layout>,
) -> Vec<(&'static str, String)> {
    let p = node.layout_progress();
    let transition = layout
        .and_then(|l| {
            l.transition
                .as_ref()
                .map(|t| format!("{}->{}", t.from_version, l.version))
        })
        .unwrap_or_else(|| "none".into());
    let s = node.copy_summary(layout);
    let elapsed = p.copy_started.map_or(0.0, |t| t.elapsed().as_secs_f64());
    let keys_rate = if elapsed > 0.0 {
        s.streamed.keys as f64 / elapsed
    } else {
        0.0
    };
    let waits = layout.map_or_else(Vec::new, |l| node.removal_waits(l));
    let safe: Vec<String> = waits
        .iter()
        .filter(|(_, waiting)| waiting.is_empty())
        .map(|(n, _)| n.to_string())
        .collect();
    vec![
        ("kvd_layout_transition", transition),
        ("kvd_layout_acked", p.acked.to_string()),
        ("kvd_layout_synced", p.synced.to_string()),
        // Until this reaches the version that ended a change, the node may still hold
        // partitions it gave away (CLUSTER MERKLE shows only the ones it holds now).
        ("kvd_layout_cleaned", p.cleaned.to_string()),
        ("kvd_layout_incoming_partitions", s.incoming.to_string()),
        ("kvd_layout_copied_partitions", s.copied.to_string()),
        ("kvd_layout_keys_copied", p.keys_copied.to_string()),
        ("kvd_layout_streamed_keys", s.streamed.keys.to_string()),
        ("kvd_layout_streamed_bytes", s.streamed.bytes.to_string()),
        ("kvd_layout_expected_bytes", s.expected_bytes.to_string()),
        (
            "kvd_layout_stream_bytes_per_sec",
            format!("{:.0}", s.bytes_per_sec),
        ),
        ("kvd_layout_copy_keys_per_sec", format!("{keys_rate:.0}")),
        (
            "kvd_layout_copy_eta_sec",
            s.eta_secs
                .map_or("-1".to_string(), |e| format!("{:.0}", e.ceil())),
        ),
        ("kvd_layout_departing", waits.len().to_string()),
        (
            "kvd_layout_safe_to_remove",
            if safe.is_empty() {
                "none".to_string()
            } else {
                safe.join(",")
            },
        ),
        (
            "kvd_removed_in_layout",
            node.removed_in().unwrap_or(0).to_string(),
        ),
    ]
}

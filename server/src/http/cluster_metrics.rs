//! The cluster's part of `/metrics` on a cluster node (docs/http-api.md, "Metrics"):
//! hints, read repairs, anti-entropy, consensus, bus RPC latencies per kind and each
//! node's state as this node's failure detector sees it. Read at scrape time from the
//! ring's view ([`kv_cluster::view::ClusterView`]), whose counters are the ones CLUSTER
//! INFO prints: one source for both.

use super::metrics::{counter_list, gauge, gauge_family, histogram_micros};
use crate::state::Shared;
use kv_cluster::replica_api::PeerState;
use kv_cluster::rpc::RPC_LATENCY_BUCKETS_MICROS;
use kv_cluster::view::ClusterView;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;
use std::fmt;

/// Every cluster metric; nothing on a node that is not in a cluster.
pub fn cluster_metrics(srv: &Shared, enc: &mut DescriptorEncoder) -> fmt::Result {
    let Some(view) = srv.ring.get().and_then(|r| r.view()) else {
        return Ok(());
    };
    counters(&view, enc)?;
    gauges(&view, enc)?;
    node_states(&view, enc)?;
    rpc_latencies(&view, enc)
}

fn counters(view: &ClusterView, enc: &mut DescriptorEncoder) -> fmt::Result {
    let c = &view.counters;
    let (h, co) = (&c.hints, &c.coordinator);
    let counters: [(&str, &str, u64); 18] = [
        (
            "kvd_cluster_hints_written",
            "Hints stored for replicas that missed a write.",
            h.written,
        ),
        (
            "kvd_cluster_hints_replayed",
            "Hints delivered to their replica.",
            h.delivered,
        ),
        (
            "kvd_cluster_hints_dropped",
            "Hints dropped by the byte or age bound (anti-entropy repairs what they held).",
            h.dropped,
        ),
        (
            "kvd_cluster_read_repairs",
            "Replicas brought up to date by read repair.",
            co.read_repairs,
        ),
        (
            "kvd_cluster_read_repair_failures",
            "Read repair writes that failed or timed out.",
            co.read_repair_failures,
        ),
        (
            "kvd_cluster_stale_retries",
            "Writes retried with a newer version after a replica answered Stale.",
            co.stale_retries,
        ),
        (
            "kvd_cluster_consensus_rounds",
            "Consensus rounds started (first rounds and retries).",
            co.consensus_rounds,
        ),
        (
            "kvd_cluster_consensus_retries",
            "Consensus rounds lost to a higher ballot and retried.",
            co.consensus_retries,
        ),
        (
            "kvd_cluster_layout_stale_retries",
            "Requests run again under a newer layout after a replica refused this node's.",
            co.layout_retries,
        ),
        (
            "kvd_cluster_layout_stale_refusals",
            "Replica requests refused because they carried an older layout version.",
            c.layout_tag.refused,
        ),
        (
            "kvd_cluster_layout_newer_seen",
            "Replica requests that carried a newer layout version than this node's.",
            c.layout_tag.newer_seen,
        ),
        (
            "kvd_cluster_layout_untagged_requests",
            "Replica requests served without a layout tag (peers on a build before tags).",
            c.layout_tag.untagged,
        ),
        (
            "kvd_cluster_anti_entropy_rounds",
            "Anti-entropy rounds run by this node.",
            c.anti_entropy_rounds,
        ),
        (
            "kvd_cluster_anti_entropy_keys_repaired",
            "Keys anti-entropy found different on two replicas and repaired.",
            c.anti_entropy_keys_repaired,
        ),
        (
            "kvd_cluster_anti_entropy_failures",
            "Peer exchanges or partitions anti-entropy could not compare.",
            c.anti_entropy_failures,
        ),
        (
            "kvd_cluster_merkle_rebuilds",
            "Partitions the slow Merkle rebuild from data went over.",
            c.merkle_rebuilds,
        ),
        (
            "kvd_cluster_merkle_leaves_fixed",
            "Merkle leaves the slow rebuild found wrong and fixed (damage, or writes racing with it).",
            c.merkle_leaves_fixed,
        ),
        (
            "kvd_cluster_tombstones_purged",
            "Tombstones collected once every replica held them past the grace.",
            c.tombstones_purged,
        ),
    ];
    counter_list(enc, &counters)
}

fn gauges(view: &ClusterView, enc: &mut DescriptorEncoder) -> fmt::Result {
    let h = &view.counters.hints;
    gauge(
        enc,
        "kvd_cluster_hints_pending",
        "Hints waiting for their replica.",
        None,
        h.count as i64,
    )?;
    gauge(
        enc,
        "kvd_cluster_hints_pending",
        "Bytes of the hints waiting for their replica.",
        Some(&Unit::Bytes),
        h.bytes as i64,
    )?;
    gauge(
        enc,
        "kvd_cluster_layout_version",
        "Version of the layout this node holds (0 before the first).",
        None,
        view.layout_version as i64,
    )?;
    let short = view
        .own_partitions_without_quorum()
        .map_or(0, |p| p.len() as i64);
    gauge(
        enc,
        "kvd_cluster_own_partitions_without_quorum",
        "Partitions this node holds with fewer up replicas than a quorum (/ready fails above 0).",
        None,
        short,
    )?;
    let carriers = &view.counters.carriers;
    let carriers = [
        ("link", carriers.links),
        ("stream", carriers.streams),
        ("unary", carriers.unary),
    ]
    .map(|(carrier, peers)| (vec![("carrier", carrier.to_string())], peers as i64));
    gauge_family(
        enc,
        "kvd_cluster_replica_peers",
        "Peers by how this node's replica requests reach them: a replica link (plain bus), the gRPC stream (TLS, or a peer without links) or unary calls (a peer without streams).",
        None,
        carriers,
    )?;
    let me = view.nodes.iter().find(|n| n.myself);
    if let Some(round) = me.and_then(|n| n.anti_entropy) {
        gauge(
            enc,
            "kvd_cluster_anti_entropy_last_round_timestamp",
            "When this node's last anti-entropy round ended (Unix time).",
            Some(&Unit::Seconds),
            round.at_ms as f64 / 1000.0,
        )?;
    }
    Ok(())
}

/// `kvd_cluster_node_state{node,state}`: 1 for the state the failure detector sees,
/// 0 for the other two (Prometheus's state-set pattern), and hints pending per node.
fn node_states(view: &ClusterView, enc: &mut DescriptorEncoder) -> fmt::Result {
    const STATES: [PeerState; 3] = [PeerState::Up, PeerState::Suspect, PeerState::Down];
    let series = view.nodes.iter().flat_map(|n| {
        STATES.iter().map(move |&s| {
            let labels = vec![("node", n.id.to_string()), ("state", s.name().to_string())];
            (labels, i64::from(n.state == s))
        })
    });
    gauge_family(
        enc,
        "kvd_cluster_node_state",
        "1 for each node's state (up, suspect, down) as this node's failure detector sees it.",
        None,
        series,
    )?;
    let hints = view
        .nodes
        .iter()
        .map(|n| (vec![("node", n.id.to_string())], n.hints_pending as i64));
    gauge_family(
        enc,
        "kvd_cluster_node_hints_pending",
        "Hints this node keeps for each node.",
        None,
        hints,
    )
}

fn rpc_latencies(view: &ClusterView, enc: &mut DescriptorEncoder) -> fmt::Result {
    let mut latency = enc.encode_descriptor(
        "kvd_cluster_rpc_duration",
        "Time of the bus calls this node made, per RPC kind, answered or not.",
        Some(&Unit::Seconds),
        MetricType::Histogram,
    )?;
    for r in &view.rpc {
        let labels = [("rpc", r.rpc)];
        histogram_micros(
            latency.encode_family(&labels)?,
            &RPC_LATENCY_BUCKETS_MICROS,
            &r.buckets,
            r.micros,
        )?;
    }
    let mut errors = enc.encode_descriptor(
        "kvd_cluster_rpc_errors",
        "Bus calls that failed or timed out, per RPC kind.",
        None,
        MetricType::Counter,
    )?;
    for r in &view.rpc {
        let labels = [("rpc", r.rpc)];
        ConstCounter::new(r.errors).encode(errors.encode_family(&labels)?)?;
    }
    Ok(())
}

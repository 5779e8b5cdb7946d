//! `GET /metrics`: the counters kvd already keeps (INFO's), per-command calls, failures
//! and latency histograms, and the engine's statistics, in the OpenMetrics text format
//! that Prometheus scrapes (docs/http-api.md, "Metrics"). Everything is read at scrape
//! time by one collector; nothing is kept twice. Needs authentication when RESP does.

use super::error::ApiError;
use super::session::{Peer, Session};
use crate::command_metrics::{CommandStat, LATENCY_BUCKETS_MICROS};
use crate::state::Shared;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use kv_engine::LevelStats;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::exemplar::Exemplar;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Histogram exemplars, which kvd does not record.
type Exemplars = HashMap<usize, Exemplar<Vec<(String, String)>, f64>>;

/// The OpenMetrics text format's media type.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// GET /metrics
pub async fn metrics(
    State(srv): State<Arc<Shared>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let _session = Session::open_authenticated(&srv, peer, &headers).await?;
    let text = render(&srv).map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "cannot encode the metrics",
        )
    })?;
    let kind = [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))];
    Ok((kind, text).into_response())
}

/// Every metric as OpenMetrics text.
pub fn render(srv: &Arc<Shared>) -> Result<String, fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(ServerCollector(srv.clone())));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)?;
    Ok(text)
}

/// Reads the server's figures at scrape time.
struct ServerCollector(Arc<Shared>);

impl fmt::Debug for ServerCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerCollector")
    }
}

fn counter<N>(enc: &mut DescriptorEncoder, name: &str, help: &str, v: N) -> fmt::Result
where
    ConstCounter<N>: EncodeMetric,
{
    let c = ConstCounter::new(v);
    c.encode(enc.encode_descriptor(name, help, None, MetricType::Counter)?)
}

/// Counters given as `(name, help, value)`.
pub(super) fn counter_list(enc: &mut DescriptorEncoder, list: &[(&str, &str, u64)]) -> fmt::Result {
    for &(name, help, v) in list {
        counter(enc, name, help, v)?;
    }
    Ok(())
}

pub(super) fn gauge<N>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    v: N,
) -> fmt::Result
where
    ConstGauge<N>: EncodeMetric,
{
    let g = ConstGauge::new(v);
    g.encode(enc.encode_descriptor(name, help, unit, MetricType::Gauge)?)
}

impl Collector for ServerCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        server_metrics(&self.0, &mut enc)?;
        command_metrics(&self.0, &mut enc)?;
        engine_metrics(&self.0, &mut enc)?;
        super::cluster_metrics::cluster_metrics(&self.0, &mut enc)
    }
}

fn server_metrics(srv: &Shared, enc: &mut DescriptorEncoder) -> fmt::Result {
    let c = &srv.counters;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let counters: [(&str, &str, u64); 15] = [
        ("kvd_commands", "Commands executed.", load(&c.commands)),
        (
            "kvd_connections_received",
            "Client connections accepted (HTTP requests count as one each).",
            load(&c.connections),
        ),
        (
            "kvd_rejected_connections",
            "Connections refused at maxclients.",
            load(&c.rejected),
        ),
        (
            "kvd_expired_keys",
            "Keys removed by the active expiry sweep.",
            load(&c.expired_keys),
        ),
        (
            "kvd_keyspace_hits",
            "Reads that found their key.",
            load(&c.keyspace_hits),
        ),
        (
            "kvd_keyspace_misses",
            "Reads that did not find their key.",
            load(&c.keyspace_misses),
        ),
        (
            "kvd_net_input_bytes",
            "Bytes read from RESP clients.",
            load(&c.net_input),
        ),
        (
            "kvd_net_output_bytes",
            "Bytes written to RESP clients.",
            load(&c.net_output),
        ),
        (
            "kvd_idempotent_replays",
            "Idempotent requests answered from a stored reply.",
            load(&c.idempotent_replays),
        ),
        (
            "kvd_expired_idempotency_records",
            "Idempotency records removed once their window passed.",
            load(&c.expired_idempotency_records),
        ),
        (
            "kvd_protocol_errors",
            "Protocol errors that closed a connection.",
            load(&c.protocol_errors),
        ),
        (
            "kvd_output_limit_disconnects",
            "Clients disconnected at an output buffer limit.",
            load(&c.output_limit_disconnects),
        ),
        (
            "kvd_pipelined_reads_ahead",
            "Pipelined reads whose keys a cluster node read together with the run's others.",
            load(&c.pipelined_reads_ahead),
        ),
        (
            "kvd_pipelined_writes_grouped",
            "Pipelined writes a cluster node replicated in one round with the rest of their run.",
            load(&c.pipelined_writes_grouped),
        ),
        (
            "kvd_lock_wait_reads",
            "Polls of LOCK ... WAIT on a cluster node that read their lock still held.",
            load(&c.lock_wait_reads),
        ),
    ];
    counter_list(enc, &counters)?;
    let clients = srv.clients.lock().len() as i64;
    gauge(
        enc,
        "kvd_connected_clients",
        "Connected clients (RESP connections and HTTP requests in flight).",
        None,
        clients,
    )?;
    gauge(
        enc,
        "kvd_blocked_clients",
        "Clients waiting in LOCK ... WAIT.",
        None,
        load(&c.blocked_clients) as i64,
    )?;
    let maxclients = srv.config.read().maxclients as i64;
    gauge(
        enc,
        "kvd_maxclients",
        "The maxclients setting.",
        None,
        maxclients,
    )?;
    let uptime = srv.started.elapsed().as_secs_f64();
    gauge(
        enc,
        "kvd_uptime",
        "Time since the server started.",
        Some(&Unit::Seconds),
        uptime,
    )
}

fn command_metrics(srv: &Shared, enc: &mut DescriptorEncoder) -> fmt::Result {
    let used: Vec<_> = srv.command_metrics.used().collect();
    command_counter(enc, "kvd_command_calls", "Runs per command.", &used, |s| {
        &s.calls
    })?;
    command_counter(
        enc,
        "kvd_command_failed_calls",
        "Runs per command that replied with an error.",
        &used,
        |s| &s.failed,
    )?;
    let mut latency = enc.encode_descriptor(
        "kvd_command_duration",
        "Time to run a command, from admission to reply.",
        Some(&Unit::Seconds),
        MetricType::Histogram,
    )?;
    for (name, s) in &used {
        let labels = [("command", name.as_str())];
        let counts: Vec<u64> = s
            .buckets
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .collect();
        let sum = s.micros.load(Ordering::Relaxed);
        histogram_micros(
            latency.encode_family(&labels)?,
            &LATENCY_BUCKETS_MICROS,
            &counts,
            sum,
        )?;
    }
    Ok(())
}

/// One histogram series from durations counted in µs: `counts` holds the calls per
/// bucket of `bounds_micros` (not cumulative) and one more for those above them;
/// encoded in seconds, as Prometheus wants.
pub(super) fn histogram_micros(
    mut series: MetricEncoder<'_>,
    bounds_micros: &[u64],
    counts: &[u64],
    sum_micros: u64,
) -> fmt::Result {
    let mut buckets: Vec<(f64, u64)> = bounds_micros
        .iter()
        .zip(counts)
        .map(|(bound, n)| (*bound as f64 / 1e6, *n))
        .collect();
    let above = counts.get(bounds_micros.len()).copied().unwrap_or(0);
    buckets.push((f64::INFINITY, above));
    let count = counts.iter().sum();
    let no_exemplars: Option<&Exemplars> = None;
    series.encode_histogram(sum_micros as f64 / 1e6, count, &buckets, no_exemplars)
}

/// A gauge family with one series per label set.
pub(super) fn gauge_family<'a>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    series: impl IntoIterator<Item = (Vec<(&'a str, String)>, i64)>,
) -> fmt::Result {
    let mut family = enc.encode_descriptor(name, help, unit, MetricType::Gauge)?;
    for (labels, v) in series {
        ConstGauge::new(v).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A counter family with one series per command that ran.
fn command_counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    used: &[(String, &CommandStat)],
    field: impl Fn(&CommandStat) -> &AtomicU64,
) -> fmt::Result {
    let mut family = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (command, s) in used {
        let labels = [("command", command.as_str())];
        ConstCounter::new(field(s).load(Ordering::Relaxed))
            .encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A gauge family with one series per engine level.
fn level_gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    levels: &[LevelStats],
    value: impl Fn(&LevelStats) -> u64,
) -> fmt::Result {
    let series = levels
        .iter()
        .map(|l| (vec![("level", l.level.to_string())], value(l) as i64));
    gauge_family(enc, name, help, unit, series)
}

fn engine_metrics(srv: &Shared, enc: &mut DescriptorEncoder) -> fmt::Result {
    let s = srv.store.db.stats();
    level_gauge(
        enc,
        "kvd_engine_level_files",
        "Live SSTables per level.",
        None,
        &s.levels,
        |l| l.files as u64,
    )?;
    level_gauge(
        enc,
        "kvd_engine_level",
        "Size of the live SSTables per level.",
        Some(&Unit::Bytes),
        &s.levels,
        |l| l.bytes,
    )?;
    let gauges: [(&str, &str, Option<&Unit>, f64); 9] = [
        (
            "kvd_engine_memtable",
            "Bytes in the active and immutable memtables.",
            Some(&Unit::Bytes),
            s.memtable_bytes as f64,
        ),
        (
            "kvd_engine_immutable_memtables",
            "Immutable memtables waiting for flush.",
            None,
            s.immutable_memtables as f64,
        ),
        (
            "kvd_engine_pending_compaction",
            "Bytes compaction would rewrite to bring every level under its target.",
            Some(&Unit::Bytes),
            s.pending_compaction_bytes as f64,
        ),
        (
            "kvd_engine_write_amplification",
            "(WAL + flush + compaction bytes) / user bytes since open.",
            Some(&Unit::Ratios),
            s.write_amplification,
        ),
        (
            "kvd_engine_compactions_running",
            "Compactions running now.",
            None,
            s.compactions_running as f64,
        ),
        (
            "kvd_engine_block_cache",
            "Bytes held by the block cache.",
            Some(&Unit::Bytes),
            s.block_cache_bytes as f64,
        ),
        (
            "kvd_engine_last_sequence",
            "Last sequence number assigned (the newest version).",
            None,
            s.last_sequence as f64,
        ),
        (
            "kvd_engine_snapshots",
            "Live snapshots.",
            None,
            s.snapshots as f64,
        ),
        (
            "kvd_engine_background_error",
            "1 while a background error stops writes.",
            None,
            if s.background_error.is_some() {
                1.0
            } else {
                0.0
            },
        ),
    ];
    for (name, help, unit, v) in gauges {
        gauge(enc, name, help, unit, v)?;
    }
    let counters: [(&str, &str, u64); 16] = [
        (
            "kvd_engine_user_bytes_written",
            "Bytes written by users (keys and values).",
            s.user_bytes_written,
        ),
        (
            "kvd_engine_wal_bytes_written",
            "Bytes appended to the WAL.",
            s.wal_bytes_written,
        ),
        (
            "kvd_engine_wal_write_groups",
            "Commit groups written to the WAL (one append each).",
            s.write_groups,
        ),
        ("kvd_engine_wal_syncs", "WAL fsyncs.", s.wal_syncs),
        (
            "kvd_engine_flush_bytes_written",
            "Bytes written to SSTables by flushes.",
            s.flush_bytes_written,
        ),
        (
            "kvd_engine_compaction_bytes_written",
            "Bytes written to SSTables by compactions.",
            s.compaction_bytes_written,
        ),
        (
            "kvd_engine_compaction_bytes_read",
            "Bytes read by compactions.",
            s.compaction_bytes_read,
        ),
        (
            "kvd_engine_flushes",
            "Memtable flushes completed.",
            s.flushes,
        ),
        (
            "kvd_engine_compactions",
            "Compactions completed.",
            s.compactions,
        ),
        (
            "kvd_engine_stall_slowdowns",
            "Writes delayed because L0 or the memtables were full.",
            s.stall_slowdowns,
        ),
        (
            "kvd_engine_stall_stops",
            "Writes that had to stop and wait.",
            s.stall_stops,
        ),
        (
            "kvd_engine_bloom_checks",
            "Bloom filter probes.",
            s.bloom_checks,
        ),
        (
            "kvd_engine_bloom_negatives",
            "Bloom probes that ruled the key out.",
            s.bloom_negatives,
        ),
        (
            "kvd_engine_bloom_false_positives",
            "Bloom probes that said maybe for an absent key.",
            s.bloom_false_positives,
        ),
        (
            "kvd_engine_block_cache_hits",
            "Block cache hits.",
            s.block_cache_hits,
        ),
        (
            "kvd_engine_block_cache_misses",
            "Block cache misses.",
            s.block_cache_misses,
        ),
    ];
    counter_list(enc, &counters)?;
    counter(
        enc,
        "kvd_engine_stall_seconds",
        "Time writers spent stalled.",
        s.stall_micros as f64 / 1e6,
    )
}

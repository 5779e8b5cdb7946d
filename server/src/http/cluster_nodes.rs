//! `GET /cluster/nodes`: every node of the cluster as this node sees it (addresses,
//! failure-detector state, partitions, hints pending, last anti-entropy exchange) and
//! the partition map, as JSON (docs/http-api.md, "Cluster nodes"). A node that is not
//! in a cluster answers 404 `not_clustered`. Needs authentication when RESP does: it
//! names every node's addresses.

use super::error::ApiError;
use super::session::{Peer, Session};
use crate::state::Shared;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use kv_cluster::view::{ClusterView, NodeView, SyncSeen};
use serde_json::{json, Value};
use std::sync::Arc;

/// GET /cluster/nodes
pub async fn cluster_nodes(
    State(srv): State<Arc<Shared>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let _session = Session::open_authenticated(&srv, peer, &headers).await?;
    let view = cluster_view(&srv)?;
    Ok(Json(render(&view, unix_ms())))
}

/// The ring's view, or 404 on a node that is not in a cluster.
pub fn cluster_view(srv: &Shared) -> Result<ClusterView, ApiError> {
    srv.ring.get().and_then(|r| r.view()).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_clustered",
            "this node is not in a cluster (cluster-enabled no)",
        )
    })
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The JSON document, with ages computed against `now_ms`.
pub fn render(view: &ClusterView, now_ms: u64) -> Value {
    let map: Vec<Vec<String>> = view
        .partitions
        .iter()
        .map(|pref| pref.iter().map(ToString::to_string).collect())
        .collect();
    json!({
        "node": view.me.to_string(),
        "layout_version": view.layout_version,
        "replicas": view.replicas,
        "write_quorum": view.write_quorum,
        "read_quorum": view.read_quorum,
        "nodes": view.nodes.iter().map(|n| node(n, now_ms)).collect::<Vec<_>>(),
        "partition_map": map,
    })
}

fn node(n: &NodeView, now_ms: u64) -> Value {
    json!({
        "id": n.id.to_string(),
        "myself": n.myself,
        "state": n.state.name(),
        "resp_addr": n.resp_addr,
        "http_addr": n.http_addr,
        "bus_addr": n.bus_addr,
        "partitions": n.partitions.len(),
        "partition_ids": n.partitions,
        "first_partitions": n.first_partitions,
        "hints_pending": n.hints_pending,
        "last_anti_entropy": n.anti_entropy.map(|s| sync(s, now_ms)),
    })
}

fn sync(s: SyncSeen, now_ms: u64) -> Value {
    json!({
        "at_unix_ms": s.at_ms,
        "age_seconds": now_ms.saturating_sub(s.at_ms) as f64 / 1000.0,
        "ok": s.ok,
    })
}

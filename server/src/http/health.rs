//! `GET /health` (liveness: the process serves requests) and `GET /ready` (readiness:
//! it can take writes now), both JSON and open to everyone, as load balancers and
//! orchestrators call them without credentials (docs/http-api.md, "Health").

use crate::state::Shared;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use kv_cluster::view::ClusterView;
use serde_json::{json, Value};
use std::sync::Arc;

/// GET /health: 200 while the process runs, 503 once it is shutting down.
pub async fn health(State(srv): State<Arc<Shared>>) -> (StatusCode, Json<Value>) {
    let stopping = srv.shutdown.is_triggered();
    let status = if stopping {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let text = if stopping { "shutting_down" } else { "ok" };
    (
        status,
        Json(json!({
            "status": text,
            "uptime_seconds": srv.started.elapsed().as_secs(),
        })),
    )
}

/// GET /ready: 200 if every check passes, else 503; the body says which failed.
pub async fn ready(State(srv): State<Arc<Shared>>) -> (StatusCode, Json<Value>) {
    let stats = srv.store.db.stats();
    let engine_ok = stats.background_error.is_none();
    let engine = json!({
        "ok": engine_ok,
        "detail": stats.background_error.unwrap_or_else(|| "writable".into()),
    });
    let shutdown_ok = !srv.shutdown.is_triggered();
    let mut checks = json!({
        "engine": engine,
        "shutdown": { "ok": shutdown_ok, "detail": if shutdown_ok { "running" } else { "shutting down" } },
    });
    let mut ready = engine_ok && shutdown_ok;
    if let Some(ring) = srv.ring.get() {
        let (ok, detail) = match ring.view() {
            Some(view) => quorum_check(&view),
            None => (false, "the ring keeps no cluster view".to_string()),
        };
        ready &= ok;
        checks["cluster"] = json!({ "ok": ok, "detail": detail });
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!({ "ready": ready, "checks": checks })))
}

/// The cluster check: every partition this node holds has a quorum of up replicas as
/// its failure detector sees them (R, W and a majority of N; see
/// [`ClusterView::quorum_needed`]). Partitions it does not hold do not count: a
/// load balancer asks whether this node can serve its own keys' replicas.
fn quorum_check(view: &ClusterView) -> (bool, String) {
    let need = view.quorum_needed();
    match view.own_partitions_without_quorum() {
        None => (
            false,
            "no layout yet: waiting for the cluster to form".into(),
        ),
        Some(short) if short.is_empty() => (
            true,
            format!("every partition of this node has at least {need} up replicas"),
        ),
        Some(short) => {
            let shown: Vec<String> = short.iter().take(8).map(u16::to_string).collect();
            let more = if short.len() > 8 { ", ..." } else { "" };
            (
                false,
                format!(
                    "{} of this node's partitions have fewer than {need} up replicas (partitions {}{more})",
                    short.len(),
                    shown.join(", ")
                ),
            )
        }
    }
}

//! `GET /health` (liveness: the process serves requests) and `GET /ready` (readiness:
//! it can take writes now), both JSON and open to everyone, as load balancers and
//! orchestrators call them without credentials (docs/http-api.md, "Health").

use crate::state::Shared;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
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
        // The ring says "ok" once every partition has a quorum of live replicas.
        let state = ring
            .info()
            .into_iter()
            .find(|(k, _)| k == "cluster_state")
            .map_or_else(|| "unknown".to_string(), |(_, v)| v);
        let ok = state == "ok";
        ready &= ok;
        checks["cluster"] = json!({ "ok": ok, "detail": format!("cluster_state {state}") });
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!({ "ready": ready, "checks": checks })))
}

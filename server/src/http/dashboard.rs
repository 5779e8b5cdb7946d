//! `GET /`: a small dashboard built into the binary (dashboard.html, no external
//! assets) that polls /ready, /metrics and /cluster/nodes every 2 s: readiness, commands
//! per second over the last 5 minutes, clients, engine levels, per-command calls and
//! mean latency, and on a cluster node every node's health, the partition map, hints
//! and repairs. tests/tests/dashboard_browser.rs runs it in headless Chromium.

use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;

/// The page.
const PAGE: &str = include_str!("dashboard.html");

/// GET /
pub async fn dashboard() -> impl IntoResponse {
    let kind = [(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    )];
    (kind, PAGE)
}

//! `GET /`: a small dashboard built into the binary (dashboard.html, no external
//! assets) that polls /ready and /metrics every 2 s: readiness, commands per second over
//! the last 5 minutes, clients, engine levels, per-command calls and mean latency.

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

//! The HTTP front end on `--http-port` (docs/http-api.md): another way into the same
//! store, not another store. Requests become kvd clients ([`session`]) that run the
//! ordinary commands, so a command's logic stays written once.
//!
//! One file per concept: [`settings`] (parameters), [`session`] (a request as a client),
//! [`kv`] and [`list`] (the REST API), [`etag`] (versions as ETags), [`body`] (bodies and
//! JSON values), [`uri`] (keys and query parameters), [`error`] (JSON errors),
//! [`health`] (/health and /ready), [`metrics`] (/metrics) and [`cluster_metrics`]
//! (its cluster part), [`cluster_nodes`] (/cluster/nodes), [`dashboard`] (/).

pub mod body;
pub mod cluster_metrics;
pub mod cluster_nodes;
pub mod dashboard;
pub mod error;
pub mod etag;
pub mod health;
pub mod kv;
pub mod list;
pub mod metrics;
pub mod session;
pub mod settings;
pub mod uri;

use crate::state::Shared;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Router};
use error::ApiError;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use session::Peer;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// A client must send a request's headers within this time (slow-header attacks hold a
/// connection and its memory otherwise).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Every route of the API.
pub fn router(srv: Arc<Shared>) -> Router {
    Router::new()
        .route("/kv", get(list::list))
        .route("/kv/*key", get(kv::get).put(kv::put).delete(kv::delete))
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/metrics", get(metrics::metrics))
        .route("/cluster/nodes", get(cluster_nodes::cluster_nodes))
        .route("/", get(dashboard::dashboard))
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this path does not take that method; see docs/http-api.md",
            )
        })
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no_route",
                "no such path; see docs/http-api.md",
            )
        })
        .with_state(srv)
}

/// Listens on the HTTP port at every bind address (none if the port is 0).
pub async fn bind(config: &crate::config::Config) -> Result<Vec<TcpListener>, String> {
    let mut listeners = Vec::new();
    if config.http.port == 0 {
        return Ok(listeners);
    }
    for b in &config.bind {
        let addr = format!("{}:{}", b.trim_start_matches('-'), config.http.port);
        let l = TcpListener::bind(&addr)
            .await
            .map_err(|e| format!("cannot listen for HTTP on {addr}: {e}"))?;
        listeners.push(l);
    }
    Ok(listeners)
}

/// Accepts HTTP connections on `listener` until the task is aborted. Protected mode
/// refuses a connection as it does a RESP one, with one 403 answer.
pub async fn accept_loop(srv: Arc<Shared>, listener: TcpListener) {
    let app = router(srv.clone());
    loop {
        let (stream, remote) = crate::server::next_connection(&listener).await;
        let local = stream.local_addr().unwrap_or(remote);
        let _ = stream.set_nodelay(true);
        let denied = srv.acl.deny_at_accept(&srv.config.read(), remote.ip());
        let app = if denied {
            Router::new().fallback(|| async { protected_mode_refusal() })
        } else {
            app.clone()
        };
        let service = TowerToHyperService::new(app.layer(Extension(Peer { remote, local })));
        let srv = srv.clone();
        tokio::spawn(async move {
            let builder = {
                let mut b = hyper::server::conn::http1::Builder::new();
                b.timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .keep_alive(!denied);
                b
            };
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = srv.shutdown.wait() => {
                    // Finish the request in flight, then close.
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
}

/// Protected mode's refusal, Redis's DENIED text as a JSON error.
fn protected_mode_refusal() -> ApiError {
    let text = crate::acl::DENIED
        .trim_start_matches('-')
        .trim_end_matches("\r\n");
    ApiError::new(StatusCode::FORBIDDEN, "denied", text)
}

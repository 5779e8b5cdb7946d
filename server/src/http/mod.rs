//! The HTTP front end on `--http-port` (docs/http-api.md): another way into the same
//! store, not another store. Requests become kvd clients ([`session`]) that run the
//! ordinary commands, so a command's logic stays written once.
//!
//! One file per concept: [`settings`] (parameters), [`session`] (a request as a client),
//! [`kv`] and [`list`] (the REST API), [`etag`] (versions as ETags), [`body`] (bodies and
//! JSON values), [`uri`] (keys and query parameters), [`error`] (JSON errors),
//! [`health`] (/health and /ready), [`metrics`] (/metrics) and [`cluster_metrics`]
//! (its cluster part), [`cluster_nodes`] (/cluster/nodes), [`dashboard`] (/),
//! [`tls_serve`] (HTTPS on `http-tls-port`).

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
pub mod tls_serve;
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
use tokio_rustls::TlsAcceptor;

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

/// Listens on `port` (`http-port` or `http-tls-port`) at every bind address (none if
/// the port is 0).
pub async fn bind(config: &crate::config::Config, port: u16) -> Result<Vec<TcpListener>, String> {
    let mut listeners = Vec::new();
    if port == 0 {
        return Ok(listeners);
    }
    for b in &config.bind {
        let addr = format!("{}:{}", b.trim_start_matches('-'), port);
        let l = TcpListener::bind(&addr)
            .await
            .map_err(|e| format!("cannot listen for HTTP on {addr}: {e}"))?;
        listeners.push(l);
    }
    Ok(listeners)
}

/// Accepts HTTP connections on `listener` until the task is aborted; HTTPS ones when
/// `tls` is given (`http-tls-port`). Protected mode refuses a plain connection as it
/// does a RESP one, with one 403 answer; a TLS one is closed before its handshake, as
/// the RESP TLS port does (answering would first cost a handshake).
pub async fn accept_loop(srv: Arc<Shared>, listener: TcpListener, tls: Option<TlsAcceptor>) {
    let app = router(srv.clone());
    loop {
        let (stream, remote) = crate::server::next_connection(&listener).await;
        let local = stream.local_addr().unwrap_or(remote);
        let _ = stream.set_nodelay(true);
        let denied = srv.acl.deny_at_accept(&srv.config.read(), remote.ip());
        if denied && tls.is_some() {
            tracing::debug!(client = %remote, "protected mode: closing non-loopback HTTPS connection");
            continue;
        }
        let app = if denied {
            Router::new().fallback(|| async { protected_mode_refusal() })
        } else {
            app.clone()
        };
        let service = TowerToHyperService::new(app.layer(Extension(Peer { remote, local })));
        let srv = srv.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_connection(&srv, TokioIo::new(stream), service, !denied).await,
                Some(acceptor) => {
                    if let Some(session) =
                        tls_serve::handshake(&srv, &acceptor, stream, remote).await
                    {
                        serve_connection(&srv, TokioIo::new(session), service, true).await;
                    }
                }
            }
        });
    }
}

/// Serves HTTP/1.1 requests on one connection (plain or TLS) until it closes, or until
/// shutdown, when the request in flight is finished first.
async fn serve_connection<I, S>(srv: &Shared, io: I, service: S, keep_alive: bool)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming> + Send,
    S::Future: Send + 'static,
    S::ResBody: Send + 'static,
    <S::ResBody as hyper::body::Body>::Data: Send,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let builder = {
        let mut b = hyper::server::conn::http1::Builder::new();
        b.timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .keep_alive(keep_alive);
        b
    };
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = srv.shutdown.wait() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Protected mode's refusal, Redis's DENIED text as a JSON error.
fn protected_mode_refusal() -> ApiError {
    let text = crate::acl::DENIED
        .trim_start_matches('-')
        .trim_end_matches("\r\n");
    ApiError::new(StatusCode::FORBIDDEN, "denied", text)
}

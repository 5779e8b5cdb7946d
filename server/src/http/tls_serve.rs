//! HTTPS on `http-tls-port` (docs/http-api.md, "TLS"): the HTTP API behind the same
//! certificates, CA and client-certificate policy (`tls-*`) as the RESP TLS port.
//!
//! Why a port of its own rather than HTTPS whenever certificates are set: it is Redis's
//! rule for RESP (`tls-port` beside `port`), so an operator turns on each listener by
//! naming its port, plain and TLS can run side by side during a migration, and setting
//! certificates for the cluster bus (`tls-cluster`) never silently changes what the
//! HTTP port speaks.

use crate::config::Config;
use crate::state::Shared;
use crate::tls::{listener, server_config};
use std::net::SocketAddr;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// The acceptor for `http-tls-port`, or `None` when HTTPS is off. Reads the certificate
/// files now, so a bad file stops kvd at start.
pub fn acceptor(config: &Config) -> Result<Option<TlsAcceptor>, String> {
    if config.http.tls_port == 0 {
        return Ok(None);
    }
    let shared = server_config(&config.tls, config.tls.auth_clients)
        .map_err(|e| format!("http-tls-port: {e}"))?;
    let mut http = (*shared).clone();
    // HTTP/1.1 only: say so in ALPN, so a client that offers h2 does not try it.
    http.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(std::sync::Arc::new(http))))
}

/// The TLS session of an accepted HTTPS connection, or `None` (logged) when the
/// handshake fails: clear text on the TLS port, an untrusted client certificate, a
/// client silent past `tls-handshake-timeout-ms`, or shutdown.
pub async fn handshake(
    srv: &Shared,
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    remote: SocketAddr,
) -> Option<TlsStream<TcpStream>> {
    match listener::handshake(srv, acceptor, stream, std::future::pending()).await {
        Ok(tls) => Some(tls),
        Err(e) => {
            tracing::debug!(client = %remote, error = %e, "HTTPS handshake failed; closing");
            None
        }
    }
}

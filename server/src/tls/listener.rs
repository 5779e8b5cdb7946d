//! The TLS accept loop: each connection is registered as a client before its handshake
//! (so handshakes count toward `maxclients`), the handshake runs in the connection's own
//! task under a deadline, and only a completed handshake reaches `connection::serve`. A
//! client that sends garbage, or nothing, costs one task until its handshake fails or
//! times out; nobody else waits for it.

use super::configs::server_config;
use super::settings::TlsSettings;
use crate::connection;
use crate::server::{admit, next_connection};
use crate::state::{ClientInfo, Shared};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// The acceptor for `tls-port`, or `None` when TLS is off (`tls-port 0`).
pub fn acceptor(s: &TlsSettings) -> Result<Option<TlsAcceptor>, String> {
    if s.port == 0 {
        return Ok(None);
    }
    let config = server_config(s, s.auth_clients)?;
    Ok(Some(TlsAcceptor::from(config)))
}

/// Accepts TLS clients on `listener` until the task is aborted.
pub async fn accept_loop(srv: Arc<Shared>, listener: TcpListener, acceptor: TlsAcceptor) {
    loop {
        let (stream, peer) = next_connection(&listener).await;
        if srv.acl.deny_at_accept(&srv.config.read(), peer.ip()) {
            // Protected mode (defect 11): closed before any handshake work, as below.
            tracing::debug!(client = %peer, "protected mode: closing non-loopback TLS connection");
            continue;
        }
        let Some(info) = admit(&srv, &stream, peer) else {
            // A TLS client cannot read a clear-text error before its handshake, and
            // handshaking only to refuse would spend the CPU the limit protects: close
            // (as Redis does for TLS).
            tracing::debug!(client = %peer, "max number of clients reached; closing TLS connection");
            continue;
        };
        tokio::spawn(handshake_then_serve(
            srv.clone(),
            acceptor.clone(),
            stream,
            info,
        ));
    }
}

async fn handshake_then_serve(
    srv: Arc<Shared>,
    acceptor: TlsAcceptor,
    stream: TcpStream,
    info: Arc<ClientInfo>,
) {
    match handshake(&srv, &acceptor, stream, info.kill.notified()).await {
        Ok(tls) => connection::serve(srv, tls, info).await,
        Err(e) => {
            tracing::debug!(client = %info.addr, error = %e, "TLS handshake failed; closing");
            srv.clients.lock().remove(&info.id);
        }
    }
}

/// The server side of a TLS handshake on `stream` under `tls-handshake-timeout-ms`,
/// abandoned when the server shuts down or `cancelled` completes (CLIENT KILL). Shared
/// by the RESP TLS port and HTTPS (`http::tls_serve`).
pub async fn handshake(
    srv: &Shared,
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    cancelled: impl std::future::Future<Output = ()>,
) -> Result<TlsStream<TcpStream>, String> {
    let limit = Duration::from_millis(srv.config.read().tls.handshake_timeout_ms);
    tokio::select! {
        r = tokio::time::timeout(limit, acceptor.accept(stream)) => match r {
            Ok(Ok(tls)) => Ok(tls),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no handshake within {} ms", limit.as_millis())),
        },
        _ = srv.shutdown.wait() => Err("server shutting down".to_string()),
        _ = cancelled => Err("killed".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::tls::test_certs::TestCerts;
    use crate::tls::{client_config, AuthClients};
    use rustls::pki_types::ServerName;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A reply much larger than the pipe under the TLS session: the connection's writes
    /// block again and again, and the last TLS records are left inside the session
    /// unless the connection flushes it. The client must still get every byte.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn large_reply_through_a_small_pipe_arrives_whole() {
        let dir = tempfile::tempdir().unwrap();
        let certs = TestCerts::generate(dir.path()).unwrap();
        let path = |p: &std::path::Path| p.display().to_string();
        let settings = TlsSettings {
            port: 1,
            cert_file: path(&certs.server_cert),
            key_file: path(&certs.server_key),
            ca_cert_file: path(&certs.ca),
            ..TlsSettings::default()
        };
        let config = Config {
            dir: dir.path().join("data"),
            ..Config::default()
        };
        let srv = tokio::task::spawn_blocking(move || crate::server::open(config))
            .await
            .unwrap()
            .unwrap();
        let (server_end, client_end) = tokio::io::duplex(1024);
        let acceptor = TlsAcceptor::from(server_config(&settings, AuthClients::Yes).unwrap());
        let info = crate::server::register(&srv, "pipe".into(), "pipe".into()).unwrap();
        let serving = tokio::spawn({
            let srv = srv.clone();
            async move {
                let tls = acceptor.accept(server_end).await.unwrap();
                connection::serve(srv, tls, info).await;
            }
        });
        let connector = tokio_rustls::TlsConnector::from(client_config(&settings).unwrap());
        let name = ServerName::try_from("localhost").unwrap();
        let mut c = connector.connect(name, client_end).await.unwrap();
        let big: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let mut set = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n", big.len()).into_bytes();
        set.extend_from_slice(&big);
        set.extend_from_slice(b"\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
        c.write_all(&set).await.unwrap();
        c.flush().await.unwrap();
        let mut want = b"+OK\r\n".to_vec();
        want.extend_from_slice(format!("${}\r\n", big.len()).as_bytes());
        want.extend_from_slice(&big);
        want.extend_from_slice(b"\r\n");
        let mut got = vec![0u8; want.len()];
        let read = tokio::time::timeout(Duration::from_secs(20), c.read_exact(&mut got)).await;
        assert!(read.is_ok(), "the reply's tail never arrived");
        assert!(got == want, "reply differs");
        drop(c);
        tokio::time::timeout(Duration::from_secs(20), serving)
            .await
            .expect("connection ends when the client goes")
            .unwrap();
        assert!(srv.clients.lock().is_empty());
    }
}

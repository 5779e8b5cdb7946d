//! One HTTP request as a kvd client: registered like a connection (CLIENT LIST, maxclients,
//! the shutdown drain), authenticated by running AUTH, and running its commands through
//! the same path a RESP connection uses: `cluster_mode::execute` on a cluster node,
//! otherwise `commands::execute`, off the async worker when the command may block.

use super::error::ApiError;
use crate::connection::run_one;
use crate::protocol::Reply;
use crate::state::{Client, Shared};
use axum::http::{header, HeaderMap};
use base64::Engine;
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;

/// Addresses of the TCP connection a request came on.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    /// The client's address.
    pub remote: SocketAddr,
    /// Ours.
    pub local: SocketAddr,
}

/// A registered client for the time of one request.
pub struct Session {
    srv: Arc<Shared>,
    client: Client,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.srv.clients.lock().remove(&self.client.info.id);
    }
}

/// The user and password of an `Authorization` header: `Bearer <password>` for the
/// default user, or `Basic base64(user:password)`.
pub fn credentials(headers: &HeaderMap) -> Result<Option<(Bytes, Bytes)>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::bad_request(
            "Authorization must be 'Bearer <password>' or 'Basic <base64 of user:password>'",
        )
    };
    let text = value.to_str().map_err(|_| bad())?;
    let (scheme, rest) = text.trim().split_once(' ').ok_or_else(bad)?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        let user = Bytes::from_static(crate::acl::DEFAULT_USER.as_bytes());
        return Ok(Some((user, Bytes::copy_from_slice(rest.as_bytes()))));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .map_err(|_| bad())?;
        let colon = decoded.iter().position(|&b| b == b':').ok_or_else(bad)?;
        let user = Bytes::copy_from_slice(&decoded[..colon]);
        let pass = Bytes::copy_from_slice(&decoded[colon + 1..]);
        return Ok(Some((user, pass)));
    }
    Err(bad())
}

impl Session {
    /// Registers the request as a client and authenticates it from `headers`. Without an
    /// `Authorization` header it runs as the default user if that user needs no password
    /// (its commands then get NOAUTH, as a RESP connection's would).
    pub async fn open(
        srv: &Arc<Shared>,
        peer: Peer,
        headers: &HeaderMap,
    ) -> Result<Session, ApiError> {
        let creds = credentials(headers)?;
        if srv.shutdown.is_triggered() {
            return Err(ApiError::unavailable("the server is shutting down"));
        }
        let info = crate::server::register(srv, peer.remote.to_string(), peer.local.to_string())
            .ok_or_else(|| ApiError::unavailable("max number of clients reached"))?;
        *info.name.lock() = "http".into();
        let client = Client::new(info, srv.acl.open_default());
        let mut session = Session {
            srv: srv.clone(),
            client,
        };
        if let Some((user, pass)) = creds {
            let auth = vec![Bytes::from_static(b"AUTH"), user, pass];
            if let Reply::Error(e) = session.run(auth).await {
                return Err(ApiError::from_command(&e));
            }
        }
        Ok(session)
    }

    /// [`Session::open`] for a page that reads the server's state without running a
    /// command (`/metrics`, `/cluster/nodes`): 401 where a RESP client would get NOAUTH.
    pub async fn open_authenticated(
        srv: &Arc<Shared>,
        peer: Peer,
        headers: &HeaderMap,
    ) -> Result<Session, ApiError> {
        let session = Session::open(srv, peer, headers).await?;
        if !session.authenticated() {
            return Err(ApiError::from_command("NOAUTH Authentication required."));
        }
        Ok(session)
    }

    /// True if this request may run commands (authenticated, or no password needed).
    pub fn authenticated(&self) -> bool {
        !self.client.auth_required(&self.srv)
    }

    /// Runs one command exactly as a RESP connection would and returns its reply.
    pub async fn run(&mut self, args: Vec<Bytes>) -> Reply {
        let srv = &self.srv;
        if let Some(ring) = srv.ring.get() {
            return crate::cluster_mode::execute(srv, ring, &mut self.client, &args).await;
        }
        let reply = if crate::commands::may_block(&args, &srv.store.db) {
            tokio::task::block_in_place(|| run_one(srv, &mut self.client, &args))
        } else {
            run_one(srv, &mut self.client, &args)
        };
        // The reply may show a RESP client's deferred write (connection.rs, `flush`):
        // it goes out only once that write is in the operating system.
        match srv.store.db.write_out_wal() {
            Ok(()) => reply,
            Err(e) => Reply::from(e),
        }
    }

    /// `?consistency=one|quorum|all|serial` (case-insensitive): on a cluster node, the
    /// level of this request's commands, as `CLUSTER CONSISTENCY` sets it for a RESP
    /// connection (docs/cluster.md; SERIAL reads through consensus,
    /// docs/consistency.md). A single node gives every level already: the value is
    /// checked and otherwise ignored there.
    pub fn consistency(&mut self, level: Option<&[u8]>) -> Result<(), ApiError> {
        let Some(level) = level else {
            return Ok(());
        };
        let parsed: Option<kv_cluster::config::Consistency> =
            std::str::from_utf8(level).ok().and_then(|l| l.parse().ok());
        let Some(parsed) = parsed else {
            return Err(ApiError::bad_request(
                "query parameter 'consistency' must be one, quorum, all or serial",
            ));
        };
        if self.srv.ring.get().is_some() {
            self.client.consistency = parsed;
        }
        Ok(())
    }

    /// Runs `SELECT db` if the request names a database.
    pub async fn select(&mut self, db: Option<u64>) -> Result<(), ApiError> {
        let Some(db) = db else {
            return Ok(());
        };
        let select = vec![Bytes::from_static(b"SELECT"), Bytes::from(db.to_string())];
        match self.run(select).await {
            Reply::Error(e) => Err(ApiError::from_command(&e)),
            _ => Ok(()),
        }
    }
}

//! Consensus commands run by their key's proposer (docs/consistency.md, "One proposer
//! per key"; kv_cluster::forward says why). A node that is not the key's proposer sends
//! the command as the client wrote it, with the client's database, consistency level and
//! IDEMPOTENT request id; the proposer runs it as its own client's (consensus.rs) and
//! sends back the reply. The connection's other state stays here, so commands that
//! change it are not sent: LOCK (a WAIT sleeps on the connection) and scripts (the
//! script cache is per node, as in Redis Cluster).

use super::consensus;
use super::route::SCRIPT_RUNS;
use crate::commands::table::{self, CommandSpec, WRITE};
use crate::keyspace::idempotency::{decode_reply, encode_reply};
use crate::protocol::Reply;
use crate::state::{Client, Shared};
use bytes::Bytes;
use kv_cluster::forward::{ForwardError, ForwardFuture, Forwarded};
use kv_cluster::replica_api::ItemKey;
use kv_cluster::ring::Ring;
use std::sync::Arc;

/// The reply of `args` on `key` from the key's proposer, or `None` when this node runs
/// it: it is the proposer, the command stays with its connection, or the proposer did
/// not get it.
pub(super) async fn at_proposer(
    ring: &Arc<dyn Ring>,
    client: &Client,
    spec: &'static CommandSpec,
    args: &[Bytes],
    key: &Bytes,
    request: Option<&Bytes>,
) -> Option<Reply> {
    if !travels(spec) {
        return None;
    }
    let item = ItemKey {
        db: client.db as u32,
        key: key.clone(),
    };
    let node = ring.proposer(&item)?;
    let command = Forwarded {
        db: item.db,
        consistency: client.consistency,
        args: args.to_vec(),
        request: request.cloned(),
    };
    match ring.forward(node, command).await {
        Ok(bytes) => match decode_reply(&bytes) {
            // The proposer could not coordinate (its clock is off, it is shutting down):
            // it ran nothing, so this node proposes.
            Some(Reply::Error(e)) if NOT_RUN.iter().any(|p| e.starts_with(p)) => None,
            Some(reply) => Some(reply),
            None => Some(Reply::error(format!(
                "ERR the reply of node {node}, the key's proposer, does not decode; the \
                 command may have been applied"
            ))),
        },
        Err(ForwardError::NotSent(_)) => None,
        // IDEMPOTENT: running it here is safe whatever the proposer did, since the
        // round finds the request in the key's record if it was applied.
        Err(ForwardError::Unknown(_)) if request.is_some() => None,
        Err(ForwardError::Unknown(why)) => Some(Reply::error(format!(
            "TIMEOUT node {node}, the key's proposer, did not answer ({why}); the command \
             may still be applied"
        ))),
    }
}

/// Error replies of a proposer that ran nothing: the sender runs the command itself.
const NOT_RUN: &[&str] = &[
    "TRYAGAIN this node cannot coordinate",
    SHUTTING_DOWN,
    NOT_JOINED,
];
const SHUTTING_DOWN: &str = "TRYAGAIN the key's proposer is shutting down";
const NOT_JOINED: &str = "TRYAGAIN this node has not joined its cluster yet";

/// Writes only (a read's CLIENT TRACKING belongs to its connection), and none that
/// need this connection later.
fn travels(spec: &CommandSpec) -> bool {
    spec.flags & WRITE != 0 && spec.name != "lock" && !SCRIPT_RUNS.contains(&spec.name)
}

/// Runs commands other nodes send here as their key's proposer. Holds the server
/// weakly: the ring must not keep it alive.
pub fn serve(srv: &Arc<Shared>, ring: &Arc<dyn Ring>) {
    let weak = Arc::downgrade(srv);
    ring.serve_forwarded(Arc::new(move |command: Forwarded| -> ForwardFuture {
        let weak = weak.clone();
        Box::pin(async move {
            let reply = match weak.upgrade() {
                Some(srv) => run(&srv, command).await,
                None => Reply::error(SHUTTING_DOWN),
            };
            Bytes::from(encode_reply(&reply))
        })
    }));
}

/// Runs one command sent by another node, as a client of this node in its database.
async fn run(srv: &Arc<Shared>, command: Forwarded) -> Reply {
    let Some(ring) = srv.ring.get().cloned() else {
        return Reply::error(NOT_JOINED);
    };
    // Sent by an authenticated peer, and still checked: a database this node does not
    // have would index past its keyspaces.
    if command.db as usize >= srv.store.databases() {
        return Reply::error("ERR DB index is out of range");
    }
    let Some(spec) = command
        .args
        .first()
        .and_then(|name| table::lookup(name))
        .filter(|s| travels(s))
    else {
        return Reply::error("ERR this command is not run for another node");
    };
    if !spec.arity_ok(command.args.len()) {
        return Reply::error(format!(
            "ERR wrong number of arguments for '{}' command",
            spec.name
        ));
    }
    let Some(key) = spec.keys(&command.args).first().map(|k| (*k).clone()) else {
        return Reply::error("ERR a command sent to its proposer names no key");
    };
    let mut client = Client::new(crate::server::internal_client(srv, "proposer"), None);
    client.db = command.db as usize;
    client.consistency = command.consistency;
    consensus::run_here(
        srv,
        &ring,
        &mut client,
        spec,
        &command.args,
        key,
        command.request.as_ref(),
    )
    .await
}

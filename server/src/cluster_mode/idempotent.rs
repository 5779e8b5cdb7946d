//! IDEMPOTENT (and HTTP `Idempotency-Key`) on a cluster node (docs/consistency.md,
//! "Idempotent retries"). On one node the first reply is kept in a keyspace of its own;
//! on the ring it must travel with the key's record, or a retry reaching other replicas
//! or another coordinator would not find it. So the wrapped command runs as the change
//! function of its key's consensus round, and the request record (id, reply, expiry)
//! is part of the record that round writes (kv_cluster::request_record). A retry's round
//! reads the record, finds the id and answers the stored reply without applying again.
//!
//! Only commands of one key: a request record lives in one key's record, and multi-key
//! consensus does not exist yet. Only in linearizable databases: an eventual database's
//! writes have no single order a retry could find the first reply in (route.rs).

use super::consensus;
use super::route::{self, Route};
use crate::commands::idempotent::wrapped;
use crate::commands::table::{self, CommandSpec};
use crate::keyspace::idempotency::{decode_reply, encode_reply, MAX_WINDOW_MS};
use crate::keyspace::now_ms;
use crate::protocol::Reply;
use crate::state::{Client, Shared};
use bytes::Bytes;
use kv_cluster::coordinator::Change;
use kv_cluster::ring::Ring;
use kv_cluster::{Body, NewRequest, Record};
use std::sync::Arc;

/// IDEMPOTENT around a command of several keys (or none).
const ONE_KEY: &str = "CROSSSLOT IDEMPOTENT on a kvd cluster wraps commands of one key: the \
     first reply is kept in that key's record (IDEMPOTENT around a transaction is not built yet) \
     (docs/consistency.md)";

/// `IDEMPOTENT request-id command [arg ...]` in a linearizable database.
pub async fn run(srv: &Shared, ring: &Arc<dyn Ring>, client: &mut Client, args: &[Bytes]) -> Reply {
    let spec = match wrapped(args) {
        Ok(spec) => spec,
        Err(e) => return e,
    };
    let (id, inner) = (&args[1], &args[2..]);
    let parent = table::lookup(&inner[0])
        .filter(|p| !p.subcommands.is_empty())
        .map(|p| p.name);
    match route::route(spec, parent, inner, true) {
        Route::Consensus => {}
        Route::Transaction => return Reply::error(ONE_KEY),
        Route::Refused(why) => return Reply::error(why),
        _ => {
            return Reply::error(format!(
                "ERR IDEMPOTENT on a cluster wraps writes that run through consensus, and \
                 '{}' does not (docs/consistency.md)",
                spec.name
            ))
        }
    }
    let Some(key) = the_key(spec, inner) else {
        return Reply::error(ONE_KEY);
    };
    let reply = consensus::one_key(srv, ring, client, spec, inner, key, Some(id)).await;
    // No waiting inside IDEMPOTENT, as on one node: a LOCK ... WAIT that found the lock
    // held answered (and remembered) nil.
    client.wait = None;
    reply
}

/// The one key `inner` names, or `None` for none or several. (Scripts are not write
/// commands, so IDEMPOTENT never wraps them, here or on one node.)
fn the_key(spec: &CommandSpec, inner: &[Bytes]) -> Option<Bytes> {
    let mut keys = spec.keys(inner);
    keys.sort();
    keys.dedup();
    match keys[..] {
        [key] => Some(key.clone()),
        _ => None,
    }
}

/// The stored reply of request `id` if the key's record remembers it (versions resolved
/// to the write that recorded it). A stored reply that does not decode is answered as
/// an error: running the command again could apply it twice.
pub fn replay(state: Option<&Record>, id: &[u8]) -> Option<Reply> {
    let found = state?.request(id, now_ms())?;
    let Some(mut reply) = decode_reply(&found.reply) else {
        return Some(Reply::error(format!(
            "ERR the stored reply of request {} does not decode; not running it again",
            String::from_utf8_lossy(id)
        )));
    };
    reply.commit_versions(found.written_at.ts);
    Some(reply)
}

/// `change` (what the command made of `state`, having answered `reply`) with request
/// `id` remembered. An error that applied nothing is not remembered, as on one node: a
/// retry runs it again. Any other reply is, even when the command changed nothing (SET
/// NX on a held key): the record is then written again as it was, with the request, so
/// a retry gets the same answer. That write gives the key a new version, as a write of
/// the same value would.
pub fn remember(
    srv: &Shared,
    id: &Bytes,
    state: Option<&Record>,
    reply: &Reply,
    change: Change,
) -> Change {
    let window = srv.config.read().idempotency_window_ms.min(MAX_WINDOW_MS);
    let request = NewRequest {
        id: id.clone(),
        expire_at: now_ms().saturating_add(window as i64),
        reply: Bytes::from(encode_reply(reply)),
    };
    let (body, expire_at) = match change {
        Change::Write {
            body, expire_at, ..
        } => (body, expire_at),
        // Commands never make whole records (transactions do).
        exact @ Change::Exact(_) => return exact,
        Change::Keep if reply.is_error() => return Change::Keep,
        Change::Keep => match state {
            Some(r) => (r.body.clone(), r.expire_at),
            None => (Body::Tombstone, None),
        },
    };
    Change::Write {
        body,
        expire_at,
        request: Some(request),
    }
}

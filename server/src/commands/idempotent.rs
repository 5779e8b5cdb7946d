//! `IDEMPOTENT request-id command [arg ...]`: runs a write command at most once per
//! request id within `idempotency-window-ms`. The first reply is stored in the
//! `kvd-idempotency` keyspace in the same engine batch as the write, so after a crash
//! either both are there or neither; a retry with the same id returns the stored reply
//! without applying the write again, also after a restart (docs/versions-and-locks.md).

use super::args::err;
use super::table::{self, CommandSpec, WRITE};
use super::{call_inner, CmdResult, Ctx};
use crate::keyspace::idempotency::{decode_record, encode_record, is_live};
use crate::protocol::Reply;
use bytes::Bytes;
use std::sync::atomic::Ordering;

/// Longest accepted request id.
const MAX_REQUEST_ID: usize = 256;

/// The command `IDEMPOTENT request-id command [arg ...]` wraps, once the request id and
/// the command are checked (one node and the ring accept the same ones).
pub fn wrapped(a: &[Bytes]) -> Result<&'static CommandSpec, Reply> {
    let id = &a[1];
    if id.is_empty() || id.len() > MAX_REQUEST_ID {
        return Err(err("ERR request id must be 1 to 256 bytes"));
    }
    let spec = super::resolve(&a[2..])?;
    if !spec.has(WRITE) || matches!(spec.name, "idempotent") || spec.has(table::GLOBAL) {
        return Err(err(
            "ERR IDEMPOTENT only wraps single-key or multi-key write commands",
        ));
    }
    Ok(spec)
}

/// IDEMPOTENT request-id command [arg ...]
pub fn idempotent(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    wrapped(a)?;
    let id = &a[1];
    let inner = &a[2..];
    let window = ctx.srv.config.read().idempotency_window_ms;
    let ks = ctx.srv.store.idem;
    if let Some((rec, version)) = ctx.txn.get_record(ks, id)? {
        if let Some((created, reply)) = decode_record(&rec, version) {
            if is_live(created, window, ctx.txn.now) {
                ctx.srv
                    .counters
                    .idempotent_replays
                    .fetch_add(1, Ordering::Relaxed);
                return Ok(reply);
            }
        }
    }
    let before = ctx.txn.pending_writes();
    let reply = call_inner(ctx, inner);
    if reply.is_error() && ctx.txn.pending_writes() == before {
        return Ok(reply); // nothing applied: a retry may run it again
    }
    let op = ctx.txn.pending_writes();
    let now = ctx.txn.now;
    ctx.txn.put_record(ks, id, &encode_record(now, op, &reply));
    Ok(reply)
}

//! MULTI / EXEC / DISCARD / WATCH / UNWATCH with Redis's rules: a command rejected while
//! queueing aborts EXEC (EXECABORT); a watched key written, deleted or expired since WATCH
//! makes EXEC return a null array. EXEC runs the queue under the locks of every key it
//! touches and commits all writes as one engine batch.

use super::args::err;
use super::{call_queued, CmdResult, Ctx};
use crate::keyspace::Store;
use crate::protocol::Reply;
use crate::state::Client;
use bytes::Bytes;
use std::collections::HashSet;
use std::sync::atomic::Ordering;

/// Keys one client may watch at once. Redis has no limit; each watched key costs memory in
/// the client and in the shared watch registry, so kvd bounds it (docs/security.md).
pub const MAX_WATCHED_KEYS: usize = 100_000;
/// Commands one MULTI may queue; their bytes are bounded by `client-query-buffer-limit`.
pub const MAX_QUEUED_COMMANDS: usize = 1_000_000;

/// MULTI
pub fn multi(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(err("ERR MULTI calls can not be nested"));
    }
    ctx.client.multi = Some(Vec::new());
    ctx.client.multi_error = false;
    ctx.client.multi_bytes = 0;
    ctx.client.info.multi.store(0, Ordering::Relaxed);
    Ok(Reply::Ok)
}

fn end_transaction(ctx: &mut Ctx<'_>) {
    discard_transaction(ctx.client, &ctx.srv.store);
}

/// Leaves MULTI: drops the queue and every WATCH (also when EXEC itself is refused).
pub fn discard_transaction(client: &mut Client, store: &Store) {
    client.multi = None;
    client.multi_error = false;
    client.multi_bytes = 0;
    client.info.multi.store(-1, Ordering::Relaxed);
    client.unwatch_all(store);
}

/// EXEC
pub fn exec(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    let Some(queue) = ctx.client.multi.take() else {
        return Err(err("ERR EXEC without MULTI"));
    };
    if ctx.client.multi_error {
        end_transaction(ctx);
        return Err(err(
            "EXECABORT Transaction discarded because of previous errors.",
        ));
    }
    let mut aborted = ctx.client.dirty.load(Ordering::Acquire);
    if !aborted {
        for (db, key, existed) in &ctx.client.watched {
            if *existed && ctx.txn.get(*db, key)?.is_none() {
                aborted = true; // expired since WATCH
                break;
            }
        }
    }
    end_transaction(ctx);
    if aborted {
        return Ok(Reply::NilArray);
    }
    let mut replies = Vec::with_capacity(queue.len());
    for args in &queue {
        replies.push(call_queued(ctx, args));
    }
    Ok(Reply::Array(replies))
}

/// DISCARD
pub fn discard(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    if ctx.client.multi.is_none() {
        return Err(err("ERR DISCARD without MULTI"));
    }
    end_transaction(ctx);
    Ok(Reply::Ok)
}

/// WATCH key [key ...]
pub fn watch(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(err("ERR WATCH inside MULTI is not allowed"));
    }
    let db = ctx.db();
    let mut already: HashSet<(usize, Bytes)> = ctx
        .client
        .watched
        .iter()
        .map(|(d, k, _)| (*d, k.clone()))
        .collect();
    for k in &a[1..] {
        if already.contains(&(db, k.clone())) {
            continue;
        }
        if ctx.client.watched.len() >= MAX_WATCHED_KEYS {
            return Err(Reply::error(format!(
                "ERR too many watched keys (kvd allows {MAX_WATCHED_KEYS} per client)"
            )));
        }
        let existed = ctx.get(k)?.is_some();
        // A copy: the argument is a slice of the client's input buffer, which the watch
        // would otherwise keep alive whole.
        let key = Bytes::copy_from_slice(k);
        ctx.srv
            .store
            .events
            .watch(db, key.clone(), &ctx.client.dirty);
        ctx.client.watched.push((db, key.clone(), existed));
        already.insert((db, key));
    }
    Ok(Reply::Ok)
}

/// UNWATCH
pub fn unwatch(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    let store = &ctx.srv.store;
    ctx.client.unwatch_all(store);
    Ok(Reply::Ok)
}

//! Lease locks with fencing tokens (docs/versions-and-locks.md).
//!
//! `LOCK key owner lease-ms [WAIT timeout-ms]` is `SET key owner NX PX lease-ms WITHETAG`
//! plus waiting: when the lock is held and WAIT is given, the connection sleeps until the
//! key is written (release, expiry sweep) or the holder's lease ends, then retries —
//! woken by the release, not by polling. The reply is the fencing token (the key's new
//! version, strictly greater than any earlier token for that key) or nil.
//! `UNLOCK key owner` is `DELEX key IFEQ owner`.

use super::args::{err, int, is, SYNTAX};
use super::{CmdResult, Ctx};
use crate::protocol::{Reply, Version};
use crate::state::WaitFor;
use bytes::Bytes;

/// LOCK key owner lease-ms [WAIT timeout-ms]
pub fn lock(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let lease = int(&a[3])?;
    if lease <= 0 {
        return Err(err("ERR invalid expire time in 'lock' command"));
    }
    let timeout = match a.len() {
        4 => None,
        6 if is(&a[4], "wait") => {
            let t = int(&a[5])?;
            if t < 0 {
                return Err(err("ERR timeout is negative"));
            }
            Some(t)
        }
        _ => return Err(err(SYNTAX)),
    };
    let (key, owner) = (&a[1], &a[2]);
    let now = ctx.txn.now;
    match ctx.get_str(key)? {
        Some(e) if e.value != owner => {
            let Some(t) = timeout else {
                return Ok(Reply::Nil);
            };
            let deadline = ctx.client.lock_deadline.unwrap_or(now.saturating_add(t));
            if now < deadline {
                ctx.client.wait = Some(WaitFor {
                    db: ctx.db(),
                    key: key.clone(),
                    wake_at: e.expire_at.map_or(deadline, |x| x.min(deadline)),
                    deadline,
                });
            }
            Ok(Reply::Nil)
        }
        // Free, or re-acquired by its owner (which extends the lease and issues a new token).
        _ => {
            let db = ctx.db();
            let op = ctx
                .txn
                .put_string(db, key, owner, Some(now.saturating_add(lease)));
            Ok(Reply::Version(Version::Pending(op)))
        }
    }
}

/// UNLOCK key owner -> 1 released, 0 not held by `owner`
pub fn unlock(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    match ctx.get_str(&a[1])? {
        Some(e) if e.value == a[2] => {
            let db = ctx.db();
            ctx.txn.delete(db, &a[1]);
            Ok(Reply::Int(1))
        }
        _ => Ok(Reply::Int(0)),
    }
}

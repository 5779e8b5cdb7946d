//! DUMP and RESTORE of string keys in Redis's serialization (rdb_string.rs), so values
//! move between redis-server and kvd with DUMP/RESTORE (and MIGRATE-style tools).

use super::args::{err, int, is, SYNTAX};
use super::rdb_string::{dump_string, restore_string, PayloadError};
use super::{CmdResult, Ctx};
use crate::protocol::Reply;
use bytes::Bytes;

/// DUMP key
pub fn dump(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    Ok(match ctx.get(&a[1])? {
        Some(e) => Reply::Bulk(Bytes::from(dump_string(&e.value))),
        None => Reply::Nil,
    })
}

/// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]
///
/// Checks in Redis's order: options, BUSYKEY, TTL, payload. IDLETIME and FREQ are
/// checked and then ignored (kvd keeps no access clock or frequency per key).
pub fn restore(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let (mut replace, mut absttl, mut idle_given, mut freq_given) = (false, false, false, false);
    let mut j = 4;
    while j < a.len() {
        let more = j + 1 < a.len();
        if is(&a[j], "replace") {
            replace = true;
        } else if is(&a[j], "absttl") {
            absttl = true;
        } else if is(&a[j], "idletime") && more && !freq_given {
            if int(&a[j + 1])? < 0 {
                return Err(err("ERR Invalid IDLETIME value, must be >= 0"));
            }
            idle_given = true;
            j += 1;
        } else if is(&a[j], "freq") && more && !idle_given {
            if !(0..=255).contains(&int(&a[j + 1])?) {
                return Err(err("ERR Invalid FREQ value, must be >= 0 and <= 255"));
            }
            freq_given = true;
            j += 1;
        } else {
            return Err(err(SYNTAX));
        }
        j += 1;
    }
    if !replace && ctx.get(&a[1])?.is_some() {
        return Err(err("BUSYKEY Target key name already exists."));
    }
    let ttl = int(&a[2])?;
    if ttl < 0 {
        return Err(err("ERR Invalid TTL value, must be >= 0"));
    }
    let value = restore_string(&a[3]).map_err(|e| match e {
        PayloadError::VersionOrChecksum => err("ERR DUMP payload version or checksum are wrong"),
        PayloadError::BadFormat => err("ERR Bad data format"),
        PayloadError::NotAString(t) => Reply::error(format!(
            "ERR kvd stores only strings; this DUMP payload holds RDB object type {t}"
        )),
    })?;
    if value.len() > ctx.max_bulk() {
        return Err(err(super::args::TOO_BIG));
    }
    let db = ctx.db();
    let expire_at = match ttl {
        0 => None,
        t if absttl => Some(t),
        t => Some(ctx.txn.now.saturating_add(t)),
    };
    if expire_at.is_some_and(|at| at <= ctx.txn.now) {
        // Already expired: Redis deletes the old key (with REPLACE) and stores nothing.
        if replace {
            ctx.txn.remove(db, &a[1])?;
        }
        return Ok(Reply::Ok);
    }
    ctx.txn.put_string(db, &a[1], &value, expire_at);
    Ok(Reply::Ok)
}

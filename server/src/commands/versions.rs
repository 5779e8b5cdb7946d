//! Versioned reads and compare-and-set, modelled on Garnet's ETag commands
//! (docs/versions-and-locks.md). A key's version (ETag) is the engine sequence number of
//! its last write: it only grows and is never reused, even across delete and re-create.
//! Version 0 stands for "no such key".

use super::args::{err, int};
use super::{CmdResult, Ctx};
use crate::keyspace::Entry;
use crate::protocol::{Reply, Version};
use bytes::Bytes;

fn version_arg(arg: &[u8]) -> Result<u64, Reply> {
    match int(arg) {
        Ok(n) if n >= 0 => Ok(n as u64),
        _ => Err(err("ERR ETag must be a non-negative integer")),
    }
}

fn matches(e: Option<&Entry>, want: u64) -> bool {
    match e {
        None => want == 0,
        Some(e) => e.version == Version::Committed(want),
    }
}

fn current(e: Option<Entry>) -> Reply {
    match e {
        Some(e) => Reply::Array(vec![Reply::Version(e.version), Reply::Bulk(e.value)]),
        None => Reply::Array(vec![Reply::Int(0), Reply::Nil]),
    }
}

/// GETWITHETAG key -> nil | [version, value]
pub fn getwithetag(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    Ok(match ctx.get_str(&a[1])? {
        Some(e) => current(Some(e)),
        None => Reply::Nil,
    })
}

/// GETIFNOTMATCH key etag -> nil | [version, nil] if unchanged | [version, value]
pub fn getifnotmatch(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let want = version_arg(&a[2])?;
    Ok(match ctx.get_str(&a[1])? {
        None => Reply::Nil,
        Some(e) if matches(Some(&e), want) => {
            Reply::Array(vec![Reply::Version(e.version), Reply::Nil])
        }
        Some(e) => current(Some(e)),
    })
}

/// SETIFMATCH key value etag [EX s|PX ms] -> [new-version, nil] | [current-version, current-value]
pub fn setifmatch(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let want = version_arg(&a[3])?;
    let expire_at = match a.len() {
        4 => None,
        6 if super::args::is(&a[4], "ex") => Some(super::args::expire_option(
            super::args::ExpireUnit::Seconds,
            &a[5],
            ctx.txn.now,
            "setifmatch",
        )?),
        6 if super::args::is(&a[4], "px") => Some(super::args::expire_option(
            super::args::ExpireUnit::Millis,
            &a[5],
            ctx.txn.now,
            "setifmatch",
        )?),
        _ => return Err(err(super::args::SYNTAX)),
    };
    let cur = ctx.get_str(&a[1])?;
    if !matches(cur.as_ref(), want) {
        return Ok(current(cur));
    }
    let db = ctx.db();
    let op = ctx.txn.put_string(db, &a[1], &a[2], expire_at);
    Ok(Reply::Array(vec![
        Reply::Version(Version::Pending(op)),
        Reply::Nil,
    ]))
}

/// DELIFMATCH key etag -> [1, 0] deleted | [0, current-version] (0 = absent)
pub fn delifmatch(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let want = version_arg(&a[2])?;
    let cur = ctx.get_str(&a[1])?;
    match cur {
        Some(e) if matches(Some(&e), want) => {
            let db = ctx.db();
            ctx.txn.delete(db, &a[1]);
            Ok(Reply::Array(vec![Reply::Int(1), Reply::Int(0)]))
        }
        Some(e) => Ok(Reply::Array(vec![Reply::Int(0), Reply::Version(e.version)])),
        None => Ok(Reply::Array(vec![Reply::Int(0), Reply::Int(0)])),
    }
}

//! Generic key commands: DEL, EXISTS, TYPE, RENAME, COPY, MOVE, the EXPIRE family, TTL,
//! PERSIST, KEYS, SCAN, RANDOMKEY.

use super::args::{err, glob_match, int, is, text, NOT_INT, NO_SUCH_KEY, SYNTAX};
use super::{CmdResult, Ctx};
use crate::keyspace::Entry;
use crate::protocol::Reply;
use bytes::Bytes;
use kv_keyspace::data_key::ScanPosition;
use kv_keyspace::SLOTS;

/// DEL / UNLINK key [key ...]
pub fn del(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let db = ctx.db();
    let mut n = 0;
    for k in &a[1..] {
        n += ctx.txn.remove(db, k)? as i64;
    }
    Ok(Reply::Int(n))
}

/// EXISTS / TOUCH key [key ...]
pub fn exists(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let mut n = 0;
    for k in &a[1..] {
        n += ctx.get(k)?.is_some() as i64;
    }
    Ok(Reply::Int(n))
}

/// TYPE key
pub fn type_(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    Ok(Reply::status(
        ctx.get(&a[1])?.map_or("none", |e| e.ty.name()),
    ))
}

fn write_entry(ctx: &mut Ctx<'_>, db: usize, key: &[u8], e: &Entry) {
    ctx.txn.put(db, key, e.ty, e.expire_at, &e.value);
}

fn rename_generic(ctx: &mut Ctx<'_>, a: &[Bytes], nx: bool) -> CmdResult {
    let db = ctx.db();
    let Some(e) = ctx.get(&a[1])? else {
        return Err(err(NO_SUCH_KEY));
    };
    if a[1] == a[2] {
        return Ok(if nx { Reply::Int(0) } else { Reply::Ok });
    }
    if nx && ctx.get(&a[2])?.is_some() {
        return Ok(Reply::Int(0));
    }
    ctx.txn.delete(db, &a[1]);
    write_entry(ctx, db, &a[2], &e);
    Ok(if nx { Reply::Int(1) } else { Reply::Ok })
}

/// RENAME key newkey
pub fn rename(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    rename_generic(ctx, a, false)
}

/// RENAMENX key newkey
pub fn renamenx(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    rename_generic(ctx, a, true)
}

fn db_index(ctx: &Ctx<'_>, arg: &[u8]) -> Result<usize, Reply> {
    let n = int(arg)?;
    if n < 0 || n as usize >= ctx.srv.store.databases() || n > i32::MAX as i64 {
        return Err(err("ERR DB index is out of range"));
    }
    Ok(n as usize)
}

/// COPY source destination [DB n] [REPLACE]
pub fn copy(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let src_db = ctx.db();
    let mut dst_db = src_db;
    let mut replace = false;
    let mut j = 3;
    while j < a.len() {
        if is(&a[j], "replace") {
            replace = true;
        } else if is(&a[j], "db") && j + 1 < a.len() {
            dst_db = db_index(ctx, &a[j + 1])?;
            j += 1;
        } else {
            return Err(err(SYNTAX));
        }
        j += 1;
    }
    if src_db == dst_db && a[1] == a[2] {
        return Err(err("ERR source and destination objects are the same"));
    }
    let Some(e) = ctx.get(&a[1])? else {
        return Ok(Reply::Int(0));
    };
    if ctx.txn.get(dst_db, &a[2])?.is_some() && !replace {
        return Ok(Reply::Int(0));
    }
    write_entry(ctx, dst_db, &a[2], &e);
    Ok(Reply::Int(1))
}

/// MOVE key db
pub fn move_(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let src = ctx.db();
    let dst = db_index(ctx, &a[2])?;
    if src == dst {
        return Err(err("ERR source and destination objects are the same"));
    }
    let Some(e) = ctx.get(&a[1])? else {
        return Ok(Reply::Int(0));
    };
    if ctx.txn.get(dst, &a[1])?.is_some() {
        return Ok(Reply::Int(0));
    }
    write_entry(ctx, dst, &a[1], &e);
    ctx.txn.delete(src, &a[1]);
    Ok(Reply::Int(1))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ExpireCond {
    Always,
    Nx,
    Gt,
    Lt,
}

fn expire_generic(
    ctx: &mut Ctx<'_>,
    a: &[Bytes],
    millis: bool,
    absolute: bool,
    name: &str,
) -> CmdResult {
    let mut cond = ExpireCond::Always;
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for opt in &a[3..] {
        if is(opt, "nx") {
            nx = true;
        } else if is(opt, "xx") {
            xx = true;
        } else if is(opt, "gt") {
            gt = true;
        } else if is(opt, "lt") {
            lt = true;
        } else {
            return Err(Reply::error(format!(
                "ERR Unsupported option {}",
                text(opt)
            )));
        }
    }
    if nx && (xx || gt || lt) {
        return Err(err(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(err(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    if nx {
        cond = ExpireCond::Nx;
    } else if gt {
        cond = ExpireCond::Gt;
    } else if lt {
        cond = ExpireCond::Lt;
    }
    let xx_too = xx;
    let mut when = int(&a[2])?;
    let invalid = || Reply::error(format!("ERR invalid expire time in '{name}' command"));
    if !millis {
        if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&when) {
            return Err(invalid());
        }
        when *= 1000;
    }
    if !absolute {
        if when > i64::MAX - ctx.txn.now {
            return Err(invalid());
        }
        when += ctx.txn.now;
    }
    let Some(e) = ctx.get(&a[1])? else {
        return Ok(Reply::Int(0));
    };
    let cur = e.expire_at;
    let allowed = match cond {
        ExpireCond::Nx => cur.is_none(),
        ExpireCond::Gt => cur.is_some_and(|c| when > c),
        ExpireCond::Lt => cur.is_none_or(|c| when < c),
        _ => true,
    } && (!xx_too || cur.is_some());
    if !allowed {
        return Ok(Reply::Int(0));
    }
    let db = ctx.db();
    if when <= ctx.txn.now {
        ctx.txn.delete(db, &a[1]);
    } else {
        ctx.txn.put(db, &a[1], e.ty, Some(when), &e.value);
    }
    Ok(Reply::Int(1))
}

/// EXPIRE key seconds [NX|XX|GT|LT]
pub fn expire(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    expire_generic(ctx, a, false, false, "expire")
}

/// PEXPIRE key milliseconds [NX|XX|GT|LT]
pub fn pexpire(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    expire_generic(ctx, a, true, false, "pexpire")
}

/// EXPIREAT key unix-seconds [NX|XX|GT|LT]
pub fn expireat(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    expire_generic(ctx, a, false, true, "expireat")
}

/// PEXPIREAT key unix-ms [NX|XX|GT|LT]
pub fn pexpireat(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    expire_generic(ctx, a, true, true, "pexpireat")
}

fn ttl_generic(ctx: &mut Ctx<'_>, key: &[u8], f: impl Fn(i64, i64) -> i64) -> CmdResult {
    Ok(Reply::Int(match ctx.get(key)? {
        None => -2,
        Some(Entry {
            expire_at: None, ..
        }) => -1,
        Some(Entry {
            expire_at: Some(t), ..
        }) => f(t, ctx.txn.now),
    }))
}

/// TTL key
pub fn ttl(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &a[1], |t, now| ((t - now).max(0) + 500) / 1000)
}

/// PTTL key
pub fn pttl(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &a[1], |t, now| (t - now).max(0))
}

/// EXPIRETIME key
pub fn expiretime(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &a[1], |t, _| t / 1000)
}

/// PEXPIRETIME key
pub fn pexpiretime(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &a[1], |t, _| t)
}

/// PERSIST key
pub fn persist(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    match ctx.get(&a[1])? {
        Some(e) if e.expire_at.is_some() => {
            let db = ctx.db();
            ctx.txn.put(db, &a[1], e.ty, None, &e.value);
            Ok(Reply::Int(1))
        }
        _ => Ok(Reply::Int(0)),
    }
}

/// KEYS pattern
pub fn keys(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let pat = &a[1];
    let all = pat.as_ref() == b"*";
    let mut out = Vec::new();
    let mut bytes = 0;
    let room = ctx.reply_room();
    ctx.txn.scan(ctx.db(), ScanPosition::START, |k, _, _| {
        if all || glob_match(pat, k, false) {
            out.push(Reply::bulk_from(k));
            bytes += k.len() + 16;
        }
        bytes <= room // past it the reply is refused below: stop building it
    })?;
    ctx.charge_reply(bytes)?;
    Ok(Reply::Array(out))
}

/// The arguments of SCAN, shared by the single-node and the ring paths.
pub struct ScanArgs {
    /// Where to resume (a cursor no reply could have produced is refused).
    pub from: ScanPosition,
    /// The cursor as given.
    pub cursor: u64,
    /// MATCH pattern.
    pub pattern: Option<Bytes>,
    /// COUNT: keys examined per call.
    pub count: usize,
    /// TYPE filter, lower case.
    pub ty: Option<String>,
    /// The cursor is a number no reply produced (`-1`, huge): like Redis, the scan is
    /// over (`0` and no keys) rather than an error.
    pub past_end: bool,
}

/// A SCAN cursor read as Redis reads it (C `strtoul`): leading spaces and a sign allowed,
/// an empty string is 0, `-n` wraps to 2^64 - n; anything else is `None`.
fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(arg).ok()?.trim_start();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        // strtoul parses nothing: 0 with the whole text left over, which Redis accepts
        // only when there was no text at all.
        return arg.is_empty().then_some(0);
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(if neg { n.wrapping_neg() } else { n })
}

/// Parses `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]` with Redis's errors.
pub fn parse_scan_args(a: &[Bytes]) -> Result<ScanArgs, Reply> {
    let cursor = parse_cursor(&a[1]).ok_or_else(|| err("ERR invalid cursor"))?;
    let from = ScanPosition::from_cursor(cursor);
    let mut args = ScanArgs {
        past_end: from.is_none(),
        from: from.unwrap_or(ScanPosition::START),
        cursor,
        pattern: None,
        count: 10,
        ty: None,
    };
    let mut j = 2;
    while j < a.len() {
        let Some(v) = a.get(j + 1) else {
            return Err(err(SYNTAX));
        };
        if is(&a[j], "match") {
            args.pattern = Some(v.clone());
        } else if is(&a[j], "count") {
            let count = int(v).map_err(|_| err(NOT_INT))?;
            if count < 1 {
                return Err(err(SYNTAX));
            }
            args.count = usize::try_from(count).unwrap_or(usize::MAX);
        } else if is(&a[j], "type") {
            args.ty = Some(text(v).to_ascii_lowercase());
        } else {
            return Err(err(SYNTAX));
        }
        j += 2;
    }
    Ok(args)
}

/// The reply of a scan that is over: cursor `0`, no keys.
pub fn scan_finished() -> Reply {
    Reply::Array(vec![
        Reply::bulk(Bytes::from_static(b"0")),
        Reply::Array(Vec::new()),
    ])
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
///
/// Stateless: the cursor is the scan position (slot, key hash) where the next call
/// resumes (`ScanPosition::cursor`), so no server memory is held per scan and no client
/// can disturb another's. Keys never move and a reply never stops between two keys of
/// the same position, so every key present for the whole scan is returned (Redis's
/// guarantee). COUNT bounds the keys examined per call (plus hash collisions at the last
/// position) and the seeks past other databases' keys (`SEEKS_PER_KEY` × COUNT): a
/// sparse database may answer a page with no keys and a non-zero cursor, as Redis may.
pub fn scan(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let ScanArgs {
        from,
        pattern,
        count,
        ty,
        past_end,
        ..
    } = parse_scan_args(a)?;
    if past_end {
        return Ok(scan_finished());
    }
    let now = ctx.txn.now;
    let mut out = Vec::new();
    let resume = ctx.txn.scan_page(ctx.db(), from, count, |k, e| {
        let live = !e.expired(now);
        let type_ok = ty.as_deref().is_none_or(|t| t == e.ty.name());
        let match_ok = pattern.as_ref().is_none_or(|p| glob_match(p, k, false));
        if live && type_ok && match_ok {
            out.push(Reply::bulk_from(k));
        }
    })?;
    let next = resume.map_or(0, |p| p.cursor());
    Ok(Reply::Array(vec![
        Reply::bulk(Bytes::from(next.to_string())),
        Reply::Array(out),
    ]))
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// RANDOMKEY
pub fn randomkey(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    let db = ctx.db();
    // An empty database answers at once rather than walk past other databases' keys.
    if ctx.txn.key_count(db)?.keys == 0 {
        return Ok(Reply::Nil);
    }
    // Seek to a random scan position and take the next live key, wrapping around.
    let probe = ScanPosition {
        slot: (random_u64() % SLOTS as u64) as u16,
        hash: random_u64() as u32,
    };
    let mut found = None;
    for from in [probe, ScanPosition::START] {
        ctx.txn.scan(db, from, |k, _, _| {
            found = Some(Bytes::copy_from_slice(k));
            false
        })?;
        if found.is_some() {
            break;
        }
    }
    Ok(found.map_or(Reply::Nil, Reply::Bulk))
}

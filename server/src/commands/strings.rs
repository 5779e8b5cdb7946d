//! String commands: GET/SET family, counters, ranges, LCS, and Redis 8.4's conditional
//! writes (SET IFEQ/IFNE/IFDEQ/IFDNE, DELEX, DIGEST).

use super::args::{
    self, err, expire_option, int, is, ExpireUnit, NOT_FLOAT, NOT_INT, SYNTAX, TOO_BIG,
};
use super::{CmdResult, Ctx};
use crate::keyspace::Entry;
use crate::protocol::parser::parse_i64;
use crate::protocol::{Reply, Version};
use bytes::Bytes;

/// XXH3-64 digest of a value, as DIGEST prints it.
pub fn digest_hex(v: &[u8]) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(v))
}

fn parse_digest(arg: &[u8]) -> Result<u64, Reply> {
    let s = std::str::from_utf8(arg).map_err(|_| err(SYNTAX))?;
    if s.is_empty() || s.len() > 16 {
        return Err(err("ERR digest must be exactly 16 hexadecimal characters"));
    }
    u64::from_str_radix(s, 16)
        .map_err(|_| err("ERR digest must be exactly 16 hexadecimal characters"))
}

/// A value condition (SET / DELEX).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    /// No condition.
    None,
    /// NX: only if absent.
    Nx,
    /// XX: only if present.
    Xx,
    /// IFEQ: only if present with this value.
    IfEq(Bytes),
    /// IFNE: if absent, or present with another value.
    IfNe(Bytes),
    /// IFDEQ: only if present with this digest.
    IfDeq(u64),
    /// IFDNE: if absent, or present with another digest.
    IfDne(u64),
}

impl Cond {
    /// True if the write may proceed given the current (string) value.
    pub fn holds(&self, cur: Option<&Entry>) -> bool {
        let digest = |e: &Entry| xxhash_rust::xxh3::xxh3_64(&e.value);
        match (self, cur) {
            (Cond::None, _) => true,
            (Cond::Nx, c) => c.is_none(),
            (Cond::Xx, c) => c.is_some(),
            (Cond::IfEq(v), Some(e)) => e.value == v,
            (Cond::IfNe(v), Some(e)) => e.value != v,
            (Cond::IfDeq(d), Some(e)) => digest(e) == *d,
            (Cond::IfDne(d), Some(e)) => digest(e) != *d,
            (Cond::IfEq(_) | Cond::IfDeq(_), None) => false,
            (Cond::IfNe(_) | Cond::IfDne(_), None) => true,
        }
    }

    /// True for the value-comparing conditions (which need a string value).
    pub fn compares_value(&self) -> bool {
        !matches!(self, Cond::None | Cond::Nx | Cond::Xx)
    }
}

/// Expiry requested by SET / GETEX.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ttl {
    /// Clear any expiry (SET default).
    Clear,
    /// Keep the current expiry (KEEPTTL, or GETEX without options).
    Keep,
    /// Expire at this Unix ms time.
    At(i64),
}

struct SetArgs {
    cond: Cond,
    get: bool,
    with_etag: bool,
    ttl: Ttl,
}

fn parse_set(a: &[Bytes], now: i64) -> Result<SetArgs, Reply> {
    let mut cond = Cond::None;
    let mut get = false;
    let mut with_etag = false;
    let mut ttl_kind: Option<(ExpireUnit, &Bytes)> = None;
    let mut keepttl = false;
    let mut j = 3;
    while j < a.len() {
        let opt = &a[j];
        let next = a.get(j + 1);
        let expire = args::expire_unit(opt);
        if is(opt, "nx") && cond == Cond::None {
            cond = Cond::Nx;
        } else if is(opt, "xx") && cond == Cond::None {
            cond = Cond::Xx;
        } else if is(opt, "get") && !get {
            get = true;
        } else if is(opt, "withetag") && !with_etag {
            with_etag = true;
        } else if is(opt, "keepttl") && !keepttl && ttl_kind.is_none() {
            keepttl = true;
        } else if let (Some(unit), Some(v), false, None) = (expire, next, keepttl, ttl_kind) {
            ttl_kind = Some((unit, v));
            j += 1;
        } else if let (true, Some(v)) = (cond == Cond::None, next) {
            cond = if is(opt, "ifeq") {
                Cond::IfEq(v.clone())
            } else if is(opt, "ifne") {
                Cond::IfNe(v.clone())
            } else if is(opt, "ifdeq") {
                Cond::IfDeq(parse_digest(v)?)
            } else if is(opt, "ifdne") {
                Cond::IfDne(parse_digest(v)?)
            } else {
                return Err(err(SYNTAX));
            };
            j += 1;
        } else {
            return Err(err(SYNTAX));
        }
        j += 1;
    }
    if get && with_etag {
        return Err(err(SYNTAX));
    }
    let ttl = match (ttl_kind, keepttl) {
        (Some((unit, v)), _) => Ttl::At(expire_option(unit, v, now, "set")?),
        (None, true) => Ttl::Keep,
        (None, false) => Ttl::Clear,
    };
    Ok(SetArgs {
        cond,
        get,
        with_etag,
        ttl,
    })
}

/// Writes `value` at `key` with the resolved expiry; an expiry in the past deletes the key.
/// Returns the write's batch index.
fn store(ctx: &mut Ctx<'_>, key: &[u8], value: &[u8], expire_at: Option<i64>) -> usize {
    let db = ctx.db();
    match expire_at {
        Some(t) if t <= ctx.txn.now => ctx.txn.delete(db, key),
        _ => ctx.txn.put_string(db, key, value, expire_at),
    }
}

/// GET key
pub fn get(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let e = ctx.get_str(&a[1])?;
    ctx.count_read(e.is_some());
    Ok(e.map_or(Reply::Nil, |e| Reply::Bulk(e.value)))
}

/// SET key value [NX|XX|IFEQ v|IFNE v|IFDEQ d|IFDNE d] [GET] [EX|PX|EXAT|PXAT t|KEEPTTL] [WITHETAG]
pub fn set(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let opts = parse_set(a, ctx.txn.now)?;
    let (key, value) = (&a[1], &a[2]);
    // A plain SET needs nothing from the current value: skip the read.
    if opts.cond == Cond::None && !opts.get && opts.ttl != Ttl::Keep {
        let expire_at = match opts.ttl {
            Ttl::At(t) => Some(t),
            _ => None,
        };
        let op = store(ctx, key, value, expire_at);
        return Ok(if opts.with_etag {
            Reply::Version(Version::Pending(op))
        } else {
            Reply::Ok
        });
    }
    let cur = ctx.get(key)?;
    let is_string = cur
        .as_ref()
        .is_none_or(|e| e.ty == crate::keyspace::ValueType::String);
    if (opts.get || opts.cond.compares_value()) && !is_string {
        return Err(err(args::WRONGTYPE));
    }
    let old = if opts.get {
        cur.as_ref()
            .map_or(Reply::Nil, |e| Reply::Bulk(e.value.clone()))
    } else {
        Reply::Nil
    };
    if !opts.cond.holds(cur.as_ref()) {
        return Ok(old);
    }
    let expire_at = match opts.ttl {
        Ttl::Clear => None,
        Ttl::Keep => cur.as_ref().and_then(|e| e.expire_at),
        Ttl::At(t) => Some(t),
    };
    let op = store(ctx, key, value, expire_at);
    Ok(if opts.get {
        old
    } else if opts.with_etag {
        Reply::Version(Version::Pending(op))
    } else {
        Reply::Ok
    })
}

/// SETNX key value
pub fn setnx(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    if ctx.get(&a[1])?.is_some() {
        return Ok(Reply::Int(0));
    }
    store(ctx, &a[1], &a[2], None);
    Ok(Reply::Int(1))
}

fn set_with_expiry(ctx: &mut Ctx<'_>, a: &[Bytes], unit: ExpireUnit, name: &str) -> CmdResult {
    let at = expire_option(unit, &a[2], ctx.txn.now, name)?;
    store(ctx, &a[1], &a[3], Some(at));
    Ok(Reply::Ok)
}

/// SETEX key seconds value
pub fn setex(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    set_with_expiry(ctx, a, ExpireUnit::Seconds, "setex")
}

/// PSETEX key milliseconds value
pub fn psetex(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    set_with_expiry(ctx, a, ExpireUnit::Millis, "psetex")
}

/// GETSET key value
pub fn getset(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let old = ctx.get_str(&a[1])?;
    store(ctx, &a[1], &a[2], None);
    Ok(old.map_or(Reply::Nil, |e| Reply::Bulk(e.value)))
}

/// GETDEL key
pub fn getdel(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let Some(e) = ctx.get_str(&a[1])? else {
        return Ok(Reply::Nil);
    };
    let db = ctx.db();
    ctx.txn.delete(db, &a[1]);
    Ok(Reply::Bulk(e.value))
}

/// GETEX key [EX s|PX ms|EXAT t|PXAT t|PERSIST]
pub fn getex(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let mut expiry = None;
    let mut persist = false;
    let mut j = 2;
    let mut seen = false;
    while j < a.len() {
        let opt = &a[j];
        let unit = args::expire_unit(opt);
        match (unit, a.get(j + 1)) {
            (Some(u), Some(v)) if !seen => {
                expiry = Some((u, v));
                seen = true;
                j += 2;
            }
            _ if is(opt, "persist") && !seen => {
                persist = true;
                seen = true;
                j += 1;
            }
            _ => return Err(err(SYNTAX)),
        }
    }
    let Some(e) = ctx.get_str(&a[1])? else {
        return Ok(Reply::Nil);
    };
    // Like Redis, the expiry's value is checked only once the key is known to exist:
    // GETEX of a missing key with `EX -1` replies nil, a syntax error still errors.
    let ttl = match expiry {
        Some((u, v)) => Ttl::At(expire_option(u, v, ctx.txn.now, "getex")?),
        None => Ttl::Keep,
    };
    match ttl {
        Ttl::At(t) => {
            store(ctx, &a[1], &e.value, Some(t));
        }
        _ if persist && e.expire_at.is_some() => {
            store(ctx, &a[1], &e.value, None);
        }
        _ => {}
    }
    Ok(Reply::Bulk(e.value))
}

/// MGET key [key ...]
pub fn mget(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let mut out = Vec::with_capacity(a.len() - 1);
    for k in &a[1..] {
        out.push(match ctx.get(k)? {
            Some(e) if e.ty == crate::keyspace::ValueType::String => {
                ctx.charge_reply(e.value.len() + 16)?;
                Reply::Bulk(e.value)
            }
            _ => Reply::Nil,
        });
    }
    Ok(Reply::Array(out))
}

/// Refuses MSET/MSETNX with a key missing its value (Redis's arity error).
pub fn mset_pairs(a: &[Bytes], name: &str) -> Result<(), Reply> {
    if a.len().is_multiple_of(2) {
        return Err(Reply::error(format!(
            "ERR wrong number of arguments for '{name}' command"
        )));
    }
    Ok(())
}

/// MSET key value [key value ...]
pub fn mset(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    mset_pairs(a, "mset")?;
    for p in a[1..].chunks(2) {
        store(ctx, &p[0], &p[1], None);
    }
    Ok(Reply::Ok)
}

/// MSETNX key value [key value ...]
pub fn msetnx(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    mset_pairs(a, "msetnx")?;
    for p in a[1..].chunks(2) {
        if ctx.get(&p[0])?.is_some() {
            return Ok(Reply::Int(0));
        }
    }
    for p in a[1..].chunks(2) {
        store(ctx, &p[0], &p[1], None);
    }
    Ok(Reply::Int(1))
}

/// APPEND key value
pub fn append(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let cur = ctx.get_str(&a[1])?;
    let (mut v, exp) = match &cur {
        Some(e) => (e.value.to_vec(), e.expire_at),
        None => (Vec::new(), None),
    };
    if v.len() + a[2].len() > ctx.max_bulk() {
        return Err(err(TOO_BIG));
    }
    v.extend_from_slice(&a[2]);
    let len = v.len();
    store(ctx, &a[1], &v, exp);
    Ok(Reply::Int(len as i64))
}

/// STRLEN key
pub fn strlen(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(
        ctx.get_str(&a[1])?.map_or(0, |e| e.value.len() as i64),
    ))
}

/// Clamps a Redis (start, end) pair to `[0, len)`; `None` if the range is empty.
pub fn clamp_range(mut start: i64, mut end: i64, len: i64) -> Option<(usize, usize)> {
    if start < 0 && end < 0 && start > end {
        return None;
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return None;
    }
    Some((start as usize, end as usize))
}

/// GETRANGE key start end (and SUBSTR)
pub fn getrange(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let (start, end) = (int(&a[2])?, int(&a[3])?);
    let Some(e) = ctx.get_str(&a[1])? else {
        return Ok(Reply::bulk(Bytes::new()));
    };
    Ok(match clamp_range(start, end, e.value.len() as i64) {
        Some((s, t)) => Reply::Bulk(e.value.slice(s..=t)),
        None => Reply::bulk(Bytes::new()),
    })
}

/// SETRANGE key offset value
pub fn setrange(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let offset = int(&a[2])?;
    if offset < 0 {
        return Err(err("ERR offset is out of range"));
    }
    let cur = ctx.get_str(&a[1])?;
    let patch = &a[3];
    let cur_len = cur.as_ref().map_or(0, |e| e.value.len());
    if patch.is_empty() {
        return Ok(Reply::Int(cur_len as i64));
    }
    let offset = offset as usize;
    if offset.saturating_add(patch.len()) > ctx.max_bulk() {
        return Err(err(TOO_BIG));
    }
    let (mut v, exp) = match cur {
        Some(e) => (e.value.to_vec(), e.expire_at),
        None => (Vec::new(), None),
    };
    if v.len() < offset + patch.len() {
        v.resize(offset + patch.len(), 0);
    }
    v[offset..offset + patch.len()].copy_from_slice(patch);
    let len = v.len();
    store(ctx, &a[1], &v, exp);
    Ok(Reply::Int(len as i64))
}

fn incr_by(ctx: &mut Ctx<'_>, key: &[u8], by: i64) -> CmdResult {
    let cur = ctx.get_str(key)?;
    let (n, exp) = match &cur {
        Some(e) => (
            parse_i64(&e.value).ok_or_else(|| err(NOT_INT))?,
            e.expire_at,
        ),
        None => (0, None),
    };
    let n = n
        .checked_add(by)
        .ok_or_else(|| err("ERR increment or decrement would overflow"))?;
    store(ctx, key, n.to_string().as_bytes(), exp);
    Ok(Reply::Int(n))
}

/// INCR key
pub fn incr(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    incr_by(ctx, &a[1], 1)
}

/// DECR key
pub fn decr(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    incr_by(ctx, &a[1], -1)
}

/// INCRBY key increment
pub fn incrby(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    incr_by(ctx, &a[1], int(&a[2])?)
}

/// DECRBY key decrement
pub fn decrby(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let by = int(&a[2])?;
    if by == i64::MIN {
        return Err(err("ERR decrement would overflow"));
    }
    incr_by(ctx, &a[1], -by)
}

/// INCRBYFLOAT key increment
pub fn incrbyfloat(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    use super::long_double::{parse, Parsed};
    let cur = ctx.get_str(&a[1])?;
    let (n, exp) = match &cur {
        Some(e) => (parse(&e.value).ok_or_else(|| err(NOT_FLOAT))?, e.expire_at),
        None => (parse(b"0").ok_or_else(|| err(NOT_FLOAT))?, None),
    };
    let by = parse(&a[2]).ok_or_else(|| err(NOT_FLOAT))?;
    let sum = match (n, by) {
        (Parsed::Finite(n), Parsed::Finite(by)) => n.add(&by),
        _ => None, // an infinity in, NaN or infinity out
    };
    let Some(sum) = sum else {
        return Err(err("ERR increment would produce NaN or Infinity"));
    };
    let s = sum.to_human();
    store(ctx, &a[1], s.as_bytes(), exp);
    Ok(Reply::bulk(Bytes::from(s)))
}

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]
pub fn lcs(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let (mut len_only, mut idx, mut with_len, mut min_len) = (false, false, false, 0i64);
    let mut j = 3;
    while j < a.len() {
        if is(&a[j], "len") {
            len_only = true;
        } else if is(&a[j], "idx") {
            idx = true;
        } else if is(&a[j], "withmatchlen") {
            with_len = true;
        } else if is(&a[j], "minmatchlen") && j + 1 < a.len() {
            min_len = int(&a[j + 1])?.max(0);
            j += 1;
        } else {
            return Err(err(SYNTAX));
        }
        j += 1;
    }
    let x = ctx.get(&a[1])?;
    let y = ctx.get(&a[2])?;
    for e in [&x, &y].into_iter().flatten() {
        if e.ty != crate::keyspace::ValueType::String {
            return Err(err("ERR The specified keys must contain string values"));
        }
    }
    if len_only && idx {
        return Err(err(
            "ERR If you want both the length and indexes, please just use IDX.",
        ));
    }
    let x = x.map(|e| e.value).unwrap_or_default();
    let y = y.map(|e| e.value).unwrap_or_default();
    let cells = (x.len() as u64 + 1).saturating_mul(y.len() as u64 + 1);
    if cells.saturating_mul(4) > ctx.max_bulk() as u64 {
        return Err(err(
            "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        ));
    }
    let (n, m) = (x.len(), y.len());
    let w = m + 1;
    let mut t = vec![0u32; (n + 1) * w];
    for i in 1..=n {
        for k in 1..=m {
            t[i * w + k] = if x[i - 1] == y[k - 1] {
                t[(i - 1) * w + k - 1] + 1
            } else {
                t[(i - 1) * w + k].max(t[i * w + k - 1])
            };
        }
    }
    let total = t[n * w + m] as usize;
    if len_only {
        return Ok(Reply::Int(total as i64));
    }
    // Walk back from the end collecting the common string and (for IDX) the match ranges.
    let mut out = vec![0u8; total];
    let mut ranges: Vec<Reply> = Vec::new();
    let (mut i, mut k, mut pos) = (n, m, total);
    let mut cur: Option<(usize, usize, usize, usize)> = None; // a_start, a_end, b_start, b_end
    let flush = |cur: &mut Option<(usize, usize, usize, usize)>, ranges: &mut Vec<Reply>| {
        if let Some((as_, ae, bs, be)) = cur.take() {
            let mlen = (ae - as_ + 1) as i64;
            if mlen >= min_len {
                let mut item = vec![
                    Reply::Array(vec![Reply::Int(as_ as i64), Reply::Int(ae as i64)]),
                    Reply::Array(vec![Reply::Int(bs as i64), Reply::Int(be as i64)]),
                ];
                if with_len {
                    item.push(Reply::Int(mlen));
                }
                ranges.push(Reply::Array(item));
            }
        }
    };
    while i > 0 && k > 0 {
        if x[i - 1] == y[k - 1] {
            pos -= 1;
            out[pos] = x[i - 1];
            let (ai, bi) = (i - 1, k - 1);
            cur = match cur {
                Some((as_, ae, bs, be)) if as_ == ai + 1 && bs == bi + 1 => Some((ai, ae, bi, be)),
                other => {
                    let mut c = other;
                    flush(&mut c, &mut ranges);
                    Some((ai, ai, bi, bi))
                }
            };
            i -= 1;
            k -= 1;
        } else if t[(i - 1) * w + k] > t[i * w + k - 1] {
            i -= 1;
        } else {
            k -= 1;
        }
    }
    flush(&mut cur, &mut ranges);
    if idx {
        return Ok(Reply::Map(vec![
            (Reply::bulk_from(b"matches"), Reply::Array(ranges)),
            (Reply::bulk_from(b"len"), Reply::Int(total as i64)),
        ]));
    }
    Ok(Reply::bulk(Bytes::from(out)))
}

/// DELEX key [IFEQ v|IFNE v|IFDEQ d|IFDNE d]
pub fn delex(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let cond = match a.len() {
        2 => Cond::None,
        4 if is(&a[2], "ifeq") => Cond::IfEq(a[3].clone()),
        4 if is(&a[2], "ifne") => Cond::IfNe(a[3].clone()),
        4 if is(&a[2], "ifdeq") => Cond::IfDeq(parse_digest(&a[3])?),
        4 if is(&a[2], "ifdne") => Cond::IfDne(parse_digest(&a[3])?),
        _ => return Err(err(SYNTAX)),
    };
    let cur = if cond == Cond::None {
        ctx.get(&a[1])?
    } else {
        ctx.get_str(&a[1])?
    };
    let Some(e) = cur else {
        return Ok(Reply::Int(0));
    };
    if !cond.holds(Some(&e)) {
        return Ok(Reply::Int(0));
    }
    let db = ctx.db();
    ctx.txn.delete(db, &a[1]);
    Ok(Reply::Int(1))
}

/// DIGEST key
pub fn digest(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    Ok(match ctx.get_str(&a[1])? {
        Some(e) => Reply::bulk(Bytes::from(digest_hex(&e.value))),
        None => Reply::Nil,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(parts: &[&str]) -> Vec<Bytes> {
        parts.iter().map(|s| Bytes::from(s.to_string())).collect()
    }

    #[test]
    fn set_option_parsing() {
        let o = parse_set(&a(&["set", "k", "v", "NX", "px", "100", "get"]), 1000).unwrap();
        assert_eq!((o.cond, o.get, o.ttl), (Cond::Nx, true, Ttl::At(1100)));
        assert!(parse_set(&a(&["set", "k", "v", "nx", "xx"]), 0).is_err());
        assert!(parse_set(&a(&["set", "k", "v", "ex"]), 0).is_err());
        assert!(parse_set(&a(&["set", "k", "v", "ex", "1", "keepttl"]), 0).is_err());
        assert!(parse_set(&a(&["set", "k", "v", "ifeq", "x", "nx"]), 0).is_err());
        assert_eq!(
            parse_set(&a(&["set", "k", "v", "ex", "0"]), 0).err(),
            Some(Reply::error("ERR invalid expire time in 'set' command"))
        );
        assert_eq!(
            parse_set(&a(&["set", "k", "v", "ex", "x"]), 0).err(),
            Some(Reply::error(NOT_INT))
        );
        let o = parse_set(&a(&["set", "k", "v", "IFEQ", "old", "withetag"]), 0).unwrap();
        assert_eq!(o.cond, Cond::IfEq(Bytes::from("old")));
        assert!(o.with_etag);
    }

    #[test]
    fn conditions() {
        let e = Entry {
            ty: crate::keyspace::ValueType::String,
            expire_at: None,
            value: Bytes::from("v"),
            version: Version::Committed(1),
        };
        assert!(Cond::IfEq(Bytes::from("v")).holds(Some(&e)));
        assert!(!Cond::IfEq(Bytes::from("v")).holds(None));
        assert!(Cond::IfNe(Bytes::from("v")).holds(None));
        assert!(!Cond::IfNe(Bytes::from("v")).holds(Some(&e)));
        let d = parse_digest(digest_hex(b"v").as_bytes()).unwrap();
        assert!(Cond::IfDeq(d).holds(Some(&e)));
        assert!(Cond::IfDne(d ^ 1).holds(Some(&e)));
    }

    #[test]
    fn ranges_clamp_like_getrange() {
        assert_eq!(clamp_range(0, -1, 5), Some((0, 4)));
        assert_eq!(clamp_range(-3, -1, 5), Some((2, 4)));
        assert_eq!(clamp_range(3, 100, 5), Some((3, 4)));
        assert_eq!(clamp_range(-1, -3, 5), None);
        assert_eq!(clamp_range(4, 2, 5), None);
        assert_eq!(clamp_range(0, 0, 0), None);
        assert_eq!(clamp_range(-100, 1, 5), Some((0, 1)));
    }
}

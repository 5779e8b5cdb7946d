//! Bitmap commands on string values: SETBIT, GETBIT, BITCOUNT, BITPOS.

use super::args::{err, int, is, SYNTAX};
use super::strings::clamp_range;
use super::{CmdResult, Ctx};
use crate::protocol::Reply;
use bytes::Bytes;

/// Largest bit offset: 2^32 - 1 (512 MiB strings).
const MAX_BIT_OFFSET: i64 = (1 << 32) - 1;

fn bit_offset(arg: &[u8]) -> Result<usize, Reply> {
    match crate::protocol::parser::parse_i64(arg) {
        Some(n) if (0..=MAX_BIT_OFFSET).contains(&n) => Ok(n as usize),
        _ => Err(err("ERR bit offset is not an integer or out of range")),
    }
}

/// SETBIT key offset value
pub fn setbit(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let off = bit_offset(&a[2])?;
    let on = match a[3].as_ref() {
        b"1" => true,
        b"0" => false,
        _ => return Err(err("ERR bit is not an integer or out of range")),
    };
    let cur = ctx.get_str(&a[1])?;
    let byte = off >> 3;
    if byte + 1 > ctx.max_bulk() {
        return Err(err(super::args::TOO_BIG));
    }
    let (mut v, exp) = match cur {
        Some(e) => (e.value.to_vec(), e.expire_at),
        None => (Vec::new(), None),
    };
    if v.len() <= byte {
        v.resize(byte + 1, 0);
    }
    let mask = 1u8 << (7 - (off & 7));
    let old = v[byte] & mask != 0;
    if on {
        v[byte] |= mask;
    } else {
        v[byte] &= !mask;
    }
    let db = ctx.db();
    ctx.txn.put_string(db, &a[1], &v, exp);
    Ok(Reply::Int(old as i64))
}

/// GETBIT key offset
pub fn getbit(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let off = bit_offset(&a[2])?;
    let v = ctx.get_str(&a[1])?.map(|e| e.value).unwrap_or_default();
    let byte = off >> 3;
    Ok(Reply::Int(
        v.get(byte).map_or(0, |b| (b >> (7 - (off & 7))) & 1) as i64,
    ))
}

/// Parses `[start end [BYTE|BIT]]` from `a[i..]`; `None` = whole string.
fn range_args(
    a: &[Bytes],
    i: usize,
    allow_start_only: bool,
) -> Result<Option<(i64, Option<i64>, bool)>, Reply> {
    let rest = &a[i..];
    match rest.len() {
        0 => Ok(None),
        1 if allow_start_only => Ok(Some((int(&rest[0])?, None, false))),
        2 | 3 => {
            let (s, e) = (int(&rest[0])?, int(&rest[1])?);
            let bit = match rest.get(2) {
                None => false,
                Some(u) if is(u, "bit") => true,
                Some(u) if is(u, "byte") => false,
                _ => return Err(err(SYNTAX)),
            };
            Ok(Some((s, Some(e), bit)))
        }
        _ => Err(err(SYNTAX)),
    }
}

fn bit_at(v: &[u8], i: usize) -> bool {
    (v[i >> 3] >> (7 - (i & 7))) & 1 == 1
}

/// BITCOUNT key [start end [BYTE|BIT]]
pub fn bitcount(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    // Redis looks the key up before parsing the range: a missing key is 0 whatever follows.
    let Some(entry) = ctx.get_str(&a[1])? else {
        return Ok(Reply::Int(0));
    };
    let v = entry.value;
    let Some((s, e, bit)) = range_args(a, 2, false)? else {
        return Ok(Reply::Int(v.iter().map(|b| b.count_ones() as i64).sum()));
    };
    let e = e.unwrap_or(-1);
    let total = if bit {
        v.len() as i64 * 8
    } else {
        v.len() as i64
    };
    let Some((s, e)) = clamp_range(s, e, total) else {
        return Ok(Reply::Int(0));
    };
    let n = if bit {
        (s..=e).filter(|&i| bit_at(&v, i)).count() as i64
    } else {
        v[s..=e].iter().map(|b| b.count_ones() as i64).sum()
    };
    Ok(Reply::Int(n))
}

/// BITPOS key bit [start [end [BYTE|BIT]]]
pub fn bitpos(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let want = match int(&a[2])? {
        0 => false,
        1 => true,
        _ => return Err(err("ERR The bit argument must be 1 or 0.")),
    };
    let Some(entry) = ctx.get_str(&a[1])? else {
        return Ok(Reply::Int(if want { -1 } else { 0 }));
    };
    let range = range_args(a, 3, true)?;
    let v = entry.value;
    let (s, e, bit, end_given) = match range {
        None => (0, -1, false, false),
        Some((s, None, bit)) => (s, -1, bit, false),
        Some((s, Some(e), bit)) => (s, e, bit, true),
    };
    let total = if bit {
        v.len() as i64 * 8
    } else {
        v.len() as i64
    };
    let Some((s, e)) = clamp_range(s, e, total) else {
        return Ok(Reply::Int(-1));
    };
    let (first, last) = if bit { (s, e) } else { (s * 8, e * 8 + 7) };
    for i in first..=last {
        if bit_at(&v, i) == want {
            return Ok(Reply::Int(i as i64));
        }
    }
    // Looking for a clear bit past the end of the string without an explicit end: the
    // string is conceptually padded with zeros, so the answer is the first bit after it.
    if !want && !end_given {
        return Ok(Reply::Int(last as i64 + 1));
    }
    Ok(Reply::Int(-1))
}

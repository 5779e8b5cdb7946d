//! OBJECT ENCODING / FREQ / IDLETIME / REFCOUNT / HELP for string keys, answered as Redis 7
//! answers them with `maxmemory-policy noeviction` (kvd's only policy).
//!
//! kvd stores a string's bytes, not Redis's object, so ENCODING is derived from the value
//! the way Redis's `tryObjectEncoding` chooses it when a value is SET: `int` for a
//! canonical 64-bit integer of at most 20 characters, `embstr` up to 44 bytes, `raw`
//! beyond. (Redis leaves a value grown in place by APPEND, SETRANGE or SETBIT `raw`
//! however short; kvd does not remember how a value was written: docs/compatibility.md.)

use super::args::err;
use super::connection::help;
use super::{CmdResult, Ctx};
use crate::protocol::parser::parse_i64;
use crate::protocol::Reply;
use bytes::Bytes;

/// Longest string Redis stores as `embstr` (OBJ_ENCODING_EMBSTR_SIZE_LIMIT).
const EMBSTR_SIZE_LIMIT: usize = 44;
/// Integers Redis shares between keys (OBJ_SHARED_INTEGERS): their refcount is "infinite".
const SHARED_INTEGERS: i64 = 10_000;
/// The refcount Redis reports for a shared object (OBJ_SHARED_REFCOUNT).
const SHARED_REFCOUNT: i64 = i32::MAX as i64;

/// Redis's encoding of a string value set by SET.
pub fn string_encoding(v: &[u8]) -> &'static str {
    if v.len() <= 20 && parse_i64(v).is_some() {
        "int"
    } else if v.len() <= EMBSTR_SIZE_LIMIT {
        "embstr"
    } else {
        "raw"
    }
}

fn existing(ctx: &Ctx<'_>, key: &[u8]) -> Result<Option<Bytes>, Reply> {
    let e = ctx.get(key)?;
    Ok(e.map(|e| e.value))
}

/// OBJECT ENCODING key
pub fn encoding(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    Ok(match existing(ctx, &a[2])? {
        Some(v) => Reply::bulk(Bytes::from_static(string_encoding(&v).as_bytes())),
        None => Reply::Nil,
    })
}

/// OBJECT REFCOUNT key
pub fn refcount(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    Ok(match existing(ctx, &a[2])? {
        Some(v) => match parse_i64(&v) {
            Some(n) if (0..SHARED_INTEGERS).contains(&n) && v.len() <= 20 => {
                Reply::Int(SHARED_REFCOUNT)
            }
            _ => Reply::Int(1),
        },
        None => Reply::Nil,
    })
}

/// OBJECT IDLETIME key: kvd keeps no access clock per key; it reports 0 (just used),
/// which is what Redis reports for a key touched within the last second.
pub fn idletime(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    Ok(match existing(ctx, &a[2])? {
        Some(_) => Reply::Int(0),
        None => Reply::Nil,
    })
}

/// OBJECT FREQ key: needs an LFU policy, which kvd never has.
pub fn freq(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    match existing(ctx, &a[2])? {
        Some(_) => Err(err("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")),
        None => Ok(Reply::Nil),
    }
}

/// OBJECT HELP (Redis's own text ends "Prints this help.", unlike other HELPs).
pub fn object_help(_ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    let mut reply = help(
        "OBJECT",
        &[
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
        ],
    );
    if let Reply::Array(lines) = &mut reply {
        if let Some(last) = lines.last_mut() {
            *last = Reply::status("    Prints this help.");
        }
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_as_redis_chooses_them_on_set() {
        assert_eq!(string_encoding(b"12"), "int");
        assert_eq!(string_encoding(b"-9223372036854775808"), "int");
        assert_eq!(string_encoding(b"012"), "embstr");
        assert_eq!(string_encoding(b"+1"), "embstr");
        assert_eq!(string_encoding(b""), "embstr");
        assert_eq!(string_encoding(&[b'a'; 44]), "embstr");
        assert_eq!(string_encoding(&[b'a'; 45]), "raw");
    }
}

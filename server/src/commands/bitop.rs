//! BITOP AND|OR|XOR|NOT destkey srckey [srckey ...], as Redis 7: missing sources are
//! empty strings, shorter ones are zero-padded, the result replaces the destination
//! (without its TTL) and an empty result deletes it.

use super::args::{err, is, SYNTAX};
use super::{CmdResult, Ctx};
use crate::protocol::Reply;
use bytes::Bytes;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    And,
    Or,
    Xor,
    Not,
}

/// BITOP operation destkey key [key ...]
pub fn bitop(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let op = if is(&a[1], "and") {
        Op::And
    } else if is(&a[1], "or") {
        Op::Or
    } else if is(&a[1], "xor") {
        Op::Xor
    } else if is(&a[1], "not") {
        Op::Not
    } else {
        return Err(err(SYNTAX));
    };
    if op == Op::Not && a.len() != 4 {
        return Err(err(
            "ERR BITOP NOT must be called with a single source key.",
        ));
    }
    let mut sources = Vec::with_capacity(a.len() - 3);
    for k in &a[3..] {
        sources.push(ctx.get_str(k)?.map(|e| e.value).unwrap_or_default());
    }
    let result = combine(op, &sources);
    let db = ctx.db();
    if result.is_empty() {
        ctx.txn.remove(db, &a[2])?;
    } else {
        ctx.txn.put_string(db, &a[2], &result, None);
    }
    Ok(Reply::Int(result.len() as i64))
}

fn combine(op: Op, sources: &[Bytes]) -> Vec<u8> {
    let len = sources.iter().map(|s| s.len()).max().unwrap_or(0);
    let byte = |s: &Bytes, j: usize| s.get(j).copied().unwrap_or(0);
    (0..len)
        .map(|j| {
            let first = byte(&sources[0], j);
            sources[1..].iter().fold(
                if op == Op::Not { !first } else { first },
                |acc, s| match op {
                    Op::And => acc & byte(s, j),
                    Op::Or => acc | byte(s, j),
                    Op::Xor => acc ^ byte(s, j),
                    Op::Not => acc,
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorter_sources_are_zero_padded() {
        let s = |x: &'static [u8]| Bytes::from_static(x);
        assert_eq!(combine(Op::And, &[s(b"\xff\xff"), s(b"\x0f")]), b"\x0f\x00");
        assert_eq!(combine(Op::Or, &[s(b"\x01"), s(b"\x10\x20")]), b"\x11\x20");
        assert_eq!(combine(Op::Xor, &[s(b"\xff"), s(b""), s(b"\x0f")]), b"\xf0");
        assert_eq!(combine(Op::Not, &[s(b"\x0f")]), b"\xf0");
        assert!(combine(Op::Not, &[s(b"")]).is_empty());
    }
}

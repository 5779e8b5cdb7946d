//! BITFIELD and BITFIELD_RO on string values, as Redis 7: GET/SET/INCRBY of signed
//! (i1..i64) and unsigned (u1..u63) fields at bit offsets (or `#n` = n × width),
//! OVERFLOW WRAP|SAT|FAIL for the operations after it. Bits are numbered from the most
//! significant bit of the first byte; bits past the end of the string read as 0.

use super::args::{err, int, is, SYNTAX};
use super::{CmdResult, Ctx};
use crate::protocol::parser::parse_i64;
use crate::protocol::Reply;
use bytes::Bytes;

const BAD_TYPE: &str = "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";
const BAD_OFFSET: &str = "ERR bit offset is not an integer or out of range";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Get,
    Set(i64),
    IncrBy(i64),
}

#[derive(Clone, Copy)]
struct Field {
    signed: bool,
    bits: u32,
    offset: u64,
}

struct Op {
    kind: Kind,
    field: Field,
    overflow: Overflow,
}

/// `i8`, `u16`...: case-sensitive, as Redis reads them.
fn field_type(arg: &[u8]) -> Result<(bool, u32), Reply> {
    let signed = match arg.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(err(BAD_TYPE)),
    };
    match parse_i64(&arg[1..]) {
        Some(b) if b >= 1 && b <= if signed { 64 } else { 63 } => Ok((signed, b as u32)),
        _ => Err(err(BAD_TYPE)),
    }
}

/// A bit offset, `#n` meaning n fields of `bits`; below proto-max-bulk-len bytes.
fn field_offset(arg: &[u8], bits: u32, max_bulk: usize) -> Result<u64, Reply> {
    let (hash, digits) = match arg.first() {
        Some(b'#') => (true, &arg[1..]),
        _ => (false, arg),
    };
    let mut n = parse_i64(digits).ok_or_else(|| err(BAD_OFFSET))?;
    if hash {
        n = n.checked_mul(bits as i64).ok_or_else(|| err(BAD_OFFSET))?;
    }
    if n < 0 || (n >> 3) as u64 >= max_bulk as u64 {
        return Err(err(BAD_OFFSET));
    }
    Ok(n as u64)
}

fn parse(a: &[Bytes], max_bulk: usize) -> Result<Vec<Op>, Reply> {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while j < a.len() {
        let rest = a.len() - j - 1;
        let kind_args = if is(&a[j], "get") && rest >= 2 {
            0
        } else if (is(&a[j], "set") || is(&a[j], "incrby")) && rest >= 3 {
            1
        } else if is(&a[j], "overflow") && rest >= 1 {
            overflow = if is(&a[j + 1], "wrap") {
                Overflow::Wrap
            } else if is(&a[j + 1], "sat") {
                Overflow::Sat
            } else if is(&a[j + 1], "fail") {
                Overflow::Fail
            } else {
                return Err(err("ERR Invalid OVERFLOW type specified"));
            };
            j += 2;
            continue;
        } else {
            return Err(err(SYNTAX));
        };
        let (signed, bits) = field_type(&a[j + 1])?;
        let offset = field_offset(&a[j + 2], bits, max_bulk)?;
        let kind = if kind_args == 0 {
            Kind::Get
        } else if is(&a[j], "set") {
            Kind::Set(int(&a[j + 3])?)
        } else {
            Kind::IncrBy(int(&a[j + 3])?)
        };
        ops.push(Op {
            kind,
            field: Field {
                signed,
                bits,
                offset,
            },
            overflow,
        });
        j += 3 + kind_args;
    }
    Ok(ops)
}

fn read(v: &[u8], f: Field) -> u64 {
    let mut x: u64 = 0;
    for i in 0..f.bits as u64 {
        let off = f.offset + i;
        let byte = v.get((off >> 3) as usize).copied().unwrap_or(0);
        x = (x << 1) | ((byte >> (7 - (off & 7))) & 1) as u64;
    }
    x
}

fn write(v: &mut [u8], f: Field, x: u64) {
    for i in 0..f.bits as u64 {
        let off = f.offset + i;
        let bit = (x >> (f.bits as u64 - 1 - i)) & 1;
        let mask = 1u8 << (7 - (off & 7));
        let byte = &mut v[(off >> 3) as usize];
        if bit == 1 {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
    }
}

/// The field's value as a number (sign-extended for signed fields).
fn value_of(raw: u64, f: Field) -> i128 {
    if f.signed && f.bits < 64 && (raw >> (f.bits - 1)) & 1 == 1 {
        raw as i128 - (1i128 << f.bits)
    } else if f.signed {
        raw as i64 as i128
    } else {
        raw as i128
    }
}

/// `wanted` stored in the field under `overflow`: the value to write, or None if FAIL
/// refuses it.
fn fit(wanted: i128, f: Field, overflow: Overflow) -> Option<i128> {
    let (min, max) = if f.signed {
        (-(1i128 << (f.bits - 1)), (1i128 << (f.bits - 1)) - 1)
    } else {
        (0, (1i128 << f.bits) - 1)
    };
    if (min..=max).contains(&wanted) {
        return Some(wanted);
    }
    match overflow {
        Overflow::Fail => None,
        Overflow::Sat => Some(if wanted > max { max } else { min }),
        Overflow::Wrap => {
            let low = wanted.rem_euclid(1i128 << f.bits);
            Some(if f.signed && low > max {
                low - (1i128 << f.bits)
            } else {
                low
            })
        }
    }
}

fn raw_of(v: i128, f: Field) -> u64 {
    (v as u64)
        & if f.bits == 64 {
            u64::MAX
        } else {
            (1u64 << f.bits) - 1
        }
}

fn run(ctx: &mut Ctx<'_>, a: &[Bytes], read_only: bool) -> CmdResult {
    let ops = parse(a, ctx.max_bulk())?;
    let writes = ops.iter().any(|o| o.kind != Kind::Get);
    let entry = ctx.get_str(&a[1])?;
    if !writes {
        let v = entry.map(|e| e.value).unwrap_or_default();
        return Ok(Reply::Array(
            ops.iter()
                .map(|o| Reply::Int(value_of(read(&v, o.field), o.field) as i64))
                .collect(),
        ));
    }
    if read_only {
        return Err(err("ERR BITFIELD_RO only supports the GET subcommand"));
    }
    // Like Redis, the string grows to the farthest bit written before any operation
    // runs, so it is stored even if every write fails under OVERFLOW FAIL.
    let end = ops
        .iter()
        .filter(|o| o.kind != Kind::Get)
        .map(|o| ((o.field.offset + o.field.bits as u64 - 1) >> 3) as usize + 1)
        .max()
        .unwrap_or(0);
    let (mut v, exp) = match entry {
        Some(e) => (e.value.to_vec(), e.expire_at),
        None => (Vec::new(), None),
    };
    if v.len() < end {
        v.resize(end, 0);
    }
    let mut replies = Vec::with_capacity(ops.len());
    for o in &ops {
        let f = o.field;
        let old = value_of(read(&v, f), f);
        let (wanted, reply_new) = match o.kind {
            Kind::Get => {
                replies.push(Reply::Int(old as i64));
                continue;
            }
            Kind::Set(x) if f.signed => (x as i128, false),
            // Redis takes an unsigned SET value as the i64's two's complement bits.
            Kind::Set(x) => (x as u64 as i128, false),
            Kind::IncrBy(by) => (old + by as i128, true),
        };
        match fit(wanted, f, o.overflow) {
            Some(new) => {
                write(&mut v, f, raw_of(new, f));
                let shown = if reply_new { new } else { old };
                replies.push(Reply::Int(shown as i64));
            }
            None => replies.push(Reply::Nil),
        }
    }
    let db = ctx.db();
    ctx.txn.put_string(db, &a[1], &v, exp);
    Ok(Reply::Array(replies))
}

/// BITFIELD key [GET type offset] [SET type offset value] [INCRBY type offset increment]
/// [OVERFLOW WRAP|SAT|FAIL] ...
pub fn bitfield(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    run(ctx, a, false)
}

/// BITFIELD_RO key [GET type offset ...]
pub fn bitfield_ro(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    run(ctx, a, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(signed: bool, bits: u32, offset: u64) -> Field {
        Field {
            signed,
            bits,
            offset,
        }
    }

    #[test]
    fn overflow_modes() {
        let u8f = f(false, 8, 0);
        assert_eq!(fit(256, u8f, Overflow::Wrap), Some(0));
        assert_eq!(fit(256, u8f, Overflow::Sat), Some(255));
        assert_eq!(fit(-1, u8f, Overflow::Sat), Some(0));
        assert_eq!(fit(256, u8f, Overflow::Fail), None);
        let i8f = f(true, 8, 0);
        assert_eq!(fit(128, i8f, Overflow::Wrap), Some(-128));
        assert_eq!(fit(-129, i8f, Overflow::Sat), Some(-128));
        let i64f = f(true, 64, 0);
        assert_eq!(
            fit(i64::MAX as i128 + 1, i64f, Overflow::Wrap),
            Some(i64::MIN as i128)
        );
    }

    #[test]
    fn bits_are_msb_first_and_sign_extended() {
        let mut v = vec![0u8; 2];
        write(&mut v, f(false, 4, 4), 0b1010);
        assert_eq!(v, [0b0000_1010, 0]);
        assert_eq!(value_of(read(&v, f(true, 4, 4)), f(true, 4, 4)), -6);
        assert_eq!(read(&v, f(false, 12, 4)), 0b1010_0000_0000);
        assert_eq!(read(&[], f(false, 63, 100)), 0);
    }
}

//! The `cmsgpack` library scripts get (lua-cmsgpack 0.4.0 as Redis 7 bundles it):
//! `pack(v, ...)` encodes each value as MessagePack and concatenates them;
//! `unpack(s)` decodes every value of `s`; `unpack_one(s [, offset])` and
//! `unpack_limit(s, limit [, offset])` decode one or `limit` values from byte `offset`
//! and return first the offset to go on from (-1 once `s` is consumed).
//!
//! Encoding, as lua-cmsgpack chooses: a number that is a 64-bit integer takes the
//! smallest integer format; another number a 32-bit float when that holds it exactly,
//! else a 64-bit float; a string the smallest raw/str format (fixstr, str8, str16,
//! str32); a table whose keys are exactly 1..n (n may be 0) an array, any other table a
//! map in the table's iteration order; tables nested 16 deep, functions and other values
//! become nil. Decoding takes nil, booleans, every integer and float format, str8/16/32
//! (raw), arrays and maps; bin, ext and 0xc1 are "Bad data format in input.". A uint64
//! above 2^63 reads as the negative number C's conversion gives, as in Redis.
//!
//! One difference, for the server's safety: decoding stops at 1000 nested arrays or maps
//! (Redis's C code recurses until Lua's stack is exhausted, about 4000).

use crate::scripting::lua_aux::{self, arg_error, check_bytes, check_integer, opt_integer};
use mlua::{Lua, MultiValue, Table, Value};

/// Tables nested deeper are encoded as nil (lua-cmsgpack's LUACMSGPACK_MAX_NESTING).
const MAX_NESTING: usize = 16;
/// Deepest nesting decoded (kvd's bound; see the module doc).
const MAX_DECODE_DEPTH: usize = 1000;
/// Lua's stack limit (LUAI_MAXCSTACK): unpack cannot return this many values.
const MAX_RESULTS: usize = 8000;

fn encode_int(out: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        match n {
            0..=127 => out.push(n as u8),
            128..=0xff => out.extend_from_slice(&[0xcc, n as u8]),
            0x100..=0xffff => {
                out.push(0xcd);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                out.push(0xce);
                out.extend_from_slice(&(n as u32).to_be_bytes());
            }
            _ => {
                out.push(0xcf);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_number(out: &mut Vec<u8>, n: f64) {
    // C's `(int64_t)n == n`: integral and inside the int64 range (NaN and infinities not).
    if n.trunc() == n && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&n) {
        return encode_int(out, n as i64);
    }
    let f = n as f32;
    if f as f64 == n {
        out.push(0xca);
        out.extend_from_slice(&f.to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_len(out: &mut Vec<u8>, len: usize, fix: u8, fix_max: usize, op16: u8, op32: u8) {
    if len <= fix_max {
        out.push(fix | len as u8);
    } else if len <= 0xffff {
        out.push(op16);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(op32);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

fn encode_bytes(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() < 32 {
        out.push(0xa0 | s.len() as u8);
    } else if s.len() <= 0xff {
        out.extend_from_slice(&[0xd9, s.len() as u8]);
    } else {
        encode_len(out, s.len(), 0, 0, 0xda, 0xdb);
    }
    out.extend_from_slice(s);
}

fn number_of(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        _ => None,
    }
}

/// lua-cmsgpack's `table_is_an_array`: every key a number in 1..=INT_MAX, integral, and
/// the largest equal to the count.
fn is_array(t: &Table) -> mlua::Result<bool> {
    let (mut count, mut max) = (0f64, 0f64);
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair?;
        match number_of(&k) {
            Some(n) if n > 0.0 && n.trunc() == n && n <= i32::MAX as f64 => {
                max = max.max(n);
                count += 1.0;
            }
            _ => return Ok(false),
        }
    }
    Ok(max == count)
}

fn encode_value(out: &mut Vec<u8>, v: &Value, level: usize) -> mlua::Result<()> {
    match v {
        Value::String(s) => encode_bytes(out, &s.as_bytes()),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => encode_number(out, *i as f64),
        Value::Number(n) => encode_number(out, *n),
        Value::Table(t) if level < MAX_NESTING => {
            if is_array(t)? {
                let len = t.raw_len();
                encode_len(out, len, 0x90, 15, 0xdc, 0xdd);
                for j in 1..=len {
                    encode_value(out, &t.get::<Value>(j)?, level + 1)?;
                }
            } else {
                let pairs: Vec<(Value, Value)> =
                    t.pairs::<Value, Value>().collect::<mlua::Result<_>>()?;
                encode_len(out, pairs.len(), 0x80, 15, 0xde, 0xdf);
                for (k, v) in &pairs {
                    encode_value(out, k, level + 1)?;
                    encode_value(out, v, level + 1)?;
                }
            }
        }
        _ => out.push(0xc0),
    }
    Ok(())
}

/// `cmsgpack.pack(v, ...)`.
fn pack(lua: &Lua, args: MultiValue) -> mlua::Result<mlua::String> {
    if args.is_empty() {
        return Err(arg_error(lua, 0, "pack", "MessagePack pack needs input."));
    }
    let mut out = Vec::new();
    for v in &args {
        encode_value(&mut out, v, 0)?;
    }
    lua.create_string(&out)
}

/// Why a decode stopped.
enum Stop {
    /// "Missing bytes in input."
    Eof,
    /// "Bad data format in input."
    BadFormat,
    /// A Lua error (a nil or NaN map key, memory, too deep).
    Lua(mlua::Error),
}

impl From<mlua::Error> for Stop {
    fn from(e: mlua::Error) -> Stop {
        Stop::Lua(e)
    }
}

/// A cursor over the input.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn left(&self) -> usize {
        self.data.len() - self.pos
    }

    /// The next `n` bytes, consumed.
    fn take(&mut self, n: usize) -> Result<&[u8], Stop> {
        if self.left() < n {
            return Err(Stop::Eof);
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn be(&mut self, n: usize) -> Result<u64, Stop> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | b as u64))
    }

    fn string(&mut self, lua: &Lua, len: usize) -> Result<Value, Stop> {
        let bytes = self.take(len)?;
        Ok(Value::String(lua.create_string(bytes)?))
    }
}

fn decode_array(lua: &Lua, c: &mut Cursor<'_>, len: u64, depth: usize) -> Result<Value, Stop> {
    let t = lua.create_table()?;
    for i in 1..=len {
        let v = decode_value(lua, c, depth + 1)?;
        t.raw_set(i as f64, v)?;
    }
    Ok(Value::Table(t))
}

fn decode_map(lua: &Lua, c: &mut Cursor<'_>, len: u64, depth: usize) -> Result<Value, Stop> {
    let t = lua.create_table()?;
    for _ in 0..len {
        let k = decode_value(lua, c, depth + 1)?;
        let v = decode_value(lua, c, depth + 1)?;
        match &k {
            Value::Nil => return Err(Stop::Lua(mlua::Error::runtime("table index is nil"))),
            Value::Number(n) if n.is_nan() => {
                return Err(Stop::Lua(mlua::Error::runtime("table index is NaN")))
            }
            _ => t.raw_set(k, v)?,
        }
    }
    Ok(Value::Table(t))
}

fn decode_value(lua: &Lua, c: &mut Cursor<'_>, depth: usize) -> Result<Value, Stop> {
    if depth > MAX_DECODE_DEPTH {
        return Err(Stop::Lua(lua_aux::error(
            lua,
            "stack overflow (too many nested arrays or maps in input)",
        )));
    }
    let op = c.take(1)?[0];
    let num = |n: f64| Ok(Value::Number(n));
    match op {
        0xcc => num(c.be(1)? as f64),
        0xcd => num(c.be(2)? as f64),
        0xce => num(c.be(4)? as f64),
        0xcf => num(c.be(8)? as i64 as f64),
        0xd0 => num(c.be(1)? as u8 as i8 as f64),
        0xd1 => num(c.be(2)? as u16 as i16 as f64),
        0xd2 => num(c.be(4)? as u32 as i32 as f64),
        0xd3 => num(c.be(8)? as i64 as f64),
        0xc0 => Ok(Value::Nil),
        0xc3 => Ok(Value::Boolean(true)),
        0xc2 => Ok(Value::Boolean(false)),
        0xca => num(f32::from_bits(c.be(4)? as u32) as f64),
        0xcb => num(f64::from_bits(c.be(8)?)),
        0xd9..=0xdf => {
            // str8/16/32, array16/32, map16/32: a big-endian length of 1, 2 or 4 bytes.
            let width = match op {
                0xd9 => 1,
                0xda | 0xdc | 0xde => 2,
                _ => 4,
            };
            let len = c.be(width)?;
            match op {
                0xd9..=0xdb => c.string(lua, len as usize),
                0xdc | 0xdd => decode_array(lua, c, len, depth),
                _ => decode_map(lua, c, len, depth),
            }
        }
        0x00..=0x7f => num(op as f64),
        0xe0..=0xff => num(op as i8 as f64),
        0xa0..=0xbf => c.string(lua, (op & 0x1f) as usize),
        0x90..=0x9f => decode_array(lua, c, (op & 0xf) as u64, depth),
        0x80..=0x8f => decode_map(lua, c, (op & 0xf) as u64, depth),
        _ => Err(Stop::BadFormat),
    }
}

/// lua-cmsgpack's `mp_unpack_full`: up to `limit` values of argument 1 from `offset`
/// (both 0: every value, without the offset result).
fn unpack_full(
    lua: &Lua,
    args: &MultiValue,
    name: &str,
    limit: i64,
    offset: i64,
) -> mlua::Result<MultiValue> {
    let data = check_bytes(lua, args, 1, name)?;
    let len = data.len();
    if offset < 0 || limit < 0 {
        return Err(lua_aux::error(
            lua,
            format!(
                "Invalid request to unpack with offset of {} and limit of {}.",
                offset as i32, len as i32
            ),
        ));
    }
    if offset as u64 > len as u64 {
        return Err(lua_aux::error(
            lua,
            format!(
                "Start offset {} greater than input length {}.",
                offset as i32, len as i32
            ),
        ));
    }
    let decode_all = limit == 0 && offset == 0;
    let limit = if decode_all { i32::MAX as i64 } else { limit };
    let mut c = Cursor {
        data: &data,
        pos: offset as usize,
    };
    let mut out = MultiValue::new();
    let mut count = 0i64;
    while c.left() > 0 && count < limit {
        if out.len() + 1 >= MAX_RESULTS {
            return Err(lua_aux::error(
                lua,
                "stack overflow (too many return values at once; use unpack_one or \
                 unpack_limit instead.)",
            ));
        }
        match decode_value(lua, &mut c, 0) {
            Ok(v) => out.push_back(v),
            Err(Stop::Eof) => return Err(lua_aux::error(lua, "Missing bytes in input.")),
            Err(Stop::BadFormat) => return Err(lua_aux::error(lua, "Bad data format in input.")),
            Err(Stop::Lua(e)) => return Err(e),
        }
        count += 1;
    }
    if !decode_all {
        let next = if c.left() == 0 { -1 } else { c.pos as i64 };
        out.push_front(Value::Integer(next));
    }
    Ok(out)
}

/// The `cmsgpack` table.
pub fn library(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("pack", lua.create_function(pack)?)?;
    t.set(
        "unpack",
        lua.create_function(|lua, args: MultiValue| unpack_full(lua, &args, "unpack", 0, 0))?,
    )?;
    t.set(
        "unpack_one",
        lua.create_function(|lua, args: MultiValue| {
            let offset = opt_integer(lua, &args, 2, "unpack_one", 0)?;
            unpack_full(lua, &args, "unpack_one", 1, offset)
        })?,
    )?;
    t.set(
        "unpack_limit",
        lua.create_function(|lua, args: MultiValue| {
            let limit = check_integer(lua, &args, 2, "unpack_limit")?;
            let offset = opt_integer(lua, &args, 3, "unpack_limit", 0)?;
            unpack_full(lua, &args, "unpack_limit", limit, offset)
        })?,
    )?;
    t.set("_NAME", "cmsgpack")?;
    t.set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    t.set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(lua: &Lua, code: &str) -> Vec<u8> {
        lua.globals()
            .set("cmsgpack", library(lua).unwrap())
            .unwrap();
        let s: mlua::String = lua.load(code).eval().unwrap();
        s.as_bytes().to_vec()
    }

    #[test]
    fn encodes_with_the_smallest_formats() {
        let lua = Lua::new();
        assert_eq!(packed(&lua, "return cmsgpack.pack(1)"), [0x01]);
        assert_eq!(packed(&lua, "return cmsgpack.pack(-1)"), [0xff]);
        assert_eq!(packed(&lua, "return cmsgpack.pack(200)"), [0xcc, 200]);
        assert_eq!(
            packed(&lua, "return cmsgpack.pack(-200)"),
            [0xd1, 0xff, 0x38]
        );
        assert_eq!(
            packed(&lua, "return cmsgpack.pack(1.5)"),
            [0xca, 0x3f, 0xc0, 0, 0]
        );
        assert_eq!(packed(&lua, "return cmsgpack.pack(0.1)")[0], 0xcb);
        assert_eq!(packed(&lua, "return cmsgpack.pack({})"), [0x90]);
        assert_eq!(
            packed(&lua, "return cmsgpack.pack({1,2},'ab')"),
            [0x92, 1, 2, 0xa2, b'a', b'b']
        );
        assert_eq!(
            packed(&lua, "return cmsgpack.pack(string.rep('x', 40))")[..2],
            [0xd9, 40]
        );
        assert_eq!(
            packed(&lua, "return cmsgpack.pack({a=true})"),
            [0x81, 0xa1, b'a', 0xc3]
        );
    }

    #[test]
    fn round_trips_and_streams() {
        let lua = Lua::new();
        lua.globals()
            .set("cmsgpack", library(&lua).unwrap())
            .unwrap();
        let (a, b, c): (i64, String, f64) = lua
            .load(
                "local t = cmsgpack.unpack(cmsgpack.pack({7, 'x', 2.25})) return t[1], t[2], t[3]",
            )
            .eval()
            .unwrap();
        assert_eq!((a, b.as_str(), c), (7, "x", 2.25));
        let (off, v): (i64, i64) = lua
            .load("return cmsgpack.unpack_one(cmsgpack.pack(1, 2))")
            .eval()
            .unwrap();
        assert_eq!((off, v), (1, 1));
        let e = lua
            .load("return cmsgpack.unpack('\\193')")
            .exec()
            .unwrap_err();
        assert!(e.to_string().contains("Bad data format in input."), "{e}");
        let e = lua
            .load("return cmsgpack.unpack('\\146')")
            .exec()
            .unwrap_err();
        assert!(e.to_string().contains("Missing bytes in input."), "{e}");
    }
}

//! The `struct` library scripts get (Roberto Ierusalimschy's struct.c as Redis 7 bundles
//! it, with Redis's bounds fixes): `struct.pack(fmt, ...)`, `struct.unpack(fmt, s [, i])`
//! (the values, then the position after them) and `struct.size(fmt)`.
//!
//! Format options: `>` big endian, `<` little endian (the default is the machine's:
//! little), `![n]` alignment (default 8), `x` one padding byte, `b`/`B` signed/unsigned
//! byte, `h`/`H` short (2), `l`/`L` long (8), `T` size_t (8), `i[n]`/`I[n]` integer of
//! `n` bytes (default 4, at most 32), `f` float, `d` double, `c[n]` `n` chars (`c0`:
//! the whole string when packing, the previous number's length when unpacking), `s` a
//! zero-terminated string, space ignored. Integers are packed from the Lua number as C
//! converts it (`(unsigned long)n`, or `(long)n` when negative); unpacked ones are Lua
//! numbers (doubles), so above 2^53 they lose precision exactly as in Redis.

use crate::scripting::lua_aux::{self, arg_error, check_bytes, check_number, opt_integer};
use mlua::{Lua, MultiValue, Table, Value};

/// Largest integer size (`i32`), struct.c's MAXINTSIZE.
const MAX_INT_SIZE: i64 = 32;
/// Default of `!` (the alignment of a double on x86-64).
const MAX_ALIGN: i64 = 8;
/// Lua's stack limit (LUAI_MAXCSTACK): unpack cannot return this many values.
const MAX_RESULTS: usize = 8000;

/// Endianness and alignment as the format sets them.
struct Header {
    big: bool,
    align: usize,
}

/// A format string being read.
struct Format<'a> {
    fmt: &'a [u8],
    pos: usize,
}

impl Format<'_> {
    /// The next option character.
    fn next_opt(&mut self) -> Option<u8> {
        let c = *self.fmt.get(self.pos)?;
        self.pos += 1;
        Some(c)
    }

    /// struct.c's `getnum`: the digits that follow, or `default`.
    fn number(&mut self, lua: &Lua, default: i64) -> mlua::Result<i64> {
        if !self.fmt.get(self.pos).is_some_and(u8::is_ascii_digit) {
            return Ok(default);
        }
        let mut a: i64 = 0;
        while let Some(d) = self.fmt.get(self.pos).filter(|c| c.is_ascii_digit()) {
            let d = (d - b'0') as i64;
            if a > i32::MAX as i64 / 10 || a * 10 > i32::MAX as i64 - d {
                return Err(lua_aux::error(lua, "integral size overflow"));
            }
            a = a * 10 + d;
            self.pos += 1;
        }
        Ok(a)
    }

    /// struct.c's `optsize`: the size of option `opt` (0 for the control options).
    fn size(&mut self, lua: &Lua, opt: u8) -> mlua::Result<usize> {
        Ok(match opt {
            b'B' | b'b' => 1,
            b'H' | b'h' => 2,
            b'L' | b'l' | b'T' | b'd' => 8,
            b'f' => 4,
            b'x' => 1,
            b'c' => self.number(lua, 1)? as usize,
            b'i' | b'I' => {
                let sz = self.number(lua, 4)?;
                if sz > MAX_INT_SIZE {
                    return Err(lua_aux::error(
                        lua,
                        format!("integral size {sz} is larger than limit of {MAX_INT_SIZE}"),
                    ));
                }
                sz as usize
            }
            _ => 0,
        })
    }

    /// struct.c's `controloptions`: endianness, alignment, spaces; anything else is an
    /// invalid option of the function `name`.
    fn control(&mut self, lua: &Lua, opt: u8, h: &mut Header, name: &str) -> mlua::Result<()> {
        match opt {
            b' ' => {}
            b'>' => h.big = true,
            b'<' => h.big = false,
            b'!' => {
                let a = self.number(lua, MAX_ALIGN)?;
                if !(a > 0 && a & (a - 1) == 0) {
                    return Err(lua_aux::error(
                        lua,
                        format!("alignment {a} is not a power of 2"),
                    ));
                }
                h.align = a as usize;
            }
            _ => {
                let msg = format!("invalid format option '{}'", opt as char);
                return Err(arg_error(lua, 1, name, &msg));
            }
        }
        Ok(())
    }
}

/// Padding bytes before an item of `size` at `len` (struct.c's `gettoalign`, with its
/// unsigned arithmetic).
fn to_align(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    size.wrapping_sub(len & size.wrapping_sub(1)) & size.wrapping_sub(1)
}

/// The format argument: a string (numbers as Lua prints them), up to its first NUL as C
/// reads it.
fn format_arg(lua: &Lua, args: &MultiValue, name: &str) -> mlua::Result<Vec<u8>> {
    let mut fmt = check_bytes(lua, args, 1, name)?;
    if let Some(nul) = fmt.iter().position(|&b| b == 0) {
        fmt.truncate(nul);
    }
    Ok(fmt)
}

fn put_integer(out: &mut Vec<u8>, n: f64, big: bool, size: usize) {
    let mut value: u64 = if n < 0.0 { n as i64 as u64 } else { n as u64 };
    let mut bytes = vec![0u8; size];
    for b in bytes.iter_mut() {
        *b = (value & 0xff) as u8;
        value >>= 8;
    }
    if big {
        bytes.reverse();
    }
    out.extend_from_slice(&bytes);
}

fn get_integer(buf: &[u8], big: bool, signed: bool) -> f64 {
    let size = buf.len();
    let fold = |l: u64, b: &u8| (l << 8) | *b as u64;
    let l = if big {
        buf.iter().fold(0, fold)
    } else {
        buf.iter().rev().fold(0, fold)
    };
    if !signed {
        return l as f64;
    }
    // C shifts by (size*8 - 1) modulo 64 on x86-64; wrapping_shl does the same.
    let mask = (!0u64).wrapping_shl((size as u32).wrapping_mul(8).wrapping_sub(1));
    let l = if l & mask != 0 { l | mask } else { l };
    l as i64 as f64
}

/// `struct.pack(fmt, ...)`.
fn pack(lua: &Lua, mut args: MultiValue) -> mlua::Result<mlua::String> {
    let fmt = format_arg(lua, &args, "pack")?;
    // struct.c pushes a nil after the arguments: a missing one reads as nil, then none.
    args.push_back(Value::Nil);
    let mut f = Format { fmt: &fmt, pos: 0 };
    let mut h = Header {
        big: false,
        align: 1,
    };
    let mut out = Vec::new();
    let mut arg = 2;
    let mut total = 0usize;
    while let Some(opt) = f.next_opt() {
        let mut size = f.size(lua, opt)?;
        let pad = to_align(total, &h, opt, size);
        total = total.wrapping_add(pad);
        out.resize(out.len() + pad, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = check_number(lua, &args, arg, "pack")?;
                arg += 1;
                put_integer(&mut out, n, h.big, size);
            }
            b'x' => out.push(0),
            b'f' => {
                let mut b = (check_number(lua, &args, arg, "pack")? as f32).to_le_bytes();
                arg += 1;
                if h.big {
                    b.reverse();
                }
                out.extend_from_slice(&b);
            }
            b'd' => {
                let mut b = check_number(lua, &args, arg, "pack")?.to_le_bytes();
                arg += 1;
                if h.big {
                    b.reverse();
                }
                out.extend_from_slice(&b);
            }
            b'c' | b's' => {
                let s = check_bytes(lua, &args, arg, "pack")?;
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    return Err(arg_error(lua, arg, "pack", "string too short"));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                    size += 1;
                }
            }
            _ => f.control(lua, opt, &mut h, "pack")?,
        }
        total = total.wrapping_add(size);
    }
    lua.create_string(&out)
}

/// `struct.unpack(fmt, s [, i])`.
fn unpack(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let fmt = format_arg(lua, &args, "unpack")?;
    let data = check_bytes(lua, &args, 2, "unpack")?;
    let ld = data.len();
    // A size_t in C: a negative start wraps around and fails the bounds check below.
    let mut pos = opt_integer(lua, &args, 3, "unpack", 1)? as u64 as usize;
    if pos == 0 {
        return Err(arg_error(lua, 3, "unpack", "offset must be 1 or greater"));
    }
    pos -= 1;
    let too_short = || arg_error(lua, 2, "unpack", "data string too short");
    let mut f = Format { fmt: &fmt, pos: 0 };
    let mut h = Header {
        big: false,
        align: 1,
    };
    let mut out = MultiValue::new();
    while let Some(opt) = f.next_opt() {
        let mut size = f.size(lua, opt)?;
        pos = pos.wrapping_add(to_align(pos, &h, opt, size));
        if size > ld || pos > ld - size {
            return Err(too_short());
        }
        if out.len() + args.len() + 2 > MAX_RESULTS {
            return Err(lua_aux::error(lua, "stack overflow (too many results)"));
        }
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = get_integer(&data[pos..pos + size], h.big, opt.is_ascii_lowercase());
                out.push_back(Value::Number(n));
            }
            b'x' => {}
            b'f' => {
                let mut b: [u8; 4] = [0; 4];
                b.copy_from_slice(&data[pos..pos + 4]);
                if h.big {
                    b.reverse();
                }
                out.push_back(Value::Number(f32::from_le_bytes(b) as f64));
            }
            b'd' => {
                let mut b: [u8; 8] = [0; 8];
                b.copy_from_slice(&data[pos..pos + 8]);
                if h.big {
                    b.reverse();
                }
                out.push_back(Value::Number(f64::from_le_bytes(b)));
            }
            b'c' => {
                if size == 0 {
                    let previous = out
                        .back()
                        .cloned()
                        .and_then(|v| lua.coerce_number(v).ok().flatten());
                    let Some(n) = previous else {
                        return Err(lua_aux::error(lua, "format 'c0' needs a previous size"));
                    };
                    out.pop_back();
                    size = n as u64 as usize;
                    if size > ld || pos > ld - size {
                        return Err(too_short());
                    }
                }
                out.push_back(Value::String(lua.create_string(&data[pos..pos + size])?));
            }
            b's' => {
                let Some(nul) = data[pos..].iter().position(|&b| b == 0) else {
                    return Err(lua_aux::error(lua, "unfinished string in data"));
                };
                size = nul + 1;
                out.push_back(Value::String(lua.create_string(&data[pos..pos + nul])?));
            }
            _ => f.control(lua, opt, &mut h, "unpack")?,
        }
        pos = pos.wrapping_add(size);
    }
    out.push_back(Value::Integer(pos.wrapping_add(1) as i64));
    Ok(out)
}

/// `struct.size(fmt)`: the bytes `fmt` packs to; `s` and `c0` have no fixed size.
fn size(lua: &Lua, args: MultiValue) -> mlua::Result<i64> {
    let fmt = format_arg(lua, &args, "size")?;
    let mut f = Format { fmt: &fmt, pos: 0 };
    let mut h = Header {
        big: false,
        align: 1,
    };
    let mut pos = 0usize;
    while let Some(opt) = f.next_opt() {
        let size = f.size(lua, opt)?;
        pos = pos.wrapping_add(to_align(pos, &h, opt, size));
        if opt == b's' {
            return Err(arg_error(lua, 1, "size", "option 's' has no fixed size"));
        }
        if opt == b'c' && size == 0 {
            return Err(arg_error(lua, 1, "size", "option 'c0' has no fixed size"));
        }
        // Unknown letters and digits are skipped here, as struct.c does.
        if !opt.is_ascii_alphanumeric() {
            f.control(lua, opt, &mut h, "size")?;
        }
        pos = pos.wrapping_add(size);
    }
    Ok(pos as i64)
}

/// The `struct` table.
pub fn library(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("pack", lua.create_function(pack)?)?;
    t.set("unpack", lua.create_function(unpack)?)?;
    t.set("size", lua.create_function(size)?)?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lua() -> Lua {
        let lua = Lua::new();
        lua.globals().set("struct", library(&lua).unwrap()).unwrap();
        lua
    }

    #[test]
    fn packs_with_endianness_and_alignment() {
        let lua = lua();
        let s: mlua::String = lua
            .load("return struct.pack('>i2<H!4bi', 258, 1, -1, 7)")
            .eval()
            .unwrap();
        assert_eq!(
            s.as_bytes().to_vec(),
            [1, 2, 1, 0, 0xff, 0, 0, 0, 7, 0, 0, 0]
        );
        let n: i64 = lua.load("return struct.size('!4bi')").eval().unwrap();
        assert_eq!(n, 8);
    }

    #[test]
    fn unpacks_what_it_packs() {
        let lua = lua();
        let (a, b, c, next): (i64, String, f64, i64) = lua
            .load("return struct.unpack('<hsd', struct.pack('<hsd', -5, 'ab', 2.5))")
            .eval()
            .unwrap();
        assert_eq!((a, b.as_str(), c, next), (-5, "ab", 2.5, 14));
        let (s, next): (String, i64) = lua
            .load("return struct.unpack('bc0', '\\3abcd')")
            .eval()
            .unwrap();
        assert_eq!((s.as_str(), next), ("abc", 5));
        let e = lua
            .load("return struct.unpack('i4', 'abc')")
            .exec()
            .unwrap_err();
        assert!(e.to_string().contains("data string too short"), "{e}");
    }
}

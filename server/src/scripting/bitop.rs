//! The `bit` library scripts get (Lua BitOp, as Redis bundles it): 32-bit operations on
//! Lua numbers, results as signed 32-bit integers.

use mlua::{Lua, Table, Variadic};

/// Lua BitOp's `tobit`: the number rounded to an integer, taken modulo 2^32, signed.
pub fn tobit(n: f64) -> i32 {
    (n.round_ties_even() as i128 & 0xFFFF_FFFF) as u32 as i32
}

fn fold(args: &Variadic<f64>, f: fn(i32, i32) -> i32) -> mlua::Result<i32> {
    let mut it = args.iter();
    let first = it
        .next()
        .ok_or_else(|| mlua::Error::runtime("bad argument #1 (number expected, got no value)"))?;
    Ok(it.fold(tobit(*first), |acc, x| f(acc, tobit(*x))))
}

/// `bit.tohex(x [, n])`: `n` hex digits (default 8; negative: upper case).
pub fn tohex(x: f64, n: Option<f64>) -> String {
    let mut n = n.map(tobit).unwrap_or(8);
    let upper = n < 0;
    if upper {
        n = n.saturating_neg();
    }
    let n = n.clamp(1, 8) as usize;
    let v = tobit(x) as u32 as u64 & ((1u64 << (4 * n)) - 1);
    let s = format!("{v:0n$x}");
    if upper {
        s.to_ascii_uppercase()
    } else {
        s
    }
}

/// The `bit` table.
pub fn library(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("tobit", lua.create_function(|_, x: f64| Ok(tobit(x)))?)?;
    t.set("bnot", lua.create_function(|_, x: f64| Ok(!tobit(x)))?)?;
    t.set(
        "band",
        lua.create_function(|_, a: Variadic<f64>| fold(&a, |x, y| x & y))?,
    )?;
    t.set(
        "bor",
        lua.create_function(|_, a: Variadic<f64>| fold(&a, |x, y| x | y))?,
    )?;
    t.set(
        "bxor",
        lua.create_function(|_, a: Variadic<f64>| fold(&a, |x, y| x ^ y))?,
    )?;
    let shift = |f: fn(i32, u32) -> i32| {
        move |_: &Lua, (x, n): (f64, f64)| Ok(f(tobit(x), (tobit(n) & 31) as u32))
    };
    t.set(
        "lshift",
        lua.create_function(shift(|x, n| ((x as u32) << n) as i32))?,
    )?;
    t.set(
        "rshift",
        lua.create_function(shift(|x, n| ((x as u32) >> n) as i32))?,
    )?;
    t.set("arshift", lua.create_function(shift(|x, n| x >> n))?)?;
    t.set(
        "rol",
        lua.create_function(shift(|x, n| (x as u32).rotate_left(n) as i32))?,
    )?;
    t.set(
        "ror",
        lua.create_function(shift(|x, n| (x as u32).rotate_right(n) as i32))?,
    )?;
    t.set(
        "bswap",
        lua.create_function(|_, x: f64| Ok((tobit(x) as u32).swap_bytes() as i32))?,
    )?;
    t.set(
        "tohex",
        lua.create_function(|_, (x, n): (f64, Option<f64>)| Ok(tohex(x, n)))?,
    )?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_lua_bitop() {
        assert_eq!(tobit(4294967295.0), -1);
        assert_eq!(tobit(2147483648.0), i32::MIN);
        assert_eq!(tohex(255.0, None), "000000ff");
        assert_eq!(tohex(-1.0, Some(-4.0)), "FFFF");
        let lua = Lua::new();
        lua.globals().set("bit", library(&lua).unwrap()).unwrap();
        let r: i64 = lua
            .load("return bit.band(0xff, 0x0f, 0x3) + bit.lshift(1, 4) + bit.bxor(5, 1)")
            .eval()
            .unwrap();
        assert_eq!(r, 3 + 16 + 4);
    }
}

//! `math.random` and `math.randomseed` as Redis replaces them: a 48-bit linear
//! congruential generator (lrand48's), seeded with 0 when the Lua state is made, so a
//! fresh server draws the same numbers as a fresh redis-server.

use mlua::{Lua, Variadic};
use parking_lot::Mutex;
use std::sync::Arc;

const A: u64 = 0x5_DEEC_E66D;
const C: u64 = 0xB;
const MASK: u64 = (1 << 48) - 1;
/// Redis's REDIS_LRAND48_MAX (INT32_MAX).
const LRAND48_MAX: u64 = i32::MAX as u64;

/// The generator's state.
#[derive(Debug, Clone)]
pub struct Lrand48 {
    x: u64,
}

impl Lrand48 {
    /// Seeded as `srand48(seed)`.
    pub fn new(seed: i32) -> Lrand48 {
        Lrand48 {
            x: ((seed as u32 as u64) << 16 | 0x330E) & MASK,
        }
    }

    /// The next 31-bit value.
    pub fn next(&mut self) -> u64 {
        self.x = (A.wrapping_mul(self.x).wrapping_add(C)) & MASK;
        self.x >> 17
    }

    /// A number in [0, 1) as Redis's `redis_math_random` draws it.
    pub fn unit(&mut self) -> f64 {
        (self.next() % LRAND48_MAX) as f64 / LRAND48_MAX as f64
    }
}

/// Installs `math.random` and `math.randomseed` into `math`.
pub fn install(lua: &Lua, math: &mlua::Table) -> mlua::Result<()> {
    let state = Arc::new(Mutex::new(Lrand48::new(0)));
    let s = state.clone();
    math.set(
        "random",
        lua.create_function(move |_, args: Variadic<f64>| {
            let r = s.lock().unit();
            let int = |x: f64| x as i32 as f64;
            match args.len() {
                0 => Ok(r),
                1 => {
                    let u = int(args[0]);
                    if u < 1.0 {
                        return Err(mlua::Error::runtime(
                            "bad argument #1 to 'random' (interval is empty)",
                        ));
                    }
                    Ok((r * u).floor() + 1.0)
                }
                2 => {
                    let (l, u) = (int(args[0]), int(args[1]));
                    if l > u {
                        return Err(mlua::Error::runtime(
                            "bad argument #2 to 'random' (interval is empty)",
                        ));
                    }
                    Ok((r * (u - l + 1.0)).floor() + l)
                }
                _ => Err(mlua::Error::runtime("wrong number of arguments")),
            }
        })?,
    )?;
    math.set(
        "randomseed",
        lua.create_function(move |_, seed: f64| {
            *state.lock() = Lrand48::new(seed as i32);
            Ok(())
        })?,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_what_a_fresh_redis_draws() {
        // On a fresh redis-server 7.0: EVAL "return math.random()" (one draw), then
        // "return math.random(100)" twice answered 85 and 36.
        let mut g = Lrand48::new(0);
        g.unit();
        assert_eq!((g.unit() * 100.0).floor() + 1.0, 85.0);
        assert_eq!((g.unit() * 100.0).floor() + 1.0, 36.0);
    }
}

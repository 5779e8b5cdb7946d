//! `math.random` and `math.randomseed` as Redis replaces them: a 48-bit linear
//! congruential generator (lrand48's) whose state is one per process and starts
//! unseeded (Redis's rand.c: x = 0x1234ABCD330E), shared by every Lua state and kept
//! across SCRIPT FLUSH, so a fresh server draws the same numbers as a fresh redis-server.

use mlua::{Lua, Variadic};
use parking_lot::Mutex;

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

/// The process's generator (Redis's is a static in rand.c too).
static GENERATOR: Mutex<Lrand48> = Mutex::new(Lrand48::UNSEEDED);

impl Lrand48 {
    /// lrand48's state before any srand48.
    pub const UNSEEDED: Lrand48 = Lrand48 {
        x: 0x1234_ABCD_330E,
    };

    /// Seeded as `srand48(seed)`.
    pub fn new(seed: i32) -> Lrand48 {
        Lrand48 {
            x: ((seed as u32 as u64) << 16 | 0x330E) & MASK,
        }
    }

    /// The next 31-bit value.
    pub fn next_value(&mut self) -> u64 {
        self.x = (A.wrapping_mul(self.x).wrapping_add(C)) & MASK;
        self.x >> 17
    }

    /// A number in [0, 1) as Redis's `redis_math_random` draws it.
    pub fn unit(&mut self) -> f64 {
        (self.next_value() % LRAND48_MAX) as f64 / LRAND48_MAX as f64
    }
}

/// Installs `math.random` and `math.randomseed` into `math`.
pub fn install(lua: &Lua, math: &mlua::Table) -> mlua::Result<()> {
    math.set(
        "random",
        lua.create_function(move |_, args: Variadic<f64>| {
            let r = GENERATOR.lock().unit();
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
            *GENERATOR.lock() = Lrand48::new(seed as i32);
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
        // On a fresh redis-server 7.0: EVAL "return tostring(math.random())" answered
        // 0.39646477363839, then "return math.random(100)" twice 85 and 36.
        let mut g = Lrand48::UNSEEDED;
        assert_eq!(
            crate::scripting::numbers::format_g(g.unit(), 14),
            "0.39646477363839"
        );
        assert_eq!((g.unit() * 100.0).floor() + 1.0, 85.0);
        assert_eq!((g.unit() * 100.0).floor() + 1.0, 36.0);
    }
}

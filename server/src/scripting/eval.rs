//! EVAL, EVALSHA, EVAL_RO and EVALSHA_RO.

use crate::commands::args::err;
use crate::commands::{CmdResult, Ctx};
use crate::protocol::Reply;
use crate::scripting::run::{run_script, Run};
use crate::scripting::shebang::{EVAL_COMPAT, NO_WRITES};
use bytes::Bytes;

/// EVAL script numkeys [key ...] [arg ...]
pub fn eval(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    eval_generic(ctx, a, false, false)
}

/// EVALSHA sha1 numkeys [key ...] [arg ...]
pub fn evalsha(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    eval_generic(ctx, a, true, false)
}

/// EVAL_RO script numkeys [key ...] [arg ...]
pub fn eval_ro(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    eval_generic(ctx, a, false, true)
}

/// EVALSHA_RO sha1 numkeys [key ...] [arg ...]
pub fn evalsha_ro(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    eval_generic(ctx, a, true, true)
}

/// The number of keys of EVAL-style arguments (`a[2]`), checked as Redis checks it;
/// `not_a_number` is the error when it is no integer (EVAL and FCALL differ).
pub fn numkeys(a: &[Bytes], not_a_number: &'static str) -> Result<usize, Reply> {
    let n: i64 = std::str::from_utf8(&a[2])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| err(not_a_number))?;
    if n > (a.len() - 3) as i64 {
        return Err(err(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    if n < 0 {
        return Err(err("ERR Number of keys can't be negative"));
    }
    Ok(n as usize)
}

fn eval_generic(ctx: &mut Ctx<'_>, a: &[Bytes], by_sha: bool, ro: bool) -> CmdResult {
    let n = numkeys(a, "ERR value is not an integer or out of range")?;
    let scripting = &ctx.srv.scripting;
    let mut state = scripting.eval_state();
    let state = &mut *state;
    let (sha, script) = if by_sha {
        match state.cache.get(&a[1]) {
            Some(s) => (String::from_utf8_lossy(&a[1]).to_ascii_lowercase(), s),
            None => return Err(err("NOSCRIPT No matching script. Please use EVAL.")),
        }
    } else {
        state.cache.load(&state.vm, &a[1])?
    };
    if ro && script.flags & (EVAL_COMPAT | NO_WRITES) == 0 {
        return Err(err(
            "ERR Can not execute a script with write flag using *_ro command.",
        ));
    }
    let read_only = ro || script.flags & NO_WRITES != 0;
    let run = Run::from_args(&script.func, &sha, a, n, read_only, false);
    run_script(ctx, &state.vm, run)
}
